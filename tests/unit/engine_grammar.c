/* engine_grammar.c — structured outputs through the engine on the tiny random-weight
 * models of ../shared/models (temperature 1, many seeds, several sequences at once):
 *  - under a JSON schema, every completion that ends by EOS parses (jansson) and passes
 *    a hand-written validator of that schema (independent of the grammar engine);
 *  - under json_object, every completion that ends by EOS parses to a JSON object;
 *  - a constrained request cut by max_tokens finishes LENGTH;
 *  - logit_bias: +100 on a token makes greedy decoding pick it, -100 on the greedy token
 *    makes it pick another. */
#include "t.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include <math.h>

#define MAX_GEN 160

static const char *schema_text =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"maxLength\":6},"
    "\"n\":{\"type\":\"integer\",\"minimum\":-20,\"maximum\":300},"
    "\"ok\":{\"type\":\"boolean\"},"
    "\"color\":{\"enum\":[\"red\",\"green\",\"blue\"]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9},\"maxItems\":3}},"
    "\"required\":[\"name\",\"n\",\"color\"],\"additionalProperties\":false}";

/* Independent check of schema_text's constraints. */
static bool validate(const json_t *j, char *why, size_t cap) {
#define BAD(...) do { snprintf(why, cap, __VA_ARGS__); return false; } while (0)
    if (!json_is_object(j)) BAD("not an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (!strcmp(k, "name")) {
            if (!json_is_string(v)) BAD("name not a string");
            const unsigned char *s = (const unsigned char *)json_string_value(v);
            int cps = 0;
            for (size_t i = 0; i < json_string_length(v); i++) cps += (s[i] & 0xC0) != 0x80;
            if (cps > 6) BAD("name longer than 6");
        } else if (!strcmp(k, "n")) {
            if (!json_is_integer(v) && !(json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))) BAD("n not an integer");
            double x = json_number_value(v);
            if (x < -20 || x > 300) BAD("n out of range");
        } else if (!strcmp(k, "ok")) {
            if (!json_is_boolean(v)) BAD("ok not boolean");
        } else if (!strcmp(k, "color")) {
            const char *c = json_string_value(v);
            if (!c || (strcmp(c, "red") && strcmp(c, "green") && strcmp(c, "blue"))) BAD("color not in enum");
        } else if (!strcmp(k, "tags")) {
            if (!json_is_array(v) || json_array_size(v) > 3) BAD("tags not an array of <= 3");
            for (size_t i = 0; i < json_array_size(v); i++) {
                json_t *x = json_array_get(v, i);
                if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 9) BAD("tag out of range");
            }
        } else BAD("extra property %s", k);
    }
    if (!json_object_get(j, "name") || !json_object_get(j, "n") || !json_object_get(j, "color")) BAD("missing required");
    return true;
#undef BAD
}

typedef struct run { engine_req *r; char text[MAX_GEN * 64]; size_t len; engine_finish fin; } run;

static void collect(const tok *t, run *u) {
    engine_token tk[16];
    u->len = 0;
    u->fin = ENGINE_FINISH_NONE;
    while (u->fin == ENGINE_FINISH_NONE) {
        int n = engine_req_poll(u->r, tk, 16, 10000, &u->fin);
        for (int i = 0; i < n; i++) {
            int k = tok_piece(t, tk[i].id, false, u->text + u->len, (int)(sizeof u->text - u->len - 1));
            if (k > 0 && (size_t)k < sizeof u->text - u->len) u->len += (size_t)k;
        }
    }
    u->text[u->len] = 0;
}

static void run_batch(engine *e, const tok *t, gram_grammar *g, bool schema, int max_tokens, uint64_t seed0, int n, int *n_stop, int *n_length) {
    static int32_t prompt[4] = {1, 2, 3, 4};
    run *u = calloc((size_t)n, sizeof *u);
    for (int i = 0; i < n; i++) {
        engine_req_params p = {0};
        p.prompt = prompt;
        p.n_prompt = 4;
        p.max_tokens = max_tokens;
        sampler_params_default(&p.sampling);
        p.sampling.temperature = 1.0f;
        p.sampling.seed = seed0 + (uint64_t)i;
        sw_err err = {0};
        T_CHECK(gram_matcher_create(g, &p.constraint, &err) == SW_OK, "%s", err.msg);
        T_CHECK(engine_submit(e, &p, &u[i].r, &err) == SW_OK, "%s", err.msg);
    }
    for (int i = 0; i < n; i++) {
        if (!u[i].r) continue;
        collect(t, &u[i]);
        if (u[i].fin == ENGINE_FINISH_STOP) {
            (*n_stop)++;
            json_error_t je;
            json_t *j = json_loadb(u[i].text, u[i].len, 0, &je);
            char why[128] = "";
            T_CHECK(j != NULL, "seed %llu: output does not parse (%s): %s", (unsigned long long)(seed0 + i), je.text, u[i].text);
            if (j && schema) T_CHECK(validate(j, why, sizeof why), "seed %llu: %s: %s", (unsigned long long)(seed0 + i), why, u[i].text);
            if (j && !schema) T_CHECK(json_is_object(j), "not an object: %s", u[i].text);
            json_decref(j);
        } else {
            T_CHECK(u[i].fin == ENGINE_FINISH_LENGTH, "seed %llu: finish %d", (unsigned long long)(seed0 + i), u[i].fin);
            (*n_length)++;
        }
        engine_req_release(u[i].r);
    }
    free(u);
}

static void test_model(const char *path, bool schema_runs) {
    sw_err err = {0};
    model *m = NULL;
    tok *t = NULL;
    gram_vocab *v = NULL;
    if (model_load(path, &m, &err) != SW_OK || tok_create(model_gguf(m), &t, &err) != SW_OK || gram_vocab_create(t, &v, &err) != SW_OK) {
        T_CHECK(0, "%s: %s", path, err.msg);
        return;
    }
    engine_config c;
    engine_config_default(&c);
    c.n_threads = 1;
    c.kv_tokens = 8192;
    c.max_seqs = 16;
    c.calibrate = false;
    engine *e = NULL;
    T_CHECK(engine_create(m, t, &c, &e, &err) == SW_OK, "%s", err.msg);
    json_t *js = json_loads(schema_text, 0, NULL);
    gram_grammar *gs = NULL, *gj = NULL;
    T_CHECK(gram_compile_schema(v, js, &gs, &err) == SW_OK, "%s", err.msg);
    T_CHECK(gram_compile_json_object(v, &gj, &err) == SW_OK, "%s", err.msg);
    json_decref(js);
    int stop = 0, length = 0;
    if (schema_runs) {
        for (int b = 0; b < 4; b++) run_batch(e, t, gs, true, MAX_GEN, 1000 + 16 * (uint64_t)b, 16, &stop, &length);
        printf("%s schema: %d ended by EOS (all valid), %d cut by max_tokens\n", strrchr(path, '/') + 1, stop, length);
        T_CHECK(stop >= 8, "too few completions ended by EOS: %d", stop);
    }
    int js_stop = 0, js_len = 0;
    run_batch(e, t, gj, false, 48, 77, 16, &js_stop, &js_len);
    printf("%s json_object: %d ended by EOS (all objects), %d cut by max_tokens\n", strrchr(path, '/') + 1, js_stop, js_len);
    /* cut by max_tokens: the JSON cannot be complete in 2 tokens */
    int s2 = 0, l2 = 0;
    run_batch(e, t, gs, true, 2, 5, 4, &s2, &l2);
    T_EQ_INT(l2, 4);
    /* logit_bias, greedy, unconstrained */
    static int32_t prompt[3] = {5, 6, 7};
    engine_req_params p = {0};
    p.prompt = prompt;
    p.n_prompt = 3;
    p.max_tokens = 1;
    sampler_params_default(&p.sampling);
    p.sampling.temperature = 0;
    engine_req *r = NULL;
    engine_token tk;
    engine_finish fin = ENGINE_FINISH_NONE;
    T_OK(engine_submit(e, &p, &r, &err) == SW_OK);
    int32_t greedy = -1;
    while (fin == ENGINE_FINISH_NONE) if (engine_req_poll(r, &tk, 1, 5000, &fin) == 1) greedy = tk.id;
    engine_req_release(r);
    int32_t ids[1] = {greedy == 100 ? 101 : 100};
    float bias[1] = {100};
    p.bias_ids = ids; p.bias = bias; p.n_bias = 1;
    fin = ENGINE_FINISH_NONE;
    int32_t got = -1;
    T_OK(engine_submit(e, &p, &r, &err) == SW_OK);
    while (fin == ENGINE_FINISH_NONE) if (engine_req_poll(r, &tk, 1, 5000, &fin) == 1) got = tk.id;
    engine_req_release(r);
    T_EQ_INT(got, ids[0]);
    ids[0] = greedy;
    bias[0] = -100;
    fin = ENGINE_FINISH_NONE;
    T_OK(engine_submit(e, &p, &r, &err) == SW_OK);
    while (fin == ENGINE_FINISH_NONE) if (engine_req_poll(r, &tk, 1, 5000, &fin) == 1) got = tk.id;
    engine_req_release(r);
    T_CHECK(got != greedy && got >= 0, "bias -100 on the greedy token %d: got %d", greedy, got);
    ids[0] = -5;
    T_EQ_INT(engine_submit(e, &p, &r, &err), SW_ERR_ARG);
    engine_destroy(e);
    gram_grammar_release(gs);
    gram_grammar_release(gj);
    gram_vocab_destroy(v);
    tok_destroy(t);
    model_free(m);
}

int main(void) {
    if (t_shared_missing()) { T_SKIP("../shared missing"); return t_done(); }
    test_model(SHARED "/models/qwen2-gpt2-tiny.f32.gguf", true);
    test_model(SHARED "/models/llama-spm-tiny.f32.gguf", false);
    return t_done();
}
