/* jinja_chat.c — the template variables of a chat request, as transformers passes them:
 * `messages` exactly as the client sent them (roles system/developer/user/assistant/tool;
 * content a string, null or an array of parts; tool_calls with function.arguments as an
 * object or a JSON string; tool_call_id, name, reasoning_content, ...), `tools` (None
 * when the request has none, as transformers passes it),
 * `add_generation_prompt` (default true), `bos_token`/`eos_token`, and every key of
 * `chat_template_kwargs` (e.g. enable_thinking, reasoning_effort). A template that fails
 * on content given as an array of text parts (most take only strings) is rendered again
 * with those parts joined, so such requests work wherever a string would. */
#include "jinja/jinja_impl.h"

static int check_messages(const json_t *msgs, sw_err *err) {
    if (!json_is_array(msgs)) return sw_err_set(err, SW_ERR_FORMAT, "'messages' must be an array");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m)) return sw_err_set(err, SW_ERR_FORMAT, "'messages[%zu]' must be an object", i);
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role)) return sw_err_set(err, SW_ERR_FORMAT, "'messages[%zu].role' must be a string", i);
        json_t *content = json_object_get(m, "content");
        if (content && !json_is_string(content) && !json_is_null(content) && !json_is_array(content))
            return sw_err_set(err, SW_ERR_FORMAT, "'messages[%zu].content' must be a string, null or an array of parts", i);
        json_t *tc = json_object_get(m, "tool_calls");
        if (tc && !json_is_array(tc) && !json_is_null(tc))
            return sw_err_set(err, SW_ERR_FORMAT, "'messages[%zu].tool_calls' must be an array", i);
    }
    return SW_OK;
}

int jinja_chat_vars(const json_t *req, const char *bos, const char *eos, json_t **out, sw_err *err) {
    if (!json_is_object(req)) return sw_err_set(err, SW_ERR_FORMAT, "the request must be a JSON object");
    json_t *msgs = json_object_get(req, "messages");
    if (!msgs) return sw_err_set(err, SW_ERR_FORMAT, "'messages' is required");
    int rc = check_messages(msgs, err);
    if (rc) return rc;
    json_t *tools = json_object_get(req, "tools"), *agp = json_object_get(req, "add_generation_prompt");
    json_t *kw = json_object_get(req, "chat_template_kwargs");
    if (tools && !json_is_array(tools) && !json_is_null(tools)) return sw_err_set(err, SW_ERR_FORMAT, "'tools' must be an array");
    if (agp && !json_is_boolean(agp)) return sw_err_set(err, SW_ERR_FORMAT, "'add_generation_prompt' must be a boolean");
    if (kw && !json_is_object(kw) && !json_is_null(kw)) return sw_err_set(err, SW_ERR_FORMAT, "'chat_template_kwargs' must be an object");
    json_t *v = json_object();
    if (!v) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    bool ok = true;
    if (json_is_object(kw)) ok = json_object_update(v, kw) == 0;
    ok = ok && json_object_set(v, "messages", msgs) == 0;
    /* transformers passes tools=None when the request has none */
    ok = ok && json_object_set(v, "tools", json_is_array(tools) ? tools : json_null()) == 0;
    ok = ok && json_object_set_new(v, "add_generation_prompt", json_boolean(agp ? json_is_true(agp) : true)) == 0;
    if (bos) ok = ok && json_object_set_new(v, "bos_token", json_string(bos)) == 0;
    if (eos) ok = ok && json_object_set_new(v, "eos_token", json_string(eos)) == 0;
    if (!ok) { json_decref(v); return sw_err_set(err, SW_ERR_NOMEM, "out of memory"); }
    *out = v;
    return SW_OK;
}

/* A copy of messages whose content arrays of text parts are joined into strings, or
 * NULL when there is none to join (or one holds a non-text part). */
static json_t *flatten_text_parts(const json_t *msgs) {
    size_t i, k;
    json_t *m, *part;
    bool any = false;
    json_array_foreach(msgs, i, m) {
        json_t *c = json_object_get(m, "content");
        if (!json_is_array(c)) continue;
        json_array_foreach(c, k, part)
            if (!json_is_string(json_object_get(part, "text")) || !json_is_string(json_object_get(part, "type")) ||
                strcmp(json_string_value(json_object_get(part, "type")), "text"))
                return NULL;
        any = true;
    }
    if (!any) return NULL;
    json_t *copy = json_deep_copy(msgs);
    json_array_foreach(copy, i, m) {
        json_t *c = json_object_get(m, "content");
        if (!json_is_array(c)) continue;
        jbuf b = {0};
        json_array_foreach(c, k, part) {
            json_t *text = json_object_get(part, "text");
            if (!jbuf_add(&b, json_string_value(text), json_string_length(text))) { jbuf_free(&b); json_decref(copy); return NULL; }
        }
        json_object_set_new(m, "content", json_stringn(b.p ? b.p : "", b.n));
        jbuf_free(&b);
    }
    return copy;
}

int jinja_chat_render(const jinja_template *t, const json_t *req, const char *bos, const char *eos,
                      char **out, size_t *out_len, sw_err *err) {
    json_t *vars;
    int rc = jinja_chat_vars(req, bos, eos, &vars, err);
    if (rc) return rc;
    jinja_opts o = {.today = getenv("SWIFTLET_NOW")};
    rc = jinja_render(t, vars, &o, out, out_len, err);
    /* Content given as text parts, which the template cannot take (transformers would
     * fail too): render again with each message's parts joined into one string. */
    json_t *flat = rc == SW_ERR_FORMAT ? flatten_text_parts(json_object_get(vars, "messages")) : NULL;
    if (flat) {
        sw_err err2;
        json_object_set_new(vars, "messages", flat);
        if (jinja_render(t, vars, &o, out, out_len, &err2) == SW_OK) rc = SW_OK;
    }
    json_decref(vars);
    return rc;
}
