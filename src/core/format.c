/*
 * format.c: numbers as Prometheus' JSON writes them.
 *
 * Prometheus renders sample values with Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest
 * decimal that reads back to the same double, never in exponent form. We find the shortest
 * significant-digit count with %.*e round trips, then lay the digits out positionally.
 */
#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int format_float(double v, char *out, size_t len)
{
    if (isnan(v)) return snprintf(out, len, "NaN");
    if (isinf(v)) return snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    if (v == 0) return snprintf(out, len, signbit(v) ? "-0" : "0");
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e is [-]d[.ddd]e[+-]XX: collect the digits and the decimal exponent. */
    char digits[24];
    int nd = 0, neg = 0;
    const char *p = e;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    /* value = 0.d1d2d3... * 10^(exp10+1) */
    int point = exp10 + 1;
    char tmp[400];
    size_t o = 0;
    if (neg) tmp[o++] = '-';
    if (point <= 0) {
        tmp[o++] = '0';
        tmp[o++] = '.';
        for (int i = 0; i < -point; i++) tmp[o++] = '0';
        for (int i = 0; i < nd; i++) tmp[o++] = digits[i];
    } else {
        for (int i = 0; i < point; i++) tmp[o++] = i < nd ? digits[i] : '0';
        if (nd > point) {
            tmp[o++] = '.';
            for (int i = point; i < nd; i++) tmp[o++] = digits[i];
        }
    }
    tmp[o] = '\0';
    return snprintf(out, len, "%s", tmp);
}

int format_timestamp(int64_t ms, char *out, size_t len)
{
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    if (frac == 0) return snprintf(out, len, "%lld", (long long)sec);
    if (sec < 0 && frac) {
        /* Negative times: print the value itself, -1.5 not -2.500 */
        int64_t a = -ms;
        int64_t s2 = a / 1000, f2 = a % 1000;
        char fr[8];
        snprintf(fr, sizeof fr, "%03lld", (long long)f2);
        for (int i = 2; i > 0 && fr[i] == '0'; i--) fr[i] = '\0';
        return snprintf(out, len, "-%lld.%s", (long long)s2, fr);
    }
    char fr[8];
    snprintf(fr, sizeof fr, "%03lld", (long long)frac);
    for (int i = 2; i > 0 && fr[i] == '0'; i--) fr[i] = '\0';
    return snprintf(out, len, "%lld.%s", (long long)sec, fr);
}
