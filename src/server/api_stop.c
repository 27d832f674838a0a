/* api_stop.c — stop strings matched on the detokenized text. Text arrives in pieces (one
 * token's worth at a time, complete UTF-8 characters); a stop string may span pieces, so
 * the matcher holds back the longest suffix of what it has that is still a prefix of
 * some stop string and emits only the rest. The stop string itself is never emitted. */
#include "server/server.h"
#include <string.h>

void api_stop_init(api_stop *s, char *const *stops, int n_stops) {
    memset(s, 0, sizeof *s);
    s->stops = stops;
    s->n_stops = n_stops;
}

/* Length of the longest proper suffix of h[0..n) that is a prefix of stop. */
static size_t partial_suffix(const char *h, size_t n, const char *stop) {
    size_t sl = strlen(stop);
    size_t k = n < sl - 1 ? n : sl - 1;
    for (; k > 0; k--)
        if (memcmp(h + n - k, stop, k) == 0) return k;
    return 0;
}

int api_stop_feed(api_stop *s, const char *text, size_t len, api_buf *out) {
    if (s->stopped) return SW_OK;
    if (s->n_stops == 0) return api_buf_append(out, text, len);
    if (api_buf_append(&s->held, text, len) != SW_OK) return SW_ERR_NOMEM;
    const char *h = s->held.p;
    size_t n = s->held.len;
    /* earliest complete match */
    size_t best = n;
    for (int i = 0; i < s->n_stops; i++) {
        size_t sl = strlen(s->stops[i]);
        if (sl == 0 || sl > n) continue;
        const char *m = memmem(h, n, s->stops[i], sl);
        if (m && (size_t)(m - h) < best) best = (size_t)(m - h);
    }
    if (best < n) {
        s->stopped = true;
        int rc = api_buf_append(out, h, best);
        s->held.len = 0;
        s->held.p[0] = 0;
        return rc;
    }
    size_t keep = 0;
    for (int i = 0; i < s->n_stops; i++) {
        if (!s->stops[i][0]) continue;
        size_t k = partial_suffix(h, n, s->stops[i]);
        if (k > keep) keep = k;
    }
    if (api_buf_append(out, h, n - keep) != SW_OK) return SW_ERR_NOMEM;
    memmove(s->held.p, h + n - keep, keep);
    s->held.len = keep;
    s->held.p[keep] = 0;
    return SW_OK;
}

int api_stop_flush(api_stop *s, api_buf *out) {
    if (s->stopped || s->held.len == 0) return SW_OK;
    int rc = api_buf_append(out, s->held.p, s->held.len);
    s->held.len = 0;
    s->held.p[0] = 0;
    return rc;
}

void api_stop_free(api_stop *s) { api_buf_free(&s->held); }
