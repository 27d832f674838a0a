/* http_auth.c — API keys: a comparison whose running time depends only on the lengths of
 * its inputs, never on where they first differ (no timing oracle for the key); the key
 * set (from --api-key, --api-key-file, SWIFTLET_API_KEY), where a presented key is
 * compared with every key whatever matched; and the key-file parser. Kept apart from
 * http.c so it links without the engine. */
#include "server/server.h"
#include <stdlib.h>
#include <string.h>

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

int http_keys_add(http_keys *k, const char *key, size_t len) {
    if (len == 0) return SW_ERR_ARG;
    char **v = realloc(k->v, (size_t)(k->n + 1) * sizeof *v);
    if (!v) return SW_ERR_NOMEM;
    k->v = v;
    if (!(v[k->n] = strndup(key, len))) return SW_ERR_NOMEM;
    k->n++;
    return SW_OK;
}

int http_keys_parse(http_keys *k, const char *text, size_t len, sw_err *err) {
    int added = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        size_t a = i, b = e;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        if (b > a && text[a] != '#') {
            for (size_t j = a; j < b; j++)
                if ((unsigned char)text[j] < 0x20 || text[j] == ' ')
                    return sw_err_set(err, SW_ERR_FORMAT, "API key on line with offset %zu has a space or control character", a);
            if (http_keys_add(k, text + a, b - a)) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
            added++;
        }
        i = e + 1;
    }
    if (!added) return sw_err_set(err, SW_ERR_FORMAT, "no API key in the file (one key per line; '#' comments)");
    return SW_OK;
}

bool http_keys_match(const http_keys *k, const char *key, size_t len) {
    bool ok = false;
    for (int i = 0; i < k->n; i++) ok |= http_ct_equal(key, len, k->v[i], strlen(k->v[i]));
    return ok;
}

void http_keys_free(http_keys *k) {
    for (int i = 0; i < k->n; i++) free(k->v[i]);
    free(k->v);
    k->v = NULL;
    k->n = 0;
}
