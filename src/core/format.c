/*
 * format.c: numbers as Prometheus' JSON writes them.
 *
 * Prometheus renders sample values as Go's encoding/json does: strconv.AppendFloat with the
 * shortest digits that read back to the same double, in 'f' form, or in 'e' form ("1e-07",
 * "1.5e+22") when the magnitude is below 1e-6 or at least 1e21. We find the shortest
 * significant-digit count with %.*e round trips, then lay the digits out in the right form.
 * Timestamps are seconds with exactly three decimals when there is a fraction ("1.120").
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
    double av = fabs(v);
    if (av < 1e-6 || av >= 1e21) {
        /* Go's 'e' form: d[.ddd]e±XX, at least two exponent digits. */
        char tmpe[64];
        size_t o = 0;
        if (neg) tmpe[o++] = '-';
        tmpe[o++] = digits[0];
        if (nd > 1) {
            tmpe[o++] = '.';
            for (int i = 1; i < nd; i++) tmpe[o++] = digits[i];
        }
        tmpe[o] = '\0';
        return snprintf(out, len, "%se%c%02d", tmpe, exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    }
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
    /* As Prometheus' MarshalTimestamp: sign, whole seconds, then ".mmm" when not whole. */
    const char *sign = ms < 0 ? "-" : "";
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (a % 1000 == 0) return snprintf(out, len, "%s%llu", sign, (unsigned long long)(a / 1000));
    return snprintf(out, len, "%s%llu.%03llu", sign, (unsigned long long)(a / 1000),
                    (unsigned long long)(a % 1000));
}
