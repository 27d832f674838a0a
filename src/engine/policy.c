/* policy.c — the slo policy's decisions (see policy.h): step limit from TPOT slack,
 * prefill budget and decode capacity from the cost model, the order of prefill work,
 * time-to-first-token estimates and the verdict, and the per-tenant fair-share counters. */
#include "engine/policy.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

double pol_step_limit_ms(const pol_decode *d, int n, double now_ms) {
    double lim = INFINITY;
    for (int i = 0; i < n; i++) {
        if (!(d[i].tpot_ms > 0)) continue;
        double allow = d[i].tpot_ms * d[i].n_gen - (now_ms - d[i].t_first_ms);
        if (allow < d[i].tpot_ms) allow = d[i].tpot_ms;
        if (allow < lim) lim = allow;
    }
    return lim;
}

static double step_ms(const cost_model *c, int n_dec, double dec_attended, int prefill) {
    cost_shape s = {.tokens = n_dec + prefill, .rows = n_dec + (prefill > 0), .attended = dec_attended};
    return cost_predict(c, &s);
}

int pol_prefill_budget(const cost_model *c, int n_dec, double dec_attended, double limit_ms, int max_prefill) {
    if (max_prefill <= 0) return 0;
    if (!(limit_ms < INFINITY)) return max_prefill;
    if (step_ms(c, n_dec, dec_attended, max_prefill) <= limit_ms) return max_prefill;
    if (step_ms(c, n_dec, dec_attended, 1) > limit_ms) return 0;
    int lo = 1, hi = max_prefill; /* lo fits, hi does not */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (step_ms(c, n_dec, dec_attended, mid) <= limit_ms) lo = mid; else hi = mid;
    }
    return lo;
}

bool pol_decode_fits(const cost_model *c, int n_seqs, double ctx, double tpot_ms) {
    if (!(tpot_ms > 0) || !(tpot_ms < INFINITY)) return true;
    cost_shape s = {.tokens = n_seqs, .rows = n_seqs, .attended = (double)n_seqs * ctx};
    return cost_predict(c, &s) <= POL_DECODE_SHARE * tpot_ms;
}

double pol_eta_ms(int tokens, int per_step, double step) {
    if (tokens <= 0) return 0;
    if (per_step <= 0) return INFINITY;
    return (double)((tokens + per_step - 1) / per_step) * step;
}

double pol_prefill_eta_ms(const pol_rate *r, int tokens) {
    if (tokens <= 0) return 0;
    if (r->now_tokens >= tokens) return r->now_step_ms;
    double t = r->now_tokens > 0 ? r->now_step_ms : 0;
    return t + r->wait_ms + pol_eta_ms(tokens - (r->now_tokens > 0 ? r->now_tokens : 0), r->steady_tokens, r->steady_step_ms);
}

double pol_seat_wait_ms(const double *release_ms, int n, int idx) {
    if (n <= 0 || idx < 0) return 0;
    return release_ms[idx % n] + (double)(idx / n) * release_ms[n - 1];
}

double pol_ttft_eta_ms(const pol_rate *r, const pol_cand *c, int ahead, int n_new, int seats,
                       const double *release_ms, int n_running, double now_ms) {
    double eta = pol_prefill_eta_ms(r, ahead + c->pending);
    if (!c->started) {
        double seat = n_new >= seats ? pol_seat_wait_ms(release_ms, n_running, n_new - seats) : 0;
        double own = seat + pol_prefill_eta_ms(r, c->pending);
        if (own > eta) eta = own;
    }
    return now_ms + eta * POL_TTFT_MARGIN;
}

bool pol_late(const pol_cand *c, double eta_ms, bool alone) {
    return !alone && isfinite(c->deadline_ms) && eta_ms > c->deadline_ms;
}

/* ---- fairness ---- */

void pol_fair_init(pol_fair *f, double window) {
    memset(f, 0, sizeof *f);
    f->window = window;
}

/* Least virtual count among tenants with live requests (INFINITY: none). */
static double min_active(const pol_fair *f, int skip) {
    double m = INFINITY;
    for (int i = 0; i < POL_MAX_TENANTS; i++)
        if (i != skip && f->t[i].key && f->t[i].n_live > 0 && f->t[i].served < m) m = f->t[i].served;
    return m;
}

int pol_fair_slot(pol_fair *f, const char *user) {
    if (!user || !user[0]) return -1;
    uint64_t key = XXH3_64bits(user, strlen(user));
    if (key == 0) key = 1;
    int reuse = -1;
    for (int k = 0; k < POL_MAX_TENANTS; k++) {
        int i = (int)((key + (uint64_t)k) % POL_MAX_TENANTS);
        if (f->t[i].key == key) return i;
        if (f->t[i].key == 0) {
            if (reuse < 0) reuse = i;
            break;
        }
        if (reuse < 0 && f->t[i].n_live == 0) reuse = i;
    }
    if (reuse >= 0) f->t[reuse] = (pol_tenant){.key = key};
    return reuse;
}

void pol_fair_join(pol_fair *f, int slot) {
    if (slot < 0) return;
    pol_tenant *t = &f->t[slot];
    if (t->n_live++ == 0) {
        double m = min_active(f, slot);
        if (m < INFINITY && t->served < m) t->served = m; /* no credit for idle time */
    }
}

void pol_fair_leave(pol_fair *f, int slot) {
    if (slot >= 0 && f->t[slot].n_live > 0) f->t[slot].n_live--;
}

void pol_fair_charge(pol_fair *f, int slot, int prefill_tokens, int decode_tokens) {
    if (slot >= 0) f->t[slot].served += prefill_tokens + 2.0 * decode_tokens;
}

bool pol_fair_over(const pol_fair *f, int slot) {
    if (slot < 0 || f->t[slot].n_live == 0) return false;
    double m = min_active(f, -1);
    return f->t[slot].served - m > f->window;
}

/* ---- order ---- */

static int cand_cmp(const void *pa, const void *pb, void *ctx) {
    const pol_cand *a = pa, *b = pb;
    int short_prompt = *(const int *)ctx;
    if (a->best_effort != b->best_effort) return a->best_effort ? 1 : -1;
    if (a->over != b->over) return a->over ? 1 : -1;
    bool sa = a->pending <= short_prompt, sb = b->pending <= short_prompt;
    if (sa != sb) return sa ? -1 : 1;
    if (a->deadline_ms != b->deadline_ms) return a->deadline_ms < b->deadline_ms ? -1 : 1;
    return a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
}

void pol_order(pol_cand *c, int n, int short_prompt) {
    if (n < 2) return; /* c may be NULL when n = 0 */
    qsort_r(c, (size_t)n, sizeof *c, cand_cmp, &short_prompt);
}
