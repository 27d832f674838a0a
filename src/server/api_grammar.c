/* api_grammar.c — the request fields that constrain the output, and their compilation:
 *   OpenAI   response_format {"type":"text"|"json_object"} or
 *            {"type":"json_schema","json_schema":{"name","schema","strict"}}; logit_bias
 *   llama-server  grammar (GBNF), json_schema
 *   vLLM     guided_json, guided_regex, guided_choice, guided_grammar
 * At most one constraint per request (400 naming the second one). The constraint is kept
 * as (kind, source text) and compiled through the server's gram_cache (grammar.h), so a
 * schema an agent sends with every request compiles once; a schema keyword or grammar
 * construct that cannot be enforced is a 400 naming it. */
#include "server/server.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define INVALID "invalid_request_error"

static json_t *field(json_t *root, const char *key) {
    json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

static int set_constraint(api_request *r, const char *param, const char *kind, const char *text, size_t len, api_error *e) {
    if (r->gkind)
        return api_error_set(e, 400, INVALID, NULL, param, "'%s' cannot be combined with '%s': one output constraint per request", param, r->gparam);
    r->gtext = malloc(len + 1);
    if (!r->gtext) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    memcpy(r->gtext, text, len);
    r->gtext[len] = 0;
    r->glen = len;
    r->gkind = kind;
    r->gparam = param;
    return SW_OK;
}

/* A schema given as a JSON object (or, for guided_json, a JSON string holding one). */
static int set_schema(api_request *r, const char *param, json_t *schema, api_error *e) {
    if (json_is_string(schema)) {
        json_t *j = json_loadb(json_string_value(schema), json_string_length(schema), 0, NULL);
        if (!j) return api_error_set(e, 400, INVALID, NULL, param, "'%s' must be a JSON schema", param);
        int rc = set_schema(r, param, j, e);
        json_decref(j);
        return rc;
    }
    if (!json_is_object(schema) && !json_is_boolean(schema))
        return api_error_set(e, 400, INVALID, NULL, param, "'%s' must be a JSON schema (an object)", param);
    char *t = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY); /* key order kept: properties come in it */
    if (!t) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    int rc = set_constraint(r, param, "schema", t, strlen(t), e);
    free(t);
    return rc;
}

static int string_field(json_t *root, const char *key, api_request *r, const char *kind, api_error *e) {
    json_t *v = field(root, key);
    if (!v) return SW_OK;
    if (!json_is_string(v) || json_string_length(v) == 0) return api_error_set(e, 400, INVALID, NULL, key, "'%s' must be a non-empty string", key);
    return set_constraint(r, key, kind, json_string_value(v), json_string_length(v), e);
}

static int parse_response_format(json_t *root, api_request *r, api_error *e) {
    json_t *rf = field(root, "response_format");
    if (!rf) return SW_OK;
    const char *P = "response_format";
    json_t *type = json_object_get(rf, "type");
    if (!json_is_object(rf) || !json_is_string(type))
        return api_error_set(e, 400, INVALID, NULL, P, "'response_format' must be an object with a 'type'");
    const char *t = json_string_value(type);
    if (!strcmp(t, "text")) return SW_OK;
    if (!strcmp(t, "json_object")) return set_constraint(r, P, "json", "", 0, e);
    if (!strcmp(t, "json_schema")) {
        json_t *js = json_object_get(rf, "json_schema");
        if (!json_is_object(js)) return api_error_set(e, 400, INVALID, NULL, "response_format.json_schema", "'response_format.json_schema' must be an object");
        json_t *name = json_object_get(js, "name"), *strict = field(js, "strict");
        if (name && !json_is_string(name)) return api_error_set(e, 400, INVALID, NULL, "response_format.json_schema.name", "'name' must be a string");
        if (strict && !json_is_boolean(strict)) return api_error_set(e, 400, INVALID, NULL, "response_format.json_schema.strict", "'strict' must be a boolean");
        json_t *schema = field(js, "schema");
        if (!schema) return set_constraint(r, P, "json", "", 0, e); /* no schema: any JSON object */
        return set_schema(r, P, schema, e);
    }
    return api_error_set(e, 400, INVALID, NULL, "response_format.type", "'response_format.type' must be 'text', 'json_object' or 'json_schema'");
}

static int parse_logit_bias(json_t *root, api_request *r, api_error *e) {
    json_t *lb = field(root, "logit_bias");
    if (!lb) return SW_OK;
    if (!json_is_object(lb)) return api_error_set(e, 400, INVALID, NULL, "logit_bias", "'logit_bias' must be an object of token id -> bias");
    size_t n = json_object_size(lb);
    if (n > 1024) return api_error_set(e, 400, INVALID, NULL, "logit_bias", "'logit_bias' has more than 1024 entries");
    r->bias_ids = malloc((n + 1) * sizeof(int32_t));
    r->bias = malloc((n + 1) * sizeof(float));
    if (!r->bias_ids || !r->bias) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(lb, k, v) {
        char *end;
        long id = strtol(k, &end, 10);
        if (!*k || *end || id < 0 || id > INT32_MAX)
            return api_error_set(e, 400, INVALID, NULL, "logit_bias", "'logit_bias' keys must be token ids (got '%.40s')", k);
        if (!json_is_number(v) || json_number_value(v) < -100 || json_number_value(v) > 100)
            return api_error_set(e, 400, INVALID, NULL, "logit_bias", "'logit_bias' values must be numbers between -100 and 100");
        r->bias_ids[r->n_bias] = (int32_t)id;
        r->bias[r->n_bias++] = (float)json_number_value(v);
    }
    return SW_OK;
}

int api_parse_structured(json_t *root, api_request *r, api_error *e) {
    int rc;
    if ((rc = parse_response_format(root, r, e))) return rc;
    json_t *js = field(root, "json_schema");
    if (js && (rc = set_schema(r, "json_schema", js, e))) return rc;
    js = field(root, "guided_json");
    if (js && (rc = set_schema(r, "guided_json", js, e))) return rc;
    if ((rc = string_field(root, "grammar", r, "gbnf", e))) return rc;
    if ((rc = string_field(root, "guided_grammar", r, "gbnf", e))) return rc;
    if ((rc = string_field(root, "guided_regex", r, "regex", e))) return rc;
    json_t *gc = field(root, "guided_choice");
    if (gc) {
        if (!json_is_array(gc) || json_array_size(gc) == 0) return api_error_set(e, 400, INVALID, NULL, "guided_choice", "'guided_choice' must be a non-empty array of strings");
        for (size_t i = 0; i < json_array_size(gc); i++)
            if (!json_is_string(json_array_get(gc, i))) return api_error_set(e, 400, INVALID, NULL, "guided_choice", "'guided_choice' must be a non-empty array of strings");
        char *t = json_dumps(gc, JSON_COMPACT);
        if (!t) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        rc = set_constraint(r, "guided_choice", "choice", t, strlen(t), e);
        free(t);
        if (rc) return rc;
    }
    return parse_logit_bias(root, r, e);
}

void api_structured_free(api_request *r) {
    free(r->gtext);
    free(r->bias_ids);
    free(r->bias);
}

int api_grammar_get(gram_cache *c, const api_request *r, gram_grammar **out, api_error *e) {
    *out = NULL;
    if (!r->gkind) return SW_OK;
    if (!c) return api_error_set(e, 400, INVALID, NULL, r->gparam, "'%s': structured outputs are not available on this server", r->gparam);
    sw_err err = {0};
    int rc = gram_cache_get(c, r->gkind, r->gtext, r->glen, out, &err);
    if (rc == SW_OK) return SW_OK;
    if (rc == SW_ERR_NOMEM) return api_error_set(e, 500, "server_error", NULL, NULL, "%s", err.msg);
    return api_error_set(e, 400, INVALID, NULL, r->gparam, "'%s': %s", r->gparam, err.msg);
}
