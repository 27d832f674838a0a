/* server_api.c — tests of the server's API layer without a model: request parsing and
 * validation (every field type error -> 400 naming the field), the error JSON, SSE
 * framing and chunk JSON (re-parsed with jansson and checked field by field), the
 * UTF-8 sanitizer and the stop-string matcher (including stops split across pieces). */
#include "t.h"
#include "server/server.h"
#include <jansson.h>

static int parse(api_kind k, const char *body, api_request *r, api_error *e) {
    memset(e, 0, sizeof *e);
    return api_request_parse(k, body, strlen(body), r, e);
}

/* Expects a 400 whose param is `param` ("" = null). */
static void expect_bad(api_kind k, const char *body, const char *param) {
    api_request r;
    api_error e;
    int rc = parse(k, body, &r, &e);
    T_CHECK(rc < 0, "accepted: %s", body);
    if (rc >= 0) { api_request_free(&r); return; }
    T_CHECK(e.status == 400, "%s -> status %d", body, e.status);
    T_CHECK(!strcmp(e.param, param), "%s -> param '%s', want '%s' (%s)", body, e.param, param, e.message);
    T_CHECK(e.message[0] != 0, "empty message for %s", body);
}

static void test_valid_completion(void) {
    api_request r;
    api_error e;
    const char *body = "{\"model\":\"m\",\"prompt\":\"Hello\",\"max_tokens\":7,\"temperature\":0,\"top_p\":0.5,"
                       "\"top_k\":40,\"min_p\":0.1,\"seed\":42,\"stop\":[\"a\",\"bc\"],\"presence_penalty\":0.5,"
                       "\"frequency_penalty\":-1,\"logprobs\":3,\"n\":2,\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"ignore_eos\":true,\"user\":\"u1\","
                       "\"priority\":5,\"slo_ttft_ms\":250,\"slo_tpot_ms\":50.5,"
                       "\"store\":false,\"metadata\":{\"k\":\"v\"},\"service_tier\":\"auto\",\"echo\":false,"
                       "\"best_of\":1,\"suffix\":\"\",\"unknown_but_null\":null}";
    T_EQ_INT(parse(API_COMPLETIONS, body, &r, &e), 0);
    T_CHECK(r.model && !strcmp(r.model, "m"), "model");
    T_CHECK(r.prompt && !strcmp(r.prompt, "Hello") && r.prompt_len == 5, "prompt");
    T_OK(r.prompt_ids == NULL);
    T_EQ_INT(r.max_tokens, 7);
    T_OK(r.temperature == 0.0f);
    T_OK(r.top_p == 0.5f);
    T_EQ_INT(r.top_k, 40);
    T_OK(r.min_p > 0.099f && r.min_p < 0.101f);
    T_OK(r.has_seed && r.seed == 42);
    T_EQ_INT(r.n_stop, 2);
    T_OK(!strcmp(r.stop[0], "a") && !strcmp(r.stop[1], "bc"));
    T_OK(r.presence_penalty == 0.5f && r.frequency_penalty == -1.0f);
    T_OK(r.logprobs && r.top_logprobs == 3);
    T_EQ_INT(r.n, 2);
    T_OK(r.stream && r.include_usage && r.ignore_eos);
    T_OK(r.user && !strcmp(r.user, "u1"));
    T_EQ_INT(r.priority, 5);
    T_OK(r.slo_ttft_ms == 250 && r.slo_tpot_ms == 50.5);
    api_request_free(&r);

    /* defaults */
    T_EQ_INT(parse(API_COMPLETIONS, "{\"prompt\":\"x\"}", &r, &e), 0);
    T_EQ_INT(r.max_tokens, -1);
    T_OK(r.temperature == 1.0f && r.top_p == 1.0f && r.n == 1 && !r.stream && !r.logprobs && !r.has_seed);
    T_OK(r.model == NULL && r.n_stop == 0);
    api_request_free(&r);

    /* token-id prompt, single-string batch, string stop, nulls mean absent */
    T_EQ_INT(parse(API_COMPLETIONS, "{\"prompt\":[1,15043,3186],\"stop\":\"\\n\",\"max_tokens\":null,\"seed\":null}",
                   &r, &e), 0);
    T_EQ_INT(r.n_prompt_ids, 3);
    T_OK(r.prompt_ids && r.prompt_ids[1] == 15043);
    T_OK(r.n_stop == 1 && !strcmp(r.stop[0], "\n"));
    T_OK(r.max_tokens == -1 && !r.has_seed);
    api_request_free(&r);
    T_EQ_INT(parse(API_COMPLETIONS, "{\"prompt\":[\"only one\"],\"top_k\":-1}", &r, &e), 0);
    T_OK(r.prompt && !strcmp(r.prompt, "only one") && r.top_k == 0);
    api_request_free(&r);
}

static void test_valid_chat(void) {
    api_request r;
    api_error e;
    const char *body = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":\"text\",\"text\":\"there\"}]},"
                       "{\"role\":\"assistant\",\"content\":null}],"
                       "\"max_completion_tokens\":9,\"max_tokens\":3,\"logprobs\":true,\"top_logprobs\":2}";
    T_EQ_INT(parse(API_CHAT, body, &r, &e), 0);
    T_EQ_INT(r.n_messages, 3);
    T_OK(!strcmp(r.messages[0].role, "system") && !strcmp(r.messages[0].content, "Be brief."));
    T_OK(!strcmp(r.messages[1].content, "Hi there"));
    T_OK(!strcmp(r.messages[2].role, "assistant") && !strcmp(r.messages[2].content, ""));
    T_EQ_INT(r.max_tokens, 9); /* max_completion_tokens wins */
    T_OK(r.logprobs && r.top_logprobs == 2);
    api_request_free(&r);
}

/* The allow-list: unsupported fields that change the result and unknown fields are 400s
 * naming the field; the value that changes nothing, null and metadata are accepted. */
static void test_fields(void) {
    static const char *const chat_bad[][2] = {
        {"functions", "[{\"name\":\"f\"}]"}, {"function_call", "\"auto\""}, {"audio", "{\"voice\":\"x\"}"},
        {"modalities", "[\"text\",\"audio\"]"}, {"modalities", "[\"audio\"]"}, {"prediction", "{\"type\":\"content\"}"},
        {"web_search_options", "{}"}, {"reasoning_effort", "\"low\""}, {"echo", "true"}, {"best_of", "2"},
        {"frobnicate", "1"}, {"prompt", "\"x\""}, {"repetition_penalty", "1.1"},
        {"store", "\"yes\""}, {"metadata", "[1]"}, {"service_tier", "1"},
    };
    char body[256];
    for (size_t i = 0; i < sizeof chat_bad / sizeof chat_bad[0]; i++) {
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"%s\":%s}", chat_bad[i][0],
                 chat_bad[i][1]);
        expect_bad(API_CHAT, body, chat_bad[i][0]);
    }
    static const char *const cmpl_bad[][2] = {
        {"echo", "true"}, {"best_of", "3"}, {"best_of", "\"1\""}, {"suffix", "\"end\""}, {"messages", "[]"},
        {"top_logprobs", "2"}, {"tools", "[]"}, {"max_completion_tokens", "3"}, {"n_predict", "3"},
    };
    for (size_t i = 0; i < sizeof cmpl_bad / sizeof cmpl_bad[0]; i++) {
        snprintf(body, sizeof body, "{\"prompt\":\"hi\",\"%s\":%s}", cmpl_bad[i][0], cmpl_bad[i][1]);
        expect_bad(API_COMPLETIONS, body, cmpl_bad[i][0]);
    }
    api_request r;
    api_error e;
    const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"modalities\":[\"text\"],"
                     "\"store\":true,\"metadata\":{\"a\":\"b\"},\"service_tier\":\"default\",\"user\":\"u\","
                     "\"functions\":null,\"audio\":null,\"stream\":true,\"stream_options\":{\"include_usage\":false},"
                     "\"tools\":[],\"tool_choice\":\"none\",\"parallel_tool_calls\":false,\"prompt_cache_key\":\"k\","
                     "\"chat_template_kwargs\":{\"enable_thinking\":false},\"add_generation_prompt\":true,"
                     "\"logit_bias\":{\"5\":-100}}";
    T_EQ_INT(parse(API_CHAT, ok, &r, &e), 0);
    api_request_free(&r);
    memset(&e, 0, sizeof e);
    T_EQ_INT(parse(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"frobnicate\":1}", &r, &e), SW_ERR_ARG);
    T_CHECK(!strcmp(e.message, "Unrecognized request argument supplied: frobnicate"), "%s", e.message);
    T_CHECK(!strcmp(e.type, "invalid_request_error"), "%s", e.type);
}

static void test_invalid(void) {
    /* malformed JSON / not an object: no param */
    expect_bad(API_COMPLETIONS, "{\"prompt\":", "");
    expect_bad(API_COMPLETIONS, "", "");
    expect_bad(API_COMPLETIONS, "[1,2]", "");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"a\\u0000b\"}", ""); /* NUL in a string */
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"\xff\"}", "");        /* invalid UTF-8 */
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\"} trailing", "");
    /* completions fields */
    expect_bad(API_COMPLETIONS, "{}", "prompt");
    expect_bad(API_COMPLETIONS, "{\"prompt\":5}", "prompt");
    expect_bad(API_COMPLETIONS, "{\"prompt\":[]}", "prompt");
    expect_bad(API_COMPLETIONS, "{\"prompt\":[1,-2]}", "prompt");
    expect_bad(API_COMPLETIONS, "{\"prompt\":[1,2.5]}", "prompt");
    expect_bad(API_COMPLETIONS, "{\"prompt\":[\"a\",\"b\"]}", "prompt");
    expect_bad(API_COMPLETIONS, "{\"prompt\":{}}", "prompt");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"model\":3}", "model");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"max_tokens\":\"5\"}", "max_tokens");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"max_tokens\":1.5}", "max_tokens");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"max_tokens\":99999999999}", "max_tokens");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"temperature\":\"hot\"}", "temperature");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"temperature\":-0.1}", "temperature");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"temperature\":2.5}", "temperature");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"top_p\":0}", "top_p");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"top_p\":true}", "top_p");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"top_k\":0.5}", "top_k");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"top_k\":-2}", "top_k");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"min_p\":1.5}", "min_p");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"seed\":\"1\"}", "seed");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"stop\":1}", "stop");
    { /* one 1024-byte cap per stop string, as a single string or in an array (issue 11) */
        char body[1200], stop[1100];
        api_request r;
        api_error e;
        memset(stop, 'x', 1025);
        stop[1025] = 0;
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"stop\":\"%s\"}", stop);
        expect_bad(API_COMPLETIONS, body, "stop");
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"stop\":[\"%s\"]}", stop);
        expect_bad(API_COMPLETIONS, body, "stop");
        stop[1024] = 0;
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"stop\":\"%s\"}", stop);
        T_EQ_INT(parse(API_COMPLETIONS, body, &r, &e), SW_OK);
        T_OK(r.n_stop == 1 && strlen(r.stop[0]) == 1024);
        api_request_free(&r);
    }
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"stop\":[\"a\",2]}", "stop");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"presence_penalty\":3}", "presence_penalty");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"frequency_penalty\":\"0\"}", "frequency_penalty");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"logprobs\":true}", "logprobs");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"logprobs\":21}", "logprobs");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"n\":0}", "n");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"n\":17}", "n");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"n\":\"2\"}", "n");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"stream\":1}", "stream");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":[]}", "stream_options");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", "stream_options");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
               "stream_options.include_usage");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"ignore_eos\":\"yes\"}", "ignore_eos");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"user\":7}", "user");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"priority\":\"high\"}", "priority");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"slo_ttft_ms\":-1}", "slo_ttft_ms");
    expect_bad(API_COMPLETIONS, "{\"prompt\":\"x\",\"slo_tpot_ms\":\"fast\"}", "slo_tpot_ms");
    /* chat fields */
    expect_bad(API_CHAT, "{}", "messages");
    expect_bad(API_CHAT, "{\"messages\":\"hi\"}", "messages");
    expect_bad(API_CHAT, "{\"messages\":[]}", "messages");
    expect_bad(API_CHAT, "{\"messages\":[1]}", "messages");
    expect_bad(API_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":-3}",
               "max_completion_tokens");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":2}", "logprobs");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", "top_logprobs");
    expect_bad(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":30}",
               "top_logprobs");
}

static void test_error_json(void) {
    api_error e;
    T_EQ_INT(api_error_set(&e, 400, "invalid_request_error", NULL, "max_tokens", "'%s' bad", "max_tokens"), SW_ERR_ARG);
    char *s = api_error_json(&e);
    T_OK(s != NULL);
    json_t *j = json_loads(s, 0, NULL);
    T_OK(j != NULL);
    json_t *err = json_object_get(j, "error");
    T_OK(json_is_object(err));
    T_OK(!strcmp(json_string_value(json_object_get(err, "message")), "'max_tokens' bad"));
    T_OK(!strcmp(json_string_value(json_object_get(err, "type")), "invalid_request_error"));
    T_OK(!strcmp(json_string_value(json_object_get(err, "param")), "max_tokens"));
    T_OK(json_is_null(json_object_get(err, "code")));
    json_decref(j);
    free(s);
    api_error_set(&e, 429, "rate_limit_error", "queue_full", NULL, "busy \"now\"\n");
    s = api_error_json(&e);
    j = json_loads(s, 0, NULL);
    err = json_object_get(j, "error");
    T_OK(json_is_null(json_object_get(err, "param")));
    T_OK(!strcmp(json_string_value(json_object_get(err, "code")), "queue_full"));
    T_OK(!strcmp(json_string_value(json_object_get(err, "message")), "busy \"now\"\n"));
    json_decref(j);
    free(s);

    /* issue 11: an error echoing client bytes must still be a JSON body. An invalid byte
     * (GET /%ff decodes to 0xff) becomes U+FFFD ... */
    api_error_set(&e, 404, "invalid_request_error", "not_found", NULL, "no route for %s %s", "GET", "/\xff");
    s = api_error_json(&e);
    T_CHECK(s != NULL, "error JSON for an invalid byte");
    j = s ? json_loads(s, 0, NULL) : NULL;
    err = json_object_get(j, "error");
    T_OK(json_is_string(json_object_get(err, "message")) &&
         !strcmp(json_string_value(json_object_get(err, "message")), "no route for GET /\xef\xbf\xbd"));
    json_decref(j);
    free(s);
    /* ... and a message cut at the field's size ends on a character boundary: a long
     * non-ASCII model name (3-byte characters, cut at every offset) */
    for (int shift = 0; shift < 4; shift++) {
        char model[1200];
        size_t o = 0;
        for (int i = 0; i < shift; i++) model[o++] = 'x';
        while (o + 3 < sizeof model) { memcpy(model + o, "\xe2\x82\xac", 3); o += 3; }
        model[o] = 0;
        api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "the model '%s' does not exist", model);
        T_OK(strlen(e.message) < sizeof e.message);
        json_t *probe = json_string(e.message); /* jansson refuses invalid UTF-8 */
        T_CHECK(probe != NULL, "shift %d: message cut inside a character", shift);
        json_decref(probe);
        s = api_error_json(&e);
        T_CHECK(s != NULL && (j = json_loads(s, 0, NULL)) != NULL, "shift %d: no JSON", shift);
        if (s && j) {
            const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
            T_OK(msg && strncmp(msg, "the model '", 11) == 0 && strstr(msg, "\xe2\x82\xac\xe2\x82\xac") != NULL);
            T_OK(msg && !strstr(msg, "\xef\xbf\xbd")); /* cut cleanly: no replacement needed */
            json_decref(j);
        }
        free(s);
    }
}

/* Parses one SSE event "data: X\n\n" at *p; returns X (malloc'd) and advances. */
static char *next_event(const char **p) {
    if (strncmp(*p, "data: ", 6) != 0) return NULL;
    const char *end = strstr(*p, "\n\n");
    if (!end) return NULL;
    size_t n = (size_t)(end - *p - 6);
    char *x = malloc(n + 1);
    memcpy(x, *p + 6, n);
    x[n] = 0;
    *p = end + 2;
    return x;
}

static void test_sse(void) {
    api_buf b = {0};
    api_resp_meta m = {"cmpl-1", 1700000000, "tiny"};
    char *c1 = api_chunk_json(API_COMPLETIONS, &m, 0, "Hel", 3, NULL, NULL, false);
    char *c2 = api_chunk_json(API_CHAT, &m, 1, "lo\n\xc3\xa9", 5, "stop", NULL, true);
    char *c3 = api_chunk_json(API_CHAT, &m, 0, NULL, 0, "length", NULL, false);
    char *u = api_usage_chunk_json(API_CHAT, &m, 5, 7);
    T_OK(c1 && c2 && c3 && u);
    T_OK(strchr(c1, '\n') == NULL && strchr(c2, '\n') == NULL); /* one line each: newlines escaped */
    T_EQ_INT(api_sse_event(&b, c1, strlen(c1)), 0);
    T_EQ_INT(api_sse_event(&b, c2, strlen(c2)), 0);
    T_EQ_INT(api_sse_event(&b, c3, strlen(c3)), 0);
    T_EQ_INT(api_sse_event(&b, u, strlen(u)), 0);
    T_EQ_INT(api_sse_done(&b), 0);
    const char *p = b.p;
    char *e1 = next_event(&p), *e2 = next_event(&p), *e3 = next_event(&p), *e4 = next_event(&p), *e5 = next_event(&p);
    T_OK(e1 && e2 && e3 && e4 && e5 && *p == 0);
    T_OK(e5 && !strcmp(e5, "[DONE]"));
    json_t *j = json_loads(e1 ? e1 : "", 0, NULL);
    T_OK(j && !strcmp(json_string_value(json_object_get(j, "object")), "text_completion"));
    T_OK(j && !strcmp(json_string_value(json_object_get(j, "id")), "cmpl-1"));
    T_OK(j && json_integer_value(json_object_get(j, "created")) == 1700000000);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    T_OK(ch && !strcmp(json_string_value(json_object_get(ch, "text")), "Hel"));
    T_OK(ch && json_is_null(json_object_get(ch, "finish_reason")) && json_integer_value(json_object_get(ch, "index")) == 0);
    json_decref(j);
    j = json_loads(e2 ? e2 : "", 0, NULL);
    T_OK(j && !strcmp(json_string_value(json_object_get(j, "object")), "chat.completion.chunk"));
    ch = json_array_get(json_object_get(j, "choices"), 0);
    json_t *d = json_object_get(ch, "delta");
    T_OK(d && !strcmp(json_string_value(json_object_get(d, "content")), "lo\n\xc3\xa9"));
    T_OK(d && !strcmp(json_string_value(json_object_get(d, "role")), "assistant"));
    T_OK(!strcmp(json_string_value(json_object_get(ch, "finish_reason")), "stop"));
    T_EQ_INT(json_integer_value(json_object_get(ch, "index")), 1);
    json_decref(j);
    j = json_loads(e3 ? e3 : "", 0, NULL);
    d = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
    T_OK(json_is_object(d) && json_object_size(d) == 0);
    json_decref(j);
    j = json_loads(e4 ? e4 : "", 0, NULL);
    json_t *us = json_object_get(j, "usage");
    T_OK(json_array_size(json_object_get(j, "choices")) == 0);
    T_EQ_INT(json_integer_value(json_object_get(us, "prompt_tokens")), 5);
    T_EQ_INT(json_integer_value(json_object_get(us, "completion_tokens")), 7);
    T_EQ_INT(json_integer_value(json_object_get(us, "total_tokens")), 12);
    json_decref(j);
    free(e1); free(e2); free(e3); free(e4); free(e5);
    free(c1); free(c2); free(c3); free(u);
    api_buf_free(&b);

    /* a reasoning delta: reasoning_content (invalid UTF-8 replaced), no content field */
    char *cr = api_chunk_json_reasoning(API_CHAT, &m, 0, NULL, 0, "why\xff", 4, NULL, NULL, false);
    j = json_loads(cr ? cr : "", 0, NULL);
    d = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
    T_OK(d && json_object_size(d) == 1 && !strcmp(json_string_value(json_object_get(d, "reasoning_content")), "why\xef\xbf\xbd"));
    json_decref(j);
    free(cr);
    cr = api_chunk_json_reasoning(API_CHAT, &m, 0, "ok", 2, "r", 1, "stop", NULL, false);
    j = json_loads(cr ? cr : "", 0, NULL);
    d = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
    T_OK(d && !strcmp(json_string_value(json_object_get(d, "reasoning_content")), "r") &&
         !strcmp(json_string_value(json_object_get(d, "content")), "ok"));
    json_decref(j);
    free(cr);

    /* invalid UTF-8 is replaced, not dropped */
    json_t *s = api_json_text("a\xff" "b\xe4\xbd", 5);
    T_OK(s && !strcmp(json_string_value(s), "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd"));
    json_decref(s);
    s = api_json_text("\xe4\xbd\xa0", 3);
    T_OK(s && !strcmp(json_string_value(s), "\xe4\xbd\xa0"));
    json_decref(s);
}

/* Feeds pieces through a matcher; returns the emitted text (malloc'd) and stopped flag. */
static char *run_stop(char *const *stops, int n, const char *const *pieces, int np, bool *stopped) {
    api_stop s;
    api_stop_init(&s, stops, n);
    api_buf out = {0};
    for (int i = 0; i < np && !s.stopped; i++) api_stop_feed(&s, pieces[i], strlen(pieces[i]), &out);
    *stopped = s.stopped;
    if (!s.stopped) api_stop_flush(&s, &out);
    api_stop_free(&s);
    char *r = strdup(out.p ? out.p : "");
    api_buf_free(&out);
    return r;
}

static void test_stop(void) {
    char *st1[] = {"END"};
    bool stopped;
    const char *p1[] = {"Hello E", "N", "D world"};
    char *r = run_stop(st1, 1, p1, 3, &stopped);
    T_CHECK(stopped && !strcmp(r, "Hello "), "got '%s'", r);
    free(r);
    /* a partial match that does not complete is released */
    const char *p2[] = {"xEN", "Q", "yE"};
    r = run_stop(st1, 1, p2, 3, &stopped);
    T_CHECK(!stopped && !strcmp(r, "xENQyE"), "got '%s'", r);
    free(r);
    /* earliest of several stops wins; text after the stop is dropped */
    char *st2[] = {"world", "lo w", "\n\n"};
    const char *p3[] = {"hel", "lo", " wor", "ld!"};
    r = run_stop(st2, 3, p3, 4, &stopped);
    T_CHECK(stopped && !strcmp(r, "hel"), "got '%s'", r);
    free(r);
    /* stop inside one piece */
    const char *p4[] = {"a\n\nb"};
    r = run_stop(st2, 3, p4, 1, &stopped);
    T_CHECK(stopped && !strcmp(r, "a"), "got '%s'", r);
    free(r);
    /* multibyte stop split across pieces */
    char *st3[] = {"\xe4\xbd\xa0\xe5\xa5\xbd"};
    const char *p5[] = {"say \xe4\xbd\xa0", "\xe5\xa5\xbd!"};
    r = run_stop(st3, 1, p5, 2, &stopped);
    T_CHECK(stopped && !strcmp(r, "say "), "got '%s'", r);
    free(r);
    /* holding back: emitted text never contains a prefix of the stop at the end */
    api_stop s;
    api_stop_init(&s, st1, 1);
    api_buf out = {0};
    api_stop_feed(&s, "abcE", 4, &out);
    T_CHECK(out.len == 3 && !memcmp(out.p, "abc", 3), "held back wrong: %.*s", (int)out.len, out.p);
    api_stop_feed(&s, "EN", 2, &out); /* "EEN": first E can be released */
    T_CHECK(out.len == 4 && !memcmp(out.p, "abcE", 4), "after EEN: %.*s", (int)out.len, out.p);
    api_stop_feed(&s, "D", 1, &out);
    T_OK(s.stopped && out.len == 4);
    api_stop_free(&s);
    api_buf_free(&out);
    /* no stops: pass-through */
    const char *p6[] = {"a", "b"};
    r = run_stop(NULL, 0, p6, 2, &stopped);
    T_OK(!stopped && !strcmp(r, "ab"));
    free(r);
    /* stop at the very beginning */
    const char *p7[] = {"END and more"};
    r = run_stop(st1, 1, p7, 1, &stopped);
    T_OK(stopped && r[0] == 0);
    free(r);
}

/* Key files: one key per line, comments and blank lines ignored; every key matches. */
static void test_keys(void) {
    http_keys k = {0};
    sw_err e = {0};
    const char *text = "# production keys\n\n  key-one  \r\nkey-two\n#key-three\n\tkey-four";
    T_EQ_INT(http_keys_parse(&k, text, strlen(text), &e), SW_OK);
    T_EQ_INT(k.n, 3);
    T_OK(k.n == 3 && !strcmp(k.v[0], "key-one") && !strcmp(k.v[1], "key-two") && !strcmp(k.v[2], "key-four"));
    T_OK(http_keys_match(&k, "key-two", 7) && http_keys_match(&k, "key-four", 8));
    T_OK(!http_keys_match(&k, "key-thre", 8) && !http_keys_match(&k, "#key-three", 10) && !http_keys_match(&k, "", 0));
    T_OK(!http_keys_match(&k, "key-one ", 8));
    http_keys_free(&k);
    T_EQ_INT(http_keys_parse(&k, "# nothing\n\n", 12, &e), SW_ERR_FORMAT);
    T_EQ_INT(http_keys_parse(&k, "a b\n", 4, &e), SW_ERR_FORMAT);
    T_EQ_INT(http_keys_add(&k, "", 0), SW_ERR_ARG);
    http_keys_free(&k);
}

int main(void) {
    test_keys();
    test_valid_completion();
    test_valid_chat();
    test_invalid();
    test_fields();
    test_error_json();
    test_sse();
    test_stop();
    return t_done();
}
