/* engine_sched.c — the scheduler (sched.h) driven without a model, as kv_test.c drives
 * the block manager: random runs (arrivals with shared prompt prefixes, cancels, KV
 * pools small enough to force preemption, simulated clock and step times) under every
 * policy and many seeds, the runner played by the test (commit, sample a token or a
 * stop, end on max_tokens / context), and after every plan:
 *  - each live sequence in exactly one place (running array or waiting list, the list
 *    links consistent) with the status that place means; ended ones in neither;
 *  - KV: kv_check consistent; waiting sequences hold no block; a running one holds
 *    exactly the blocks its computed + planned tokens need; the pool's used count is
 *    the number of distinct blocks the running tables hold;
 *  - the plan: at most max_seqs items and max_batch_tokens tokens, each item a running
 *    sequence with 1..pending tokens and the slots for them, no sequence twice; the
 *    preempted ones back in the queue with nothing computed;
 *  - fcfs/priority: the plan is the running array in admission order; a running
 *    sequence left out, or given less than it has pending, means the budget or the pool
 *    is exhausted; the queue head left waiting means it cannot get one block; never-run
 *    sequences wait in arrival order (fcfs);
 *  - slo: every decoding sequence gets its token; each sequence gets exactly one
 *    verdict, before it is first scheduled; a refused one was never scheduled;
 *  - progress: a running sequence's computed tokens only grow unless it is preempted,
 *    and once arrivals stop every sequence ends (preempted ones come back and finish). */
#include "t.h"
#include <math.h>
#include "engine/sched.h"
#include "gguf/gguf.h"

#define MAXQ 600      /* sequences per run */
#define MAXTOK 512

typedef struct tseq {
    sched_seq q;
    int32_t tok[MAXTOK];
    bool live, added;
    int verdicts;        /* accepted + rejected */
    int n_preempted;
    int last_computed;   /* n_computed after the last commit */
    bool was_run;
    sched_status before; /* status before the current plan */
} tseq;

typedef struct trun {
    engine_policy policy;
    bool reject, cache;
    int bs, n_blocks, max_batch, max_seqs;
    uint64_t seed;
} trun;

static uint64_t rng;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static tseq *T; /* (MAXQ) */
static int n_seqs;

static tseq *tseq_of(const sched_seq *q) { return (tseq *)q; } /* sched_seq is its first member */

static int slots_of(const sched_seq *q, int bs) { return q->kv.n_blocks * bs; }

/* ---- invariants ---- */

static bool check_places(const sched *s, const trun *c) {
    int ok0 = t_fail;
    int seen[MAXQ] = {0};
    for (int i = 0; i < s->n_running; i++) {
        tseq *t = tseq_of(s->running[i]);
        seen[t - T]++;
        T_CHECK(t->q.status == SCHED_PREFILLING || t->q.status == SCHED_DECODING, "running seq %d has status %d",
                (int)(t - T), t->q.status);
        bool dec = t->q.n_computed == t->q.n_tokens - 1 && t->q.n_tokens > t->q.n_prompt;
        T_CHECK(dec == (t->q.status == SCHED_DECODING), "seq %d: status %d but computed %d of %d (prompt %d)",
                (int)(t - T), t->q.status, t->q.n_computed, t->q.n_tokens, t->q.n_prompt);
    }
    int n_wait = 0;
    const sched_seq *prev = NULL;
    for (sched_seq *q = s->wait_head; q; prev = q, q = q->next) {
        tseq *t = tseq_of(q);
        seen[t - T]++;
        n_wait++;
        T_CHECK(q->prev == prev, "waiting list back link");
        T_CHECK(q->status == SCHED_WAITING, "waiting seq %d has status %d", (int)(t - T), q->status);
        T_CHECK(q->kv.n_blocks == 0 && q->n_computed == 0, "waiting seq %d holds %d blocks, computed %d",
                (int)(t - T), q->kv.n_blocks, q->n_computed);
        if (n_wait > MAXQ) break;
    }
    T_CHECK(s->wait_tail == prev, "waiting list tail");
    T_EQ_INT(n_wait, s->n_waiting);
    T_CHECK(s->n_running <= c->max_seqs, "%d running > max_seqs %d", s->n_running, c->max_seqs);
    for (int i = 0; i < n_seqs; i++) {
        tseq *t = &T[i];
        if (!t->added) continue;
        T_CHECK(seen[i] == (t->live ? 1 : 0), "seq %d (live %d, status %d) found %d times", i, t->live, t->q.status,
                seen[i]);
        if (!t->live)
            T_CHECK(t->q.status >= SCHED_FINISHED && t->q.kv.n_blocks == 0, "ended seq %d: status %d, %d blocks", i,
                    t->q.status, t->q.kv.n_blocks);
    }
    return t_fail == ok0;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* planned[i] = tokens the plan gives seq i (0 if none) */
static void check_kv(const sched *s, const trun *c, const int *planned) {
    sw_err err = {0};
    T_CHECK(kv_check(s->kv, &err) == SW_OK, "kv_check: %s", err.msg);
    static int32_t blocks[1 << 14];
    int nb = 0;
    for (int i = 0; i < s->n_running; i++) {
        const sched_seq *q = s->running[i];
        int need = q->n_computed + planned[tseq_of(s->running[i]) - T];
        T_CHECK(q->kv.n_blocks == (need + c->bs - 1) / c->bs, "running seq %d holds %d blocks for %d tokens (bs %d)",
                (int)(tseq_of(s->running[i]) - T), q->kv.n_blocks, need, c->bs);
        for (int b = 0; b < q->kv.n_blocks && nb < (int)(sizeof blocks / sizeof *blocks); b++) blocks[nb++] = q->kv.blocks[b];
    }
    qsort(blocks, (size_t)nb, sizeof *blocks, cmp_i32);
    int distinct = 0;
    for (int i = 0; i < nb; i++) distinct += i == 0 || blocks[i] != blocks[i - 1];
    kv_stats ks;
    kv_get_stats(s->kv, &ks);
    T_CHECK(ks.n_used == distinct, "pool says %d blocks used, running tables hold %d", ks.n_used, distinct);
    if (!c->cache) T_CHECK(distinct == nb, "blocks shared with the prefix cache off");
}

static void check_plan(const sched *s, const trun *c, const sched_step *p, int *planned, const bool *judged_before) {
    int sum = 0;
    T_CHECK(p->n_items <= c->max_seqs, "%d items > max_seqs", p->n_items);
    for (int k = 0; k < p->n_items; k++) {
        const sched_seq *q = p->items[k].seq;
        int i = (int)(tseq_of(p->items[k].seq) - T), n = p->items[k].n;
        T_CHECK(planned[i] == 0, "seq %d twice in the plan", i);
        planned[i] = n;
        sum += n;
        T_CHECK(q->status == SCHED_PREFILLING || q->status == SCHED_DECODING, "planned seq %d not running", i);
        T_CHECK(n >= 1 && q->n_computed + n <= q->n_tokens, "seq %d: %d tokens planned at %d of %d", i, n,
                q->n_computed, q->n_tokens);
        T_CHECK(slots_of(q, c->bs) >= q->n_computed + n, "seq %d: no slots for its tokens", i);
        if (c->policy == ENGINE_POLICY_SLO) T_CHECK(q->judged, "seq %d scheduled before its verdict", i);
    }
    T_CHECK(sum <= c->max_batch, "plan of %d tokens > budget %d", sum, c->max_batch);
    for (int k = 0; k < p->n_preempted; k++) {
        const sched_seq *q = p->preempted[k];
        int i = (int)(tseq_of(p->preempted[k]) - T);
        T_CHECK(planned[i] == 0, "preempted seq %d is in the plan", i);
        T_CHECK(q->status == SCHED_WAITING && q->n_computed == 0 && q->kv.n_blocks == 0, "preempted seq %d: status %d",
                i, q->status);
        T[i].n_preempted++;
        T[i].last_computed = 0;
    }
    for (int k = 0; k < p->n_accepted; k++) {
        int i = (int)(tseq_of(p->accepted[k]) - T);
        T_CHECK(!judged_before[i] && p->accepted[k]->judged, "seq %d accepted twice", i);
        T[i].verdicts++;
    }
    for (int k = 0; k < p->n_rejected; k++) {
        tseq *t = tseq_of(p->rejected[k].seq);
        int i = (int)(t - T);
        T_CHECK(c->policy == ENGINE_POLICY_SLO && c->reject, "refusal without slo_reject");
        T_CHECK(!judged_before[i] && !t->was_run && t->q.status == SCHED_REJECTED && p->rejected[k].msg[0],
                "seq %d refused after a verdict or a step", i);
        T[i].verdicts++;
        t->live = false;
    }
    if (c->policy != ENGINE_POLICY_SLO) {
        T_CHECK(p->n_accepted == 0 && p->n_rejected == 0, "verdicts under fcfs/priority");
        /* the plan is the running array in admission order */
        for (int k = 0; k < p->n_items; k++) T_CHECK(p->items[k].seq == s->running[k], "item %d is not running[%d]", k, k);
        bool budget_out = sum == c->max_batch, pool_out = kv_n_available(s->kv) == 0;
        if (p->n_items < s->n_running) T_CHECK(budget_out, "running seq left out with %d of %d tokens used", sum, c->max_batch);
        for (int k = 0; k < p->n_items; k++) { /* a running one (not just admitted) gets all it has pending */
            const sched_seq *q = p->items[k].seq;
            if (tseq_of(p->items[k].seq)->before != SCHED_WAITING && p->items[k].n < q->n_tokens - q->n_computed)
                T_CHECK(budget_out || pool_out || p->n_preempted > 0,
                        "seq %d got %d of %d pending with budget and blocks left", (int)(tseq_of(q) - T), p->items[k].n,
                        q->n_tokens - q->n_computed);
        }
        const sched_seq *h = s->wait_head;
        if (h && p->n_preempted == 0 && sum < c->max_batch && s->n_running < c->max_seqs) {
            int cached = kv_prefix_lookup(s->kv, h->cache_salt, h->tokens, h->n_tokens);
            T_CHECK(!kv_can_admit(s->kv, h->cache_salt, h->tokens, h->n_tokens, cached + 1),
                    "queue head seq %d left waiting although one token fits", (int)(tseq_of(h) - T));
        }
        if (c->policy == ENGINE_POLICY_FCFS) { /* never-run sequences wait in arrival order */
            uint64_t last = 0;
            bool any = false;
            for (const sched_seq *q = s->wait_head; q; q = q->next) {
                if (tseq_of(q)->was_run || planned[tseq_of(q) - T]) continue;
                T_CHECK(!any || q->arrival > last, "fcfs queue out of arrival order");
                any = true;
                last = q->arrival;
            }
        }
    } else {
        for (int i = 0; i < s->n_running; i++)
            if (s->running[i]->status == SCHED_DECODING)
                T_CHECK(planned[tseq_of(s->running[i]) - T] == 1, "decoding seq %d got %d tokens",
                        (int)(tseq_of(s->running[i]) - T), planned[tseq_of(s->running[i]) - T]);
    }
}

/* ---- one random run ---- */

static void new_seq(sched *s, const trun *c, double now, int ctx_cap) {
    if (n_seqs == MAXQ) return;
    tseq *t = &T[n_seqs++];
    memset(t, 0, sizeof *t);
    sched_seq *q = &t->q;
    int max_prompt = ctx_cap < 3 * c->max_batch + 8 ? ctx_cap : 3 * c->max_batch + 8;
    if (max_prompt > MAXTOK / 2) max_prompt = MAXTOK / 2;
    q->n_prompt = q->n_tokens = 1 + (int)rnd((uint32_t)max_prompt);
    q->max_tokens = 1 + (int)rnd(24);
    q->cap_tokens = q->n_prompt + q->max_tokens < ctx_cap + 1 ? q->n_prompt + q->max_tokens : ctx_cap + 1;
    q->tokens = t->tok;
    /* shared prefixes: one of three documents, then a random tail */
    int doc = (int)rnd(3), shared = (int)rnd((uint32_t)q->n_prompt + 1);
    for (int i = 0; i < q->n_prompt; i++) q->tokens[i] = i < shared ? doc * 1000 + i : 5000 + (int32_t)rnd(50);
    q->priority = (int)rnd(3) - 1;
    static const double ttft[] = {0, 30, 200, 2000}, tpot[] = {0, 5, 40};
    q->ttft_ms = ttft[rnd(4)];
    q->tpot_ms = tpot[rnd(3)];
    q->t_submit_ms = now;
    q->deadline_ms = q->ttft_ms > 0 ? now + q->ttft_ms : INFINITY;
    q->cache_salt = rnd(4) == 0 ? 7 : 0;
    q->tenant = -1;
    kv_seq_init(&q->kv);
    static const char *users[] = {NULL, "alice", "bob"};
    sched_add(s, q, users[rnd(3)]);
    t->added = t->live = true;
    T_CHECK(q->status == SCHED_WAITING, "a new sequence waits");
}

static void random_run(const trun *c) {
    rng = c->seed * 2654435761u + 1;
    n_seqs = 0;
    model_config mc = {.n_layer = 1, .n_head_kv = 1, .head_dim = 4};
    kv_pool *kv = NULL;
    sw_err err = {0};
    T_CHECK(kv_pool_create(&mc, GGUF_DTYPE_F16, c->bs, c->n_blocks, c->cache, &kv, &err) == SW_OK, "%s", err.msg);
    sched_config sc = {.policy = c->policy, .max_batch_tokens = c->max_batch, .max_seqs = c->max_seqs,
                       .short_prompt = 24, .slo_reject = c->reject};
    const double prior[COST_NF] = {1.0, 0.05, 0.3, 0.5};
    sched *s = NULL;
    T_CHECK(sched_create(&sc, kv, prior, &s, &err) == SW_OK, "%s", err.msg);
    if (!kv || !s) return;
    int ctx_cap = c->bs * c->n_blocks;
    double now = 1000;
    int fails0 = t_fail;
    static int planned[MAXQ];
    static bool judged[MAXQ];
    int n_steps = 0, n_ended = 0;
    uint64_t preemptions = 0;
    for (int step = 0; t_fail - fails0 < 5; step++) {
        bool arrivals = step < 1500;
        if (!arrivals && s->n_running == 0 && s->n_waiting == 0) break;
        if (getenv("SCHED_TRACE") && step > 59990) {
            fprintf(stderr, "step %d now %.0f: running", step, now);
            for (int i = 0; i < s->n_running; i++)
                fprintf(stderr, " [#%d st%d %d/%d p%d blk%d tpot%g be%d]", (int)(tseq_of(s->running[i]) - T), s->running[i]->status,
                        s->running[i]->n_computed, s->running[i]->n_tokens, s->running[i]->n_prompt, s->running[i]->kv.n_blocks,
                        s->running[i]->tpot_ms, s->running[i]->best_effort);
            fprintf(stderr, " avail %d; head #%d n %d\n", kv_n_available(s->kv), s->wait_head ? (int)(tseq_of(s->wait_head) - T) : -1,
                    s->wait_head ? s->wait_head->n_tokens : 0);
        }
        if (step > 60000) { T_CHECK(0, "run did not drain (%d running, %d waiting)", s->n_running, s->n_waiting); break; }
        if (arrivals) {
            int k = (int)rnd(4) == 0 ? (int)rnd(4) : 0;
            for (int j = 0; j < k; j++) new_seq(s, c, now, ctx_cap);
        }
        if (arrivals && s->n_running + s->n_waiting > 0 && rnd(25) == 0) { /* a cancel */
            int i = (int)rnd((uint32_t)n_seqs);
            if (T[i].live) {
                sched_remove(s, &T[i].q, SCHED_CANCELLED);
                T[i].live = false;
                T_CHECK(T[i].q.status == SCHED_CANCELLED && T[i].q.kv.n_blocks == 0, "cancelled seq %d", i);
            }
        }
        for (int i = 0; i < n_seqs; i++) {
            planned[i] = 0;
            judged[i] = T[i].q.judged;
            T[i].before = T[i].q.status;
        }
        sched_step p;
        T_CHECK(sched_plan(s, now, &p) == SW_OK, "sched_plan");
        check_plan(s, c, &p, planned, judged);
        if (!check_places(s, c)) break;
        check_kv(s, c, planned);
        preemptions += (uint64_t)p.n_preempted;
        for (int k = 0; k < p.n_rejected; k++) n_ended++;
        /* the runner: tokens computed, the rows that reached the end sample */
        cost_shape sh = {0};
        for (int k = 0; k < p.n_items; k++) {
            sched_seq *q = p.items[k].seq;
            sh.tokens += p.items[k].n;
            sh.rows += q->n_computed + p.items[k].n == q->n_tokens;
            sh.attended += (double)p.items[k].n * (q->n_computed + 1);
            q->scheduled_once = true;
            tseq_of(q)->was_run = true;
        }
        sched_commit(s, &p);
        for (int k = 0; k < p.n_items; k++) {
            tseq *t = tseq_of(p.items[k].seq);
            sched_seq *q = &t->q;
            T_CHECK(q->n_computed > t->last_computed, "seq %d: computed %d after %d", (int)(t - T), q->n_computed,
                    t->last_computed);
            t->last_computed = q->n_computed;
            if (q->n_computed < q->n_tokens) continue;
            if (rnd(12) == 0) { /* a stop token */
                sched_remove(s, q, SCHED_FINISHED);
                t->live = false;
                n_ended++;
                continue;
            }
            T_CHECK(q->n_tokens < q->cap_tokens, "seq %d: token array full", (int)(t - T));
            sched_append(s, q, 6000 + (int32_t)rnd(100));
            if (q->t_first_token_ms == 0) q->t_first_token_ms = now;
            T_CHECK(q->status == SCHED_DECODING, "seq %d decodes after its token", (int)(t - T));
            if (q->n_tokens - q->n_prompt >= q->max_tokens || q->n_tokens > ctx_cap) {
                sched_remove(s, q, SCHED_FINISHED);
                t->live = false;
                n_ended++;
            }
        }
        double pred = cost_predict(&s->cost, &sh);
        if (p.n_items > 0) {
            double actual = pred * (0.8 + 0.4 * rnd(1000) / 1000.0);
            cost_observe(&s->cost, &sh, actual);
            now += actual;
            n_steps++;
        } else {
            now += 1;
        }
    }
    /* every sequence ended; each got one verdict under slo; the pool is whole again */
    for (int i = 0; i < n_seqs; i++) {
        T_CHECK(!T[i].live, "seq %d never ended", i);
        if (c->policy == ENGINE_POLICY_SLO)
            T_CHECK(T[i].verdicts == 1 || (T[i].verdicts == 0 && !T[i].was_run && T[i].q.status == SCHED_CANCELLED),
                    "seq %d got %d verdicts", i, T[i].verdicts);
        kv_seq_destroy(&T[i].q.kv);
    }
    kv_stats ks;
    kv_get_stats(kv, &ks);
    T_CHECK(ks.n_used == 0 && ks.n_free + ks.n_idle == ks.n_blocks, "blocks leaked: %d used", ks.n_used);
    T_CHECK(s->n_preemptions == preemptions, "preemption count %llu vs %llu seen", (unsigned long long)s->n_preemptions,
            (unsigned long long)preemptions);
    if (t_fail > fails0)
        fprintf(stderr, "  in run: policy %d reject %d cache %d bs %d blocks %d batch %d seqs %d seed %llu (%d steps)\n",
                c->policy, c->reject, c->cache, c->bs, c->n_blocks, c->max_batch, c->max_seqs,
                (unsigned long long)c->seed, n_steps);
    sched_destroy(s);
    kv_pool_destroy(kv);
}

/* ---- directed: the slo verdict on the simulated clock ---- */

static void test_eta(void) {
    pol_rate r = {.now_tokens = 10, .now_step_ms = 5, .steady_tokens = 10, .steady_step_ms = 5};
    const double release[] = {100};
    pol_cand started = {.pending = 25, .deadline_ms = 1000 + 30, .started = true};
    /* 10 tokens now (5 ms), then 15 at 10 per 5 ms step (10 ms): 15 ms x 1.2 margin */
    T_CHECK(fabs(pol_ttft_eta_ms(&r, &started, 0, 0, 1, release, 1, 1000) - 1018) < 1e-9, "started eta");
    T_CHECK(!pol_late(&started, 1018, false), "on time");
    pol_cand waiting = started;
    waiting.started = false;
    /* no free seat: waits 100 ms for the first release, then 15 ms of its own prefill */
    T_CHECK(fabs(pol_ttft_eta_ms(&r, &waiting, 0, 0, 0, release, 1, 1000) - (1000 + 115 * 1.2)) < 1e-9, "seat wait");
    T_CHECK(pol_late(&waiting, 1138, false) && !pol_late(&waiting, 1138, true), "late unless alone");
    waiting.deadline_ms = INFINITY;
    T_CHECK(!pol_late(&waiting, 1e12, false), "no objective: never late");
}

static void test_slo_clock(void) {
    model_config mc = {.n_layer = 1, .n_head_kv = 1, .head_dim = 4};
    kv_pool *kv = NULL;
    sched *s = NULL;
    sw_err err = {0};
    T_CHECK(kv_pool_create(&mc, GGUF_DTYPE_F16, 16, 64, true, &kv, &err) == SW_OK, "%s", err.msg);
    sched_config sc = {.policy = ENGINE_POLICY_SLO, .max_batch_tokens = 32, .max_seqs = 4, .short_prompt = 8,
                       .slo_reject = true};
    const double prior[COST_NF] = {2.0, 0.1, 0.3, 0.5}; /* >= 2 ms a step */
    T_CHECK(sched_create(&sc, kv, prior, &s, &err) == SW_OK, "%s", err.msg);
    if (!kv || !s) return;
    n_seqs = 0;
    double now = 5000;
    rng = 42;
    trun c = {.policy = ENGINE_POLICY_SLO, .max_batch = 32};
    new_seq(s, &c, now, 1024); /* A: whatever objective, alone on an idle engine: served */
    tseq *a = &T[0];
    a->q.ttft_ms = 0.001;
    a->q.deadline_ms = now + 0.001;
    sched_step p;
    T_CHECK(sched_plan(s, now, &p) == SW_OK && p.n_items == 1 && p.items[0].seq == &a->q && p.n_accepted == 1,
            "alone: admitted, accepted");
    sched_commit(s, &p);
    new_seq(s, &c, now, 1024); /* B: 1 ms to first token behind A's work: refused */
    tseq *b = &T[1];
    b->q.ttft_ms = 1;
    b->q.deadline_ms = now + 1;
    new_seq(s, &c, now, 1024); /* C: a minute: accepted */
    tseq *cc = &T[2];
    cc->q.ttft_ms = 60000;
    cc->q.deadline_ms = now + 60000;
    T_CHECK(sched_plan(s, now, &p) == SW_OK, "plan");
    T_CHECK(p.n_rejected == 1 && p.rejected[0].seq == &b->q && b->q.status == SCHED_REJECTED, "B refused");
    T_CHECK(cc->q.judged && !cc->q.best_effort && cc->q.status != SCHED_REJECTED, "C accepted");
    /* the same C submitted at a time when its deadline has passed is refused: the clock is
     * the caller's */
    new_seq(s, &c, now, 1024);
    tseq *d = &T[3];
    d->q.ttft_ms = 60000;
    d->q.deadline_ms = now + 60000;
    sched_commit(s, &p);
    T_CHECK(sched_plan(s, now + 120000, &p) == SW_OK && d->q.status == SCHED_REJECTED, "D refused at now + 2 min");
    for (int i = 0; i < n_seqs; i++) {
        sched_remove(s, &T[i].q, SCHED_CANCELLED);
        kv_seq_destroy(&T[i].q.kv);
    }
    sched_destroy(s);
    kv_pool_destroy(kv);
}

int main(void) {
    T = calloc(MAXQ, sizeof *T);
    test_eta();
    test_slo_clock();
    static const int bss[] = {1, 4, 16};
    uint64_t total_preempt = 0, runs = 0;
    for (int pol = 0; pol < 4; pol++)
        for (uint64_t seed = 1; seed <= 16; seed++) {
            rng = seed * 7919 + (uint64_t)pol;
            trun c = {.policy = pol == 3 ? ENGINE_POLICY_SLO : (engine_policy)pol, .reject = pol == 3,
                      .cache = rnd(3) != 0, .bs = bss[rnd(3)], .seed = seed * 31 + (uint64_t)pol};
            c.n_blocks = (int)((8 + rnd(56)) * 16 / (unsigned)c.bs);
            if (c.n_blocks < 2) c.n_blocks = 2;
            c.max_batch = 1 + (int)rnd(64);
            c.max_seqs = 1 + (int)rnd(8);
            random_run(&c);
            runs++;
            for (int i = 0; i < n_seqs; i++) total_preempt += (uint64_t)T[i].n_preempted;
        }
    /* the runs must have exercised preemption, or the KV-pressure checks prove nothing */
    T_CHECK(total_preempt > 0, "no preemption in %llu runs", (unsigned long long)runs);
    printf("engine_sched: %llu runs, %llu preemptions\n", (unsigned long long)runs, (unsigned long long)total_preempt);
    free(T);
    return t_done();
}
