/* api_request.c — parses and validates the JSON body of POST /v1/completions and
 * /v1/chat/completions into an api_request. Every field is type- and range-checked;
 * the first problem becomes a 400 error naming the field (`param`), as OpenAI does.
 * JSON null means "not given". Fields are checked against an allow-list per endpoint:
 * a field that would change the result but is not supported (echo, best_of > 1, suffix,
 * functions, audio, ...) is a 400 naming it, and so is an unknown field ("Unrecognized
 * request argument", as OpenAI answers) — never silently ignored. Harmless metadata
 * (store, metadata, service_tier, ...) is accepted. */
#include "server/server.h"
#include "server/api_tools.h"
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

static int bad(api_error *e, const char *param, const char *fmt, const char *what) {
    return api_error_set(e, 400, INVALID, NULL, param, fmt, param, what);
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Field lookup: returns NULL when absent or null. */
static json_t *field(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

static int get_double(json_t *root, const char *key, double lo, double hi, double *out, api_error *e) {
    json_t *v = field(root, key);
    if (!v) return SW_OK;
    if (!json_is_number(v)) return bad(e, key, "'%s' must be %s", "a number");
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return api_error_set(e, 400, INVALID, NULL, key, "'%s' must be between %g and %g", key, lo, hi);
    *out = d;
    return SW_OK;
}

static int get_number(json_t *root, const char *key, double lo, double hi, float *out, api_error *e) {
    double d = *out;
    int rc = get_double(root, key, lo, hi, &d, e);
    *out = (float)d;
    return rc;
}

static int get_int(json_t *root, const char *key, long long lo, long long hi, int *out, api_error *e) {
    json_t *v = field(root, key);
    if (!v) return SW_OK;
    if (!json_is_integer(v)) return bad(e, key, "'%s' must be %s", "an integer");
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return api_error_set(e, 400, INVALID, NULL, key, "'%s' must be between %lld and %lld", key, lo, hi);
    *out = (int)x;
    return SW_OK;
}

static int get_bool(json_t *root, const char *key, bool *out, api_error *e) {
    json_t *v = field(root, key);
    if (!v) return SW_OK;
    if (!json_is_boolean(v)) return bad(e, key, "'%s' must be %s", "a boolean");
    *out = json_is_true(v);
    return SW_OK;
}

static int get_string(json_t *root, const char *key, char **out, api_error *e) {
    json_t *v = field(root, key);
    if (!v) return SW_OK;
    if (!json_is_string(v)) return bad(e, key, "'%s' must be %s", "a string");
    *out = dup_n(json_string_value(v), json_string_length(v));
    if (!*out) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    return SW_OK;
}

static int parse_prompt(json_t *root, api_request *r, api_error *e) {
    json_t *v = field(root, "prompt");
    if (!v) return api_error_set(e, 400, INVALID, NULL, "prompt", "'prompt' is required");
    if (json_is_array(v) && json_array_size(v) == 1 && json_is_string(json_array_get(v, 0)))
        v = json_array_get(v, 0); /* ["text"]: a batch of one */
    if (json_is_string(v)) {
        r->prompt_len = json_string_length(v);
        r->prompt = dup_n(json_string_value(v), r->prompt_len);
        if (!r->prompt) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return SW_OK;
    }
    if (!json_is_array(v))
        return bad(e, "prompt", "'%s' must be %s", "a string or an array of token ids");
    size_t n = json_array_size(v);
    if (n == 0) return bad(e, "prompt", "'%s' must be %s", "non-empty");
    if (n > (1u << 20)) return bad(e, "prompt", "'%s' is %s", "too long");
    r->prompt_ids = malloc(n * sizeof *r->prompt_ids);
    if (!r->prompt_ids) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX) {
            if (json_is_string(x))
                return bad(e, "prompt", "'%s' %s", "must be one string: batches of prompts are not supported");
            return bad(e, "prompt", "'%s' must be %s", "a string or an array of non-negative token ids");
        }
        r->prompt_ids[i] = (int32_t)json_integer_value(x);
    }
    r->n_prompt_ids = (int)n;
    return SW_OK;
}

/* content: string, or array of {"type":"text","text":...} parts (concatenated). */
static int parse_content(json_t *c, char **out, api_error *e) {
    if (!c) { *out = dup_n("", 0); goto done; }
    if (json_is_string(c)) { *out = dup_n(json_string_value(c), json_string_length(c)); goto done; }
    if (!json_is_array(c))
        return bad(e, "messages", "'%s' content must be %s", "a string or an array of text parts");
    api_buf b = {0};
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
            !json_is_string(text)) {
            api_buf_free(&b);
            return bad(e, "messages", "'%s' content parts must be %s", "{\"type\":\"text\",\"text\":string}");
        }
        if (api_buf_append(&b, json_string_value(text), json_string_length(text)) != SW_OK) {
            api_buf_free(&b);
            return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        }
    }
    *out = b.p ? b.p : dup_n("", 0);
done:
    if (!*out) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    return SW_OK;
}

static int parse_messages(json_t *root, api_request *r, api_error *e) {
    json_t *v = field(root, "messages");
    if (!v) return api_error_set(e, 400, INVALID, NULL, "messages", "'messages' is required");
    if (!json_is_array(v)) return bad(e, "messages", "'%s' must be %s", "an array");
    size_t n = json_array_size(v);
    if (n == 0) return bad(e, "messages", "'%s' must be %s", "non-empty");
    if (n > API_MAX_MESSAGES) return bad(e, "messages", "'%s' has %s", "too many entries");
    r->messages = calloc(n, sizeof *r->messages);
    if (!r->messages) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        if (!json_is_object(m)) return bad(e, "messages", "'%s' entries must be %s", "objects");
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role)) return bad(e, "messages", "'%s' entries need %s", "a string 'role'");
        const char *rs = json_string_value(role);
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "developer") &&
            strcmp(rs, "tool"))
            return bad(e, "messages", "'%s' role must be %s", "system, developer, user, assistant or tool");
        r->n_messages = (int)i + 1; /* from here on entry i owns memory */
        r->messages[i].role = dup_n(rs, strlen(rs));
        if (!r->messages[i].role) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        int rc = parse_content(field(m, "content"), &r->messages[i].content, e);
        if (rc) return rc;
    }
    return SW_OK;
}

#define API_MAX_STOP_BYTES 1024 /* per stop string, however given */

static int parse_stop(json_t *root, api_request *r, api_error *e) {
    json_t *v = field(root, "stop");
    if (!v) return SW_OK;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0) return SW_OK;
        if (json_string_length(v) > API_MAX_STOP_BYTES)
            return bad(e, "stop", "'%s' strings must be %s", "at most 1024 bytes");
        r->stop[0] = dup_n(json_string_value(v), json_string_length(v));
        if (!r->stop[0]) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        r->n_stop = 1;
        return SW_OK;
    }
    if (!json_is_array(v)) return bad(e, "stop", "'%s' must be %s", "a string or an array of strings");
    if (json_array_size(v) > API_MAX_STOP) return bad(e, "stop", "'%s' may hold %s", "at most 4 strings");
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s)) return bad(e, "stop", "'%s' must be %s", "a string or an array of strings");
        if (json_string_length(s) == 0) continue;
        if (json_string_length(s) > API_MAX_STOP_BYTES)
            return bad(e, "stop", "'%s' strings must be %s", "at most 1024 bytes");
        r->stop[r->n_stop] = dup_n(json_string_value(s), json_string_length(s));
        if (!r->stop[r->n_stop]) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        r->n_stop++;
    }
    return SW_OK;
}

static int parse_logprobs(json_t *root, api_request *r, api_error *e) {
    json_t *v = field(root, "logprobs");
    if (r->kind == API_COMPLETIONS) {
        /* completions: logprobs = number of alternatives (0..20); 0 still reports the sampled one */
        if (!v) return SW_OK;
        if (!json_is_integer(v)) return bad(e, "logprobs", "'%s' must be %s", "an integer");
        long long x = json_integer_value(v);
        if (x < 0 || x > API_MAX_LOGPROBS) return bad(e, "logprobs", "'%s' must be %s", "between 0 and 20");
        r->logprobs = true;
        r->top_logprobs = (int)x;
        return SW_OK;
    }
    int rc = get_bool(root, "logprobs", &r->logprobs, e);
    if (rc) return rc;
    rc = get_int(root, "top_logprobs", 0, API_MAX_LOGPROBS, &r->top_logprobs, e);
    if (rc) return rc;
    if (r->top_logprobs > 0 && !r->logprobs)
        return bad(e, "top_logprobs", "'%s' requires %s", "'logprobs': true");
    return SW_OK;
}

/* Fields each endpoint honours (or accepts as metadata that does not change the result). */
static const char *const FIELDS_COMMON[] = {
    "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "presence_penalty",
    "frequency_penalty", "logprobs", "n", "stream", "stream_options", "ignore_eos", "user", "cache_salt",
    "priority", "slo_ttft_ms", "slo_tpot_ms", "timeout",
    /* api_grammar.c */
    "response_format", "json_schema", "guided_json", "grammar", "guided_grammar", "guided_regex", "guided_choice",
    "logit_bias",
    /* metadata (type-checked in check_metadata) */
    "store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier", NULL};
static const char *const FIELDS_CHAT[] = {
    "messages", "max_completion_tokens", "top_logprobs",
    /* read by the chat template (api_chat.c, jinja_chat.c) */
    "chat_template_kwargs", "add_generation_prompt",
    /* tool calling */
    "tools", "tool_choice", "parallel_tool_calls", NULL};
static const char *const FIELDS_COMPLETIONS[] = {"prompt", NULL};

static bool listed(const char *const *list, const char *k) {
    for (; *list; list++)
        if (!strcmp(*list, k)) return true;
    return false;
}

/* An OpenAI field this server does not support: a 400 naming it unless its value is the
 * one that changes nothing. Returns 1 when k is not such a field. */
static int refuse_unsupported(const char *k, json_t *v, api_error *e) {
    if (!strcmp(k, "echo")) {
        if (json_is_false(v)) return SW_OK;
        return bad(e, k, "'%s' is not supported%s", " (echoing the prompt back)");
    }
    if (!strcmp(k, "best_of")) {
        if (json_is_integer(v) && json_integer_value(v) == 1) return SW_OK;
        return bad(e, k, "'%s' is not supported%s", " (other than 1; use 'n' for several choices)");
    }
    if (!strcmp(k, "suffix")) {
        if (json_is_string(v) && json_string_length(v) == 0) return SW_OK;
        return bad(e, k, "'%s' is not supported%s", " (insertion)");
    }
    if (!strcmp(k, "modalities")) {
        if (json_is_array(v) && json_array_size(v) == 1 && json_is_string(json_array_get(v, 0)) &&
            !strcmp(json_string_value(json_array_get(v, 0)), "text"))
            return SW_OK;
        return bad(e, k, "'%s' is not supported%s", " (other than [\"text\"])");
    }
    if (!strcmp(k, "functions") || !strcmp(k, "function_call"))
        return bad(e, k, "'%s' is not supported%s", " (deprecated by OpenAI: use 'tools' and 'tool_choice')");
    if (!strcmp(k, "reasoning_effort"))
        return bad(e, k, "'%s' is not supported%s",
                   " (the amount of reasoning cannot be set; a template that takes it reads "
                   "chat_template_kwargs.enable_thinking)");
    if (!strcmp(k, "audio") || !strcmp(k, "prediction") || !strcmp(k, "web_search_options"))
        return bad(e, k, "'%s' is not supported%s", "");
    return 1;
}

static int check_metadata(json_t *root, api_error *e) {
    json_t *v;
    if ((v = field(root, "store")) && !json_is_boolean(v)) return bad(e, "store", "'%s' must be %s", "a boolean");
    if ((v = field(root, "metadata")) && !json_is_object(v)) return bad(e, "metadata", "'%s' must be %s", "an object");
    static const char *const strs[] = {"service_tier", "prompt_cache_key", "safety_identifier"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if ((v = field(root, strs[i])) && !json_is_string(v)) return bad(e, strs[i], "'%s' must be %s", "a string");
    return SW_OK;
}

/* Every non-null field of the body must be one the endpoint knows. */
static int check_fields(json_t *root, api_kind kind, api_error *e) {
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (json_is_null(v) || listed(FIELDS_COMMON, k) || listed(kind == API_CHAT ? FIELDS_CHAT : FIELDS_COMPLETIONS, k))
            continue;
        int rc = refuse_unsupported(k, v, e);
        if (rc <= 0) {
            if (rc) return rc;
            continue;
        }
        return api_error_set(e, 400, INVALID, NULL, k, "Unrecognized request argument supplied: %s", k);
    }
    return check_metadata(root, e);
}

static int parse_fields(json_t *root, api_request *r, api_error *e) {
    int rc;
    if ((rc = check_fields(root, r->kind, e))) return rc;
    if ((rc = get_string(root, "model", &r->model, e))) return rc;
    if (r->kind == API_CHAT) {
        if ((rc = parse_messages(root, r, e))) return rc;
    } else if ((rc = parse_prompt(root, r, e))) {
        return rc;
    }
    const char *mt = r->kind == API_CHAT && field(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((rc = get_int(root, mt, 1, INT32_MAX, &r->max_tokens, e))) return rc;
    if ((rc = get_number(root, "temperature", 0, 2, &r->temperature, e))) return rc;
    if ((rc = get_number(root, "top_p", 0, 1, &r->top_p, e))) return rc;
    if (field(root, "top_p") && r->top_p <= 0) return bad(e, "top_p", "'%s' must be %s", "in (0, 1]");
    if ((rc = get_int(root, "top_k", -1, INT32_MAX, &r->top_k, e))) return rc;
    if (r->top_k < 0) r->top_k = 0;
    if ((rc = get_number(root, "min_p", 0, 1, &r->min_p, e))) return rc;
    json_t *seed = field(root, "seed");
    if (seed) {
        if (!json_is_integer(seed)) return bad(e, "seed", "'%s' must be %s", "an integer");
        r->has_seed = true;
        r->seed = (uint64_t)json_integer_value(seed);
    }
    if ((rc = parse_stop(root, r, e))) return rc;
    if ((rc = get_number(root, "presence_penalty", -2, 2, &r->presence_penalty, e))) return rc;
    if ((rc = get_number(root, "frequency_penalty", -2, 2, &r->frequency_penalty, e))) return rc;
    if ((rc = parse_logprobs(root, r, e))) return rc;
    if ((rc = get_int(root, "n", 1, API_MAX_N, &r->n, e))) return rc;
    if ((rc = get_bool(root, "stream", &r->stream, e))) return rc;
    json_t *so = field(root, "stream_options");
    if (so) {
        if (!json_is_object(so)) return bad(e, "stream_options", "'%s' must be %s", "an object");
        if (!r->stream) return bad(e, "stream_options", "'%s' requires %s", "'stream': true");
        json_t *iu = field(so, "include_usage");
        if (iu && !json_is_boolean(iu))
            return bad(e, "stream_options.include_usage", "'%s' must be %s", "a boolean");
        r->include_usage = iu && json_is_true(iu);
    }
    if ((rc = get_bool(root, "ignore_eos", &r->ignore_eos, e))) return rc;
    if ((rc = get_string(root, "user", &r->user, e))) return rc;
    if ((rc = get_string(root, "cache_salt", &r->cache_salt, e))) return rc;
    if (r->cache_salt && !r->cache_salt[0]) return bad(e, "cache_salt", "'%s' must be %s", "a non-empty string");
    if ((rc = get_int(root, "priority", -1000000, 1000000, &r->priority, e))) return rc;
    if ((rc = get_double(root, "slo_ttft_ms", 0, 1e9, &r->slo_ttft_ms, e))) return rc;
    if ((rc = get_double(root, "slo_tpot_ms", 0, 1e9, &r->slo_tpot_ms, e))) return rc;
    if ((rc = get_double(root, "timeout", 0, 86400, &r->timeout_s, e))) return rc;
    if ((rc = api_parse_structured(root, r, e))) return rc;
    return r->kind == API_CHAT ? api_tools_parse_request(root, r, e) : SW_OK;
}

int api_request_parse(api_kind kind, const char *body, size_t len, api_request *out, api_error *e) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->max_tokens = -1;
    out->temperature = 1.0f;
    out->top_p = 1.0f;
    out->n = 1;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root)
        return api_error_set(e, 400, INVALID, NULL, NULL, "malformed JSON body: %s (line %d, column %d)",
                             jerr.text, jerr.line, jerr.column);
    int rc;
    if (!json_is_object(root))
        rc = api_error_set(e, 400, INVALID, NULL, NULL, "the request body must be a JSON object");
    else
        rc = parse_fields(root, out, e);
    if (!rc && kind == API_CHAT) out->body = json_incref(root);
    json_decref(root);
    if (rc) api_request_free(out);
    return rc;
}

void api_request_free(api_request *r) {
    free(r->model);
    free(r->prompt);
    free(r->prompt_ids);
    for (int i = 0; i < r->n_messages; i++) {
        free(r->messages[i].role);
        free(r->messages[i].content);
    }
    free(r->messages);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->user);
    free(r->cache_salt);
    json_decref(r->body);
    api_structured_free(r);
    api_tools_req_free(&r->tools);
    api_kind kind = r->kind;
    memset(r, 0, sizeof *r);
    r->kind = kind;
}
