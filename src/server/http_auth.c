/* http_auth.c — API-key check helper: a comparison whose running time depends only on
 * the lengths of its inputs, never on where they first differ (no timing oracle for the
 * key). Kept apart from http.c so it links without the engine. */
#include "server/server.h"

bool http_ct_equal(const char *a, size_t alen, const char *b, size_t blen) {
    size_t n = alen > blen ? alen : blen;
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}
