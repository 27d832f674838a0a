/* grammar_schema.c — libFuzzer target for the JSON Schema compiler: the input is parsed
 * as JSON and compiled (no vocabulary); a schema that compiles gets a matcher, which is
 * fed the input's first bytes in uneven pieces. Checks: a refusal carries a message and a
 * known status; accepting-ness after a rejected piece is unchanged (rejects roll back). */
#include "grammar/grammar.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!j) return 0;
    gram_grammar *g = NULL;
    sw_err err = {0};
    int rc = gram_compile_schema(NULL, j, &g, &err);
    json_decref(j);
    if (rc != SW_OK) {
        if (!err.msg[0] || (rc != SW_ERR_UNSUPPORTED && rc != SW_ERR_FORMAT && rc != SW_ERR_RANGE && rc != SW_ERR_NOMEM)) abort();
        return 0;
    }
    gram_matcher *m = NULL;
    if (gram_matcher_create(g, &m, &err) == SW_OK) {
        size_t n = size < 256 ? size : 256;
        for (size_t i = 0, step = 1; i < n; i += step, step = step % 5 + 1) {
            bool before = gram_matcher_is_accepting(m);
            size_t k = i + step <= n ? step : n - i;
            if (!gram_matcher_accept_bytes(m, (const char *)data + i, k) && gram_matcher_is_accepting(m) != before) abort();
        }
        gram_matcher_destroy(m);
    }
    gram_grammar_release(g);
    return 0;
}
