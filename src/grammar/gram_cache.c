/* gram_cache.c — compiled grammars kept by content: the key is (kind, source text),
 * hashed with xxh3 and compared in full; least recently used entries are dropped past
 * the capacity (a dropped grammar lives on while matchers hold references). An agent that
 * sends the same schema with every request compiles it once, and its mask cache (the
 * expensive part) stays warm. Thread-safe (one mutex; compiles run outside it). */
#include "grammar/gram_internal.h"
#include <xxhash.h>

typedef struct centry {
    uint64_t hash;
    char *kind, *text; size_t len;
    gram_grammar *g;
    uint64_t used;
} centry;

struct gram_cache {
    pthread_mutex_t mu;
    const gram_vocab *v;
    centry *e; int n, cap;
    uint64_t clock;
};

int gram_cache_create(const gram_vocab *v, int capacity, gram_cache **out, sw_err *err) {
    *out = NULL;
    if (capacity < 1) return sw_err_set(err, SW_ERR_ARG, "grammar cache: capacity must be >= 1");
    gram_cache *c = calloc(1, sizeof *c);
    if (c) c->e = calloc((size_t)capacity, sizeof(centry));
    if (!c || !c->e) { free(c); return sw_err_set(err, SW_ERR_NOMEM, "grammar cache: out of memory"); }
    c->v = v;
    c->cap = capacity;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return SW_OK;
}

static void centry_clear(centry *e) {
    free(e->kind);
    free(e->text);
    gram_grammar_release(e->g);
    memset(e, 0, sizeof *e);
}

void gram_cache_destroy(gram_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) centry_clear(&c->e[i]);
    free(c->e);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int compile(const gram_vocab *v, const char *kind, const char *text, size_t len, gram_grammar **g, sw_err *err) {
    if (!strcmp(kind, "gbnf")) return gram_compile_gbnf(v, text, len, g, err);
    if (!strcmp(kind, "regex")) return gram_compile_regex(v, text, len, g, err);
    if (!strcmp(kind, "json")) return gram_compile_json_object(v, g, err);
    if (strcmp(kind, "schema") && strcmp(kind, "choice") && strcmp(kind, "framed")) return sw_err_set(err, SW_ERR_ARG, "grammar cache: unknown kind '%s'", kind);
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (!j) return sw_err_set(err, SW_ERR_FORMAT, "%s: invalid JSON: %s", kind, je.text);
    int rc;
    if (!strcmp(kind, "schema")) {
        rc = gram_compile_schema(v, j, g, err);
    } else if (!strcmp(kind, "framed")) {
        gram_frame f = {"", "", "", "", "", 1, 1};
        if (json_unpack_ex(j, NULL, 0, "{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "prefix", &f.prefix, "open", &f.open, "close",
                           &f.close, "sep", &f.sep, "suffix", &f.suffix, "min", &f.min, "max", &f.max) ||
            !json_object_get(j, "schema"))
            rc = sw_err_set(err, SW_ERR_FORMAT, "framed: expected {schema, prefix, open, close, sep, suffix, min, max}");
        else
            rc = gram_compile_schema_framed(v, json_object_get(j, "schema"), &f, g, err);
    } else {
        size_t n = json_array_size(j);
        const char **ch = malloc((n + 1) * sizeof *ch);
        rc = ch && json_is_array(j) && n > 0 ? SW_OK : sw_err_set(err, SW_ERR_FORMAT, "choice: expected a non-empty array of strings");
        for (size_t i = 0; rc == SW_OK && i < n; i++)
            if (!(ch[i] = json_string_value(json_array_get(j, i)))) rc = sw_err_set(err, SW_ERR_FORMAT, "choice: expected strings");
        if (rc == SW_OK) rc = gram_compile_choice(v, ch, (int)n, g, err);
        free(ch);
    }
    json_decref(j);
    return rc;
}

int gram_cache_get(gram_cache *c, const char *kind, const char *text, size_t len, gram_grammar **out, sw_err *err) {
    *out = NULL;
    uint64_t h = XXH3_64bits_withSeed(text, len, XXH3_64bits(kind, strlen(kind)));
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        centry *e = &c->e[i];
        if (e->hash == h && e->len == len && !strcmp(e->kind, kind) && !memcmp(e->text, text, len)) {
            e->used = ++c->clock;
            gram_grammar_retain(e->g);
            *out = e->g;
            pthread_mutex_unlock(&c->mu);
            return SW_OK;
        }
    }
    pthread_mutex_unlock(&c->mu);
    gram_grammar *g = NULL;
    int rc = compile(c->v, kind, text, len, &g, err);
    if (rc != SW_OK) return rc;
    centry ne = {h, strdup(kind), malloc(len + 1), len, g, 0};
    if (!ne.kind || !ne.text) { /* not cached, still usable */
        free(ne.kind); free(ne.text);
        *out = g;
        return SW_OK;
    }
    memcpy(ne.text, text, len);
    ne.text[len] = 0;
    pthread_mutex_lock(&c->mu);
    ne.used = ++c->clock;
    int slot = c->n;
    if (c->n == c->cap) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[slot].used) slot = i;
        centry_clear(&c->e[slot]);
    } else {
        c->n++;
    }
    gram_grammar_retain(g);
    c->e[slot] = ne;
    pthread_mutex_unlock(&c->mu);
    *out = g;
    return SW_OK;
}
