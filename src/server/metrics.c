/* metrics.c — Prometheus text exposition (format 0.0.4) for GET /metrics, with vLLM's
 * metric names under the `swiftlet:` prefix so routers that already scrape vLLM (e.g. the
 * Gateway API Inference Extension's endpoint picker) can read swiftlet the same way.
 * Gauges and token counters come from an engine snapshot; latency histograms and
 * finished-request counters are recorded here as requests end. See docs/METRICS.md. */
#include "server/server.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Bucket bounds in seconds (vLLM's choices, trimmed). */
static const double ttft_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                     0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
static const double tpot_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                                     0.4,   0.5,  0.75,  1.0,  2.5,   5.0, 7.5,  10.0};
static const double e2e_bounds[] = {0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,  1.5,  2.0,  2.5,
                                    5.0,  10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0};
#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

void metrics_hist_init(metrics_hist *h, const double *bounds, int n_bounds) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n_bounds < METRICS_MAX_BUCKETS ? n_bounds : METRICS_MAX_BUCKETS - 1;
}

void metrics_hist_observe(metrics_hist *h, double v) {
    if (!isfinite(v) || v < 0) return;
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void metrics_init(metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    metrics_hist_init(&m->ttft, ttft_bounds, N_OF(ttft_bounds));
    metrics_hist_init(&m->tpot, tpot_bounds, N_OF(tpot_bounds));
    metrics_hist_init(&m->e2e, e2e_bounds, N_OF(e2e_bounds));
    metrics_hist_init(&m->queue, e2e_bounds, N_OF(e2e_bounds));
}

void metrics_destroy(metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_observe(metrics *m, const engine_timing *t, engine_finish f) {
    int slot = f == ENGINE_FINISH_STOP ? METRICS_FINISH_STOP
             : f == ENGINE_FINISH_LENGTH ? METRICS_FINISH_LENGTH
             : f == ENGINE_FINISH_ERROR ? METRICS_FINISH_ERROR
             : f == ENGINE_FINISH_REJECTED ? METRICS_FINISH_REJECTED : METRICS_FINISH_ABORT;
    pthread_mutex_lock(&m->mu);
    m->finished[slot]++;
    if (t->t_first_sched_ms > 0) metrics_hist_observe(&m->queue, (t->t_first_sched_ms - t->t_submit_ms) / 1e3);
    if (t->t_first_token_ms > 0) metrics_hist_observe(&m->ttft, (t->t_first_token_ms - t->t_submit_ms) / 1e3);
    if (t->n_generated > 1 && t->t_last_token_ms > t->t_first_token_ms)
        metrics_hist_observe(&m->tpot, (t->t_last_token_ms - t->t_first_token_ms) / 1e3 / (t->n_generated - 1));
    if (t->t_finish_ms > 0) metrics_hist_observe(&m->e2e, (t->t_finish_ms - t->t_submit_ms) / 1e3);
    pthread_mutex_unlock(&m->mu);
}

/* Writes s with Prometheus label-value escaping (backslash, quote, newline). */
static int label_escape(api_buf *out, const char *s) {
    int rc = SW_OK;
    for (; *s && rc == SW_OK; s++) {
        if (*s == '\\') rc = api_buf_append(out, "\\\\", 2);
        else if (*s == '"') rc = api_buf_append(out, "\\\"", 2);
        else if (*s == '\n') rc = api_buf_append(out, "\\n", 2);
        else rc = api_buf_append(out, s, 1);
    }
    return rc;
}

static int header(api_buf *o, const char *name, const char *type, const char *help) {
    return api_buf_printf(o, "# HELP swiftlet:%s %s\n# TYPE swiftlet:%s %s\n", name, help, name, type);
}

static int sample(api_buf *o, const char *name, const char *label, const char *extra, double v) {
    int rc = api_buf_printf(o, "swiftlet:%s{model_name=\"", name);
    rc = rc ? rc : label_escape(o, label);
    rc = rc ? rc : api_buf_printf(o, "\"%s%s} %.12g\n", extra ? "," : "", extra ? extra : "", v);
    return rc;
}

static int hist(api_buf *o, const char *name, const char *help, const metrics_hist *h, const char *label) {
    int rc = header(o, name, "histogram", help);
    char n[128], le[64];
    snprintf(n, sizeof n, "%s_bucket", name);
    uint64_t cum = 0;
    for (int i = 0; i <= h->n_bounds && rc == SW_OK; i++) {
        cum += h->counts[i];
        if (i < h->n_bounds) snprintf(le, sizeof le, "le=\"%g\"", h->bounds[i]);
        else snprintf(le, sizeof le, "le=\"+Inf\"");
        rc = sample(o, n, label, le, (double)cum);
    }
    snprintf(n, sizeof n, "%s_sum", name);
    rc = rc ? rc : sample(o, n, label, NULL, h->sum);
    snprintf(n, sizeof n, "%s_count", name);
    rc = rc ? rc : sample(o, n, label, NULL, (double)h->count);
    return rc;
}

int metrics_render(metrics *m, const engine_stats *s, const char *model_name, int kv_block_size, api_buf *o) {
    static const char *reasons[METRICS_N_FINISH] = {"stop", "length", "abort", "error", "rejected"};
    const char *l = model_name;
    double kv = s->kv_blocks_total > 0 ? (double)s->kv_blocks_used / s->kv_blocks_total : 0.0;
    int rc = header(o, "num_requests_running", "gauge", "Requests in the running batch.");
    rc = rc ? rc : sample(o, "num_requests_running", l, NULL, s->n_running);
    rc = rc ? rc : header(o, "num_requests_waiting", "gauge", "Requests waiting to be scheduled.");
    rc = rc ? rc : sample(o, "num_requests_waiting", l, NULL, s->n_waiting);
    rc = rc ? rc : header(o, "kv_cache_usage_perc", "gauge", "Fraction of KV-cache blocks in use (1 = full).");
    rc = rc ? rc : sample(o, "kv_cache_usage_perc", l, NULL, kv);
    rc = rc ? rc : header(o, "cache_config_info", "gauge", "KV-cache layout (labels); value 1.");
    if (rc == SW_OK) {
        char extra[96];
        snprintf(extra, sizeof extra, "block_size=\"%d\",num_gpu_blocks=\"%d\"", kv_block_size, s->kv_blocks_total);
        rc = sample(o, "cache_config_info", l, extra, 1);
    }
    rc = rc ? rc : header(o, "prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.");
    rc = rc ? rc : sample(o, "prefix_cache_queries_total", l, NULL, (double)s->prefix_queries);
    rc = rc ? rc : header(o, "prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.");
    rc = rc ? rc : sample(o, "prefix_cache_hits_total", l, NULL, (double)s->prefix_hits);
    rc = rc ? rc : header(o, "num_preemptions_total", "counter", "Sequences preempted to free KV blocks.");
    rc = rc ? rc : sample(o, "num_preemptions_total", l, NULL, (double)s->n_preemptions);
    rc = rc ? rc : header(o, "prompt_tokens_total", "counter", "Prompt tokens processed.");
    rc = rc ? rc : sample(o, "prompt_tokens_total", l, NULL, (double)s->prompt_tokens);
    rc = rc ? rc : header(o, "generation_tokens_total", "counter", "Tokens generated.");
    rc = rc ? rc : sample(o, "generation_tokens_total", l, NULL, (double)s->generation_tokens);
    rc = rc ? rc : header(o, "step_time_predicted_ms", "gauge", "Cost model's prediction for the last engine step.");
    rc = rc ? rc : sample(o, "step_time_predicted_ms", l, NULL, s->last_step_pred_ms);
    rc = rc ? rc : header(o, "step_time_actual_ms", "gauge", "Measured duration of the last engine step's forward pass.");
    rc = rc ? rc : sample(o, "step_time_actual_ms", l, NULL, s->last_step_fwd_ms);
    rc = rc ? rc : header(o, "step_time_prediction_error", "gauge",
                          "Moving mean of |predicted - actual| / actual step time.");
    rc = rc ? rc : sample(o, "step_time_prediction_error", l, NULL, s->step_pred_err);
    rc = rc ? rc : header(o, "step_cost_model_ms", "gauge",
                          "Cost model fit: ms per step, per token, per logits row, per 1k attended positions.");
    static const char *const terms[] = {"step", "token", "logits_row", "kilo_attended"};
    for (int j = 0; j < 4 && rc == SW_OK; j++) {
        char extra[48];
        snprintf(extra, sizeof extra, "term=\"%s\"", terms[j]);
        rc = sample(o, "step_cost_model_ms", l, extra, s->cost_theta[j]);
    }
    rc = rc ? rc : header(o, "slo_rejected_total", "counter", "Requests refused at admission: TTFT objective unreachable.");
    rc = rc ? rc : sample(o, "slo_rejected_total", l, NULL, (double)s->n_slo_rejected);
    rc = rc ? rc : header(o, "slo_best_effort_total", "counter",
                          "Requests demoted to best-effort: TTFT objective predicted unreachable.");
    rc = rc ? rc : sample(o, "slo_best_effort_total", l, NULL, (double)s->n_slo_best_effort);
    pthread_mutex_lock(&m->mu);
    rc = rc ? rc : header(o, "request_success_total", "counter", "Finished requests by finish reason.");
    for (int i = 0; i < METRICS_N_FINISH && rc == SW_OK; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "finished_reason=\"%s\"", reasons[i]);
        rc = sample(o, "request_success_total", l, extra, (double)m->finished[i]);
    }
    rc = rc ? rc : hist(o, "time_to_first_token_seconds", "Time from arrival to the first generated token.", &m->ttft, l);
    rc = rc ? rc : hist(o, "time_per_output_token_seconds", "Mean time between output tokens, per request.", &m->tpot, l);
    rc = rc ? rc : hist(o, "e2e_request_latency_seconds", "Time from arrival to the end of the request.", &m->e2e, l);
    rc = rc ? rc : hist(o, "request_queue_time_seconds", "Time from arrival to the first scheduling step.", &m->queue, l);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
