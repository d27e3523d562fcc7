/*
 * duration.c: durations and timestamps as Prometheus spells them, for flags and HTTP parameters.
 */
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int duration_parse(const char *s, size_t len, int64_t *ms, char *err)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000}, {"h", 3600000},
                 {"m", 60000},            {"s", 1000},           {"ms", 1}};
    if (len == 0) return strata_errf(err, STRATA_EINVAL, "empty duration string");
    if (len == 1 && s[0] == '0') {
        *ms = 0;
        return 0;
    }
    int64_t total = 0;
    size_t i = 0;
    int last_unit = -1;
    while (i < len) {
        if (s[i] < '0' || s[i] > '9') goto bad;
        int64_t n = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (n > INT64_MAX / 10) goto bad;
            n = n * 10 + (s[i++] - '0');
        }
        size_t us = i;
        while (i < len && s[i] >= 'a' && s[i] <= 'z') i++;
        size_t ul = i - us;
        int u = -1;
        for (int k = 0; k < 7; k++)
            if (strlen(units[k].unit) == ul && strncmp(units[k].unit, s + us, ul) == 0) u = k;
        if (u < 0 || u <= last_unit) goto bad;
        last_unit = u;
        if (n > INT64_MAX / units[u].ms) goto bad;
        total += n * units[u].ms;
    }
    *ms = total;
    return 0;
bad:
    return strata_errf(err, STRATA_EINVAL, "not a valid duration string: \"%.*s\"",
                       (int)(len > 64 ? 64 : len), s);
}

int api_time_parse(const char *s, int64_t *ms, char *err)
{
    char *end;
    double sec = strtod(s, &end);
    if (*s && *end == '\0' && isfinite(sec)) {
        /* Round to the millisecond the way Prometheus does (no float drift at .001). */
        *ms = (int64_t)llround(sec * 1000.0);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) return strata_errf(err, STRATA_EINVAL, "cannot parse \"%s\" to a valid timestamp", s);
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3) frac = frac * 10 + (*p - '0');
            digits++;
            p++;
        }
        for (; digits < 3; digits++) frac *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return strata_errf(err, STRATA_EINVAL, "cannot parse \"%s\" to a valid timestamp", s);
        offset = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return strata_errf(err, STRATA_EINVAL, "cannot parse \"%s\" to a valid timestamp", s);
    }
    if (*p) return strata_errf(err, STRATA_EINVAL, "cannot parse \"%s\" to a valid timestamp", s);
    int64_t secs = (int64_t)timegm(&tm) - offset;
    *ms = secs * 1000 + frac;
    return 0;
}
