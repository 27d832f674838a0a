/* engine.h — the serving engine: an engine thread that runs steps of continuous
 * batching over a paged, prefix-shared KV cache. Callers (server, generate CLI) submit
 * requests of token ids + sampling parameters and get a handle; tokens arrive
 * incrementally on the handle; a handle can be cancelled at any time. Prefix `engine_`
 * (inside the module: the scheduler sched.h, the model runner runner.h, the slo
 * policy policy.h, the step-time model cost.h).
 *
 * Threading: every function here is safe to call from any thread except
 * engine_create/engine_destroy. A handle is owned by its submitter and must be released
 * with engine_req_release once the caller is done with it (after it finished or after
 * engine_req_cancel). */
#ifndef SW_ENGINE_H
#define SW_ENGINE_H
#include "base/base.h"
#include "model/model.h"
#include "tokenizer/tok.h"
#include "sampler/sampler.h"
#include "grammar/grammar.h"


typedef enum engine_policy { ENGINE_POLICY_FCFS, ENGINE_POLICY_PRIORITY, ENGINE_POLICY_SLO } engine_policy;

typedef struct engine_config {
    int n_threads;          /* compute threads (0 = all cores) */
    int kv_block_size;      /* tokens per KV block (16) */
    size_t kv_mem_bytes;    /* KV pool budget; 0 = derive from kv_tokens */
    int kv_tokens;          /* alternative budget in tokens (used when kv_mem_bytes = 0) */
    uint32_t kv_dtype;      /* GGUF_DTYPE_F16 (default), GGUF_DTYPE_F32 or GGUF_DTYPE_Q8_0 */
    int max_batch_tokens;   /* token budget per step shared by decodes and prefill chunks */
    int max_seqs;           /* cap on running sequences */
    int max_ctx;            /* per-sequence context cap (0 = model's n_ctx_train) */
    bool prefix_cache;      /* share full blocks across requests (default true) */
    engine_policy policy;   /* fcfs: arrival order; priority: larger first; slo: goodput-first
                             * scheduling by the requests' objectives (sched.c, policy.h).
                             * Preempted requests always go first. */
    /* Default objectives per priority class [low (priority < 0), normal (0), high (> 0)]
     * for requests that name none; 0 = no objective. Used by the slo policy. */
    double slo_ttft_ms[3];
    double slo_tpot_ms[3];
    bool slo_reject;        /* slo: refuse a request predicted at admission to miss its TTFT
                             * objective (ENGINE_FINISH_REJECTED) instead of serving it
                             * best-effort after everyone else (default false) */
    int short_prompt;       /* slo: prompts with <= this many tokens left to compute use the
                             * short lane (256) */
    bool calibrate;         /* profile the step-time cost model at create (~1 s for 0.5B) */
    double queue_timeout_ms; /* a request not scheduled within this long after submit ends
                              * with ENGINE_FINISH_QUEUE_TIMEOUT; 0 = no limit */
} engine_config;
void engine_config_default(engine_config *c);

typedef struct engine_req_params {
    const int32_t *prompt;  /* borrowed during engine_submit only (copied) */
    int n_prompt;
    int max_tokens;         /* generated tokens cap (> 0) */
    bool ignore_eos;
    const int32_t *stop_ids; int n_stop_ids; /* extra stop token ids (copied) */
    sampler_params sampling;
    int priority;           /* larger = more important (policy priority/slo) */
    double slo_ttft_ms;     /* 0 = server default */
    double slo_tpot_ms;     /* 0 = server default */
    const char *user;       /* tenant for fairness (copied; may be NULL) */
    uint64_t cache_salt;    /* prefix-cache namespace: KV blocks are shared only between
                             * requests with the same salt (0 = the shared one; kv_salt) */
    double timeout_ms;      /* > 0: the request ends (ENGINE_FINISH_TIMEOUT) this long after
                             * submit, queued or running; 0 = no limit */
    /* Structured output: a matcher over the model's vocabulary (grammar.h), taken over by
     * engine_submit whether it succeeds or not (NULL = unconstrained). Each step the row's
     * logits outside its mask are set to -inf before sampling (EOS is in the mask only
     * where the grammar accepts) and the sampled token advances it. */
    gram_matcher *constraint;
    /* OpenAI logit_bias: added to the logits of those ids before sampling (copied). */
    const int32_t *bias_ids; const float *bias; int n_bias;
} engine_req_params;

typedef enum engine_finish {
    ENGINE_FINISH_NONE = 0,   /* still running */
    ENGINE_FINISH_STOP,       /* EOS / end-of-generation / stop token id */
    ENGINE_FINISH_LENGTH,     /* max_tokens or context full */
    ENGINE_FINISH_CANCELLED,
    ENGINE_FINISH_ERROR,      /* e.g. cannot fit in the whole KV pool; see engine_req_error */
    ENGINE_FINISH_REJECTED,   /* slo policy: cannot meet its TTFT objective; engine_req_error says why */
    ENGINE_FINISH_QUEUE_TIMEOUT, /* waited longer than queue_timeout_ms without being scheduled */
    ENGINE_FINISH_TIMEOUT,    /* its own timeout_ms passed (tokens so far were delivered) */
} engine_finish;

/* Whether the engine has taken a request on: fcfs/priority accept at submit; slo decides
 * at its next step (within one step time) from the predicted time to first token. */
typedef enum engine_verdict { ENGINE_VERDICT_PENDING, ENGINE_VERDICT_ACCEPTED, ENGINE_VERDICT_REJECTED } engine_verdict;

/* One generated token as delivered to the caller. */
typedef struct engine_token {
    int32_t id;
    float logprob;                 /* log-softmax of the sampled token (unpenalised logits) */
    int n_top;                     /* number of valid entries in top_ids/top_logprobs */
    int32_t top_ids[20];
    float top_logprobs[20];
} engine_token;

typedef struct engine_timing {
    double t_submit_ms;        /* sw_now_ms() at submit */
    double t_first_sched_ms;   /* first time a step included it (queue time = this - submit) */
    double t_first_token_ms;   /* 0 until the first token */
    double t_last_token_ms;
    double t_finish_ms;
    int n_prompt;
    int n_cached;              /* prompt tokens served from the prefix cache */
    int n_generated;
    int n_preempted;           /* times this request was preempted */
} engine_timing;

typedef struct engine engine;
typedef struct engine_req engine_req;

/* Borrows m and t (must outlive the engine); starts the engine thread. */
int engine_create(model *m, const tok *t, const engine_config *cfg, engine **out, sw_err *err);
void engine_destroy(engine *e); /* cancels everything, joins the thread */

/* Queues a request. Fails fast with SW_ERR_RANGE when the prompt cannot fit the context
 * or the whole KV pool (err says which), SW_ERR_ARG for bad parameters. */
int engine_submit(engine *e, const engine_req_params *p, engine_req **out, sw_err *err);

/* Waits up to timeout_ms (<0 = forever) for new tokens; copies up to cap of them into
 * out and returns how many (0 on timeout). *finish becomes non-NONE once the request has
 * ended and every token was taken. */
int engine_req_poll(engine_req *r, engine_token *out, int cap, double timeout_ms, engine_finish *finish);
/* Optional wake-up hook called (from the engine thread) whenever r has news (a token, the
 * finish, the slo verdict); e.g. to resume a suspended HTTP connection. Set it right after
 * submit. fn runs with r's lock held: it must be short and must not call engine_req_*
 * on r. Because of that lock, once engine_req_set_notify(r, NULL, NULL) returns no call
 * of the old hook is running or will start, so its arg may then be freed. */
void engine_req_set_notify(engine_req *r, void (*fn)(void *arg), void *arg);
void engine_req_cancel(engine_req *r);   /* idempotent; blocks freed at the next step */
void engine_req_timing(engine_req *r, engine_timing *out);
/* Waits up to timeout_ms (<0 = forever) for the admission verdict; PENDING on timeout. */
engine_verdict engine_req_verdict(engine_req *r, double timeout_ms);
const char *engine_req_error(engine_req *r); /* message when finish = ERROR, REJECTED or a timeout */
void engine_req_release(engine_req *r);  /* cancels if still running; frees the handle */

/* Snapshot for /metrics and logs. */
typedef struct engine_stats {
    int n_running, n_waiting;
    int kv_blocks_total, kv_blocks_used;   /* used = referenced by a live sequence */
    uint64_t prefix_queries, prefix_hits;  /* tokens looked up / found in the prefix cache */
    uint64_t n_preemptions;
    uint64_t prompt_tokens, generation_tokens;
    uint64_t n_steps;
    double last_step_ms;
    /* step-time cost model (cost.h): the last step's prediction and measurement, the
     * moving mean of |predicted - actual| / actual, and the current fit */
    double last_step_pred_ms;
    double last_step_fwd_ms;    /* the measured forward + sampling time it predicts */
    double step_pred_err;
    double cost_theta[4];       /* ms: per step, per token, per logits row, per 1k attended positions */
    uint64_t n_slo_rejected;    /* slo: refused at admission */
    uint64_t n_slo_best_effort; /* slo: demoted to best-effort (predicted to miss TTFT) */
} engine_stats;
void engine_get_stats(engine *e, engine_stats *out);

#endif
