/* grammar_engine.c — unit tests of the grammar layers:
 *   - GBNF: accepted syntax, and the errors (syntax, undefined rule, left recursion);
 *   - regex: the matcher's full-match verdict on generated strings against PCRE2's
 *     (an independent implementation) for a set of patterns;
 *   - masks: at several points of a walk, the mask bit of every token equals the
 *     brute-force verdict (a fresh matcher fed the prefix and then the token's text),
 *     with the GPT-2 and the SentencePiece vocabularies of ../shared/models, also for a
 *     second compile of the same schema (masks from the vocabulary's shared store);
 *   - schema compile errors name the keyword; the compiled-grammar cache. */
#include "t.h"
#include "gguf/gguf.h"
#include "grammar/grammar.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static bool full_match(gram_grammar *g, const char *s, size_t n) {
    gram_matcher *m = NULL;
    sw_err err;
    if (gram_matcher_create(g, &m, &err) != SW_OK) return false;
    bool ok = gram_matcher_accept_bytes(m, s, n) && gram_matcher_is_accepting(m);
    gram_matcher_destroy(m);
    return ok;
}

static void test_gbnf(const gram_vocab *v) {
    static const char *good = "# a comment\n"
                              "root ::= greeting (\" \" name)? [!.]{1,3}\n"
                              "greeting ::= \"hello\" | \"hi\" |\n   \"hey\"\n"
                              "name ::= [A-Z] [a-z\\-]* \"\\u00e9\"?  # trailing comment\n";
    gram_grammar *g = NULL;
    sw_err err = {0};
    T_CHECK(gram_compile_gbnf(v, good, strlen(good), &g, &err) == SW_OK, "%s", err.msg);
    if (g) {
        static const struct { const char *s; bool ok; } cases[] = {
            {"hello!", true}, {"hi Bob...", true}, {"hey Zoé!", true}, {"hey Zo-e!!", true}, {"hello", false},
            {"hello!!!!", false}, {"hi bob!", false}, {"hola!", false}, {"hey Zoé", false}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            T_CHECK(full_match(g, cases[i].s, strlen(cases[i].s)) == cases[i].ok, "gbnf on '%s'", cases[i].s);
        gram_grammar_release(g);
    }
    static const struct { const char *src; int rc; const char *msg; } bad[] = {
        {"root ::= foo\n", SW_ERR_FORMAT, "undefined rule 'foo'"},
        {"root ::= root \"a\" | \"b\"\n", SW_ERR_UNSUPPORTED, "left-recursive"},
        {"root ::= x\nx ::= y? x \"a\"\ny ::= \"b\"\n", SW_ERR_UNSUPPORTED, "left-recursive"},
        {"root ::= \"abc\n", SW_ERR_FORMAT, "literal"},
        {"root ::= [a-\n", SW_ERR_FORMAT, "class"},
        {"root ::= (\"a\"\n", SW_ERR_FORMAT, "')'"},
        {"root := \"a\"\n", SW_ERR_FORMAT, "::="},
        {"start ::= \"a\"\n", SW_ERR_FORMAT, "root"},
        {"root ::= \"a\"{3,2}\n", SW_ERR_FORMAT, "max below min"},
        {"root ::= \"a\"\nroot ::= \"b\"\n", SW_ERR_FORMAT, "twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = NULL;
        int rc = gram_compile_gbnf(v, bad[i].src, strlen(bad[i].src), &g, &err);
        T_CHECK(rc == bad[i].rc && strstr(err.msg, bad[i].msg), "gbnf '%s': rc %d msg %s", bad[i].src, rc, err.msg);
        gram_grammar_release(g);
    }
}

/* xorshift for reproducible strings */
static uint64_t rnd(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }

static void test_regex_vs_pcre2(const gram_vocab *v) {
    static const char *pats[] = {"[a-c]+-\\d{2,3}", "(ab|a)*c?", "x(?:y|zz){1,3}$", "[^a-c]*a", "\\w+@\\w+\\.(com|org)",
                                 "(a|b)*abb", "[\\s\\d]{0,4}b+", "é+|ü?[a-b]", "a{3}|b{2,}|c{,2}", ".?\\.[0-9a-f]{1,2}"};
    static const char alpha[] = "abcxyz-.@0129 é\xc3\xbc\n";
    uint64_t seed = 88172645463325252ull;
    for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
        gram_grammar *g = NULL;
        sw_err err = {0};
        T_CHECK(gram_compile_regex(v, pats[p], strlen(pats[p]), &g, &err) == SW_OK, "%s: %s", pats[p], err.msg);
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pats[p], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec, &eo, NULL);
        T_CHECK(re != NULL, "pcre2 compile %s", pats[p]);
        if (!g || !re) { gram_grammar_release(g); pcre2_code_free(re); continue; }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        int disagree = 0, n_match = 0;
        for (int k = 0; k < 3000; k++) {
            char s[16];
            int n = (int)(rnd(&seed) % 9);
            for (int i = 0; i < n; i++) s[i] = alpha[rnd(&seed) % (sizeof alpha - 1)];
            int r = pcre2_match(re, (PCRE2_SPTR)s, (size_t)n, 0, 0, md, NULL);
            if (r < 0 && r != PCRE2_ERROR_NOMATCH) continue; /* invalid UTF-8: PCRE2 in UTF mode refuses it */
            bool want = r >= 0, got = full_match(g, s, (size_t)n);
            n_match += want;
            if (want != got && disagree++ < 3) T_CHECK(want == got, "regex %s on '%.*s': pcre2 %d, grammar %d", pats[p], n, s, want, got);
        }
        T_EQ_INT(disagree, 0);
        if (p == 1 || p == 3) T_CHECK(n_match > 0, "regex %s: no generated string matches", pats[p]);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        gram_grammar_release(g);
    }
    static const char *refused[] = {"a(?=b)", "(?<!x)y", "(a)\\1", "\\bword", "[[:alpha:]]"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        gram_grammar *g = NULL;
        sw_err err = {0};
        T_EQ_INT(gram_compile_regex(v, refused[i], strlen(refused[i]), &g, &err), SW_ERR_UNSUPPORTED);
        gram_grammar_release(g);
    }
}

/* Mask of the state after `prefix` against brute force over every token. */
static void check_mask(const gram_vocab *v, const tok *t, gram_grammar *g, const char *prefix, const char *what) {
    sw_err err = {0};
    gram_matcher *m = NULL;
    T_CHECK(gram_matcher_create(g, &m, &err) == SW_OK, "%s", err.msg);
    if (!m) return;
    T_CHECK(gram_matcher_accept_bytes(m, prefix, strlen(prefix)), "%s: prefix '%s' rejected", what, prefix);
    int nw = gram_vocab_n_words(v), nv = gram_vocab_n_vocab(v);
    uint32_t *mask = calloc((size_t)nw, 4);
    T_CHECK(gram_matcher_fill_mask(m, mask, &err) == SW_OK, "%s", err.msg);
    int wrong = 0, allowed = 0;
    char piece[512];
    for (int id = 0; id < nv; id++) {
        int n = tok_piece(t, id, false, piece, sizeof piece);
        bool want;
        if (tok_is_eog(t, id)) want = gram_matcher_is_accepting(m);
        else if (n <= 0 || n > (int)sizeof piece) want = false;
        else {
            gram_matcher *b = NULL;
            gram_matcher_create(g, &b, &err);
            want = gram_matcher_accept_bytes(b, prefix, strlen(prefix)) && gram_matcher_accept_bytes(b, piece, (size_t)n);
            gram_matcher_destroy(b);
        }
        bool got = gram_mask_test(mask, id);
        allowed += got;
        if (want != got && wrong++ < 3)
            T_CHECK(want == got, "%s after '%s': token %d '%.*s' brute force %d, mask %d", what, prefix, id, n > 0 ? n : 0, piece, want, got);
    }
    T_CHECK(wrong == 0, "%s after '%s': %d tokens differ", what, prefix, wrong);
    T_CHECK(allowed > 0, "%s after '%s': empty mask", what, prefix);
    free(mask);
    gram_matcher_destroy(m);
}

static void test_masks(const char *model) {
    sw_err err = {0};
    gguf_ctx *ctx = NULL;
    tok *t = NULL;
    gram_vocab *v = NULL;
    T_CHECK(gguf_open(model, &ctx, &err) == SW_OK && tok_create(ctx, &t, &err) == SW_OK && gram_vocab_create(t, &v, &err) == SW_OK, "%s", err.msg);
    if (!v) { tok_destroy(t); gguf_close(ctx); return; }
    if (strstr(model, "qwen2")) { test_gbnf(v); test_regex_vs_pcre2(v); }
    const char *schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":120},"
                         "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"red\",\"green\"]}},\"when\":{\"type\":\"string\",\"format\":\"date\"}},"
                         "\"required\":[\"name\",\"n\"],\"additionalProperties\":false}";
    json_t *js = json_loads(schema, 0, NULL);
    gram_grammar *g = NULL;
    T_CHECK(gram_compile_schema(v, js, &g, &err) == SW_OK, "%s", err.msg);
    static const char *prefixes[] = {"", "{", "{\"name\"", "{\"name\": \"Jo", "{\"name\":\"a\\", "{\"name\":\"x\",\"n\":1",
                                     "{\"name\":\"x\",\"n\":-", "{\"name\":\"x\",\"n\":12,\"tags\":[\"red\"", "{\"name\":\"x\",\"n\":12,\"when\":\"2024-0"};
    for (size_t i = 0; g && i < sizeof prefixes / sizeof prefixes[0]; i++) check_mask(v, t, g, prefixes[i], "schema");
    gram_grammar_release(g);
    /* the same schema compiled again: a new grammar whose masks come from the vocabulary's
     * shared store (entries keyed by rule content) */
    g = NULL;
    T_CHECK(gram_compile_schema(v, js, &g, &err) == SW_OK, "%s", err.msg);
    for (size_t i = 0; g && i < sizeof prefixes / sizeof prefixes[0]; i += 2) check_mask(v, t, g, prefixes[i], "schema (recompiled)");
    gram_grammar_release(g);
    json_decref(js);
    /* length-bounded strings and formats: the slices classify whole-character tokens by
     * count (gram_mask.c); prefixes at every distance from the bound, non-ASCII included,
     * e-mail and URI runs of letters and digits */
    const char *bounded = "{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":6},"
                          "\"u\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":3}},\"p\":{\"type\":\"string\",\"pattern\":\"^[a-z]{2,4}$\"},"
                          "\"e\":{\"type\":\"string\",\"format\":\"email\"},\"w\":{\"type\":\"string\",\"format\":\"uri\"}}}";
    js = json_loads(bounded, 0, NULL);
    g = NULL;
    T_CHECK(gram_compile_schema(v, js, &g, &err) == SW_OK, "%s", err.msg);
    static const char *bp[] = {"{\"t\": \"", "{\"t\": \"a", "{\"t\": \"ab\u00e9", "{\"t\": \"abcde", "{\"t\": \"abcdef",
                               "{\"t\": \"\xc3\xa9\xe4\xb8\xad", "{\"u\": [\"", "{\"u\": [\"ab", "{\"u\": [\"abc\", \"x", "{\"p\": \"ab",
                               "{\"e\": \"jo", "{\"e\": \"jo.x@ex", "{\"e\": \"a@b-", "{\"w\": \"http", "{\"w\": \"https://ex"};
    for (size_t i = 0; g && i < sizeof bp / sizeof bp[0]; i++) check_mask(v, t, g, bp[i], "bounded strings");
    gram_grammar_release(g);
    json_decref(js);
    g = NULL;
    T_CHECK(gram_compile_json_object(v, &g, &err) == SW_OK, "%s", err.msg);
    static const char *jp[] = {"", "{\"a\": [1, {\"b\": \"c", "{\"a\": [1, {\"b\": \"c\"}]", "{\"a\": 1.5e", "{\"k\": \"\xc3"};
    for (size_t i = 0; g && i < sizeof jp / sizeof jp[0]; i++) check_mask(v, t, g, jp[i], "json_object");
    /* the same grammar, a second matcher: answers come from the cache now */
    if (g) check_mask(v, t, g, jp[1], "json_object (cached)");
    gram_grammar_release(g);
    gram_vocab_destroy(v);
    tok_destroy(t);
    gguf_close(ctx);
}

static void test_schema_errors(void) {
    static const struct { const char *schema; const char *kw; } cases[] = {
        {"{\"type\":\"string\",\"not\":{\"const\":\"a\"}}", "'not'"},
        {"{\"type\":\"array\",\"uniqueItems\":true}", "'uniqueItems'"},
        {"{\"type\":\"number\",\"multipleOf\":3}", "'multipleOf'"},
        {"{\"type\":\"object\",\"patternProperties\":{\"^a\":{}}}", "'patternProperties'"},
        {"{\"if\":{\"type\":\"string\"},\"then\":{\"minLength\":2}}", "'if'"},
        {"{\"allOf\":[{\"type\":\"string\"},{\"maxLength\":3}]}", "'allOf'"},
        {"{\"type\":\"string\",\"format\":\"ipv4\"}", "ipv4"},
        {"{\"$ref\":\"http://example.com/x.json\"}", "$ref"},
        {"{\"type\":\"number\",\"minimum\":0.5}", "'minimum'"},
        {"{\"type\":\"string\",\"pattern\":\"(?=a)\"}", "lookaround"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].schema, 0, NULL);
        gram_grammar *g = NULL;
        sw_err err = {0};
        int rc = gram_compile_schema(NULL, j, &g, &err);
        T_CHECK(rc == SW_ERR_UNSUPPORTED && strstr(err.msg, cases[i].kw), "%s: rc %d, %s", cases[i].schema, rc, err.msg);
        gram_grammar_release(g);
        json_decref(j);
    }
}

static void test_cache(void) {
    gram_cache *c = NULL;
    sw_err err = {0};
    T_CHECK(gram_cache_create(NULL, 2, &c, &err) == SW_OK, "%s", err.msg);
    gram_grammar *a = NULL, *b = NULL, *d = NULL, *e = NULL;
    const char *s1 = "{\"type\":\"integer\"}", *s2 = "{\"type\":\"string\"}", *s3 = "{\"type\":\"boolean\"}";
    T_OK(gram_cache_get(c, "schema", s1, strlen(s1), &a, &err) == SW_OK);
    T_OK(gram_cache_get(c, "schema", s1, strlen(s1), &b, &err) == SW_OK);
    T_CHECK(a == b, "the same schema compiles once");
    T_OK(gram_cache_get(c, "schema", s2, strlen(s2), &d, &err) == SW_OK);
    T_OK(gram_cache_get(c, "schema", s3, strlen(s3), &e, &err) == SW_OK); /* evicts s1 */
    gram_grammar *f = NULL;
    T_OK(gram_cache_get(c, "schema", s1, strlen(s1), &f, &err) == SW_OK);
    T_CHECK(f != a, "an evicted grammar is compiled again");
    T_CHECK(full_match(a, "12", 2) && full_match(f, "-3", 2) && !full_match(f, "x", 1), "evicted grammar still usable");
    const char *bad = "{\"not\":{}}";
    gram_grammar *x = NULL;
    T_EQ_INT(gram_cache_get(c, "schema", bad, strlen(bad), &x, &err), SW_ERR_UNSUPPORTED);
    gram_grammar_release(a); gram_grammar_release(b); gram_grammar_release(d); gram_grammar_release(e); gram_grammar_release(f);
    gram_cache_destroy(c);
}

int main(void) {
    test_schema_errors();
    test_cache();
    if (t_shared_missing()) { T_SKIP("../shared missing: vocab tests skipped"); return t_done(); }
    test_masks(SHARED "/models/qwen2-gpt2-tiny.f32.gguf");
    test_masks(SHARED "/models/llama-spm-tiny.f32.gguf");
    return t_done();
}
