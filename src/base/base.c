/* base.c — status names, error messages, logging, clock, file reading. */
#include "base/base.h"
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int sw_err_set(sw_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *sw_status_name(int code) {
    switch (code) {
    case SW_OK: return "ok";
    case SW_ERR_IO: return "io error";
    case SW_ERR_FORMAT: return "bad format";
    case SW_ERR_NOMEM: return "out of memory";
    case SW_ERR_ARG: return "bad argument";
    case SW_ERR_UNSUPPORTED: return "unsupported";
    case SW_ERR_NOTFOUND: return "not found";
    case SW_ERR_TYPE: return "wrong type";
    case SW_ERR_RANGE: return "out of range";
    case SW_ERR_FULL: return "full";
    case SW_ERR_CANCELLED: return "cancelled";
    default: return "error";
    }
}

static int log_threshold(void) {
    const char *s = getenv("SWIFTLET_LOG");
    if (!s) return SW_LOG_INFO;
    if (!strcmp(s, "debug")) return SW_LOG_DEBUG;
    if (!strcmp(s, "warn")) return SW_LOG_WARN;
    if (!strcmp(s, "error")) return SW_LOG_ERROR;
    return SW_LOG_INFO;
}

void sw_log(int level, const char *fmt, ...) {
    if (level < log_threshold()) return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s: ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

int64_t sw_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

double sw_now_ms(void) { return (double)sw_now_ns() / 1e6; }

int sw_read_file(const char *path, char **data, size_t *len, sw_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sw_err_set(err, SW_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 131072;
            char *nb = realloc(buf, ncap);
            if (!nb) { free(buf); fclose(f); return sw_err_set(err, SW_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb; cap = ncap;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r < 65536) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return sw_err_set(err, SW_ERR_IO, "%s: read error", path); }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return SW_OK;
}

int sw_n_threads(void) {
    const char *s = getenv("SWIFTLET_THREADS");
    if (s && atoi(s) > 0) return atoi(s);
    return omp_get_max_threads();
}
