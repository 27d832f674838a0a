/* grammar_tools.c — the grammar module's parts for tool calls: framed schemas
 * (gram_compile_schema_framed: the Hermes and Mistral framings of one or more calls, item
 * counts, wrong names and arguments rejected) walked byte by byte, the "framed" kind of the
 * grammar cache, and the lazy matcher (gram_matcher_create_lazy) walked token by token on
 * the GPT-2 vocabulary of ../shared: free text with an all-ones mask, the grammar engaged
 * by the trigger (masks narrow, a wrong call is refused, the end is refused mid-call), and
 * free again once the call is complete. */
#include "grammar/grammar.h"
#include "gguf/gguf.h"
#include "t.h"

static const char *CALL_SCHEMA =
    "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"f\"},\"arguments\":{\"type\":\"object\","
    "\"properties\":{\"x\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":99}},\"required\":[\"x\"],\"additionalProperties\":false}},"
    "\"required\":[\"name\",\"arguments\"],\"additionalProperties\":false},"
    "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"g\"},\"arguments\":{\"type\":\"object\",\"properties\":{},"
    "\"additionalProperties\":false}},\"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}]}";

static gram_grammar *framed(const gram_vocab *v, const gram_frame *f) {
    json_t *s = json_loads(CALL_SCHEMA, 0, NULL);
    gram_grammar *g = NULL;
    sw_err err = {0};
    T_CHECK(s && gram_compile_schema_framed(v, s, f, &g, &err) == SW_OK, "%s", err.msg);
    json_decref(s);
    return g;
}

/* Whether the whole text is accepted byte by byte and complete. */
static bool full(gram_grammar *g, const char *text) {
    gram_matcher *m = NULL;
    sw_err err = {0};
    if (gram_matcher_create(g, &m, &err)) return false;
    bool ok = gram_matcher_accept_bytes(m, text, strlen(text)) && gram_matcher_is_accepting(m);
    gram_matcher_destroy(m);
    return ok;
}

static const char *C1 = "{\"name\": \"f\", \"arguments\": {\"x\": 12}}", *C2 = "{\"name\":\"g\",\"arguments\":{}}";

static void test_framed(void) {
    gram_frame h = {"", "<tool_call>\n", "\n</tool_call>", "\n", "", 1, -1};
    gram_grammar *g = framed(NULL, &h);
    if (!g) return;
    char buf[512];
    snprintf(buf, sizeof buf, "<tool_call>\n%s\n</tool_call>", C1);
    T_OK(full(g, buf));
    snprintf(buf, sizeof buf, "<tool_call>\n%s\n</tool_call>\n<tool_call>\n %s \n</tool_call>", C1, C2);
    T_OK(full(g, buf));
    T_OK(!full(g, ""));
    T_OK(!full(g, C1));
    T_OK(!full(g, "<tool_call>\n{\"name\": \"h\", \"arguments\": {}}\n</tool_call>"));
    T_OK(!full(g, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 100}}\n</tool_call>"));
    T_OK(!full(g, "<tool_call>\n{\"name\": \"g\", \"arguments\": {\"x\": 1}}\n</tool_call>"));
    T_OK(!full(g, "<tool_call>\n{\"arguments\": {}, \"name\": \"g\"}\n</tool_call>")); /* name first */
    gram_grammar_release(g);
    h.max = 1;
    g = framed(NULL, &h);
    snprintf(buf, sizeof buf, "<tool_call>\n%s\n</tool_call>\n<tool_call>\n%s\n</tool_call>", C1, C2);
    T_OK(g && !full(g, buf));
    snprintf(buf, sizeof buf, "<tool_call>\n%s\n</tool_call>", C2);
    T_OK(g && full(g, buf));
    gram_grammar_release(g);
    gram_frame mi = {"[TOOL_CALLS][", "", "", ", ", "]", 1, 3};
    g = framed(NULL, &mi);
    snprintf(buf, sizeof buf, "[TOOL_CALLS][%s, %s, %s]", C1, C2, C1);
    T_OK(g && full(g, buf));
    snprintf(buf, sizeof buf, "[TOOL_CALLS][%s, %s, %s, %s]", C1, C2, C1, C2);
    T_OK(g && !full(g, buf));
    T_OK(g && !full(g, "[TOOL_CALLS][]"));
    gram_grammar_release(g);
    gram_frame bad = {"", "", "", "", "", 2, 1};
    json_t *s = json_loads(CALL_SCHEMA, 0, NULL);
    sw_err err = {0};
    T_OK(gram_compile_schema_framed(NULL, s, &bad, &g, &err) != SW_OK && err.msg[0]);
    json_decref(s);
}

static bool all_ones(const uint32_t *mask, int n_vocab) {
    for (int i = 0; i < n_vocab; i++)
        if (!gram_mask_test(mask, i)) return false;
    return true;
}

/* Feeds text's tokens; returns how many were accepted (stops at the first refusal). The
 * mask before each token must allow it. */
static int feed(gram_matcher *m, const tok *t, const char *text, uint32_t *mask, bool *masks_ok) {
    int32_t *ids = NULL;
    int n = tok_encode_alloc(t, text, strlen(text), false, false, &ids), k = 0;
    sw_err err = {0};
    for (; k < n; k++) {
        if (gram_matcher_fill_mask(m, mask, &err) != SW_OK) break;
        bool allowed = gram_mask_test(mask, ids[k]);
        bool took = gram_matcher_accept_token(m, ids[k]);
        if (allowed != took) *masks_ok = false;
        if (!took) break;
    }
    free(ids);
    return k < n ? k : n;
}

static int n_tokens(const tok *t, const char *text) {
    int32_t *ids = NULL;
    int n = tok_encode_alloc(t, text, strlen(text), false, false, &ids);
    free(ids);
    return n;
}

static void test_lazy(void) {
    if (t_shared_missing()) { T_SKIP("no ../shared: lazy matcher on a real vocabulary"); return; }
    sw_err err = {0};
    gguf_ctx *ctx = NULL;
    tok *t = NULL;
    gram_vocab *v = NULL;
    T_CHECK(gguf_open(SHARED "/models/qwen2-gpt2-tiny.f32.gguf", &ctx, &err) == SW_OK && tok_create(ctx, &t, &err) == SW_OK &&
            gram_vocab_create(t, &v, &err) == SW_OK, "%s", err.msg);
    if (!v) { tok_destroy(t); gguf_close(ctx); return; }
    int nv = gram_vocab_n_vocab(v);
    uint32_t *mask = calloc((size_t)gram_vocab_n_words(v), sizeof *mask);
    gram_frame h = {"", "<tool_call>\n", "\n</tool_call>", "\n", "", 1, 1};
    gram_grammar *g = framed(v, &h);
    gram_matcher *m = NULL;
    T_CHECK(g && gram_matcher_create_lazy(g, "<tool_call>", &m, &err) == SW_OK, "%s", err.msg);
    if (m) {
        bool masks_ok = true;
        const char *free1 = "Sure, I can help with <tool> calls and {\"json\"}. ";
        T_EQ_INT(feed(m, t, free1, mask, &masks_ok), n_tokens(t, free1));
        T_OK(gram_matcher_fill_mask(m, mask, &err) == SW_OK && all_ones(mask, nv));
        T_OK(gram_matcher_is_accepting(m));
        char call[256];
        snprintf(call, sizeof call, "<tool_call>\n%s\n</tool_call>", C1);
        /* a prefix engages the grammar: the mask narrows, the end is refused */
        T_EQ_INT(feed(m, t, "<tool_call>\n{\"name\": \"f\"", mask, &masks_ok), n_tokens(t, "<tool_call>\n{\"name\": \"f\""));
        T_OK(gram_matcher_fill_mask(m, mask, &err) == SW_OK && !all_ones(mask, nv));
        T_OK(!gram_matcher_is_accepting(m));
        T_OK(!gram_matcher_accept_token(m, tok_eos(t)));
        const char *rest = call + strlen("<tool_call>\n{\"name\": \"f\"");
        T_EQ_INT(feed(m, t, rest, mask, &masks_ok), n_tokens(t, rest));
        /* the call is complete and nothing more can follow (max 1): free again */
        T_OK(gram_matcher_fill_mask(m, mask, &err) == SW_OK && all_ones(mask, nv));
        T_OK(gram_matcher_is_accepting(m));
        T_EQ_INT(feed(m, t, " Done.", mask, &masks_ok), n_tokens(t, " Done."));
        /* a wrong call after another trigger is refused */
        const char *wrong = "<tool_call>\n{\"name\": \"zz\"";
        T_OK(feed(m, t, wrong, mask, &masks_ok) < n_tokens(t, wrong));
        T_OK(masks_ok);
        gram_matcher_destroy(m);
    }
    gram_grammar_release(g);
    /* the cache's "framed" kind */
    gram_cache *c = NULL;
    T_OK(gram_cache_create(v, 4, &c, &err) == SW_OK);
    char spec[2048];
    snprintf(spec, sizeof spec, "{\"schema\":%s,\"prefix\":\"\",\"open\":\"<tool_call>\",\"close\":\"</tool_call>\",\"sep\":\"\","
             "\"suffix\":\"\",\"min\":1,\"max\":1}", CALL_SCHEMA);
    gram_grammar *g1 = NULL, *g2 = NULL;
    T_CHECK(c && gram_cache_get(c, "framed", spec, strlen(spec), &g1, &err) == SW_OK, "%s", err.msg);
    T_CHECK(c && gram_cache_get(c, "framed", spec, strlen(spec), &g2, &err) == SW_OK && g1 == g2, "%s", err.msg);
    if (g1) T_OK(full(g1, "<tool_call>{\"name\":\"g\",\"arguments\":{}}</tool_call>"));
    gram_grammar *g3 = NULL;
    T_OK(c && gram_cache_get(c, "framed", "{\"schema\":{}}", 13, &g3, &err) != SW_OK);
    gram_grammar_release(g1);
    gram_grammar_release(g2);
    gram_cache_destroy(c);
    free(mask);
    gram_vocab_destroy(v);
    tok_destroy(t);
    gguf_close(ctx);
}

int main(void) {
    test_framed();
    test_lazy();
    return t_done();
}
