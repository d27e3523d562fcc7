/*
 * testutil.h: small helpers shared by the unit tests (scratch directories).
 */
#ifndef STRATA_TESTUTIL_H
#define STRATA_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Makes a fresh directory under $STRATA_TEST_TMP (or /tmp) and writes its path into out. */
static inline int test_tmpdir(char *out, size_t len, const char *name)
{
    const char *base = getenv("STRATA_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    snprintf(out, len, "%s/%s-XXXXXX", base, name);
    return mkdtemp(out) ? 0 : -1;
}

/* Removes a directory tree (test scratch only). */
static inline void test_rmtree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

#endif
