/* api_json.c — the output side of the OpenAI API: a growable byte buffer, the error body
 * {"error":{"message","type","param","code"}}, streaming chunk JSON and SSE framing
 * ("data: ...\n\n", "data: [DONE]\n\n"). JSON is built with jansson. */
#include "server/server.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(api_buf *b, size_t extra) {
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need) || need == SIZE_MAX) return SW_ERR_NOMEM;
    need += 1; /* NUL */
    if (need <= b->cap) return SW_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return SW_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
    return SW_OK;
}

int api_buf_append(api_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) != SW_OK) return SW_ERR_NOMEM;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return SW_OK;
}

int api_buf_printf(api_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return SW_ERR_FORMAT;
    if (buf_reserve(b, (size_t)n) != SW_OK) return SW_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SW_OK;
}

void api_buf_free(api_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                  const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof e->message) { /* cut: end on a character boundary, not inside one */
        size_t k = sizeof e->message - 1;
        size_t lead = k;
        while (lead > 0 && lead > k - 4 && ((unsigned char)e->message[lead - 1] & 0xc0) == 0x80) lead--;
        if (lead > 0 && (unsigned char)e->message[lead - 1] >= 0xc0) {
            unsigned char c = (unsigned char)e->message[lead - 1];
            size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (k - (lead - 1) < want) e->message[lead - 1] = 0;
        }
    }
    return SW_ERR_ARG;
}

/* Every error is a well-formed JSON body: message and param may echo client bytes (a
 * decoded URL, a model name), so they go through the UTF-8 sanitizer (invalid bytes ->
 * U+FFFD) instead of failing the JSON builder. */
char *api_error_json(const api_error *e) {
    json_t *inner = json_pack("{s:o, s:s, s:o, s:o}", "message", api_json_text(e->message, strlen(e->message)),
                              "type", e->type ? e->type : "invalid_request_error",
                              "param", e->param[0] ? api_json_text(e->param, strlen(e->param)) : json_null(),
                              "code", e->code ? json_string(e->code) : json_null());
    if (!inner) return NULL;
    json_t *root = json_pack("{s:o}", "error", inner);
    if (!root) return NULL;
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* Valid UTF-8 passes through; each invalid byte becomes U+FFFD (jansson refuses invalid UTF-8). */
void *api_json_text(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j) return j;
    api_buf b = {0};
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len && i + len <= n) {
            json_t *one = json_stringn(s + i, len); /* validates overlongs, surrogates, ranges */
            if (one) {
                json_decref(one);
                if (api_buf_append(&b, s + i, len)) break;
                i += len;
                continue;
            }
        }
        if (api_buf_append(&b, "\xEF\xBF\xBD", 3)) break;
        i++;
    }
    j = json_stringn(b.p ? b.p : "", b.len);
    api_buf_free(&b);
    return j;
}

const char *api_finish_name(engine_finish f) {
    switch (f) {
    case ENGINE_FINISH_STOP: return "stop";
    case ENGINE_FINISH_LENGTH: return "length";
    case ENGINE_FINISH_CANCELLED: return "abort";
    case ENGINE_FINISH_ERROR: return "error";
    case ENGINE_FINISH_REJECTED: return "error";
    case ENGINE_FINISH_QUEUE_TIMEOUT: return "error";
    case ENGINE_FINISH_TIMEOUT: return "timeout"; /* the request's own `timeout` (extension) */
    default: return NULL;
    }
}

int api_sse_event(api_buf *b, const char *json, size_t len) {
    if (api_buf_append(b, "data: ", 6) || api_buf_append(b, json, len) || api_buf_append(b, "\n\n", 2))
        return SW_ERR_NOMEM;
    return SW_OK;
}

int api_sse_done(api_buf *b) { return api_buf_append(b, "data: [DONE]\n\n", 14); }

/* The fields every chunk shares. */
static json_t *chunk_base(api_kind kind, const api_resp_meta *m) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", m->id,
                     "object", kind == API_CHAT ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)m->created, "model", m->model);
}

static char *dump_and_free(json_t *root) {
    if (!root) return NULL;
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

char *api_chunk_json(api_kind kind, const api_resp_meta *m, int index, const char *text, size_t text_len,
                     const char *finish, void *logprobs_json, bool role_delta) {
    return api_chunk_json_reasoning(kind, m, index, text, text_len, NULL, 0, finish, logprobs_json, role_delta);
}

char *api_chunk_json_reasoning(api_kind kind, const api_resp_meta *m, int index, const char *text, size_t text_len,
                               const char *reasoning, size_t reasoning_len, const char *finish, void *logprobs_json,
                               bool role_delta) {
    json_t *lp = logprobs_json ? (json_t *)logprobs_json : json_null();
    json_t *root = chunk_base(kind, m);
    json_t *choice = json_object();
    json_t *choices = json_array();
    if (!root || !choice || !choices) goto fail;
    json_object_set_new(choice, "index", json_integer(index));
    if (kind == API_CHAT) {
        json_t *delta = json_object();
        if (!delta) goto fail;
        if (role_delta) json_object_set_new(delta, "role", json_string("assistant"));
        if (reasoning) json_object_set_new(delta, "reasoning_content", api_json_text(reasoning, reasoning_len));
        if (text) json_object_set_new(delta, "content", api_json_text(text, text_len));
        json_object_set_new(choice, "delta", delta);
    } else {
        json_object_set_new(choice, "text", api_json_text(text ? text : "", text ? text_len : 0));
    }
    json_object_set_new(choice, "logprobs", lp);
    lp = NULL;
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_array_append_new(choices, choice);
    choice = NULL;
    json_object_set_new(root, "choices", choices);
    return dump_and_free(root);
fail:
    json_decref(lp);
    json_decref(root);
    json_decref(choice);
    json_decref(choices);
    return NULL;
}

char *api_usage_chunk_json(api_kind kind, const api_resp_meta *m, int prompt_tokens, int completion_tokens) {
    json_t *root = chunk_base(kind, m);
    if (!root) return NULL;
    json_object_set_new(root, "choices", json_array());
    json_object_set_new(root, "usage", json_pack("{s:i, s:i, s:i}", "prompt_tokens", prompt_tokens,
                                                 "completion_tokens", completion_tokens,
                                                 "total_tokens", prompt_tokens + completion_tokens));
    return dump_and_free(root);
}
