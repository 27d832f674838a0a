/* cmd_run.c — `swiftlet run`: one prompt, one sequence, no server. Tokenizes the prompt
 * (BOS as the vocab says), prefills it through model_forward in chunks, then decodes one
 * token per step with the sampler (greedy by default), streaming the continuation to
 * stdout as complete UTF-8 characters, until an end-of-generation token, -n tokens or the
 * model's context is reached. --ids prints only the generated ids. Timings go to stderr.
 * Exit 0 ok, 1 on a bad model / prompt / run, 2 on bad usage. */
#include "cli/cli.h"
#include "model/model.h"
#include "sampler/sampler.h"
#include "tokenizer/tok.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_CHUNK 512  /* prefill tokens per forward */
#define RUN_BLOCK 64   /* K/V block size */

static void usage(void) {
    fprintf(stderr,
            "usage: swiftlet run -m MODEL.gguf -p TEXT [options]\n"
            "  -n N              tokens to generate (default 128)\n"
            "  --temp T          temperature (default 0 = greedy)\n"
            "  --top-k K         keep the K most likely tokens (0 = off)\n"
            "  --top-p P         nucleus sampling (1 = off)\n"
            "  --min-p P         drop tokens below P x the top probability (0 = off)\n"
            "  --repeat-penalty R  llama.cpp repetition penalty over the last 64 tokens (1 = off)\n"
            "  --seed S          RNG seed (default 1)\n"
            "  --ids             print only the generated token ids, space-separated\n"
            "  --threads N       compute threads (default: SWIFTLET_THREADS, else all cores)\n");
}

static int parse_float(const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

typedef struct run_opts {
    const char *model, *prompt;
    long n_gen, threads;
    bool ids;
    sampler_params sp;
} run_opts;

/* Returns 0 ok, 1 help shown, 2 bad usage (message printed). */
static int parse_args(int argc, char **argv, run_opts *o) {
    *o = (run_opts){.n_gen = 128};
    sampler_params_default(&o->sp);
    o->sp.temperature = 0;
    o->sp.seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        const char *v = has_val ? argv[i + 1] : NULL;
        long l;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 1; }
        else if (!strcmp(a, "--ids")) { o->ids = true; continue; }
        if (!has_val) { fprintf(stderr, "run: option '%s' needs a value (or is unknown)\n", a); usage(); return 2; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "-n")) bad = cli_parse_long(v, LONG_MIN, LONG_MAX, &o->n_gen);
        else if (!strcmp(a, "--temp")) bad = parse_float(v, 0, 100, &o->sp.temperature);
        else if (!strcmp(a, "--top-k")) { bad = cli_parse_long(v, 0, INT_MAX, &l); o->sp.top_k = (int)l; }
        else if (!strcmp(a, "--top-p")) bad = parse_float(v, 1e-6f, 1, &o->sp.top_p);
        else if (!strcmp(a, "--min-p")) bad = parse_float(v, 0, 1, &o->sp.min_p);
        else if (!strcmp(a, "--repeat-penalty")) bad = parse_float(v, 1e-3f, 100, &o->sp.repeat_penalty);
        else if (!strcmp(a, "--seed")) { bad = cli_parse_long(v, 0, LONG_MAX, &l); o->sp.seed = (uint64_t)l; }
        else if (!strcmp(a, "--threads")) bad = cli_parse_long(v, 1, 1024, &o->threads);
        else { fprintf(stderr, "run: unknown option '%s'\n", a); usage(); return 2; }
        if (bad) { fprintf(stderr, "run: bad value '%s' for %s\n", v, a); return 2; }
        i++;
    }
    if (!o->model || !o->prompt) { fprintf(stderr, "run: -m MODEL and -p TEXT are required\n"); usage(); return 2; }
    return 0;
}

int cli_run(int argc, char **argv) {
    run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : 2;
    omp_set_num_threads(o.threads > 0 ? (int)o.threads : sw_n_threads());

    sw_err e = {0};
    model *m = NULL;
    tok *t = NULL;
    model_ws *ws = NULL;
    model_kv *kv = NULL;
    sampler *smp = NULL;
    int32_t *ids = NULL, *bt = NULL;
    float *logits = NULL;
    char *buf = NULL; /* one token's text */
    int status = 1;
    if (model_load(o.model, &m, &e)) { fprintf(stderr, "run: %s\n", e.msg); goto out; }
    const model_config *c = model_get_config(m);
    if (tok_create(model_gguf(m), &t, &e)) { fprintf(stderr, "run: %s: tokenizer: %s\n", o.model, e.msg); goto out; }
    if (tok_n_vocab(t) > c->n_vocab) {
        fprintf(stderr, "run: tokenizer has %d tokens but the model only %d\n", tok_n_vocab(t), c->n_vocab);
        goto out;
    }
    int n_ctx = c->n_ctx_train;
    if (o.n_gen <= 0 || o.n_gen > n_ctx) {
        fprintf(stderr, "run: -n %ld out of range (1..%d, the model's context)\n", o.n_gen, n_ctx);
        goto out;
    }
    int n_prompt = tok_encode_alloc(t, o.prompt, strlen(o.prompt), true, false, &ids);
    if (n_prompt < 0) { fprintf(stderr, "run: cannot tokenize the prompt (%s)\n", sw_status_name(n_prompt)); goto out; }
    if (n_prompt == 0) { fprintf(stderr, "run: the prompt is empty (no tokens)\n"); goto out; }
    if (n_prompt >= n_ctx) {
        fprintf(stderr, "run: the prompt has %d tokens; the model's context holds %d (prompt + at least one generated)\n", n_prompt, n_ctx);
        goto out;
    }
    int total = n_prompt + (int)o.n_gen < n_ctx ? n_prompt + (int)o.n_gen : n_ctx;
    int n_blocks = (total + RUN_BLOCK - 1) / RUN_BLOCK;
    int chunk = n_prompt < RUN_CHUNK ? n_prompt : RUN_CHUNK;
    bt = malloc((size_t)n_blocks * sizeof *bt);
    logits = malloc((size_t)c->n_vocab * sizeof *logits);
    if (!bt || !logits) { fprintf(stderr, "run: out of memory\n"); goto out; }
    for (int i = 0; i < n_blocks; i++) bt[i] = i;
    if (model_ws_create(m, chunk, total, &ws, &e) || model_kv_create(c, GGUF_DTYPE_F16, RUN_BLOCK, n_blocks, &kv, &e)) {
        fprintf(stderr, "run: %s\n", e.msg);
        goto out;
    }
    if (sampler_create(&o.sp, c->n_vocab, &smp)) { fprintf(stderr, "run: bad sampling parameters\n"); goto out; }
    for (int i = 0; i < n_prompt; i++) sampler_accept(smp, ids[i], true);

    const int32_t *tables[1] = {bt};
    int32_t pos[RUN_CHUNK], seq[RUN_CHUNK] = {0};
    double t0 = sw_now_ms();
    for (int s = 0; s < n_prompt; s += chunk) {
        int n = n_prompt - s < chunk ? n_prompt - s : chunk;
        for (int j = 0; j < n; j++) pos[j] = s + j;
        uint8_t want[RUN_CHUNK] = {0};
        want[n - 1] = s + n == n_prompt;
        model_batch b = {.n_tokens = n, .tokens = ids + s, .pos = pos, .seq = seq, .logits = want, .n_seqs = 1, .block_tables = tables};
        if (model_forward(m, ws, kv, &b, logits, &e)) { fprintf(stderr, "run: %s\n", e.msg); goto out; }
    }
    double t1 = sw_now_ms();
    tok_stream ts;
    tok_stream_init(&ts, t);
    ts.first = false; /* a continuation of the prompt: keep the first token's leading space */
    int bcap = tok_text_max(t); /* always enough for one token (tok.h) */
    buf = malloc((size_t)bcap);
    if (!buf) { fprintf(stderr, "run: out of memory\n"); goto out; }
    int n_gen = 0;
    const char *reason = "length";
    for (int p = n_prompt;; p++) {
        int32_t id = sampler_sample(smp, logits, NULL, NULL, NULL);
        if (tok_is_eog(t, id)) { reason = "end of generation"; break; }
        n_gen++;
        sampler_accept(smp, id, false);
        if (o.ids) printf(n_gen > 1 ? " %d" : "%d", id);
        else {
            int k = tok_stream_feed(&ts, id, buf, bcap);
            if (k > 0 && k <= bcap) fwrite(buf, 1, (size_t)k, stdout);
        }
        fflush(stdout);
        if (n_gen >= o.n_gen) break;
        if (p + 1 >= total) { reason = "context full"; break; }
        int32_t tokp = p;
        uint8_t want = 1;
        model_batch b = {.n_tokens = 1, .tokens = &id, .pos = &tokp, .seq = seq, .logits = &want, .n_seqs = 1, .block_tables = tables};
        if (model_forward(m, ws, kv, &b, logits, &e)) { fprintf(stderr, "\nrun: %s\n", e.msg); goto out; }
    }
    if (!o.ids) {
        int k = tok_stream_flush(&ts, buf, bcap);
        if (k > 0 && k <= bcap) fwrite(buf, 1, (size_t)k, stdout);
    }

    printf("\n");
    fflush(stdout);
    double t2 = sw_now_ms();
    fprintf(stderr, "run: prompt %d tokens in %.1f ms (%.1f tok/s), generated %d tokens in %.1f ms (%.1f tok/s), stop: %s\n",
            n_prompt, t1 - t0, n_prompt * 1000.0 / (t1 - t0 + 1e-9), n_gen, t2 - t1, n_gen * 1000.0 / (t2 - t1 + 1e-9), reason);
    status = 0;
out:
    sampler_destroy(smp);
    model_kv_destroy(kv);
    model_ws_destroy(ws);
    tok_destroy(t);
    model_free(m);
    free(ids);
    free(bt);
    free(logits);
    free(buf);
    return status;
}
