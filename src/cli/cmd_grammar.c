/* cmd_grammar.c — `swiftlet grammar -m MODEL (--schema FILE | --gbnf FILE | --regex RE |
 * --json-object) [--check INSTANCE] [--bench]`: compiles a grammar for the model's
 * vocabulary (a vocab-only GGUF is enough).
 *   --check: tokenizes the instance file's bytes and walks the token masks; prints
 *            `accept` or `reject at byte N` and exits 0 either way.
 *   --bench: compile time (p50 of fresh compiles) and mask time per token (p50/p99, wall
 *            clock and thread CPU) over the instance's tokens: cold (first use: the mask
 *            caches fill), warm (a second sequence on the same compiled grammar) and
 *            recompiled (the same source compiled again: a new grammar that finds its
 *            level-1 entries in the vocabulary's store). --json FILE also writes them as
 *            one JSON object (`make bench`, section structured).
 * Exit 1 with a one-line error when the grammar is malformed or unsupported; 2 on usage. */
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "grammar/grammar.h"
#include "tokenizer/tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(void) {
    fprintf(stderr,
            "usage: swiftlet grammar -m MODEL.gguf (--schema FILE | --gbnf FILE | --regex RE | --json-object)\n"
            "                        [--check INSTANCE] [--bench [--iters N] [--json FILE]] [--warmup]\n"
            "  --check INSTANCE  walk the token masks over the file's tokens: prints accept | reject at byte N\n"
            "  --bench           compile time and per-token mask time (p50/p99, cold and warm) over INSTANCE\n"
            "  --warmup          first fill the vocabulary's shared mask store as `serve` does at start\n");
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}
static double pct(int64_t *v, int n, double q) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int i = (int)(q * (n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

static int64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int compile(const gram_vocab *v, const char *kind, const char *src, size_t len, gram_grammar **g, sw_err *err) {
    if (!strcmp(kind, "gbnf")) return gram_compile_gbnf(v, src, len, g, err);
    if (!strcmp(kind, "regex")) return gram_compile_regex(v, src, len, g, err);
    if (!strcmp(kind, "json")) return gram_compile_json_object(v, g, err);
    json_error_t je;
    json_t *j = json_loadb(src, len, JSON_DECODE_ANY, &je);
    if (!j) return sw_err_set(err, SW_ERR_FORMAT, "schema: invalid JSON: %s (line %d)", je.text, je.line);
    int rc = gram_compile_schema(v, j, g, err);
    json_decref(j);
    return rc;
}

int cli_grammar(int argc, char **argv) {
    const char *model = NULL, *kind = NULL, *arg = NULL, *check = NULL, *json_out = NULL;
    bool bench = false, warm = false;
    long iters = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && val) { model = val; i++; }
        else if (!strcmp(a, "--schema") && val) { kind = "schema"; arg = val; i++; }
        else if (!strcmp(a, "--gbnf") && val) { kind = "gbnf"; arg = val; i++; }
        else if (!strcmp(a, "--regex") && val) { kind = "regex"; arg = val; i++; }
        else if (!strcmp(a, "--json-object")) { kind = "json"; arg = ""; }
        else if (!strcmp(a, "--check") && val) { check = val; i++; }
        else if (!strcmp(a, "--json") && val) { json_out = val; i++; }
        else if (!strcmp(a, "--bench")) bench = true;
        else if (!strcmp(a, "--warmup")) warm = true;
        else if (!strcmp(a, "--iters") && val) {
            if (cli_parse_long(val, 1, 100000, &iters) != 0) { fprintf(stderr, "grammar: bad --iters\n"); return 2; }
            i++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else { fprintf(stderr, "grammar: unknown or incomplete option '%s'\n", a); usage(); return 2; }
    }
    if (!model || !kind || (!check && !bench)) { usage(); return 2; }
    int rc = 1;
    sw_err err = {0};
    gguf_ctx *ctx = NULL;
    tok *t = NULL;
    gram_vocab *v = NULL;
    gram_grammar *g = NULL;
    char *src = NULL, *inst = NULL;
    size_t src_len = 0, inst_len = 0;
    int64_t *ns = NULL;
    if (!strcmp(kind, "regex") || !strcmp(kind, "json")) {
        src = strdup(arg);
        src_len = strlen(arg);
    } else if (sw_read_file(arg, &src, &src_len, &err) != SW_OK) {
        fprintf(stderr, "grammar: %s\n", err.msg);
        goto done;
    }
    if (check && sw_read_file(check, &inst, &inst_len, &err) != SW_OK) { fprintf(stderr, "grammar: %s\n", err.msg); goto done; }
    if (gguf_open(model, &ctx, &err) != SW_OK || tok_create(ctx, &t, &err) != SW_OK ||
        gram_vocab_create(t, &v, &err) != SW_OK) {
        fprintf(stderr, "grammar: %s: %s\n", model, err.msg);
        goto done;
    }
    if (warm) {
        double w0 = sw_now_ms();
        if (gram_vocab_warmup(v, &err) != SW_OK) { fprintf(stderr, "grammar: %s\n", err.msg); goto done; }
        if (bench) printf("vocab warm-up (as serve does at start): %.1f ms\n", sw_now_ms() - w0);
    }
    double t0 = sw_now_ms();
    if (compile(v, kind, src, src_len, &g, &err) != SW_OK) { fprintf(stderr, "grammar: %s\n", err.msg); goto done; }
    double compile_ms = sw_now_ms() - t0;
    if (!bench) {
        bool ok;
        size_t at;
        if (gram_check_text(g, t, inst, inst_len, &ok, &at, NULL, 0, NULL, &err) != SW_OK) {
            fprintf(stderr, "grammar: %s\n", err.msg);
            goto done;
        }
        if (ok) printf("accept\n");
        else printf("reject at byte %zu\n", at);
        rc = 0;
        goto done;
    }
    /* --bench */
    int64_t *cns = malloc((size_t)iters * 2 * sizeof(int64_t));
    if (!cns) goto done;
    for (long k = 0; k < iters; k++) {
        gram_grammar *g2 = NULL;
        int64_t s = sw_now_ns(), c0 = cpu_ns();
        if (compile(v, kind, src, src_len, &g2, &err) != SW_OK) { free(cns); goto done; }
        cns[k] = sw_now_ns() - s;
        cns[iters + k] = cpu_ns() - c0;
        gram_grammar_release(g2);
    }
    double c_p50 = pct(cns, (int)iters, 0.5) / 1000.0, c_cpu = pct(cns + iters, (int)iters, 0.5) / 1000.0;
    printf("vocab %d tokens; grammar %d states; source %zu bytes\n", gram_vocab_n_vocab(v), gram_grammar_n_states(g), src_len);
    printf("compile: first %.3f ms, p50 %.3f ms wall, %.3f ms cpu over %ld compiles\n", compile_ms, c_p50, c_cpu, iters);
    free(cns);
    json_t *jo = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:i}", "kind", kind, "source", arg, "source_bytes", (int)src_len,
                           "vocab", gram_vocab_n_vocab(v), "states", gram_grammar_n_states(g), "compile_first_ms", compile_ms,
                           "compile_p50_ms", c_p50, "compile_cpu_p50_ms", c_cpu, "compiles", (int)iters);
    if (inst) {
        int cap = (int)inst_len + 2, n = 0;
        ns = malloc((size_t)cap * 2 * sizeof(int64_t));
        if (!ns) { json_decref(jo); goto done; }
        /* cold: first use of the vocabulary and the grammar; warm: a second sequence on the
         * same compiled grammar; recompiled: the same schema compiled again (a new grammar:
         * its own cache is empty, the vocabulary's shared level-1 entries are not) */
        const char *label[3] = {"cold", "warm", "recompiled"};
        for (int pass = 0; pass < 3; pass++) {
            if (pass == 2) {
                gram_grammar_release(g);
                g = NULL;
                if (compile(v, kind, src, src_len, &g, &err) != SW_OK) { fprintf(stderr, "grammar: %s\n", err.msg); json_decref(jo); goto done; }
            }
            bool ok;
            size_t at;
            double s = sw_now_ms();
            if (gram_check_text(g, t, inst, inst_len, &ok, &at, ns, cap, &n, &err) != SW_OK) { fprintf(stderr, "grammar: %s\n", err.msg); json_decref(jo); goto done; }
            double total = sw_now_ms() - s;
            int64_t mx = 0;
            for (int i = 0; i < n; i++) if (ns[i] > mx) mx = ns[i];
            double p50 = pct(ns, n, 0.5), p99 = pct(ns, n, 0.99), cp50 = pct(ns + cap, n, 0.5), cp99 = pct(ns + cap, n, 0.99);
            printf("mask %s: %d masks, p50 %.1f us, p99 %.1f us, max %.1f us wall; cpu p50 %.1f us, p99 %.1f us (walk %.2f ms, %s)\n",
                   label[pass], n, p50, p99, (double)mx / 1000.0, cp50, cp99, total, ok ? "accept" : "reject");
            json_object_set_new(jo, label[pass], json_pack("{s:i, s:f, s:f, s:f, s:f, s:f, s:b}", "masks", n, "p50_us", p50, "p99_us", p99,
                                                          "max_us", (double)mx / 1000.0, "cpu_p50_us", cp50, "cpu_p99_us", cp99, "accept", ok));
        }
    }
    if (json_out && json_dump_file(jo, json_out, JSON_COMPACT) != 0) {
        fprintf(stderr, "grammar: cannot write %s\n", json_out);
        json_decref(jo);
        goto done;
    }
    json_decref(jo);
    rc = 0;
done:
    free(ns);
    gram_grammar_release(g);
    gram_vocab_destroy(v);
    tok_destroy(t);
    gguf_close(ctx);
    free(src);
    free(inst);
    return rc;
}
