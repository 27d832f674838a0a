/* server_toolparse.c — libFuzzer target for the tool-call output parser (api_tools.c):
 * the first byte picks the family (hermes, llama3, mistral, none) and the rest is model
 * output, parsed whole and again in chunks whose sizes come from the input. Checks: the
 * same content and calls either way; events in order (START with the next index, ARGS
 * and END only for the open call, every START ended); the collected calls' JSON parses
 * and the streaming chunk of every event is built. */
#include "server/api_tools.h"
#include <stdlib.h>
#include <string.h>

typedef struct run { api_buf content; api_tool_calls calls; int open; uint64_t rng; } run;

static int sink(void *ctx, const api_tool_ev *ev) {
    run *r = ctx;
    if (ev->kind == API_TOOL_TEXT && r->open >= 0) abort();
    if (ev->kind == API_TOOL_START) {
        if (r->open >= 0 || ev->index != r->calls.n) abort();
        r->open = ev->index;
    }
    if ((ev->kind == API_TOOL_ARGS || ev->kind == API_TOOL_END) && r->open != ev->index) abort();
    if (ev->kind == API_TOOL_END) r->open = -1;
    api_resp_meta m = {"chatcmpl-fuzz", 0, "m"};
    if (ev->kind == API_TOOL_START || ev->kind == API_TOOL_ARGS) {
        char *js = api_tools_chunk_json(&m, 0, ev, "call_x");
        if (!js) abort();
        free(js);
    }
    if (ev->kind == API_TOOL_TEXT) return api_buf_append(&r->content, ev->s, ev->len);
    return api_tool_calls_add(&r->calls, ev, &r->rng);
}

static void parse(api_tool_family f, const uint8_t *d, size_t n, const uint8_t *cuts, size_t n_cuts, run *r) {
    memset(r, 0, sizeof *r);
    r->open = -1;
    api_tools_parser *p;
    if (api_tools_parser_create(f, &p)) abort();
    size_t at = 0, k = 0;
    while (at < n) {
        size_t step = n_cuts ? (size_t)cuts[k++ % n_cuts] % 9 + 1 : n;
        if (step > n - at) step = n - at;
        api_tools_feed(p, (const char *)d + at, step, sink, r);
        at += step;
    }
    api_tools_finish(p, sink, r);
    if (r->open >= 0) abort();
    api_tools_parser_destroy(p);
}

static void run_free(run *r) {
    api_buf_free(&r->content);
    api_tool_calls_free(&r->calls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const api_tool_family fams[] = {API_TOOLS_HERMES, API_TOOLS_LLAMA3, API_TOOLS_MISTRAL, API_TOOLS_NONE};
    api_tool_family f = fams[data[0] & 3];
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    run a, b;
    parse(f, d, n, NULL, 0, &a);
    parse(f, d, n, d, n, &b);
    if (a.content.len != b.content.len || (a.content.len && memcmp(a.content.p, b.content.p, a.content.len))) abort();
    if (a.calls.n != b.calls.n) abort();
    for (int i = 0; i < a.calls.n; i++) {
        api_tool_call *x = &a.calls.v[i], *y = &b.calls.v[i];
        if (strcmp(x->name, y->name) || x->args.len != y->args.len || (x->args.len && memcmp(x->args.p, y->args.p, x->args.len))) abort();
    }
    if (f == API_TOOLS_NONE && (a.calls.n || a.content.len != n)) abort();
    api_buf js = {0};
    if (api_tool_calls_json(&a.calls, &js) == SW_OK) {
        json_t *j = json_loadb(js.p, js.len, JSON_ALLOW_NUL, NULL); /* arguments may hold NUL characters */
        if (!j || (int)json_array_size(j) != a.calls.n) abort();
        json_decref(j);
    }
    api_buf_free(&js);
    run_free(&a);
    run_free(&b);
    return 0;
}
