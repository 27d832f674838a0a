/* server_tools.c — unit tests of the tool-call parser (api_tools.c) on each family's
 * syntax: content and calls (name, arguments text) of hand-written model outputs, fed
 * whole, byte by byte and split in two at every byte (all must agree: the parser holds
 * back what might be an opener), with the event order checked (START, ARGS..., END per
 * call, indices 0, 1, ...). Also: family detection on the real templates of ../shared,
 * the collected calls' JSON, the streaming chunk JSON and call ids; the request fields
 * (tools / tool_choice / parallel_tool_calls: accepted shapes, 400s naming the field) and
 * the calls' grammar per family (required, named, auto's trigger, none, a parameters
 * keyword that cannot be enforced), walked byte by byte without a vocabulary. */
#include "server/api_tools.h"
#include "t.h"
#include <ctype.h>

typedef struct got {
    api_buf content;
    api_tool_calls calls;
    int open;        /* index of the call between START and END, -1 none */
    int n_end;
    bool order_ok;
    uint64_t rng;
} got;

static int sink(void *ctx, const api_tool_ev *ev) {
    got *g = ctx;
    switch (ev->kind) {
    case API_TOOL_TEXT:
        if (g->open >= 0 || ev->len == 0) g->order_ok = false;
        return api_buf_append(&g->content, ev->s, ev->len);
    case API_TOOL_START:
        if (g->open >= 0 || ev->index != g->calls.n) g->order_ok = false;
        g->open = ev->index;
        break;
    case API_TOOL_ARGS:
        if (g->open != ev->index || ev->len == 0) g->order_ok = false;
        break;
    case API_TOOL_END:
        if (g->open != ev->index) g->order_ok = false;
        g->open = -1;
        g->n_end++;
        break;
    }
    return api_tool_calls_add(&g->calls, ev, &g->rng);
}

static void got_free(got *g) {
    api_buf_free(&g->content);
    api_tool_calls_free(&g->calls);
}

/* Runs the parser over text cut at the given points (sorted, n_cuts of them). */
static void run(api_tool_family f, const char *text, const size_t *cuts, int n_cuts, got *g) {
    memset(g, 0, sizeof *g);
    g->open = -1;
    g->order_ok = true;
    g->rng = 1;
    api_tools_parser *p;
    if (api_tools_parser_create(f, &p)) return;
    size_t n = strlen(text), at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        api_tools_feed(p, text + at, end - at, sink, g);
        at = end;
    }
    api_tools_finish(p, sink, g);
    if (g->open >= 0) g->order_ok = false;
    api_tools_parser_destroy(p);
}

static bool same(const got *a, const got *b) {
    if (a->content.len != b->content.len || (a->content.len && memcmp(a->content.p, b->content.p, a->content.len))) return false;
    if (a->calls.n != b->calls.n) return false;
    for (int i = 0; i < a->calls.n; i++) {
        const api_tool_call *x = &a->calls.v[i], *y = &b->calls.v[i];
        if (strcmp(x->name, y->name) || x->args.len != y->args.len || (x->args.len && memcmp(x->args.p, y->args.p, x->args.len)))
            return false;
    }
    return true;
}

/* expect: content, then name/args pairs (NULL-terminated). */
static void check(const char *label, api_tool_family f, const char *text, const char *content, ...) {
    got whole;
    run(f, text, NULL, 0, &whole);
    T_CHECK(whole.order_ok, "%s: event order", label);
    T_CHECK(whole.n_end == whole.calls.n, "%s: %d ends for %d calls", label, whole.n_end, whole.calls.n);
    const char *c = whole.content.p ? whole.content.p : "";
    T_CHECK(!strcmp(c, content), "%s: content '%s', want '%s'", label, c, content);
    va_list ap;
    va_start(ap, content);
    int k = 0;
    for (const char *name; (name = va_arg(ap, const char *)); k++) {
        const char *args = va_arg(ap, const char *);
        if (k >= whole.calls.n) { T_CHECK(0, "%s: call %d missing", label, k); continue; }
        T_CHECK(!strcmp(whole.calls.v[k].name, name), "%s: call %d name '%s', want '%s'", label, k, whole.calls.v[k].name, name);
        const char *a = whole.calls.v[k].args.p ? whole.calls.v[k].args.p : "";
        T_CHECK(!strcmp(a, args), "%s: call %d args '%s', want '%s'", label, k, a, args);
    }
    va_end(ap);
    T_CHECK(k == whole.calls.n, "%s: %d calls, want %d", label, whole.calls.n, k);
    /* every split in two, and byte by byte, give the same */
    size_t n = strlen(text);
    int bad = 0;
    for (size_t i = 0; i <= n; i++) {
        got g;
        run(f, text, &i, 1, &g);
        if (!same(&g, &whole) || !g.order_ok) bad++;
        got_free(&g);
    }
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++) cuts[i] = i + 1;
    got g;
    run(f, text, cuts, n ? (int)n - 1 : 0, &g);
    if (!same(&g, &whole) || !g.order_ok) bad++;
    got_free(&g);
    free(cuts);
    T_CHECK(bad == 0, "%s: %d chunkings disagree with the whole-text parse", label, bad);
    got_free(&whole);
}

static void test_hermes(void) {
    api_tool_family H = API_TOOLS_HERMES;
    check("hermes one", H, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
          "Let me check.\n", "get_weather", "{\"city\": \"Paris\"}", NULL);
    check("hermes parallel", H,
          "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, {\"y\": \"}]\\\"\"}]}}\n</tool_call>\n<tool_call>\n"
          "{\"name\": \"b_2\", \"arguments\": {}}\n</tool_call>\n",
          "", "a", "{\"x\": [1, {\"y\": \"}]\\\"\"}]}", "b_2", "{}", NULL);
    check("hermes text after", H, "<tool_call>{\"name\":\"f\",\"arguments\":{\"k\":true}}</tool_call> done", " done", "f", "{\"k\":true}", NULL);
    check("hermes not a call", H, "a <tool_cal b <tool_call>oops <tool_call>", "a <tool_cal b <tool_call>oops <tool_call>", NULL);
    check("hermes object without name", H, "x<tool_call>{\"arguments\": {}}</tool_call>", "x<tool_call>{\"arguments\": {}}</tool_call>", NULL);
    check("hermes args before name", H, "<tool_call>{\"arguments\": {\"x\": 1}, \"id\": 7, \"name\": \"f\"}</tool_call>", "", "f", "{\"x\": 1}", NULL);
    check("hermes arguments as a string", H, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>", "", "f", "{\"a\": 1}", NULL);
    check("hermes no arguments", H, "<tool_call>{\"name\": \"now\"}</tool_call>", "", "now", "{}", NULL);
    check("hermes name escape", H, "<tool_call>{\"name\": \"f\\u0031\", \"arguments\": {}}</tool_call>", "", "f1", "{}", NULL);
    check("hermes cut short", H, "ok <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": ", "ok ", "f", "{\"a\": ", NULL);
    check("hermes cut before the name", H, "ok <tool_call>\n{\"na", "ok <tool_call>\n{\"na", NULL);
    check("hermes bad closer", H, "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_cxx", "</tool_cxx", "f", "{}", NULL);
    check("hermes scalar args", H, "<tool_call>{\"name\":\"f\",\"arguments\":12 }</tool_call>", "", "f", "12", NULL);
}

static void test_llama3(void) {
    api_tool_family L = API_TOOLS_LLAMA3;
    check("llama3 plain", L, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", "get_weather", "{\"city\": \"Paris\"}", NULL);
    check("llama3 python_tag + ;", L,
          "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": {\"b\": \"};\"}}",
          "", "f", "{}", "g", "{\"b\": \"};\"}", NULL);
    check("llama3 whitespace in the opener", L, "{ \n\t\"name\": \"f\", \"parameters\": {\"a\": 1}}", "", "f", "{\"a\": 1}", NULL);
    check("llama3 leading whitespace", L, " \n {\"name\": \"f\", \"parameters\": {}}", "", "f", "{}", NULL);
    check("llama3 whitespace only", L, " \n ", " \n ", NULL);
    check("llama3 brace then text", L, "{ \n x", "{ \n x", NULL);
    check("llama3 json that is no call", L, "{\"city\": \"Paris\"} and {\"nam", "{\"city\": \"Paris\"} and {\"nam", NULL);
    check("llama3 text then call", L, "Sure. {\"name\": \"f\", \"parameters\": {\"a\": 1}} ", "Sure. ", "f", "{\"a\": 1}", NULL);
}

static void test_mistral(void) {
    api_tool_family M = API_TOOLS_MISTRAL;
    check("mistral list", M, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}, {\"name\": \"g\", \"arguments\": {}}]",
          "", "f", "{\"a\": 1}", "g", "{}", NULL);
    check("mistral not a list", M, "[TOOL_CALLS] nope", "[TOOL_CALLS] nope", NULL);
    check("mistral text around", M, "hi [TOOL_CALLS] [ {\"name\":\"f\",\"arguments\":{}} ] bye", "hi  bye", "f", "{}", NULL);
}

static void test_none(void) {
    check("none", API_TOOLS_NONE, "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>",
          "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>", NULL);
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

static void test_detect(void) {
    if (t_shared_missing()) { T_SKIP("no ../shared: template family detection"); return; }
    static const struct { const char *file; api_tool_family f; } tm[] = {
        {SHARED "/templates/qwen3.jinja", API_TOOLS_HERMES},
        {SHARED "/templates/llama3_1.jinja", API_TOOLS_NONE}, /* the shared Llama 3.1 template has no tool syntax */
        {SHARED "/templates/gemma3.jinja", API_TOOLS_NONE},
    };
    for (size_t i = 0; i < sizeof tm / sizeof tm[0]; i++) {
        size_t n;
        char *t = read_all(tm[i].file, &n);
        T_CHECK(t != NULL, "%s", tm[i].file);
        if (t) T_CHECK(api_tools_detect(t, n) == tm[i].f, "%s -> %s", tm[i].file, api_tools_family_name(api_tools_detect(t, n)));
        free(t);
    }
    T_OK(api_tools_detect("{{ '[TOOL_CALLS]' }}", 18) == API_TOOLS_MISTRAL);
    const char *l3 = "{%- if message.role == 'ipython' %}{{ '<|python_tag|>' + tool_call }}";
    T_OK(api_tools_detect(l3, strlen(l3)) == API_TOOLS_LLAMA3);
    api_tool_family f = API_TOOLS_NONE;
    bool au = false;
    T_OK(api_tools_family_from_name("llama3", &f, &au) == SW_OK && f == API_TOOLS_LLAMA3 && !au);
    T_OK(api_tools_family_from_name("auto", &f, &au) == SW_OK && au);
    T_OK(api_tools_family_from_name("bogus", &f, &au) != SW_OK);
}

static void test_json(void) {
    got g;
    run(API_TOOLS_HERMES, "<tool_call>{\"name\":\"f\",\"arguments\":{\"q\":\"a\\\"b\"}}</tool_call><tool_call>{\"name\":\"g\"}</tool_call>", NULL, 0, &g);
    T_EQ_INT(g.calls.n, 2);
    api_buf b = {0};
    T_OK(api_tool_calls_json(&g.calls, &b) == SW_OK);
    json_t *j = json_loads(b.p, 0, NULL);
    T_CHECK(json_is_array(j) && json_array_size(j) == 2, "%s", b.p);
    json_t *c0 = json_array_get(j, 0);
    const char *id = json_string_value(json_object_get(c0, "id"));
    T_CHECK(id && strlen(id) == 29 && !strncmp(id, "call_", 5), "id %s", id ? id : "(null)");
    bool alnum = id != NULL;
    for (const char *q = id ? id + 5 : ""; *q; q++) alnum &= isalnum((unsigned char)*q) != 0;
    T_OK(alnum);
    T_OK(strcmp(id ? id : "", json_string_value(json_object_get(json_array_get(j, 1), "id")) ?: "") != 0);
    T_OK(!strcmp(json_string_value(json_object_get(c0, "type")) ?: "", "function"));
    json_t *fn = json_object_get(c0, "function");
    T_OK(!strcmp(json_string_value(json_object_get(fn, "name")) ?: "", "f"));
    T_OK(!strcmp(json_string_value(json_object_get(fn, "arguments")) ?: "", "{\"q\":\"a\\\"b\"}"));
    json_decref(j);
    api_buf_free(&b);
    api_resp_meta m = {"chatcmpl-1", 5, "tiny"};
    api_tool_ev st = {API_TOOL_START, 1, "f", 1}, ar = {API_TOOL_ARGS, 1, "{\"a\"", 4};
    char *s1 = api_tools_chunk_json(&m, 2, &st, "call_x"), *s2 = api_tools_chunk_json(&m, 2, &ar, NULL);
    json_t *a = s1 ? json_loads(s1, 0, NULL) : NULL, *bb = s2 ? json_loads(s2, 0, NULL) : NULL;
    json_t *d1 = json_object_get(json_array_get(json_object_get(a, "choices"), 0), "delta");
    json_t *t1 = json_array_get(json_object_get(d1, "tool_calls"), 0);
    T_CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(a, "choices"), 0), "index")) == 2, "%s", s1);
    T_CHECK(json_integer_value(json_object_get(t1, "index")) == 1 && !strcmp(json_string_value(json_object_get(t1, "id")) ?: "", "call_x") &&
            !strcmp(json_string_value(json_object_get(json_object_get(t1, "function"), "name")) ?: "", "f") &&
            !strcmp(json_string_value(json_object_get(json_object_get(t1, "function"), "arguments")) ?: "x", ""), "%s", s1);
    json_t *t2 = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(bb, "choices"), 0), "delta"), "tool_calls"), 0);
    T_CHECK(!json_object_get(t2, "id") && !strcmp(json_string_value(json_object_get(json_object_get(t2, "function"), "arguments")) ?: "", "{\"a\""), "%s", s2);
    json_decref(a);
    json_decref(bb);
    free(s1);
    free(s2);
    got_free(&g);
}

/* Request fields (api_tools_parse_request through api_request_parse). */
static int parse(const char *extra, api_request *r, api_error *e) {
    char body[2048];
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]%s}", extra);
    memset(e, 0, sizeof *e);
    return api_request_parse(API_CHAT, body, strlen(body), r, e);
}

#define TOOLS ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"," \
              "\"properties\":{\"x\":{\"type\":\"integer\"}},\"required\":[\"x\"],\"additionalProperties\":false}}}," \
              "{\"type\":\"function\",\"function\":{\"name\":\"g\",\"description\":\"no parameters\"}}]"

static void bad(const char *extra, const char *param) {
    api_request r;
    api_error e;
    int rc = parse(extra, &r, &e);
    T_CHECK(rc != SW_OK && e.status == 400 && !strcmp(e.param, param), "%s: rc %d status %d param '%s' (%s), want '%s'", extra, rc,
            e.status, e.param, e.message, param);
    if (rc == SW_OK) api_request_free(&r);
}

static void test_request(void) {
    api_request r;
    api_error e;
    T_OK(parse(TOOLS, &r, &e) == SW_OK);
    T_OK(r.tools.list && r.tools.choice == API_TOOL_CHOICE_AUTO && r.tools.parallel);
    T_OK(api_tools_active(&r, API_TOOLS_HERMES) && !api_tools_active(&r, API_TOOLS_NONE));
    api_request_free(&r);
    T_OK(parse(TOOLS ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}},\"parallel_tool_calls\":false", &r, &e) == SW_OK);
    T_OK(r.tools.choice == API_TOOL_CHOICE_NAMED && r.tools.name && !strcmp(r.tools.name, "g") && !r.tools.parallel);
    api_request_free(&r);
    T_OK(parse(TOOLS ",\"tool_choice\":\"none\",\"response_format\":{\"type\":\"json_object\"}", &r, &e) == SW_OK);
    T_OK(!api_tools_active(&r, API_TOOLS_HERMES));
    api_request_free(&r);
    T_OK(parse(",\"tools\":null,\"tool_choice\":\"none\"", &r, &e) == SW_OK && !r.tools.list);
    api_request_free(&r);
    bad(",\"tools\":{}", "tools");
    bad(",\"tools\":[1]", "tools[0]");
    bad(",\"tools\":[{\"type\":\"code_interpreter\"}]", "tools[0].type");
    bad(",\"tools\":[{\"type\":\"function\"}]", "tools[0].function");
    bad(",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]", "tools[0].function.name");
    bad(",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},{\"type\":\"function\",\"function\":{\"name\":\"a\"}}]",
        "tools[1].function.name");
    bad(",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":[]}}]", "tools[0].function.parameters");
    bad(TOOLS ",\"tool_choice\":\"always\"", "tool_choice");
    bad(TOOLS ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"h\"}}", "tool_choice.function.name");
    bad(TOOLS ",\"tool_choice\":{\"type\":\"retrieval\"}", "tool_choice.type");
    bad(",\"tool_choice\":\"required\"", "tool_choice");
    bad(TOOLS ",\"parallel_tool_calls\":1", "parallel_tool_calls");
    bad(TOOLS ",\"grammar\":\"root ::= \\\"a\\\"\"", "grammar");
}

/* Whether g accepts text whole. */
static bool accepts(gram_grammar *g, const char *text) {
    gram_matcher *m = NULL;
    sw_err err = {0};
    if (gram_matcher_create(g, &m, &err)) return false;
    bool ok = gram_matcher_accept_bytes(m, text, strlen(text)) && gram_matcher_is_accepting(m);
    gram_matcher_destroy(m);
    return ok;
}

static void test_grammar(void) {
    gram_cache *c = NULL;
    sw_err err = {0};
    T_OK(gram_cache_create(NULL, 8, &c, &err) == SW_OK);
    if (!c) return;
    api_request r;
    api_error e;
    gram_grammar *g = NULL;
    const char *trig = "x";
    T_OK(parse(TOOLS ",\"tool_choice\":\"required\"", &r, &e) == SW_OK);
    T_CHECK(api_tools_grammar(c, API_TOOLS_HERMES, &r, &g, &trig, &e) == SW_OK && g && !trig, "%s", e.message);
    if (g) {
        T_OK(accepts(g, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 3}}\n</tool_call>"));
        T_OK(accepts(g, "<tool_call>{\"name\":\"g\",\"arguments\":{}}</tool_call>\n<tool_call>{\"name\":\"f\",\"arguments\":{\"x\":1}}</tool_call>"));
        T_OK(!accepts(g, "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>"));  /* x is required */
        T_OK(!accepts(g, "<tool_call>{\"name\":\"g\",\"arguments\":{\"y\":1}}</tool_call>")); /* g takes none */
        T_OK(!accepts(g, "Sure. <tool_call>{\"name\":\"g\",\"arguments\":{}}</tool_call>"));
    }
    gram_grammar_release(g);
    T_OK(api_tools_grammar(c, API_TOOLS_LLAMA3, &r, &g, &trig, &e) == SW_OK && g);
    if (g) T_OK(accepts(g, "{\"name\": \"f\", \"parameters\": {\"x\": 3}}; {\"name\": \"g\", \"parameters\": {}}"));
    gram_grammar_release(g);
    T_OK(api_tools_grammar(c, API_TOOLS_MISTRAL, &r, &g, &trig, &e) == SW_OK && g);
    if (g) T_OK(accepts(g, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"x\": 3}}, {\"name\": \"g\", \"arguments\": {}}]"));
    gram_grammar_release(g);
    T_OK(api_tools_grammar(c, API_TOOLS_NONE, &r, &g, &trig, &e) != SW_OK && e.status == 400 && !g);
    api_request_free(&r);
    /* named + parallel false: one call of that tool */
    T_OK(parse(TOOLS ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", &r, &e) == SW_OK);
    T_OK(api_tools_grammar(c, API_TOOLS_HERMES, &r, &g, &trig, &e) == SW_OK && g);
    if (g) {
        T_OK(accepts(g, "<tool_call>{\"name\":\"f\",\"arguments\":{\"x\":1}}</tool_call>"));
        T_OK(!accepts(g, "<tool_call>{\"name\":\"g\",\"arguments\":{}}</tool_call>"));
        T_OK(!accepts(g, "<tool_call>{\"name\":\"f\",\"arguments\":{\"x\":1}}</tool_call>\n<tool_call>{\"name\":\"f\",\"arguments\":{\"x\":1}}</tool_call>"));
    }
    gram_grammar_release(g);
    api_request_free(&r);
    /* auto: the same grammar, engaged by a trigger; none / no tools: nothing */
    T_OK(parse(TOOLS, &r, &e) == SW_OK);
    T_OK(api_tools_grammar(c, API_TOOLS_HERMES, &r, &g, &trig, &e) == SW_OK && g && trig && !strcmp(trig, "<tool_call>"));
    gram_grammar_release(g);
    T_OK(api_tools_grammar(c, API_TOOLS_NONE, &r, &g, &trig, &e) == SW_OK && !g);
    api_request_free(&r);
    T_OK(parse(TOOLS ",\"tool_choice\":\"none\"", &r, &e) == SW_OK);
    T_OK(api_tools_grammar(c, API_TOOLS_HERMES, &r, &g, &trig, &e) == SW_OK && !g);
    api_request_free(&r);
    /* a parameters keyword that cannot be enforced: 400 naming tools */
    T_OK(parse(",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"not\":{}}}}],"
               "\"tool_choice\":\"required\"", &r, &e) == SW_OK);
    T_OK(api_tools_grammar(c, API_TOOLS_HERMES, &r, &g, &trig, &e) != SW_OK && e.status == 400 && !strcmp(e.param, "tools") &&
         strstr(e.message, "not"));
    api_request_free(&r);
    gram_cache_destroy(c);
}

int main(void) {
    test_request();
    test_grammar();
    test_hermes();
    test_llama3();
    test_mistral();
    test_none();
    test_detect();
    test_json();
    return t_done();
}
