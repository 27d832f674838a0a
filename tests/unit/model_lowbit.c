/* model_lowbit.c — models whose matrices are Q2_K, Q3_K, IQ4_NL or IQ4_XS load and compute
 * what the reference computed on the same files: ../shared/models2/llama3-rope-kq.
 * {q2_k,q3_k_m,iq4_nl,iq4_xs}.gguf, where token_embd (also the tied output) is Q2_K /
 * IQ4_NL / IQ4_XS in three of them, so the embedding lookup and the output matmul run on
 * those types too. Every golden2 case (prompts of 6 to 54 tokens), run as one batch and
 * token by token: last-position logits cosine to the
 * reference's and teacher-forced top-1 agreement on the clear prompt steps (reference gap
 * >= 5% of max|logit|), as ../shared/README.md says quantized files are compared.
 * Bounds: the for quantized files (cosine >= 0.99, agreement >= 95%). These files
 * also use Llama 3.1 rope_freqs scaling; at these short positions it moves the logits
 * little (measured without it: cosine 0.9984-0.9997, every clear step agreeing), so the
 * test holds with or without it. A decoding or kernel error in a new type gives unrelated
 * logits. */
#include "kernels/kq.h"
#include "model/model.h"
#include "t.h"
#include <jansson.h>
#include <math.h>

#define MAX_TOK 64

/* One golden2 case: its index (naming caseN.last_logits.f32), prompt, and per prompt
 * position the reference's top-1 id, top-1 logit and top-1/top-2 gap. */
typedef struct golden_case {
    int index, n;
    int32_t tokens[MAX_TOK], top1[MAX_TOK];
    double gap[MAX_TOK], maxl[MAX_TOK];
} golden_case;

/* The cases of golden2/NAME (at most cap; all valid golden data, reference_note or not:
 * noted cases were computed one token at a time); -1 when absent. */
static int read_cases(const char *name, golden_case *gc, int cap) {
    char path[256];
    snprintf(path, sizeof path, SHARED "/golden2/%s/cases.json", name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return -1;
    json_t *cases = json_object_get(root, "cases");
    int n = 0;
    for (size_t ci = 0; ci < json_array_size(cases) && n < cap; ci++) {
        json_t *c = json_array_get(cases, ci), *pt = json_object_get(c, "prompt_tokens"), *p5 = json_object_get(c, "prompt_top5");
        if (json_array_size(pt) > MAX_TOK || json_array_size(p5) != json_array_size(pt)) continue;
        golden_case *g = &gc[n++];
        g->index = (int)ci;
        g->n = (int)json_array_size(pt);
        for (int i = 0; i < g->n; i++) {
            json_t *e = json_array_get(p5, i), *ids = json_object_get(e, "ids"), *lg = json_object_get(e, "logits");
            g->tokens[i] = (int32_t)json_integer_value(json_array_get(pt, i));
            g->top1[i] = (int32_t)json_integer_value(json_array_get(ids, 0));
            g->maxl[i] = json_number_value(json_array_get(lg, 0));
            g->gap[i] = g->maxl[i] - json_number_value(json_array_get(lg, 1));
        }
    }
    json_decref(root);
    return n;
}

static int argmax(const float *x, int n) {
    int k = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[k]) k = i;
    return k;
}

static void check_file(const char *name) {
    golden_case gc[8];
    const int nc = read_cases(name, gc, 8);
    if (nc <= 0) {
        T_SKIP("golden2/%s absent", name);
        return;
    }
    char path[256];
    snprintf(path, sizeof path, SHARED "/models2/%s.gguf", name);
    model *m;
    sw_err e;
    if (model_load(path, &m, &e)) {
        T_CHECK(0, "%s: %s", path, e.msg);
        return;
    }
    const model_config *c = model_get_config(m);
    const int nv = c->n_vocab;
    model_ws *ws = NULL;
    float *out = malloc((size_t)MAX_TOK * nv * sizeof *out), *last = malloc((size_t)nv * sizeof *last);
    T_EQ_INT(model_ws_create(m, MAX_TOK, MAX_TOK, &ws, &e), SW_OK);
    for (int ci = 0; ws && ci < nc; ci++) {
        const golden_case *g = &gc[ci];
        snprintf(path, sizeof path, SHARED "/golden2/%s/case%d.last_logits.f32", name, g->index);
        FILE *f = fopen(path, "rb");
        const bool have_last = f && fread(last, sizeof *last, (size_t)nv, f) == (size_t)nv;
        if (f) fclose(f);
        T_CHECK(have_last, "%s: cannot read", path);
        for (int obo = 0; obo < 2 && have_last; obo++) {
            model_kv *kv = NULL;
            int32_t pos[MAX_TOK], seq[MAX_TOK] = {0}, bt[4] = {0, 1, 2, 3};
            uint8_t want[MAX_TOK];
            for (int i = 0; i < g->n; i++) pos[i] = i, want[i] = 1;
            const int32_t *tables[1] = {bt};
            int rc = model_kv_create(c, GGUF_DTYPE_F16, 16, 4, &kv, &e);
            for (int i0 = 0; !rc && i0 < g->n; i0 += obo ? 1 : g->n) {
                model_batch b = {.n_tokens = obo ? 1 : g->n, .tokens = g->tokens + i0, .pos = pos + i0, .seq = seq,
                                 .logits = want, .n_seqs = 1, .block_tables = tables};
                rc = model_forward(m, ws, kv, &b, out + (size_t)i0 * nv, &e);
            }
            model_kv_destroy(kv);
            T_CHECK(rc == 0, "%s: %s", name, e.msg);
            if (rc) break;
            int clear = 0, agree = 0;
            for (int i = 0; i < g->n; i++) {
                if (g->gap[i] < 0.05 * fabs(g->maxl[i])) continue;
                clear++;
                agree += argmax(out + (size_t)i * nv, nv) == g->top1[i];
            }
            const float *y = out + (size_t)(g->n - 1) * nv;
            double ab = 0, aa = 0, bb = 0;
            for (int v = 0; v < nv; v++) {
                ab += (double)y[v] * last[v];
                aa += (double)y[v] * y[v];
                bb += (double)last[v] * last[v];
            }
            const double cosv = ab / sqrt(aa * bb + 1e-30);
            fprintf(stderr, "%s case %d (%d tokens, %s): last-logits cosine %.4f, clear-step top-1 %d/%d\n", name,
                    g->index, g->n, obo ? "token by token" : "one batch", cosv, agree, clear);
            T_CHECK(cosv >= 0.99 && agree >= 0.95 * clear, "%s case %d: cosine %g, clear-step top-1 %d/%d", name,
                    g->index, cosv, agree, clear);
        }
    }
    free(out);
    free(last);
    model_ws_destroy(ws);
    model_free(m);
}

int main(void) {
    if (t_shared_missing()) {
        T_SKIP("../shared not found: the reference's model files are needed");
        return t_done();
    }
    const char *names[] = {"llama3-rope-kq.q2_k", "llama3-rope-kq.q3_k_m", "llama3-rope-kq.iq4_nl", "llama3-rope-kq.iq4_xs"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) check_file(names[k]);
    return t_done();
}
