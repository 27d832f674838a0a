/* server_think.c — unit tests of the reasoning splitter (api_think.c): hand-written
 * outputs of reasoning models with the reasoning / content a client must see, each fed
 * whole, byte by byte, and cut at every split point into two and into three pieces — the
 * result must not depend on where the pieces end. Also: when a prompt leaves a think
 * block open, and when a template mentions one. */
#include "t.h"
#include "server/server.h"
#include <string.h>

typedef struct tcase {
    bool enabled, open;
    const char *in, *reasoning, *content;
} tcase;

static const tcase CASES[] = {
    {true, false, "<think>\nI reason.\n</think>\n\nAnswer.", "I reason.", "Answer."},
    {true, false, "Plain answer, no think.", "", "Plain answer, no think."},
    {true, false, "  leading <think>x</think>", "", "  leading <think>x</think>"},
    {true, false, "\n<think>abc", "abc", ""},                       /* unterminated (max_tokens) */
    {true, true, "abc\n</think>\n\nDone", "abc", "Done"},             /* the prompt opened it */
    {true, true, "no close at all </thin", "no close at all </thin", ""},
    {true, true, "</think>", "", ""},
    {true, true, "  <think>x", "<think>x", ""},                      /* open: a second <think> is text */
    {true, false, "<think></think>Answer", "", "Answer"},
    {true, false, "<think>a</think>b<think>c</think>", "a", "b<think>c</think>"},
    {true, false, "<thinking>x", "", "<thinking>x"},
    {true, false, "<think>multi\n\nline  \n </think>", "multi\n\nline", ""},
    {true, false, "<think>h\xC3\xA9llo \xF0\x9F\x99\x82</think> \xC3\xBCn\xC3\xAF", "h\xC3\xA9llo \xF0\x9F\x99\x82",
     "\xC3\xBCn\xC3\xAF"},
    {true, false, "   ", "", "   "},
    {true, false, "<think>a </ think> b </think", "a </ think> b </think", ""},
    {true, false, "<thi", "", "<thi"},
    {true, false, "<think>a</think>  \n ", "a", ""},
    {true, false, "<think> x </think></think>y", "x", "</think>y"},
    {true, false, "<think>a<</think>b", "a<", "b"},
    {true, false, "<think>a</</think>b", "a</", "b"},
    {true, false, " \t<think>\r\n 1 < 2 </think>\n2 > 1", "1 < 2", "2 > 1"},
    {false, false, "<think>x</think>y", "", "<think>x</think>y"},
    {false, true, "x</think>y", "", "x</think>y"},
    {true, false, "", "", ""},
};

typedef struct result { api_buf r, c; } result;

/* Feeds in[0..n) cut at the given points (increasing), then flushes. */
static void split_run(const tcase *tc, const size_t *cuts, int n_cuts, result *out) {
    api_think t;
    api_think_init(&t, tc->enabled, tc->open);
    memset(out, 0, sizeof *out);
    size_t n = strlen(tc->in), at = 0;
    for (int k = 0; k <= n_cuts; k++) {
        size_t end = k < n_cuts ? cuts[k] : n;
        T_EQ_INT(api_think_feed(&t, tc->in + at, end - at, &out->r, &out->c), SW_OK);
        at = end;
    }
    T_EQ_INT(api_think_flush(&t, &out->r, &out->c), SW_OK);
    T_EQ_INT(t.held.len, 0);
    api_think_free(&t);
}

static bool same(const api_buf *b, const char *want) {
    size_t n = strlen(want);
    return b->len == n && (n == 0 || memcmp(b->p, want, n) == 0);
}

static void check(const tcase *tc, const size_t *cuts, int n_cuts, const char *how) {
    result res;
    split_run(tc, cuts, n_cuts, &res);
    T_CHECK(same(&res.r, tc->reasoning), "'%s' %s: reasoning '%s', want '%s'", tc->in, how, res.r.p ? res.r.p : "",
            tc->reasoning);
    T_CHECK(same(&res.c, tc->content), "'%s' %s: content '%s', want '%s'", tc->in, how, res.c.p ? res.c.p : "",
            tc->content);
    api_buf_free(&res.r);
    api_buf_free(&res.c);
}

static void test_cases(void) {
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const tcase *tc = &CASES[ci];
        size_t n = strlen(tc->in);
        check(tc, NULL, 0, "whole");
        size_t bytes[64];
        T_OK(n <= 64);
        for (size_t i = 1; i < n; i++) bytes[i - 1] = i;
        check(tc, bytes, n > 0 ? (int)n - 1 : 0, "byte by byte");
        char how[64];
        for (size_t i = 0; i <= n; i++) {
            size_t c1[1] = {i};
            snprintf(how, sizeof how, "cut at %zu", i);
            check(tc, c1, 1, how);
            for (size_t j = i; j <= n; j++) {
                size_t c2[2] = {i, j};
                snprintf(how, sizeof how, "cut at %zu, %zu", i, j);
                check(tc, c2, 2, how);
            }
        }
    }
}

/* A piece's reasoning and content land in order: reasoning is complete before content starts. */
static void test_order(void) {
    api_think t;
    api_think_init(&t, true, false);
    api_buf r = {0}, c = {0};
    T_EQ_INT(api_think_feed(&t, "<think>why", 10, &r, &c), SW_OK);
    T_OK(same(&r, "why") && c.len == 0);
    T_EQ_INT(api_think_feed(&t, "\n", 1, &r, &c), SW_OK); /* held: may be trimmed */
    T_OK(same(&r, "why") && c.len == 0);
    T_EQ_INT(api_think_feed(&t, "</think>\n\nok", 12, &r, &c), SW_OK);
    T_OK(same(&r, "why") && same(&c, "ok"));
    T_OK(api_think_active(&t));
    api_think_free(&t);
    api_think_init(&t, false, false);
    T_OK(!api_think_active(&t));
    api_think_free(&t);
    api_buf_free(&r);
    api_buf_free(&c);
}

static void test_prompt_open(void) {
    const char *r1 = "<\xEF\xBD\x9C" "User\xEF\xBD\x9C>hi<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C><think>\n";
    T_OK(api_think_prompt_open(r1, strlen(r1)));
    const char *q3_off = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
    T_OK(!api_think_prompt_open(q3_off, strlen(q3_off)));
    const char *q3 = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
    T_OK(!api_think_prompt_open(q3, strlen(q3)));
    T_OK(!api_think_prompt_open("<think>\nx", 9));
    T_OK(api_think_prompt_open("a<think>b<think> \t\n", 19));
    T_OK(!api_think_prompt_open("", 0));
    const char *tm = "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}";
    T_OK(api_think_template_uses(tm, strlen(tm)));
    T_OK(!api_think_template_uses("{{ messages }}", 14));
    T_OK(!api_think_template_uses(NULL, 0));
}

int main(void) {
    test_cases();
    test_order();
    test_prompt_open();
    return t_done();
}
