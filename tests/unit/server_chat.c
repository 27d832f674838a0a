/* server_chat.c — the server's chat prompt (api_chat.c): a chat request parsed by
 * api_request_parse renders with the model's Jinja template (tool calls, tool results,
 * tools and chat_template_kwargs reach it; the Qwen3 reference case renders exactly), a
 * template error becomes a 400 with the template's message, /apply-template's JSON, the
 * hard-coded family when there is no template (honouring add_generation_prompt), and a
 * template with a syntax error is refused at creation with its line and column. */
#include "t.h"
#include "server/server.h"
#include <jansson.h>

static int prompt_of(const api_chat_template *ct, tok_chat_family fam, const char *body, char **text, api_error *e) {
    api_request rq;
    int rc = api_request_parse(API_CHAT, body, strlen(body), &rq, e);
    if (rc) return rc;
    size_t len = 0;
    rc = api_chat_prompt(ct, fam, &rq, text, &len, e);
    if (!rc && strlen(*text) != len) rc = -100;
    api_request_free(&rq);
    return rc;
}

static void test_inline_template(void) {
    const char *src =
        "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content or '' }}"
        "{% for tc in m.tool_calls or [] %}[call {{ tc.function.name }} {{ tc.function.arguments }}]{% endfor %}"
        "{% if m.tool_call_id %}(for {{ m.tool_call_id }}){% endif %}{% endfor %}"
        "{% if tools %}|tools={{ tools|map(attribute='function.name')|join(',') }}{% endif %}"
        "{% if flavor is defined %}|flavor={{ flavor }}{% endif %}{% if add_generation_prompt %}<assistant>{% endif %}"
        "{% if messages|length > 3 %}{{ raise_exception('too many messages: ' ~ messages|length) }}{% endif %}";
    api_chat_template *ct = NULL;
    sw_err err = {0};
    T_CHECK(api_chat_template_create(src, strlen(src), "<s>", "</s>", &ct, &err) == 0, "%s", err.msg);
    char *text = NULL;
    api_error e = {0};
    int rc = prompt_of(ct, TOK_CHAT_CHATML,
                       "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                       "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                       "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]},"
                       "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"}],"
                       "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},{\"type\":\"function\",\"function\":{\"name\":\"g\"}}],"
                       "\"chat_template_kwargs\":{\"flavor\":\"mint\"}}",
                       &text, &e);
    T_CHECK(rc == 0, "%s", e.message);
    if (!rc) T_CHECK(!strcmp(text, "<s><user>hi<assistant>[call f {\"x\":1}]<tool>42(for c1)|tools=f,g|flavor=mint<assistant>"), "%s", text);
    free(text);
    text = NULL;
    rc = prompt_of(ct, TOK_CHAT_CHATML, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"add_generation_prompt\":false}", &text, &e);
    T_CHECK(rc == 0 && !strcmp(text, "<s><user>a"), "%s", rc ? e.message : text);
    free(text);
    text = NULL;
    /* raise_exception -> 400 whose message is the template's */
    rc = prompt_of(ct, TOK_CHAT_CHATML,
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"1\"},{\"role\":\"user\",\"content\":\"2\"},"
                   "{\"role\":\"user\",\"content\":\"3\"},{\"role\":\"user\",\"content\":\"4\"}]}", &text, &e);
    T_CHECK(rc != 0 && e.status == 400 && !strcmp(e.message, "too many messages: 4") && !strcmp(e.param, "messages"),
            "rc %d status %d [%s]", rc, e.status, e.message);
    /* /apply-template */
    char *json = NULL;
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\"}]}";
    rc = api_chat_apply_template(ct, TOK_CHAT_CHATML, body, strlen(body), &json, &e);
    T_CHECK(rc == 0 && !strcmp(json, "{\"prompt\":\"<s><user>h\xc3\xa9<assistant>\"}"), "%s", rc ? e.message : json);
    free(json);
    json = NULL;
    rc = api_chat_apply_template(ct, TOK_CHAT_CHATML, "{\"messages\":3}", 14, &json, &e);
    T_CHECK(rc != 0 && e.status == 400 && json == NULL, "rc %d", rc);
    api_chat_template_destroy(ct);
}

static void test_fallback_and_errors(void) {
    char *text = NULL;
    api_error e = {0};
    int rc = prompt_of(NULL, TOK_CHAT_CHATML, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"add_generation_prompt\":false}", &text, &e);
    T_CHECK(rc == 0 && !strcmp(text, "<|im_start|>user\nhi<|im_end|>\n"), "%s", rc ? e.message : text);
    free(text);
    text = NULL;
    rc = prompt_of(NULL, TOK_CHAT_CHATML, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &text, &e);
    T_CHECK(rc == 0 && !strcmp(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"), "%s", rc ? e.message : text);
    free(text);
    api_chat_template *ct = NULL;
    sw_err err = {0};
    const char *bad = "{% for m in messages %}\n  {{ m.content + }}\n{% endfor %}";
    rc = api_chat_template_create(bad, strlen(bad), NULL, NULL, &ct, &err);
    T_CHECK(rc == SW_ERR_FORMAT && ct == NULL && strstr(err.msg, "line 2 col 18"), "rc %d %s", rc, err.msg);
}

static void test_qwen3_reference(void) {
    if (t_shared_missing()) { T_SKIP("../shared is absent"); return; }
    char *src = NULL;
    size_t len = 0;
    sw_err err = {0};
    if (sw_read_file(SHARED "/templates/qwen3.jinja", &src, &len, &err)) { T_CHECK(0, "%s", err.msg); return; }
    api_chat_template *ct = NULL;
    T_CHECK(api_chat_template_create(src, len, NULL, "<|im_end|>", &ct, &err) == 0, "%s", err.msg);
    free(src);
    json_t *cases = json_load_file(SHARED "/templates/qwen3.cases.json", 0, NULL);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *req = json_pack("{s:O, s:O, s:O}", "messages", json_object_get(c, "messages"), "add_generation_prompt",
                                json_object_get(c, "add_generation_prompt"), "chat_template_kwargs", json_object_get(c, "extra"));
        json_t *tools = json_object_get(c, "tools");
        if (json_is_array(tools)) json_object_set(req, "tools", tools);
        char *body = json_dumps(req, 0), *text = NULL;
        api_error e = {0};
        int rc = prompt_of(ct, TOK_CHAT_UNKNOWN, body, &text, &e);
        const char *want = json_string_value(json_object_get(c, "expected"));
        T_CHECK(rc == 0 && !strcmp(text, want), "%s: %s", json_string_value(json_object_get(c, "name")), rc ? e.message : text);
        free(text);
        free(body);
        json_decref(req);
    }
    json_decref(cases);
    api_chat_template_destroy(ct);
}

int main(void) {
    test_inline_template();
    test_fallback_and_errors();
    test_qwen3_reference();
    return t_done();
}
