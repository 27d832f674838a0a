/* gram_check.c — checks a text against a grammar the way decoding would see it: the
 * text is tokenized with the model's vocabulary and each token must be in the mask of
 * the state before it; at the end an end-of-generation token must be allowed. Used by
 * `swiftlet grammar --check` and the grammar tests; optionally times each mask. Also the
 * vocabulary warm-up (a sample JSON document walked with masks). */
#include "grammar/gram_internal.h"
#include <time.h>

static int64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Fills the mask, timing it into mask_ns[*n] (wall) and mask_ns[cap + *n] (CPU). */
static int timed_mask(gram_matcher *m, uint32_t *mask, int64_t *mask_ns, int cap, int *n, sw_err *err) {
    int64_t t0 = sw_now_ns(), c0 = cpu_ns();
    int rc = gram_matcher_fill_mask(m, mask, err);
    if (rc == SW_OK && mask_ns && n && *n < cap) {
        mask_ns[cap + *n] = cpu_ns() - c0;
        mask_ns[(*n)++] = sw_now_ns() - t0;
    }
    return rc;
}

int gram_check_text(gram_grammar *g, const tok *t, const char *text, size_t len, bool *accepted,
                    size_t *reject_byte, int64_t *mask_ns, int cap_ns, int *n_masks, sw_err *err) {
    *accepted = false;
    *reject_byte = 0;
    if (n_masks) *n_masks = 0;
    const gram_vocab *v = g->v;
    int32_t *ids = NULL;
    int n = tok_encode_alloc(t, text, len, false, false, &ids);
    if (n < 0) return sw_err_set(err, n, "grammar check: cannot tokenize the text");
    gram_matcher *m = NULL;
    uint32_t *mask = malloc((size_t)v->n_words * sizeof(uint32_t));
    int rc = gram_matcher_create(g, &m, err);
    if (rc == SW_OK && !mask) rc = sw_err_set(err, SW_ERR_NOMEM, "grammar check: out of memory");
    size_t off = 0;
    bool ok = rc == SW_OK;
    for (int i = 0; i < n && ok; i++) {
        int32_t si = ids[i] >= 0 && ids[i] < v->n_vocab ? v->rev[ids[i]] : -1;
        const char *p = si >= 0 ? v->bytes + v->sorted_off[si] : "";
        size_t pl = si >= 0 ? v->sorted_off[si + 1] - v->sorted_off[si] : 0;
        if (i == 0 && pl > 0 && p[0] == ' ' && (len == 0 || text[0] != ' ')) {
            /* SentencePiece's space prefix: the text itself does not have it */
            if ((ok = gram_matcher_accept_bytes(m, p + 1, pl - 1))) off += pl - 1;
            continue;
        }
        if ((rc = timed_mask(m, mask, mask_ns, cap_ns, n_masks, err)) != SW_OK) { ok = false; break; }
        ok = gram_mask_test(mask, ids[i]) && gram_matcher_accept_token(m, ids[i]);
        if (ok) off += pl;
    }
    if (ok) {
        if ((rc = timed_mask(m, mask, mask_ns, cap_ns, n_masks, err)) == SW_OK) {
            int32_t eos = tok_eos(t);
            ok = eos >= 0 ? gram_mask_test(mask, eos) : gram_matcher_is_accepting(m);
        } else {
            ok = false;
        }
    }
    *accepted = ok && rc == SW_OK;
    *reject_byte = off;
    gram_matcher_destroy(m);
    free(mask);
    free(ids);
    return rc;
}

int gram_vocab_warmup(const gram_vocab *v, sw_err *err) {
    static const char sample[] = "{\"a\": [1, -2.5e3, 0.25, true, false, null, \"x\\u00e9y\\n\u00e9\"], \"b\": {\"c\": \"\"}, \"d\": []}";
    gram_grammar *g = NULL;
    gram_matcher *m = NULL;
    uint32_t *mask = malloc((size_t)v->n_words * sizeof(uint32_t));
    int rc = mask ? gram_compile_json_object(v, &g, err) : sw_err_set(err, SW_ERR_NOMEM, "grammar warm-up: out of memory");
    if (rc == SW_OK) rc = gram_matcher_create(g, &m, err);
    for (size_t i = 0; rc == SW_OK && i < sizeof sample - 1; i++) {
        rc = gram_matcher_fill_mask(m, mask, err);
        if (rc == SW_OK && !gram_matcher_accept_bytes(m, sample + i, 1)) rc = sw_err_set(err, SW_ERR_FORMAT, "grammar warm-up: sample rejected");
    }
    gram_matcher_destroy(m);
    gram_grammar_release(g);
    free(mask);
    return rc;
}
