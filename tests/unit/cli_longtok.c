/* cli_longtok.c — token text longer than any fixed buffer, end to end (issue 11: the
 * server sent a 256-byte stack buffer uninitialised and `generate` overflowed its heap
 * buffer when a token's text was longer). A crafted vocabulary of 300-byte tokens
 * (written here with the gguf writer) goes into a random tiny llama model; then
 *   - `swiftlet generate --ids` (cli_generate in process) must print, for the ids it
 *     generated, exactly the concatenation of those tokens' texts;
 *   - the HTTP server (in process, on loopback) must answer /v1/completions, streaming
 *     and not, with text that is the concatenation of the vocab texts of the tokens it
 *     reports in logprobs.tokens — each of them a whole 300-byte token.
 * Expected texts come from the vocabulary table below, not from the detokenizer. */
#include "cli/cli.h"
#include "model/model_gen.h"
#include "server/server.h"
#include "t.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define NV 8

/* Scratch files, per process (runs may overlap). */
static char VOCAB[64], MODEL[64], PROMPTS[64], OUT[64];
static void scratch_names(void) {
    int pid = (int)getpid();
    snprintf(VOCAB, sizeof VOCAB, "/tmp/swiftlet_longtok_%d_vocab.gguf", pid);
    snprintf(MODEL, sizeof MODEL, "/tmp/swiftlet_longtok_%d_model.gguf", pid);
    snprintf(PROMPTS, sizeof PROMPTS, "/tmp/swiftlet_longtok_%d_prompts.jsonl", pid);
    snprintf(OUT, sizeof OUT, "/tmp/swiftlet_longtok_%d_out.jsonl", pid);
}

static char texts[NV][301];

/* <unk> <s> </s>, then 5 valid-UTF-8 tokens of exactly 300 bytes each. The random model
 * favours </s>, so generation samples at temperature 2 with EOS ignored. */
static int write_vocab(void) {
    strcpy(texts[0], "<unk>");
    strcpy(texts[1], "<s>");
    strcpy(texts[2], "</s>");
    for (int i = 0; i < 100; i++) memcpy(texts[3] + 3 * i, "\xe2\x82\xac", 3); /* € */
    memset(texts[4], 'd', 300);
    for (int i = 0; i < 150; i++) memcpy(texts[5] + 2 * i, "\xc3\xa9", 2);     /* é */
    for (int i = 0; i < 75; i++) memcpy(texts[6] + 4 * i, "\xf0\x9f\x98\x80", 4); /* 😀 */
    for (int i = 0; i < 300; i++) texts[7][i] = (char)('a' + i % 26);
    const char *toks[NV];
    int32_t types[NV];
    float scores[NV];
    for (int i = 0; i < NV; i++) {
        toks[i] = texts[i];
        types[i] = i == 0 ? 2 : i < 3 ? 3 : 1;
        scores[i] = (float)-i;
    }
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NV);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, NV);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, NV);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    sw_err e = {0};
    int rc = gguf_writer_write(w, VOCAB, &e);
    gguf_writer_destroy(w);
    T_CHECK(rc == SW_OK, "%s", e.msg);
    if (rc) return rc;
    model_gen_params p;
    model_gen_params_init(&p);
    p.preset = NULL;
    p.arch = "llama";
    p.n_embd = 32; p.n_layer = 1; p.n_head = 2; p.n_head_kv = 1; p.n_ff = 64; p.n_ctx = 256;
    p.vocab_path = VOCAB;
    p.seed = 7;
    rc = model_gen_write(&p, MODEL, &e);
    T_CHECK(rc == SW_OK, "%s", e.msg);
    return rc;
}

/* Concatenation of the vocab texts of ids (control tokens print nothing). */
static size_t expected(const int32_t *ids, int n, char *out) {
    size_t o = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 3 && ids[i] < NV) { memcpy(out + o, texts[ids[i]], 300); o += 300; }
    return o;
}

static void test_generate(void) {
    FILE *f = fopen(PROMPTS, "w");
    fprintf(f, "{\"prompt_ids\": [1, 3, 4, 5]}\n{\"prompt_ids\": [1, 7, 6], \"max_tokens\": 12}\n");
    fclose(f);
    char *argv[] = {"generate", "-m", MODEL, "--prompts", PROMPTS, "-n", "12", "--ignore-eos", "--temp", "2",
                    "--seed", "3", "--ids", "--threads", "1", "--no-calibrate", NULL};
    fflush(stdout);
    int saved = dup(1), fd = open(OUT, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    close(fd);
    int rc = cli_generate(16, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    T_EQ_INT(rc, 0);
    f = fopen(OUT, "r");
    char line[65536];
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *ids = json_object_get(o, "ids"), *text = json_object_get(o, "text");
        T_CHECK(json_is_array(ids) && json_is_string(text), "line %d: %.200s", lines, line);
        int n = (int)json_array_size(ids);
        T_EQ_INT(n, 12);
        int32_t v[16];
        for (int i = 0; i < n && i < 16; i++) v[i] = (int32_t)json_integer_value(json_array_get(ids, i));
        static char want[16 * 300];
        size_t wn = expected(v, n < 16 ? n : 16, want);
        T_CHECK(json_string_length(text) == wn && memcmp(json_string_value(text), want, wn) == 0,
                "generate line %d: %zu bytes, expected %zu", lines, json_string_length(text), wn);
        T_CHECK(wn > 0, "line %d generated no long token", lines);
        json_decref(o);
        lines++;
    }
    if (f) fclose(f);
    T_EQ_INT(lines, 2);
    unlink(PROMPTS);
    unlink(OUT);
}

/* One HTTP/1.0 exchange on loopback (the server closes after the response, no chunking). */
static char *http(int port, const char *body, int *status) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return NULL; }
    char head[256];
    int hn = snprintf(head, sizeof head, "POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n", strlen(body));
    if (write(fd, head, (size_t)hn) != hn || write(fd, body, strlen(body)) != (ssize_t)strlen(body)) { close(fd); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t k;
    while ((k = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)k;
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[n] = 0;
    *status = atoi(buf + 9);
    char *b = strstr(buf, "\r\n\r\n");
    char *body_copy = strdup(b ? b + 4 : "");
    free(buf);
    return body_copy;
}

/* Checks one completion: text == the vocab texts of logprobs.tokens, each a whole token. */
static void check_choice(const char *what, const char *text, size_t tn, json_t *tokens) {
    static char want[64 * 300];
    size_t wn = 0;
    int n_long = 0;
    for (size_t i = 0; i < json_array_size(tokens); i++) {
        json_t *t = json_array_get(tokens, i);
        size_t l = json_string_length(t);
        int id = -1;
        for (int v = 0; v < NV; v++)
            if (l == strlen(texts[v]) && memcmp(json_string_value(t), texts[v], l) == 0) id = v;
        T_CHECK(id >= 0, "%s: token %zu (%zu bytes) is not a vocab token", what, i, l);
        if (id >= 3) { memcpy(want + wn, texts[id], 300); wn += 300; n_long++; }
    }
    T_CHECK(n_long > 0, "%s: no long token generated", what);
    T_CHECK(tn == wn && memcmp(text, want, wn) == 0, "%s: text of %zu bytes, expected %zu", what, tn, wn);
}

static void test_server(void) {
    model *m = NULL;
    tok *t = NULL;
    engine *eng = NULL;
    http_server *srv = NULL;
    sw_err e = {0};
    engine_config ec;
    engine_config_default(&ec);
    ec.n_threads = 1;
    ec.calibrate = false;
    ec.kv_tokens = 1024;
    http_config hc = {.host = "127.0.0.1", .port = 0, .max_queue = 16};
    if (model_load(MODEL, &m, &e) || tok_create(model_gguf(m), &t, &e) || engine_create(m, t, &ec, &eng, &e) ||
        http_server_create(&hc, &srv, &e)) {
        T_CHECK(0, "server setup: %s", e.msg);
        goto out;
    }
    http_backend be = {.eng = eng, .tk = t, .model_name = "longtok", .chat = TOK_CHAT_CHATML, .max_ctx = 256,
                       .max_seqs = 4, .kv_block_size = 16};
    http_server_ready(srv, &be);
    int port = http_server_port(srv), status = 0;
    const char *req = "{\"prompt\": [1, 3, 4], \"max_tokens\": 12, \"temperature\": 2, \"seed\": 5, "
                      "\"ignore_eos\": true, \"logprobs\": 0%s}";
    char body[256];
    /* non-streaming */
    snprintf(body, sizeof body, req, "");
    char *resp = http(port, body, &status);
    T_EQ_INT(status, 200);
    json_t *o = resp ? json_loads(resp, 0, NULL) : NULL;
    json_t *ch = json_array_get(json_object_get(o, "choices"), 0);
    json_t *text = json_object_get(ch, "text");
    json_t *toks = json_object_get(json_object_get(ch, "logprobs"), "tokens");
    T_CHECK(json_is_string(text) && json_array_size(toks) == 12, "response: %.300s", resp ? resp : "(none)");
    if (json_is_string(text)) check_choice("non-stream", json_string_value(text), json_string_length(text), toks);
    json_decref(o);
    free(resp);
    /* streaming: the chunks' texts and tokens, concatenated */
    snprintf(body, sizeof body, req, ", \"stream\": true");
    resp = http(port, body, &status);
    T_EQ_INT(status, 200);
    api_buf all = {0};
    json_t *stoks = json_array();
    int events = 0;
    for (char *p = resp ? strstr(resp, "data: ") : NULL; p; p = strstr(p, "data: ")) {
        p += 6;
        char *end = strstr(p, "\n\n");
        if (!end) break;
        if (strncmp(p, "[DONE]", 6) != 0) {
            json_t *c = json_loadb(p, (size_t)(end - p), 0, NULL);
            T_CHECK(c != NULL, "stream event is not JSON: %.100s", p);
            json_t *cc = json_array_get(json_object_get(c, "choices"), 0);
            json_t *tx = json_object_get(cc, "text");
            if (json_is_string(tx)) api_buf_append(&all, json_string_value(tx), json_string_length(tx));
            json_array_extend(stoks, json_object_get(json_object_get(cc, "logprobs"), "tokens"));
            json_decref(c);
            events++;
        }
        p = end;
    }
    T_CHECK(events >= 12 && json_array_size(stoks) == 12, "%d events, %zu tokens", events, json_array_size(stoks));
    check_choice("stream", all.p ? all.p : "", all.len, stoks);
    api_buf_free(&all);
    json_decref(stoks);
    free(resp);
out:
    http_server_destroy(srv);
    engine_destroy(eng);
    tok_destroy(t);
    model_free(m);
}

int main(void) {
    scratch_names();
    if (write_vocab() == SW_OK) {
        test_generate();
        test_server();
    }
    unlink(VOCAB);
    unlink(MODEL);
    return t_done();
}
