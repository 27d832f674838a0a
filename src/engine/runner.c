/* runner.c — the model runner (see runner.h): ragged batch, forward, sampling. */
#include "engine/runner.h"
#include "engine/calibrate.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct runner {
    model *m;                  /* borrowed */
    kv_pool *kv;               /* borrowed */
    model_ws *ws;
    int n_vocab, max_batch_tokens, max_seqs, ctx_cap, n_threads;
    int32_t *b_tok, *b_pos, *b_seq; /* (max_batch_tokens) */
    uint8_t *b_logits;         /* (max_batch_tokens) */
    const int32_t **b_tables;  /* (max_seqs) */
    float *logits;             /* (max_seqs, n_vocab) */
    sched_seq **rows;          /* (max_seqs) the sequence of each logits row */
    engine_token *toks;        /* (max_seqs) the step's sampled tokens */
};

void runner_destroy(runner *r) {
    if (!r) return;
    model_ws_destroy(r->ws);
    free(r->b_tok); free(r->b_pos); free(r->b_seq); free(r->b_logits); free(r->b_tables);
    free(r->logits); free(r->rows); free(r->toks);
    free(r);
}

int runner_create(model *m, kv_pool *kv, int max_batch_tokens, int max_seqs, int ctx_cap, int n_threads, runner **out,
                  sw_err *err) {
    *out = NULL;
    runner *r = calloc(1, sizeof *r);
    if (!r) return sw_err_set(err, SW_ERR_NOMEM, "engine: out of memory");
    r->m = m;
    r->kv = kv;
    r->n_vocab = model_get_config(m)->n_vocab;
    r->max_batch_tokens = max_batch_tokens;
    r->max_seqs = max_seqs;
    r->ctx_cap = ctx_cap;
    r->n_threads = n_threads;
    /* the workspace sizes its per-thread scratch from the calling thread's OpenMP
     * thread count: give it the engine thread's */
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(n_threads);
    int rc = model_ws_create(m, max_batch_tokens, ctx_cap, &r->ws, err);
    omp_set_num_threads(saved_threads);
    if (rc != SW_OK) { runner_destroy(r); return rc; }
    size_t S = (size_t)max_seqs, B = (size_t)max_batch_tokens;
    r->b_tok = malloc(B * sizeof *r->b_tok);
    r->b_pos = malloc(B * sizeof *r->b_pos);
    r->b_seq = malloc(B * sizeof *r->b_seq);
    r->b_logits = malloc(B);
    r->b_tables = malloc(S * sizeof *r->b_tables);
    r->logits = malloc(S * (size_t)r->n_vocab * sizeof *r->logits);
    r->rows = malloc(S * sizeof *r->rows);
    r->toks = malloc(S * sizeof *r->toks);
    if (!r->b_tok || !r->b_pos || !r->b_seq || !r->b_logits || !r->b_tables || !r->logits || !r->rows || !r->toks) {
        runner_destroy(r);
        return sw_err_set(err, SW_ERR_NOMEM, "engine: out of memory for batch buffers");
    }
    *out = r;
    return SW_OK;
}

int runner_calibrate(runner *r, cost_model *c) {
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(r->n_threads);
    int n = calib_run(r->m, r->ws, r->kv, r->max_batch_tokens, r->max_seqs, r->ctx_cap, r->logits, c);
    omp_set_num_threads(saved_threads);
    return n;
}

/* Applies logit_bias and the grammar mask to q's logits row; false when the mask allows
 * no token at all (or cannot be computed). */
static bool constrain_row(const runner *r, sched_seq *q, float *row) {
    for (int j = 0; j < q->n_bias; j++) row[q->bias_ids[j]] += q->bias[j];
    if (!q->gm) return true;
    sw_err err;
    if (gram_matcher_fill_mask(q->gm, q->gmask, &err) != SW_OK) {
        sw_warn("engine: %s", err.msg);
        return false;
    }
    uint32_t any = 0;
    int nw = r->n_vocab / 32;
    for (int w = 0; w < nw; w++) {
        uint32_t m = q->gmask[w];
        any |= m;
        if (m == 0xffffffffu) continue;
        float *x = row + (size_t)w * 32;
        if (m == 0) { /* most words of a restrictive mask: one vectorizable fill */
            for (int b = 0; b < 32; b++) x[b] = -INFINITY;
            continue;
        }
        for (int b = 0; b < 32; b++)
            if (!((m >> b) & 1)) x[b] = -INFINITY;
    }
    for (int id = nw * 32; id < r->n_vocab; id++) {
        bool ok = gram_mask_test(q->gmask, id);
        any |= ok;
        if (!ok) row[id] = -INFINITY;
    }
    return any != 0;
}

int runner_step(runner *r, const sched_step *plan, runner_out *out, sw_err *err) {
    /* the ragged batch: each item's tokens at their positions; the last token of an item
     * that reaches the end of its known tokens gets a logits row */
    int n = 0, n_rows = 0;
    cost_shape shape = {0};
    for (int k = 0; k < plan->n_items; k++) {
        sched_seq *q = plan->items[k].seq;
        int c = plan->items[k].n;
        bool last = q->n_computed + c == q->n_tokens;
        for (int j = 0; j < c; j++, n++) {
            r->b_tok[n] = q->tokens[q->n_computed + j];
            r->b_pos[n] = q->n_computed + j;
            r->b_seq[n] = k;
            r->b_logits[n] = last && j == c - 1;
            shape.attended += q->n_computed + j + 1;
        }
        if (last) r->rows[n_rows++] = q; /* mid-prefill: no logits row */
        r->b_tables[k] = q->kv.blocks;
    }
    shape.rows = n_rows;
    shape.tokens = n;
    *out = (runner_out){.seqs = r->rows, .toks = r->toks, .shape = shape};
    model_batch b = {.n_tokens = n, .tokens = r->b_tok, .pos = r->b_pos, .seq = r->b_seq,
                     .logits = r->b_logits, .n_seqs = plan->n_items, .block_tables = r->b_tables};
    int rc = model_forward(r->m, r->ws, kv_pool_store(r->kv), &b, r->logits, err);
    if (rc != SW_OK) return rc;
    /* sample the rows in parallel (each sequence has its own sampler; a row with logprobs
     * takes a pass of expf over the vocabulary) */
#pragma omp parallel for schedule(dynamic, 1) if (n_rows >= 4)
    for (int i = 0; i < n_rows; i++) {
        sched_seq *q = r->rows[i];
        engine_token *tk = &r->toks[i];
        float *row = r->logits + (size_t)i * (size_t)r->n_vocab;
        memset(tk, 0, sizeof *tk);
        if ((q->gm || q->n_bias) && !constrain_row(r, q, row)) { tk->id = -1; continue; }
        tk->id = sampler_sample(q->smp, row, &tk->logprob, tk->top_ids, tk->top_logprobs);
        tk->n_top = q->n_logprobs;
        sampler_accept(q->smp, tk->id, false);
        if (q->gm && !gram_matcher_accept_token(q->gm, tk->id)) tk->id = -1;
    }
    out->n_rows = n_rows;
    return SW_OK;
}
