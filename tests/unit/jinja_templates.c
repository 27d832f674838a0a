/* jinja_templates.c — every case of the real chat templates in ../shared/templates
 * (Qwen3, Llama 3.1, Gemma 3, gpt-oss, DeepSeek-V3) rendered with the jinja module must
 * equal, byte for byte, what Hugging Face's reference renderer produced. Each case's
 * variables: messages, tools (None when absent, as transformers passes it), add_generation_prompt, its `extra` template
 * variables, its special tokens; strftime_now's date from the case's `now`. */
#include "t.h"
#include "jinja/jinja.h"

static const char *names[] = {"qwen3", "llama3_1", "gemma3", "gptoss", "deepseek_v3"};

static void show_diff(const char *got, const char *want) {
    size_t i = 0;
    while (got[i] && got[i] == want[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "  first difference at byte %zu\n  got:  ...%.120s\n  want: ...%.120s\n", i, got + from, want + from);
}

static void run_template(const char *name) {
    char path[512];
    snprintf(path, sizeof path, SHARED "/templates/%s.jinja", name);
    char *src = NULL;
    size_t len = 0;
    sw_err err = {0};
    if (sw_read_file(path, &src, &len, &err)) { T_CHECK(0, "%s: %s", path, err.msg); return; }
    jinja_template *t = NULL;
    int rc = jinja_parse(src, len, &t, &err);
    T_CHECK(rc == 0, "%s: parse: %s", name, err.msg);
    free(src);
    if (rc) return;
    snprintf(path, sizeof path, SHARED "/templates/%s.cases.json", name);
    json_error_t jerr;
    json_t *cases = json_load_file(path, 0, &jerr);
    T_CHECK(json_is_array(cases), "%s: %s", path, jerr.text);
    size_t i, pass = 0;
    json_t *cs;
    json_array_foreach(cases, i, cs) {
        json_t *vars = json_object();
        json_object_set(vars, "messages", json_object_get(cs, "messages"));
        json_t *tools = json_object_get(cs, "tools");
        json_object_set(vars, "tools", tools ? tools : json_null());
        json_object_set(vars, "add_generation_prompt", json_object_get(cs, "add_generation_prompt"));
        json_object_update(vars, json_object_get(cs, "extra"));
        json_object_update(vars, json_object_get(cs, "special_tokens"));
        char today[16] = {0};
        const char *now = json_string_value(json_object_get(cs, "now"));
        if (now) snprintf(today, sizeof today, "%.10s", now);
        jinja_opts o = {.today = now ? today : NULL};
        char *out = NULL;
        size_t n = 0;
        const char *cname = json_string_value(json_object_get(cs, "name"));
        const char *want = json_string_value(json_object_get(cs, "expected"));
        rc = jinja_render(t, vars, &o, &out, &n, &err);
        T_CHECK(rc == 0, "%s/%s: render: %s", name, cname, err.msg);
        if (!rc) {
            bool same = want && n == strlen(want) && !memcmp(out, want, n);
            T_CHECK(same, "%s/%s: output differs", name, cname);
            if (!same && want) show_diff(out, want);
            pass += same;
        }
        free(out);
        json_decref(vars);
    }
    printf("%s: %zu/%zu cases byte-exact\n", name, pass, json_array_size(cases));
    json_decref(cases);
    jinja_destroy(t);
}

int main(void) {
    if (t_shared_missing()) { T_SKIP("../shared is absent: no template cases"); return t_done(); }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) run_template(names[i]);
    return t_done();
}
