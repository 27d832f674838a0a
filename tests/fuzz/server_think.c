/* server_think.c — libFuzzer target for the reasoning splitter (api_think.c). The first
 * byte picks enabled/open and a piece-size pattern; the rest is model output. Checks:
 * the result of feeding it whole equals the result of feeding it in uneven pieces; the
 * content is a suffix of the input (the input itself when no think block starts it, or
 * when splitting is off); the reasoning is a substring of the input; nothing is held
 * back after the flush. */
#include "server/server.h"
#include <stdlib.h>
#include <string.h>

static void run(bool enabled, bool open, const char *s, size_t n, unsigned step0, api_buf *r, api_buf *c) {
    api_think t;
    api_think_init(&t, enabled, open);
    for (size_t i = 0, step = step0; i < n; i += step, step = step % 11 + 1)
        if (api_think_feed(&t, s + i, i + step <= n ? step : n - i, r, c)) abort();
    if (api_think_flush(&t, r, c) || t.held.len) abort();
    api_think_free(&t);
}

static bool eq(const api_buf *a, const api_buf *b) { return a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len)); }

static bool starts_think(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
    return n - i >= 7 && !memcmp(s + i, "<think>", 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool enabled = data[0] & 1, open = data[0] & 2;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    api_buf r1 = {0}, c1 = {0}, r2 = {0}, c2 = {0};
    run(enabled, open, s, n, n ? (unsigned)n : 1, &r1, &c1); /* whole */
    run(enabled, open, s, n, (data[0] >> 2) % 11 + 1, &r2, &c2);
    if (!eq(&r1, &r2) || !eq(&c1, &c2)) abort();
    if (c1.len > n || (c1.len && memcmp(c1.p, s + n - c1.len, c1.len))) abort();
    if (r1.len && !memmem(s, n, r1.p, r1.len)) abort();
    if ((!enabled || (!open && !starts_think(s, n))) && (c1.len != n || r1.len)) abort();
    api_buf_free(&r1);
    api_buf_free(&c1);
    api_buf_free(&r2);
    api_buf_free(&c2);
    return 0;
}
