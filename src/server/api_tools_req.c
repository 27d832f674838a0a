/* api_tools_req.c — the request and response sides of tool calling (see api_tools.h):
 * tools / tool_choice / parallel_tool_calls validated into api_request.tools; the grammar
 * of a request's calls (each call = the family's framing around a JSON object whose name
 * is one of the allowed tools and whose arguments follow that tool's `parameters`
 * schema: an anyOf over the tools, compiled by the grammar module through the cache);
 * collected calls as message.tool_calls JSON; streaming delta.tool_calls chunks; call ids. */
#include "server/api_tools.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

/* ---------- request ---------- */
static bool good_name(const char *s, size_t n) {
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return false;
    return true;
}

static int parse_tools(json_t *tools, api_error *e) {
    if (!json_is_array(tools)) return api_error_set(e, 400, INVALID, NULL, "tools", "'tools' must be an array of tools");
    if (json_array_size(tools) > 128) return api_error_set(e, 400, INVALID, NULL, "tools", "'tools' holds more than 128 tools");
    char p[64];
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *type = json_object_get(t, "type"), *fn = json_object_get(t, "function");
        snprintf(p, sizeof p, "tools[%zu]", i);
        if (!json_is_object(t)) return api_error_set(e, 400, INVALID, NULL, p, "'%s' must be an object", p);
        snprintf(p, sizeof p, "tools[%zu].type", i);
        if (!json_is_string(type)) return api_error_set(e, 400, INVALID, NULL, p, "'%s' must be a string", p);
        if (strcmp(json_string_value(type), "function"))
            return api_error_set(e, 400, INVALID, NULL, p, "'%s': unsupported tool type '%.40s' (only 'function')", p, json_string_value(type));
        snprintf(p, sizeof p, "tools[%zu].function", i);
        if (!json_is_object(fn)) return api_error_set(e, 400, INVALID, NULL, p, "'%s' must be an object", p);
        json_t *name = json_object_get(fn, "name"), *desc = json_object_get(fn, "description");
        json_t *params = json_object_get(fn, "parameters"), *strict = json_object_get(fn, "strict");
        snprintf(p, sizeof p, "tools[%zu].function.name", i);
        if (!json_is_string(name) || !good_name(json_string_value(name), json_string_length(name)))
            return api_error_set(e, 400, INVALID, NULL, p, "'%s' must be 1-64 letters, digits, '_', '-' or '.'", p);
        for (size_t k = 0; k < i; k++)
            if (json_equal(name, json_object_get(json_object_get(json_array_get(tools, k), "function"), "name")))
                return api_error_set(e, 400, INVALID, NULL, p, "'%s': the tool name '%s' is given twice", p, json_string_value(name));
        snprintf(p, sizeof p, "tools[%zu].function.description", i);
        if (desc && !json_is_string(desc) && !json_is_null(desc)) return api_error_set(e, 400, INVALID, NULL, p, "'%s' must be a string", p);
        snprintf(p, sizeof p, "tools[%zu].function.parameters", i);
        if (params && !json_is_object(params) && !json_is_null(params))
            return api_error_set(e, 400, INVALID, NULL, p, "'%s' must be a JSON Schema object", p);
        snprintf(p, sizeof p, "tools[%zu].function.strict", i);
        if (strict && !json_is_boolean(strict) && !json_is_null(strict)) return api_error_set(e, 400, INVALID, NULL, p, "'%s' must be a boolean", p);
    }
    return SW_OK;
}

static bool tool_exists(json_t *tools, const char *name) {
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
        if (!strcmp(json_string_value(json_object_get(json_object_get(t, "function"), "name")) ?: "", name)) return true;
    return false;
}

static int parse_choice(json_t *tc, api_tool_req *tr, api_error *e) {
    const char *P = "tool_choice";
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!strcmp(s, "none")) tr->choice = API_TOOL_CHOICE_NONE;
        else if (!strcmp(s, "auto")) tr->choice = API_TOOL_CHOICE_AUTO;
        else if (!strcmp(s, "required")) tr->choice = API_TOOL_CHOICE_REQUIRED;
        else return api_error_set(e, 400, INVALID, NULL, P, "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}");
        return SW_OK;
    }
    json_t *type = json_object_get(tc, "type"), *fn = json_object_get(tc, "function");
    json_t *name = json_object_get(fn, "name");
    if (!json_is_object(tc) || !json_is_string(type) || strcmp(json_string_value(type), "function"))
        return api_error_set(e, 400, INVALID, NULL, "tool_choice.type", "'tool_choice' must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (!json_is_string(name)) return api_error_set(e, 400, INVALID, NULL, "tool_choice.function.name", "'tool_choice.function.name' must be a string");
    if (!tr->list || !tool_exists(tr->list, json_string_value(name)))
        return api_error_set(e, 400, INVALID, NULL, "tool_choice.function.name", "'tool_choice.function.name': no tool named '%.64s' in 'tools'", json_string_value(name));
    tr->name = strdup(json_string_value(name));
    if (!tr->name) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    tr->choice = API_TOOL_CHOICE_NAMED;
    return SW_OK;
}

int api_tools_parse_request(json_t *root, api_request *r, api_error *e) {
    api_tool_req *tr = &r->tools;
    tr->parallel = true;
    tr->choice = API_TOOL_CHOICE_AUTO;
    json_t *tools = json_object_get(root, "tools"), *tc = json_object_get(root, "tool_choice");
    json_t *par = json_object_get(root, "parallel_tool_calls");
    if (json_is_null(tools)) tools = NULL;
    if (tools) {
        int rc = parse_tools(tools, e);
        if (rc) return rc;
        if (json_array_size(tools)) tr->list = json_incref(tools);
    }
    if (par && !json_is_null(par)) {
        if (!json_is_boolean(par)) return api_error_set(e, 400, INVALID, NULL, "parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
        tr->parallel = json_is_true(par);
    }
    if (tc && !json_is_null(tc)) {
        int rc = parse_choice(tc, tr, e);
        if (rc) return rc;
        if (!tr->list && tr->choice != API_TOOL_CHOICE_NONE && tr->choice != API_TOOL_CHOICE_AUTO)
            return api_error_set(e, 400, INVALID, NULL, "tool_choice", "'tool_choice' needs 'tools'");
    }
    if (tr->list && tr->choice != API_TOOL_CHOICE_NONE && r->gkind)
        return api_error_set(e, 400, INVALID, NULL, r->gparam,
                             "'%s' cannot be combined with 'tools' (unless 'tool_choice' is 'none'): one output constraint per request",
                             r->gparam);
    return SW_OK;
}

void api_tools_req_free(api_tool_req *tr) {
    json_decref(tr->list);
    free(tr->name);
    memset(tr, 0, sizeof *tr);
}

bool api_tools_active(const api_request *r, api_tool_family f) {
    return f != API_TOOLS_NONE && r->tools.list && r->tools.choice != API_TOOL_CHOICE_NONE;
}

/* ---------- grammar ---------- */
/* {"type":"object","properties":{"name":{"const":N},ARGKEY:PARAMS},"required":[...],
 * "additionalProperties":false} for one tool. */
static json_t *call_schema(json_t *fn, const char *argkey) {
    json_t *params = json_object_get(fn, "parameters");
    json_t *ps = json_is_object(params) ? json_incref(params) : json_pack("{s:s, s:{}, s:b}", "type", "object", "properties", "additionalProperties", 0);
    return json_pack("{s:s, s:{s:{s:O}, s:o}, s:[s, s], s:b}", "type", "object", "properties", "name", "const",
                     json_object_get(fn, "name"), argkey, ps, "required", "name", argkey, "additionalProperties", 0);
}

int api_tools_grammar(gram_cache *c, api_tool_family f, const api_request *r, gram_grammar **out,
                      const char **trigger, api_error *e) {
    *out = NULL;
    *trigger = NULL;
    const api_tool_req *tr = &r->tools;
    if (!tr->list || tr->choice == API_TOOL_CHOICE_NONE) return SW_OK;
    if (f == API_TOOLS_NONE) {
        if (tr->choice == API_TOOL_CHOICE_AUTO) return SW_OK; /* no call syntax: plain text */
        return api_error_set(e, 400, INVALID, NULL, "tool_choice",
                             "'tool_choice': this model's chat template shows no tool-call syntax (start the server with --tool-parser)");
    }
    if (!c) return api_error_set(e, 400, INVALID, NULL, "tools", "'tools': constrained tool calls are not available on this server");
    const char *argkey = f == API_TOOLS_LLAMA3 ? "parameters" : "arguments";
    json_t *alts = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tr->list, i, t) {
        json_t *fn = json_object_get(t, "function");
        if (tr->choice == API_TOOL_CHOICE_NAMED && strcmp(json_string_value(json_object_get(fn, "name")) ?: "", tr->name)) continue;
        json_array_append_new(alts, call_schema(fn, argkey));
    }
    json_t *item = json_array_size(alts) == 1 ? json_incref(json_array_get(alts, 0)) : json_pack("{s:O}", "anyOf", alts);
    json_decref(alts);
    /* framing: prefix (open item close)(sep open item close)* suffix */
    static const char *const FR[][6] = { /* prefix, open, close, sep, suffix, lazy trigger */
        [API_TOOLS_HERMES] = {"", "<tool_call>", "</tool_call>", "\n", "", "<tool_call>"}, /* whitespace around the JSON: any (bounded) */
        [API_TOOLS_LLAMA3] = {"", "", "", "; ", "", "{\"name\""},
        [API_TOOLS_MISTRAL] = {"[TOOL_CALLS][", "", "", ", ", "]", "[TOOL_CALLS]"},
    };
    bool one = !tr->parallel || tr->choice == API_TOOL_CHOICE_NAMED;
    json_t *spec = json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "schema", item, "prefix", FR[f][0], "open", FR[f][1],
                             "close", FR[f][2], "sep", FR[f][3], "suffix", FR[f][4], "min", 1, "max", one ? 1 : -1);
    char *text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    json_decref(spec);
    if (!text) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    sw_err err = {0};
    int rc = gram_cache_get(c, "framed", text, strlen(text), out, &err);
    free(text);
    if (rc == SW_ERR_NOMEM) return api_error_set(e, 500, "server_error", NULL, NULL, "%s", err.msg);
    if (rc) return api_error_set(e, 400, INVALID, NULL, "tools", "'tools': a tool's parameters cannot be enforced: %s", err.msg);
    if (tr->choice == API_TOOL_CHOICE_AUTO) *trigger = FR[f][5];
    return SW_OK;
}

/* ---------- calls and their JSON ---------- */
void api_tools_call_id(uint64_t *rng, char out[32]) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    memcpy(out, "call_", 5);
    for (int i = 0; i < 24; i++) {
        uint64_t z = (*rng += 0x9E3779B97F4A7C15ull); /* splitmix64 */
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        out[5 + i] = A[z % 62];
    }
    out[29] = 0;
}

int api_tool_calls_add(api_tool_calls *c, const api_tool_ev *ev, uint64_t *rng) {
    if (ev->kind == API_TOOL_START) {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 4;
            api_tool_call *v = realloc(c->v, (size_t)cap * sizeof *v);
            if (!v) return SW_ERR_NOMEM;
            c->v = v;
            c->cap = cap;
        }
        api_tool_call *t = &c->v[c->n];
        memset(t, 0, sizeof *t);
        if (!(t->name = strndup(ev->s, ev->len))) return SW_ERR_NOMEM;
        api_tools_call_id(rng, t->id);
        c->n++;
        return SW_OK;
    }
    if (ev->kind == API_TOOL_ARGS && c->n > 0) return api_buf_append(&c->v[c->n - 1].args, ev->s, ev->len);
    return SW_OK;
}

void api_tool_calls_free(api_tool_calls *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->v[i].name);
        api_buf_free(&c->v[i].args);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

int api_tool_calls_json(const api_tool_calls *c, api_buf *out) {
    json_t *a = json_array();
    for (int i = 0; a && i < c->n; i++) {
        const api_tool_call *t = &c->v[i];
        json_t *name = api_json_text(t->name, strlen(t->name)), *args = api_json_text(t->args.p ? t->args.p : "", t->args.len);
        json_t *o = name && args ? json_pack("{s:s, s:s, s:{s:o, s:o}}", "id", t->id, "type", "function", "function", "name", name, "arguments", args) : NULL;
        if (!o) { json_decref(name); json_decref(args); json_decref(a); return SW_ERR_NOMEM; }
        json_array_append_new(a, o);
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    int rc = s ? api_buf_append(out, s, strlen(s)) : SW_ERR_NOMEM;
    free(s);
    return rc;
}

char *api_tools_chunk_json(const api_resp_meta *m, int choice, const api_tool_ev *ev, const char *id) {
    json_t *fn = json_object();
    json_t *args = api_json_text(ev->kind == API_TOOL_ARGS ? ev->s : "", ev->kind == API_TOOL_ARGS ? ev->len : 0);
    json_t *call = json_pack("{s:i}", "index", ev->index);
    bool ok = fn && args && call;
    if (ok && ev->kind == API_TOOL_START) {
        json_t *name = api_json_text(ev->s, ev->len);
        ok = name && !json_object_set_new(fn, "name", name) && !json_object_set_new(call, "id", json_string(id ? id : "")) &&
             !json_object_set_new(call, "type", json_string("function"));
    }
    ok = ok && !json_object_set_new(fn, "arguments", args);
    args = NULL;
    ok = ok && !json_object_set_new(call, "function", fn);
    fn = NULL;
    json_t *root = ok ? json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:[o]}, s:n, s:n}]}", "id", m->id, "object", "chat.completion.chunk",
                                  "created", (json_int_t)m->created, "model", m->model, "choices", "index", choice, "delta",
                                  "tool_calls", call, "logprobs", "finish_reason")
                      : NULL;
    if (!root) json_decref(call);
    json_decref(fn);
    json_decref(args);
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}
