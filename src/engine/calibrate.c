/* calibrate.c — the cost model's start-up profile (see calibrate.h). Each shape runs
 * in each of three passes over the list (after one warm-up pass) and its fastest time
 * is kept; ~40 forward passes, 1-2 s for a 0.5B model on 2 cores. The K/V the passes write land in
 * borrowed blocks that go straight back to the free list. */
#include "engine/calibrate.h"
#include <stdlib.h>

typedef struct shape { int seqs, tokens, ctx; } shape; /* seqs x tokens new tokens after ctx cached ones */

static const shape SHAPES[] = {
    {1, 1, 16}, {1, 1, 480}, {4, 1, 112}, {8, 1, 240}, {16, 1, 112}, {16, 1, 496}, {32, 1, 112},
    {1, 16, 0}, {1, 64, 0}, {1, 128, 0}, {1, 256, 0}, {4, 32, 96}, {1, 64, 448},
};

/* One timed forward of shape sh; -1 when it does not fit. */
static double run_shape(model *m, model_ws *ws, kv_pool *kv, const shape *sh, float *logits) {
    int n = sh->seqs * sh->tokens, slots = sh->ctx + sh->tokens;
    kv_seq *seqs = calloc((size_t)sh->seqs, sizeof *seqs);
    int32_t *tok = calloc((size_t)n, sizeof *tok), *pos = malloc((size_t)n * sizeof *pos);
    int32_t *seq = malloc((size_t)n * sizeof *seq);
    uint8_t *lg = calloc((size_t)n, 1);
    const int32_t **tables = malloc((size_t)sh->seqs * sizeof *tables);
    double ms = -1;
    int held = 0;
    if (!seqs || !tok || !pos || !seq || !lg || !tables) goto done;
    int32_t dummy = 0;
    for (; held < sh->seqs; held++) {
        kv_seq_init(&seqs[held]);
        if (kv_admit(kv, &seqs[held], 0, &dummy, 1, slots) != SW_OK) goto done;
        tables[held] = seqs[held].blocks;
    }
    for (int s = 0, k = 0; s < sh->seqs; s++)
        for (int j = 0; j < sh->tokens; j++, k++) {
            pos[k] = sh->ctx + j;
            seq[k] = s;
            lg[k] = j == sh->tokens - 1;
        }
    model_batch b = {.n_tokens = n, .tokens = tok, .pos = pos, .seq = seq, .logits = lg,
                     .n_seqs = sh->seqs, .block_tables = tables};
    sw_err err = {0};
    double t0 = sw_now_ms();
    if (model_forward(m, ws, kv_pool_store(kv), &b, logits, &err) == SW_OK) ms = sw_now_ms() - t0;
done:
    for (int s = 0; s < held; s++) {
        kv_release(kv, &seqs[s]);
        kv_seq_destroy(&seqs[s]);
    }
    if (held < sh->seqs && seqs) kv_seq_destroy(&seqs[held]);
    free(seqs); free(tok); free(pos); free(seq); free(lg); free(tables);
    return ms;
}

int calib_run(model *m, model_ws *ws, kv_pool *kv, int max_tokens, int max_seqs, int max_ctx, float *logits,
              cost_model *c) {
    enum { N_SHAPES = sizeof SHAPES / sizeof SHAPES[0], PASSES = 3 };
    double best[N_SHAPES];
    int64_t pool = (int64_t)kv_n_blocks(kv) * kv_block_size(kv);
    run_shape(m, ws, kv, &SHAPES[0], logits); /* warm-up: page in the weights, start the threads */
    /* PASSES passes over all shapes, keeping each shape's fastest time: the samples of a
     * shape are spread over the whole profile, so one burst of other work cannot spoil
     * all of them (interference only ever adds time) */
    for (int i = 0; i < N_SHAPES; i++) best[i] = -1;
    for (int pass = 0; pass < PASSES; pass++)
        for (int i = 0; i < N_SHAPES; i++) {
            const shape *sh = &SHAPES[i];
            int slots = sh->ctx + sh->tokens;
            int64_t blocks = (int64_t)sh->seqs * ((slots + kv_block_size(kv) - 1) / kv_block_size(kv));
            if (sh->seqs > max_seqs || sh->seqs * sh->tokens > max_tokens || slots > max_ctx ||
                blocks * kv_block_size(kv) > pool || blocks > kv_n_available(kv))
                continue;
            double t = run_shape(m, ws, kv, sh, logits);
            if (t > 0 && (best[i] < 0 || t < best[i])) best[i] = t;
        }
    int n = 0;
    for (int i = 0; i < N_SHAPES; i++) {
        const shape *sh = &SHAPES[i];
        if (getenv("SWIFTLET_CALIB_DEBUG"))
            sw_info("calib: %d seqs x %d tokens after %d: %.3f ms", sh->seqs, sh->tokens, sh->ctx, best[i]);
        if (best[i] <= 0) continue;
        cost_shape cs = {.tokens = sh->seqs * sh->tokens, .rows = sh->seqs,
                         .attended = (double)sh->seqs * (sh->tokens * (double)sh->ctx +
                                                         sh->tokens * (sh->tokens + 1) / 2.0)};
        cost_observe(c, &cs, best[i]);
        n++;
    }
    cost_set_prior_from_fit(c);
    return n;
}
