/* cmd_score.c — `swiftlet score`: teacher-forced scoring of an input. After each input
 * token, in order from position 0, prints one JSON line
 *   {"pos":i,"token":id,"top":[[id,logit],...]}
 * with the top-K raw next-token logits, and the perplexity of the input (each token
 * predicted from the ones before it) on stderr. --tokens are fed exactly as given (no
 * BOS); -p TEXT is tokenized with BOS as the vocab says. Exit 0 ok, 1 bad model / input,
 * 2 bad usage. */
#include "cli/cli.h"
#include "model/model.h"
#include "tokenizer/tok.h"
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCORE_CHUNK 64 /* positions per forward (each returns n_vocab logits per row) */
#define SCORE_BLOCK 64
#define SCORE_MAX_TOP 100

static void usage(void) {
    fprintf(stderr,
            "usage: swiftlet score -m MODEL.gguf (-p TEXT | --tokens ID,ID,...) [--top K] [--threads N]\n"
            "  prints {\"pos\":i,\"token\":id,\"top\":[[id,logit],...]} after every input token,\n"
            "  the perplexity of the input on stderr\n"
            "  -p TEXT        text, tokenized with BOS when the vocab adds one\n"
            "  --tokens LIST  comma-separated token ids, fed exactly as given\n"
            "  --top K        logits per line (default 5, at most %d)\n"
            "  --threads N    compute threads (default: SWIFTLET_THREADS, else all cores)\n", SCORE_MAX_TOP);
}

/* "1,2,3" -> malloc'd ids; returns the count or -1 (message printed). */
static int parse_tokens(const char *s, int32_t **out) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end != ',' && *end != 0)) {
            fprintf(stderr, "score: bad token list at '%.20s' (expected ID,ID,... of non-negative integers)\n", p);
            free(ids);
            return -1;
        }
        ids[n++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    *out = ids;
    return n;
}

/* Indices of the k largest of x (n), best first (k <= SCORE_MAX_TOP: insertion). */
static void top_k(const float *x, int n, int k, int32_t *idx) {
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (have == k && !(x[i] > x[idx[k - 1]])) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && x[i] > x[idx[j - 1]]) { idx[j] = idx[j - 1]; j--; }
        idx[j] = i;
    }
}

static double log_sum_exp(const float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double z = 0;
    for (int i = 0; i < n; i++) z += exp((double)x[i] - mx);
    return mx + log(z);
}

int cli_score(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *list = NULL;
    long k = 5, threads = 0;
    for (int i = 1; i < argc; i += 2) { /* OPTION VALUE pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (!v) { fprintf(stderr, "score: option '%s' needs a value (or is unknown)\n", a); usage(); return 2; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) path = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) text = v;
        else if (!strcmp(a, "--tokens")) list = v;
        else if (!strcmp(a, "--top")) { if (cli_parse_long(v, 1, SCORE_MAX_TOP, &k)) { fprintf(stderr, "score: --top must be 1..%d\n", SCORE_MAX_TOP); return 2; } }
        else if (!strcmp(a, "--threads")) { if (cli_parse_long(v, 1, 1024, &threads)) { fprintf(stderr, "score: bad --threads '%s'\n", v); return 2; } }
        else { fprintf(stderr, "score: unknown option '%s'\n", a); usage(); return 2; }
    }
    if (!path || (!text) == (!list)) { fprintf(stderr, "score: -m MODEL and exactly one of -p TEXT / --tokens LIST are required\n"); usage(); return 2; }
    omp_set_num_threads(threads > 0 ? (int)threads : sw_n_threads());

    sw_err e = {0};
    model *m = NULL;
    tok *t = NULL;
    model_ws *ws = NULL;
    model_kv *kv = NULL;
    int32_t *ids = NULL, *bt = NULL;
    float *logits = NULL;
    int status = 1, n = 0;
    if (model_load(path, &m, &e)) { fprintf(stderr, "score: %s\n", e.msg); goto out; }
    const model_config *c = model_get_config(m);
    const int V = c->n_vocab;
    if (list) {
        if ((n = parse_tokens(list, &ids)) < 0) goto out;
    } else {
        if (tok_create(model_gguf(m), &t, &e)) { fprintf(stderr, "score: %s: tokenizer: %s\n", path, e.msg); goto out; }
        if ((n = tok_encode_alloc(t, text, strlen(text), true, false, &ids)) < 0) { fprintf(stderr, "score: cannot tokenize the text (%s)\n", sw_status_name(n)); goto out; }
    }
    if (n == 0) { fprintf(stderr, "score: no tokens to score\n"); goto out; }
    for (int i = 0; i < n; i++)
        if (ids[i] >= V) { fprintf(stderr, "score: token %d at index %d is out of range (vocab %d)\n", ids[i], i, V); goto out; }
    if (n > c->n_ctx_train) { fprintf(stderr, "score: %d tokens exceed the model's context of %d\n", n, c->n_ctx_train); goto out; }
    if (k > V) k = V;
    int n_blocks = (n + SCORE_BLOCK - 1) / SCORE_BLOCK;
    bt = malloc((size_t)n_blocks * sizeof *bt);
    logits = malloc((size_t)SCORE_CHUNK * V * sizeof *logits);
    if (!bt || !logits) { fprintf(stderr, "score: out of memory\n"); goto out; }
    for (int i = 0; i < n_blocks; i++) bt[i] = i;
    if (model_ws_create(m, SCORE_CHUNK, n, &ws, &e) || model_kv_create(c, GGUF_DTYPE_F16, SCORE_BLOCK, n_blocks, &kv, &e)) {
        fprintf(stderr, "score: %s\n", e.msg);
        goto out;
    }
    const int32_t *tables[1] = {bt};
    int32_t pos[SCORE_CHUNK], seq[SCORE_CHUNK] = {0}, top[SCORE_MAX_TOP];
    uint8_t want[SCORE_CHUNK];
    memset(want, 1, sizeof want);
    double nll = 0;
    for (int s = 0; s < n; s += SCORE_CHUNK) {
        int cn = n - s < SCORE_CHUNK ? n - s : SCORE_CHUNK;
        for (int j = 0; j < cn; j++) pos[j] = s + j;
        model_batch b = {.n_tokens = cn, .tokens = ids + s, .pos = pos, .seq = seq, .logits = want, .n_seqs = 1, .block_tables = tables};
        if (model_forward(m, ws, kv, &b, logits, &e)) { fprintf(stderr, "score: %s\n", e.msg); goto out; }
        for (int j = 0; j < cn; j++) {
            const float *row = logits + (size_t)j * V;
            int i = s + j;
            top_k(row, V, (int)k, top);
            printf("{\"pos\":%d,\"token\":%d,\"top\":[", i, ids[i]);
            for (int r = 0; r < k; r++) {
                if (isfinite(row[top[r]])) printf("%s[%d,%.6g]", r ? "," : "", top[r], row[top[r]]);
                else printf("%s[%d,null]", r ? "," : "", top[r]);
            }
            printf("]}\n");
            if (i + 1 < n) nll += log_sum_exp(row, V) - row[ids[i + 1]];
        }
    }
    fflush(stdout);
    if (n > 1) fprintf(stderr, "perplexity: %.4f over %d predicted tokens (mean NLL %.4f)\n", exp(nll / (n - 1)), n - 1, nll / (n - 1));
    else fprintf(stderr, "perplexity: n/a (a single token predicts nothing)\n");
    status = 0;
out:
    model_kv_destroy(kv);
    model_ws_destroy(ws);
    tok_destroy(t);
    model_free(m);
    free(ids);
    free(bt);
    free(logits);
    return status;
}
