/* server_metrics.c — tests of GET /metrics text (Prometheus exposition format 0.0.4):
 * every sample line is well formed and preceded by its HELP/TYPE, gauges and counters
 * carry the engine snapshot's values, histogram buckets are cumulative with +Inf equal
 * to _count and _sum equal to the sum of the observations (computed here
 * independently); label values are escaped. Also the constant-time key comparison. */
#include "t.h"
#include "server/server.h"
#include <math.h>

/* Value of the sample whose line starts with `prefix` followed by ' ' (NAN if absent). */
static double value_of(const char *text, const char *prefix) {
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, prefix, pl) && p[pl] == ' ') return strtod(p + pl + 1, NULL);
        p = strchr(p, '\n');
        if (p) p++;
    }
    return NAN;
}

static bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':'; }

/* Checks the syntax of every line; returns the number of sample lines. */
static int check_format(const char *text) {
    int samples = 0;
    char typed[64][96];
    int n_typed = 0;
    const char *p = text;
    T_OK(text[strlen(text) - 1] == '\n');
    while (*p) {
        const char *e = strchr(p, '\n');
        T_OK(e != NULL);
        if (!e) break;
        size_t len = (size_t)(e - p);
        char line[512];
        T_OK(len < sizeof line);
        if (len >= sizeof line) break;
        memcpy(line, p, len);
        line[len] = 0;
        p = e + 1;
        if (!strncmp(line, "# HELP swiftlet:", 16)) continue;
        if (!strncmp(line, "# TYPE ", 7)) {
            char name[96], type[32];
            T_OK(sscanf(line + 7, "%95s %31s", name, type) == 2);
            T_CHECK(!strcmp(type, "gauge") || !strcmp(type, "counter") || !strcmp(type, "histogram"), "type %s", type);
            if (n_typed < 64) snprintf(typed[n_typed++], sizeof typed[0], "%s", name);
            continue;
        }
        T_CHECK(!strncmp(line, "swiftlet:", 9), "line: %s", line);
        size_t i = 0;
        while (is_name_char(line[i])) i++;
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)i, line);
        /* the family (name minus histogram suffix) was typed before */
        bool found = false;
        for (int k = 0; k < n_typed; k++) {
            size_t tl = strlen(typed[k]);
            if (!strncmp(name, typed[k], tl) &&
                (name[tl] == 0 || !strcmp(name + tl, "_bucket") || !strcmp(name + tl, "_sum") || !strcmp(name + tl, "_count")))
                found = true;
        }
        T_CHECK(found, "sample %s has no TYPE line before it", name);
        T_CHECK(line[i] == '{', "labels missing: %s", line);
        const char *close = strstr(line, "} ");
        T_CHECK(close != NULL, "no value: %s", line);
        if (close) {
            char *end;
            const char *v = close + 2;
            if (strcmp(v, "+Inf") && strcmp(v, "NaN")) {
                strtod(v, &end);
                T_CHECK(*end == 0 && end != v, "bad value: %s", line);
            }
        }
        samples++;
    }
    return samples;
}

static void test_render(void) {
    metrics m;
    metrics_init(&m);
    /* three requests with known timings (ms) */
    engine_timing t1 = {.t_submit_ms = 1000, .t_first_sched_ms = 1002, .t_first_token_ms = 1050,
                        .t_last_token_ms = 1150, .t_finish_ms = 1150, .n_generated = 11};
    engine_timing t2 = {.t_submit_ms = 2000, .t_first_sched_ms = 2500, .t_first_token_ms = 3000,
                        .t_last_token_ms = 3000, .t_finish_ms = 3000, .n_generated = 1};
    engine_timing t3 = {.t_submit_ms = 5000}; /* cancelled before being scheduled */
    metrics_observe(&m, &t1, ENGINE_FINISH_STOP);
    metrics_observe(&m, &t2, ENGINE_FINISH_LENGTH);
    metrics_observe(&m, &t3, ENGINE_FINISH_CANCELLED);
    engine_stats s = {.n_running = 3, .n_waiting = 2, .kv_blocks_total = 200, .kv_blocks_used = 50,
                      .prefix_queries = 1000, .prefix_hits = 640, .n_preemptions = 4,
                      .prompt_tokens = 12345, .generation_tokens = 678};
    api_buf b = {0};
    T_EQ_INT(metrics_render(&m, &s, "tiny \"q\"\\x", 16, &b), 0);
    T_OK(b.p != NULL);
    if (!b.p) return;
    int n = check_format(b.p);
    T_CHECK(n > 40, "only %d samples", n);
#define L "{model_name=\"tiny \\\"q\\\"\\\\x\""
    T_OK(value_of(b.p, "swiftlet:num_requests_running" L "}") == 3);
    T_OK(value_of(b.p, "swiftlet:num_requests_waiting" L "}") == 2);
    T_OK(value_of(b.p, "swiftlet:kv_cache_usage_perc" L "}") == 0.25);
    T_OK(value_of(b.p, "swiftlet:prefix_cache_queries_total" L "}") == 1000);
    T_OK(value_of(b.p, "swiftlet:cache_config_info" L ",block_size=\"16\",num_gpu_blocks=\"200\"}") == 1);
    T_OK(value_of(b.p, "swiftlet:prefix_cache_hits_total" L "}") == 640);
    T_OK(value_of(b.p, "swiftlet:num_preemptions_total" L "}") == 4);
    T_OK(value_of(b.p, "swiftlet:prompt_tokens_total" L "}") == 12345);
    T_OK(value_of(b.p, "swiftlet:generation_tokens_total" L "}") == 678);
    T_OK(value_of(b.p, "swiftlet:request_success_total" L ",finished_reason=\"stop\"}") == 1);
    T_OK(value_of(b.p, "swiftlet:request_success_total" L ",finished_reason=\"length\"}") == 1);
    T_OK(value_of(b.p, "swiftlet:request_success_total" L ",finished_reason=\"abort\"}") == 1);
    /* TTFT: 0.05 s and 1.0 s */
    T_OK(value_of(b.p, "swiftlet:time_to_first_token_seconds_count" L "}") == 2);
    T_OK(fabs(value_of(b.p, "swiftlet:time_to_first_token_seconds_sum" L "}") - 1.05) < 1e-9);
    T_OK(value_of(b.p, "swiftlet:time_to_first_token_seconds_bucket" L ",le=\"0.04\"}") == 0);
    T_OK(value_of(b.p, "swiftlet:time_to_first_token_seconds_bucket" L ",le=\"0.06\"}") == 1);
    T_OK(value_of(b.p, "swiftlet:time_to_first_token_seconds_bucket" L ",le=\"1\"}") == 2); /* le is inclusive */
    T_OK(value_of(b.p, "swiftlet:time_to_first_token_seconds_bucket" L ",le=\"+Inf\"}") == 2);
    /* TPOT: only t1 (10 intervals over 0.1 s) */
    T_OK(value_of(b.p, "swiftlet:time_per_output_token_seconds_count" L "}") == 1);
    T_OK(fabs(value_of(b.p, "swiftlet:time_per_output_token_seconds_sum" L "}") - 0.01) < 1e-9);
    /* e2e: 0.15 and 1.0 (t3 never finished: no observation) */
    T_OK(value_of(b.p, "swiftlet:e2e_request_latency_seconds_count" L "}") == 2);
    T_OK(fabs(value_of(b.p, "swiftlet:e2e_request_latency_seconds_sum" L "}") - 1.15) < 1e-9);
    /* queue: 0.002 and 0.5 */
    T_OK(value_of(b.p, "swiftlet:request_queue_time_seconds_count" L "}") == 2);
    T_OK(fabs(value_of(b.p, "swiftlet:request_queue_time_seconds_sum" L "}") - 0.502) < 1e-9);
    T_OK(value_of(b.p, "swiftlet:request_queue_time_seconds_bucket" L ",le=\"0.01\"}") == 1);
#undef L
    /* buckets are cumulative: non-decreasing within each histogram */
    const char *fams[] = {"time_to_first_token_seconds", "time_per_output_token_seconds", "e2e_request_latency_seconds",
                          "request_queue_time_seconds"};
    for (int f = 0; f < 4; f++) {
        char pre[128];
        snprintf(pre, sizeof pre, "swiftlet:%s_bucket{", fams[f]);
        double last = -1;
        int nb = 0;
        for (const char *p = strstr(b.p, pre); p; p = strstr(p + 1, pre)) {
            double v = strtod(strstr(p, "} ") + 2, NULL);
            T_CHECK(v >= last, "%s not cumulative", fams[f]);
            last = v;
            nb++;
        }
        T_CHECK(nb >= 10, "%s has %d buckets", fams[f], nb);
    }
    /* idle engine: kv usage 0 without dividing by zero */
    engine_stats zero = {0};
    api_buf b2 = {0};
    T_EQ_INT(metrics_render(&m, &zero, "m", 16, &b2), 0);
    T_OK(value_of(b2.p, "swiftlet:kv_cache_usage_perc{model_name=\"m\"}") == 0);
    api_buf_free(&b2);
    api_buf_free(&b);
    metrics_destroy(&m);
}

static void test_hist_edges(void) {
    static const double bounds[] = {1, 2};
    metrics_hist h;
    metrics_hist_init(&h, bounds, 2);
    metrics_hist_observe(&h, 1);    /* le=1 */
    metrics_hist_observe(&h, 1.5);  /* le=2 */
    metrics_hist_observe(&h, 9);    /* +Inf */
    metrics_hist_observe(&h, NAN);  /* ignored */
    metrics_hist_observe(&h, -1);   /* ignored */
    T_EQ_INT(h.counts[0], 1);
    T_EQ_INT(h.counts[1], 1);
    T_EQ_INT(h.counts[2], 1);
    T_EQ_INT(h.count, 3);
    T_OK(h.sum == 11.5);
}

static void test_ct_equal(void) {
    T_OK(http_ct_equal("secret", 6, "secret", 6));
    T_OK(!http_ct_equal("secret", 6, "secreT", 6));
    T_OK(!http_ct_equal("secret", 6, "secret2", 7));
    T_OK(!http_ct_equal("secret", 6, "secre", 5));
    T_OK(!http_ct_equal("", 0, "x", 1));
    T_OK(http_ct_equal("", 0, "", 0));
    T_OK(!http_ct_equal("a\0b", 3, "a\0c", 3));
    /* a key that is a prefix padded with NULs must not match */
    T_OK(!http_ct_equal("ab\0", 3, "ab", 2));
}

int main(void) {
    test_render();
    test_hist_edges();
    test_ct_equal();
    return t_done();
}
