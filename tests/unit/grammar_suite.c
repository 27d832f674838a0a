/* grammar_suite.c — the JSON-Schema-Test-Suite cases (tests/data/json-schema-test-suite,
 * draft 2020-12) through the schema compiler and the token masks: every schema compiles
 * or is refused as unsupported (then it must use a keyword the engine does not enforce,
 * or be listed in EXCLUSIONS.txt); every instance, serialised compactly, is walked token
 * by token with the GPT-2 vocabulary of ../shared/models/qwen2-gpt2-tiny.f32.gguf and the
 * SentencePiece one (byte-fallback tokens) of llama-spm-tiny.f32.gguf, and
 * must be accepted exactly when it is valid, unless EXCLUSIONS.txt lists it with a reason. */
#include "t.h"
#include "gguf/gguf.h"
#include "grammar/grammar.h"
#include <dirent.h>

#define DIR_SUITE "tests/data/json-schema-test-suite"

static const char *const refused_kw[] = {"\"not\"", "\"uniqueItems\": true", "\"multipleOf\"", "\"if\"", "\"$dynamicRef\"",
    "\"$anchor\"", "\"$id\"", "\"contains\"", "\"patternProperties\"", "\"dependentRequired\"", "\"unevaluatedProperties\"",
    "\"$defs\": {\"a\"", "\"items\": [", NULL};

static char *excl;

static bool excluded(const char *file, const char *cs, const char *test) {
    char key[1024];
    snprintf(key, sizeof key, "%s | %s | %s |", file, cs, test);
    if (strstr(excl, key)) return true;
    snprintf(key, sizeof key, "%s | %s | * |", file, cs);
    return strstr(excl, key) != NULL;
}

static int counts[6]; /* tests ok, tests excluded, cases compiled, cases refused, refused+listed, mismatches */

static void run_file(const gram_vocab *v, const tok *t, const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *cases = json_load_file(path, JSON_ALLOW_NUL, &je);
    T_CHECK(json_is_array(cases), "%s: %s", path, je.text);
    const char *fname = strstr(path, DIR_SUITE) ? path + strlen(DIR_SUITE) + 1 : name;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *cd = json_string_value(json_object_get(c, "description"));
        json_t *schema = json_object_get(c, "schema");
        gram_grammar *g = NULL;
        sw_err err = {0};
        int rc = gram_compile_schema(v, schema, &g, &err);
        if (rc != SW_OK) {
            char *st = json_dumps(schema, JSON_COMPACT);
            /* jansson's compact form has no space after ':' */
            bool kw = false;
            for (int k = 0; refused_kw[k]; k++) {
                char pat[128];
                const char *p = refused_kw[k];
                size_t o = 0;
                for (; *p && o + 1 < sizeof pat; p++) if (*p != ' ') pat[o++] = *p;
                pat[o] = 0;
                kw |= strstr(st, pat) != NULL;
            }
            bool listed = excluded(fname, cd, "*");
            T_CHECK(rc == SW_ERR_UNSUPPORTED && (kw || listed), "%s | %s: refused: %s (%s)", fname, cd, err.msg, st);
            counts[3]++;
            if (listed) counts[4]++;
            free(st);
            continue;
        }
        counts[2]++;
        size_t j;
        json_t *tc;
        json_array_foreach(json_object_get(c, "tests"), j, tc) {
            const char *td = json_string_value(json_object_get(tc, "description"));
            bool valid = json_is_true(json_object_get(tc, "valid"));
            char *inst = json_dumps(json_object_get(tc, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            bool acc = false;
            size_t at = 0;
            rc = gram_check_text(g, t, inst, strlen(inst), &acc, &at, NULL, 0, NULL, &err);
            T_CHECK(rc == SW_OK, "%s", err.msg);
            if (acc == valid) counts[0]++;
            else if (excluded(fname, cd, td)) counts[1]++;
            else {
                counts[5]++;
                T_CHECK(acc == valid, "%s | %s | %s | instance %s: expected %s, got %s at byte %zu", fname, cd, td, inst,
                        valid ? "accept" : "reject", acc ? "accept" : "reject", at);
            }
            free(inst);
        }
        gram_grammar_release(g);
    }
    json_decref(cases);
}

static void run_dir(const gram_vocab *v, const tok *t, const char *dir) {
    DIR *d = opendir(dir);
    T_CHECK(d != NULL, "cannot open %s", dir);
    if (!d) return;
    struct dirent *e;
    char *names[128];
    int n = 0;
    while ((e = readdir(d)) && n < 128)
        if (strstr(e->d_name, ".json")) names[n++] = strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) { run_file(v, t, dir, names[i]); free(names[i]); }
}

int main(void) {
    if (t_shared_missing()) { T_SKIP("../shared missing"); return t_done(); }
    size_t len;
    sw_err err = {0};
    T_CHECK(sw_read_file(DIR_SUITE "/EXCLUSIONS.txt", &excl, &len, &err) == SW_OK, "%s", err.msg);
    if (!excl) excl = strdup("");
    static const char *const models[2] = {SHARED "/models/qwen2-gpt2-tiny.f32.gguf", SHARED "/models/llama-spm-tiny.f32.gguf"};
    for (int mi = 0; mi < 2; mi++) {
        gguf_ctx *ctx = NULL;
        tok *t = NULL;
        gram_vocab *v = NULL;
        memset(counts, 0, sizeof counts);
        T_CHECK(gguf_open(models[mi], &ctx, &err) == SW_OK, "%s", err.msg);
        T_CHECK(tok_create(ctx, &t, &err) == SW_OK && gram_vocab_create(t, &v, &err) == SW_OK, "%s", err.msg);
        run_dir(v, t, DIR_SUITE);
        run_dir(v, t, DIR_SUITE "/format");
        printf("suite (%s): %d instances right, %d excluded, %d wrong; %d schemas compiled, %d refused (%d listed)\n",
               strrchr(models[mi], '/') + 1, counts[0], counts[1], counts[5], counts[2], counts[3], counts[4]);
        gram_vocab_destroy(v);
        tok_destroy(t);
        gguf_close(ctx);
    }
    free(excl);
    return t_done();
}
