/* runner.h — the engine's model runner: owns the batch arrays, the logits and the model
 * workspace, and runs one planned step (sched.h): build the ragged batch of the plan's
 * items -> one model_forward -> sample the rows that reached the end of their known
 * tokens (with each sequence's logit_bias and grammar mask). It changes no sequence
 * state except the samplers' and matchers' (the scheduler commits the step, the engine
 * delivers the tokens). Engine thread only. Prefix `runner_`. */
#ifndef SW_ENGINE_RUNNER_H
#define SW_ENGINE_RUNNER_H
#include "engine/cost.h"
#include "engine/engine.h"
#include "engine/sched.h"
#include "kv/kv.h"
#include "model/model.h"

typedef struct runner runner;

/* What one step produced; arrays live in the runner until the next runner_step. */
typedef struct runner_out {
    int n_rows;
    sched_seq **seqs;      /* (n_rows) the sequences that sampled, in plan order */
    engine_token *toks;    /* (n_rows) their tokens; id -1: the constraint allows no token */
    cost_shape shape;      /* the step's shape (for the cost model) */
} runner_out;

/* Borrows m and kv. The workspace is sized for max_batch_tokens tokens and ctx_cap
 * positions, its per-thread scratch for n_threads OpenMP threads. */
int runner_create(model *m, kv_pool *kv, int max_batch_tokens, int max_seqs, int ctx_cap, int n_threads, runner **out,
                  sw_err *err);
void runner_destroy(runner *r);
/* Profiles the step-time cost model c (calibrate.h); returns the number of steps timed. */
int runner_calibrate(runner *r, cost_model *c);
/* Runs plan (n_items > 0). On a failed forward returns its error (err) and samples nothing. */
int runner_step(runner *r, const sched_step *plan, runner_out *out, sw_err *err);

#endif
