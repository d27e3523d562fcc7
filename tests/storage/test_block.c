/*
 * test_block.c: the block writer and reader: round trip of series, chunks and postings, matcher
 * selection, label names and values, and damage detection (every kind answers STRATA_ECORRUPT).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "encoding/encoding.h"
#include "storage/block.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#define N_SERIES 50
#define N_CHUNKS 3
#define PER_CHUNK 100

typedef struct fixture {
    char dir[512];
    char ulid[BLOCK_ULID_LEN + 1];
    xor_appender app[N_SERIES][N_CHUNKS];
    block_chunk_in chunks[N_SERIES][N_CHUNKS];
    label labels[N_SERIES][3];
    char names[N_SERIES][3][32];
    block_series_in series[N_SERIES];
} fixture;

static double value_of(int s, int i)
{
    return s * 1000.0 + i * 0.5;
}

/* Series s: {__name__="metric_<s%5>", inst="i<s>", job="j<s%3>"}, chunks of PER_CHUNK samples
 * every 15 s. Label sets are built in sorted order of the names, then series sorted. */
static int cmp_series(const void *a, const void *b)
{
    const block_series_in *x = a, *y = b;
    return labels_compare(x->labels, x->n_labels, y->labels, y->n_labels);
}

static void build(fixture *f)
{
    for (int s = 0; s < N_SERIES; s++) {
        snprintf(f->names[s][0], 32, "metric_%d", s % 5);
        snprintf(f->names[s][1], 32, "i%02d", s);
        snprintf(f->names[s][2], 32, "j%d", s % 3);
        const char *ln[3] = {"__name__", "inst", "job"};
        for (int k = 0; k < 3; k++)
            f->labels[s][k] = (label){.name = ln[k],
                                      .value = f->names[s][k],
                                      .name_len = (uint32_t)strlen(ln[k]),
                                      .value_len = (uint32_t)strlen(f->names[s][k])};
        for (int c = 0; c < N_CHUNKS; c++) {
            xor_appender *a = &f->app[s][c];
            assert_int_equal(xor_appender_init(a), 0);
            int64_t t0 = (int64_t)c * PER_CHUNK * 15000;
            for (int i = 0; i < PER_CHUNK; i++)
                assert_int_equal(xor_append(a, t0 + i * 15000, value_of(s, c * PER_CHUNK + i)), 0);
            size_t len;
            const uint8_t *d = xor_appender_bytes(a, &len);
            f->chunks[s][c] = (block_chunk_in){.mint = t0,
                                               .maxt = t0 + (PER_CHUNK - 1) * 15000,
                                               .encoding = CHUNK_ENC_XOR,
                                               .data = d,
                                               .len = (uint32_t)len,
                                               .samples = PER_CHUNK};
        }
        f->series[s] = (block_series_in){f->labels[s], 3, f->chunks[s], N_CHUNKS};
    }
    qsort(f->series, N_SERIES, sizeof f->series[0], cmp_series);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || test_tmpdir(f->dir, sizeof f->dir, "block")) return -1;
    build(f);
    char err[STRATA_ERRMSG_SIZE] = "";
    block_write_opts o = {.mint = 0, .maxt = N_CHUNKS * PER_CHUNK * 15000, .level = 1};
    int rc = block_write(f->dir, f->series, N_SERIES, &o, f->ulid, err);
    if (rc) fprintf(stderr, "block_write: %s\n", err);
    *state = f;
    return rc;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int s = 0; s < N_SERIES; s++)
        for (int c = 0; c < N_CHUNKS; c++)
            xor_appender_free(&f->app[s][c]);
    test_rmtree(f->dir);
    free(f);
    return 0;
}

static block *open_block(fixture *f, sym_table *syms, int want)
{
    char path[1024], err[STRATA_ERRMSG_SIZE] = "";
    snprintf(path, sizeof path, "%s/%s", f->dir, f->ulid);
    block *b = NULL;
    int rc = block_open(path, syms, &b, err);
    if (rc != want) fprintf(stderr, "block_open: %d %s\n", rc, err);
    assert_int_equal(rc, want);
    return b;
}

static void test_roundtrip(void **state)
{
    fixture *f = *state;
    sym_table *syms = sym_table_new();
    block *b = open_block(f, syms, 0);
    const block_info *bi = block_get_info(b);
    assert_string_equal(bi->ulid, f->ulid);
    assert_int_equal(bi->num_series, N_SERIES);
    assert_int_equal(bi->num_samples, N_SERIES * N_CHUNKS * PER_CHUNK);
    assert_int_equal(bi->num_chunks, N_SERIES * N_CHUNKS);
    char err[STRATA_ERRMSG_SIZE] = "";
    assert_int_equal(block_verify(b, err), 0);

    roaring_bitmap_t *all;
    assert_int_equal(block_select(b, NULL, 0, &all, err), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(all), N_SERIES);
    roaring_uint32_iterator_t *it = roaring_create_iterator(all);
    size_t k = 0;
    strata_sample *out = malloc(PER_CHUNK * sizeof *out);
    for (; it->has_value; roaring_advance_uint32_iterator(it), k++) {
        label *ls;
        uint32_t nl;
        block_chunk_meta *cs;
        size_t nc;
        assert_int_equal(block_series(b, it->current_value, &ls, &nl, &cs, &nc, err), 0);
        /* Ids ascend in label order: the k-th id is the k-th series written. */
        assert_true(labels_equal(ls, nl, f->series[k].labels, f->series[k].n_labels));
        assert_int_equal(nc, N_CHUNKS);
        for (size_t c = 0; c < nc; c++) {
            assert_int_equal(cs[c].mint, f->series[k].chunks[c].mint);
            assert_int_equal(cs[c].maxt, f->series[k].chunks[c].maxt);
            uint8_t enc;
            const uint8_t *d;
            uint32_t len;
            assert_int_equal(block_chunk(b, cs[c].ref, &enc, &d, &len, err), 0);
            assert_int_equal(enc, CHUNK_ENC_XOR);
            assert_int_equal(len, f->series[k].chunks[c].len);
            assert_memory_equal(d, f->series[k].chunks[c].data, len);
            size_t n;
            assert_int_equal(chunk_codec_get(enc)->decode(d, len, out, PER_CHUNK, &n, err), 0);
            assert_int_equal(n, PER_CHUNK);
        }
        free(ls);
        free(cs);
    }
    free(out);
    assert_int_equal(k, N_SERIES);
    roaring_free_uint32_iterator(it);
    roaring_bitmap_free(all);

    /* Matchers: job="j1" and __name__=~"metric_[12]" and inst!="i01". */
    matcher *ms[3];
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "job", 3, "j1", 2, &ms[0], err), 0);
    assert_int_equal(matcher_new(STRATA_MATCH_REGEX, "__name__", 8, "metric_[12]", 11, &ms[1], err),
                     0);
    assert_int_equal(matcher_new(STRATA_MATCH_NOT_EQUAL, "inst", 4, "i01", 3, &ms[2], err), 0);
    roaring_bitmap_t *sel;
    assert_int_equal(block_select(b, (const matcher *const *)ms, 3, &sel, err), 0);
    size_t want = 0;
    for (int s = 0; s < N_SERIES; s++)
        if (s % 3 == 1 && (s % 5 == 1 || s % 5 == 2) && s != 1) want++;
    assert_int_equal(roaring_bitmap_get_cardinality(sel), want);
    roaring_bitmap_free(sel);
    /* A label no series has, with a matcher matching the empty string: every series. */
    matcher *absent;
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "nope", 4, "", 0, &absent, err), 0);
    assert_int_equal(block_select(b, (const matcher *const *)&absent, 1, &sel, err), 0);
    assert_int_equal(roaring_bitmap_get_cardinality(sel), N_SERIES);
    roaring_bitmap_free(sel);
    matcher_free(absent);
    for (int i = 0; i < 3; i++)
        matcher_free(ms[i]);

    const sym **v;
    size_t n;
    assert_int_equal(block_label_names(b, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0]->str, "__name__");
    assert_string_equal(v[2]->str, "job");
    free(v);
    assert_int_equal(block_label_values(b, "job", &v, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[1]->str, "j1");
    free(v);
    block_close(b);
    sym_table_free(syms);
}

/* Flips one byte of a file of the block (a copy of it) and expects the reader to refuse. */
static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    if (off < 0) off += size;
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void test_damage_detected(void **state)
{
    fixture *f = *state;
    char path[1024], err[STRATA_ERRMSG_SIZE];
    /* Damage inside a chunk: the block opens, the chunk read fails with its location. */
    snprintf(path, sizeof path, "%s/%s/chunks/000001", f->dir, f->ulid);
    flip_byte(path, 20);
    sym_table *syms = sym_table_new();
    block *b = open_block(f, syms, 0);
    assert_int_equal(block_verify(b, err), STRATA_ECORRUPT);
    assert_non_null(strstr(err, "chunk checksum mismatch"));
    block_close(b);
    flip_byte(path, 20);

    /* The TOC, the symbol table and the postings offset table are checked on open. */
    snprintf(path, sizeof path, "%s/%s/index", f->dir, f->ulid);
    long offsets[] = {-10, 12, -60};
    for (size_t i = 0; i < 3; i++) {
        flip_byte(path, offsets[i]);
        open_block(f, syms, STRATA_ECORRUPT);
        flip_byte(path, offsets[i]);
    }
    /* A series entry: found when the series is read. */
    b = open_block(f, syms, 0);
    block_close(b);
    roaring_bitmap_t *all;
    b = open_block(f, syms, 0);
    assert_int_equal(block_select(b, NULL, 0, &all, err), 0);
    uint32_t first = roaring_bitmap_minimum(all);
    roaring_bitmap_free(all);
    block_close(b);
    flip_byte(path, (long)first * 16 + 3);
    b = open_block(f, syms, 0);
    assert_int_equal(block_verify(b, err), STRATA_ECORRUPT);
    assert_non_null(strstr(err, "series checksum mismatch"));
    block_close(b);
    flip_byte(path, (long)first * 16 + 3);
    b = open_block(f, syms, 0);
    assert_int_equal(block_verify(b, err), 0);
    block_close(b);

    /* A truncated index or missing meta.json. */
    snprintf(path, sizeof path, "%s/%s/meta.json", f->dir, f->ulid);
    char moved[1100];
    snprintf(moved, sizeof moved, "%s.bak", path);
    assert_int_equal(rename(path, moved), 0);
    open_block(f, syms, STRATA_ECORRUPT);
    assert_int_equal(rename(moved, path), 0);
    sym_table_free(syms);
}

static void test_unsorted_rejected(void **state)
{
    fixture *f = *state;
    block_series_in two[2] = {f->series[1], f->series[0]};
    char ulid[BLOCK_ULID_LEN + 1], err[STRATA_ERRMSG_SIZE];
    block_write_opts o = {.mint = 0, .maxt = 1};
    assert_int_equal(block_write(f->dir, two, 2, &o, ulid, err), STRATA_EINVAL);
    /* Nothing but the fixture's block is left behind. */
    DIR *d = opendir(f->dir);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') entries++;
    closedir(d);
    assert_int_equal(entries, 1);
}

static void test_tombstones(void **state)
{
    fixture *f = *state;
    sym_table *syms = sym_table_new();
    block *b = open_block(f, syms, 0);
    char err[STRATA_ERRMSG_SIZE];
    roaring_bitmap_t *all;
    assert_int_equal(block_select(b, NULL, 0, &all, err), 0);
    uint32_t a = roaring_bitmap_minimum(all), z = roaring_bitmap_maximum(all);
    roaring_bitmap_free(all);
    block_tombstone add[] = {{z, 100, 200}, {a, 5000, 6000}, {a, 0, 10}};
    assert_int_equal(block_add_tombstones(b, add, 3, err), 0);
    block_close(b);

    b = open_block(f, syms, 0);
    assert_int_equal(block_tombstone_count(b), 3);
    size_t n;
    const block_tombstone *t = block_tombstones(b, a, &n);
    assert_int_equal(n, 2);
    assert_int_equal(t[0].mint, 0); /* sorted by mint */
    assert_true(block_tombstoned(t, n, 5500));
    assert_false(block_tombstoned(t, n, 4999));
    t = block_tombstones(b, z, &n);
    assert_int_equal(n, 1);
    assert_null(block_tombstones(b, a + 1, &n));
    assert_int_equal(n, 0);
    block_close(b);

    /* A damaged tombstones file refuses the block. */
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/tombstones", f->dir, f->ulid);
    flip_byte(path, 6);
    open_block(f, syms, STRATA_ECORRUPT);
    sym_table_free(syms);
}

/* A series entry whose length varint claims nearly 2^64 bytes: refused, not wrapped around. */
static void test_huge_series_length(void **state)
{
    fixture *f = *state;
    sym_table *syms = sym_table_new();
    block *b = open_block(f, syms, 0);
    char err[STRATA_ERRMSG_SIZE];
    roaring_bitmap_t *all;
    assert_int_equal(block_select(b, NULL, 0, &all, err), 0);
    uint32_t id = roaring_bitmap_minimum(all);
    roaring_bitmap_free(all);
    block_close(b);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/index", f->dir, f->ulid);
    int fd = open(path, O_RDWR);
    uint8_t huge[10] = {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(pwrite(fd, huge, sizeof huge, (off_t)id * 16), (ssize_t)sizeof huge);
    close(fd);
    b = open_block(f, syms, 0);
    label *ls;
    uint32_t nl;
    block_chunk_meta *cs;
    size_t nc;
    assert_int_equal(block_series(b, id, &ls, &nl, &cs, &nc, err), STRATA_ECORRUPT);
    assert_non_null(strstr(err, "runs past"));
    block_close(b);
    sym_table_free(syms);
}

static void test_ulid(void **state)
{
    (void)state;
    char a[BLOCK_ULID_LEN + 1], b[BLOCK_ULID_LEN + 1];
    assert_int_equal(block_ulid_new(1469918176385, a), 0);
    /* The time part of the ULID spec's example timestamp. */
    assert_memory_equal(a, "01ARYZ6S41", 10);
    assert_int_equal(block_ulid_new(1469918176385, b), 0);
    assert_true(strcmp(a, b) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsorted_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_series_length, setup, teardown),
        cmocka_unit_test(test_ulid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
