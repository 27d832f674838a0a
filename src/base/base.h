/* base.h — what every module shares: status codes, an error message carrier, logging,
 * monotonic time, checked size arithmetic. Prefix `sw_`.
 * Convention: functions return an int status (SW_OK = 0, negative = error) and results
 * through pointers; a `sw_err *` (may be NULL) receives a one-line human message. */
#ifndef SW_BASE_H
#define SW_BASE_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum sw_status {
    SW_OK = 0,
    SW_ERR_IO = -1,          /* open/read/mmap/socket failed */
    SW_ERR_FORMAT = -2,      /* malformed input (file, JSON, request) */
    SW_ERR_NOMEM = -3,       /* allocation failed */
    SW_ERR_ARG = -4,         /* bad argument from a caller or user */
    SW_ERR_UNSUPPORTED = -5, /* valid but not handled (arch, tensor type, ...) */
    SW_ERR_NOTFOUND = -6,    /* key / tensor / route absent */
    SW_ERR_TYPE = -7,        /* present but of another type */
    SW_ERR_RANGE = -8,       /* value out of range / too long */
    SW_ERR_FULL = -9,        /* capacity exhausted (queue, KV pool) */
    SW_ERR_CANCELLED = -10,
};

typedef struct sw_err {
    int code;
    char msg[512];
} sw_err;

/* Sets err (when non-NULL) to code + printf-style message; returns code. */
int sw_err_set(sw_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *sw_status_name(int code);

/* Logging to stderr with a timestamp; level from SWIFTLET_LOG (debug|info|warn|error). */
enum sw_log_level { SW_LOG_DEBUG, SW_LOG_INFO, SW_LOG_WARN, SW_LOG_ERROR };
void sw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sw_debug(...) sw_log(SW_LOG_DEBUG, __VA_ARGS__)
#define sw_info(...) sw_log(SW_LOG_INFO, __VA_ARGS__)
#define sw_warn(...) sw_log(SW_LOG_WARN, __VA_ARGS__)
#define sw_error(...) sw_log(SW_LOG_ERROR, __VA_ARGS__)

/* Monotonic clock. */
int64_t sw_now_ns(void);
double sw_now_ms(void);

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool sw_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool sw_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
int sw_read_file(const char *path, char **data, size_t *len, sw_err *err);

/* Number of worker threads for compute (SWIFTLET_THREADS, else OpenMP's default). */
int sw_n_threads(void);

#endif
