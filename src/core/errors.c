/*
 * errors.c: status names, error messages and the one logging call.
 *
 * Errors travel as int status codes; the sentence a user reads travels in a caller-owned buffer of
 * STRATA_ERRMSG_SIZE bytes, so no error state lives anywhere global.
 */
#include "core/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *strata_strerror(int status)
{
    switch (status) {
    case STRATA_OK: return "STRATA_OK";
    case STRATA_EINVAL: return "STRATA_EINVAL";
    case STRATA_ENOMEM: return "STRATA_ENOMEM";
    case STRATA_EIO: return "STRATA_EIO";
    case STRATA_ENOTFOUND: return "STRATA_ENOTFOUND";
    case STRATA_EOUTOFORDER: return "STRATA_EOUTOFORDER";
    case STRATA_EDUPLICATE: return "STRATA_EDUPLICATE";
    case STRATA_ECORRUPT: return "STRATA_ECORRUPT";
    case STRATA_ELIMIT: return "STRATA_ELIMIT";
    case STRATA_ETIMEOUT: return "STRATA_ETIMEOUT";
    case STRATA_EPARSE: return "STRATA_EPARSE";
    case STRATA_EUNSUPPORTED: return "STRATA_EUNSUPPORTED";
    case STRATA_ECLOSED: return "STRATA_ECLOSED";
    case STRATA_EEXEC: return "STRATA_EEXEC";
    default: return "STRATA_E(unknown)";
    }
}

int strata_errf(char *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, STRATA_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return code;
}

void strata_err_prefix(char *err, const char *fmt, ...)
{
    if (!err) return;
    char old[STRATA_ERRMSG_SIZE];
    memcpy(old, err, sizeof old);
    old[sizeof old - 1] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, STRATA_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
    if (n >= 0 && n < STRATA_ERRMSG_SIZE) snprintf(err + n, STRATA_ERRMSG_SIZE - (size_t)n, "%s", old);
}

void strata_log(strata_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One fprintf per line so concurrent lines do not interleave. */
    fprintf(stderr, "ts=%s.%03ldZ level=%s msg=\"%s\"\n", ts, now.tv_nsec / 1000000L,
            names[level < 0 || level > LOG_ERROR ? LOG_INFO : level], msg);
}

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
