/* bench_parse.c — the wire parsers of `swiftlet bench`: URLs, the chunked decoder and
 * the SSE parser fed at every possible split point (bytes arrive in arbitrary pieces),
 * bad framing refused with an error, and the stream timer's handling of OpenAI chunks
 * (completions text, chat delta, role-only and empty chunks, usage, [DONE], errors). */
#include "bench/bench.h"
#include "t.h"

typedef struct sbuf { char s[4096]; size_t n; int events; } sbuf;

static int sink(void *ctx, const char *d, size_t n) {
    sbuf *b = ctx;
    if (b->n + n >= sizeof b->s) return 99;
    memcpy(b->s + b->n, d, n);
    b->n += n;
    b->s[b->n] = 0;
    return 0;
}

static int ev(void *ctx, const char *d, size_t n) {
    sbuf *b = ctx;
    T_CHECK(strlen(d) == n, "event data NUL-terminated at n");
    sink(ctx, "[", 1);
    sink(ctx, d, n);
    sink(ctx, "]", 1);
    b->events++;
    return 0;
}

static void test_url(void) {
    bench_url u;
    sw_err e;
    T_OK(bench_url_parse("http://127.0.0.1:8080", &u, &e) == 0 && !strcmp(u.host, "127.0.0.1") && !strcmp(u.port, "8080") && !u.base[0]);
    T_OK(bench_url_parse("http://localhost", &u, &e) == 0 && !strcmp(u.host, "localhost") && !strcmp(u.port, "80"));
    T_OK(bench_url_parse("http://h:1/proxy/v0/", &u, &e) == 0 && !strcmp(u.port, "1") && !strcmp(u.base, "/proxy/v0"));
    T_OK(bench_url_parse("http://[::1]:9000/", &u, &e) == 0 && !strcmp(u.host, "::1") && !strcmp(u.port, "9000") && !u.base[0]);
    const char *bad[] = {"ftp://x", "http://", "http://h:0", "http://h:99999", "http://h:12a", "http://[::1", "localhost:80", "http://h:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) T_CHECK(bench_url_parse(bad[i], &u, &e) == SW_ERR_ARG, "%s refused", bad[i]);
    T_OK(bench_url_parse("https://api.openai.com", &u, &e) == SW_ERR_UNSUPPORTED);
}

static void test_chunked(void) {
    const char *in = "5\r\nhello\r\n6;name=v\r\n world\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: 1\r\n\r\nignored";
    size_t n = strlen(in);
    for (size_t split = 0; split <= n; split++) {
        bench_chunked c = {0};
        sbuf b = {0};
        sw_err e;
        int rc = bench_chunked_feed(&c, in, split, sink, &b, &e);
        if (!rc) rc = bench_chunked_feed(&c, in + split, n - split, sink, &b, &e);
        T_CHECK(rc == 0 && c.done && !strcmp(b.s, "hello world, chunked!"), "split %zu: rc %d done %d '%s'", split, rc, c.done, b.s);
    }
    bench_chunked c = {0};
    sbuf b = {0};
    sw_err e;
    for (size_t i = 0; i < n; i++) bench_chunked_feed(&c, in + i, 1, sink, &b, &e);
    T_OK(c.done && !strcmp(b.s, "hello world, chunked!"));
    const char *bad[] = {"zz\r\n", "3\r\nabcd\r\n", "10000000000000000\r\n", "\r\n", "3\rx", "0\r\n\rx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bench_chunked c2 = {0};
        sbuf b2 = {0};
        T_CHECK(bench_chunked_feed(&c2, bad[i], strlen(bad[i]), sink, &b2, &e) == SW_ERR_FORMAT, "bad framing %zu refused", i);
    }
    /* the sink's stop code is passed through */
    bench_chunked c3 = {0};
    sbuf full = {0};
    full.n = sizeof full.s - 2;
    T_EQ_INT(bench_chunked_feed(&c3, "5\r\nhello\r\n", 10, sink, &full, &e), 99);
}

static void test_sse(void) {
    const char *in = "data: a\n\ndata: b\r\ndata: c\r\n\r\n: comment\nevent: x\nid: 3\ndata:d\r\r"
                     "data\n\ndata: {\"x\": 1}\n\nretry: 5\n\ndata: tail-without-blank-line";
    const char *want = "[a][b\nc][d][][{\"x\": 1}]";
    size_t n = strlen(in);
    for (size_t split = 0; split <= n; split++) {
        bench_sse s;
        bench_sse_init(&s);
        sbuf b = {0};
        sw_err e;
        int rc = bench_sse_feed(&s, in, split, ev, &b, &e);
        if (!rc) rc = bench_sse_feed(&s, in + split, n - split, ev, &b, &e);
        T_CHECK(rc == 0 && !strcmp(b.s, want) && b.events == 5, "split %zu: '%s'", split, b.s);
        bench_sse_free(&s);
    }
}

static void test_stream(void) {
    bench_stream s;
    bench_stream_init(&s, 1000);
#define EV(str, t) bench_stream_event(&s, str, strlen(str), t)
    T_EQ_INT(EV("{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", 1001), 0);
    T_EQ_INT(s.n_content, 0);
    T_EQ_INT(EV("{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", 1100), 0);
    T_EQ_INT(EV("{\"choices\":[{\"text\":\" there\",\"index\":0}]}", 1120), 0);
    T_EQ_INT(EV("{\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}", 1125), 0);
    T_EQ_INT(EV("{\"choices\":[{\"text\":\"!\"}]}", 1150), 0);
    T_EQ_INT(EV("{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":4}}", 1151), 0);
    T_EQ_INT(EV("[DONE]", 1152), 0);
    T_EQ_INT(EV("garbage after done is ignored", 1153), 0);
    T_OK(s.t_first_ms == 1100 && s.t_last_ms == 1150 && s.t_end_ms == 1152);
    T_OK(s.n_content == 3 && s.n_itl == 2 && s.itl_ms[0] == 20 && s.itl_ms[1] == 30);
    T_OK(s.usage_completion == 4 && s.usage_prompt == 12 && !s.failed);
    bench_stream_free(&s);

    bench_stream_init(&s, 0);
    T_EQ_INT(EV("{\"error\":{\"message\":\"out of KV blocks\",\"type\":\"server_error\"}}", 1), -1);
    T_OK(s.failed && strstr(s.err, "out of KV blocks"));
    T_EQ_INT(EV("{\"choices\":[{\"text\":\"x\"}]}", 2), -1); /* stays failed */
    bench_stream_free(&s);
    const char *bad[] = {"not json", "[1,2]", "\"str\"", "{\"choices\":[{\"text\":"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bench_stream_init(&s, 0);
        T_CHECK(EV(bad[i], 1) == -1 && strstr(s.err, "malformed"), "'%s' -> %s", bad[i], s.err);
        bench_stream_free(&s);
    }
    /* odd but valid shapes are tolerated: no choices, null text, non-object choice */
    bench_stream_init(&s, 0);
    T_EQ_INT(EV("{}", 1), 0);
    T_EQ_INT(EV("{\"choices\":[{\"text\":null}]}", 1), 0);
    T_EQ_INT(EV("{\"choices\":[5]}", 1), 0);
    T_EQ_INT(EV("{\"usage\":{\"completion_tokens\":-3}}", 1), 0);
    T_OK(s.n_content == 0 && s.usage_completion == -1 && !s.failed);
    bench_stream_free(&s);
    /* "\u0000" is valid JSON and a token of its own (byte-level vocabularies have one for
     * byte 0): content, not an error and not an empty chunk */
    bench_stream_init(&s, 0);
    T_EQ_INT(EV("{\"choices\":[{\"text\":\"\\u0000\"}]}", 5), 0);
    T_EQ_INT(EV("{\"choices\":[{\"delta\":{\"content\":\"\\u0000a\"}}]}", 7), 0);
    T_OK(s.n_content == 2 && s.t_first_ms == 5 && !s.failed);
    bench_stream_free(&s);
#undef EV
}

int main(void) {
    test_url();
    test_chunked();
    test_sse();
    test_stream();
    return t_done();
}
