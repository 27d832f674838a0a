/* engine.c — the serving engine: request handles, the engine thread and its step loop.
 * The step's decisions are the scheduler's (sched.c), the forward pass and sampling the
 * runner's (runner.c); this file holds the threads, the inbox and the outboxes, and
 * publishes tokens, verdicts and stats.
 *
 * Threads and locks. Submitters push requests onto the inbox under e->mu and signal
 * e->cv; the engine thread moves them into the scheduler, which only it touches (with
 * the KV pool and the runner). Each request has its own mutex and condvar guarding what
 * the caller reads: the outbox of tokens, the finish state, the timing. Lock order:
 * never hold e->mu and a request's mu together. Cancellation is an atomic flag the
 * engine reads at the start of every step (no wake-up is needed: the engine only sleeps
 * when it has no requests at all). A handle is reference counted (caller + engine) and
 * freed by whichever lets go last.
 *
 * One step (engine_step):
 *  1. end cancelled requests and those past a timeout (their blocks go back now);
 *  2. sched_plan: which sequences compute how many tokens (admissions, preemptions and
 *     slo verdicts included; see sched.h); tell the callers of preemptions and verdicts;
 *  3. runner_step: one ragged model_batch, one model_forward, sampling of the rows that
 *     reached the end of their known tokens; sched_commit;
 *  4. deliver tokens to outboxes, wake pollers, call notify hooks; finish on
 *     end-of-generation / stop id (not delivered), max_tokens or context full. */
#include "engine/engine.h"
#include "engine/cost.h"
#include "engine/runner.h"
#include "engine/sched.h"
#include "kv/kv.h"
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ENGINE_MAX_STOP_IDS 1024
#define ENGINE_MAX_USER 128      /* bytes of `user` kept for fairness */

struct engine_req {
    sched_seq seq;         /* the scheduler's and the runner's view (engine thread only) */
    /* fixed at submit */
    bool ignore_eos;
    int32_t *stop_ids;     /* (n_stop_ids) */
    int n_stop_ids;
    double t_end_ms;       /* t_submit + timeout_ms; INFINITY without a timeout */
    char user[ENGINE_MAX_USER]; /* tenant ("" = none) */
    struct engine_req *inbox_next;

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
    const tok *t;          /* borrowed */
    engine_config cfg;
    int n_vocab;
    int ctx_cap;           /* most tokens (positions) one sequence may hold */
    kv_pool *kv;
    sched *s;              /* waiting/running sequences, step plans (engine thread only) */
    runner *run;           /* batch buffers, logits, model workspace (engine thread only) */
    pthread_t thread;

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    engine_req *inbox_head, *inbox_tail;
    int n_inbox;
    bool started;          /* the engine thread is past its start-up profile */
    bool stop;
    engine_stats stats;

    /* engine thread only */
    uint64_t generation_tokens, n_steps;
    double last_step_ms;
};

static engine_req *req_of(sched_seq *q) { return (engine_req *)((char *)q - offsetof(engine_req, seq)); }

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
    sampler_destroy(r->seq.smp);
    kv_seq_destroy(&r->seq.kv);
    free(r->seq.tokens);
    free(r->stop_ids);
    gram_matcher_destroy(r->seq.gm);
    free(r->seq.gmask);
    free(r->seq.bias_ids);
    free(r->seq.bias);
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

/* ---------------- the step (engine thread) ---------------- */

/* Ends a request the engine holds (running or waiting): blocks back, caller told,
 * engine's reference dropped. */
static void req_end(engine *e, engine_req *r, engine_finish fin, const char *error) {
    sched_remove(e->s, &r->seq, fin == ENGINE_FINISH_CANCELLED ? SCHED_CANCELLED
                                : fin == ENGINE_FINISH_REJECTED ? SCHED_REJECTED : SCHED_FINISHED);
    req_publish(r, NULL, fin, error);
    req_unref(r);
}

/* Gives r its admission verdict (slo); wakes a caller waiting in engine_req_verdict. */
static void req_accept(engine_req *r) {
    pthread_mutex_lock(&r->mu);
    r->verdict = ENGINE_VERDICT_ACCEPTED;
    pthread_cond_broadcast(&r->cv);
    if (r->notify) r->notify(r->notify_arg);
    pthread_mutex_unlock(&r->mu);
}

static bool is_stop(const engine *e, const engine_req *r, int32_t id) {
    if (!r->ignore_eos && e->t && tok_is_eog(e->t, id)) return true;
    for (int i = 0; i < r->n_stop_ids; i++)
        if (r->stop_ids[i] == id) return true;
    return false;
}

/* Step 1: ends cancelled requests and those past a deadline (their own timeout; the
 * queue timeout for one never scheduled), running or waiting. */
static void drop_if_over(engine *e, engine_req *r, double now) {
    char msg[160];
    if (atomic_load(&r->cancelled)) {
        req_end(e, r, ENGINE_FINISH_CANCELLED, NULL);
    } else if (now >= r->t_end_ms) {
        snprintf(msg, sizeof msg, "request timeout: %.0f ms after submit (%s)", now - r->timing.t_submit_ms,
                 r->seq.scheduled_once ? "while running" : "still queued");
        req_end(e, r, ENGINE_FINISH_TIMEOUT, msg);
    } else if (!r->seq.scheduled_once && e->cfg.queue_timeout_ms > 0 &&
               now - r->timing.t_submit_ms >= e->cfg.queue_timeout_ms) {
        snprintf(msg, sizeof msg, "queue timeout: waited %.0f ms for a place in the batch (limit %.0f ms)",
                 now - r->timing.t_submit_ms, e->cfg.queue_timeout_ms);
        req_end(e, r, ENGINE_FINISH_QUEUE_TIMEOUT, msg);
    }
}

/* Step 2's news for the callers: preemptions, slo verdicts. */
static void publish_plan(engine *e, const sched_step *p) {
    for (int i = 0; i < p->n_preempted; i++) {
        engine_req *r = req_of(p->preempted[i]);
        pthread_mutex_lock(&r->mu);
        r->timing.n_preempted++;
        pthread_mutex_unlock(&r->mu);
    }
    for (int i = 0; i < p->n_accepted; i++) req_accept(req_of(p->accepted[i]));
    for (int i = 0; i < p->n_rejected; i++) { /* already out of the scheduler */
        engine_req *r = req_of(p->rejected[i].seq);
        req_publish(r, NULL, ENGINE_FINISH_REJECTED, p->rejected[i].msg);
        req_unref(r);
    }
}

/* Step 4: the sampled tokens to their requests. */
static void deliver(engine *e, const runner_out *o) {
    for (int i = 0; i < o->n_rows; i++) {
        engine_req *r = req_of(o->seqs[i]);
        const engine_token *tk = &o->toks[i];
        if (tk->id < 0) { /* the grammar allows no token: done if it accepts the text so far */
            bool acc = r->seq.gm && gram_matcher_is_accepting(r->seq.gm);
            req_end(e, r, acc ? ENGINE_FINISH_STOP : ENGINE_FINISH_ERROR, acc ? NULL : "grammar: no token can continue the output");
            continue;
        }
        e->generation_tokens++;
        if (is_stop(e, r, tk->id)) { req_end(e, r, ENGINE_FINISH_STOP, NULL); continue; }
        sched_append(e->s, &r->seq, tk->id);
        req_publish(r, tk, ENGINE_FINISH_NONE, NULL);
        r->seq.t_first_token_ms = r->timing.t_first_token_ms; /* the engine thread is its only writer */
        /* the next step would compute position n_tokens-1: it must be < ctx_cap */
        if (r->seq.n_tokens - r->seq.n_prompt >= r->seq.max_tokens || r->seq.n_tokens > e->ctx_cap)
            req_end(e, r, ENGINE_FINISH_LENGTH, NULL);
    }
}

static void engine_step(engine *e) {
    sched *s = e->s;
    double t0 = sw_now_ms();
    for (int i = s->n_running - 1; i >= 0; i--) drop_if_over(e, req_of(s->running[i]), t0);
    for (sched_seq *q = s->wait_head, *nx; q; q = nx) {
        nx = q->next;
        drop_if_over(e, req_of(q), t0);
    }
    sched_step plan;
    if (sched_plan(s, sw_now_ms(), &plan) != SW_OK) sw_warn("engine: out of memory for the slo plan");
    publish_plan(e, &plan);
    if (plan.n_items == 0) return;
    double t1 = sw_now_ms();
    for (int k = 0; k < plan.n_items; k++) {
        engine_req *r = req_of(plan.items[k].seq);
        if (r->seq.scheduled_once) continue;
        r->seq.scheduled_once = true;
        pthread_mutex_lock(&r->mu);
        r->timing.t_first_sched_ms = t1;
        r->timing.n_cached = r->seq.kv.n_cached;
        pthread_mutex_unlock(&r->mu);
    }
    runner_out out;
    sw_err err = {0};
    if (runner_step(e->run, &plan, &out, &err) != SW_OK) {
        sw_error("engine: forward failed: %s", err.msg);
        for (int k = 0; k < plan.n_items; k++) req_end(e, req_of(plan.items[k].seq), ENGINE_FINISH_ERROR, err.msg);
    } else {
        sched_commit(s, &plan);
        deliver(e, &out);
    }
    double t2 = sw_now_ms();
    cost_observe(&s->cost, &out.shape, t2 - t1);
    e->n_steps++;
    e->last_step_ms = t2 - t0;
}

/* Copies the engine thread's counters into the shared snapshot (under e->mu). */
static void stats_publish(engine *e) {
    kv_stats ks;
    kv_get_stats(e->kv, &ks);
    const sched *s = e->s;
    engine_stats *st = &e->stats;
    st->n_running = s->n_running;
    st->n_waiting = s->n_waiting;
    st->kv_blocks_total = ks.n_blocks;
    st->kv_blocks_used = ks.n_used;
    st->prefix_queries = ks.prefix_queries;
    st->prefix_hits = ks.prefix_hits;
    st->n_preemptions = s->n_preemptions;
    st->prompt_tokens = s->prompt_tokens;
    st->generation_tokens = e->generation_tokens;
    st->n_steps = e->n_steps;
    st->last_step_ms = e->last_step_ms;
    st->last_step_pred_ms = s->cost.last_pred_ms;
    st->last_step_fwd_ms = s->cost.last_actual_ms;
    st->step_pred_err = s->cost.err_mean;
    for (int j = 0; j < COST_NF; j++) st->cost_theta[j] = s->cost.theta[j];
    st->n_slo_rejected = s->n_rejected;
    st->n_slo_best_effort = s->n_best_effort;
}

/* The start-up profile of the step-time model, on the engine thread: every forward pass
 * then runs on this one thread's OpenMP team. Run anywhere else, it would leave a second
 * team's idle threads behind, and once libgomp manages more threads than there are cores
 * it stops spinning at barriers (a futex sleep and wake-up each), which cost one sequence
 * ~35% of its decode rate on 2 cores (issue 14's single-sequence tax). */
static void engine_calibrate(engine *e) {
    const double *th = e->s->cost.theta;
    int n_cal = runner_calibrate(e->run, &e->s->cost);
    sw_info("engine: step-time model from %d profiled steps: %.2f ms + %.3f ms/token + %.3f ms/logits row + "
            "%.4f ms/1k attended positions", n_cal, th[0], th[1], th[2], th[3]);
}

static void *engine_main(void *arg) {
    engine *e = arg;
    sched *s = e->s;
    omp_set_num_threads(e->cfg.n_threads > 0 ? e->cfg.n_threads : sw_n_threads());
    if (e->cfg.calibrate) engine_calibrate(e);
    pthread_mutex_lock(&e->mu);
    e->started = true;
    pthread_cond_broadcast(&e->cv); /* engine_create waits for it */
    for (;;) {
        while (e->inbox_head) {
            engine_req *r = e->inbox_head;
            e->inbox_head = r->inbox_next;
            r->inbox_next = NULL;
            sched_add(s, &r->seq, r->user);
        }
        e->inbox_tail = NULL;
        e->n_inbox = 0;
        stats_publish(e);
        if (e->stop) break;
        if (s->n_running == 0 && s->n_waiting == 0) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        engine_step(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    while (s->n_running > 0) req_end(e, req_of(s->running[s->n_running - 1]), ENGINE_FINISH_CANCELLED, NULL);
    while (s->wait_head) req_end(e, req_of(s->wait_head), ENGINE_FINISH_CANCELLED, NULL);
    return NULL;
}

/* ---------------- create / submit / destroy ---------------- */

static void engine_free(engine *e) {
    runner_destroy(e->run);
    sched_destroy(e->s);
    kv_pool_destroy(e->kv);
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
    int n_threads = c.n_threads > 0 ? c.n_threads : sw_n_threads();
    rc = runner_create(m, e->kv, c.max_batch_tokens, c.max_seqs, e->ctx_cap, n_threads, &e->run, err);
    if (rc != SW_OK) { engine_free(e); return rc; }
    /* cost model: a guess from the model's size, then (optionally) a start-up profile */
    uint64_t kv_dim = (uint64_t)mc->n_head_kv * (uint64_t)mc->head_dim, d = (uint64_t)mc->n_embd;
    uint64_t lm_head = (uint64_t)mc->n_vocab * d;
    uint64_t params = (uint64_t)mc->n_layer * (2 * d * d + 2 * d * kv_dim + 3 * d * (uint64_t)mc->n_ff) + lm_head;
    double prior[COST_NF];
    cost_prior_guess(model_weight_bytes(m), params, lm_head, model_kv_bytes_per_token(m, c.kv_dtype), prior);
    sched_config sc = {.policy = c.policy, .max_batch_tokens = c.max_batch_tokens, .max_seqs = c.max_seqs,
                       .short_prompt = c.short_prompt, .slo_reject = c.slo_reject};
    rc = sched_create(&sc, e->kv, prior, &e->s, err);
    if (rc != SW_OK) { engine_free(e); return rc; }
    e->stats.kv_blocks_total = n_blocks;
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        engine_free(e);
        return sw_err_set(err, SW_ERR_NOMEM, "engine: cannot start the engine thread");
    }
    /* the start-up profile (engine_calibrate) runs on the engine thread: wait for it */
    pthread_mutex_lock(&e->mu);
    while (!e->started) pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
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
    kv_seq_init(&r->seq.kv);
    r->seq.n_prompt = r->seq.n_tokens = p->n_prompt;
    r->seq.max_tokens = p->max_tokens;
    r->ignore_eos = p->ignore_eos;
    r->seq.priority = p->priority;
    int cls = p->priority > 0 ? 2 : p->priority < 0 ? 0 : 1;
    r->seq.ttft_ms = p->slo_ttft_ms > 0 ? p->slo_ttft_ms : e->cfg.slo_ttft_ms[cls];
    r->seq.tpot_ms = p->slo_tpot_ms > 0 ? p->slo_tpot_ms : e->cfg.slo_tpot_ms[cls];
    r->verdict = e->cfg.policy == ENGINE_POLICY_SLO ? ENGINE_VERDICT_PENDING : ENGINE_VERDICT_ACCEPTED;
    r->seq.tenant = -1;
    if (p->user) snprintf(r->user, sizeof r->user, "%s", p->user);
    r->seq.cache_salt = p->cache_salt;
    r->seq.n_logprobs = p->sampling.n_logprobs;
    int64_t cap = (int64_t)p->n_prompt + p->max_tokens;
    if (cap > (int64_t)e->ctx_cap + 1) cap = (int64_t)e->ctx_cap + 1;
    r->seq.cap_tokens = (int)cap;
    r->seq.tokens = malloc((size_t)cap * sizeof *r->seq.tokens);
    r->n_stop_ids = p->n_stop_ids;
    r->stop_ids = p->n_stop_ids ? malloc((size_t)p->n_stop_ids * sizeof *r->stop_ids) : NULL;
    r->seq.gm = p->constraint;
    *taken = true;
    if (p->constraint) { /* mask words for the larger of the model's and the grammar's vocabularies, zeroed:
                          * ids past the tokenizer's (padding rows of the output matrix) stay disallowed */
        int nv = gram_matcher_n_vocab(p->constraint) > e->n_vocab ? gram_matcher_n_vocab(p->constraint) : e->n_vocab;
        r->seq.gmask = calloc((size_t)nv / 32 + 1, sizeof(uint32_t));
    }
    r->seq.n_bias = p->n_bias;
    r->seq.bias_ids = p->n_bias ? malloc((size_t)p->n_bias * sizeof(int32_t)) : NULL;
    r->seq.bias = p->n_bias ? malloc((size_t)p->n_bias * sizeof(float)) : NULL;
    if (!r->seq.tokens || (p->n_stop_ids && !r->stop_ids) || (r->seq.gm && !r->seq.gmask) || (p->n_bias && (!r->seq.bias_ids || !r->seq.bias))) {
        atomic_store(&r->refs, 1);
        req_unref(r);
        return sw_err_set(err, SW_ERR_NOMEM, "engine: out of memory");
    }
    int rc = sampler_create(&p->sampling, e->n_vocab, &r->seq.smp);
    if (rc != SW_OK) {
        atomic_store(&r->refs, 1);
        req_unref(r);
        return sw_err_set(err, rc, rc == SW_ERR_ARG ? "bad sampling parameters" : "engine: out of memory");
    }
    memcpy(r->seq.tokens, p->prompt, (size_t)p->n_prompt * sizeof *r->seq.tokens);
    if (p->n_stop_ids) memcpy(r->stop_ids, p->stop_ids, (size_t)p->n_stop_ids * sizeof *r->stop_ids);
    if (p->n_bias) {
        memcpy(r->seq.bias_ids, p->bias_ids, (size_t)p->n_bias * sizeof(int32_t));
        memcpy(r->seq.bias, p->bias, (size_t)p->n_bias * sizeof(float));
    }
    for (int i = 0; i < p->n_prompt; i++) sampler_accept(r->seq.smp, p->prompt[i], true);
    r->timing.t_submit_ms = sw_now_ms();
    r->seq.deadline_ms = r->seq.ttft_ms > 0 ? r->timing.t_submit_ms + r->seq.ttft_ms : INFINITY;
    r->t_end_ms = p->timeout_ms > 0 ? r->timing.t_submit_ms + p->timeout_ms : INFINITY;
    r->seq.t_submit_ms = r->timing.t_submit_ms;
    r->timing.n_prompt = p->n_prompt;

    pthread_mutex_lock(&e->mu);
    if (e->inbox_tail) e->inbox_tail->inbox_next = r; else e->inbox_head = r;
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
