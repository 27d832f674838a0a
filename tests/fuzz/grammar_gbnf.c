/* grammar_gbnf.c — libFuzzer target for the GBNF parser and the automaton build: the
 * input (up to the first NUL byte: the grammar) is compiled without a vocabulary; a
 * grammar that compiles gets a matcher fed the bytes after the NUL (the text), one byte
 * at a time. Checks: an error has a message and a known status; the matcher never
 * reports accepting after a rejected byte it did not have before. */
#include "grammar/grammar.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    gram_grammar *g = NULL;
    sw_err err = {0};
    int rc = gram_compile_gbnf(NULL, (const char *)data, glen, &g, &err);
    if (rc != SW_OK) {
        if (!err.msg[0] || (rc != SW_ERR_UNSUPPORTED && rc != SW_ERR_FORMAT && rc != SW_ERR_RANGE && rc != SW_ERR_NOMEM)) abort();
        return 0;
    }
    gram_matcher *m = NULL;
    if (gram_matcher_create(g, &m, &err) == SW_OK) {
        const char *text = nul ? (const char *)nul + 1 : "";
        size_t n = nul ? size - glen - 1 : 0;
        if (n > 256) n = 256;
        for (size_t i = 0; i < n; i++) {
            bool before = gram_matcher_is_accepting(m);
            if (!gram_matcher_accept_bytes(m, text + i, 1) && gram_matcher_is_accepting(m) != before) abort();
        }
        gram_matcher_destroy(m);
    }
    gram_grammar_release(g);
    return 0;
}
