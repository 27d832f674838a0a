/* sched.c — the scheduler (see sched.h): the waiting queue and the running array, the
 * KV-fit, preemption and admission rules, and the step plan of every policy. fcfs and
 * priority share sched_plan_fifo; slo is sched_plan_slo, whose decisions (step limit,
 * budget, order, feasibility) are policy.c's pure functions. */
#include "engine/sched.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* slo: prefill tokens a partially prefilled request gets per step even when the decodes'
 * TPOT limit leaves none (it was admitted; it must progress) */
#define SCHED_MIN_CHUNK 16

int sched_create(const sched_config *c, kv_pool *kv, const double prior[COST_NF], sched **out, sw_err *err) {
    *out = NULL;
    sched *s = calloc(1, sizeof *s);
    if (!s) return sw_err_set(err, SW_ERR_NOMEM, "sched: out of memory");
    s->cfg = *c;
    s->kv = kv;
    cost_init(&s->cost, prior);
    pol_fair_init(&s->fair, 4.0 * c->max_batch_tokens);
    size_t S = (size_t)c->max_seqs;
    s->running = malloc(S * sizeof *s->running);
    s->items = malloc(S * sizeof *s->items);
    s->preempted = malloc(S * sizeof *s->preempted);
    s->pdec = malloc(S * sizeof *s->pdec);
    s->release = malloc(S * sizeof *s->release);
    if (!s->running || !s->items || !s->preempted || !s->pdec || !s->release) {
        sched_destroy(s);
        return sw_err_set(err, SW_ERR_NOMEM, "sched: out of memory");
    }
    *out = s;
    return SW_OK;
}

void sched_destroy(sched *s) {
    if (!s) return;
    free(s->running); free(s->items); free(s->preempted); free(s->pdec); free(s->release);
    free(s->cand); free(s->cand_seq); free(s->accepted); free(s->rejected);
    free(s);
}

/* ---------------- queues ---------------- */

static void wait_unlink(sched *s, sched_seq *q) {
    if (q->prev) q->prev->next = q->next; else s->wait_head = q->next;
    if (q->next) q->next->prev = q->prev; else s->wait_tail = q->prev;
    q->next = q->prev = NULL;
    s->n_waiting--;
}

static void wait_insert_before(sched *s, sched_seq *q, sched_seq *at) {
    q->next = at;
    q->prev = at ? at->prev : s->wait_tail;
    if (q->prev) q->prev->next = q; else s->wait_head = q;
    if (at) at->prev = q; else s->wait_tail = q;
    s->n_waiting++;
    q->status = SCHED_WAITING;
}

/* New sequence: fcfs appends; priority keeps the queue ordered by priority (larger
 * first), slo by TTFT deadline (earliest first, EDF); arrival order among equals.
 * Preempted sequences go to the front regardless (preempt). */
void sched_add(sched *s, sched_seq *q, const char *user) {
    q->arrival = s->n_arrivals++;
    q->tenant = pol_fair_slot(&s->fair, user);
    pol_fair_join(&s->fair, q->tenant);
    sched_seq *at = NULL;
    if (s->cfg.policy == ENGINE_POLICY_PRIORITY)
        for (at = s->wait_head; at && at->priority >= q->priority; at = at->next) {}
    else if (s->cfg.policy == ENGINE_POLICY_SLO)
        for (at = s->wait_head; at && at->deadline_ms <= q->deadline_ms; at = at->next) {}
    wait_insert_before(s, q, at);
}

static bool is_running(const sched_seq *q) { return q->status == SCHED_PREFILLING || q->status == SCHED_DECODING; }

/* Running sequences are decoding when they generated a token and have one left to compute. */
static void set_running_status(sched_seq *q) {
    q->status = q->n_computed == q->n_tokens - 1 && q->n_tokens > q->n_prompt ? SCHED_DECODING : SCHED_PREFILLING;
}

void sched_remove(sched *s, sched_seq *q, sched_status st) {
    if (is_running(q)) {
        int i = 0;
        while (s->running[i] != q) i++;
        memmove(s->running + i, s->running + i + 1, (size_t)(s->n_running - i - 1) * sizeof *s->running);
        s->n_running--;
    } else if (q->status == SCHED_WAITING) {
        wait_unlink(s, q);
    } else {
        return; /* already ended */
    }
    kv_release(s->kv, &q->kv);
    pol_fair_leave(&s->fair, q->tenant);
    q->status = st;
}

void sched_commit(sched *s, const sched_step *plan) {
    for (int k = 0; k < plan->n_items; k++) {
        sched_seq *q = plan->items[k].seq;
        int start = q->n_computed;
        q->n_computed += plan->items[k].n;
        kv_commit(s->kv, &q->kv, q->tokens, q->n_computed);
        if (start < q->n_prompt)
            s->prompt_tokens += (uint64_t)((q->n_computed < q->n_prompt ? q->n_computed : q->n_prompt) - start);
        set_running_status(q);
    }
}

void sched_append(sched *s, sched_seq *q, int32_t id) {
    q->tokens[q->n_tokens++] = id;
    set_running_status(q);
}

/* ---------------- the rules every policy shares ---------------- */

static void plan_add(sched_step *p, sched_seq *q, int n) { p->items[p->n_items++] = (sched_item){q, n}; }

/* Takes running[i] back to the front of the waiting queue. */
static void preempt(sched *s, int i, sched_step *p) {
    sched_seq *q = s->running[i];
    memmove(s->running + i, s->running + i + 1, (size_t)(s->n_running - i - 1) * sizeof *s->running);
    s->n_running--;
    kv_release(s->kv, &q->kv);
    q->n_computed = 0;
    wait_insert_before(s, q, s->wait_head);
    s->n_preemptions++;
    p->preempted[p->n_preempted++] = q;
}

/* Whom running q preempts when it cannot grow: the newest running sequence (q itself
 * last); under slo the newest prefill other than q first, so a decode never gives way to
 * a prefill (slo may serve a newer prefill before an older one, and an older prefill that
 * never gets tokens, holding blocks a newer decode needs, had that decode preempted for
 * ever: tests/unit/engine_sched.c found it). */
static int victim(const sched *s, const sched_seq *q) {
    if (s->cfg.policy == ENGINE_POLICY_SLO)
        for (int i = s->n_running - 1; i >= 0; i--)
            if (s->running[i] != q && s->running[i]->status == SCHED_PREFILLING) return i;
    return s->n_running - 1;
}

/* KV fit: want tokens of running q shrink to the slots the blocks it holds and the
 * pool's available ones give (before anyone is preempted for it). */
static int fit_chunk(const sched *s, const sched_seq *q, int want) {
    int fit = (q->kv.n_blocks + kv_n_available(s->kv)) * kv_block_size(s->kv) - q->n_computed;
    return want > fit && fit > 0 ? fit : want;
}

/* Grows running q by want tokens' slots, preempting others while the pool is short
 * (victim; a sequence alone always fits: ctx_cap <= pool size). Returns false when q
 * itself was preempted. Callers walking s->running find q's index again after. */
static bool grow_or_preempt(sched *s, sched_seq *q, int want, sched_step *p) {
    while (!kv_can_grow(s->kv, &q->kv, q->n_computed + want)) {
        int v = victim(s, q);
        bool self = s->running[v] == q;
        preempt(s, v, p);
        if (self) return false;
    }
    kv_grow(s->kv, &q->kv, q->n_computed + want);
    return true;
}

/* Admission: moves waiting q into the running batch with its cached prefix and a first
 * prefill chunk of at most budget tokens (halved until the KV blocks allow). Returns the
 * chunk, 0 when q cannot be admitted now. */
static int admit(sched *s, sched_seq *q, int budget, sched_step *p) {
    int cached = kv_prefix_lookup(s->kv, q->cache_salt, q->tokens, q->n_tokens);
    int chunk = q->n_tokens - cached;
    if (chunk > budget) chunk = budget;
    while (chunk > 0 && !kv_can_admit(s->kv, q->cache_salt, q->tokens, q->n_tokens, cached + chunk)) chunk /= 2;
    if (chunk == 0 || kv_admit(s->kv, &q->kv, q->cache_salt, q->tokens, q->n_tokens, cached + chunk) != SW_OK) return 0;
    wait_unlink(s, q);
    s->running[s->n_running++] = q;
    q->n_computed = q->kv.n_cached;
    set_running_status(q);
    plan_add(p, q, chunk);
    return chunk;
}

/* ---------------- fcfs / priority ---------------- */

static void sched_plan_fifo(sched *s, sched_step *p) {
    int budget = s->cfg.max_batch_tokens;
    for (int i = 0; i < s->n_running && budget > 0; i++) {
        sched_seq *q = s->running[i];
        int want = q->n_tokens - q->n_computed;
        if (want > budget) want = budget;
        want = fit_chunk(s, q, want);
        if (!grow_or_preempt(s, q, want, p)) break;
        plan_add(p, q, want);
        budget -= want;
    }
    while (p->n_preempted == 0 && budget > 0 && s->n_running < s->cfg.max_seqs && s->wait_head) {
        int chunk = admit(s, s->wait_head, budget, p);
        if (chunk == 0) break;
        budget -= chunk;
    }
}

/* ---------------- slo ---------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Grows the candidate arrays to hold n (amortized: no allocation in steady state). */
static int ensure_cand(sched *s, int n) {
    if (n <= s->cand_cap) return SW_OK;
    int cap = n > 2 * s->cand_cap ? n : 2 * s->cand_cap;
    pol_cand *c = realloc(s->cand, (size_t)cap * sizeof *c);
    if (c) s->cand = c;
    sched_seq **q = c ? realloc(s->cand_seq, (size_t)cap * sizeof *q) : NULL;
    if (q) s->cand_seq = q;
    sched_seq **a = q ? realloc(s->accepted, (size_t)cap * sizeof *a) : NULL;
    if (a) s->accepted = a;
    sched_reject *r = a ? realloc(s->rejected, (size_t)cap * sizeof *r) : NULL;
    if (!r) return SW_ERR_NOMEM;
    s->rejected = r;
    s->cand_cap = cap;
    return SW_OK;
}

/* Gives q its admission verdict (slo). */
static void give_verdict(sched_seq *q, sched_step *p) {
    if (q->judged) return;
    q->judged = true;
    p->accepted[p->n_accepted++] = q;
}

/* The prefill rate ahead (pol_rate) and the seats: how many more sequences the batch
 * takes now (max_seqs, decode capacity of the tightest TPOT), and when running ones
 * release theirs (s->release, ascending: tokens left x a decode step). */
static pol_rate plan_rate(sched *s, int n_dec, double dec_att, int budget, int room, double tpot_cap, double ctx_sum,
                          int *seats) {
    double ctx_avg = s->n_running ? ctx_sum / s->n_running : 0;
    *seats = 0;
    while (s->n_running + *seats < s->cfg.max_seqs &&
           (s->n_running == 0 || pol_decode_fits(&s->cost, s->n_running + *seats + 1, ctx_avg, tpot_cap)))
        (*seats)++;
    cost_shape dsh = {.tokens = s->n_running, .rows = s->n_running, .attended = ctx_sum};
    double dec_step = cost_predict(&s->cost, &dsh);
    /* this step's budget (which may spend the decodes' accumulated slack), then the
     * steady budget once the slack is spent (steps held to the tightest TPOT); when
     * that leaves nothing, the rest waits for the first running request to end and then
     * runs at the full budget */
    int steady = pol_prefill_budget(&s->cost, n_dec, dec_att, tpot_cap * POL_STEP_MARGIN, room);
    for (int i = 0; i < s->n_running; i++) {
        sched_seq *q = s->running[i];
        int left = q->max_tokens - (q->n_tokens - q->n_prompt) +
                   (q->n_tokens - 1 - q->n_computed) / (steady > 0 ? steady : SCHED_MIN_CHUNK);
        s->release[i] = (left > 0 ? left : 1) * dec_step;
    }
    qsort(s->release, (size_t)s->n_running, sizeof *s->release, cmp_double);
    pol_rate pr = {.now_tokens = budget, .steady_tokens = steady};
    if (steady < 1) {
        pr.steady_tokens = room > 0 ? room : 1;
        pr.wait_ms = s->n_running ? s->release[0] : 0;
    }
    cost_shape sh = {.tokens = n_dec + budget, .rows = n_dec + 1, .attended = dec_att};
    pr.now_step_ms = cost_predict(&s->cost, &sh);
    sh.tokens = n_dec + pr.steady_tokens;
    pr.steady_step_ms = cost_predict(&s->cost, &sh);
    return pr;
}

/* Under --policy slo (see policy.h for the rules):
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
static int sched_plan_slo(sched *s, double now, sched_step *p) {
    bool stalled = s->stalled; /* the last plan ran nothing: running ones first */
    s->stalled = false;
    /* a. decodes */
    int n_dec = 0;
    double dec_att = 0;
    for (int i = 0; i < s->n_running; i++) {
        sched_seq *q = s->running[i];
        if (q->status != SCHED_DECODING) continue;
        if (!grow_or_preempt(s, q, 1, p)) break;
        while (s->running[i] != q) i--; /* an older prefill may have been preempted */
        plan_add(p, q, 1);
        s->pdec[n_dec++] = (pol_decode){.tpot_ms = q->tpot_ms, .t_first_ms = q->t_first_token_ms,
                                        .n_gen = q->n_tokens - q->n_prompt};
        dec_att += q->n_computed + 1;
    }
    /* b. budget */
    double limit = pol_step_limit_ms(s->pdec, n_dec, now) * POL_STEP_MARGIN;
    int room = s->cfg.max_batch_tokens - n_dec;
    int budget = pol_prefill_budget(&s->cost, n_dec, dec_att, limit, room);
    /* c. candidates: partially prefilled running ones, then the waiting ones */
    if (ensure_cand(s, s->n_running + s->n_waiting) != SW_OK) return SW_ERR_NOMEM;
    p->accepted = s->accepted; /* ensure_cand may have moved them */
    p->rejected = s->rejected;
    int n_cand = 0, n_started = 0;
    for (int i = 0; i < s->n_running; i++)
        if (s->running[i]->status == SCHED_PREFILLING) s->cand_seq[n_cand++] = s->running[i];
    n_started = n_cand;
    for (sched_seq *q = s->wait_head; q; q = q->next) s->cand_seq[n_cand++] = q;
    for (int c = 0; c < n_cand; c++) {
        sched_seq *q = s->cand_seq[c];
        bool started = q->status == SCHED_PREFILLING;
        int pending = q->n_tokens - (started ? q->n_computed : kv_prefix_lookup(s->kv, q->cache_salt, q->tokens, q->n_tokens));
        s->cand[c] = (pol_cand){.idx = c, .pending = pending > 1 ? pending : 1,
                                .deadline_ms = q->n_tokens > q->n_prompt ? -INFINITY : q->deadline_ms,
                                .arrival = q->arrival, .best_effort = q->best_effort,
                                .over = pol_fair_over(&s->fair, q->tenant), .started = started};
    }
    pol_order(s->cand, n_cand, s->cfg.short_prompt);
    double tpot_cap = INFINITY, ctx_sum = 0;
    for (int i = 0; i < s->n_running; i++) {
        sched_seq *q = s->running[i];
        if (q->tpot_ms > 0 && q->tpot_ms < tpot_cap) tpot_cap = q->tpot_ms;
        ctx_sum += q->n_tokens;
    }
    int seats;
    pol_rate pr = plan_rate(s, n_dec, dec_att, budget, room, tpot_cap, ctx_sum, &seats);
    int ahead = 0, n_new = 0;
    bool demoted = false;
    for (int c = 0; c < n_cand; c++) {
        pol_cand *pc = &s->cand[c];
        sched_seq *q = s->cand_seq[pc->idx];
        if (pc->best_effort) {
            give_verdict(q, p);
            continue;
        }
        double eta = pol_ttft_eta_ms(&pr, pc, ahead, n_new, seats, s->release, s->n_running, now);
        if (pol_late(pc, eta, ahead == 0 && s->n_running == 0)) {
            sw_debug("slo: late by %.0f ms: pending %d, ahead %d, %d tokens now (%.1f ms), then %d per %.1f ms step "
                     "after %.0f ms, seats %d (new #%d), running %d (%d decoding), release[0] %.0f ms",
                     eta - pc->deadline_ms, pc->pending, ahead, pr.now_tokens, pr.now_step_ms, pr.steady_tokens,
                     pr.steady_step_ms, pr.wait_ms, seats, n_new, s->n_running, n_dec,
                     s->n_running ? s->release[0] : 0.0);
            if (!q->judged && s->cfg.slo_reject) {
                sched_reject *rj = &p->rejected[p->n_rejected++];
                rj->seq = q;
                snprintf(rj->msg, sizeof rj->msg,
                         "slo: predicted time to first token %.0f ms (with a 20%% margin) exceeds the objective of %g ms "
                         "(%d prompt tokens to compute ahead of it)",
                         eta - q->t_submit_ms, q->ttft_ms, ahead);
                s->n_rejected++;
                sched_remove(s, q, SCHED_REJECTED);
                continue;
            }
            q->best_effort = pc->best_effort = true;
            s->n_best_effort++;
            demoted = true;
            give_verdict(q, p);
            continue;
        }
        give_verdict(q, p);
        ahead += pc->pending;
        n_new += !pc->started;
    }
    if (demoted) pol_order(s->cand, n_cand, s->cfg.short_prompt);
    /* d. budget to candidates in order */
    int n_prefill = 0;
    for (int c = 0; c < n_cand && p->n_preempted == 0; c++) {
        const pol_cand *pc = &s->cand[c];
        sched_seq *q = s->cand_seq[pc->idx];
        if (q->status == SCHED_REJECTED) continue;
        if (pc->started) {
            /* a partially prefilled request: a chunk, never less than SCHED_MIN_CHUNK */
            int floor = budget > SCHED_MIN_CHUNK ? budget : SCHED_MIN_CHUNK;
            int want = q->n_tokens - q->n_computed;
            if (want > floor) want = floor;
            if (want > room) want = room;
            if (want < 1) continue;
            want = fit_chunk(s, q, want);
            if (!kv_can_grow(s->kv, &q->kv, q->n_computed + want)) continue;
            kv_grow(s->kv, &q->kv, q->n_computed + want);
            plan_add(p, q, want);
            room -= want;
            budget = budget > want ? budget - want : 0;
            n_prefill++;
            continue;
        }
        if (budget < 1 || s->n_running >= s->cfg.max_seqs || stalled) continue;
        double cap = q->tpot_ms > 0 && q->tpot_ms < tpot_cap ? q->tpot_ms : tpot_cap;
        double ctx = (ctx_sum + q->n_tokens) / (s->n_running + 1);
        if (s->n_running > 0 && !pol_decode_fits(&s->cost, s->n_running + 1, ctx, cap)) continue;
        int chunk = admit(s, q, budget, p);
        if (chunk == 0) continue;
        budget -= chunk;
        room -= chunk;
        tpot_cap = cap;
        ctx_sum += q->n_tokens;
        n_prefill++;
    }
    /* Nothing could run although requests are held (every prefill blocked on KV): make
     * room the fcfs way, by preempting the newest, and admit no one in the next step, so
     * the freed blocks go to the running ones (else the newest, often the one admitted
     * last step, is admitted again at the front of the order and the same stall
     * repeats for ever: tests/unit/engine_sched.c found it). */
    if (p->n_items == 0 && s->n_running > 0 && n_started > 0 && n_prefill == 0 && p->n_preempted == 0) {
        preempt(s, s->n_running - 1, p);
        s->stalled = true;
    }
    return SW_OK;
}

/* ---------------- the entry point ---------------- */

int sched_plan(sched *s, double now, sched_step *p) {
    *p = (sched_step){.items = s->items, .preempted = s->preempted, .accepted = s->accepted, .rejected = s->rejected};
    int rc = SW_OK;
    if (s->cfg.policy == ENGINE_POLICY_SLO) rc = sched_plan_slo(s, now, p);
    else sched_plan_fifo(s, p);
    /* fairness: charge each tenant for the tokens computed for it */
    for (int k = 0; k < p->n_items; k++) {
        const sched_seq *q = p->items[k].seq;
        int c = p->items[k].n, pre = q->n_prompt - q->n_computed;
        pre = pre < 0 ? 0 : pre > c ? c : pre;
        pol_fair_charge(&s->fair, q->tenant, pre, c - pre);
    }
    return rc;
}
