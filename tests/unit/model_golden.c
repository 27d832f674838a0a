/* model_golden.c — the forward pass against the reference engine's outputs in
 * ../shared/golden/<model>/ and ../shared/golden2/<model>/ (the newer families: llama3
 * RoPE, qwen3, gemma3, phi3; cases.json + caseN.last_logits.f32), for every model there:
 *  - teacher forcing over prompt + greedy tokens: our top-1 vs the reference's top-1;
 *    F32/F16 files: equal wherever the reference's top-2 gap >= 0.02; quantized files:
 *    equal at >= 95% of steps;
 *  - last prompt position: all n_vocab logits within 1e-3 (F32) / 5e-3 (F16) of
 *    max|logit|, cosine >= 0.999 for quantized files;
 *  - free-running greedy decoding (one token per forward) equals greedy_tokens up to the
 *    reference's first near-tie (F32/F16), or agrees at >= 95% of steps (quantized).
 * golden2's quantized files follow the bounds of its README: the reference quantizes
 * activations differently (bf16-scaled blocks, another batch path), so top-1 agreement
 * counts only clear steps (reference top-1/top-2 gap >= 5% of the case's max|logit|) and
 * the last-position cosine must be >= 0.99. A model whose tensor types this build does not
 * support is skipped with the loader's message naming the type. Cases with a
 * reference_note were computed one token at a time by the reference; they are compared
 * the same way (our batched and one-token logits agree). golden/'s reference rounds q
 * and the softmax weights to F16 (the default), golden2's keeps them F32 (model_kv.attn_f32).
 * Then self-consistency on the F32 models (and gemma3's F16) with an F32 K/V store: one prompt vs chunks vs
 * one token at a time, and two sequences in one ragged batch (different, scattered block
 * tables) vs each alone. Prints per model: max logit error, cosine, agreement.
 * Q8_0 K/V cache (--kv-type q8_0): the same golden comparison on the models whose head_dim
 * is a multiple of 32, held to the quantized bounds whatever the weights: teacher-forced
 * and decode-path top-1 >= 95% over clear steps (reference top-1/top-2 gap >= 5% of
 * max|logit|), last-position cosine >= 0.999 (0.99 for golden2's quantized files, their own
 * bound; 0.998 for gemma3-tiny, see main); and the self-consistency checks over a Q8_0 store. */
#include "kernels/kq.h"
#include "model/model.h"
#include "t.h"
#include <dirent.h>
#include <jansson.h>
#include <math.h>

#define GAP_MIN 0.02
#define MAX_TOK 128
#define BLOCK 16
#define N_BLOCKS 64 /* two sequences x MAX_TOK / BLOCK, scattered */

typedef struct golden_case {
    int n_prompt, n_greedy;
    int32_t toks[MAX_TOK];      /* prompt then greedy tokens */
    int32_t ref_top1[MAX_TOK];  /* reference argmax after toks[i], i < n_prompt + n_greedy - 1 */
    double ref_gap[MAX_TOK];    /* reference top-1 minus top-2 logit at i */
    float *last;                /* (n_vocab) reference logits after the last prompt token */
} golden_case;

static int read_top5(json_t *e, int32_t *top1, double *gap) {
    json_t *ids = json_object_get(e, "ids"), *lg = json_object_get(e, "logits");
    if (!json_is_array(ids) || !json_is_array(lg) || json_array_size(ids) < 2 || json_array_size(lg) < 2) return -1;
    *top1 = (int32_t)json_integer_value(json_array_get(ids, 0));
    *gap = json_number_value(json_array_get(lg, 0)) - json_number_value(json_array_get(lg, 1));
    return 0;
}

static float *read_f32_file(const char *path, int n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *v = malloc((size_t)n * sizeof *v);
    size_t got = fread(v, sizeof *v, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) { free(v); return NULL; }
    return v;
}

/* Parses dir/cases.json; returns the number of cases (<= cap), -1 on error. */
static int load_cases(const char *dir, int n_vocab, golden_case *cs, int cap, char *model_path, size_t mp_len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/cases.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) { fprintf(stderr, "%s: %s\n", path, je.text); return -1; }
    snprintf(model_path, mp_len, SHARED "/%s", json_string_value(json_object_get(root, "model")));
    json_t *cases = json_object_get(root, "cases");
    int n = 0;
    for (size_t ci = 0; ci < json_array_size(cases) && n < cap; ci++) {
        json_t *c = json_array_get(cases, ci);
        json_t *pt = json_object_get(c, "prompt_tokens"), *gt = json_object_get(c, "greedy_tokens");
        json_t *p5 = json_object_get(c, "prompt_top5"), *g5 = json_object_get(c, "greedy_top5");
        golden_case *g = &cs[n];
        memset(g, 0, sizeof *g);
        g->n_prompt = (int)json_array_size(pt);
        g->n_greedy = (int)json_array_size(gt);
        if (g->n_prompt < 1 || g->n_prompt + g->n_greedy > MAX_TOK || json_array_size(p5) != (size_t)g->n_prompt ||
            json_array_size(g5) != (size_t)g->n_greedy) { json_decref(root); return -1; }
        for (int i = 0; i < g->n_prompt; i++) g->toks[i] = (int32_t)json_integer_value(json_array_get(pt, i));
        for (int i = 0; i < g->n_greedy; i++) g->toks[g->n_prompt + i] = (int32_t)json_integer_value(json_array_get(gt, i));
        for (int i = 0; i < g->n_prompt; i++)
            if (read_top5(json_array_get(p5, i), &g->ref_top1[i], &g->ref_gap[i])) { json_decref(root); return -1; }
        /* greedy_top5[s] is the prediction after prompt + greedy[0..s-1]: position n_prompt-1+s */
        for (int s = 1; s < g->n_greedy; s++)
            if (read_top5(json_array_get(g5, s), &g->ref_top1[g->n_prompt - 1 + s], &g->ref_gap[g->n_prompt - 1 + s])) { json_decref(root); return -1; }
        snprintf(path, sizeof path, "%s/%s.last_logits.f32", dir, json_string_value(json_object_get(c, "name")));
        g->last = read_f32_file(path, n_vocab);
        if (!g->last) { fprintf(stderr, "cannot read %s\n", path); json_decref(root); return -1; }
        n++;
    }
    json_decref(root);
    return n;
}

static int32_t argmax(const float *x, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* Runs toks[0..n) of one sequence at positions start.. through forward in chunks of
 * `chunk` tokens, writing logits of every position to out (n, n_vocab). */
static int run_seq(model *m, model_ws *ws, const model_kv *kv, const int32_t *bt, const int32_t *toks, int n,
                   int chunk, float *out) {
    int V = model_get_config(m)->n_vocab;
    int32_t pos[MAX_TOK], seq[MAX_TOK] = {0};
    uint8_t want[MAX_TOK];
    const int32_t *tables[1] = {bt};
    for (int s = 0; s < n; s += chunk) {
        int c = n - s < chunk ? n - s : chunk;
        for (int j = 0; j < c; j++) { pos[j] = s + j; want[j] = 1; }
        model_batch b = {.n_tokens = c, .tokens = toks + s, .pos = pos, .seq = seq, .logits = want, .n_seqs = 1, .block_tables = tables};
        sw_err e = {0};
        int rc = model_forward(m, ws, kv, &b, out + (size_t)s * V, &e);
        if (rc) { fprintf(stderr, "forward: %s\n", e.msg); return rc; }
    }
    return 0;
}

static double max_abs(const float *x, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

#define CLEAR_FRAC 0.05 /* golden2 quantized: a clear step's gap, as a fraction of max|logit| */

/* kv_dtype GGUF_DTYPE_Q8_0: the K/V cache in 8 bits, judged by the quantized bounds (see
 * the top of the file: KV_Q8_*) whatever the weights. */
static void test_model(const char *name, const char *dir, bool v2, uint32_t kv_dtype, double kv8_cos_min) {
    const bool kv8 = kv_dtype == GGUF_DTYPE_Q8_0, wquant = !strstr(name, ".f32") && !strstr(name, ".f16");
    const bool quant = wquant || kv8;
    double tol = strstr(name, ".f16") ? 5e-3 : 1e-3;
    char json_path[700];
    snprintf(json_path, sizeof json_path, "%s/cases.json", dir);
    json_t *root = json_load_file(json_path, 0, NULL);
    if (!root) { T_CHECK(0, "%s: unreadable", json_path); return; }
    int n_vocab = (int)json_integer_value(json_object_get(root, "n_vocab"));
    json_decref(root);

    static golden_case cs[8];
    char model_path[600];
    int n_cases = load_cases(dir, n_vocab, cs, 8, model_path, sizeof model_path);
    T_CHECK(n_cases > 0, "%s: no cases", name);
    if (n_cases <= 0) return;
    double t0 = sw_now_ms();
    model *m = NULL;
    sw_err e = {0};
    int rc = model_load(model_path, &m, &e);
    if (strstr(e.msg, "unsupported type") || strstr(e.msg, "unknown dtype")) {
        T_SKIP("%s: %s (a weight type this build does not have yet)", name, e.msg);
        goto done;
    }
    T_CHECK(rc == SW_OK, "%s: %s", model_path, e.msg);
    if (rc) goto done;
    const model_config *c = model_get_config(m);
    T_EQ_INT(c->n_vocab, n_vocab);
    model_ws *ws;
    model_kv *kv;
    T_EQ_INT(model_ws_create(m, MAX_TOK, MAX_TOK, &ws, &e), SW_OK);
    T_EQ_INT(model_kv_create(c, kv_dtype, BLOCK, N_BLOCKS, &kv, &e), SW_OK);
    kv->attn_f32 = v2; /* golden2's reference keeps q and the softmax weights F32 */
    int32_t bt[N_BLOCKS];
    for (int i = 0; i < N_BLOCKS; i++) bt[i] = N_BLOCKS - 1 - i; /* reversed: not the identity */
    float *logits = malloc((size_t)MAX_TOK * n_vocab * sizeof *logits);

    /* The prediction at position 0 depends on the first token only, so cases that start
     * with the same token must agree there. A case that does not (the reference's Q4_0
     * batch path for prompts of >= 32 tokens gives another result) is excluded. */
    bool skip_case[8] = {0};
    for (int ci = 0; ci < n_cases; ci++) {
        int same = 0, differ = 0;
        for (int cj = 0; cj < n_cases; cj++) {
            if (cj == ci || cs[cj].toks[0] != cs[ci].toks[0]) continue;
            if (cs[cj].ref_top1[0] == cs[ci].ref_top1[0]) same++; else differ++;
        }
        if (differ > same) {
            skip_case[ci] = true;
            T_SKIP("%s case %d: the reference is inconsistent with itself (position-0 prediction %d differs from "
                   "%d other cases with the same first token); excluded", name, ci, cs[ci].ref_top1[0], differ);
        }
    }

    int agree = 0, steps = 0, strict_bad = 0;
    double worst_err = 0, worst_cos = 1;
    int free_agree = 0, free_steps = 0;
    for (int ci = 0; ci < n_cases; ci++) {
        golden_case *g = &cs[ci];
        if (skip_case[ci]) continue;
        int n = g->n_prompt + g->n_greedy - 1; /* the last greedy token's prediction is not in the reference */
        if (run_seq(m, ws, kv, bt, g->toks, n, MAX_TOK, logits)) { T_CHECK(0, "%s case %d: forward failed", name, ci); continue; }
        double clear = (v2 && wquant) || kv8 ? CLEAR_FRAC * max_abs(g->last, n_vocab) : 0;
        for (int i = 0; i < n; i++) {
            int32_t ours = argmax(logits + (size_t)i * n_vocab, n_vocab);
            if (g->ref_gap[i] < clear) continue;
            steps++;
            agree += ours == g->ref_top1[i];
            if (!quant && g->ref_gap[i] >= GAP_MIN && ours != g->ref_top1[i]) {
                strict_bad++;
                fprintf(stderr, "%s case %d pos %d: top-1 %d, reference %d (gap %.4f)\n", name, ci, i, ours, g->ref_top1[i], g->ref_gap[i]);
            }
        }
        /* all logits at the last prompt position */
        const float *ours = logits + (size_t)(g->n_prompt - 1) * n_vocab;
        double err = 0, dot = 0, na = 0, nb = 0, scale = max_abs(g->last, n_vocab);
        for (int v = 0; v < n_vocab; v++) {
            double d = fabs((double)ours[v] - g->last[v]);
            if (d > err) err = d;
            dot += (double)ours[v] * g->last[v];
            na += (double)ours[v] * ours[v];
            nb += (double)g->last[v] * g->last[v];
        }
        double cosv = dot / sqrt(na * nb), rel = err / scale;
        if (getenv("GOLDEN_VERBOSE")) {
            int ag = 0;
            int nc = 0;
            for (int i = 0; i < n; i++) {
                if (g->ref_gap[i] < clear) continue;
                nc++;
                ag += argmax(logits + (size_t)i * n_vocab, n_vocab) == g->ref_top1[i];
            }
            fprintf(stderr, "  %s case %d: %d tokens, top-1 agreement %d/%d, last-position err %.3g cosine %.6f\n", name, ci, g->n_prompt, ag, nc, rel, cosv);
        }
        if (rel > worst_err) worst_err = rel;
        if (cosv < worst_cos) worst_cos = cosv;
        if (quant) T_CHECK(cosv >= (v2 && wquant ? 0.99 : kv8 ? kv8_cos_min : 0.999), "%s case %d%s: cosine %.6f", name, ci, kv8 ? " (q8_0 KV)" : "", cosv);
        else T_CHECK(rel <= tol, "%s case %d: max |err| %.3g = %.3g x max|logit| (limit %.0e)", name, ci, err, rel, tol);

        /* free-running greedy: prefill the prompt, then one token per forward */
        int32_t gen[MAX_TOK];
        memcpy(gen, g->toks, (size_t)g->n_prompt * sizeof *gen);
        if (run_seq(m, ws, kv, bt, gen, g->n_prompt, MAX_TOK, logits)) { T_CHECK(0, "prefill failed"); continue; }
        int32_t next = argmax(logits + (size_t)(g->n_prompt - 1) * n_vocab, n_vocab);
        for (int s = 0; s < g->n_greedy; s++) {
            int at = g->n_prompt - 1 + s; /* the position whose prediction `next` is */
            int32_t ref = g->toks[g->n_prompt + s];
            if (!quant && g->ref_gap[at] < GAP_MIN) break; /* reference near-tie: stop comparing */
            if (g->ref_gap[at] >= clear) {
                free_steps++;
                free_agree += next == ref;
            }
            if (!quant && next != ref) {
                T_CHECK(0, "%s case %d: free-running step %d gave %d, reference %d", name, ci, s, next, ref);
                break;
            }
            if (s + 1 == g->n_greedy) break;
            /* quantized files keep following the reference tokens, so one flip cannot derail the rest */
            gen[g->n_prompt + s] = quant ? ref : next;
            int32_t pos = g->n_prompt + s, seq = 0;
            uint8_t want = 1;
            const int32_t *tables[1] = {bt};
            model_batch b = {.n_tokens = 1, .tokens = &gen[g->n_prompt + s], .pos = &pos, .seq = &seq, .logits = &want, .n_seqs = 1, .block_tables = tables};
            if (model_forward(m, ws, kv, &b, logits, &e)) { T_CHECK(0, "decode: %s", e.msg); break; }
            next = argmax(logits, n_vocab);
        }
    }
    double pct = steps ? 100.0 * agree / steps : 100, free_pct = free_steps ? 100.0 * free_agree / free_steps : 100;
    if (quant) {
        T_CHECK(pct >= 95.0, "%s%s: teacher-forced top-1 agreement %.1f%% < 95%%", name, kv8 ? " (q8_0 KV)" : "", pct);
        T_CHECK(free_pct >= 95.0, "%s%s: decode-path top-1 agreement %.1f%% < 95%%", name, kv8 ? " (q8_0 KV)" : "", free_pct);
    } else {
        T_EQ_INT(strict_bad, 0);
    }
    printf("%-28s%s max|err|/max|logit| %.2e  cosine %.7f  top-1 agreement %.1f%% (%d steps), decode path %.1f%% (%d steps)  %.0f ms\n",
           name, kv8 ? " q8_0-KV" : "", worst_err, worst_cos, pct, steps, free_pct, free_steps, sw_now_ms() - t0);
    free(logits);
    model_kv_destroy(kv);
    model_ws_destroy(ws);
    model_free(m);
done:
    for (int i = 0; i < n_cases; i++) free(cs[i].last);
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? d / s : d;
}

/* One prompt vs chunks vs single tokens; two sequences in one ragged batch vs alone; over
 * a K/V store of kv_dtype. */
static void test_consistency(const char *model_path, uint32_t kv_dtype) {
    model *m;
    sw_err e = {0};
    if (model_load(model_path, &m, &e)) { T_CHECK(0, "%s", e.msg); return; }
    const model_config *c = model_get_config(m);
    int V = c->n_vocab;
    model_ws *ws;
    model_kv *kv;
    T_EQ_INT(model_ws_create(m, MAX_TOK, MAX_TOK, &ws, &e), SW_OK);
    T_EQ_INT(model_kv_create(c, kv_dtype, BLOCK, N_BLOCKS, &kv, &e), SW_OK);
    enum { NA = 45, NB = 29 };
    int32_t ta[NA], tb[NB];
    for (int i = 0; i < NA; i++) ta[i] = (int32_t)((i * 7919 + 13) % V);
    for (int i = 0; i < NB; i++) tb[i] = (int32_t)((i * 104729 + 5) % V);
    int32_t bta[N_BLOCKS / 2], btb[N_BLOCKS / 2];
    for (int i = 0; i < N_BLOCKS / 2; i++) { bta[i] = 2 * i + 1; btb[i] = N_BLOCKS - 2 - 2 * i; }
    float *one = malloc((size_t)NA * V * sizeof *one), *alt = malloc((size_t)NA * V * sizeof *alt);
    float *bone = malloc((size_t)NB * V * sizeof *bone);
    T_OK(run_seq(m, ws, kv, bta, ta, NA, MAX_TOK, one) == 0);
    T_OK(run_seq(m, ws, kv, bta, ta, NA, 7, alt) == 0);
    double d_chunk = max_rel_diff(alt, one, (size_t)NA * V);
    T_CHECK(d_chunk <= 1e-4, "chunks of 7 vs one prompt: %.3g", d_chunk);
    T_OK(run_seq(m, ws, kv, bta, ta, NA, 1, alt) == 0);
    double d_single = max_rel_diff(alt, one, (size_t)NA * V);
    T_CHECK(d_single <= 1e-4, "one token at a time vs one prompt: %.3g", d_single);
    T_OK(run_seq(m, ws, kv, btb, tb, NB, MAX_TOK, bone) == 0);

    /* ragged batch: a's second half (first half already in the store) interleaved with
     * all of b, logits for every row */
    T_OK(run_seq(m, ws, kv, bta, ta, NA / 2, MAX_TOK, alt) == 0);
    int32_t toks[NA + NB], pos[NA + NB], seq[NA + NB];
    uint8_t want[NA + NB];
    int n = 0, ia = NA / 2, ib = 0;
    while (ia < NA || ib < NB) {
        if (ia < NA) { toks[n] = ta[ia]; pos[n] = ia; seq[n] = 0; want[n++] = 1; ia++; }
        if (ib < NB) { toks[n] = tb[ib]; pos[n] = ib; seq[n] = 1; want[n++] = 1; ib++; }
    }
    const int32_t *tables[2] = {bta, btb};
    model_batch b = {.n_tokens = n, .tokens = toks, .pos = pos, .seq = seq, .logits = want, .n_seqs = 2, .block_tables = tables};
    float *mixed = malloc((size_t)n * V * sizeof *mixed);
    T_EQ_INT(model_forward(m, ws, kv, &b, mixed, &e), SW_OK);
    double d_mix = 0;
    for (int j = 0; j < n; j++) {
        const float *ref = seq[j] == 0 ? one + (size_t)pos[j] * V : bone + (size_t)pos[j] * V;
        double d = max_rel_diff(mixed + (size_t)j * V, ref, (size_t)V);
        if (d > d_mix) d_mix = d;
    }
    T_CHECK(d_mix <= 1e-4, "ragged batch of two sequences vs each alone: %.3g", d_mix);

    /* logits = NULL: only the last row, equal to b's last position */
    b.logits = NULL;
    T_EQ_INT(model_forward(m, ws, kv, &b, mixed, &e), SW_OK);
    const float *last_ref = seq[n - 1] == 0 ? one + (size_t)pos[n - 1] * V : bone + (size_t)pos[n - 1] * V;
    T_CHECK(max_rel_diff(mixed, last_ref, (size_t)V) <= 1e-4, "logits=NULL row differs");
    printf("consistency %s (%s KV): chunks %.2e, single tokens %.2e, ragged batch %.2e\n", strrchr(model_path, '/') + 1,
           gguf_dtype_name(kv_dtype), d_chunk, d_single, d_mix);
    free(one); free(alt); free(bone); free(mixed);
    model_kv_destroy(kv);
    model_ws_destroy(ws);
    model_free(m);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every model directory under SHARED/sub, in name order. */
static void test_dir(const char *sub, bool v2) {
    char path[512];
    snprintf(path, sizeof path, SHARED "/%s", sub);
    DIR *d = opendir(path);
    if (!d) { T_SKIP("no golden data in %s", path); return; }
    char *names[64];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 64)
        if (de->d_name[0] != '.') names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", path, names[i]);
        test_model(names[i], dir, v2, GGUF_DTYPE_F16, 0);
        free(names[i]);
    }
}

int main(void) {
    if (t_shared_missing()) { T_SKIP("%s not found", SHARED); return t_done(); }
    printf("kernels: %s\n", kq_isa_name());
    test_dir("golden", false);
    test_dir("golden2", true);
    test_consistency(SHARED "/models/llama-spm-tiny.f32.gguf", GGUF_DTYPE_F32);
    test_consistency(SHARED "/models/qwen2-gpt2-tiny.f32.gguf", GGUF_DTYPE_F32);
    /* the newer families (gemma3: 45 tokens against a window of 8) */
    test_consistency(SHARED "/models2/llama3-rope-tiny.f32.gguf", GGUF_DTYPE_F32);
    test_consistency(SHARED "/models2/qwen3-tiny.f32.gguf", GGUF_DTYPE_F32);
    test_consistency(SHARED "/models2/gemma3-tiny.f16.gguf", GGUF_DTYPE_F32);
    test_consistency(SHARED "/models2/phi3-tiny.f32.gguf", GGUF_DTYPE_F32);
    /* a Q8_0 K/V cache: the golden models whose head_dim is a multiple of 32 (the F32/F16
     * file of a family where there is one; llama-spm-tiny, qwen2-gpt2-tiny, llama3-rope-tiny
     * and phi3-tiny have head_dim 16, which Q8_0 rows cannot hold) */
    static const struct { const char *sub, *name; bool v2; double cos_min; } kv8[] = {
        {"golden", "llama-spm-kq.q4_k_m", false, 0.999}, {"golden2", "llama3-rope-kq.q4_k_m", true, 0.99},
        {"golden2", "qwen3-tiny.f32", true, 0.999},      {"golden2", "qwen3-kq.q4_k_m", true, 0.99},
        /* gemma3-tiny: 7 layers, one K/V head of 32 values (a single Q8_0 block per row); its
         * worst case measures 0.99883 (case 2; the others 0.99904..0.99989). Measured factor
         * by factor (an F32 store fed rows rounded through Q8_0): F32 K/V 0.999995; only K
         * rounded 0.99895, only V 0.99954, both 0.99883 (= the real Q8_0 store, so the read
         * path adds nothing; q·k and the V sum are already F32). The keys have no outliers
         * (max/rms 2.4 per row, Gaussian), so the gap is the 8-bit rounding itself. Other
         * equally valid roundings move case 2 between 0.9977 and 0.9992: a scale chosen per
         * block for the least squared error lowers the mean 1-cosine over 2,560 random-prompt
         * positions by 23% (6.4e-4 -> 4.9e-4) yet gives 0.9977 here. No rounding choice
         * holds 0.999 on this model by design, so it is held to 0.998 instead of 0.999. */
        {"golden2", "gemma3-tiny.f16", true, 0.998},
    };
    for (size_t i = 0; i < sizeof kv8 / sizeof kv8[0]; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, SHARED "/%s/%s", kv8[i].sub, kv8[i].name);
        test_model(kv8[i].name, dir, kv8[i].v2, GGUF_DTYPE_Q8_0, kv8[i].cos_min);
    }
    test_consistency(SHARED "/models2/qwen3-tiny.f32.gguf", GGUF_DTYPE_Q8_0);
    test_consistency(SHARED "/models2/gemma3-tiny.f16.gguf", GGUF_DTYPE_Q8_0);
    test_consistency(SHARED "/models/llama-spm-kq.q4_k_m.gguf", GGUF_DTYPE_Q8_0);
    return t_done();
}
