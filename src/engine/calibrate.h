/* calibrate.h — start-up profile of the step-time cost model (calibrate.c). Internal to
 * the engine module. */
#ifndef SW_ENGINE_CALIBRATE_H
#define SW_ENGINE_CALIBRATE_H
#include "engine/cost.h"
#include "kv/kv.h"
#include "model/model.h"

/* Times a few representative steps (one prefill chunk of several sizes; 1..max_seqs
 * decodes at a short and a longer context) through model_forward on blocks borrowed from
 * kv (all returned; nothing enters the prefix cache), feeds them to c and makes the fit
 * c's prior. Shapes that do not fit max_tokens / max_seqs / the pool are skipped.
 * logits: (max_seqs, n_vocab) scratch. Returns the number of steps timed. */
int calib_run(model *m, model_ws *ws, kv_pool *kv, int max_tokens, int max_seqs, int max_ctx, float *logits,
              cost_model *c);

#endif
