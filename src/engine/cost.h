/* cost.h — the engine's step-time cost model: predicted wall time of one engine step
 * (one model_forward over a ragged batch) from the step's shape, linear in four
 * features:
 *     ms = t0 + t_tok * tokens + t_row * logits_rows + t_ctx * attended / 1000
 * where tokens = batch rows (decodes + prefill chunk tokens), logits_rows = rows that
 * get logits (each costs an lm_head GEMV row and a sampling pass) and attended = sum
 * over batch tokens of the positions each attends to (attention work). The weights are
 * a ridge least-squares fit over recent observed steps, pulled towards a prior (the
 * start-up calibration's fit, or a guess from the model's size before that), so the
 * model follows the machine online (other processes, thermal state). Observations are
 * kept per step-size bucket (COST_RING of each), so a long run of decode-only steps
 * cannot flush the few prefill steps that pin down the per-token cost; within a bucket
 * an observation's weight halves with every COST_HALF_LIFE newer ones and with every
 * COST_GLOBAL_LIFE steps of any size, so a start-up profile taken while other processes
 * were busy fades as soon as real steps of that size are seen, and within seconds of
 * serving in any case.
 * Pure and single-threaded (the engine thread owns it); times are passed in, so tests
 * drive it with a simulated clock. Prefix `cost_`. */
#ifndef SW_ENGINE_COST_H
#define SW_ENGINE_COST_H
#include "base/base.h"

#define COST_NF 4      /* features: 1, tokens, logits rows, attended/1000 */
#define COST_BUCKETS 6 /* step sizes (tokens): 1, 2-4, 5-16, 17-48, 49-128, more */
#define COST_RING 16   /* observations kept per bucket for the online fit */
#define COST_HALF_LIFE 8.0    /* newer observations in its bucket after which one counts half */
#define COST_GLOBAL_LIFE 256.0 /* ... and steps of any size after which it counts half */

typedef struct cost_shape {
    int tokens;        /* batch rows */
    int rows;          /* rows with logits */
    double attended;   /* sum over rows of attended positions (pos + 1) */
} cost_shape;

typedef struct cost_model {
    double theta[COST_NF];        /* current fit, ms per unit feature */
    double prior[COST_NF];        /* ridge target */
    double x[COST_BUCKETS][COST_RING][COST_NF]; /* recent feature vectors per bucket */
    double y[COST_BUCKETS][COST_RING];          /* their measured step times, ms */
    uint64_t when[COST_BUCKETS][COST_RING];     /* n_total when each was observed */
    int n_obs[COST_BUCKETS];                    /* valid ring entries per bucket */
    int head[COST_BUCKETS];                     /* next ring slot per bucket */
    uint64_t n_total;             /* observations ever made */
    uint64_t n_err;               /* predictions scored into err_mean (since the prior) */
    double err_mean;              /* moving mean of |predicted - actual| / actual */
    double last_pred_ms, last_actual_ms;
} cost_model;

/* Starts from a prior (ms per feature unit; see the formula above). */
void cost_init(cost_model *c, const double prior[COST_NF]);
/* A prior from the model's size alone, before anything was measured: weight bytes
 * streamed once per step at ~20 GB/s, 2 flops per weight per token at ~100 GFLOP/s,
 * kv_bytes_per_token (model_kv_bytes_per_token: K and V, all layers, in the pool's
 * dtype) read per attended position at ~20 GB/s. */
void cost_prior_guess(uint64_t weight_bytes, uint64_t n_params, uint64_t lm_head_params, uint64_t kv_bytes_per_token,
                      double prior[COST_NF]);
double cost_predict(const cost_model *c, const cost_shape *s); /* ms, >= 0.01 */
/* Records a measured step (updates err_mean with the prediction made before) and refits. */
void cost_observe(cost_model *c, const cost_shape *s, double actual_ms);
/* Makes the current fit the new prior (after calibration) and clears the error mean. */
void cost_set_prior_from_fit(cost_model *c);

#endif
