/*
 * test_tiers.c: the cold tier through the database: blocks older than cold_after move to the cold
 * directory (adaptive chunks, zstd regions), every sample reads back bit-exact before and after a
 * reopen, segments span several regions, and damage to a cold segment (its table or a region) is
 * reported as STRATA_ECORRUPT, never a crash or wrong data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "encoding/encoding.h"
#include "storage/block.h"
#include "storage/storage_internal.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#define RANGE_MS 3600000
#define N_BLOCKS 4
#define N_SERIES 24
#define PER_SERIES 1800 /* per block: one sample every 2 s */

/* Values of several shapes (counters, decimals, noise), so the selector picks several codecs. */
static double value_of(int s, int64_t t)
{
    uint64_t h = (uint64_t)t * 0x9E3779B97F4A7C15ull ^ (uint64_t)s * 0xC2B2AE3D27D4EB4Full;
    switch (s % 4) {
    case 0:
        return (double)(t / 2000);
    case 1:
        return (double)(h % 10000) / 100.0;
    case 2:
        return 42.0;
    default: {
        double v;
        memcpy(&v, &h, sizeof v);
        return v != v ? 0.25 : v; /* NaN payloads compare unequal; keep the check simple */
    }
    }
}

static void write_block(const char *dir, int k)
{
    char names[N_SERIES][8];
    label ls[N_SERIES][2];
    xor_appender app[N_SERIES][PER_SERIES / 120];
    block_chunk_in ch[N_SERIES][PER_SERIES / 120];
    block_series_in in[N_SERIES];
    int64_t t0 = (int64_t)k * RANGE_MS;
    for (int s = 0; s < N_SERIES; s++) {
        snprintf(names[s], sizeof names[s], "s%02d", s);
        ls[s][0] = (label){"__name__", "ct", 8, 2};
        ls[s][1] = (label){"series", names[s], 6, (uint32_t)strlen(names[s])};
        for (int c = 0; c < PER_SERIES / 120; c++) {
            assert_int_equal(xor_appender_init(&app[s][c]), 0);
            for (int i = 0; i < 120; i++) {
                int64_t t = t0 + (int64_t)(c * 120 + i) * 2000;
                assert_int_equal(xor_append(&app[s][c], t, value_of(s, t)), 0);
            }
            size_t len;
            const uint8_t *d = xor_appender_bytes(&app[s][c], &len);
            ch[s][c] = (block_chunk_in){t0 + (int64_t)c * 240000,
                                        t0 + (int64_t)(c * 120 + 119) * 2000,
                                        CHUNK_ENC_XOR,
                                        d,
                                        (uint32_t)len,
                                        120};
        }
        in[s] = (block_series_in){ls[s], 2, ch[s], PER_SERIES / 120};
    }
    char ulid[BLOCK_ULID_LEN + 1], err[STRATA_ERRMSG_SIZE] = "";
    block_write_opts o = {.mint = t0, .maxt = t0 + RANGE_MS, .level = 1};
    int rc = block_write(dir, in, N_SERIES, &o, ulid, err);
    if (rc) fprintf(stderr, "block_write: %s\n", err);
    assert_int_equal(rc, 0);
    for (int s = 0; s < N_SERIES; s++)
        for (int c = 0; c < PER_SERIES / 120; c++)
            xor_appender_free(&app[s][c]);
}

static int open_db(const char *dir, const char *cold, bool read_only, strata_db **db)
{
    strata_options o;
    strata_options_init(&o);
    o.read_only = read_only;
    o.fsync = STRATA_FSYNC_NONE;
    o.chunk_range_ms = RANGE_MS;
    o.cold_dir = cold;
    o.cold_after_ms = RANGE_MS; /* all but the newest block */
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = strata_open(dir, &o, db, err);
    if (rc) fprintf(stderr, "open: %s\n", err);
    return rc;
}

static int check_all(strata_db *db)
{
    char err[STRATA_ERRMSG_SIZE];
    for (int s = 0; s < N_SERIES; s++) {
        char name[8];
        snprintf(name, sizeof name, "s%02d", s);
        strata_label ls[2] = {{"__name__", "ct"}, {"series", name}};
        strata_sample *out;
        size_t n;
        int rc = strata_read(db, ls, 2, 0, INT64_MAX / 2, &out, &n, err);
        if (rc) return rc;
        assert_int_equal(n, (size_t)N_BLOCKS * PER_SERIES);
        for (size_t i = 0; i < n; i++) {
            int64_t t = (int64_t)(i / PER_SERIES) * RANGE_MS + (int64_t)(i % PER_SERIES) * 2000;
            assert_int_equal(out[i].t, t);
            double want = value_of(s, t);
            assert_memory_equal(&out[i].v, &want, sizeof want);
        }
        free(out);
    }
    return 0;
}

static void count_tiers(strata_db *db, size_t *warm, size_t *cold)
{
    block_info *bi;
    size_t nb;
    assert_int_equal(db_blocks_list(db, &bi, &nb), 0);
    *warm = *cold = 0;
    for (size_t i = 0; i < nb; i++)
        (*(bi[i].cold ? cold : warm))++;
    free(bi);
}

/* The path of the first cold block's first chunk segment. */
static void cold_segment(const char *cold, char *out, size_t len)
{
    DIR *d = opendir(cold);
    assert_non_null(d);
    struct dirent *e;
    out[0] = 0;
    while ((e = readdir(d)))
        if (strlen(e->d_name) == BLOCK_ULID_LEN) {
            snprintf(out, len, "%s/%s/chunks/000001", cold, e->d_name);
            break;
        }
    closedir(d);
    assert_true(out[0]);
}

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, off, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void setup_cold(char *dir, size_t dl, char *cold, size_t cl, strata_db **db)
{
    assert_int_equal(test_tmpdir(dir, dl, "tiers"), 0);
    snprintf(cold, cl, "%s-cold", dir);
    for (int k = 0; k < N_BLOCKS; k++)
        write_block(dir, k);
    assert_int_equal(open_db(dir, cold, false, db), 0);
    char err[STRATA_ERRMSG_SIZE] = "";
    pthread_mutex_lock(&(*db)->blocks->flush_mu);
    int moved = db_tiers_demote(*db, err);
    pthread_mutex_unlock(&(*db)->blocks->flush_mu);
    if (moved < 0) fprintf(stderr, "demote: %s\n", err);
    /* The background flusher's first round may have moved some already. */
    assert_true(moved >= 0);
}

static void test_cold_roundtrip(void **state)
{
    (void)state;
    char dir[512], cold[600];
    strata_db *db;
    setup_cold(dir, sizeof dir, cold, sizeof cold, &db);
    size_t warm, cn;
    count_tiers(db, &warm, &cn);
    assert_int_equal(warm, 1);
    /* The background flusher may compact the old blocks into one before they go cold: what
     * must hold is that all of their samples are in the cold tier (checked below). */
    assert_true(cn >= 1 && cn <= N_BLOCKS - 1);
    size_t cold_blocks = cn;
    assert_int_equal(check_all(db), 0);
    char err[STRATA_ERRMSG_SIZE] = "";
    assert_int_equal(db_blocks_verify(db, err), 0);
    db_tier_stats tw, tc;
    db_tiers_stats(db, &tw, &tc);
    assert_int_equal(tc.samples, (uint64_t)(N_BLOCKS - 1) * N_SERIES * PER_SERIES);
    assert_true((double)tc.bytes / (double)tc.samples < (double)tw.bytes / (double)tw.samples);
    stc_stats cs;
    db_codec_stats(db, &cs);
    assert_int_equal(cs.samples, tc.samples);
    strata_close(db);

    /* The segment spans several regions (reads decompress one of them). */
    char seg[1200];
    cold_segment(cold, seg, sizeof seg);
    FILE *f = fopen(seg, "rb");
    uint8_t hdr[16];
    assert_int_equal(fread(hdr, 1, 16, f), 16);
    fclose(f);
    assert_int_equal(be32_get(hdr), BLOCK_COLD_MAGIC);
    assert_true(be32_get(hdr + 12) >= 2);

    assert_int_equal(open_db(dir, cold, false, &db), 0);
    count_tiers(db, &warm, &cn);
    assert_int_equal(cn, cold_blocks);
    assert_int_equal(check_all(db), 0);
    strata_close(db);
    /* Without --cold-dir the cold blocks are simply not there (and not deleted). */
    assert_int_equal(open_db(dir, NULL, true, &db), 0);
    count_tiers(db, &warm, &cn);
    assert_int_equal(warm + cn, 1);
    strata_close(db);
    test_rmtree(dir);
    test_rmtree(cold);
}

static void *reader_main(void *arg)
{
    return (void *)(intptr_t)check_all(arg);
}

/* Readers racing for the same regions right after an open: each region is filled once (the
 * losers free their copies) and every reader sees every sample. */
static void test_cold_concurrent_reads(void **state)
{
    (void)state;
    char dir[512], cold[600];
    strata_db *db;
    setup_cold(dir, sizeof dir, cold, sizeof cold, &db);
    strata_close(db);
    assert_int_equal(open_db(dir, cold, true, &db), 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, db), 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_int_equal((intptr_t)rc, 0);
    }
    strata_close(db);
    test_rmtree(dir);
    test_rmtree(cold);
}

static void test_cold_damage(void **state)
{
    (void)state;
    char dir[512], cold[600], seg[1200];
    strata_db *db;
    setup_cold(dir, sizeof dir, cold, sizeof cold, &db);
    strata_close(db);
    cold_segment(cold, seg, sizeof seg);
    /* A region's bytes: the block opens, reads of that region answer STRATA_ECORRUPT. */
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    flip_byte(seg, (long)st.st_size - 20);
    assert_int_equal(open_db(dir, cold, true, &db), 0);
    assert_int_equal(check_all(db), STRATA_ECORRUPT);
    strata_close(db);
    /* The region table: the open refuses the block. */
    flip_byte(seg, 20);
    assert_int_not_equal(open_db(dir, cold, true, &db), 0);
    test_rmtree(dir);
    test_rmtree(cold);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_roundtrip),
        cmocka_unit_test(test_cold_concurrent_reads),
        cmocka_unit_test(test_cold_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
