/*
 * test_compact.c: compaction of many blocks through the database: 150 one-range blocks (some
 * overlapping, one sample in each duplicated) are merged level by level until no closed window
 * has two blocks left; every sample is read back exactly once, and the blocks store each once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "encoding/encoding.h"
#include "storage/block.h"
#include "storage/storage_internal.h"

#define RANGE_MS 60000
#define N_BLOCKS 150
#define N_SERIES 5
#define PER_BLOCK 4 /* samples per series per block, 15 s apart */

static double value_of(int s, int64_t t)
{
    return s * 1e6 + (double)t / 1000.0 + 0.5;
}

/* Writes block k: series s has samples at k*RANGE + i*15s; every 10th block also repeats the
 * previous block's last sample (an overlap with an identical sample). */
static void write_block(const char *dir, int k)
{
    char names[N_SERIES][8];
    label ls[N_SERIES][2];
    xor_appender app[N_SERIES];
    block_chunk_in ch[N_SERIES];
    block_series_in in[N_SERIES];
    uint64_t samples = 0;
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    for (int s = 0; s < N_SERIES; s++) {
        snprintf(names[s], sizeof names[s], "s%d", s);
        ls[s][0] = (label){"__name__", "cm", 8, 2};
        ls[s][1] = (label){"series", names[s], 6, (uint32_t)strlen(names[s])};
        assert_int_equal(xor_appender_init(&app[s]), 0);
        int64_t t0 = (int64_t)k * RANGE_MS;
        int first = (k % 10 == 0 && k > 0) ? -1 : 0;
        uint32_t n = 0;
        for (int i = first; i < PER_BLOCK; i++) {
            int64_t t = t0 + i * 15000;
            assert_int_equal(xor_append(&app[s], t, value_of(s, t)), 0);
            n++;
        }
        size_t len;
        const uint8_t *d = xor_appender_bytes(&app[s], &len);
        int64_t cmin = t0 + first * 15000, cmax = t0 + (PER_BLOCK - 1) * 15000;
        ch[s] = (block_chunk_in){cmin, cmax, CHUNK_ENC_XOR, d, (uint32_t)len, n};
        in[s] = (block_series_in){ls[s], 2, &ch[s], 1};
        samples += n;
        if (cmin < mint) mint = cmin;
        if (cmax > maxt) maxt = cmax;
    }
    char ulid[BLOCK_ULID_LEN + 1], err[STRATA_ERRMSG_SIZE] = "";
    block_write_opts o = {.mint = mint, .maxt = maxt + 1, .level = 1};
    int rc = block_write(dir, in, N_SERIES, &o, ulid, err);
    if (rc) fprintf(stderr, "block_write: %s\n", err);
    assert_int_equal(rc, 0);
    for (int s = 0; s < N_SERIES; s++)
        xor_appender_free(&app[s]);
}

static strata_db *open_db(const char *dir, bool read_only)
{
    strata_options o;
    strata_options_init(&o);
    o.read_only = read_only; /* read-only: no background flusher, so no compaction */
    o.fsync = STRATA_FSYNC_NONE;
    o.chunk_range_ms = RANGE_MS;
    strata_db *db = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = strata_open(dir, &o, &db, err);
    if (rc) fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    return db;
}

static void check_all(strata_db *db)
{
    char err[STRATA_ERRMSG_SIZE];
    for (int s = 0; s < N_SERIES; s++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", s);
        strata_label ls[2] = {{"__name__", "cm"}, {"series", name}};
        strata_sample *out;
        size_t n;
        assert_int_equal(strata_read(db, ls, 2, 0, INT64_MAX / 2, &out, &n, err), 0);
        assert_int_equal(n, (size_t)N_BLOCKS * PER_BLOCK);
        for (size_t i = 0; i < n; i++) {
            int64_t t = (int64_t)(i / PER_BLOCK) * RANGE_MS + (int64_t)(i % PER_BLOCK) * 15000;
            assert_int_equal(out[i].t, t);
            assert_true(out[i].v == value_of(s, t));
        }
        free(out);
    }
}

static void test_compact_many_blocks(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "compact"), 0);
    for (int k = 0; k < N_BLOCKS; k++)
        write_block(dir, k);
    strata_db *db = open_db(dir, true);
    block_info *bi;
    size_t nb;
    assert_int_equal(db_blocks_list(db, &bi, &nb), 0);
    free(bi);
    assert_int_equal(nb, N_BLOCKS);
    check_all(db); /* overlapping blocks are deduplicated on read */
    strata_close(db);

    /* Opened for writing, the background flusher starts compacting at once; compact here too
     * until nothing is left to merge (whoever holds flush_mu does the work). */
    db = open_db(dir, false);
    char err[STRATA_ERRMSG_SIZE] = "";
    int rounds;
    do {
        pthread_mutex_lock(&db->blocks->flush_mu);
        rounds = db_compact(db, err);
        pthread_mutex_unlock(&db->blocks->flush_mu);
        if (rounds < 0) fprintf(stderr, "compact: %s\n", err);
        assert_true(rounds >= 0);
    } while (rounds > 0);
    assert_int_equal(db_blocks_list(db, &bi, &nb), 0);
    uint64_t stored = 0;
    uint32_t top = 0;
    for (size_t i = 0; i < nb; i++) {
        stored += bi[i].num_samples;
        if (bi[i].level > top) top = bi[i].level;
        if (i) assert_true(bi[i].mint >= bi[i - 1].maxt); /* no overlaps left */
    }
    free(bi);
    /* 150 minutes: twelve 12-minute windows closed, the rest in 3-minute ones or single. */
    assert_true(nb < 20);
    assert_true(top >= 3);
    assert_int_equal(stored, (uint64_t)N_SERIES * N_BLOCKS * PER_BLOCK);
    check_all(db);
    assert_int_equal(db_blocks_verify(db, err), 0);
    strata_close(db);

    db = open_db(dir, false); /* and the result survives a reopen */
    check_all(db);
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_many_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
