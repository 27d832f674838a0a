/* cmd_serve.c — `swiftlet serve`: the OpenAI-compatible HTTP server. Binds first (so
 * /health answers 503 while the model loads), loads the model (or writes the built-in
 * random-weight demo model when no -m is given), starts the engine, marks the server
 * ready and waits for SIGINT/SIGTERM; then drains (/health 503, new requests 503, requests
 * in flight finish, for at most --drain-timeout seconds; a second signal cuts it short),
 * ends what is left, stops the engine and frees everything. */
#include "cli/cli.h"
#include "engine/engine.h"
#include "model/model.h"
#include "model/model_gen.h"
#include "server/server.h"
#include "server/api_tools.h"
#include "tokenizer/tok.h"
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_VOCAB "ggml-vocab-llama-spm.gguf"
#define DEFAULT_MODEL_NAME "swiftlet-tiny-demo"

typedef struct serve_opts {
    const char *model_path;
    const char *model_name;
    const char *chat_template;
    const char *reasoning_format; /* auto | none | deepseek */
    const char *tool_parser; /* --tool-parser; NULL = auto */
    http_keys keys;         /* --api-key, --api-key-file, SWIFTLET_API_KEY */
    http_config http;
    engine_config eng;
    int drain_timeout_s;
} serve_opts;

static void usage(void) {
    fprintf(stderr,
            "usage: swiftlet serve [-m MODEL.gguf] [options]\n"
            "  -m, --model PATH        GGUF model (default: a tiny random-weight demo model)\n"
            "  --host ADDR             bind address (default 127.0.0.1)\n"
            "  --port N                port (default 8080; 0 = any free port, printed at start)\n"
            "  --api-key KEY           require 'Authorization: Bearer KEY' on /v1/* and /metrics\n"
            "  --api-key-file FILE     keys, one per line ('#' comments); also SWIFTLET_API_KEY=KEY;\n"
            "                          all sources add up (keys in a file stay out of the process list)\n"
            "  --metrics-public        /metrics answers without a key\n"
            "  --prefix-cache-scope global|user  share cached prompt blocks between all requests\n"
            "                          (default) or only between requests of the same `user`;\n"
            "                          a request's cache_salt narrows either further\n"
            "  --access-log FILE|-     one JSON line per request (time, route, status, tokens, TTFT,\n"
            "                          duration, user; never prompt text), appended to FILE or stdout\n"
            "  --max-queue N           waiting requests before answering 429 (default 256)\n"
            "  --max-tokens-default N  chat max_tokens when a request names none (default 1024)\n"
            "  --chat-template NAME    chatml|llama3|llama2|phi3|gemma: a hard-coded family instead of\n"
            "                          the GGUF's own Jinja tokenizer.chat_template (the default)\n"
            "  --reasoning-format F    auto|none|deepseek: deepseek puts a chat reply's leading\n"
            "                          <think>...</think> block in reasoning_content; none leaves it\n"
            "                          in content; auto (default) = deepseek when the model's own chat\n"
            "                          template mentions <think> (Qwen3, DeepSeek-R1 distills)\n"
            "  --tool-parser NAME      auto|hermes|llama3|mistral|none: how tool calls are written in the\n"
            "                          output (default auto: detected from the chat template's text)\n"
            "  --model-name NAME       model id in the API (default: file name without .gguf)\n"
            "  --http-threads N        HTTP threads (epoll; default %d); waiting requests hold none\n"
            "  --conn-timeout S        close a connection idle (no byte either way) for S s (default %d)\n"
            "  --read-timeout S        a whole request (headers + body) must arrive within S s (default %d)\n"
            "  --max-conns-per-ip N    open connections per client address (default %d)\n"
            "  --max-conns N           open connections in all (default %d)\n"
            "  --drain-timeout S       on SIGTERM/SIGINT, let requests in flight finish for up to S s\n"
            "                          (default 30; /health and new requests answer 503 meanwhile)\n"
            "  --queue-timeout S       a request not scheduled within S s gets 503 queue_timeout (default 60;\n"
            "                          0 = wait as long as it takes)\n"
            "  --request-timeout S     default and cap of a request's own 'timeout' field (default: none)\n"
            "%s", HTTP_THREADS, HTTP_CONN_TIMEOUT_S, HTTP_READ_TIMEOUT_S, HTTP_MAX_CONNS_PER_IP, HTTP_MAX_CONNS,
            cli_engine_usage);
}

static int parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "serve: %s needs an integer in %ld..%ld\n", flag, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* Returns 0, 1 for --help, -1 on a bad argument. */
static int parse_args(int argc, char **argv, serve_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (!strcmp(a, "--metrics-public")) { o->http.metrics_public = true; continue; }
        int used = cli_engine_option("serve", a, v, &o->eng);
        if (used < 0) return -1;
        if (used > 0) { i += used - 1; continue; }
        if (!v) { fprintf(stderr, "serve: %s needs a value (or is unknown)\n", a); return -1; }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model_path = v;
        else if (!strcmp(a, "--host")) o->http.host = v;
        else if (!strcmp(a, "--api-key")) {
            if (http_keys_add(&o->keys, v, strlen(v))) { fprintf(stderr, "serve: --api-key needs a non-empty key\n"); return -1; }
        } else if (!strcmp(a, "--api-key-file")) {
            char *text;
            size_t len;
            sw_err e = {0};
            int rc = sw_read_file(v, &text, &len, &e);
            if (!rc) {
                rc = http_keys_parse(&o->keys, text, len, &e);
                free(text);
            }
            if (rc) { fprintf(stderr, "serve: --api-key-file %s: %s\n", v, e.msg); return -1; }
        }
        else if (!strcmp(a, "--chat-template")) o->chat_template = v;
        else if (!strcmp(a, "--tool-parser")) {
            api_tool_family f;
            bool au;
            if (api_tools_family_from_name(v, &f, &au)) { fprintf(stderr, "serve: --tool-parser is auto, hermes, llama3, mistral or none\n"); return -1; }
            o->tool_parser = au ? NULL : v;
        }
        else if (!strcmp(a, "--access-log")) o->http.access_log = v;
        else if (!strcmp(a, "--reasoning-format")) {
            if (strcmp(v, "auto") && strcmp(v, "none") && strcmp(v, "deepseek")) {
                fprintf(stderr, "serve: --reasoning-format is auto, none or deepseek\n");
                return -1;
            }
            o->reasoning_format = v;
        }
        else if (!strcmp(a, "--prefix-cache-scope")) {
            if (strcmp(v, "global") && strcmp(v, "user")) { fprintf(stderr, "serve: --prefix-cache-scope is global or user\n"); return -1; }
            o->http.prefix_cache_per_user = !strcmp(v, "user");
        }
        else if (!strcmp(a, "--model-name")) o->model_name = v;
        else if (!strcmp(a, "--port")) { if (parse_int(a, v, 0, 65535, &x)) return -1; o->http.port = (int)x; }
        else if (!strcmp(a, "--max-queue")) { if (parse_int(a, v, 0, 1000000, &x)) return -1; o->http.max_queue = (int)x; }
        else if (!strcmp(a, "--max-tokens-default")) { if (parse_int(a, v, 1, INT_MAX, &x)) return -1; o->http.max_tokens_default = (int)x; }
        else if (!strcmp(a, "--http-threads")) { if (parse_int(a, v, 1, 256, &x)) return -1; o->http.threads = (int)x; }
        else if (!strcmp(a, "--conn-timeout")) { if (parse_int(a, v, 1, 86400, &x)) return -1; o->http.conn_timeout_s = (int)x; }
        else if (!strcmp(a, "--read-timeout")) { if (parse_int(a, v, 1, 86400, &x)) return -1; o->http.read_timeout_s = (int)x; }
        else if (!strcmp(a, "--max-conns-per-ip")) { if (parse_int(a, v, 1, 100000, &x)) return -1; o->http.max_conns_per_ip = (int)x; }
        else if (!strcmp(a, "--max-conns")) { if (parse_int(a, v, 1, 100000, &x)) return -1; o->http.max_conns = (int)x; }
        else if (!strcmp(a, "--drain-timeout")) { if (parse_int(a, v, 0, 86400, &x)) return -1; o->drain_timeout_s = (int)x; }
        else if (!strcmp(a, "--queue-timeout")) { if (parse_int(a, v, 0, 86400, &x)) return -1; o->eng.queue_timeout_ms = 1000.0 * (double)x; }
        else if (!strcmp(a, "--request-timeout")) { if (parse_int(a, v, 0, 86400, &x)) return -1; o->http.request_timeout_s = (double)x; }
        else { fprintf(stderr, "serve: unknown option %s\n", a); return -1; }
    }
    return 0;
}

/* Finds ../shared/vocab/DEFAULT_VOCAB near the working directory or the binary. */
/* out must hold PATH_MAX bytes. */
static int find_default_vocab(char *out) {
    char exe[PATH_MAX] = "", dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(dir, sizeof dir, "%s", exe);
    const char *env = getenv("SWIFTLET_VOCAB_DIR");
    const char *cands[][2] = {
        {env ? env : "", ""}, {"../shared/vocab", ""}, {"shared/vocab", ""},
        {dir, "/../../shared/vocab"}, {dir, "/../../../shared/vocab"}, {dir, "/../shared/vocab"},
    };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (!cands[i][0][0]) continue;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s%s/%s", cands[i][0], cands[i][1], DEFAULT_VOCAB);
        if (access(path, R_OK) == 0 && realpath(path, out)) return 0;
    }
    return -1;
}

/* Writes the built-in demo model (tiny llama, random weights; Llama-2 SentencePiece vocab from
 * ../shared/vocab when found, else the built-in byte-level vocab)
 * to a fresh temporary file; the caller unlinks it once the model is mapped. */
static int write_default_model(char *path, size_t cap, sw_err *err) {
    char vocab[PATH_MAX];
    bool have_vocab = find_default_vocab(vocab) == 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(path, cap, "%s/swiftlet-demo-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return sw_err_set(err, SW_ERR_IO, "cannot create a temporary file for the demo model");
    close(fd);
    model_gen_params p;
    model_gen_params_init(&p);
    p.preset = "tiny";
    p.type = "q8_0";
    p.vocab_path = have_vocab ? vocab : NULL;
    p.name = DEFAULT_MODEL_NAME;
    sw_info("serve: no -m given: writing the built-in demo model (tiny llama, RANDOM weights, vocab %s); "
            "its output is gibberish — pass -m MODEL.gguf for a real model", have_vocab ? vocab : "built-in bytes");
    int rc = model_gen_write(&p, path, err);
    if (rc) unlink(path);
    return rc;
}

/* Model id for the API: --model-name, else the file name without directory and .gguf. */
static char *api_model_name(const serve_opts *o, bool demo) {
    if (o->model_name) return strdup(o->model_name);
    if (demo) return strdup(DEFAULT_MODEL_NAME);
    const char *b = strrchr(o->model_path, '/');
    b = b ? b + 1 : o->model_path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
    return strndup(b, n);
}

static tok_chat_family pick_chat(const serve_opts *o, const model *m) {
    tok_chat_family f = TOK_CHAT_UNKNOWN;
    if (o->chat_template) {
        if (tok_chat_family_from_name(o->chat_template, &f) != SW_OK) {
            sw_warn("serve: unknown --chat-template '%s'; using chatml", o->chat_template);
            return TOK_CHAT_CHATML;
        }
        return f;
    }
    const char *tmpl = NULL;
    size_t len = 0;
    if (gguf_get_str(model_gguf(m), "tokenizer.chat_template", &tmpl, &len) != SW_OK) tmpl = NULL;
    f = tok_chat_detect(tmpl);
    if (f == TOK_CHAT_UNKNOWN) {
        sw_warn("serve: %s chat template; using chatml", tmpl ? "unrecognised" : "the model has no");
        return TOK_CHAT_CHATML;
    }
    return f;
}

/* The tool-call syntax: --tool-parser, else detected from the chat template's text (the
 * GGUF's own one; none for a hard-coded family). */
static api_tool_family pick_tool_family(const serve_opts *o, const model *m, bool own_template) {
    api_tool_family f = API_TOOLS_NONE;
    bool au;
    if (o->tool_parser && api_tools_family_from_name(o->tool_parser, &f, &au) == SW_OK) return f;
    const char *tmpl = NULL;
    size_t len = 0;
    if (own_template && gguf_get_str(model_gguf(m), "tokenizer.chat_template", &tmpl, &len) == SW_OK) return api_tools_detect(tmpl, len);
    return API_TOOLS_NONE;
}

/* Graceful drain after the first signal: waits until no request is in flight, timeout_s
 * passes or a second signal comes. */
static void drain(http_server *srv, const sigset_t *sigs, int sig, int timeout_s) {
    http_server_drain(srv);
    int n = http_server_in_flight(srv);
    sw_info("serve: %s: draining %d request(s) in flight (up to %d s; a second signal stops now)",
            sig == SIGINT ? "SIGINT" : "SIGTERM", n, timeout_s);
    double t_end = sw_now_ms() + 1000.0 * timeout_s;
    while ((n = http_server_in_flight(srv)) > 0 && sw_now_ms() < t_end) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        if (sigtimedwait(sigs, NULL, &ts) > 0) {
            sw_info("serve: second signal: stopping now");
            break;
        }
    }
    if (n > 0) sw_info("serve: drain: ending %d request(s) still in flight", n);
    else sw_info("serve: drained: shutting down");
}

/* The model's own chat template, unless --chat-template names a family; NULL (with a
 * warning) when the file has none or it does not parse: the hard-coded family is used. */
static api_chat_template *load_chat_template(const serve_opts *o, const model *m) {
    if (o->chat_template) return NULL;
    api_chat_template *ct = NULL;
    sw_err err = {0};
    int rc = api_chat_template_load(model_gguf(m), &ct, &err);
    if (rc == SW_ERR_NOTFOUND) sw_warn("serve: the model has no chat template; using a hard-coded template family");
    else if (rc) sw_warn("serve: the model's chat template does not parse (%s); using a hard-coded template family", err.msg);
    return rc ? NULL : ct;
}

/* Whether chat replies get reasoning_content: --reasoning-format, or (auto) whether the
 * model's own template, when it is used, mentions <think>. */
static bool pick_reasoning(const serve_opts *o, const model *m, const api_chat_template *ct) {
    if (o->reasoning_format && strcmp(o->reasoning_format, "auto")) return !strcmp(o->reasoning_format, "deepseek");
    const char *tmpl = NULL;
    size_t len = 0;
    if (!ct || gguf_get_str(model_gguf(m), "tokenizer.chat_template", &tmpl, &len) != SW_OK) return false;
    return api_think_template_uses(tmpl, len);
}

int cli_serve(int argc, char **argv) {
    serve_opts o = {0};
    o.http.host = "127.0.0.1";
    o.http.port = 8080;
    o.http.max_queue = 256;
    o.drain_timeout_s = 30;
    engine_config_default(&o.eng);
    o.eng.queue_timeout_ms = 60000;
    int pr = parse_args(argc, argv, &o);
    const char *env_key = getenv("SWIFTLET_API_KEY");
    if (!pr && env_key && env_key[0] && http_keys_add(&o.keys, env_key, strlen(env_key))) pr = -1;
    o.http.api_keys = &o.keys;
    if (pr) {
        http_keys_free(&o.keys);
        usage();
        return pr > 0 ? 0 : 2;
    }
    /* Signals are taken by sigwait in this thread only: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sw_err err = {0};
    http_server *srv = NULL;
    model *m = NULL;
    tok *tk = NULL;
    engine *eng = NULL;
    api_chat_template *ct = NULL;
    char *name = NULL;
    gram_vocab *gv = NULL;   /* structured outputs: the vocab trie and compiled grammars */
    gram_cache *gc = NULL;
    int status = 1;
    int created = http_server_create(&o.http, &srv, &err);
    int n_keys = o.keys.n;
    http_keys_free(&o.keys); /* the server holds its own copy */
    if (created) {
        sw_error("serve: %s", err.msg);
        return 1;
    }
    sw_info("serve: listening on http://%s:%d", o.http.host, http_server_port(srv));

    char demo_path[PATH_MAX] = "";
    bool demo = o.model_path == NULL;
    if (demo && write_default_model(demo_path, sizeof demo_path, &err)) goto fail;
    const char *path = demo ? demo_path : o.model_path;
    int rc = model_load(path, &m, &err);
    if (demo) unlink(demo_path); /* mapped (or failed): the file is no longer needed */
    if (rc) goto fail;
    if (tok_create(model_gguf(m), &tk, &err)) goto fail;
    if (gram_vocab_create(tk, &gv, &err) || gram_cache_create(gv, 64, &gc, &err) || gram_vocab_warmup(gv, &err)) goto fail;
    const model_config *mc = model_get_config(m);
    if (engine_create(m, tk, &o.eng, &eng, &err)) goto fail;
    name = api_model_name(&o, demo);
    if (!name) { sw_err_set(&err, SW_ERR_NOMEM, "out of memory"); goto fail; }
    int ctx = o.eng.max_ctx > 0 ? o.eng.max_ctx : (mc->n_ctx_train > 0 ? mc->n_ctx_train : 4096);
    if (o.eng.kv_mem_bytes == 0 && o.eng.kv_tokens > 0 && o.eng.kv_tokens < ctx) ctx = o.eng.kv_tokens;
    ct = load_chat_template(&o, m);
    http_backend be = {.eng = eng, .tk = tk, .model_name = name, .chat = ct ? TOK_CHAT_UNKNOWN : pick_chat(&o, m),
                       .chat_template = ct,
                       .max_ctx = ctx, .max_seqs = o.eng.max_seqs,
                       .kv_block_size = o.eng.kv_block_size, .grammars = gc,
                       .reasoning = pick_reasoning(&o, m, ct),
                       .tool_family = (int)pick_tool_family(&o, m, ct != NULL)};
    http_server_ready(srv, &be);
    sw_info("serve: ready: model '%s' (%s, %d layers, dim %d, vocab %d), context %d, chat template %s, "
            "reasoning %s, tool calls %s, max %d sequences, queue %d%s",
            name, model_arch_name(mc->arch), mc->n_layer, mc->n_embd, mc->n_vocab, ctx,
            ct ? "from the model" : tok_chat_family_name(be.chat), be.reasoning ? "on" : "off",
            api_tools_family_name((api_tool_family)be.tool_family), o.eng.max_seqs, o.http.max_queue,
            n_keys ? ", API key required" : "");

    int sig = 0;
    sigwait(&sigs, &sig);
    drain(srv, &sigs, sig, o.drain_timeout_s);
    status = 0;
    goto out;
fail:
    sw_error("serve: %s", err.msg);
out:
    http_server_destroy(srv); /* first: no connection may touch the engine afterwards */
    engine_destroy(eng);
    api_chat_template_destroy(ct);
    gram_cache_destroy(gc);
    gram_vocab_destroy(gv);
    tok_destroy(tk);
    model_free(m);
    free(name);
    return status;
}
