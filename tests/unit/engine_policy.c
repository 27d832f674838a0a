/* engine_policy.c — the slo policy's decisions and the step-time cost model, as pure
 * functions driven by a simulated clock (deterministic), then the policy end to end in
 * the real engine on the tiny F32 model:
 *  - cost model: recovers known coefficients from noiseless steps; holds its prior where
 *    recent steps do not vary; never fits a negative cost; tracks its error;
 *  - step limit from TPOT slack, prefill budget, decode capacity, ETA, seat waits;
 *  - order: best-effort last, over-served tenant after, short lane first, EDF, arrival;
 *  - fair share counters (VTC): lift on join, over-window detection, slot reuse;
 *  - engine: a request alone on an idle engine is served whatever its objective; behind
 *    a running one, refusal at admission (verdict + finish REJECTED + reason) vs
 *    best-effort (served, counted); a short prompt overtakes a long prefill (chunk-boundary
 *    preemption) under slo but not under fcfs; a flooding tenant does not keep another
 *    tenant's request at the back of the queue. */
#include "t.h"
#include <math.h>
#include "engine/cost.h"
#include "engine/engine.h"
#include "engine/policy.h"

static double truth(const double th[COST_NF], const cost_shape *s) {
    return th[0] + th[1] * s->tokens + th[2] * s->rows + th[3] * s->attended / 1000.0;
}

static void test_cost(void) {
    const double th[COST_NF] = {12.0, 2.5, 0.8, 1.5};
    const double prior[COST_NF] = {5.0, 1.0, 1.0, 1.0};
    cost_model c;
    cost_init(&c, prior);
    cost_shape s0 = {.tokens = 10, .rows = 2, .attended = 500};
    T_CHECK(fabs(cost_predict(&c, &s0) - truth(prior, &s0)) < 1e-9, "prediction = prior before data");
    /* varied shapes: the fit converges to the truth */
    uint64_t x = 7;
    for (int i = 0; i < 200; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        cost_shape s = {.tokens = 1 + (int)(x >> 58), .rows = 1 + (int)((x >> 40) & 15), .attended = (double)((x >> 20) & 4095)};
        if (s.rows > s.tokens) s.rows = s.tokens;
        cost_observe(&c, &s, truth(th, &s));
    }
    for (int j = 0; j < COST_NF; j++)
        T_CHECK(fabs(c.theta[j] - th[j]) < 0.1 * th[j], "theta[%d] = %.4f, truth %.4f", j, c.theta[j], th[j]);
    cost_shape s1 = {.tokens = 128, .rows = 1, .attended = 8256};
    T_CHECK(fabs(cost_predict(&c, &s1) - truth(th, &s1)) < 0.02 * truth(th, &s1), "prediction of an unseen shape");
    T_CHECK(c.err_mean < 0.05, "error mean %.3f after convergence", c.err_mean);
    T_CHECK(c.last_actual_ms > 0 && c.last_pred_ms > 0, "last prediction recorded");

    /* decode-only steps of one size: the per-token cost cannot be told from the fixed
     * cost, so the prior keeps it; the prediction at that size still fits */
    cost_init(&c, th);
    const double th2[COST_NF] = {20.0, 2.5, 0.8, 1.5};
    cost_shape d = {.tokens = 16, .rows = 16, .attended = 16 * 200.0};
    for (int i = 0; i < 100; i++) cost_observe(&c, &d, truth(th2, &d));
    T_CHECK(fabs(cost_predict(&c, &d) - truth(th2, &d)) < 0.05 * truth(th2, &d), "decode-only prediction %.2f vs %.2f",
            cost_predict(&c, &d), truth(th2, &d));
    for (int j = 0; j < COST_NF; j++) T_CHECK(c.theta[j] >= 0 && isfinite(c.theta[j]), "theta[%d] finite, >= 0", j);

    /* a few prefill steps, then hundreds of decode steps: the prefill steps are kept
     * (per-size buckets), so a 128-token chunk is still predicted right */
    const double wrong[COST_NF] = {50.0, 20.0, 0.0, 0.0}; /* e.g. calibrated on a busy machine */
    cost_init(&c, wrong);
    for (int i = 0; i < 8; i++) {
        cost_shape pf = {.tokens = 64 + 8 * i, .rows = 1, .attended = 64.0 * 64};
        cost_observe(&c, &pf, truth(th, &pf));
    }
    for (int i = 0; i < 500; i++) {
        cost_shape dd = {.tokens = 1 + i % 3, .rows = 1 + i % 3, .attended = 300.0 * (1 + i % 3)};
        cost_observe(&c, &dd, truth(th, &dd));
    }
    T_CHECK(fabs(cost_predict(&c, &s1) - truth(th, &s1)) < 0.1 * truth(th, &s1), "128-token chunk after 500 decodes: %.1f vs %.1f",
            cost_predict(&c, &s1), truth(th, &s1));

    /* a start-up profile taken on a busy machine (every step ~400 ms too slow): a
     * thousand real steps (10-50 s of serving) bring the predictions back */
    cost_init(&c, prior);
    for (int i = 0; i < 12; i++) {
        cost_shape cs = {.tokens = i < 6 ? 1 + 3 * i : 16 * i, .rows = i < 6 ? 1 + 3 * i : 1, .attended = 500.0 * i};
        cost_observe(&c, &cs, truth(th, &cs) + 400.0);
    }
    cost_set_prior_from_fit(&c);
    for (int i = 0; i < 1000; i++) {
        cost_shape dd = {.tokens = 1 + i % 8, .rows = 1 + i % 8, .attended = 300.0 * (1 + i % 8)};
        cost_observe(&c, &dd, truth(th, &dd));
        if (i % 8 == 0) {
            cost_shape pf = {.tokens = 100 + i % 28, .rows = 1, .attended = 5000};
            cost_observe(&c, &pf, truth(th, &pf));
        }
    }
    cost_shape d4 = {.tokens = 4, .rows = 4, .attended = 1200};
    T_CHECK(fabs(cost_predict(&c, &s1) - truth(th, &s1)) < 0.15 * truth(th, &s1), "busy profile, 128 tokens: %.1f vs %.1f",
            cost_predict(&c, &s1), truth(th, &s1));
    T_CHECK(fabs(cost_predict(&c, &d4) - truth(th, &d4)) < 0.15 * truth(th, &d4), "busy profile, 4 decodes: %.1f vs %.1f",
            cost_predict(&c, &d4), truth(th, &d4));

    /* a decreasing trend in the data must not produce a negative cost per token */
    cost_init(&c, prior);
    for (int i = 0; i < 64; i++) {
        cost_shape s = {.tokens = 1 + i, .rows = 1, .attended = 0};
        cost_observe(&c, &s, 100.0 - i);
    }
    for (int j = 0; j < COST_NF; j++) T_CHECK(c.theta[j] >= 0, "theta[%d] = %g >= 0", j, c.theta[j]);
    /* garbage measurements are ignored */
    uint64_t n = c.n_total;
    cost_observe(&c, &s0, NAN);
    cost_observe(&c, &s0, -1);
    T_EQ_INT(c.n_total, n);
}

static void test_limits(void) {
    /* simulated clock: now = 1000 ms */
    pol_decode d[3] = {
        {.tpot_ms = 50, .t_first_ms = 700, .n_gen = 10},  /* allowance 500 - 300 = 200 */
        {.tpot_ms = 100, .t_first_ms = 950, .n_gen = 2},  /* 200 - 50 = 150 */
        {.tpot_ms = 0, .t_first_ms = 0, .n_gen = 5},      /* no objective */
    };
    T_CHECK(fabs(pol_step_limit_ms(d, 3, 1000.0) - 150.0) < 1e-9, "step limit = least slack");
    /* behind schedule: never below the objective itself */
    pol_decode late = {.tpot_ms = 40, .t_first_ms = 0, .n_gen = 3};
    T_CHECK(fabs(pol_step_limit_ms(&late, 1, 1000.0) - 40.0) < 1e-9, "late request: limit = its TPOT");
    T_OK(isinf(pol_step_limit_ms(&d[2], 1, 1000.0)));
    T_OK(isinf(pol_step_limit_ms(NULL, 0, 0)));

    cost_model c;
    const double th[COST_NF] = {10.0, 1.0, 0.0, 0.0};
    cost_init(&c, th);
    /* 4 decodes: 10 + (4 + B) <= 50 -> B = 36 */
    T_EQ_INT(pol_prefill_budget(&c, 4, 0, 50.0, 124), 36);
    T_EQ_INT(pol_prefill_budget(&c, 4, 0, INFINITY, 124), 124);
    T_EQ_INT(pol_prefill_budget(&c, 4, 0, 1000.0, 124), 124);
    T_EQ_INT(pol_prefill_budget(&c, 4, 0, 14.5, 124), 0); /* decodes alone take 14 */
    T_EQ_INT(pol_prefill_budget(&c, 4, 0, 50.0, 0), 0);
    /* decode capacity: 0.8 * 30 = 24 >= 10 + n  <=> n <= 14 */
    T_OK(pol_decode_fits(&c, 14, 100, 30.0));
    T_OK(!pol_decode_fits(&c, 15, 100, 30.0));
    T_OK(pol_decode_fits(&c, 1000, 100, 0));
    T_OK(pol_decode_fits(&c, 1000, 100, INFINITY));
    /* ETA: 300 tokens at 128 per 40 ms step -> 3 steps */
    T_CHECK(fabs(pol_eta_ms(300, 128, 40.0) - 120.0) < 1e-9, "eta");
    T_CHECK(pol_eta_ms(0, 128, 40.0) == 0, "eta of nothing");
    T_OK(isinf(pol_eta_ms(10, 0, 40.0)));
    /* 100 tokens now (200 ms), then 30 per 50 ms step after a 1 s wait */
    pol_rate pr = {.now_tokens = 100, .now_step_ms = 200, .steady_tokens = 30, .steady_step_ms = 50, .wait_ms = 1000};
    T_CHECK(pol_prefill_eta_ms(&pr, 80) == 200, "fits this step");
    T_CHECK(pol_prefill_eta_ms(&pr, 160) == 200 + 1000 + 100, "rest at the steady rate: %g", pol_prefill_eta_ms(&pr, 160));
    pr.now_tokens = 0;
    T_CHECK(pol_prefill_eta_ms(&pr, 30) == 1050, "no budget now");
    T_CHECK(pol_prefill_eta_ms(&pr, 0) == 0, "nothing to do");
    /* seats released at 100, 300, 500 ms: the 4th waiting request gets the first seat's
     * second turn */
    const double rel[3] = {100, 300, 500};
    T_CHECK(pol_seat_wait_ms(rel, 3, 0) == 100 && pol_seat_wait_ms(rel, 3, 2) == 500, "seat waits");
    T_CHECK(pol_seat_wait_ms(rel, 3, 3) == 600 && pol_seat_wait_ms(rel, 3, 5) == 1000, "second round");
    T_CHECK(pol_seat_wait_ms(rel, 0, 4) == 0, "no running request: no wait");
}

static void test_order(void) {
    pol_cand c[] = {
        {.idx = 0, .pending = 1000, .deadline_ms = 100, .arrival = 0},                     /* long, urgent */
        {.idx = 1, .pending = 50, .deadline_ms = 500, .arrival = 1},                       /* short */
        {.idx = 2, .pending = 60, .deadline_ms = 300, .arrival = 2},                       /* short, earlier deadline */
        {.idx = 3, .pending = 10, .deadline_ms = 50, .arrival = 3, .best_effort = true},  /* best-effort */
        {.idx = 4, .pending = 20, .deadline_ms = 10, .arrival = 4, .over = true},         /* over-served tenant */
        {.idx = 5, .pending = 50, .deadline_ms = 500, .arrival = 0},                       /* tie with 1, earlier */
        {.idx = 6, .pending = 256, .deadline_ms = INFINITY, .arrival = 6},                 /* short (= threshold), no objective */
        {.idx = 7, .pending = 2000, .deadline_ms = 90, .arrival = 7},                      /* long, most urgent long */
    };
    int n = (int)(sizeof c / sizeof c[0]);
    pol_order(c, n, 256);
    const int want[] = {2, 5, 1, 6, 7, 0, 4, 3};
    for (int i = 0; i < n; i++) T_CHECK(c[i].idx == want[i], "position %d: got %d, want %d", i, c[i].idx, want[i]);
}

static void test_fair(void) {
    pol_fair f;
    pol_fair_init(&f, 100.0);
    T_EQ_INT(pol_fair_slot(&f, NULL), -1);
    T_EQ_INT(pol_fair_slot(&f, ""), -1);
    int a = pol_fair_slot(&f, "alice"), b = pol_fair_slot(&f, "bob");
    T_OK(a >= 0 && b >= 0 && a != b);
    T_EQ_INT(pol_fair_slot(&f, "alice"), a);
    pol_fair_join(&f, a);
    pol_fair_charge(&f, a, 5000, 0);
    T_OK(!pol_fair_over(&f, a)); /* alone: nobody to yield to */
    pol_fair_join(&f, b);         /* joins at alice's count: no credit for idle time */
    T_CHECK(fabs(f.t[b].served - 5000.0) < 1e-9, "bob lifted to %.0f", f.t[b].served);
    pol_fair_charge(&f, a, 80, 10);   /* +100: exactly the window */
    T_OK(!pol_fair_over(&f, a));
    pol_fair_charge(&f, a, 1, 0);
    T_OK(pol_fair_over(&f, a));
    T_OK(!pol_fair_over(&f, b));
    pol_fair_leave(&f, b);            /* bob gone: alice no longer over anyone */
    T_OK(!pol_fair_over(&f, a));
    pol_fair_leave(&f, a);
    pol_fair_charge(&f, -1, 10, 10);  /* untracked: no effect, no crash */
    /* a full table reuses slots of tenants without live requests */
    pol_fair_init(&f, 100.0);
    char name[32];
    int full = 0;
    for (int i = 0; i < POL_MAX_TENANTS + 10; i++) {
        snprintf(name, sizeof name, "tenant-%d", i);
        int s = pol_fair_slot(&f, name);
        if (s < 0) { full++; continue; }
        pol_fair_join(&f, s);
    }
    T_EQ_INT(full, 10); /* every slot live: the rest are untracked */
    pol_fair_leave(&f, pol_fair_slot(&f, "tenant-3"));
    int s = pol_fair_slot(&f, "newcomer");
    T_OK(s >= 0);
}

/* ---------------- the real engine ---------------- */

typedef struct { model *m; tok *t; } fixture;

static engine *mk(fixture *f, engine_policy pol, int max_batch, int max_seqs, bool reject) {
    engine_config c;
    engine_config_default(&c);
    c.n_threads = 1;
    c.kv_tokens = 4096;
    c.max_batch_tokens = max_batch;
    c.max_seqs = max_seqs;
    c.policy = pol;
    c.slo_reject = reject;
    engine *e = NULL;
    sw_err err = {0};
    T_CHECK(engine_create(f->m, f->t, &c, &e, &err) == SW_OK, "engine_create: %s", err.msg);
    return e;
}

static engine_req_params prm(const int32_t *prompt, int n, int max_tokens) {
    engine_req_params p = {0};
    p.prompt = prompt;
    p.n_prompt = n;
    p.max_tokens = max_tokens;
    p.ignore_eos = true;
    sampler_params_default(&p.sampling);
    p.sampling.temperature = 0;
    return p;
}

static engine_finish drain(engine_req *r, int *n_out) {
    engine_token tk[16];
    engine_finish fin = ENGINE_FINISH_NONE;
    int n = 0;
    while (fin == ENGINE_FINISH_NONE) n += engine_req_poll(r, tk, 16, 10000, &fin);
    if (n_out) *n_out = n;
    return fin;
}

static void test_engine(void) {
    fixture f;
    sw_err err = {0};
    if (model_load(SHARED "/models/llama-spm-tiny.f32.gguf", &f.m, &err) != SW_OK) { T_CHECK(0, "%s", err.msg); return; }
    T_EQ_INT(tok_create(model_gguf(f.m), &f.t, &err), SW_OK);
    int32_t prompt[700];
    for (int i = 0; i < 700; i++) prompt[i] = 100 + (i * 37) % 5000;

    /* alone on an idle engine, even a hopeless objective is served (nothing is in its
     * way; it also corrects the cost model) */
    engine *e = mk(&f, ENGINE_POLICY_SLO, 64, 8, true);
    engine_req_params p = prm(prompt, 40, 4);
    p.slo_ttft_ms = 0.001;
    engine_req *r;
    int n = -1;
    T_EQ_INT(engine_submit(e, &p, &r, &err), SW_OK);
    T_EQ_INT(engine_req_verdict(r, 10000), ENGINE_VERDICT_ACCEPTED);
    T_EQ_INT(drain(r, &n), ENGINE_FINISH_LENGTH);
    engine_req_release(r);
    /* refusal at admission: an objective no step can meet, behind a running request */
    engine_req_params pb = prm(prompt + 100, 40, 400);
    engine_req *busy;
    T_EQ_INT(engine_submit(e, &pb, &busy, &err), SW_OK);
    engine_token tk1;
    engine_finish fin1;
    T_EQ_INT(engine_req_poll(busy, &tk1, 1, 10000, &fin1), 1); /* it is running */
    T_EQ_INT(engine_submit(e, &p, &r, &err), SW_OK);
    T_EQ_INT(engine_req_verdict(r, 10000), ENGINE_VERDICT_REJECTED);
    T_EQ_INT(drain(r, &n), ENGINE_FINISH_REJECTED);
    T_EQ_INT(n, 0);
    const char *why = engine_req_error(r);
    T_CHECK(why && strstr(why, "objective"), "reason: %s", why ? why : "(none)");
    engine_req_release(r);
    /* a reachable objective is accepted and served in full */
    p.slo_ttft_ms = 60000;
    T_EQ_INT(engine_submit(e, &p, &r, &err), SW_OK);
    T_EQ_INT(engine_req_verdict(r, 10000), ENGINE_VERDICT_ACCEPTED);
    T_EQ_INT(drain(r, &n), ENGINE_FINISH_LENGTH);
    T_EQ_INT(n, 4);
    engine_req_release(r);
    engine_req_release(busy);
    engine_stats st;
    engine_get_stats(e, &st);
    T_EQ_INT(st.n_slo_rejected, 1);
    T_OK(st.last_step_pred_ms > 0 && st.step_pred_err >= 0 && isfinite(st.step_pred_err));
    engine_destroy(e);

    /* best-effort: the same hopeless objective is served anyway, and counted */
    e = mk(&f, ENGINE_POLICY_SLO, 64, 8, false);
    p.slo_ttft_ms = 0.001;
    T_EQ_INT(engine_submit(e, &pb, &busy, &err), SW_OK);
    T_EQ_INT(engine_req_poll(busy, &tk1, 1, 10000, &fin1), 1);
    T_EQ_INT(engine_submit(e, &p, &r, &err), SW_OK);
    T_EQ_INT(engine_req_verdict(r, 10000), ENGINE_VERDICT_ACCEPTED);
    T_EQ_INT(drain(r, &n), ENGINE_FINISH_LENGTH);
    T_EQ_INT(n, 4);
    engine_req_release(r);
    engine_req_release(busy);
    engine_get_stats(e, &st);
    T_EQ_INT(st.n_slo_best_effort, 1);
    T_EQ_INT(st.n_slo_rejected, 0);
    engine_destroy(e);

    /* a short prompt submitted right after a long one: under slo it gets its first token
     * first (the long prefill yields at a chunk boundary); under fcfs it waits */
    for (int pol = 0; pol < 2; pol++) {
        e = mk(&f, pol ? ENGINE_POLICY_SLO : ENGINE_POLICY_FCFS, 32, 8, false);
        engine_req_params pl = prm(prompt, 700, 2), ps = prm(prompt + 300, 20, 2);
        pl.slo_ttft_ms = ps.slo_ttft_ms = 600000;
        engine_req *rl, *rs;
        T_EQ_INT(engine_submit(e, &pl, &rl, &err), SW_OK);
        T_EQ_INT(engine_submit(e, &ps, &rs, &err), SW_OK);
        drain(rl, NULL);
        drain(rs, NULL);
        engine_timing tl, ts;
        engine_req_timing(rl, &tl);
        engine_req_timing(rs, &ts);
        if (pol)
            T_CHECK(ts.t_first_token_ms < tl.t_first_token_ms, "slo: short first token %.1f ms after long's? (long %.1f)",
                    ts.t_first_token_ms - ts.t_submit_ms, tl.t_first_token_ms - tl.t_submit_ms);
        else
            T_CHECK(ts.t_first_token_ms > tl.t_first_token_ms, "fcfs: the short prompt waits behind the long prefill");
        engine_req_release(rl);
        engine_req_release(rs);
        engine_destroy(e);
    }

    /* fairness: tenant "flood" queues 10 requests, then "calm" sends one; one seat, so
     * the queue is served one by one. Under slo "calm" is served before most of the
     * flood; under fcfs it is last. */
    for (int pol = 0; pol < 2; pol++) {
        e = mk(&f, pol ? ENGINE_POLICY_SLO : ENGINE_POLICY_FCFS, 16, 1, false);
        engine_req *fl[10], *calm;
        for (int i = 0; i < 10; i++) {
            engine_req_params q = prm(prompt + 10 * i, 24, 6);
            q.user = "flood";
            T_EQ_INT(engine_submit(e, &q, &fl[i], &err), SW_OK);
        }
        engine_req_params q = prm(prompt + 500, 24, 6);
        q.user = "calm";
        T_EQ_INT(engine_submit(e, &q, &calm, &err), SW_OK);
        drain(calm, NULL);
        engine_timing tc;
        engine_req_timing(calm, &tc);
        int after = 0;
        for (int i = 0; i < 10; i++) {
            drain(fl[i], NULL);
            engine_timing t;
            engine_req_timing(fl[i], &t);
            after += t.t_first_token_ms > tc.t_first_token_ms;
            engine_req_release(fl[i]);
        }
        engine_req_release(calm);
        if (pol) T_CHECK(after >= 6, "slo: %d of 10 flood requests served after the other tenant's", after);
        else T_EQ_INT(after, 0);
        engine_destroy(e);
    }
    tok_destroy(f.t);
    model_free(f.m);
}

int main(void) {
    test_cost();
    test_limits();
    test_order();
    test_fair();
    if (t_shared_missing()) T_SKIP("../shared missing: engine part");
    else test_engine();
    return t_done();
}
