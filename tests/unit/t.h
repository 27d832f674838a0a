/* t.h — the unit-test harness: every file in tests/unit is one program that calls T_CHECK
 * (and friends) and ends with `return t_done();`, which prints the closing line
 * "RESULT <name>: N passed, M failed" that tests/run.sh adds up, and returns non-zero
 * when anything failed. SHARED is the path of ../shared (tests read it in place);
 * t_shared_missing() lets a test skip with a clear message when it is absent. */
#ifndef T_H
#define T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SHARED
#define SHARED "../shared"
#endif

static int t_pass, t_fail, t_skip;

#define T_CHECK(cond, ...) do { \
    if (cond) { t_pass++; } else { t_fail++; \
        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define T_OK(cond) T_CHECK(cond, "%s", "")
#define T_EQ_INT(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
    T_CHECK(t_a_ == t_b_, "%s = %lld, %s = %lld", #a, t_a_, #b, t_b_); } while (0)
#define T_SKIP(...) do { t_skip++; fprintf(stderr, "SKIP: "); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } while (0)

static inline int t_shared_missing(void) { return access(SHARED "/README.md", R_OK) != 0; }

static inline int t_done_named(const char *name) {
    const char *base = strrchr(name, '/');
    printf("RESULT %s: %d passed, %d failed, %d skipped\n", base ? base + 1 : name, t_pass, t_fail, t_skip);
    return t_fail ? 1 : 0;
}
#define t_done() t_done_named(__FILE__)
#endif
