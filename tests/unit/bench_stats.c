/* bench_stats.c — the arithmetic of `swiftlet bench` against hand-computed values:
 * numpy-default (linear) percentiles, summary statistics, the report aggregation
 * (throughputs, goodput, SLO attainment with failures), and the arrival generators:
 * Poisson and gamma gaps have the promised mean 1/R and variance 1/(R^2 B); and the
 * sweep chart's structure (panels, legends, escaping, NaN points left out); the
 * short-prompt TTFT statistics and the HTTP 503 (rejected) counts. */
#include "bench/bench.h"
#include "t.h"
#include <math.h>

#define CLOSE(a, b, tol) T_CHECK(fabs((a) - (b)) <= (tol), "%s = %.9g, expected %.9g", #a, (double)(a), (double)(b))

static void test_percentiles(void) {
    double v4[] = {1, 2, 3, 4};
    CLOSE(bench_percentile(v4, 4, 50), 2.5, 1e-12);
    CLOSE(bench_percentile(v4, 4, 90), 3.7, 1e-12);
    CLOSE(bench_percentile(v4, 4, 99), 3.97, 1e-12);
    CLOSE(bench_percentile(v4, 4, 0), 1, 0);
    CLOSE(bench_percentile(v4, 4, 100), 4, 0);
    double v5[] = {15, 20, 35, 40, 50}; /* numpy.percentile(v5, 40) == 29.0 */
    CLOSE(bench_percentile(v5, 5, 40), 29.0, 1e-12);
    CLOSE(bench_percentile(v5, 5, 50), 35.0, 1e-12);
    double one[] = {7};
    CLOSE(bench_percentile(one, 1, 99), 7, 0);
    T_OK(isnan(bench_percentile(one, 0, 50)));
    /* stat_compute sorts first: 1..100 shuffled; numpy: p90 = 90.1, p99 = 99.01 */
    double v[100];
    for (int i = 0; i < 100; i++) v[i] = (double)((i * 37) % 100 + 1);
    bench_stat st;
    bench_stat_compute(v, 100, &st);
    T_EQ_INT(st.n, 100);
    CLOSE(st.mean, 50.5, 1e-12);
    CLOSE(st.p50, 50.5, 1e-12);
    CLOSE(st.p90, 90.1, 1e-9);
    CLOSE(st.p99, 99.01, 1e-9);
    bench_stat_compute(v, 0, &st);
    T_OK(st.n == 0 && isnan(st.mean) && isnan(st.p99));
}

static void sample_moments(double rate, double b, double *mean, double *var, double *mn) {
    bench_rng r;
    bench_rng_seed(&r, 42);
    int n = 400000;
    double s = 0, s2 = 0;
    *mn = INFINITY;
    for (int i = 0; i < n; i++) {
        double g = bench_arrival_gap(&r, rate, b);
        s += g;
        s2 += g * g;
        if (g < *mn) *mn = g;
    }
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
}

static void test_arrivals(void) {
    const double rates[] = {4, 4, 4, 0.5}, bs[] = {1, 0.5, 4, 2};
    for (int k = 0; k < 4; k++) {
        double mean, var, mn;
        sample_moments(rates[k], bs[k], &mean, &var, &mn);
        double em = 1 / rates[k], ev = 1 / (rates[k] * rates[k] * bs[k]);
        T_CHECK(fabs(mean - em) < 0.01 * em, "rate %g B %g: mean %g expected %g", rates[k], bs[k], mean, em);
        T_CHECK(fabs(var - ev) < 0.03 * ev, "rate %g B %g: variance %g expected %g", rates[k], bs[k], var, ev);
        T_CHECK(mn >= 0, "gaps are non-negative");
    }
    /* the Poisson count in a window: P(no arrival within 1/R) = e^-1 */
    bench_rng r;
    bench_rng_seed(&r, 7);
    int n = 200000, gt = 0;
    for (int i = 0; i < n; i++) gt += bench_arrival_gap(&r, 10, 1) > 0.1;
    CLOSE((double)gt / n, exp(-1), 0.005);
    /* same seed, same sequence */
    bench_rng a, b;
    bench_rng_seed(&a, 99);
    bench_rng_seed(&b, 99);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= bench_arrival_gap(&a, 3, 0.7) == bench_arrival_gap(&b, 3, 0.7);
    T_OK(same);
    /* uniform range covers its ends */
    int seen_lo = 0, seen_hi = 0, out = 0;
    for (int i = 0; i < 10000; i++) {
        int x = bench_rng_range(&a, 16, 20);
        seen_lo |= x == 16; seen_hi |= x == 20; out |= x < 16 || x > 20;
    }
    T_OK(seen_lo && seen_hi && !out);
}

static void test_aggregate(void) {
    bench_report r = {0};
    bench_result res[5] = {0};
    double itl0[] = {10, 30}, itl1[] = {20}, itl2[] = {40, 50, 60};
    /* ok: ttft, e2e, tokens -> tpot = (e2e - ttft)/(tokens - 1) */
    res[0] = (bench_result){.ok = 1, .ttft_ms = 100, .e2e_ms = 140, .output_tokens = 3, .prompt_tokens = 10, .itl_ms = itl0, .n_itl = 2};
    res[1] = (bench_result){.ok = 1, .ttft_ms = 200, .e2e_ms = 220, .output_tokens = 2, .prompt_tokens = -1, .approx_prompt_tokens = 33, .itl_ms = itl1, .n_itl = 1};
    res[2] = (bench_result){.ok = 1, .ttft_ms = 300, .e2e_ms = 450, .output_tokens = 4, .prompt_tokens = 20, .itl_ms = itl2, .n_itl = 3};
    res[3] = (bench_result){.ok = 1, .ttft_ms = 50, .e2e_ms = 50, .output_tokens = 1, .prompt_tokens = 5};
    res[4] = (bench_result){.ok = 0};
    snprintf(res[4].err, sizeof res[4].err, "HTTP 503: busy");
    for (int i = 0; i < 4; i++) res[i].tpot_ms = res[i].output_tokens > 1 ? (res[i].e2e_ms - res[i].ttft_ms) / (res[i].output_tokens - 1) : -1;
    r.results = res;
    r.n_results = 5;
    r.duration_s = 2.0;
    r.cfg.slo_ttft_ms = 250;
    r.cfg.slo_tpot_ms = 25;
    bench_report_aggregate(&r);
    T_EQ_INT(r.completed, 4);
    T_EQ_INT(r.failed, 1);
    T_CHECK(r.n_errors == 1 && !strcmp(r.errors[0], "HTTP 503: busy"), "error kept");
    T_EQ_INT(r.total_output_tokens, 10);
    T_EQ_INT(r.total_input_tokens, 10 + 33 + 20 + 5);
    CLOSE(r.request_throughput, 2.0, 1e-12);
    CLOSE(r.output_throughput, 5.0, 1e-12);
    /* ttft {50,100,200,300}: mean 162.5, p50 150, p90 270, p99 297 */
    CLOSE(r.ttft.mean, 162.5, 1e-9);
    CLOSE(r.ttft.p50, 150, 1e-9);
    CLOSE(r.ttft.p90, 270, 1e-9);
    CLOSE(r.ttft.p99, 297, 1e-9);
    /* tpot {20, 20, 50} (the 1-token request has none) */
    T_EQ_INT(r.tpot.n, 3);
    CLOSE(r.tpot.mean, 30, 1e-9);
    CLOSE(r.tpot.p50, 20, 1e-9);
    /* itl pooled {10,20,30,40,50,60} */
    T_EQ_INT(r.itl.n, 6);
    CLOSE(r.itl.p50, 35, 1e-9);
    CLOSE(r.itl.p90, 55, 1e-9);
    CLOSE(r.e2el.p50, 180, 1e-9);
    /* SLOs TTFT <= 250, TPOT <= 25: requests 0, 1, 3 (3 has no TPOT) -> 3 good of 5 */
    T_EQ_INT(r.good, 3);
    CLOSE(r.goodput, 1.5, 1e-12);
    CLOSE(r.slo_attainment, 0.6, 1e-12);
    r.cfg.slo_ttft_ms = 0; /* TPOT alone: 0, 1, 3 still; request 2 has 50 ms */
    r.cfg.slo_tpot_ms = 60;
    bench_report_aggregate(&r);
    T_EQ_INT(r.good, 4);
    CLOSE(r.slo_attainment, 0.8, 1e-12);
    json_t *j = bench_report_json(&r);
    T_CHECK(json_is_null(json_object_get(j, "slo_ttft_ms")), "absent SLO is null");
    CLOSE(json_real_value(json_object_get(json_object_get(j, "itl_ms"), "p90")), 55, 1e-9);
    json_decref(j);
    /* nothing completed: no NaN leaks into JSON numbers */
    r.n_results = 0;
    bench_report_aggregate(&r);
    j = bench_report_json(&r);
    T_OK(json_is_null(json_object_get(json_object_get(j, "ttft_ms"), "p50")));
    T_OK(json_is_null(json_object_get(j, "slo_attainment")));
    char *s = json_dumps(j, 0);
    T_CHECK(s && !strstr(s, "nan"), "no nan in %s", s ? s : "(null)");
    free(s);
    json_decref(j);
}

/* The sweep chart: three panels with titles, axes, legends, one polyline per series
 * (TTFT p50 / p99 / short-prompt p99, TPOT p50 / p99, goodput, throughput),
 * the SLOs in the goodput title, and a point with no data (NaN) left out, never "nan". */
static void test_svg(void) {
    bench_report reps[3];
    bench_report *ptrs[3];
    memset(reps, 0, sizeof reps);
    for (int i = 0; i < 3; i++) {
        reps[i].cfg.rate = 1 << i;
        reps[i].cfg.burstiness = 1;
        reps[i].cfg.slo_ttft_ms = 250;
        reps[i].cfg.slo_tpot_ms = 40;
        reps[i].cfg.workload = BENCH_WL_MIXED_LENGTHS;
        snprintf(reps[i].model, sizeof reps[i].model, "m<&>");
        reps[i].request_throughput = 0.9 * (1 << i);
        reps[i].goodput = 0.8 * (1 << i);
        reps[i].ttft = (bench_stat){5, 100.0 * (i + 1), 90.0 * (i + 1), 150, 200.0 * (i + 1)};
        reps[i].tpot = (bench_stat){5, 20, 18, 25, 30.0 + i};
        reps[i].ttft_short = (bench_stat){3, 50.0 * (i + 1), 45, 70, 80.0 * (i + 1)};
        reps[i].short_prompt_tokens = 256;
        ptrs[i] = &reps[i];
    }
    reps[2].ttft = (bench_stat){0, NAN, NAN, NAN, NAN};
    reps[1].ttft_short = (bench_stat){0, NAN, NAN, NAN, NAN}; /* no short prompt completed at that rate */
    char path[] = "/tmp/bench_svg_XXXXXX";
    int fd = mkstemp(path);
    T_OK(fd >= 0);
    close(fd);
    sw_err err;
    T_CHECK(bench_svg_write(path, ptrs, 3, &err) == 0, "%s", err.msg);
    char *svg = NULL;
    size_t len = 0;
    T_OK(sw_read_file(path, &svg, &len, &err) == 0);
    if (svg) {
        T_OK(!strncmp(svg, "<?xml", 5) && strstr(svg, "</svg>\n"));
        T_OK(strstr(svg, "Time to first token") && strstr(svg, "Time per output token"));
        T_CHECK(strstr(svg, "Goodput (TTFT \u2264 250 ms, TPOT \u2264 40 ms)") != NULL, "SLOs in the goodput title");
        T_OK(strstr(svg, "achieved throughput (req/s)") && strstr(svg, "offered rate (req/s)"));
        T_OK(strstr(svg, "TTFT p99") && strstr(svg, "ideal (y = x)"));
        T_CHECK(strstr(svg, "p99 prompt \u2264 256") != NULL, "short-prompt series in the legend");
        T_OK(strstr(svg, "m&lt;&amp;&gt;") != NULL); /* escaped model name */
        T_CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"), "no nan/inf in the SVG");
        int polylines = 0, circles = 0;
        for (const char *p = svg; (p = strstr(p, "<polyline")); p++) polylines++;
        for (const char *p = svg; (p = strstr(p, "<circle")); p++) circles++;
        T_EQ_INT(polylines, 7);
        /* the NaN TTFT point of the last report is left out twice, the NaN short one once */
        T_EQ_INT(circles, 7 * 3 - 3);
    }
    free(svg);
    unlink(path);
    T_CHECK(bench_svg_write("/nonexistent-dir/x.svg", ptrs, 3, &err) == SW_ERR_IO, "unwritable path refused");
    T_CHECK(bench_svg_write(path, ptrs, 0, &err) == SW_ERR_ARG, "no reports refused");
}

/* Short-prompt TTFT and rejections on hand-made results. Threshold 100 tokens; usage
 * counts decide when present, the workload estimate otherwise (failed requests). */
static void test_short_and_rejected(void) {
    bench_report r = {0};
    bench_result res[8] = {0};
    /* completed: prompt (usage) / ttft */
    const int pt[5] = {40, 100, 101, -1, 3000};
    const double tt[5] = {120, 80, 500, 60, 900};
    for (int i = 0; i < 5; i++)
        res[i] = (bench_result){.ok = 1, .http_status = 200, .ttft_ms = tt[i], .e2e_ms = tt[i] + 100, .output_tokens = 11,
                                .tpot_ms = 10, .prompt_tokens = pt[i], .approx_prompt_tokens = 150};
    res[3].approx_prompt_tokens = 90; /* no usage: its estimate (90) makes it short */
    res[1].approx_prompt_tokens = 500; /* usage (100) wins over the estimate */
    /* failed: two 503s (estimates 50 and 400), one 500, one connect failure (status 0) */
    res[5] = (bench_result){.http_status = 503, .prompt_tokens = -1, .approx_prompt_tokens = 50};
    res[6] = (bench_result){.http_status = 503, .prompt_tokens = -1, .approx_prompt_tokens = 400};
    res[7] = (bench_result){.http_status = 500, .prompt_tokens = -1, .approx_prompt_tokens = 20};
    r.results = res;
    r.n_results = 8;
    r.duration_s = 4.0;
    r.cfg.short_prompt_tokens = 100;
    r.cfg.slo_ttft_ms = 100;
    bench_report_aggregate(&r);
    T_EQ_INT(r.completed, 5);
    T_EQ_INT(r.failed, 3);
    T_EQ_INT(r.rejected, 2);
    T_EQ_INT(r.short_prompt_tokens, 100);
    /* short: requests 0 (40), 1 (100), 3 (est. 90), 5 (503, est. 50), 7 (500, est. 20) */
    T_EQ_INT(r.short_requests, 5);
    T_EQ_INT(r.short_rejected, 1);
    /* short TTFTs {60, 80, 120}: mean 86.667, p50 80, p90 112, p99 119.2 */
    T_EQ_INT(r.ttft_short.n, 3);
    CLOSE(r.ttft_short.mean, 260.0 / 3, 1e-9);
    CLOSE(r.ttft_short.p50, 80, 1e-9);
    CLOSE(r.ttft_short.p90, 112, 1e-9);
    CLOSE(r.ttft_short.p99, 119.2, 1e-9);
    /* TTFT <= 100: requests 1 and 3, both short; rejected requests are never good */
    T_EQ_INT(r.good, 2);
    T_EQ_INT(r.short_good, 2);
    CLOSE(r.goodput, 0.5, 1e-12);
    CLOSE(r.slo_attainment, 2.0 / 8, 1e-12);
    /* threshold 0 in the config means the default, 256: now 101 is short too */
    r.cfg.short_prompt_tokens = 0;
    bench_report_aggregate(&r);
    T_EQ_INT(r.short_prompt_tokens, BENCH_SHORT_PROMPT_DEFAULT);
    T_EQ_INT(r.ttft_short.n, 4); /* 40, 100, 101, est. 90; not 3000 */
    CLOSE(r.ttft_short.p50, 100, 1e-9); /* {60, 80, 120, 500} */
    json_t *j = bench_report_json(&r);
    T_EQ_INT(json_integer_value(json_object_get(j, "n_rejected")), 2);
    T_EQ_INT(json_integer_value(json_object_get(j, "short_prompt_tokens")), 256);
    T_EQ_INT(json_integer_value(json_object_get(j, "short_requests")), 6);
    T_EQ_INT(json_integer_value(json_object_get(j, "short_rejected")), 1);
    CLOSE(json_real_value(json_object_get(json_object_get(j, "ttft_short"), "p50")), 100, 1e-9);
    T_OK(json_is_false(json_object_get(j, "send_slo")));
    json_decref(j);
}

int main(void) {
    test_svg();
    test_short_and_rejected();
    test_percentiles();
    test_arrivals();
    test_aggregate();
    return t_done();
}
