/* policy.h — the decisions of the `slo` scheduling policy, as pure functions of the
 * engine's state and an explicit clock (so unit tests drive them with simulated time).
 * The scheduler (sched.c) gathers the state, calls these, and applies the result under
 * its KV-cache constraints. Prefix `pol_`.
 *
 *  - Step limit: running decodes are protected. A request with TPOT objective T that has
 *    produced g tokens, the first at t1, keeps its mean inter-token time <= T if its next
 *    token comes within T*g - (now - t1) (its accumulated slack, never less than T). The
 *    step may last as long as the smallest such allowance (pol_step_limit_ms).
 *  - Budget: the most prefill tokens that, added to the decodes, keep the predicted step
 *    time within that limit (pol_prefill_budget, from the cost model).
 *  - Decode capacity: a new request is admitted only while a decode-only step of every
 *    admitted request plus it stays within POL_DECODE_SHARE of the tightest TPOT among
 *    them, so prefill keeps a share of every step (pol_decode_fits).
 *  - Order of prefill work (waiting requests and partially prefilled ones alike, so a
 *    long prefill yields at every chunk boundary): best-effort last; a tenant served
 *    more than its fair share after others; then the short-prompt lane (<= short_prompt
 *    tokens left to compute) before the long one; earliest TTFT deadline first; arrival.
 *  - Feasibility: the predicted time to first token of a request = the prefill work
 *    ordered before it plus its own (and, for a waiting one, the wait for a seat), at the
 *    current prefill rate (pol_ttft_eta_ms); one that cannot meet its deadline
 *    (pol_late) is refused at admission (or served best-effort).
 *  - Fairness: a virtual token counter per tenant (`user`), as in VTC (Sheng et al.,
 *    "Fairness in Serving Large Language Models", OSDI'24): tokens computed for a tenant
 *    are charged to it; a tenant that becomes active starts at the least-served active
 *    tenant's count (no credit for idle time); a tenant more than `window` tokens ahead
 *    of the least-served active one yields to the others. */
#ifndef SW_ENGINE_POLICY_H
#define SW_ENGINE_POLICY_H
#include "base/base.h"
#include "engine/cost.h"

#define POL_DECODE_SHARE 0.8   /* share of the tightest TPOT a decode-only step may use */
/* Safety margins for the cost model's error (~10-15% on a shared 2-core machine, see
 * swiftlet:step_time_prediction_error): a step is planned to fill at most this share of
 * the TPOT limit, and a predicted time to first token is stretched by this factor
 * before it is compared with the deadline. */
#define POL_STEP_MARGIN 0.9
#define POL_TTFT_MARGIN 1.2
#define POL_MAX_TENANTS 256

/* A running request that is decoding (for the step limit). */
typedef struct pol_decode {
    double tpot_ms;       /* objective; <= 0: none */
    double t_first_ms;    /* when its first token was delivered */
    int n_gen;            /* tokens delivered so far (>= 1) */
} pol_decode;

/* Longest step (ms) that keeps every decode within its TPOT objective; INFINITY when no
 * decode has one. */
double pol_step_limit_ms(const pol_decode *d, int n, double now_ms);

/* Most prefill tokens (0..max_prefill) such that a step of n_dec decodes attending to
 * dec_attended positions in all, plus that many prefill tokens (and one more logits row),
 * is predicted to take <= limit_ms. */
int pol_prefill_budget(const cost_model *c, int n_dec, double dec_attended, double limit_ms, int max_prefill);

/* Whether n_seqs sequences decoding together at mean context ctx fit the decode share of
 * the tightest objective tpot_ms (<= 0 or INFINITY: always). */
bool pol_decode_fits(const cost_model *c, int n_seqs, double ctx, double tpot_ms);

/* Predicted ms until `tokens` prefill tokens are done at `per_step` tokens per step of
 * step_ms each (per_step <= 0: never, INFINITY). */
double pol_eta_ms(int tokens, int per_step, double step_ms);

/* The prefill rate ahead: this step takes now_tokens (its budget may spend the decodes'
 * accumulated slack); later steps take steady_tokens each, starting after wait_ms. */
typedef struct pol_rate {
    int now_tokens;       /* this step's prefill budget (>= 0) */
    double now_step_ms;
    int steady_tokens;    /* per later step (>= 1) */
    double steady_step_ms;
    double wait_ms;       /* before the later steps start (decodes leave no room until one ends) */
} pol_rate;
/* Predicted ms until `tokens` prefill tokens are done at rate r. */
double pol_prefill_eta_ms(const pol_rate *r, int tokens);

/* Predicted wait (ms) for a seat in the running batch of the idx-th (0-based) waiting
 * request beyond the seats free now, when the running requests release theirs after
 * release_ms[0..n) (ascending): the idx-th release; past the last one, requests are
 * assumed to cycle through the n seats at the same pace. 0 when n = 0. */
double pol_seat_wait_ms(const double *release_ms, int n, int idx);

/* Fair-share counters per tenant. */
typedef struct pol_tenant {
    uint64_t key;         /* hash of the user string; 0 = free slot */
    double served;        /* virtual token count */
    int n_live;           /* requests of this tenant the engine holds */
} pol_tenant;
typedef struct pol_fair {
    pol_tenant t[POL_MAX_TENANTS]; /* open addressing by key */
    double window;                 /* tokens a tenant may lead the least-served active one */
} pol_fair;
void pol_fair_init(pol_fair *f, double window);
/* Slot of a tenant (NULL/empty user: -1, untracked; table full: -1). A slot whose tenant
 * has no live request may be reused. */
int pol_fair_slot(pol_fair *f, const char *user);
void pol_fair_join(pol_fair *f, int slot);   /* a request of the tenant arrives */
void pol_fair_leave(pol_fair *f, int slot);  /* ... ends */
/* Charges computed tokens: prefill tokens count 1, generated tokens 2 (decode steps cost
 * more wall time per token than prefill chunks). */
void pol_fair_charge(pol_fair *f, int slot, int prefill_tokens, int decode_tokens);
bool pol_fair_over(const pol_fair *f, int slot); /* leads the least-served active tenant by > window */

/* A candidate for prefill work this step. */
typedef struct pol_cand {
    int idx;              /* caller's index */
    int pending;          /* prompt tokens still to compute (after the cached prefix) */
    double deadline_ms;   /* TTFT deadline; INFINITY: none */
    uint64_t arrival;     /* submission order */
    bool best_effort;     /* predicted to miss its objective: served after all others */
    bool over;            /* its tenant is over its fair share (pol_fair_over) */
    bool started;         /* partially prefilled (running); else waiting for a seat */
} pol_cand;
/* Sorts c into the order prefill work is served (see the header comment). */
void pol_order(pol_cand *c, int n, int short_prompt);

/* Feasibility of candidate c at time now_ms: when its first token is predicted
 * (absolute ms, stretched by POL_TTFT_MARGIN) with `ahead` prefill tokens ordered before
 * it at rate r. A waiting one (!c->started) also needs a seat: it is the n_new-th new
 * request, and those beyond the `seats` free now wait for running ones to release
 * theirs (release_ms[0..n_running), ascending; pol_seat_wait_ms). */
double pol_ttft_eta_ms(const pol_rate *r, const pol_cand *c, int ahead, int n_new, int seats,
                       const double *release_ms, int n_running, double now_ms);
/* Whether c, first token predicted at eta_ms, misses its TTFT deadline. The first in
 * line on an idle engine (alone) never does: nothing is in its way, and serving it also
 * corrects a cost model that may be wrong. */
bool pol_late(const pol_cand *c, double eta_ms, bool alone);

#endif
