/*
 * bench_ingest.h: `strata bench ingest`, the remote-write load generator.
 */
#ifndef STRATA_CLI_BENCH_INGEST_H
#define STRATA_CLI_BENCH_INGEST_H

/* Runs the load generator with argv[0] = "ingest" and its flags (see --help). Returns the process
 * exit status: 0 when every request was acknowledged, 1 when some were rejected or failed, 2 for a
 * usage error. */
int cli_bench_ingest(int argc, char **argv);

#endif
