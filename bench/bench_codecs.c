/*
 * bench_codecs.c: bytes per sample and decode cost of every Strata chunk codec and of the
 * selector, against Prometheus' XOR chunk, on two datasets; the figures docs/benchmarks.md
 * ("Adaptive chunk codecs") records. A program, not a test.
 *
 *   gen   the load generator's own series (`strata bench ingest`: node_exporter-like hosts, an
 *         HTTP service, classic histograms), 15 s interval with its scrape jitter, cut into
 *         120-sample chunks per series.
 *   anchor  (with --load) anchorbench's own workload (../shared/anchorbench/workload.py, dumped
 *         by bench/anchorbench_dump.py): the data behind the Prometheus and VictoriaMetrics
 *         bytes-per-sample figures.
 *   hard  high-precision floats: temperatures (slow sine plus noise, full precision) and
 *         latencies (log-normal doubles, 15-17 significant digits), same timestamps.
 *
 * The generator's functions are static in src/cli/bench_ingest.c; this file includes that
 * source so that the very same code produces the very same values (its output is unchanged and
 * its command is not run). Each decode figure is the median of --runs full passes over all
 * chunks; decode_pass is not inlined so that callgrind can count its instructions alone:
 *
 *   valgrind --tool=callgrind --toggle-collect=decode_pass build/bench_codecs --runs 1 --only sel
 *
 * Usage: bench_codecs [--runs N] [--series N] [--hours H] [--seed S] [--load DUMP] [--data
 * gen|hard|anchor] [--only NAME]
 */
#include "cli/bench_ingest.c"

#include "encoding/encoding.h"

#include <time.h>

/* Samples per chunk: 120 as the head cuts them; --chunk N to see what longer chunks (a
 * compaction re-encoding a series' whole block range) would gain. */
static size_t CHUNK = 120;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct dataset {
    const char *name;
    strata_sample *s; /* n_series rows of steps samples */
    size_t n_series, steps;
    char **syms; /* every label name and value of every series (repeats included) */
    size_t n_syms, cap_syms;
} dataset;

static void add_sym(dataset *d, const char *p, size_t len)
{
    if (d->n_syms == d->cap_syms) {
        d->cap_syms = d->cap_syms ? 2 * d->cap_syms : 1024;
        d->syms = realloc(d->syms, d->cap_syms * sizeof *d->syms);
    }
    d->syms[d->n_syms++] = strndup(p, len);
}

/* Reads a dump written by bench/anchorbench_dump.py (layout there). */
static int load_dump(dataset *d, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[4];
    uint32_t hdr[2];
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "SDS1", 4) || fread(hdr, 4, 2, f) != 2) {
        fclose(f);
        return -1;
    }
    d->name = "anchor";
    d->n_series = hdr[0];
    d->steps = hdr[1];
    d->s = malloc(d->n_series * d->steps * sizeof *d->s);
    for (size_t i = 0; i < d->n_series; i++) {
        uint32_t nl;
        if (fread(&nl, 4, 1, f) != 1) break;
        for (uint32_t l = 0; l < 2 * nl; l++) {
            uint16_t len;
            char tmp[65536];
            if (fread(&len, 2, 1, f) != 1 || fread(tmp, 1, len, f) != len) break;
            add_sym(d, tmp, len);
        }
        for (size_t k = 0; k < d->steps; k++) {
            int64_t t;
            double v;
            if (fread(&t, 8, 1, f) != 1 || fread(&v, 8, 1, f) != 1) break;
            d->s[i * d->steps + k] = (strata_sample){t, v};
        }
    }
    fclose(f);
    return 0;
}

static int gen_dataset(dataset *d, uint64_t n_series, double hours, uint64_t seed)
{
    bi_config cfg = {.n_series = n_series,
                     .interval_ms = 15000,
                     .hours = hours,
                     .end_ms = 1764040500000,
                     .seed = seed};
    bi_shared *sh = calloc(1, sizeof *sh);
    if (!sh) return -1;
    sh->cfg = &cfg;
    sh->n_tmpl = bi_build_template(sh->tmpl);
    sh->steps = (uint64_t)((cfg.hours * 3600000.0) / (double)cfg.interval_ms);
    uint64_t hosts = (n_series + (uint64_t)sh->n_tmpl - 1) / (uint64_t)sh->n_tmpl;
    sh->instances = calloc(hosts * 2, sizeof *sh->instances);
    for (uint64_t h = 0; h < hosts * 2; h++) {
        sh->instances[h] = malloc(32);
        snprintf(sh->instances[h], 32, "host-%05" PRIu64 ":%d", h / 2, h % 2 ? 8080 : 9100);
    }
    d->name = "gen";
    d->n_series = n_series;
    d->steps = sh->steps;
    d->s = malloc(n_series * sh->steps * sizeof *d->s);
    uint64_t hc[BI_MAX_BUCKETS];
    for (uint64_t i = 0; i < n_series; i++) {
        bi_series s;
        memset(hc, 0, sizeof hc);
        bi_series_init(sh, i, &s, hc);
        for (uint32_t l = 0; l < s.n_labels; l++) {
            add_sym(d, s.labels[l].name, s.labels[l].name_len);
            add_sym(d, s.labels[l].value, s.labels[l].value_len);
        }
        for (uint64_t k = 0; k < sh->steps; k++) {
            strata_sample *o = &d->s[i * sh->steps + k];
            o->t = bi_sample_time(sh, &s, k);
            o->v = bi_next_value(&cfg, &s, o->t, k == 0);
        }
    }
    for (uint64_t h = 0; h < hosts * 2; h++)
        free(sh->instances[h]);
    free(sh->instances);
    free(sh);
    return 0;
}

/* Full-precision gauges and latencies on the same timestamps as gen. */
static void gen_hard(dataset *d, const dataset *g)
{
    d->name = "hard";
    d->n_series = g->n_series;
    d->steps = g->steps;
    d->s = malloc(d->n_series * d->steps * sizeof *d->s);
    uint64_t rng = 42;
    for (size_t i = 0; i < d->n_series; i++) {
        double base = 15 + 20 * bi_rand01(&rng), walk = 0;
        for (size_t k = 0; k < d->steps; k++) {
            strata_sample *o = &d->s[i * d->steps + k];
            o->t = g->s[i * g->steps + k].t;
            if (i % 2 == 0) { /* temperature in degrees: sine, drift and sensor noise */
                walk += (bi_rand01(&rng) - 0.5) * 0.01;
                o->v = base + 3 * sin((double)o->t / 3.6e6) + walk + (bi_rand01(&rng) - 0.5) * 0.1;
            } else { /* request latency in seconds, log-normal */
                double u1 = bi_rand01(&rng) + 1e-12, u2 = bi_rand01(&rng);
                double z = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
                o->v = exp(-3 + 0.6 * z);
            }
        }
    }
}

typedef struct enc_set {
    uint8_t **chunk;
    size_t *len;
    uint32_t *n; /* samples per chunk */
    size_t count, bytes, samples, fallback;
    bool xor ;
} enc_set;

static void enc_set_free(enc_set *e)
{
    for (size_t i = 0; i < e->count; i++)
        free(e->chunk[i]);
    free(e->chunk);
    free(e->len);
    free(e->n);
}

/* Cuts every series into 120-sample chunks and encodes them (XOR when opts is NULL). A codec
 * that declines a chunk (decimal on non-decimal data) is replaced by XOR and counted. */
static void encode_all(const dataset *d, const stc_options *opts, stc_stats *st, enc_set *e)
{
    size_t per = (d->steps + CHUNK - 1) / CHUNK, cap = per * d->n_series;
    memset(e, 0, sizeof *e);
    e->chunk = calloc(cap, sizeof *e->chunk);
    e->len = calloc(cap, sizeof *e->len);
    e->n = calloc(cap, sizeof *e->n);
    e->xor = opts == NULL;
    for (size_t i = 0; i < d->n_series; i++)
        for (size_t k = 0; k < d->steps; k += CHUNK) {
            size_t n = d->steps - k < CHUNK ? d->steps - k : CHUNK;
            const strata_sample *s = &d->s[i * d->steps + k];
            uint8_t *out = NULL;
            size_t len = 0;
            if (!opts) {
                xor_appender a;
                xor_appender_init(&a);
                for (size_t j = 0; j < n; j++)
                    xor_append(&a, s[j].t, s[j].v);
                const uint8_t *p = xor_appender_bytes(&a, &len);
                out = malloc(len);
                memcpy(out, p, len);
                xor_appender_free(&a);
            } else if (stc_encode(s, n, opts, st, &out, &len, NULL)) {
                stc_options fb = *opts;
                fb.v_allowed = 1u << STC_V_XOR;
                if (stc_encode(s, n, &fb, st, &out, &len, NULL)) abort();
                e->fallback++;
            }
            e->chunk[e->count] = out;
            e->len[e->count] = len;
            e->n[e->count] = (uint32_t)n;
            e->count++;
            e->bytes += len;
            e->samples += n;
        }
}

static strata_sample scratch[STC_MAX_SAMPLES];

/* One decode pass over every chunk; returns a checksum so nothing is optimised away. */
__attribute__((noinline)) static uint64_t decode_pass(const enc_set *e)
{
    uint64_t sum = 0;
    for (size_t c = 0; c < e->count; c++) {
        size_t n;
        int rc = e->xor ? xor_decode(e->chunk[c], e->len[c], scratch, CHUNK, &n, NULL)
                        : stc_decode(e->chunk[c], e->len[c], scratch, CHUNK, &n, NULL);
        if (rc || n != e->n[c]) abort();
        sum += (uint64_t)scratch[n - 1].t;
    }
    return sum;
}

/* The querier's way: chunk_iter over every sample. */
__attribute__((noinline)) static uint64_t iterate_pass(const enc_set *e)
{
    uint64_t sum = 0;
    for (size_t c = 0; c < e->count; c++) {
        chunk_iter it;
        chunk_iter_init(&it, e->xor ? CHUNK_ENC_XOR : CHUNK_ENC_STRATA, e->chunk[c], e->len[c]);
        int64_t t;
        double v;
        while (chunk_iter_next(&it) == 1) {
            chunk_iter_at(&it, &t, &v);
            sum += (uint64_t)t;
        }
    }
    return sum;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile_ns(const enc_set *e, int runs, bool iterate, bool fastest);

static double median_ns(const enc_set *e, int runs, bool iterate)
{
    return quantile_ns(e, runs, iterate, false);
}

/* The fastest run: for the cost model, the cost without interference from the other processes
 * on this shared machine (medians of the same runs are noisier by several tenths of a ns). */
static double fastest_ns(const enc_set *e, int runs)
{
    return quantile_ns(e, runs, false, true);
}

static double quantile_ns(const enc_set *e, int runs, bool iterate, bool fastest)
{
    double t[64];
    volatile uint64_t sink = 0;
    if (runs > 64) runs = 64;
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = now_ns();
        sink += iterate ? iterate_pass(e) : decode_pass(e);
        t[r] = (double)(now_ns() - t0) / (double)e->samples;
    }
    (void)sink;
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    return fastest ? t[0] : t[runs / 2];
}

/* Checks every chunk decodes to its samples, bit for bit. */
static void verify(const dataset *d, const enc_set *e)
{
    size_t c = 0;
    for (size_t i = 0; i < d->n_series; i++)
        for (size_t k = 0; k < d->steps; k += CHUNK, c++) {
            size_t n;
            if (stc_decode(e->chunk[c], e->len[c], scratch, CHUNK, &n, NULL) && !e->xor) abort();
            if (e->xor) continue;
            const strata_sample *s = &d->s[i * d->steps + k];
            for (size_t j = 0; j < n; j++)
                if (scratch[j].t != s[j].t || memcmp(&scratch[j].v, &s[j].v, 8)) {
                    fprintf(stderr, "mismatch in series %zu at %zu\n", i, k + j);
                    abort();
                }
        }
}

typedef struct config {
    const char *name;
    stc_options opts;
    bool xor ;
} config;

static void run_config(const dataset *d, const config *cf, int runs)
{
    stc_stats st = {0};
    enc_set e;
    uint64_t t0 = now_ns();
    encode_all(d, cf->xor ? NULL : &cf->opts, &st, &e);
    double enc = (double)(now_ns() - t0) / (double)e.samples;
    verify(d, &e);
    double dec = median_ns(&e, runs, false), it = median_ns(&e, runs, true);
    printf("%-6s %-15s %6.3f B/sample  encode %6.1f  decode %5.2f  iterate %5.2f ns/sample",
           d->name, cf->name, (double)e.bytes / (double)e.samples, enc, dec, it);
    if (e.fallback) printf("  (%zu of %zu chunks fell back to xor)", e.fallback, e.count);
    printf("\n");
    if (!cf->xor &&cf->opts.ts_allowed == 0 && cf->opts.v_allowed == 0) {
        printf("      chosen: ts");
        for (unsigned a = 1; a < STC_TS_CODECS; a++)
            printf(" %s %.1f%% (%.3f B/sample)", stc_ts_codec_name(a),
                   100.0 * (double)st.ts_chunks[a] / (double)st.chunks,
                   (double)st.ts_bytes[a] / (double)st.samples);
        printf("\n              value");
        for (unsigned b = 1; b < STC_V_CODECS; b++)
            printf(" %s %.1f%% (%.3f B/sample)", stc_value_codec_name(b),
                   100.0 * (double)st.v_chunks[b] / (double)st.chunks,
                   (double)st.v_bytes[b] / (double)st.samples);
        printf("\n");
        /* zstd over each series' chunks of the whole span, as a cold block would be */
        size_t zbytes = 0, per = (d->steps + CHUNK - 1) / CHUNK;
        for (size_t i = 0; i < e.count; i += per) {
            size_t raw = 0;
            for (size_t k = 0; k < per; k++)
                raw += e.len[i + k];
            uint8_t *region = malloc(raw), *z;
            size_t off = 0, zl;
            for (size_t k = 0; k < per; k++) {
                memcpy(region + off, e.chunk[i + k], e.len[i + k]);
                off += e.len[i + k];
            }
            if (enc_zstd_compress(region, raw, 3, &z, &zl, NULL)) abort();
            zbytes += zl < raw ? zl : raw;
            free(z);
            free(region);
        }
        printf("      zstd -3 over each series' chunks: %.3f B/sample\n",
               (double)zbytes / (double)e.samples);
        /* zstd over the run of all chunks in series order, cut into 1 MiB regions, as a cold
         * block's chunk file would be: series of one target share their timestamp sections */
        size_t total = 0;
        for (size_t c = 0; c < e.count; c++)
            total += e.len[c];
        uint8_t *all = malloc(total ? total : 1), *z;
        size_t off = 0, zl, zall = 0;
        for (size_t c = 0; c < e.count; c++) {
            memcpy(all + off, e.chunk[c], e.len[c]);
            off += e.len[c];
        }
        for (size_t r = 0; r < total; r += (size_t)1 << 20) {
            size_t n = total - r < ((size_t)1 << 20) ? total - r : ((size_t)1 << 20);
            if (enc_zstd_compress(all + r, n, 3, &z, &zl, NULL)) abort();
            zall += zl;
            free(z);
        }
        free(all);
        printf("      zstd -3 over all chunks in 1 MiB regions: %.3f B/sample\n",
               (double)zall / (double)e.samples);
    }
    enc_set_free(&e);
}

/* The selector's cost model: each codec's decode cost alone. A timestamp codec is timed with
 * constant values (a one-run RLE section, next to free); a value codec with perfectly regular
 * timestamps (an exact grid, next to free); the cost of that baseline pair is subtracted. */
static void run_costs(const dataset *d, int runs)
{
    size_t total = d->n_series * d->steps;
    dataset tsonly = *d, vonly = *d, base = *d;
    tsonly.s = malloc(total * sizeof *tsonly.s);
    vonly.s = malloc(total * sizeof *vonly.s);
    base.s = malloc(total * sizeof *base.s);
    for (size_t i = 0; i < total; i++) {
        int64_t grid = 1764000000000 + (int64_t)(i % d->steps) * 15000;
        tsonly.s[i] = (strata_sample){d->s[i].t, 0.0};
        vonly.s[i] = (strata_sample){grid, d->s[i].v};
        base.s[i] = (strata_sample){grid, 0.0};
    }
    stc_options bo = {.ts_allowed = 1u << STC_TS_GRID, .v_allowed = 1u << STC_V_RLE};
    enc_set e;
    encode_all(&base, &bo, NULL, &e);
    double b = fastest_ns(&e, runs);
    enc_set_free(&e);
    printf("%-5s decode cost per codec alone (fastest of the runs; baseline grid+rle %.2f "
           "ns/sample subtracted)\n",
           d->name, b);
    for (unsigned a = 1; a < STC_TS_CODECS; a++) {
        stc_options o = {.ts_allowed = 1u << a, .v_allowed = 1u << STC_V_RLE};
        encode_all(&tsonly, &o, NULL, &e);
        printf("      ts %-6s %6.2f ns/sample  %.3f B/sample\n", stc_ts_codec_name(a),
               fastest_ns(&e, runs) - b, (double)e.bytes / (double)e.samples);
        enc_set_free(&e);
    }
    for (unsigned v = 1; v < STC_V_CODECS; v++) {
        stc_options o = {.ts_allowed = 1u << STC_TS_GRID, .v_allowed = 1u << v};
        encode_all(&vonly, &o, NULL, &e);
        printf("      v  %-6s %6.2f ns/sample  %.3f B/sample%s\n", stc_value_codec_name(v),
               fastest_ns(&e, runs) - b, (double)e.bytes / (double)e.samples,
               e.fallback ? "  (xor where not decimal)" : "");
        enc_set_free(&e);
    }
    free(tsonly.s);
    free(vonly.s);
    free(base.s);
}

/* Writes a dataset in bench/anchorbench_dump.py's layout (series labelled by number), for
 * bench/vm_compare.py to load into VictoriaMetrics. */
static void write_dump(const dataset *d, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "bench_codecs: cannot write %s\n", path);
        return;
    }
    uint32_t hdr[2] = {(uint32_t)d->n_series, (uint32_t)d->steps};
    fwrite("SDS1", 1, 4, f);
    fwrite(hdr, 4, 2, f);
    for (size_t i = 0; i < d->n_series; i++) {
        char id[32];
        uint32_t nl = 2;
        fwrite(&nl, 4, 1, f);
        const char *kv[4] = {"__name__", "bench_series", "id", id};
        snprintf(id, sizeof id, "%s-%zu", d->name, i);
        for (int k = 0; k < 4; k++) {
            uint16_t len = (uint16_t)strlen(kv[k]);
            fwrite(&len, 2, 1, f);
            fwrite(kv[k], 1, len, f);
        }
        for (size_t k = 0; k < d->steps; k++) {
            fwrite(&d->s[i * d->steps + k].t, 8, 1, f);
            fwrite(&d->s[i * d->steps + k].v, 8, 1, f);
        }
    }
    fclose(f);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The label dictionary: every distinct name and value, sorted, as a block's symbol table holds
 * them; plain (uvarint length + bytes each, Prometheus' layout) against front coding. */
static void run_symtab(dataset *d)
{
    if (!d->n_syms) return;
    qsort(d->syms, d->n_syms, sizeof *d->syms, cmp_cstr);
    size_t u = 0, raw_refs = 0, total = d->n_syms;
    for (size_t i = 0; i < d->n_syms; i++) {
        raw_refs += strlen(d->syms[i]);
        if (!u || strcmp(d->syms[u - 1], d->syms[i]))
            d->syms[u++] = d->syms[i];
        else
            free(d->syms[i]);
    }
    d->n_syms = u;
    uint32_t *lens = malloc(u * sizeof *lens);
    size_t plain = 0;
    for (size_t i = 0; i < u; i++) {
        lens[i] = (uint32_t)strlen(d->syms[i]);
        plain += varint_len_u64(lens[i]) + lens[i];
    }
    printf("%-5s symbols: %zu distinct of %zu label strings (%.1f bytes/series as raw strings)\n",
           d->name, u, total, (double)raw_refs / (double)d->n_series);
    printf("      plain table %zu bytes = %.2f bytes/series\n", plain,
           (double)plain / (double)d->n_series);
    static const uint32_t restarts[] = {4, 16, 64};
    for (size_t r = 0; r < 3; r++) {
        uint8_t *enc;
        size_t len;
        if (symtab_encode((const char *const *)d->syms, lens, u, restarts[r], &enc, &len, NULL))
            abort();
        symtab t;
        if (symtab_open(&t, enc, len, NULL)) abort();
        double passes[5];
        for (int pass = 0; pass < 5; pass++) {
            uint64_t t0 = now_ns();
            for (uint32_t i = 0; i < u; i++) {
                uint32_t idx;
                if (symtab_find(&t, d->syms[i], lens[i], &idx) || idx != i) abort();
            }
            passes[pass] = (double)(now_ns() - t0) / (double)u;
        }
        qsort(passes, 5, sizeof passes[0], cmp_double);
        double find_ns = passes[2];
        printf("      front-coded, restart %3u: %zu bytes = %.2f bytes/series (%.0f%% of plain), "
               "find %.0f ns\n",
               restarts[r], len, (double)len / (double)d->n_series,
               100.0 * (double)len / (double)plain, find_ns);
        free(enc);
    }
    free(lens);
}

int main(int argc, char **argv)
{
    int runs = 7;
    uint64_t series = 1000;
    double hours = 4;
    uint64_t seed = 42; /* anchorbench's */
    const char *only = NULL, *load = NULL, *data = NULL, *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--series") && i + 1 < argc)
            series = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--hours") && i + 1 < argc)
            hours = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
            dump = argv[++i];
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            CHUNK = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--load") && i + 1 < argc)
            load = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_codecs [--runs N] [--series N] [--hours H] [--seed S] "
                            "[--load DUMP] [--data gen|hard|anchor] [--chunk N] [--dump PREFIX] "
                            "[--only NAME]\n");
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    dataset g = {0}, h = {0};
    if (gen_dataset(&g, series, hours, seed)) return 1;
    gen_hard(&h, &g);
    printf("%zu series x %zu samples (%.1f h at 15 s), chunks of %zu\n", g.n_series, g.steps, hours,
           CHUNK);
    static const config configs[] = {
        {"xor-prometheus", {0, 0, 0}, true},
        {"sel", {0, 0, 0}, false},
        {"sel-budget-2ns", {.max_decode_ns = 2.0, .ts_allowed = 0, .v_allowed = 0}, false},
        {"ts=dod", {.max_decode_ns = 0, .ts_allowed = 1u << STC_TS_DOD, .v_allowed = 0}, false},
        {"ts=delta", {.max_decode_ns = 0, .ts_allowed = 1u << STC_TS_DELTA, .v_allowed = 0}, false},
        {"ts=grid", {.max_decode_ns = 0, .ts_allowed = 1u << STC_TS_GRID, .v_allowed = 0}, false},
        {"v=xor", {.max_decode_ns = 0, .ts_allowed = 0, .v_allowed = 1u << STC_V_XOR}, false},
        {"v=rle", {.max_decode_ns = 0, .ts_allowed = 0, .v_allowed = 1u << STC_V_RLE}, false},
        {"v=dec", {.max_decode_ns = 0, .ts_allowed = 0, .v_allowed = 1u << STC_V_DEC}, false},
        {"v=chimp", {.max_decode_ns = 0, .ts_allowed = 0, .v_allowed = 1u << STC_V_CHIMP}, false},
    };
    dataset a = {0};
    if (load && load_dump(&a, load)) {
        fprintf(stderr, "bench_codecs: cannot read %s\n", load);
        return 1;
    }
    const dataset *sets[3] = {&g, &h, &a};
    if (dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s.gen.bin", dump);
        write_dump(&g, path);
        snprintf(path, sizeof path, "%s.hard.bin", dump);
        write_dump(&h, path);
        return 0;
    }
    for (int di = 0; di < (load ? 3 : 2); di++)
        for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++)
            if ((!only || !strcmp(only, configs[c].name)) &&
                (!data || !strcmp(data, sets[di]->name)))
                run_config(sets[di], &configs[c], runs);
    if (only && !strcmp(only, "costs"))
        for (int di = 0; di < (load ? 3 : 2); di++)
            if (!data || !strcmp(data, sets[di]->name)) run_costs(sets[di], runs);
    if (!only || !strcmp(only, "symtab")) {
        if (!data || !strcmp(data, "gen")) run_symtab(&g);
        if (load && (!data || !strcmp(data, "anchor"))) run_symtab(&a);
    }
    for (size_t i = 0; i < g.n_syms; i++)
        free(g.syms[i]);
    for (size_t i = 0; i < a.n_syms; i++)
        free(a.syms[i]);
    free(g.syms);
    free(a.syms);
    free(g.s);
    free(h.s);
    free(a.s);
    return 0;
}
