/* api_chat.c — chat prompts from the model's own chat template: loads
 * tokenizer.chat_template from the GGUF once (compiled by the jinja module, with the
 * BOS/EOS token texts the template sees as bos_token/eos_token), renders a chat request
 * body with it (messages with tool_calls — a null content beside them rendered as "" —,
 * tool results, content parts; tools; chat_template_kwargs), and falls back to the hard-coded template family (tokenizer/
 * chat.c) when the file has no usable template. Serves POST /apply-template too. */
#include "server/server.h"
#include "gguf/gguf.h"
#include "jinja/jinja.h"
#include <stdlib.h>
#include <string.h>

struct api_chat_template {
    jinja_template *t;
    char *bos, *eos;   /* token texts, NULL when the vocab has none */
};

/* Text of the token whose id is stored under key, or NULL. */
static char *token_text(const gguf_ctx *g, const char *key) {
    uint32_t id;
    uint64_t n = 0;
    gguf_type et;
    if (gguf_get_u32(g, key, &id) != SW_OK) {
        int32_t sid;
        if (gguf_get_i32(g, key, &sid) != SW_OK || sid < 0) return NULL;
        id = (uint32_t)sid;
    }
    if (gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n) != SW_OK || et != GGUF_TYPE_STRING || id >= n) return NULL;
    size_t len = 0;
    const char *s = gguf_get_arr_str(g, "tokenizer.ggml.tokens", id, &len);
    return s ? strndup(s, len) : NULL;
}

int api_chat_template_create(const char *text, size_t len, const char *bos, const char *eos,
                             api_chat_template **out, sw_err *err) {
    api_chat_template *ct = calloc(1, sizeof *ct);
    if (!ct) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    int rc = jinja_parse(text, len, &ct->t, err);
    if (!rc && ((bos && !(ct->bos = strdup(bos))) || (eos && !(ct->eos = strdup(eos)))))
        rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    if (rc) { api_chat_template_destroy(ct); return rc; }
    *out = ct;
    return SW_OK;
}

int api_chat_template_load(const gguf_ctx *g, api_chat_template **out, sw_err *err) {
    const char *text = NULL;
    size_t len = 0;
    *out = NULL;
    if (gguf_get_str(g, "tokenizer.chat_template", &text, &len) != SW_OK || !text)
        return sw_err_set(err, SW_ERR_NOTFOUND, "the model has no tokenizer.chat_template");
    char *bos = token_text(g, "tokenizer.ggml.bos_token_id"), *eos = token_text(g, "tokenizer.ggml.eos_token_id");
    int rc = api_chat_template_create(text, len, bos, eos, out, err);
    free(bos);
    free(eos);
    return rc;
}

void api_chat_template_destroy(api_chat_template *ct) {
    if (!ct) return;
    jinja_destroy(ct->t);
    free(ct->bos);
    free(ct->eos);
    free(ct);
}

int api_chat_template_render(const api_chat_template *ct, const json_t *request, char **text, size_t *len, sw_err *err) {
    return jinja_chat_render(ct->t, request, ct->bos, ct->eos, text, len, err);
}

/* The request with content "" on assistant messages that carry tool_calls and a null or
 * absent content (as OpenAI clients send them back; templates such as Qwen3's test
 * `'</think>' in content`), or NULL when there is none. */
static json_t *empty_call_content(const json_t *body) {
    json_t *msgs = json_object_get(body, "messages"), *copy = NULL, *m;
    size_t i;
    json_array_foreach(msgs, i, m) {
        json_t *c = json_object_get(m, "content");
        if (!json_is_array(json_object_get(m, "tool_calls")) || (c && !json_is_null(c))) continue;
        if (!copy && !(copy = json_deep_copy(body))) return NULL;
        json_object_set_new(json_array_get(json_object_get(copy, "messages"), i), "content", json_string(""));
    }
    return copy;
}

int api_chat_prompt(const api_chat_template *ct, tok_chat_family family, const api_request *rq,
                    char **text, size_t *len, api_error *e) {
    sw_err err = {0};
    if (ct) {
        json_t *patched = empty_call_content(rq->body);
        int rc = api_chat_template_render(ct, patched ? patched : rq->body, text, len, &err);
        json_decref(patched);
        if (rc) return api_error_set(e, 400, "invalid_request_error", NULL, "messages", "%s", err.msg);
        return SW_OK;
    }
    tok_chat_msg *msgs = calloc((size_t)rq->n_messages, sizeof *msgs);
    if (!msgs) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    for (int i = 0; i < rq->n_messages; i++) msgs[i] = (tok_chat_msg){rq->messages[i].role, rq->messages[i].content};
    json_t *agp = json_object_get(rq->body, "add_generation_prompt");
    int rc = tok_chat_render(family, msgs, rq->n_messages, agp ? json_is_true(agp) : true, text, &err);
    free(msgs);
    if (rc) return api_error_set(e, 400, "invalid_request_error", NULL, "messages", "chat template: %s", err.msg);
    *len = strlen(*text);
    return SW_OK;
}

int api_chat_apply_template(const api_chat_template *ct, tok_chat_family family, const char *body, size_t body_len,
                            char **json_out, api_error *e) {
    api_request rq;
    int rc = api_request_parse(API_CHAT, body, body_len, &rq, e);
    if (rc) return rc;
    char *text = NULL;
    size_t len = 0;
    rc = api_chat_prompt(ct, family, &rq, &text, &len, e);
    api_request_free(&rq);
    if (rc) return rc;
    json_t *o = json_object();
    json_t *p = json_stringn(text, len);
    free(text);
    if (!o || !p || json_object_set_new(o, "prompt", p)) {
        json_decref(o);
        return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    *json_out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!*json_out) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    return SW_OK;
}
