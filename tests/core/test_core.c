/*
 * test_core.c: labels, hashing, matchers, number formatting, durations and CRC32C.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define L(n, v) ((label){.name = (n), .value = (v), .name_len = sizeof(n) - 1, .value_len = sizeof(v) - 1})

static void test_normalize_sorts_and_drops_empty(void **state)
{
    (void)state;
    label v[] = {L("job", "api"), L("__name__", "up"), L("empty", ""), L("instance", "a:1")};
    size_t n = 4;
    label_rules r = {.names = STRATA_NAMES_UTF8, .require_sorted = false};
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(labels_normalize(v, &n, &r, err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(v[0].name, "__name__", 8);
    assert_memory_equal(v[1].name, "instance", 8);
    assert_memory_equal(v[2].name, "job", 3);
}

static void test_normalize_rejects(void **state)
{
    (void)state;
    char err[STRATA_ERRMSG_SIZE];
    label_rules sorted = {.names = STRATA_NAMES_UTF8, .require_sorted = true};
    label_rules legacy = {.names = STRATA_NAMES_LEGACY, .require_sorted = false};
    label_rules any = {.names = STRATA_NAMES_UTF8, .require_sorted = false};

    label unsorted[] = {L("b", "1"), L("a", "2")};
    size_t n = 2;
    assert_int_equal(labels_normalize(unsorted, &n, &sorted, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "not sorted"));

    label dup[] = {L("a", "1"), L("a", "2")};
    n = 2;
    assert_int_equal(labels_normalize(dup, &n, &any, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "duplicate"));
    n = 2;
    label dup2[] = {L("a", "1"), L("a", "2")};
    assert_int_equal(labels_normalize(dup2, &n, &sorted, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "duplicate"));

    label bad_utf8[] = {L("a", "\xff\xfe")};
    n = 1;
    assert_int_equal(labels_normalize(bad_utf8, &n, &any, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "UTF-8"));

    label dotted[] = {L("__name__", "my.metric"), L("label.name", "x")};
    n = 2;
    assert_int_equal(labels_normalize(dotted, &n, &any, err), 0);
    label dotted2[] = {L("__name__", "my.metric")};
    n = 1;
    assert_int_equal(labels_normalize(dotted2, &n, &legacy, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "invalid metric name"));
    label badname[] = {L("1abc", "x")};
    n = 1;
    assert_int_equal(labels_normalize(badname, &n, &legacy, err), STRATA_EINVAL);

    label empty_name[] = {L("", "x")};
    n = 1;
    assert_int_equal(labels_normalize(empty_name, &n, &any, err), STRATA_EINVAL);

    label all_empty[] = {L("a", "")};
    n = 1;
    assert_int_equal(labels_normalize(all_empty, &n, &any, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "no labels"));
}

static void test_hash_and_compare(void **state)
{
    (void)state;
    label a[] = {L("a", "bc")};
    label b[] = {L("ab", "c")};
    /* The separator keeps {a="bc"} and {ab="c"} apart. */
    assert_true(labels_hash(a, 1) != labels_hash(b, 1));
    assert_true(labels_compare(a, 1, b, 1) < 0);
    assert_int_equal(labels_compare(a, 1, a, 1), 0);
    assert_true(labels_equal(a, 1, a, 1));
    assert_false(labels_equal(a, 1, b, 1));
    label c[] = {L("a", "bc"), L("d", "e")};
    assert_true(labels_compare(a, 1, c, 2) < 0);
}

static bool m(strata_match_type t, const char *re, const char *v)
{
    matcher *mm;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(matcher_new(t, "x", 1, re, strlen(re), &mm, err), 0);
    bool r = matcher_matches(mm, v, strlen(v));
    matcher_free(mm);
    return r;
}

static void test_matchers(void **state)
{
    (void)state;
    assert_true(m(STRATA_MATCH_EQUAL, "a", "a"));
    assert_false(m(STRATA_MATCH_EQUAL, "a", "ab"));
    assert_true(m(STRATA_MATCH_NOT_EQUAL, "a", "ab"));
    assert_true(m(STRATA_MATCH_REGEX, "a.*", "abc"));
    assert_false(m(STRATA_MATCH_REGEX, "b", "abc")); /* anchored */
    assert_true(m(STRATA_MATCH_REGEX, "500|502", "502"));
    assert_false(m(STRATA_MATCH_REGEX, "500|502", "5020"));
    assert_true(m(STRATA_MATCH_NOT_REGEX, "500|502", "404"));
    assert_true(m(STRATA_MATCH_REGEX, ".*", ""));
    assert_true(m(STRATA_MATCH_REGEX, "a.b", "a\nb")); /* dot matches newline */
    assert_true(m(STRATA_MATCH_REGEX, "5..", "503"));
    matcher *mm;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(matcher_new(STRATA_MATCH_REGEX, "x", 1, "a(", 2, &mm, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "invalid regular expression"));
    assert_int_equal(matcher_new(STRATA_MATCH_REGEX, "x", 1, ".+", 2, &mm, err), 0);
    assert_false(mm->matches_empty);
    matcher_free(mm);
    assert_int_equal(matcher_new(STRATA_MATCH_NOT_EQUAL, "x", 1, "", 0, &mm, err), 0);
    assert_false(mm->matches_empty);
    matcher_free(mm);
}

static const char *ff(double v)
{
    static char b[400]; /* test-only scratch */
    format_float(v, b, sizeof b);
    return b;
}

static void test_format_float(void **state)
{
    (void)state;
    assert_string_equal(ff(1), "1");
    assert_string_equal(ff(0.1), "0.1");
    assert_string_equal(ff(-2.5), "-2.5");
    assert_string_equal(ff(1e21), "1e+21");
    assert_string_equal(ff(9.99e20), "999000000000000000000");
    assert_string_equal(ff(1e-7), "1e-07");
    assert_string_equal(ff(0.000001), "0.000001");
    assert_string_equal(ff(9.99e-7), "9.99e-07");
    assert_string_equal(ff(5e-324), "5e-324");
    assert_string_equal(ff(1.7976931348623157e308), "1.7976931348623157e+308");
    assert_string_equal(ff(-1e25), "-1e+25");
    assert_string_equal(ff(123456789.123), "123456789.123");
    assert_string_equal(ff(0.30000000000000004), "0.30000000000000004");
    assert_string_equal(ff(NAN), "NaN");
    assert_string_equal(ff(INFINITY), "+Inf");
    assert_string_equal(ff(-INFINITY), "-Inf");
    assert_string_equal(ff(0), "0");
    assert_string_equal(ff(-0.0), "-0");
    char b[64];
    format_timestamp(1435781451781, b, sizeof b);
    assert_string_equal(b, "1435781451.781");
    format_timestamp(1000, b, sizeof b);
    assert_string_equal(b, "1");
    format_timestamp(1500, b, sizeof b);
    assert_string_equal(b, "1.500");
    format_timestamp(1700000001120, b, sizeof b);
    assert_string_equal(b, "1700000001.120");
    format_timestamp(1005, b, sizeof b);
    assert_string_equal(b, "1.005");
    format_timestamp(-1500, b, sizeof b);
    assert_string_equal(b, "-1.500");
}

static void test_durations_and_times(void **state)
{
    (void)state;
    int64_t ms;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(duration_parse("1h30m", 5, &ms, err), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(duration_parse("500ms", 5, &ms, err), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(duration_parse("1y", 2, &ms, err), 0);
    assert_int_equal(ms, 365LL * 86400000);
    assert_int_equal(duration_parse("1m1h", 4, &ms, err), STRATA_EINVAL);
    assert_int_equal(duration_parse("5x", 2, &ms, err), STRATA_EINVAL);
    assert_int_equal(duration_parse("", 0, &ms, err), STRATA_EINVAL);
    assert_int_equal(api_time_parse("1435781451.781", &ms, err), 0);
    assert_int_equal(ms, 1435781451781);
    assert_int_equal(api_time_parse("2015-07-01T20:10:51.781Z", &ms, err), 0);
    assert_int_equal(ms, 1435781451781);
    assert_int_equal(api_time_parse("2015-07-01T22:10:51.781+02:00", &ms, err), 0);
    assert_int_equal(ms, 1435781451781);
    assert_int_equal(api_time_parse("yesterday", &ms, err), STRATA_EINVAL);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
    /* Incremental equals one-shot. */
    uint32_t c = crc32c(0, "1234", 4);
    assert_int_equal(crc32c(c, "56789", 5), 0xe3069283u);
}

static void test_symtab_and_arena(void **state)
{
    (void)state;
    sym_table *t = sym_table_new();
    const sym *a = sym_intern(t, "job", 3);
    const sym *b = sym_intern(t, "job", 3);
    const sym *c = sym_intern(t, "jobs", 4);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_string_equal(a->str, "job");
    for (int i = 0; i < 10000; i++) {
        char s[16];
        int n = snprintf(s, sizeof s, "v%d", i);
        assert_non_null(sym_intern(t, s, (uint32_t)n));
    }
    assert_int_equal(sym_table_count(t), 10002);
    sym_table_free(t);

    arena ar;
    arena_init(&ar, 1024);
    for (int i = 0; i < 1000; i++) {
        char *p = arena_alloc(&ar, 100);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 1, 100);
    }
    arena_reset(&ar);
    assert_non_null(arena_strndup(&ar, "hello", 5));
    arena_free(&ar);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_sorts_and_drops_empty),
        cmocka_unit_test(test_normalize_rejects),
        cmocka_unit_test(test_hash_and_compare),
        cmocka_unit_test(test_matchers),
        cmocka_unit_test(test_format_float),
        cmocka_unit_test(test_durations_and_times),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_symtab_and_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
