/* sched.h — the engine's scheduler: the sequences it holds (waiting and running), the
 * KV block pool they share and one entry point, sched_plan, that decides one step of
 * continuous batching for every policy (fcfs, priority, slo). No threads, no locks, no
 * clock of its own: the caller passes the time in, so a test drives it with a simulated
 * clock and no model (tests/unit/engine_sched.c). Prefix `sched_`.
 *
 * A sequence's life (sched_status): WAITING in the queue -> PREFILLING once admitted
 * (its prompt is computed in chunks) -> DECODING once it has generated a token and has
 * exactly one token left to compute -> FINISHED / CANCELLED / REJECTED (sched_remove).
 * A preempted sequence goes from PREFILLING/DECODING back to WAITING (front of the
 * queue, its blocks released, recomputed later).
 *
 * One step, as the engine runs it:
 *     sched_plan(s, now, &plan)   which sequences compute how many tokens (KV grown,
 *                                 admissions, preemptions, slo verdicts)
 *     runner_step(...)            forward + sampling of those (runner.h)
 *     sched_commit(s, &plan)      their K/V are written: n_computed advances
 *     sched_append(s, seq, id)    a sampled token joins a sequence
 *     sched_remove(s, seq, st)    a sequence ends
 *
 * The rules (written once here):
 *  - Token budget: max_batch_tokens per step shared by decodes and prefill chunks; at
 *    most max_seqs running sequences.
 *  - KV fit: a chunk shrinks to the blocks the pool has before anyone is preempted; a
 *    running sequence that still cannot grow preempts the newest running one (its
 *    full blocks stay in the prefix cache), itself last; under slo a decode preempts the
 *    newest prefill first. No admission in a step that preempted (it would hand the
 *    freed blocks straight back), nor (slo) in the step after one that ran nothing.
 *  - fcfs/priority: running sequences in admission order take min(pending, budget); then
 *    waiting ones are admitted from the head of the queue (fcfs: arrival order;
 *    priority: larger first) with their cached prefix and a chunk of what is left
 *    (Dynamic SplitFuse), halved until the KV blocks allow.
 *  - slo: see sched_plan_slo in sched.c and policy.h (decodes first, a prefill budget
 *    that keeps the decodes within their TPOT, candidates ordered and judged against
 *    their TTFT deadline). */
#ifndef SW_ENGINE_SCHED_H
#define SW_ENGINE_SCHED_H
#include "base/base.h"
#include "engine/cost.h"
#include "engine/engine.h"
#include "engine/policy.h"
#include "grammar/grammar.h"
#include "kv/kv.h"
#include "sampler/sampler.h"

typedef enum sched_status {
    SCHED_WAITING,     /* in the waiting queue (new or preempted) */
    SCHED_PREFILLING,  /* running, prompt (or recomputation) not done */
    SCHED_DECODING,    /* running, one token to compute per step */
    SCHED_FINISHED,    /* ended: stop, length, error, timeout */
    SCHED_CANCELLED,
    SCHED_REJECTED,    /* slo: refused at admission */
} sched_status;

/* One sequence (a request as the scheduler and the runner see it). The owner fills the
 * fields marked "fixed" and the tokens before sched_add; the scheduler owns the rest. */
typedef struct sched_seq {
    /* fixed */
    int n_prompt;
    int max_tokens;
    int priority;
    double ttft_ms, tpot_ms;  /* objectives; 0 = none */
    double t_submit_ms;
    double deadline_ms;       /* t_submit + ttft_ms; INFINITY without a TTFT objective */
    uint64_t cache_salt;      /* prefix-cache namespace (kv.h) */
    /* how the runner samples its rows (the scheduler never reads these) */
    sampler *smp;
    gram_matcher *gm;         /* structured output (NULL = none) */
    uint32_t *gmask;          /* (n_vocab/32 + 1 words) gm's mask */
    int32_t *bias_ids; float *bias; int n_bias; /* logit_bias */
    int n_logprobs;

    /* state */
    sched_status status;
    int32_t *tokens;          /* (cap_tokens) prompt ids, then generated ids */
    int cap_tokens;
    int n_tokens;             /* known tokens */
    int n_computed;           /* leading tokens whose K/V are in the pool */
    kv_seq kv;
    bool scheduled_once;      /* set by the owner when a step first includes it */
    double t_first_token_ms;  /* set by the owner when its first token is delivered */
    uint64_t arrival;         /* order of sched_add */
    int tenant;               /* pol_fair slot, -1 = untracked */
    bool best_effort;         /* slo: predicted to miss its TTFT objective; served last */
    bool judged;              /* slo: verdict given */
    struct sched_seq *next, *prev; /* waiting queue links */
} sched_seq;

typedef struct sched_config {
    engine_policy policy;
    int max_batch_tokens;
    int max_seqs;
    int short_prompt;         /* slo: short lane threshold (tokens left to compute) */
    bool slo_reject;          /* slo: refuse instead of demoting to best-effort */
} sched_config;

/* One step's decisions. Arrays live in the scheduler and are valid until the next
 * sched_plan. */
typedef struct sched_item {
    sched_seq *seq;
    int n;                    /* tokens it computes: seq->tokens[n_computed .. n_computed+n) */
} sched_item;
typedef struct sched_reject {
    sched_seq *seq;           /* already removed (status REJECTED); the owner frees it */
    char msg[200];
} sched_reject;
typedef struct sched_step {
    sched_item *items; int n_items;          /* in batch order; sum of n <= max_batch_tokens */
    sched_seq **preempted; int n_preempted;  /* sent back to the queue this step */
    sched_seq **accepted; int n_accepted;    /* slo: verdict ACCEPTED given this step */
    sched_reject *rejected; int n_rejected;  /* slo: refused this step */
} sched_step;

typedef struct sched {
    sched_config cfg;
    kv_pool *kv;              /* borrowed */
    cost_model cost;          /* step-time model (the owner observes steps into it) */
    pol_fair fair;            /* per-tenant virtual token counters */
    sched_seq **running;      /* (max_seqs) in admission order */
    int n_running;
    sched_seq *wait_head, *wait_tail;
    int n_waiting;
    uint64_t n_arrivals, n_preemptions, n_rejected, n_best_effort, prompt_tokens;
    bool stalled;             /* slo: the last plan ran nothing and preempted; no admission now */
    /* scratch of one plan */
    sched_item *items;        /* (max_seqs) */
    sched_seq **preempted;    /* (max_seqs) */
    pol_decode *pdec;         /* (max_seqs) slo: the step's decodes */
    double *release;          /* (max_seqs) slo: predicted ms until each running one ends */
    pol_cand *cand;           /* (cand_cap) slo: the step's prefill candidates */
    sched_seq **cand_seq;     /* (cand_cap) the sequence of candidate idx */
    sched_seq **accepted;     /* (cand_cap) */
    sched_reject *rejected;   /* (cand_cap) */
    int cand_cap;
} sched;

/* kv is borrowed (must outlive s); the cost model starts from prior. */
int sched_create(const sched_config *c, kv_pool *kv, const double prior[COST_NF], sched **out, sw_err *err);
void sched_destroy(sched *s); /* the sequences are the owner's: remove them first */

/* Queues a new sequence (status WAITING); user names its tenant for fairness (may be NULL). */
void sched_add(sched *s, sched_seq *seq, const char *user);
/* Plans one step at time now (ms, the clock of the seqs' t_submit/deadline). Returns
 * SW_OK, or SW_ERR_NOMEM when the slo scratch cannot grow (the plan then holds only the
 * decodes; it is still valid). */
int sched_plan(sched *s, double now, sched_step *plan);
/* The plan's tokens were computed: advances n_computed, registers full blocks in the
 * prefix cache, updates the status. */
void sched_commit(sched *s, const sched_step *plan);
/* Appends a sampled token to a sequence that owns a logits row (n_computed == n_tokens,
 * n_tokens < cap_tokens); it becomes DECODING. */
void sched_append(sched *s, sched_seq *seq, int32_t id);
/* Ends a sequence the scheduler holds (waiting or running): its blocks go back, it
 * leaves the queues; status becomes st (FINISHED, CANCELLED or REJECTED). */
void sched_remove(sched *s, sched_seq *seq, sched_status st);

#endif
