/* jinja_lang.c — the Jinja language features on small inline templates: literals and
 * arithmetic, Python's str()/repr formatting, string methods and filters, tojson (Python's
 * separators, indent, key order, ensure_ascii off), loops and the loop object, scoping,
 * namespace, macros, call blocks, filter blocks, whitespace control, tests, error reports
 * (raise_exception verbatim, undefined misuse, type errors, parse errors with line and
 * column), and the limits (output, steps, recursion, nesting).
 * The expected texts of ok_cases are what Python's Jinja2 3.1.6 rendered for the same
 * template and variables (with transformers' tojson and strftime_now fixed to 2025-06-15). */
#include "t.h"
#include "jinja/jinja.h"

static const char *vars_json = "{\"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\", \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": [1, 2.5, null, true]}}}]}], \"d\": {\"z\": 1, \"a\": \"x\", \"m\": {\"k\": [1, {\"q\": \"é\\n\\\"\\\\\"}]}}, \"s\": \"  Hello, World  \", \"n\": 7, \"f\": 2.5, \"e\": [], \"t\": true, \"nul\": null, \"words\": [\"b\", \"a\", \"c\"]}";

static const struct { const char *tmpl, *want; } ok_cases[] = {
    {"{{ [1, \"l\", 1].count(1) }}{{ [\"a\", \"b\"].count(\"l\") }}{{ (1, 2).index(2) }}", "201"},
    {"{{ \"ab\" * true }}{{ false * \"x\" }}|{{ zz is callable }}{{ n is callable }}|{% if false %}{{ n is not none.rstrip(\"x\") }}{% endif %}ok", "ab|TrueFalse|ok"},
    {"{{ \"it's a [b]ig-deal <x> (ok) {y}\"|title }}|{{ \"it's a [b]ig-deal\".title() }}|{{ true|abs }}|{{ 2.5 is even }}{{ 3.0 is odd }}{{ true is divisibleby 3 }}{{ 9 is divisibleby 3 }}{{ -7 is odd }}|{{ (1, 2) * 2 }}{{ [0] * 3 }}{{ [1] * false }}|{{ [1, 2] < [1, 3] }}{{ (1, 2) >= (1, 2) }}{{ [2] > [1, 5] }}{{ [1] < [1, 0] }}", "It's A [B]ig-Deal <X> (Ok) {Y}|It'S A [B]Ig-Deal|1|FalseTrueFalseTrueTrue|(1, 2, 1, 2)[0, 0, 0][]|TrueTrueTrueTrue"},
    {"{{ (1, \"a\") }}{{ (1,) }}{{ () }}{{ {\"k\": 2}.items()|list }}{{ {\"k\": 2}|items|list }}{{ (1, 2)|list }}{{ [(1, 2)]|tojson }}{{ 1, 2 }}", "(1, 'a')(1,)()[('k', 2)][('k', 2)][1, 2][[1, 2]](1, 2)"},
    {"{{ [1, zz, none] }}{{ {\"a\": zz} }}", "[1, Undefined, None]{'a': Undefined}"},
    {"{{ \"a\\nb\\n\\nc\"|indent }}|{{ \"a\\nb\\n\\nc\"|indent(2, true, true) }}|{{ \"a\\nb\\n\"|indent(first=true) }}|{{ \"x\\n\"|indent(blank=true) }}|{{ \"p\\nq\"|indent(\"> \") }}", "a\n    b\n\n    c|  a\n  b\n  \n  c|    a\n    b\n|x\n    |p\n> q"},
    {"{{ \"éàÿ ĀāĹĺŹź αβς жё\"|upper }} {{ \"ÉÀŸ ĀāĹĺŹź ΑΣ ЖЁ\"|lower }} {{ \"élan vital ébène\"|title }} {{ \"ÉCOLE\"|capitalize }}", "ÉÀŸ ĀĀĹĹŹŹ ΑΒΣ ЖЁ éàÿ āāĺĺźź ας жё Élan Vital Ébène École"},
    {"{{ \"a\" ~ 1 ~ none ~ true }}", "a1NoneTrue"},
    {"{{ 1 + 2 * 3 - 4 // 3 }} {{ 7 % 3 }} {{ -7 // 2 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 1.5 + 1 }}", "6 1 -4 1024 3.5 2.5"},
    {"{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 100.0 }} {{ 1e-7 }} {{ -0.5 }}", "0.30000000000000004 1e+20 100.0 1e-07 -0.5"},
    {"{{ s|trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ \"xxhixx\".strip(\"x\") }}", "Hello, World|Hello, World|Hello, World  |  Hello, World|hi"},
    {"{{ s|upper }}{{ s|lower }}{{ \"hello wORLD\"|title }}{{ \"hello wORLD\".title() }}{{ \"hELLO\"|capitalize }}", "  HELLO, WORLD    hello, world  Hello WorldHello WorldHello"},
    {"{{ s|length }} {{ \"héllo\"|length }} {{ msgs|length }} {{ d|length }} {{ e|length }}", "16 5 2 3 0"},
    {"{{ \"a,b,,c\".split(\",\") }} {{ \"a b  c \".split() }} {{ \"a,b,c\".split(\",\", 1) }} {{ \"a,b,c\".rsplit(\",\", 1) }} {{ \" a b c \".rsplit(None, 1) }}", "['a', 'b', '', 'c'] ['a', 'b', 'c'] ['a', 'b,c'] ['a,b', 'c'] [' a b', 'c']"},
    {"{{ \"hello\".startswith(\"he\") }} {{ \"hello\".endswith(\"lo\") }} {{ \"hello\".startswith((\"x\", \"h\")) }} {{ \"hello\".replace(\"l\", \"L\") }} {{ \"hello\".replace(\"l\", \"L\", 1) }}", "True True True heLLo heLlo"},
    {"{{ \"hello\"[1:3] }} {{ \"hello\"[::-1] }} {{ \"hello\"[-1] }} {{ \"héllo\"[1] }} {{ words[1:] }} {{ words[::-1] }} {{ words[-2:] }} {{ words[::2] }}", "el olleh o é ['a', 'c'] ['c', 'a', 'b'] ['a', 'c'] ['b', 'c']"},
    {"{{ d|tojson }}", "{\"z\": 1, \"a\": \"x\", \"m\": {\"k\": [1, {\"q\": \"é\\n\\\"\\\\\"}]}}"},
    {"{{ d|tojson(indent=2) }}", "{\n  \"z\": 1,\n  \"a\": \"x\",\n  \"m\": {\n    \"k\": [\n      1,\n      {\n        \"q\": \"é\\n\\\"\\\\\"\n      }\n    ]\n  }\n}"},
    {"{{ msgs[1].tool_calls[0].function.arguments|tojson }} {{ \"é\\u00e9\"|tojson }} {{ [1, 2.0, none, false]|tojson }} {{ {}|tojson }} {{ []|tojson(indent=2) }}", "{\"b\": 1, \"a\": [1, 2.5, null, true]} \"éé\" [1, 2.0, null, false] {} []"},
    {"{{ d|tojson(sort_keys=true) }}", "{\"a\": \"x\", \"m\": {\"k\": [1, {\"q\": \"é\\n\\\"\\\\\"}]}, \"z\": 1}"},
    {"{% for k, v in d.items() %}{{ loop.index }}:{{ k }}={{ v }};{% endfor %}", "1:z=1;2:a=x;3:m={'k': [1, {'q': 'é\\n\"\\\\'}]};"},
    {"{% for k, v in d|items %}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }} {% endfor %}", "0TrueFalse332 1FalseFalse321 2FalseTrue310 "},
    {"{% for w in words %}{{ loop.cycle(\"odd\", \"even\") }}{{ loop.previtem }}<{{ loop.nextitem }}>{% endfor %}", "odd<a>evenb<c>odda<>"},
    {"{% for w in words if w != \"a\" %}{{ w }}{{ loop.index }}{% else %}none{% endfor %}|{% for w in e %}x{% else %}empty{% endfor %}", "b1c2|empty"},
    {"{% for w in words %}{% if w == \"a\" %}{% continue %}{% endif %}{% if w == \"c\" %}{% break %}{% endif %}{{ w }}{% endfor %}", "b"},
    {"{% for c in \"abc\" %}{{ c }}.{% endfor %}{% for k in d %}{{ k }}{% endfor %}", "a.b.c.zam"},
    {"{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = i + 10 %}{{ x }}{% endfor %}{{ x }}", "1111121"},
    {"{% set ns = namespace(c=0, l=[]) %}{% for i in range(5) %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }} {{ range(2, 10, 3)|list }}", "10 [2, 5, 8]"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set blk %}in{{ n }}side{% endset %}[{{ blk }}]", "12[in7side]"},
    {"{% if n > 5 and not t is false %}big{% elif n > 2 %}mid{% else %}small{% endif %} {{ \"yes\" if n is odd else \"no\" }} {{ \"x\" if false }}|", "big yes |"},
    {"{{ n is defined }}{{ zz is defined }}{{ zz is undefined }}{{ nul is none }}{{ s is string }}{{ d is mapping }}{{ words is iterable }}{{ n is number }}{{ f is float }}{{ n is integer }}{{ t is boolean }}{{ t is true }}{{ n is divisibleby 7 }}{{ n is even }}{{ s is not string }}{{ words is sequence }}", "TrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalseFalseTrue"},
    {"{{ \"a\" in \"cat\" }} {{ \"z\" not in words }} {{ \"z\" in d }} {{ 2 in [1, 2] }} {{ 1 < 2 < 3 }} {{ 3 < 2 < 4 }} {{ \"a\" < \"b\" }} {{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} {{ none == none }}", "True True True True True False True True True True"},
    {"{{ words|join(\", \") }} {{ words|join }} {{ msgs|map(attribute=\"role\")|join(\"/\") }} {{ words|map(\"upper\")|list }} {{ msgs|selectattr(\"role\", \"equalto\", \"user\")|map(attribute=\"content\")|first }}", "b, a, c bac user/assistant ['B', 'A', 'C'] hi"},
    {"{{ msgs|rejectattr(\"role\", \"eq\", \"user\")|list|length }} {{ [1, 2, 3, 4]|select(\"odd\")|list }} {{ [1, 2, 3, 4]|reject(\"odd\")|list }} {{ [0, 1, \"\", \"a\"]|select|list }} {{ msgs|selectattr(\"tool_calls\")|list|length }}", "1 [1, 3] [2, 4] [1, 'a'] 1"},
    {"{{ words|first }}{{ words|last }}{{ \"abc\"|first }}{{ \"abc\"|last }} {{ zz|default(\"dflt\") }} {{ \"\"|default(\"dflt\") }} {{ \"\"|default(\"dflt\", true) }} {{ nul|default(\"x\") }}", "bcac dflt  dflt None"},
    {"{{ \"42\"|int + 1 }} {{ \"4.7\"|int }} {{ \"abc\"|int }} {{ 3.9|int }} {{ \"2.5\"|float }} {{ 5|string ~ \"!\" }} {{ [1, \"a\"]|string }} {{ {\"a\": none}|string }}", "43 4 0 3 2.5 5! [1, 'a'] {'a': None}"},
    {"{{ \"a-b-c\"|replace(\"-\", \"+\") }} {{ \"<b>\"|safe }} {{ words|reverse|list }} {{ \"abc\"|reverse }} {{ -3|abs }} {{ \"héllo\"|upper }} {{ d.keys()|list }} {{ d.values()|list|length }} {{ d.get(\"a\") }} {{ d.get(\"zz\", 5) }}", "a+b+c <b> ['c', 'a', 'b'] cba 3 HÉLLO ['z', 'a', 'm'] 3 x 5"},
    {"{% macro greet(name, greeting=\"Hello\") %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet(\"Bob\") }} {{ greet(\"Al\", greeting=\"Hi\") }} {{ greet(name=\"Cy\") }}", "Hello, Bob! Hi, Al! Hello, Cy!"},
    {"{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * fact(k - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", "120"},
    {"{% macro box(t) %}[{{ t }}:{{ caller() }}]{% endmacro %}{% call box(\"x\") %}inner {{ n }}{% endcall %} {% macro lst(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) lst([1, 2]) %}<{{ v }}>{% endcall %}", "[x:inner 7] <1><2>"},
    {"{% filter upper %}shout {{ s|trim }}{% endfilter %} {% raw %}{{ not parsed }}{% endraw %}", "SHOUT HELLO, WORLD {{ not parsed }}"},
    {"a  {{- \" b \" -}}  c {#- comment -#}   d {%- if true -%}   e   {%- endif %}", "a b cde"},
    {"x {# c #} y", "x  y"},
    {"{{ strftime_now(\"%Y-%m-%d %B\") }} {{ [1, [2, 3]]|tojson(indent=1) }}", "2025-06-15 June [\n 1,\n [\n  2,\n  3\n ]\n]"},
    {"{{ {\"b\": 1, \"a\": {\"c\": 2}}.a.c }} {{ [[1, 2], [3]][0][1] }} {{ msgs[0][\"role\"] }} {{ msgs[5] is defined }} {{ (1, 2)|list }} {{ (\"a\" \"b\") }}", "2 2 user False [1, 2] ab"},
    {"{{ \"%s\"|length }}{{ 'it''s' }} {{ \"tab\\there\" }} {{ 'q\\'s' }} {{ \"\\u00e9\" }}", "2its tab\there q's é"},
    {"{% if msgs[1].content %}has{% endif %}{% if msgs[0].missing %}no{% else %}missing-ok{% endif %} {{ msgs[0].missing|default(\"d\") }}", "hasmissing-ok d"},
    {"{{ 1 if nul is none }} {{ not none }} {{ (n > 3) and \"and-val\" }} {{ e or \"or-val\" }} {{ words and words[0] }}", "1 True and-val or-val b"},
    {"{{ \"=\" * 5 }} {{ words + [\"d\"] }} {{ \"ab\" ~ 1.0 }} {{ n - f }} {{ 10 / 4 }} {{ 9 // 2.0 }}", "===== ['b', 'a', 'c', 'd'] ab1.0 4.5 2.5 4.0"},
};

/* Error cases: our message must contain `msg` (raise_exception's text is verbatim). */
static const struct { const char *tmpl, *msg; } err_cases[] = {
    {"{{ raise_exception(\"custom failure: \" ~ n) }}", "custom failure: 7"},
    {"{{ zz.attr }}", "'zz' is undefined"},
    {"{{ \"a\" + 1 }}", "unsupported operand types for '+': 'str' and 'int'"},
    {"{% for x in n %}{% endfor %}", "'int' object is not iterable"},
    {"{{ undefined_fn(1) }}", "'undefined_fn' is undefined"},
    {"{{ n|nosuchfilter }}", "no filter named 'nosuchfilter'"},
    {"{{ n is nosuchtest }}", "no test named 'nosuchtest'"},
    {"{% set q.x = 1 %}", "cannot assign attribute on non-namespace"},
    {"{% macro m(a) %}{{ m(a) }}{% endmacro %}{{ m(1) }}", "recursion depth"},
    {"{% for i in range(10000000) %}{% endfor %}", "step limit"},
    {"{% for i in range(3000) %}{% for j in range(3000) %}{% endfor %}{% endfor %}", "limit"},
    {"{{ 1 // 0 }}", "division or modulo by zero"},
    {"{{ \"x\" * 100000000 }}", "output limit"},
    {"{% set s = namespace(v=\"xxxxxxxxxxxxxxxx\") %}{% for i in range(30) %}{% set s.v = s.v ~ s.v %}{% endfor %}", "limit"},
    {"{{ 9223372036854775807 + 1 }}", "integer overflow"},
    {"{{ words.nosuchmethod() }}", "has no method 'nosuchmethod'"},
    {"{{ n() }}", "'int' object is not callable"},
    {"{{ zz|int }}", "'zz' is undefined"},
    {"{{ zz|float }}", "'zz' is undefined"},
    {"{{ \"a\".rstrip(None, 0) }}", "rstrip expected at most 1 argument, got 2"},
    {"{{ \"hello\".endswith(\"lo\", \"L\") }}", "endswith expected at most 1 argument"},
    {"{{ \"hello\".replace(\"l\", \"L\", zz) }}", "count must be an integer"},
    {"{{ \"x\"|capi.float }}", "no filter named 'capi.float'"},
    {"{{ n is not none.rstrip(\"x\") }}", "no test named 'none.rstrip'"},
};

/* Parse errors: reported with the line and column of the offending token. */
static const struct { const char *tmpl, *msg; } parse_err_cases[] = {
    {"{% if true %}unclosed", "line 1 col 22: unexpected end of template, expected {% elif %}"},
    {"{{ 1 + }}", "line 1 col 8: unexpected end of expression"},
    {"{% endfor %}", "line 1 col 4: unexpected 'endfor'"},
    {"{{ \"unterminated }}", "line 1 col 4: unterminated string literal"},
    {"\n\n  {% frobnicate %}", "line 3 col 6: unknown statement 'frobnicate'"},
    {"{{ (((( 1 }}", "line 1 col 11: expected ')'"},
    {"text {{ x", "line 1 col 6: unclosed tag"},
    {"{# never closed", "unterminated comment"},
    {"{% break %}", "line 1 col 4: 'break' outside of a for loop"},
    {"{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}", "'continue' outside of a for loop"},
    {"{{ x @ y }}", "unexpected character '@'"},
};

static int render(const char *tmpl, json_t *vars, char **out, sw_err *err) {
    jinja_template *t = NULL;
    int rc = jinja_parse(tmpl, strlen(tmpl), &t, err);
    if (rc) return rc;
    jinja_opts o = {.today = "2025-06-15"};
    rc = jinja_render(t, vars, &o, out, NULL, err);
    jinja_destroy(t);
    return rc;
}

static void test_ok_cases(json_t *vars) {
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        char *out = NULL;
        sw_err err = {0};
        int rc = render(ok_cases[i].tmpl, vars, &out, &err);
        T_CHECK(rc == 0, "%s: %s", ok_cases[i].tmpl, err.msg);
        if (!rc) T_CHECK(!strcmp(out, ok_cases[i].want), "%s\n  got:  [%s]\n  want: [%s]", ok_cases[i].tmpl, out, ok_cases[i].want);
        free(out);
    }
}

static void test_errors(json_t *vars) {
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        char *out = NULL;
        sw_err err = {0};
        int rc = render(err_cases[i].tmpl, vars, &out, &err);
        T_CHECK(rc != 0 && strstr(err.msg, err_cases[i].msg), "%s: rc %d msg [%s], want [%s]", err_cases[i].tmpl, rc, err.msg, err_cases[i].msg);
        free(out);
    }
    /* raise_exception's message is passed verbatim (it becomes the 400's message) */
    char *out = NULL;
    sw_err err = {0};
    int rc = render("{% if true %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}", vars, &out, &err);
    T_CHECK(rc == SW_ERR_FORMAT && !strcmp(err.msg, "Conversation roles must alternate"), "rc %d [%s]", rc, err.msg);
    for (size_t i = 0; i < sizeof parse_err_cases / sizeof parse_err_cases[0]; i++) {
        jinja_template *t = NULL;
        memset(&err, 0, sizeof err);
        rc = jinja_parse(parse_err_cases[i].tmpl, strlen(parse_err_cases[i].tmpl), &t, &err);
        T_CHECK(rc == SW_ERR_FORMAT && strstr(err.msg, parse_err_cases[i].msg), "%s: rc %d [%s], want [%s]",
                parse_err_cases[i].tmpl, rc, err.msg, parse_err_cases[i].msg);
        jinja_destroy(t);
    }
}

static void test_features(json_t *vars) {
    char *out = NULL;
    sw_err err = {0};
    /* {% generation %} (transformers' AssistantTracker) renders its body */
    int rc = render("a{% generation %}gen{{ n }}{% endgeneration %}b", vars, &out, &err);
    T_CHECK(rc == 0 && !strcmp(out, "agen7b"), "%s", rc ? err.msg : out);
    free(out); out = NULL;
    /* the final newline of a template is dropped, inner ones kept; \r\n becomes \n */
    rc = render("x\r\ny\n", vars, &out, &err);
    T_CHECK(rc == 0 && !strcmp(out, "x\ny"), "%s", rc ? err.msg : out);
    free(out); out = NULL;
    /* undefined variables render as nothing; no variables at all is fine */
    rc = render("[{{ nothing }}]", NULL, &out, &err);
    T_CHECK(rc == 0 && !strcmp(out, "[]"), "%s", rc ? err.msg : out);
    free(out); out = NULL;
    /* invalid UTF-8 passes the case filters unchanged (found by the fuzzer: a lone lead
     * byte was once mapped as a Latin-1 code point and written as two bytes) */
    rc = render("{{ 'A\xc3\xc3\xe9Z'|lower }}{{ 'a\xc3'|upper }}{{ '\xc3x'|title }}", vars, &out, &err);
    T_CHECK(rc == 0 && !strcmp(out, "a\xc3\xc3\xe9zA\xc3\xc3x"), "%s", rc ? err.msg : out);
    free(out); out = NULL;
    /* output limit */
    jinja_template *t = NULL;
    const char *big = "{% for i in range(1000) %}0123456789{% endfor %}";
    T_OK(jinja_parse(big, strlen(big), &t, &err) == 0);
    jinja_opts o = {.limits = {.max_output = 5000}};
    rc = jinja_render(t, NULL, &o, &out, NULL, &err);
    T_CHECK(rc == SW_ERR_RANGE && strstr(err.msg, "output"), "rc %d %s", rc, err.msg);
    o.limits.max_output = 10000;
    size_t n = 0;
    rc = jinja_render(t, NULL, &o, &out, &n, &err);
    T_CHECK(rc == 0 && n == 10000, "rc %d n %zu", rc, n);
    free(out); out = NULL;
    jinja_destroy(t);
    /* deeply nested expressions are a parse error, not a stack overflow */
    char deep[4096];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 1000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    rc = jinja_parse(deep, strlen(deep), &t, &err);
    T_CHECK(rc == SW_ERR_FORMAT && strstr(err.msg, "nested too deeply"), "rc %d %s", rc, err.msg);
    /* deeply nested data: a render error */
    json_t *v = json_array(), *root = v;
    for (int i = 0; i < 200; i++) { json_t *inner = json_array(); json_array_append_new(v, inner); v = inner; }
    json_t *vars2 = json_pack("{s:o}", "x", root);
    rc = render("{{ x|length }}", vars2, &out, &err);
    T_CHECK(rc != 0 && strstr(err.msg, "nested too deeply"), "rc %d %s", rc, err.msg);
    json_decref(vars2);
    /* deeply nested values built by the template: compared, printed, serialized safely */
    const char *nest = "{% set ns = namespace(x=[], y=[]) %}{% for i in range(20000) %}{% set ns.x = [ns.x] %}"
                       "{% set ns.y = [ns.y] %}{% endfor %}{{ ns.x == ns.x }} {{ ns.x == ns.y }} {{ ns.x in [ns.y] }} "
                       "{{ (ns.x|string)[:3] }}";
    rc = render(nest, NULL, &out, &err);
    T_CHECK(rc == 0 && !strcmp(out, "True False False [[["), "%s", rc ? err.msg : out);
    free(out); out = NULL;
    rc = render("{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}",
                NULL, &out, &err);
    T_CHECK(rc != 0 && strstr(err.msg, "nested too deeply"), "rc %d %s", rc, err.msg);
}

static void test_chat_vars(void) {
    json_error_t je;
    json_t *req = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\"}],"
                             "\"chat_template_kwargs\":{\"enable_thinking\":false}}", 0, &je);
    json_t *vars = NULL;
    sw_err err = {0};
    T_OK(jinja_chat_vars(req, "<s>", "</s>", &vars, &err) == 0);
    T_OK(json_is_true(json_object_get(vars, "add_generation_prompt")));
    T_OK(json_is_false(json_object_get(vars, "enable_thinking")));
    T_OK(!strcmp(json_string_value(json_object_get(vars, "bos_token")), "<s>"));
    T_OK(json_array_size(json_object_get(vars, "tools")) == 1);
    json_decref(vars);
    json_object_set_new(req, "add_generation_prompt", json_false());
    json_object_del(req, "tools");
    T_OK(jinja_chat_vars(req, NULL, NULL, &vars, &err) == 0);
    T_OK(json_is_false(json_object_get(vars, "add_generation_prompt")));
    T_OK(json_is_null(json_object_get(vars, "tools")));
    T_OK(json_object_get(vars, "bos_token") == NULL);
    json_decref(vars);
    /* content as text parts: as sent when the template takes them, joined when it fails */
    json_t *parts = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\" Hello \"},"
                               "{\"type\":\"text\",\"text\":\"there \"}]}]}", 0, &je);
    const char *srcs[] = {"{{ messages[0].content|length }}", "[{{ messages[0].content.strip() }}]", "{{ messages[0].content.nope() }}"};
    const char *want[] = {"2", "[Hello there]", NULL};
    for (int i = 0; i < 3; i++) {
        jinja_template *t = NULL;
        char *out = NULL;
        T_OK(jinja_parse(srcs[i], strlen(srcs[i]), &t, &err) == 0);
        int rc = jinja_chat_render(t, parts, NULL, NULL, &out, NULL, &err);
        if (want[i]) T_CHECK(rc == 0 && !strcmp(out, want[i]), "%s: %s", srcs[i], rc ? err.msg : out);
        else T_CHECK(rc == SW_ERR_FORMAT && strstr(err.msg, "'list' object has no method 'nope'"), "%s: %s", srcs[i], err.msg);
        free(out);
        jinja_destroy(t);
    }
    json_decref(parts);
    json_object_set_new(req, "messages", json_string("nope"));
    T_CHECK(jinja_chat_vars(req, NULL, NULL, &vars, &err) == SW_ERR_FORMAT && strstr(err.msg, "messages"), "%s", err.msg);
    json_object_set_new(req, "messages", json_pack("[{s:i}]", "role", 3));
    T_CHECK(jinja_chat_vars(req, NULL, NULL, &vars, &err) == SW_ERR_FORMAT && strstr(err.msg, "role"), "%s", err.msg);
    json_decref(req);
}

int main(void) {
    json_error_t je;
    json_t *vars = json_loads(vars_json, 0, &je);
    T_CHECK(vars != NULL, "%s", je.text);
    test_ok_cases(vars);
    test_errors(vars);
    test_features(vars);
    test_chat_vars();
    json_decref(vars);
    return t_done();
}
