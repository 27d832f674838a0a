/* engine.c — the serving engine: request handles, the engine thread and its step loop
 * (continuous batching with chunked prefill over the paged, prefix-shared KV cache).
 *
 * Threads and locks. Submitters push requests onto the inbox under e->mu and signal
 * e->cv; the engine thread moves them to its own queues, which only it touches (waiting
 * list, running array, KV pool, model workspace). Each request has its own mutex and
 * condvar guarding what the caller reads: the outbox of tokens, the finish state, the
 * timing. Lock order: never hold e->mu and a request's mu together. Cancellation is an
 * atomic flag the engine reads at the start of every step (no wake-up is needed: the
 * engine only sleeps when it has no requests at all). A handle is reference counted
 * (caller + engine) and freed by whichever lets go last.
 *
 * One step (sched_step):
 *  1. drop cancelled requests (their blocks go back to the pool now);
 *  2. schedule under one token budget (max_batch_tokens): running sequences in admission
 *     order first, each taking min(pending tokens, budget) — 1 for a decode, a chunk for
 *     a partially prefilled prompt; a sequence that needs a block when none is available
 *     preempts the newest running sequence (its blocks freed; its full blocks stay in the
 *     prefix cache; it goes back to the FRONT of the waiting queue and is recomputed
 *     later). Then, if nothing was preempted, waiting requests are admitted in queue
 *     order while budget, max_seqs and KV blocks allow: each takes its cached prefix and
 *     a prefill chunk of what is left of the budget (Dynamic SplitFuse);
 *  3. one ragged model_batch, one model_forward;
 *  4. sample the rows that reached the end of their known tokens;
 *  5. deliver tokens to outboxes, wake pollers, call notify hooks; finish on
 *     end-of-generation / stop id (not delivered), max_tokens or context full. */
#include "engine/engine.h"
#include "engine/calibrate.h"
#include "engine/cost.h"
#include "engine/policy.h"
#include "kv/kv.h"
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENGINE_MAX_STOP_IDS 1024
#define ENGINE_MAX_USER 128      /* bytes of `user` kept for fairness */
/* slo: prefill tokens a partially prefilled request gets per step even when the decodes'
 * TPOT limit leaves none (it was admitted; it must progress) */
#define ENGINE_MIN_CHUNK 16

struct engine_req {
    /* fixed at submit */
    int n_prompt;
    int max_tokens;
    bool ignore_eos;
    int32_t *stop_ids;     /* (n_stop_ids) */
    int n_stop_ids;
    int priority;
    double ttft_ms, tpot_ms; /* objectives (request's or the class default); 0 = none */
    double deadline_ms;    /* t_submit + ttft_ms; INFINITY without a TTFT objective */
    double t_end_ms;       /* t_submit + timeout_ms; INFINITY without a timeout */
    char user[ENGINE_MAX_USER]; /* tenant ("" = none) */
    uint64_t cache_salt;   /* prefix-cache namespace (kv.h) */
    int n_logprobs;
    sampler *smp;
    gram_matcher *gm;      /* structured output (NULL = none) */
    uint32_t *gmask;       /* (n_vocab/32 words) its mask, engine thread only */
    int32_t *bias_ids; float *bias; int n_bias; /* logit_bias */

    /* engine thread only */
    int32_t *tokens;       /* (cap_tokens) prompt ids, then generated ids */
    int cap_tokens;
    int n_tokens;          /* known tokens */
    int n_computed;        /* leading tokens whose K/V are in the pool */
    kv_seq kv;
    bool scheduled_once;
    uint64_t arrival;      /* order in which the engine thread took it from the inbox */
    int tenant;            /* pol_fair slot, -1 = untracked */
    bool best_effort;      /* slo: predicted to miss its TTFT objective; served last */
    bool judged;           /* slo: verdict given */
    struct engine_req *next, *prev; /* inbox / waiting list links */

    /* shared with the caller, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    engine_token *out;     /* (out_cap) tokens not yet polled are out[out_head..out_n) */
    int out_head, out_n, out_cap;
    engine_finish finish;
    engine_verdict verdict;
    char error[256];
    engine_timing timing;
    void (*notify)(void *arg);
    void *notify_arg;

    atomic_bool cancelled;
    atomic_int refs;       /* caller + engine */
};

struct engine {
    model *m;              /* borrowed */
    const tok *t;          /* borrowed */
    engine_config cfg;
    int n_vocab;
    int ctx_cap;           /* most tokens (positions) one sequence may hold */
    kv_pool *kv;
    model_ws *ws;
    pthread_t thread;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    engine_req *inbox_head, *inbox_tail;
    int n_inbox;
    bool stop;
    engine_stats stats;

    /* engine thread only */
    engine_req **running;  /* (max_seqs) in admission order */
    int n_running;
    engine_req *wait_head, *wait_tail;
    int n_waiting;
    engine_req **sched;    /* (max_seqs) requests of the current step */
    int *sched_n;          /* (max_seqs) tokens each computes this step */
    int n_sched;
    int32_t *b_tok, *b_pos, *b_seq; /* (max_batch_tokens) */
    uint8_t *b_logits;     /* (max_batch_tokens) */
    const int32_t **b_tables; /* (max_seqs) */
    float *logits;         /* (max_seqs, n_vocab) */
    engine_token *toks;    /* (max_seqs) the step's sampled tokens */
    uint64_t n_preemptions, prompt_tokens, generation_tokens, n_steps;
    double last_step_ms;
    cost_model cost;       /* step-time model, observed every step */
    cost_shape shape;      /* the current step's shape */
    pol_fair fair;         /* per-tenant virtual token counters */
    pol_decode *pdec;      /* (max_seqs) slo: the step's decodes */
    pol_cand *cand;        /* (cand_cap) slo: the step's prefill candidates */
    engine_req **cand_req; /* (cand_cap) slo: the request of candidate idx (NULL once refused) */
    double *release;       /* (max_seqs) slo: predicted ms until each running request ends */
    int cand_cap;
    uint64_t n_arrivals, n_rejected, n_best_effort;
};

void engine_config_default(engine_config *c) {
    *c = (engine_config){
        .n_threads = 0,
        .kv_block_size = 16,
        .kv_mem_bytes = 0,
        /* 8192 tokens: 32 concurrent sequences of 256 tokens. 12 MiB per 1k tokens for
         * Qwen2.5-0.5B (F16), 128 MiB per 1k for an 8B Llama. */
        .kv_tokens = 8192,
        .kv_dtype = GGUF_DTYPE_F16,
        /* 128 tokens per step on a 2-core CPU. Measured on Qwen2.5-0.5B Q8_0, 2 threads
         * (512-token prompt, chunk = budget): 32 -> ~80 prefill tok/s (0.4 s/step),
         * 64 -> ~150 (0.4 s), 128 -> ~180 (0.7 s), 256 -> ~145 (1.7 s). 128 is where a
         * chunk is an efficient GEMM (weights read once per 128 rows) while a step stays
         * well under a second, so running decodes keep getting tokens during long
         * prefills; 256 only makes steps (and TPOT spikes) longer. */
        .max_batch_tokens = 128,
        .max_seqs = 32,
        .max_ctx = 0,
        .prefix_cache = true,
        .policy = ENGINE_POLICY_FCFS,
        .slo_reject = false,
        .short_prompt = 256,
        .calibrate = true,
    };
}

/* ---------------- requests ---------------- */

static void req_unref(engine_req *r) {
    if (atomic_fetch_sub(&r->refs, 1) != 1) return;
    sampler_destroy(r->smp);
    kv_seq_destroy(&r->kv);
    free(r->tokens);
    free(r->stop_ids);
    gram_matcher_destroy(r->gm);
    free(r->gmask);
    free(r->bias_ids);
    free(r->bias);
    free(r->out);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* Appends one token to the outbox (under r->mu). */
static int outbox_push(engine_req *r, const engine_token *tk) {
    if (r->out_n == r->out_cap) {
        int cap = r->out_cap ? r->out_cap * 2 : 16;
        engine_token *o = realloc(r->out, (size_t)cap * sizeof *o);
        if (!o) return SW_ERR_NOMEM;
        r->out = o;
        r->out_cap = cap;
    }
    r->out[r->out_n++] = *tk;
    return SW_OK;
}

/* Publishes news to the caller: an optional token, an optional finish. Engine thread. */
static void req_publish(engine_req *r, const engine_token *tk, engine_finish fin, const char *error) {
    double now = sw_now_ms();
    pthread_mutex_lock(&r->mu);
    if (tk) {
        if (outbox_push(r, tk) != SW_OK) {
            fin = ENGINE_FINISH_ERROR;
            error = "engine: out of memory for the token outbox";
        } else {
            if (r->timing.n_generated++ == 0) r->timing.t_first_token_ms = now;
            r->timing.t_last_token_ms = now;
        }
    }
    if (fin != ENGINE_FINISH_NONE && r->verdict == ENGINE_VERDICT_PENDING)
        r->verdict = fin == ENGINE_FINISH_REJECTED ? ENGINE_VERDICT_REJECTED : ENGINE_VERDICT_ACCEPTED;
    if (fin != ENGINE_FINISH_NONE && r->finish == ENGINE_FINISH_NONE) {
        r->finish = fin;
        r->timing.t_finish_ms = now;
        if (error) snprintf(r->error, sizeof r->error, "%s", error);
    }
    pthread_cond_broadcast(&r->cv);
    if (r->notify) r->notify(r->notify_arg); /* under mu: see engine_req_set_notify */
    pthread_mutex_unlock(&r->mu);
}

/* CLOCK_MONOTONIC time timeout_ms from now (request condvars use that clock). */
static void deadline_in(double timeout_ms, struct timespec *ts) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    double s = (double)ts->tv_sec + (double)ts->tv_nsec / 1e9 + timeout_ms / 1e3;
    ts->tv_sec = (time_t)s;
    ts->tv_nsec = (long)((s - (double)ts->tv_sec) * 1e9);
}

int engine_req_poll(engine_req *r, engine_token *out, int cap, double timeout_ms, engine_finish *finish) {
    struct timespec deadline;
    if (timeout_ms > 0) deadline_in(timeout_ms, &deadline);
    pthread_mutex_lock(&r->mu);
    while (r->out_n == r->out_head && r->finish == ENGINE_FINISH_NONE && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&r->cv, &r->mu);
        else if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) == ETIMEDOUT) break;
    }
    int n = r->out_n - r->out_head;
    if (cap < 0) cap = 0;
    if (n > cap) n = cap;
    if (n > 0) memcpy(out, r->out + r->out_head, (size_t)n * sizeof *out);
    r->out_head += n;
    if (r->out_head == r->out_n) r->out_head = r->out_n = 0;
    if (finish) *finish = r->out_n == r->out_head ? r->finish : ENGINE_FINISH_NONE;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void engine_req_set_notify(engine_req *r, void (*fn)(void *arg), void *arg) {
    pthread_mutex_lock(&r->mu);
    r->notify = fn;
    r->notify_arg = arg;
    pthread_mutex_unlock(&r->mu);
}

void engine_req_cancel(engine_req *r) { atomic_store(&r->cancelled, true); }

void engine_req_timing(engine_req *r, engine_timing *out) {
    pthread_mutex_lock(&r->mu);
    *out = r->timing;
    pthread_mutex_unlock(&r->mu);
}

engine_verdict engine_req_verdict(engine_req *r, double timeout_ms) {
    struct timespec deadline;
    if (timeout_ms > 0) deadline_in(timeout_ms, &deadline);
    pthread_mutex_lock(&r->mu);
    while (r->verdict == ENGINE_VERDICT_PENDING && r->finish == ENGINE_FINISH_NONE && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&r->cv, &r->mu);
        else if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) == ETIMEDOUT) break;
    }
    engine_verdict v = r->verdict;
    pthread_mutex_unlock(&r->mu);
    return v;
}

const char *engine_req_error(engine_req *r) {
    pthread_mutex_lock(&r->mu);
    const char *s = r->finish == ENGINE_FINISH_ERROR || r->finish == ENGINE_FINISH_REJECTED ||
                            r->finish == ENGINE_FINISH_QUEUE_TIMEOUT || r->finish == ENGINE_FINISH_TIMEOUT
                        ? r->error
                        : NULL;
    pthread_mutex_unlock(&r->mu);
    return s;
}

void engine_req_release(engine_req *r) {
    if (!r) return;
    engine_req_cancel(r);
    req_unref(r);
}

/* ---------------- queues (engine thread) ---------------- */

static void wait_unlink(engine *e, engine_req *r) {
    if (r->prev) r->prev->next = r->next; else e->wait_head = r->next;
    if (r->next) r->next->prev = r->prev; else e->wait_tail = r->prev;
    r->next = r->prev = NULL;
    e->n_waiting--;
}

static void wait_insert_before(engine *e, engine_req *r, engine_req *at) {
    r->next = at;
    r->prev = at ? at->prev : e->wait_tail;
    if (r->prev) r->prev->next = r; else e->wait_head = r;
    if (at) at->prev = r; else e->wait_tail = r;
    e->n_waiting++;
}

/* New request: fcfs appends; priority keeps the queue ordered by priority (larger
 * first), slo by TTFT deadline (earliest first, EDF); arrival order among equals.
 * Preempted requests go to the front regardless (wait_insert_before the head). */
static void wait_enqueue(engine *e, engine_req *r) {
    engine_req *at = NULL;
    if (e->cfg.policy == ENGINE_POLICY_PRIORITY)
        for (at = e->wait_head; at && at->priority >= r->priority; at = at->next) {}
    else if (e->cfg.policy == ENGINE_POLICY_SLO)
        for (at = e->wait_head; at && at->deadline_ms <= r->deadline_ms; at = at->next) {}
    wait_insert_before(e, r, at);
}

static void running_remove(engine *e, int i) {
    memmove(e->running + i, e->running + i + 1, (size_t)(e->n_running - i - 1) * sizeof *e->running);
    e->n_running--;
}

static int running_index(const engine *e, const engine_req *r) {
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i] == r) return i;
    return -1;
}

/* Ends a request the engine holds (running or waiting): blocks back, caller told,
 * engine's reference dropped. */
static void req_end(engine *e, engine_req *r, engine_finish fin, const char *error) {
    int i = running_index(e, r);
    if (i >= 0) running_remove(e, i);
    else wait_unlink(e, r);
    kv_release(e->kv, &r->kv);
    pol_fair_leave(&e->fair, r->tenant);
    req_publish(r, NULL, fin, error);
    req_unref(r);
}

/* Takes the newest running request back to the front of the waiting queue. */
static void preempt_newest(engine *e) {
    engine_req *r = e->running[e->n_running - 1];
    e->n_running--;
    kv_release(e->kv, &r->kv);
    r->n_computed = 0;
    wait_insert_before(e, r, e->wait_head);
    e->n_preemptions++;
    pthread_mutex_lock(&r->mu);
    r->timing.n_preempted++;
    pthread_mutex_unlock(&r->mu);
}

/* ---------------- one step ---------------- */

static void sched_add(engine *e, engine_req *r, int n) {
    e->sched[e->n_sched] = r;
    e->sched_n[e->n_sched] = n;
    e->n_sched++;
}

/* Moves waiting r into the running batch with its cached prefix and a first prefill
 * chunk of at most budget tokens (halved until the KV blocks allow). Returns the chunk,
 * 0 when r cannot be admitted now. */
static int admit_waiting(engine *e, engine_req *r, int budget) {
    int cached = kv_prefix_lookup(e->kv, r->cache_salt, r->tokens, r->n_tokens);
    int chunk = r->n_tokens - cached;
    if (chunk > budget) chunk = budget;
    while (chunk > 0 && !kv_can_admit(e->kv, r->cache_salt, r->tokens, r->n_tokens, cached + chunk)) chunk /= 2;
    if (chunk == 0 || kv_admit(e->kv, &r->kv, r->cache_salt, r->tokens, r->n_tokens, cached + chunk) != SW_OK) return 0;
    wait_unlink(e, r);
    e->running[e->n_running++] = r;
    r->n_computed = r->kv.n_cached;
    if (!r->scheduled_once) {
        pthread_mutex_lock(&r->mu);
        r->timing.n_cached = r->kv.n_cached;
        pthread_mutex_unlock(&r->mu);
    }
    sched_add(e, r, chunk);
    return chunk;
}

/* Step 2: fills e->sched. */
static void sched_plan(engine *e) {
    int budget = e->cfg.max_batch_tokens;
    bool preempted = false;
    e->n_sched = 0;
    for (int i = 0; i < e->n_running && budget > 0;) {
        engine_req *r = e->running[i];
        int want = r->n_tokens - r->n_computed;
        if (want > budget) want = budget;
        /* a prefill chunk shrinks to the blocks that are available before anyone is preempted */
        int fit = (r->kv.n_blocks + kv_n_available(e->kv)) * kv_block_size(e->kv) - r->n_computed;
        if (want > fit && fit > 0) want = fit;
        while (!kv_can_grow(e->kv, &r->kv, r->n_computed + want) && e->running[e->n_running - 1] != r) {
            preempt_newest(e);
            preempted = true;
        }
        if (!kv_can_grow(e->kv, &r->kv, r->n_computed + want)) {
            /* r is the newest and still does not fit: it waits (a request alone always
             * fits: ctx_cap <= pool size). */
            preempt_newest(e);
            preempted = true;
            break;
        }
        kv_grow(e->kv, &r->kv, r->n_computed + want);
        sched_add(e, r, want);
        budget -= want;
        i++;
    }
    /* Admitting right after a preemption would hand the freed blocks straight back. */
    while (!preempted && budget > 0 && e->n_running < e->cfg.max_seqs && e->wait_head) {
        int chunk = admit_waiting(e, e->wait_head, budget);
        if (chunk == 0) break;
        budget -= chunk;
    }
}

/* ---------------- the slo policy's step plan ---------------- */

/* Gives r its admission verdict (slo); wakes a caller waiting in engine_req_verdict. */
static void req_accept(engine_req *r) {
    r->judged = true;
    pthread_mutex_lock(&r->mu);
    r->verdict = ENGINE_VERDICT_ACCEPTED;
    pthread_cond_broadcast(&r->cv);
    if (r->notify) r->notify(r->notify_arg);
    pthread_mutex_unlock(&r->mu);
}

/* Grows running r by want tokens' slots, preempting newer running requests while the
 * pool is short (as the fcfs plan does). Returns false when r itself was preempted. */
static bool grow_or_preempt(engine *e, engine_req *r, int want, bool *preempted) {
    while (!kv_can_grow(e->kv, &r->kv, r->n_computed + want) && e->running[e->n_running - 1] != r) {
        preempt_newest(e);
        *preempted = true;
    }
    if (!kv_can_grow(e->kv, &r->kv, r->n_computed + want)) {
        preempt_newest(e);
        *preempted = true;
        return false;
    }
    kv_grow(e->kv, &r->kv, r->n_computed + want);
    return true;
}

static bool is_decoding(const engine_req *r) { return r->n_computed == r->n_tokens - 1 && r->n_tokens > r->n_prompt; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Grows the candidate arrays to hold n (amortized: no allocation in steady state). */
static int ensure_cand(engine *e, int n) {
    if (n <= e->cand_cap) return SW_OK;
    int cap = n > 2 * e->cand_cap ? n : 2 * e->cand_cap;
    pol_cand *c = realloc(e->cand, (size_t)cap * sizeof *c);
    if (c) e->cand = c;
    engine_req **q = c ? realloc(e->cand_req, (size_t)cap * sizeof *q) : NULL;
    if (!q) return SW_ERR_NOMEM;
    e->cand_req = q;
    e->cand_cap = cap;
    return SW_OK;
}

/* Step 2 under --policy slo (see policy.h for the rules):
 *  a. every running decode gets its token (KV growth may preempt the newest, as fcfs);
 *  b. the prefill budget is what keeps the predicted step within the decodes' TPOT limit;
 *  c. prefill candidates — partially prefilled running requests and waiting ones — are
 *     ordered (best-effort last, fair share, short lane, earliest deadline); each new
 *     one gets its verdict: its predicted time to first token, behind the work ordered
 *     before it, must meet its deadline, else it is refused (slo_reject) or demoted to
 *     best-effort; a waiting request already admitted whose deadline becomes unreachable
 *     is demoted;
 *  d. the budget goes to candidates in that order; a new request is admitted only while
 *     the decode capacity of every admitted request's TPOT objective holds. */
static void sched_plan_slo(engine *e) {
    double now = sw_now_ms();
    bool preempted = false;
    e->n_sched = 0;
    /* a. decodes */
    int n_dec = 0;
    double dec_att = 0;
    for (int i = 0; i < e->n_running;) {
        engine_req *r = e->running[i];
        if (!is_decoding(r)) { i++; continue; }
        if (!grow_or_preempt(e, r, 1, &preempted)) break;
        sched_add(e, r, 1);
        e->pdec[n_dec++] = (pol_decode){.tpot_ms = r->tpot_ms, .t_first_ms = r->timing.t_first_token_ms,
                                        .n_gen = r->timing.n_generated};
        dec_att += r->n_computed + 1;
        i++;
    }
    /* b. budget */
    double limit = pol_step_limit_ms(e->pdec, n_dec, now) * POL_STEP_MARGIN;
    int room = e->cfg.max_batch_tokens - n_dec;
    int budget = pol_prefill_budget(&e->cost, n_dec, dec_att, limit, room);
    /* c. candidates */
    if (ensure_cand(e, e->n_running + e->n_waiting) != SW_OK) return;
    /* running ones first: candidate idx < n_started is partially prefilled, the rest wait */
    int n_cand = 0;
    for (int i = 0; i < e->n_running; i++)
        if (!is_decoding(e->running[i])) e->cand_req[n_cand++] = e->running[i];
    const int n_started = n_cand;
    for (engine_req *r = e->wait_head; r; r = r->next) e->cand_req[n_cand++] = r;
    for (int c = 0; c < n_cand; c++) {
        engine_req *r = e->cand_req[c];
        int pending = r->n_tokens - (c < n_started ? r->n_computed : kv_prefix_lookup(e->kv, r->cache_salt, r->tokens, r->n_tokens));
        e->cand[c] = (pol_cand){.idx = c, .pending = pending > 1 ? pending : 1,
                                .deadline_ms = r->n_tokens > r->n_prompt ? -INFINITY : r->deadline_ms,
                                .arrival = r->arrival, .best_effort = r->best_effort,
                                .over = pol_fair_over(&e->fair, r->tenant)};
    }
    pol_order(e->cand, n_cand, e->cfg.short_prompt);
    /* seats: how many more sequences the batch takes now (max_seqs, decode capacity), and
     * when running ones will release theirs (tokens left x a decode step) */
    double tpot_cap = INFINITY, ctx_sum = 0;
    for (int i = 0; i < e->n_running; i++) {
        engine_req *r = e->running[i];
        if (r->tpot_ms > 0 && r->tpot_ms < tpot_cap) tpot_cap = r->tpot_ms;
        ctx_sum += r->n_tokens;
    }
    double ctx_avg = e->n_running ? ctx_sum / e->n_running : 0;
    int seats = 0;
    while (e->n_running + seats < e->cfg.max_seqs &&
           (e->n_running == 0 || pol_decode_fits(&e->cost, e->n_running + seats + 1, ctx_avg, tpot_cap)))
        seats++;
    cost_shape dsh = {.tokens = e->n_running, .rows = e->n_running, .attended = ctx_sum};
    double dec_step = cost_predict(&e->cost, &dsh);
    /* the prefill rate to expect: this step's budget (which may spend the decodes'
     * accumulated slack), then the steady budget once the slack is spent (steps held to
     * the tightest TPOT); when that leaves nothing, the rest waits for the first running
     * request to end and then runs at the full budget */
    int steady = pol_prefill_budget(&e->cost, n_dec, dec_att, tpot_cap * POL_STEP_MARGIN, room);
    for (int i = 0; i < e->n_running; i++) {
        engine_req *r = e->running[i];
        int left = r->max_tokens - (r->n_tokens - r->n_prompt) +
                   (r->n_tokens - 1 - r->n_computed) / (steady > 0 ? steady : ENGINE_MIN_CHUNK);
        e->release[i] = (left > 0 ? left : 1) * dec_step;
    }
    qsort(e->release, (size_t)e->n_running, sizeof *e->release, cmp_double);
    pol_rate pr = {.now_tokens = budget, .steady_tokens = steady};
    if (steady < 1) {
        pr.steady_tokens = room > 0 ? room : 1;
        pr.wait_ms = e->n_running ? e->release[0] : 0;
    }
    cost_shape sh = {.tokens = n_dec + budget, .rows = n_dec + 1, .attended = dec_att};
    pr.now_step_ms = cost_predict(&e->cost, &sh);
    sh.tokens = n_dec + pr.steady_tokens;
    pr.steady_step_ms = cost_predict(&e->cost, &sh);
    int ahead = 0, n_new = 0;
    bool demoted = false;
    for (int c = 0; c < n_cand; c++) {
        pol_cand *pc = &e->cand[c];
        engine_req *r = e->cand_req[pc->idx];
        bool started = pc->idx < n_started;
        if (pc->best_effort) {
            if (!r->judged) req_accept(r);
            continue;
        }
        double eta = pol_prefill_eta_ms(&pr, ahead + pc->pending);
        if (!started) { /* waiting: it needs a seat first */
            double seat = n_new >= seats ? pol_seat_wait_ms(e->release, e->n_running, n_new - seats) : 0;
            double own = seat + pol_prefill_eta_ms(&pr, pc->pending);
            if (own > eta) eta = own;
        }
        eta = now + eta * POL_TTFT_MARGIN;
        /* first in line on an idle engine: nothing is in its way, so it is served (which
         * also corrects a cost model that may be wrong) */
        bool alone = ahead == 0 && e->n_running == 0;
        if (!alone && isfinite(pc->deadline_ms) && eta > pc->deadline_ms) {
            sw_debug("slo: late by %.0f ms: pending %d, ahead %d, %d tokens now (%.1f ms), then %d per %.1f ms step "
                     "after %.0f ms, seats %d (new #%d), running %d (%d decoding), release[0] %.0f ms",
                     eta - pc->deadline_ms, pc->pending, ahead, pr.now_tokens, pr.now_step_ms, pr.steady_tokens,
                     pr.steady_step_ms, pr.wait_ms, seats, n_new, e->n_running, n_dec,
                     e->n_running ? e->release[0] : 0.0);
            if (!r->judged && e->cfg.slo_reject) {
                char msg[200];
                snprintf(msg, sizeof msg,
                         "slo: predicted time to first token %.0f ms (with a 20%% margin) exceeds the objective of %g ms "
                         "(%d prompt tokens to compute ahead of it)",
                         eta - r->timing.t_submit_ms, r->ttft_ms, ahead);
                e->cand_req[pc->idx] = NULL; /* gone */
                e->n_rejected++;
                req_end(e, r, ENGINE_FINISH_REJECTED, msg);
                continue;
            }
            r->best_effort = pc->best_effort = true;
            e->n_best_effort++;
            demoted = true;
            if (!r->judged) req_accept(r);
            continue;
        }
        if (!r->judged) req_accept(r);
        ahead += pc->pending;
        n_new += !started;
    }
    if (demoted) pol_order(e->cand, n_cand, e->cfg.short_prompt);
    /* d. budget to candidates in order */
    int admitted_any_prefill = 0;
    for (int c = 0; c < n_cand && !preempted; c++) {
        engine_req *r = e->cand_req[e->cand[c].idx];
        if (!r) continue;
        if (e->cand[c].idx < n_started) {
            /* a partially prefilled request: a chunk, never less than ENGINE_MIN_CHUNK */
            int floor = budget > ENGINE_MIN_CHUNK ? budget : ENGINE_MIN_CHUNK;
            int want = r->n_tokens - r->n_computed;
            if (want > floor) want = floor;
            if (want > room) want = room;
            if (want < 1) continue;
            int fit = (r->kv.n_blocks + kv_n_available(e->kv)) * kv_block_size(e->kv) - r->n_computed;
            if (want > fit && fit > 0) want = fit;
            if (!kv_can_grow(e->kv, &r->kv, r->n_computed + want)) continue;
            kv_grow(e->kv, &r->kv, r->n_computed + want);
            sched_add(e, r, want);
            room -= want;
            budget = budget > want ? budget - want : 0;
            admitted_any_prefill++;
            continue;
        }
        if (budget < 1 || e->n_running >= e->cfg.max_seqs) continue;
        double cap = r->tpot_ms > 0 && r->tpot_ms < tpot_cap ? r->tpot_ms : tpot_cap;
        double ctx = (ctx_sum + r->n_tokens) / (e->n_running + 1);
        if (e->n_running > 0 && !pol_decode_fits(&e->cost, e->n_running + 1, ctx, cap)) continue;
        int chunk = admit_waiting(e, r, budget);
        if (chunk == 0) continue;
        budget -= chunk;
        room -= chunk;
        tpot_cap = cap;
        ctx_sum += r->n_tokens;
        admitted_any_prefill++;
    }
    /* Nothing could run although requests are held (every prefill blocked on KV): make
     * room the fcfs way, by preempting the newest. */
    if (e->n_sched == 0 && e->n_running > 0 && n_started > 0 && !admitted_any_prefill && !preempted) preempt_newest(e);
}

/* Applies logit_bias and the grammar mask to r's logits row; false when the mask allows
 * no token at all (or cannot be computed). */
static bool constrain_row(const engine *e, engine_req *r, float *row) {
    for (int j = 0; j < r->n_bias; j++) row[r->bias_ids[j]] += r->bias[j];
    if (!r->gm) return true;
    sw_err err;
    if (gram_matcher_fill_mask(r->gm, r->gmask, &err) != SW_OK) {
        sw_warn("engine: %s", err.msg);
        return false;
    }
    uint32_t any = 0;
    int nw = e->n_vocab / 32;
    for (int w = 0; w < nw; w++) {
        uint32_t m = r->gmask[w];
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
    for (int id = nw * 32; id < e->n_vocab; id++) {
        bool ok = gram_mask_test(r->gmask, id);
        any |= ok;
        if (!ok) row[id] = -INFINITY;
    }
    return any != 0;
}

static bool is_stop(const engine *e, const engine_req *r, int32_t id) {
    if (!r->ignore_eos && e->t && tok_is_eog(e->t, id)) return true;
    for (int i = 0; i < r->n_stop_ids; i++)
        if (r->stop_ids[i] == id) return true;
    return false;
}

/* Steps 3-5. */
static void sched_run(engine *e) {
    int n = 0;
    double now = sw_now_ms();
    e->shape = (cost_shape){0};
    for (int k = 0; k < e->n_sched; k++) {
        engine_req *r = e->sched[k];
        int c = e->sched_n[k];
        bool last = r->n_computed + c == r->n_tokens;
        for (int j = 0; j < c; j++, n++) {
            e->b_tok[n] = r->tokens[r->n_computed + j];
            e->b_pos[n] = r->n_computed + j;
            e->b_seq[n] = k;
            e->b_logits[n] = last && j == c - 1;
            e->shape.attended += r->n_computed + j + 1;
        }
        e->shape.rows += last;
        int pre = r->n_prompt - r->n_computed;
        pre = pre < 0 ? 0 : pre > c ? c : pre;
        pol_fair_charge(&e->fair, r->tenant, pre, c - pre);
        e->b_tables[k] = r->kv.blocks;
        if (!r->scheduled_once) {
            r->scheduled_once = true;
            pthread_mutex_lock(&r->mu);
            r->timing.t_first_sched_ms = now;
            pthread_mutex_unlock(&r->mu);
        }
    }
    e->shape.tokens = n;
    model_batch b = {.n_tokens = n, .tokens = e->b_tok, .pos = e->b_pos, .seq = e->b_seq,
                     .logits = e->b_logits, .n_seqs = e->n_sched, .block_tables = e->b_tables};
    sw_err err = {0};
    int rc = model_forward(e->m, e->ws, kv_pool_store(e->kv), &b, e->logits, &err);
    if (rc != SW_OK) {
        sw_error("engine: forward failed: %s", err.msg);
        for (int k = 0; k < e->n_sched; k++) req_end(e, e->sched[k], ENGINE_FINISH_ERROR, err.msg);
        return;
    }
    /* advance every scheduled request; those at the end of their known tokens own the
     * next logits row, in schedule order */
    int n_rows = 0;
    for (int k = 0; k < e->n_sched; k++) {
        engine_req *r = e->sched[k];
        int start = r->n_computed;
        r->n_computed += e->sched_n[k];
        kv_commit(e->kv, &r->kv, r->tokens, r->n_computed);
        if (start < r->n_prompt)
            e->prompt_tokens += (uint64_t)((r->n_computed < r->n_prompt ? r->n_computed : r->n_prompt) - start);
        if (r->n_computed == r->n_tokens) e->sched[n_rows++] = r; /* mid-prefill: no logits row */
    }
    /* sample the rows in parallel (each request has its own sampler; a row with logprobs
     * takes a pass of expf over the vocabulary), then deliver in order */
#pragma omp parallel for schedule(dynamic, 1) if (n_rows >= 4)
    for (int i = 0; i < n_rows; i++) {
        engine_req *r = e->sched[i];
        engine_token *tk = &e->toks[i];
        float *row = e->logits + (size_t)i * (size_t)e->n_vocab;
        memset(tk, 0, sizeof *tk);
        if ((r->gm || r->n_bias) && !constrain_row(e, r, row)) { tk->id = -1; continue; }
        tk->id = sampler_sample(r->smp, row, &tk->logprob, tk->top_ids, tk->top_logprobs);
        tk->n_top = r->n_logprobs;
        sampler_accept(r->smp, tk->id, false);
        if (r->gm && !gram_matcher_accept_token(r->gm, tk->id)) tk->id = -1;
    }
    for (int i = 0; i < n_rows; i++) {
        engine_req *r = e->sched[i];
        const engine_token *tk = &e->toks[i];
        if (tk->id < 0) { /* the grammar allows no token: done if it accepts the text so far */
            bool acc = r->gm && gram_matcher_is_accepting(r->gm);
            req_end(e, r, acc ? ENGINE_FINISH_STOP : ENGINE_FINISH_ERROR, acc ? NULL : "grammar: no token can continue the output");
            continue;
        }
        e->generation_tokens++;
        if (is_stop(e, r, tk->id)) { req_end(e, r, ENGINE_FINISH_STOP, NULL); continue; }
        r->tokens[r->n_tokens++] = tk->id;
        int gen = r->n_tokens - r->n_prompt;
        req_publish(r, tk, ENGINE_FINISH_NONE, NULL);
        /* the next step would compute position n_tokens-1: it must be < ctx_cap */
        if (gen >= r->max_tokens || r->n_tokens > e->ctx_cap) req_end(e, r, ENGINE_FINISH_LENGTH, NULL);
    }
}

/* Step 1: ends cancelled requests and those past a deadline (their own timeout; the
 * queue timeout for one never scheduled), running or waiting. Returns true if r ended. */
static bool drop_if_over(engine *e, engine_req *r, double now) {
    char msg[160];
    if (atomic_load(&r->cancelled)) {
        req_end(e, r, ENGINE_FINISH_CANCELLED, NULL);
        return true;
    }
    if (now >= r->t_end_ms) {
        snprintf(msg, sizeof msg, "request timeout: %.0f ms after submit (%s)", now - r->timing.t_submit_ms,
                 r->scheduled_once ? "while running" : "still queued");
        req_end(e, r, ENGINE_FINISH_TIMEOUT, msg);
        return true;
    }
    if (!r->scheduled_once && e->cfg.queue_timeout_ms > 0 && now - r->timing.t_submit_ms >= e->cfg.queue_timeout_ms) {
        snprintf(msg, sizeof msg, "queue timeout: waited %.0f ms for a place in the batch (limit %.0f ms)",
                 now - r->timing.t_submit_ms, e->cfg.queue_timeout_ms);
        req_end(e, r, ENGINE_FINISH_QUEUE_TIMEOUT, msg);
        return true;
    }
    return false;
}

static void sched_step(engine *e) {
    double t0 = sw_now_ms();
    for (int i = e->n_running - 1; i >= 0; i--) drop_if_over(e, e->running[i], t0);
    for (engine_req *r = e->wait_head, *nx; r; r = nx) {
        nx = r->next;
        drop_if_over(e, r, t0);
    }
    if (e->cfg.policy == ENGINE_POLICY_SLO) sched_plan_slo(e);
    else sched_plan(e);
    if (e->n_sched > 0) {
        double t1 = sw_now_ms();
        sched_run(e);
        double t2 = sw_now_ms();
        cost_observe(&e->cost, &e->shape, t2 - t1);
        e->n_steps++;
        e->last_step_ms = t2 - t0;
    }
}

/* Copies the engine thread's counters into the shared snapshot (under e->mu). */
static void stats_publish(engine *e) {
    kv_stats ks;
    kv_get_stats(e->kv, &ks);
    engine_stats *s = &e->stats;
    s->n_running = e->n_running;
    s->n_waiting = e->n_waiting;
    s->kv_blocks_total = ks.n_blocks;
    s->kv_blocks_used = ks.n_used;
    s->prefix_queries = ks.prefix_queries;
    s->prefix_hits = ks.prefix_hits;
    s->n_preemptions = e->n_preemptions;
    s->prompt_tokens = e->prompt_tokens;
    s->generation_tokens = e->generation_tokens;
    s->n_steps = e->n_steps;
    s->last_step_ms = e->last_step_ms;
    s->last_step_pred_ms = e->cost.last_pred_ms;
    s->last_step_fwd_ms = e->cost.last_actual_ms;
    s->step_pred_err = e->cost.err_mean;
    for (int j = 0; j < COST_NF; j++) s->cost_theta[j] = e->cost.theta[j];
    s->n_slo_rejected = e->n_rejected;
    s->n_slo_best_effort = e->n_best_effort;
}

static void *engine_main(void *arg) {
    engine *e = arg;
    omp_set_num_threads(e->cfg.n_threads > 0 ? e->cfg.n_threads : sw_n_threads());
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (e->inbox_head) {
            engine_req *r = e->inbox_head;
            e->inbox_head = r->next;
            r->next = NULL;
            r->arrival = e->n_arrivals++;
            r->tenant = pol_fair_slot(&e->fair, r->user);
            pol_fair_join(&e->fair, r->tenant);
            wait_enqueue(e, r);
        }
        e->inbox_tail = NULL;
        e->n_inbox = 0;
        stats_publish(e);
        if (e->stop) break;
        if (e->n_running == 0 && e->n_waiting == 0) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        sched_step(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    while (e->n_running > 0) req_end(e, e->running[e->n_running - 1], ENGINE_FINISH_CANCELLED, NULL);
    while (e->wait_head) req_end(e, e->wait_head, ENGINE_FINISH_CANCELLED, NULL);
    return NULL;
}

/* ---------------- create / submit / destroy ---------------- */

static void engine_free(engine *e) {
    model_ws_destroy(e->ws);
    kv_pool_destroy(e->kv);
    free(e->running); free(e->sched); free(e->sched_n);
    free(e->b_tok); free(e->b_pos); free(e->b_seq); free(e->b_logits); free(e->b_tables);
    free(e->logits);
    free(e->pdec);
    free(e->toks);
    free(e->release);
    free(e->cand);
    free(e->cand_req);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

int engine_create(model *m, const tok *t, const engine_config *cfg, engine **out, sw_err *err) {
    *out = NULL;
    const model_config *mc = model_get_config(m);
    engine_config c = *cfg;
    if (c.kv_block_size < 1 || c.kv_block_size > 1024)
        return sw_err_set(err, SW_ERR_ARG, "engine: kv block size %d out of range 1..1024", c.kv_block_size);
    if (c.max_batch_tokens < 1 || c.max_batch_tokens > 65536)
        return sw_err_set(err, SW_ERR_ARG, "engine: max_batch_tokens %d out of range 1..65536", c.max_batch_tokens);
    if (c.max_seqs < 1 || c.max_seqs > 4096)
        return sw_err_set(err, SW_ERR_ARG, "engine: max_seqs %d out of range 1..4096", c.max_seqs);
    if (c.max_ctx < 0 || c.kv_tokens < 0 || c.n_threads < 0)
        return sw_err_set(err, SW_ERR_ARG, "engine: negative max_ctx, kv_tokens or n_threads");
    if (c.policy < ENGINE_POLICY_FCFS || c.policy > ENGINE_POLICY_SLO)
        return sw_err_set(err, SW_ERR_ARG, "engine: unknown policy %d", (int)c.policy);
    for (int k = 0; k < 3; k++)
        if (!(c.slo_ttft_ms[k] >= 0 && c.slo_ttft_ms[k] <= 1e9 && c.slo_tpot_ms[k] >= 0 && c.slo_tpot_ms[k] <= 1e9))
            return sw_err_set(err, SW_ERR_ARG, "engine: default SLOs must be in 0..1e9 ms");
    if (!(c.queue_timeout_ms >= 0 && c.queue_timeout_ms <= 1e9))
        return sw_err_set(err, SW_ERR_ARG, "engine: queue timeout must be in 0..1e9 ms");
    if (c.short_prompt < 0)
        return sw_err_set(err, SW_ERR_ARG, "engine: short_prompt must be >= 0 (got %d)", c.short_prompt);
    int rc = model_kv_check_dtype(mc, c.kv_dtype, err); /* e.g. Q8_0 with head_dim % 32 */
    if (rc) return rc;
    int n_blocks = c.kv_mem_bytes > 0 ? kv_blocks_for_bytes(mc, c.kv_dtype, c.kv_block_size, c.kv_mem_bytes)
                                      : (int)(((int64_t)c.kv_tokens + c.kv_block_size - 1) / c.kv_block_size);
    if (n_blocks < 1)
        return sw_err_set(err, SW_ERR_ARG, "engine: KV budget holds no block of %d tokens (%zu bytes per block)",
                          c.kv_block_size, kv_block_bytes(mc, c.kv_dtype, c.kv_block_size));

    engine *e = calloc(1, sizeof *e);
    if (!e) return sw_err_set(err, SW_ERR_NOMEM, "engine: out of memory");
    e->m = m;
    e->t = t;
    e->cfg = c;
    e->n_vocab = mc->n_vocab;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    rc = kv_pool_create(mc, c.kv_dtype, c.kv_block_size, n_blocks, c.prefix_cache, &e->kv, err);
    if (rc != SW_OK) { engine_free(e); return rc; }
    int64_t pool_tokens = (int64_t)n_blocks * c.kv_block_size;
    int64_t ctx = c.max_ctx > 0 ? c.max_ctx : (mc->n_ctx_train > 0 ? mc->n_ctx_train : 4096);
    e->ctx_cap = (int)(ctx < pool_tokens ? ctx : pool_tokens);
    /* the workspace sizes its per-thread scratch from the calling thread's OpenMP
     * thread count: give it the engine thread's */
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(c.n_threads > 0 ? c.n_threads : sw_n_threads());
    rc = model_ws_create(m, c.max_batch_tokens, e->ctx_cap, &e->ws, err);
    omp_set_num_threads(saved_threads);
    if (rc != SW_OK) { engine_free(e); return rc; }
    size_t S = (size_t)c.max_seqs, B = (size_t)c.max_batch_tokens;
    e->running = malloc(S * sizeof *e->running);
    e->sched = malloc(S * sizeof *e->sched);
    e->sched_n = malloc(S * sizeof *e->sched_n);
    e->b_tok = malloc(B * sizeof *e->b_tok);
    e->b_pos = malloc(B * sizeof *e->b_pos);
    e->b_seq = malloc(B * sizeof *e->b_seq);
    e->b_logits = malloc(B);
    e->b_tables = malloc(S * sizeof *e->b_tables);
    e->logits = malloc(S * (size_t)e->n_vocab * sizeof *e->logits);
    e->pdec = malloc(S * sizeof *e->pdec);
    e->toks = malloc(S * sizeof *e->toks);
    e->release = malloc(S * sizeof *e->release);
    if (!e->running || !e->sched || !e->sched_n || !e->b_tok || !e->b_pos || !e->b_seq || !e->b_logits ||
        !e->b_tables || !e->logits || !e->pdec || !e->release || !e->toks) {
        engine_free(e);
        return sw_err_set(err, SW_ERR_NOMEM, "engine: out of memory for batch buffers");
    }
    /* cost model: a guess from the model's size, then (optionally) a start-up profile */
    uint64_t kv_dim = (uint64_t)mc->n_head_kv * (uint64_t)mc->head_dim, d = (uint64_t)mc->n_embd;
    uint64_t lm_head = (uint64_t)mc->n_vocab * d;
    uint64_t params = (uint64_t)mc->n_layer * (2 * d * d + 2 * d * kv_dim + 3 * d * (uint64_t)mc->n_ff) + lm_head;
    double prior[COST_NF];
    cost_prior_guess(model_weight_bytes(m), params, lm_head, mc->n_layer, (int)kv_dim, prior);
    cost_init(&e->cost, prior);
    if (c.calibrate) {
        omp_set_num_threads(c.n_threads > 0 ? c.n_threads : sw_n_threads());
        int n_cal = calib_run(m, e->ws, e->kv, c.max_batch_tokens, c.max_seqs, e->ctx_cap, e->logits, &e->cost);
        omp_set_num_threads(saved_threads);
        sw_info("engine: step-time model from %d profiled steps: %.2f ms + %.3f ms/token + %.3f ms/logits row + "
                "%.4f ms/1k attended positions", n_cal, e->cost.theta[0], e->cost.theta[1], e->cost.theta[2],
                e->cost.theta[3]);
    }
    pol_fair_init(&e->fair, 4.0 * c.max_batch_tokens);
    e->stats.kv_blocks_total = n_blocks;
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        engine_free(e);
        return sw_err_set(err, SW_ERR_NOMEM, "engine: cannot start the engine thread");
    }
    *out = e;
    return SW_OK;
}

void engine_destroy(engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    engine_free(e);
}

static int submit(engine *e, const engine_req_params *p, engine_req **out, sw_err *err, bool *taken) {
    *out = NULL;
    if (!p->prompt || p->n_prompt < 1)
        return sw_err_set(err, SW_ERR_ARG, "empty prompt");
    if (p->max_tokens < 1)
        return sw_err_set(err, SW_ERR_ARG, "max_tokens must be >= 1 (got %d)", p->max_tokens);
    if (!(p->timeout_ms >= 0 && p->timeout_ms <= 1e9))
        return sw_err_set(err, SW_ERR_ARG, "timeout must be in 0..1e9 ms");
    for (int j = 0; j < p->n_bias; j++)
        if (!p->bias_ids || p->bias_ids[j] < 0 || p->bias_ids[j] >= e->n_vocab)
            return sw_err_set(err, SW_ERR_ARG, "logit_bias: token id out of range");
    if (p->n_stop_ids < 0 || p->n_stop_ids > ENGINE_MAX_STOP_IDS || (p->n_stop_ids > 0 && !p->stop_ids))
        return sw_err_set(err, SW_ERR_ARG, "stop ids: count %d out of range 0..%d", p->n_stop_ids, ENGINE_MAX_STOP_IDS);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= e->n_vocab)
            return sw_err_set(err, SW_ERR_ARG, "prompt token %d at index %d is outside the vocabulary (0..%d)",
                              p->prompt[i], i, e->n_vocab - 1);
    int64_t pool_tokens = (int64_t)kv_n_blocks(e->kv) * kv_block_size(e->kv);
    if (p->n_prompt > e->ctx_cap) {
        if (e->ctx_cap == pool_tokens)
            return sw_err_set(err, SW_ERR_RANGE, "prompt of %d tokens cannot fit in the whole KV pool (%lld tokens)",
                              p->n_prompt, (long long)pool_tokens);
        return sw_err_set(err, SW_ERR_RANGE, "prompt of %d tokens exceeds the context length (%d tokens)",
                          p->n_prompt, e->ctx_cap);
    }
    engine_req *r = calloc(1, sizeof *r);
    if (!r) return sw_err_set(err, SW_ERR_NOMEM, "engine: out of memory");
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&r->refs, 2);
    atomic_init(&r->cancelled, false);
    kv_seq_init(&r->kv);
    r->n_prompt = r->n_tokens = p->n_prompt;
    r->max_tokens = p->max_tokens;
    r->ignore_eos = p->ignore_eos;
    r->priority = p->priority;
    int cls = p->priority > 0 ? 2 : p->priority < 0 ? 0 : 1;
    r->ttft_ms = p->slo_ttft_ms > 0 ? p->slo_ttft_ms : e->cfg.slo_ttft_ms[cls];
    r->tpot_ms = p->slo_tpot_ms > 0 ? p->slo_tpot_ms : e->cfg.slo_tpot_ms[cls];
    r->verdict = e->cfg.policy == ENGINE_POLICY_SLO ? ENGINE_VERDICT_PENDING : ENGINE_VERDICT_ACCEPTED;
    r->tenant = -1;
    if (p->user) snprintf(r->user, sizeof r->user, "%s", p->user);
    r->cache_salt = p->cache_salt;
    r->n_logprobs = p->sampling.n_logprobs;
    int64_t cap = (int64_t)p->n_prompt + p->max_tokens;
    if (cap > (int64_t)e->ctx_cap + 1) cap = (int64_t)e->ctx_cap + 1;
    r->cap_tokens = (int)cap;
    r->tokens = malloc((size_t)cap * sizeof *r->tokens);
    r->n_stop_ids = p->n_stop_ids;
    r->stop_ids = p->n_stop_ids ? malloc((size_t)p->n_stop_ids * sizeof *r->stop_ids) : NULL;
    r->gm = p->constraint;
    *taken = true;
    if (p->constraint) { /* mask words for the larger of the model's and the grammar's vocabularies, zeroed:
                          * ids past the tokenizer's (padding rows of the output matrix) stay disallowed */
        int nv = gram_matcher_n_vocab(p->constraint) > e->n_vocab ? gram_matcher_n_vocab(p->constraint) : e->n_vocab;
        r->gmask = calloc((size_t)nv / 32 + 1, sizeof(uint32_t));
    }
    r->n_bias = p->n_bias;
    r->bias_ids = p->n_bias ? malloc((size_t)p->n_bias * sizeof(int32_t)) : NULL;
    r->bias = p->n_bias ? malloc((size_t)p->n_bias * sizeof(float)) : NULL;
    if (!r->tokens || (p->n_stop_ids && !r->stop_ids) || (r->gm && !r->gmask) || (p->n_bias && (!r->bias_ids || !r->bias))) {
        atomic_store(&r->refs, 1);
        req_unref(r);
        return sw_err_set(err, SW_ERR_NOMEM, "engine: out of memory");
    }
    int rc = sampler_create(&p->sampling, e->n_vocab, &r->smp);
    if (rc != SW_OK) {
        atomic_store(&r->refs, 1);
        req_unref(r);
        return sw_err_set(err, rc, rc == SW_ERR_ARG ? "bad sampling parameters" : "engine: out of memory");
    }
    memcpy(r->tokens, p->prompt, (size_t)p->n_prompt * sizeof *r->tokens);
    if (p->n_stop_ids) memcpy(r->stop_ids, p->stop_ids, (size_t)p->n_stop_ids * sizeof *r->stop_ids);
    if (p->n_bias) {
        memcpy(r->bias_ids, p->bias_ids, (size_t)p->n_bias * sizeof(int32_t));
        memcpy(r->bias, p->bias, (size_t)p->n_bias * sizeof(float));
    }
    for (int i = 0; i < p->n_prompt; i++) sampler_accept(r->smp, p->prompt[i], true);
    r->timing.t_submit_ms = sw_now_ms();
    r->deadline_ms = r->ttft_ms > 0 ? r->timing.t_submit_ms + r->ttft_ms : INFINITY;
    r->t_end_ms = p->timeout_ms > 0 ? r->timing.t_submit_ms + p->timeout_ms : INFINITY;
    r->timing.n_prompt = p->n_prompt;

    pthread_mutex_lock(&e->mu);
    if (e->inbox_tail) e->inbox_tail->next = r; else e->inbox_head = r;
    e->inbox_tail = r;
    e->n_inbox++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *out = r;
    return SW_OK;
}

int engine_submit(engine *e, const engine_req_params *p, engine_req **out, sw_err *err) {
    bool taken = false;
    int rc = submit(e, p, out, err, &taken);
    if (!taken) gram_matcher_destroy(p->constraint);
    return rc;
}

void engine_get_stats(engine *e, engine_stats *out) {
    pthread_mutex_lock(&e->mu);
    *out = e->stats;
    out->n_waiting += e->n_inbox;
    pthread_mutex_unlock(&e->mu);
}
