/* cmd_generate.c — `swiftlet generate`: runs a JSONL file of prompts through the serving
 * engine concurrently (every line submitted at once, then polled), and prints one JSON
 * line per input line, in input order:
 *   {"text","ids"(with --ids),"prompt_tokens","cached_tokens","ttft_ms","total_ms","finish"}
 * then, on stderr, totals: tokens, preemptions, prefix-cache hits, aggregate tok/s.
 * Input lines: {"prompt": "text"} or {"prompt_ids": [ids]}, optional per-line
 * "max_tokens", "temperature", "seed". Prompt text is tokenized with the model's BOS rule
 * and special-token parsing (so chat-formatted prompts work).
 *
 * --bench C1,C2,...: a throughput mode of its own (no input file): for each concurrency
 * C, C sequences of --bench-prompt random tokens each generate --bench-gen tokens
 * (ignore EOS); reports the aggregate decode tok/s measured over the window in which
 * all C sequences are decoding, and the speed-up over C = 1. --bench-schema FILE puts
 * every sequence under that JSON Schema (token masks each step, as a response_format
 * request gets; the vocabulary is warmed up first as `serve` does), to compare with the
 * unconstrained figures.
 * --bench-ttft: TTFT of a cold --bench-cold-token prompt vs. a request whose
 * --bench-prefix-token prefix is already in the prefix cache (median of 3 each). */
#include "cli/cli.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "grammar/grammar.h"
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gen_opts {
    const char *model, *prompts;
    int n_predict;
    float temp;
    uint64_t seed;
    bool seed_set;
    bool print_ids, ignore_eos;
    engine_config ec;
    const char *bench;       /* "1,4,16,32" or NULL */
    const char *bench_schema; /* JSON Schema file constraining the --bench sequences, or NULL */
    int bench_prompt, bench_gen;
    bool bench_ttft;
    int ttft_cold, ttft_prefix;
} gen_opts;

typedef struct gen_item {
    int32_t *ids;            /* (n_ids) prompt token ids */
    int n_ids;
    int max_tokens;
    float temp;
    uint64_t seed;
    engine_req *req;
    gram_matcher *gm;        /* constraint handed to engine_submit (NULL = none) */
    int32_t *out;            /* (n_out) generated ids */
    int n_out, cap_out;
    engine_finish fin;
} gen_item;

static void usage(void) {
    fprintf(stderr,
            "usage: swiftlet generate -m MODEL.gguf --prompts FILE.jsonl [-n 128] [--temp 0.8] [--seed S] [--ids]\n"
            "         [--ignore-eos] [engine options]\n"
            "       swiftlet generate -m MODEL.gguf --bench 1,4,16,32 [--bench-prompt 128] [--bench-gen 128]\n"
            "         [--bench-schema SCHEMA.json]\n"
            "       swiftlet generate -m MODEL.gguf --bench-ttft [--bench-cold 50] [--bench-prefix 1000]\n"
            "  FILE.jsonl: one {\"prompt\": \"...\"} (or {\"prompt_ids\": [...]}) per line, optional\n"
            "  \"max_tokens\", \"temperature\", \"seed\". Prints one JSON result per line, in order.\n"
            "engine options:\n%s", cli_engine_usage);
}

static int parse_args(int argc, char **argv, gen_opts *o) {
    memset(o, 0, sizeof *o);
    engine_config_default(&o->ec);
    o->n_predict = 128;
    o->temp = 0.8f;
    o->bench_prompt = 128;
    o->bench_gen = 128;
    o->ttft_cold = 50;
    o->ttft_prefix = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 1; }
        if (!strcmp(a, "--ids")) { o->print_ids = true; continue; }
        if (!strcmp(a, "--ignore-eos")) { o->ignore_eos = true; continue; }
        if (!strcmp(a, "--bench-ttft")) { o->bench_ttft = true; continue; }
        int used = cli_engine_option("generate", a, v, &o->ec);
        if (used < 0) return 2;
        if (used > 0) { i += used - 1; continue; }
        if (!v) { fprintf(stderr, "generate: option '%s' needs a value (or is unknown)\n", a); return 2; }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--prompts")) o->prompts = v;
        else if (!strcmp(a, "--bench")) o->bench = v;
        else if (!strcmp(a, "--bench-schema")) o->bench_schema = v;
        else if (!strcmp(a, "-n")) { bad = cli_parse_long(v, 1, 1 << 24, &x); o->n_predict = (int)x; }
        else if (!strcmp(a, "--temp")) {
            char *end;
            o->temp = strtof(v, &end);
            bad = end == v || *end || !(o->temp >= 0 && o->temp <= 100);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            bad = errno || end == v || *end;
            o->seed_set = true;
        } else if (!strcmp(a, "--bench-prompt")) { bad = cli_parse_long(v, 1, 1 << 20, &x); o->bench_prompt = (int)x; }
        else if (!strcmp(a, "--bench-gen")) { bad = cli_parse_long(v, 1, 1 << 20, &x); o->bench_gen = (int)x; }
        else if (!strcmp(a, "--bench-cold")) { bad = cli_parse_long(v, 1, 1 << 20, &x); o->ttft_cold = (int)x; }
        else if (!strcmp(a, "--bench-prefix")) { bad = cli_parse_long(v, 1, 1 << 20, &x); o->ttft_prefix = (int)x; }
        else { fprintf(stderr, "generate: unknown option '%s'\n", a); return 2; }
        if (bad) { fprintf(stderr, "generate: bad value '%s' for %s\n", v, a); return 2; }
    }
    if (!o->model) { fprintf(stderr, "generate: -m MODEL is required\n"); return 2; }
    if (!o->prompts && !o->bench && !o->bench_ttft) { fprintf(stderr, "generate: --prompts FILE (or --bench) is required\n"); return 2; }
    return 0;
}

static void items_free(gen_item *it, int n) {
    for (int i = 0; i < n; i++) {
        engine_req_release(it[i].req);
        gram_matcher_destroy(it[i].gm);
        free(it[i].ids);
        free(it[i].out);
    }
    free(it);
}

/* Parses one JSONL line into it (ids tokenized). Returns 0 or -1 with a message printed. */
static int parse_line(const char *line, int lineno, const tok *t, int n_vocab, const gen_opts *o, int index, gen_item *it) {
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "generate: line %d: not a JSON object (%s)\n", lineno, j ? "wrong type" : je.text);
        json_decref(j);
        return -1;
    }
    int rc = -1;
    json_t *p = json_object_get(j, "prompt"), *pi = json_object_get(j, "prompt_ids");
    json_t *mt = json_object_get(j, "max_tokens"), *te = json_object_get(j, "temperature"), *se = json_object_get(j, "seed");
    it->max_tokens = o->n_predict;
    it->temp = o->temp;
    it->seed = o->seed + (uint64_t)index;
    if (mt && (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > (1 << 24))) {
        fprintf(stderr, "generate: line %d: max_tokens must be an integer in 1..%d\n", lineno, 1 << 24);
        goto out;
    }
    if (mt) it->max_tokens = (int)json_integer_value(mt);
    if (te && (!json_is_number(te) || json_number_value(te) < 0 || json_number_value(te) > 100)) {
        fprintf(stderr, "generate: line %d: temperature must be a number in 0..100\n", lineno);
        goto out;
    }
    if (te) it->temp = (float)json_number_value(te);
    if (se && (!json_is_integer(se) || json_integer_value(se) < 0)) {
        fprintf(stderr, "generate: line %d: seed must be a non-negative integer\n", lineno);
        goto out;
    }
    if (se) it->seed = (uint64_t)json_integer_value(se);
    if (json_is_string(p)) {
        const char *s = json_string_value(p);
        size_t len = json_string_length(p);
        int n = tok_encode_alloc(t, s, len, true, true, &it->ids);
        if (n < 0) { fprintf(stderr, "generate: line %d: tokenizer failed (%s)\n", lineno, sw_status_name(n)); goto out; }
        it->n_ids = n;
    } else if (json_is_array(pi)) {
        size_t n = json_array_size(pi);
        if (n > (1u << 24)) { fprintf(stderr, "generate: line %d: prompt_ids too long\n", lineno); goto out; }
        it->ids = malloc((n ? n : 1) * sizeof *it->ids);
        if (!it->ids) { fprintf(stderr, "generate: out of memory\n"); goto out; }
        for (size_t k = 0; k < n; k++) {
            json_t *v = json_array_get(pi, k);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= n_vocab) {
                fprintf(stderr, "generate: line %d: prompt_ids[%zu] is not a token id in 0..%d\n", lineno, k, n_vocab - 1);
                goto out;
            }
            it->ids[k] = (int32_t)json_integer_value(v);
        }
        it->n_ids = (int)n;
    } else {
        fprintf(stderr, "generate: line %d: needs a string \"prompt\" or an array \"prompt_ids\"\n", lineno);
        goto out;
    }
    if (it->n_ids == 0) { fprintf(stderr, "generate: line %d: empty prompt\n", lineno); goto out; }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

static int read_prompts(const char *path, const tok *t, int n_vocab, const gen_opts *o, gen_item **out, int *n_out) {
    char *data;
    size_t len;
    sw_err err = {0};
    if (sw_read_file(path, &data, &len, &err) != SW_OK) { fprintf(stderr, "generate: %s\n", err.msg); return -1; }
    int cap = 16, n = 0, lineno = 0, rc = 0;
    gen_item *it = calloc((size_t)cap, sizeof *it);
    char *line = data;
    while (it && line < data + len && rc == 0) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        if (nl) *nl = 0;
        lineno++;
        const char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (*s) {
            if (n == cap) {
                gen_item *g = realloc(it, (size_t)cap * 2 * sizeof *it);
                if (!g) { rc = -1; break; }
                memset(g + cap, 0, (size_t)cap * sizeof *g);
                it = g;
                cap *= 2;
            }
            rc = parse_line(s, lineno, t, n_vocab, o, n, &it[n]);
            n++;
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(data);
    if (!it) { fprintf(stderr, "generate: out of memory\n"); return -1; }
    if (rc == 0 && n == 0) { fprintf(stderr, "generate: %s has no prompts\n", path); rc = -1; }
    if (rc != 0) { items_free(it, n); return -1; }
    *out = it;
    *n_out = n;
    return 0;
}

static int submit(engine *e, gen_item *it, bool ignore_eos) {
    engine_req_params p = {0};
    p.prompt = it->ids;
    p.n_prompt = it->n_ids;
    p.max_tokens = it->max_tokens;
    p.ignore_eos = ignore_eos;
    sampler_params_default(&p.sampling);
    p.sampling.temperature = it->temp;
    p.sampling.seed = it->seed;
    p.constraint = it->gm;
    it->gm = NULL; /* engine_submit takes it over, succeeding or not */
    sw_err err = {0};
    if (engine_submit(e, &p, &it->req, &err) != SW_OK) {
        fprintf(stderr, "generate: request refused: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Takes every token available now from it (waiting up to timeout_ms); returns count. */
static int drain(gen_item *it, double timeout_ms) {
    engine_token tk[64];
    int got = 0;
    for (;;) {
        int n = engine_req_poll(it->req, tk, 64, got ? 0 : timeout_ms, &it->fin);
        for (int k = 0; k < n; k++) {
            if (it->n_out == it->cap_out) {
                int cap = it->cap_out ? it->cap_out * 2 : 64;
                int32_t *o = realloc(it->out, (size_t)cap * sizeof *o);
                if (!o) return got;
                it->out = o;
                it->cap_out = cap;
            }
            it->out[it->n_out++] = tk[k].id;
        }
        got += n;
        if (n < 64) return got;
    }
}

static const char *finish_name(engine_finish f) {
    switch (f) {
    case ENGINE_FINISH_STOP: return "stop";
    case ENGINE_FINISH_LENGTH: return "length";
    case ENGINE_FINISH_CANCELLED: return "cancelled";
    case ENGINE_FINISH_ERROR: return "error";
    case ENGINE_FINISH_REJECTED: return "rejected";
    case ENGINE_FINISH_QUEUE_TIMEOUT: return "queue-timeout";
    case ENGINE_FINISH_TIMEOUT: return "timeout";
    default: return "none";
    }
}

/* Detokenizes ids into a malloc'd *text of *n bytes; the buffer grows so that
 * tok_text_max bytes are free before each call (tok.h: that always suffices). */
static int detokenize(const tok *t, const int32_t *ids, int n_ids, char **text, size_t *n) {
    size_t tmax = (size_t)tok_text_max(t), cap = 0, len = 0;
    char *buf = NULL;
    tok_stream ts;
    tok_stream_init(&ts, t);
    for (int k = 0; k <= n_ids; k++) {
        if (cap - len < tmax) {
            size_t ncap = cap * 2 + tmax + 64;
            char *nb = realloc(buf, ncap);
            if (!nb) { free(buf); return SW_ERR_NOMEM; }
            buf = nb;
            cap = ncap;
        }
        int r = k < n_ids ? tok_stream_feed(&ts, ids[k], buf + len, (int)tmax) : tok_stream_flush(&ts, buf + len, (int)tmax);
        if (r < 0 || (size_t)r > tmax) { free(buf); return r < 0 ? r : SW_ERR_RANGE; }
        len += (size_t)r;
    }
    *text = buf;
    *n = len;
    return SW_OK;
}

static int print_result(const tok *t, gen_item *it, bool print_ids) {
    char *text;
    size_t n;
    if (detokenize(t, it->out, it->n_out, &text, &n) != SW_OK) return -1;
    engine_timing tm;
    engine_req_timing(it->req, &tm);
    json_t *o = json_object();
    json_t *js = json_stringn(text, n);
    if (!js) js = json_string(""); /* tok_stream emits valid UTF-8; never expected */
    json_object_set_new(o, "text", js);
    if (print_ids) {
        json_t *a = json_array();
        for (int k = 0; k < it->n_out; k++) json_array_append_new(a, json_integer(it->out[k]));
        json_object_set_new(o, "ids", a);
    }
    json_object_set_new(o, "prompt_tokens", json_integer(tm.n_prompt));
    json_object_set_new(o, "cached_tokens", json_integer(tm.n_cached));
    json_object_set_new(o, "ttft_ms", json_real(tm.t_first_token_ms > 0 ? tm.t_first_token_ms - tm.t_submit_ms : 0));
    json_object_set_new(o, "total_ms", json_real(tm.t_finish_ms - tm.t_submit_ms));
    json_object_set_new(o, "finish", json_string(finish_name(it->fin)));
    if ((it->fin == ENGINE_FINISH_ERROR || it->fin == ENGINE_FINISH_REJECTED) && engine_req_error(it->req))
        json_object_set_new(o, "error", json_string(engine_req_error(it->req)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    free(text);
    if (!s) return -1;
    printf("%s\n", s);
    free(s);
    return 0;
}

static int run_file(engine *e, const tok *t, int n_vocab, const gen_opts *o) {
    gen_item *it;
    int n;
    if (read_prompts(o->prompts, t, n_vocab, o, &it, &n) != 0) return 1;
    double t0 = sw_now_ms();
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = submit(e, &it[i], o->ignore_eos);
    /* poll all (round robin) until every request has finished */
    for (int left = rc == 0 ? n : 0; left > 0;) {
        left = 0;
        for (int i = 0; i < n; i++) {
            if (it[i].fin != ENGINE_FINISH_NONE) continue;
            drain(&it[i], left ? 0 : 50); /* block on the first unfinished one only */
            left += it[i].fin == ENGINE_FINISH_NONE;
        }
    }
    double t1 = sw_now_ms();
    long gen = 0, prompt = 0, cached = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (print_result(t, &it[i], o->print_ids) != 0) { fprintf(stderr, "generate: out of memory\n"); rc = 1; }
        engine_timing tm;
        engine_req_timing(it[i].req, &tm);
        gen += it[i].n_out;
        prompt += tm.n_prompt;
        cached += tm.n_cached;
    }
    fflush(stdout);
    if (rc == 0) {
        engine_stats st;
        engine_get_stats(e, &st);
        double s = (t1 - t0) / 1e3;
        fprintf(stderr,
                "generate: %d requests, %ld prompt tokens (%ld from the prefix cache), %ld generated in %.2f s: "
                "%.1f tok/s aggregate generation, %.1f tok/s incl. prompts; %llu steps, %llu preemptions\n",
                n, prompt, cached, gen, s, (double)gen / s, (double)(gen + prompt - cached) / s,
                (unsigned long long)st.n_steps, (unsigned long long)st.n_preemptions);
    }
    items_free(it, n);
    return rc ? 1 : 0;
}

/* ---------------- benchmark modes ---------------- */

static uint64_t bench_rng(uint64_t *x) {
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* Fills ids with n random token ids (distinct streams per seed; BOS first when the vocab has one). */
static void random_prompt(const tok *t, int n_vocab, uint64_t seed, int32_t *ids, int n) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < n; i++) ids[i] = 100 + (int32_t)(bench_rng(&x) % (uint64_t)(n_vocab - 200));
    if (tok_bos(t) >= 0) ids[0] = tok_bos(t);
}

static int bench_concurrency(engine *e, const tok *t, int n_vocab, const gen_opts *o, gram_grammar *g, int conc,
                             uint64_t round, double *decode_tps) {
    gen_item *it = calloc((size_t)conc, sizeof *it);
    double *first = calloc((size_t)conc, sizeof *first);
    if (!it || !first) { free(it); free(first); return -1; }
    int rc = 0;
    for (int i = 0; i < conc && rc == 0; i++) {
        it[i].n_ids = o->bench_prompt;
        it[i].ids = malloc((size_t)o->bench_prompt * sizeof *it[i].ids);
        if (!it[i].ids) { rc = -1; break; }
        random_prompt(t, n_vocab, round * 100003 + (uint64_t)i, it[i].ids, o->bench_prompt);
        it[i].max_tokens = o->bench_gen;
        it[i].temp = 0;
        sw_err err = {0};
        if (g && gram_matcher_create(g, &it[i].gm, &err) != SW_OK) {
            fprintf(stderr, "generate: %s\n", err.msg);
            rc = -1;
            break;
        }
        rc = submit(e, &it[i], true);
    }
    /* tokens and their arrival times: the decode window starts when the last sequence
     * got its first token (all C are decoding from then on) */
    long n_tok = 0, cap = 1024;
    double *arr = malloc((size_t)cap * sizeof *arr);
    if (!arr) rc = -1;
    for (int left = rc == 0 ? conc : 0; left > 0;) {
        left = 0;
        for (int i = 0; i < conc; i++) {
            if (it[i].fin != ENGINE_FINISH_NONE) continue;
            int got = drain(&it[i], left ? 0 : 5);
            double now = sw_now_ms();
            if (got > 0 && first[i] == 0) first[i] = now;
            for (int k = 0; k < got; k++) {
                if (n_tok == cap) {
                    double *a = realloc(arr, (size_t)cap * 2 * sizeof *a);
                    if (!a) break;
                    arr = a;
                    cap *= 2;
                }
                arr[n_tok++] = now;
            }
            left += it[i].fin == ENGINE_FINISH_NONE;
        }
    }
    if (rc == 0) {
        double t_start = 0, t_end = 0;
        for (int i = 0; i < conc; i++) if (first[i] > t_start) t_start = first[i];
        long in_window = 0;
        for (long k = 0; k < n_tok; k++)
            if (arr[k] > t_start) { in_window++; if (arr[k] > t_end) t_end = arr[k]; }
        *decode_tps = t_end > t_start ? (double)in_window / ((t_end - t_start) / 1e3) : 0;
    }
    free(arr);
    free(first);
    items_free(it, conc);
    return rc;
}

static int run_bench(engine *e, const tok *t, int n_vocab, const gen_opts *o, gram_grammar *g) {
    const char *s = o->bench;
    double base = 0;
    uint64_t round = 1;
    while (*s) {
        char *end;
        long c = strtol(s, &end, 10);
        if (end == s || c < 1 || c > 4096 || (*end && *end != ',')) {
            fprintf(stderr, "generate: bad --bench list '%s'\n", o->bench);
            return 2;
        }
        double tps = 0;
        engine_stats st0, st1;
        engine_get_stats(e, &st0);
        if (bench_concurrency(e, t, n_vocab, o, g, (int)c, round++, &tps) != 0) return 1;
        engine_get_stats(e, &st1);
        if (c == 1 || base == 0) base = tps;
        fprintf(stderr, "bench: %3ld concurrent%s: %8.1f tok/s aggregate decode (%.2fx single), %llu preemptions\n", c,
                g ? " (schema)" : "", tps, base > 0 ? tps / base : 0, (unsigned long long)(st1.n_preemptions - st0.n_preemptions));
        /* the pool: its K/V type and how many tokens (whole sequences of this shape) it holds */
        long kv_tokens = (long)st1.kv_blocks_total * o->ec.kv_block_size;
        printf("{\"bench\":\"decode\",\"concurrency\":%ld,\"prompt\":%d,\"gen\":%d,\"max_batch_tokens\":%d,"
               "\"decode_tok_s\":%.2f,\"speedup\":%.3f,\"preemptions\":%llu,\"kv_type\":\"%s\",\"kv_tokens\":%ld,"
               "\"kv_seqs\":%ld,\"schema\":%s%s%s}\n",
               c, o->bench_prompt, o->bench_gen, o->ec.max_batch_tokens, tps, base > 0 ? tps / base : 0,
               (unsigned long long)(st1.n_preemptions - st0.n_preemptions), gguf_dtype_name(o->ec.kv_dtype), kv_tokens,
               kv_tokens / (o->bench_prompt + o->bench_gen), g ? "\"" : "", g ? o->bench_schema : "null", g ? "\"" : "");
        fflush(stdout);
        s = *end ? end + 1 : end;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* TTFT of one request (ms); its timing into tm. */
static int ttft_once(engine *e, int32_t *ids, int n, engine_timing *tm) {
    gen_item it = {.ids = ids, .n_ids = n, .max_tokens = 1, .temp = 0};
    if (submit(e, &it, true) != 0) return -1;
    while (it.fin == ENGINE_FINISH_NONE) drain(&it, 50);
    engine_req_timing(it.req, tm);
    engine_req_release(it.req);
    free(it.out);
    return 0;
}

static int run_ttft(engine *e, const tok *t, int n_vocab, const gen_opts *o) {
    int np = o->ttft_prefix + 10;
    int32_t *ids = malloc((size_t)(np > o->ttft_cold ? np : o->ttft_cold) * sizeof *ids);
    if (!ids) return 1;
    double cold[3], warm[3];
    int cached[3] = {0};
    engine_timing tm;
    for (int r = 0; r < 3; r++) {
        random_prompt(t, n_vocab, 777 + (uint64_t)r, ids, o->ttft_cold);
        if (ttft_once(e, ids, o->ttft_cold, &tm)) { free(ids); return 1; }
        cold[r] = tm.t_first_token_ms - tm.t_submit_ms;
        /* warm the prefix, then a request sharing it with a new 10-token tail */
        random_prompt(t, n_vocab, 999 + (uint64_t)r, ids, np);
        if (ttft_once(e, ids, o->ttft_prefix, &tm)) { free(ids); return 1; }
        for (int k = o->ttft_prefix; k < np; k++) ids[k] = 300 + k + r;
        if (ttft_once(e, ids, np, &tm)) { free(ids); return 1; }
        warm[r] = tm.t_first_token_ms - tm.t_submit_ms;
        cached[r] = tm.n_cached;
    }
    free(ids);
    qsort(cold, 3, sizeof cold[0], cmp_double);
    qsort(warm, 3, sizeof warm[0], cmp_double);
    fprintf(stderr, "bench-ttft: cold %d-token prompt %.1f ms; %d-token prompt with %d cached %.1f ms (%.2fx)\n",
            o->ttft_cold, cold[1], np, cached[0], warm[1], warm[1] / cold[1]);
    printf("{\"bench\":\"ttft\",\"cold_tokens\":%d,\"cold_ttft_ms\":%.2f,\"prefix_tokens\":%d,\"cached_tokens\":%d,"
           "\"cached_ttft_ms\":%.2f,\"ratio\":%.3f}\n",
           o->ttft_cold, cold[1], np, cached[0], warm[1], warm[1] / cold[1]);
    return 0;
}

/* The --bench-schema grammar over the model's vocabulary (warmed up as serve does). */
static int bench_grammar(const tok *t, const char *path, gram_vocab **gv, gram_grammar **g) {
    sw_err err = {0};
    json_error_t je;
    json_t *schema = json_load_file(path, 0, &je);
    if (!schema) { fprintf(stderr, "generate: %s: %s (line %d)\n", path, je.text, je.line); return 1; }
    double t0 = sw_now_ms();
    int rc = gram_vocab_create(t, gv, &err);
    if (rc == SW_OK) rc = gram_vocab_warmup(*gv, &err);
    double t1 = sw_now_ms();
    if (rc == SW_OK) rc = gram_compile_schema(*gv, schema, g, &err);
    json_decref(schema);
    if (rc != SW_OK) { fprintf(stderr, "generate: %s: %s\n", path, err.msg); return 1; }
    fprintf(stderr, "bench: vocabulary index + warm-up %.1f ms, schema compile %.2f ms\n", t1 - t0, sw_now_ms() - t1);
    return 0;
}

int cli_generate(int argc, char **argv) {
    gen_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) { if (rc == 2) usage(); return rc == 1 ? 0 : 2; }
    if (!o.seed_set) o.seed = 42;
    sw_err err = {0};
    model *m = NULL;
    tok *t = NULL;
    engine *e = NULL;
    if (model_load(o.model, &m, &err) != SW_OK || tok_create(model_gguf(m), &t, &err) != SW_OK ||
        engine_create(m, t, &o.ec, &e, &err) != SW_OK) {
        fprintf(stderr, "generate: %s\n", err.msg);
        tok_destroy(t);
        model_free(m);
        return 1;
    }
    int n_vocab = model_get_config(m)->n_vocab;
    rc = 0;
    gram_vocab *gv = NULL;
    gram_grammar *g = NULL;
    if (o.bench && o.bench_schema) rc = bench_grammar(t, o.bench_schema, &gv, &g);
    if (rc == 0 && o.prompts) rc = run_file(e, t, n_vocab, &o);
    if (rc == 0 && o.bench) rc = run_bench(e, t, n_vocab, &o, g);
    if (rc == 0 && o.bench_ttft) rc = run_ttft(e, t, n_vocab, &o);
    engine_destroy(e);
    gram_grammar_release(g);
    gram_vocab_destroy(gv);
    tok_destroy(t);
    model_free(m);
    return rc;
}
