/* bench_run.c — drives a benchmark: builds each request's OpenAI JSON body (streaming
 * with usage, fixed max_tokens + ignore_eos, temperature 0, `user` = tenant, the
 * with --send-slo swiftlet's "slo_ttft_ms" / "slo_tpot_ms" fields, the --extra-body
 * object merged in), issues requests open-loop (a dispatcher sleeping
 * until each arrival time of a Poisson/gamma schedule, one detached thread per request)
 * or closed-loop (C worker threads, each with one request in flight), times each
 * stream (bench_stream), and aggregates the results into a bench_report, printed as a
 * table or written as JSON.
 * Definitions: TTFT = first non-empty content chunk - request start (before connect);
 * ITL = gaps between successive content chunks; e2e = [DONE] - request start;
 * TPOT = (e2e - TTFT) / (output_tokens - 1), output_tokens from the usage chunk when
 * present, else the number of content chunks. A failed request answered HTTP 503 is
 * also counted as rejected (swiftlet --policy slo refuses a request it predicts cannot
 * meet its TTFT objective that way); short-prompt TTFT covers completed requests whose
 * prompt has <= short_prompt_tokens tokens. */
#include "bench/bench.h"
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREAD_STACK (1u << 20)

typedef struct job job;

typedef struct run {
    const bench_config *cfg;
    bench_url url;
    const char *path;          /* "/v1/completions" or "/v1/chat/completions" */
    char model[128];
    json_t *extra;             /* parsed --extra-body, or NULL */
    bench_workload *wl;
    double t_start_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_flight;             /* open loop: detached threads still running */
    bench_result **res;        /* (n_res) one per issued request, individually allocated */
    int n_res, res_cap;
    int n_errors_printed;
    int n_done, n_failed;      /* finished so far (progress lines) */
    double last_progress_ms;
    int issued;                /* closed loop: next request index */
} run;

struct job {
    run *r;
    bench_result *res;
    char *body;
};

/* ---- request bodies ---- */
static char *build_body(run *r, const bench_request *rq) {
    json_t *o = json_object();
    if (!o) return NULL;
    if (r->model[0]) json_object_set_new(o, "model", json_string(r->model));
    if (r->cfg->endpoint == BENCH_EP_CHAT) {
        json_t *msgs = json_array();
        for (int m = 0; m < rq->n_msgs; m++)
            json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", rq->msgs[m].role, "content", rq->msgs[m].content));
        json_object_set_new(o, "messages", msgs);
    } else {
        char *p = bench_request_prompt(rq);
        if (!p) { json_decref(o); return NULL; }
        json_object_set_new(o, "prompt", json_string(p));
        free(p);
    }
    json_object_set_new(o, "max_tokens", json_integer(rq->max_tokens));
    json_object_set_new(o, "ignore_eos", json_true());
    json_object_set_new(o, "temperature", json_real(0.0));
    json_object_set_new(o, "stream", json_true());
    json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (rq->user[0]) json_object_set_new(o, "user", json_string(rq->user));
    if (r->cfg->send_slo && r->cfg->slo_ttft_ms > 0) json_object_set_new(o, "slo_ttft_ms", json_real(r->cfg->slo_ttft_ms));
    if (r->cfg->send_slo && r->cfg->slo_tpot_ms > 0) json_object_set_new(o, "slo_tpot_ms", json_real(r->cfg->slo_tpot_ms));
    if (r->extra) json_object_update_recursive(o, r->extra);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- one request ---- */
typedef struct exchange {
    bench_stream st;
    bench_sse sse;
    int status;
    double now_ms;             /* when the current bytes arrived */
    char body_snip[160];       /* start of a non-200 body */
    size_t snip_len;
    sw_err err;
} exchange;

static int on_event(void *ctx, const char *data, size_t n) {
    exchange *x = ctx;
    return bench_stream_event(&x->st, data, n, x->now_ms) ? 1 : 0;
}

static int on_body(void *ctx, const char *data, size_t n) {
    exchange *x = ctx;
    x->now_ms = sw_now_ms();
    if (x->status != 200) {
        size_t take = sizeof x->body_snip - 1 - x->snip_len;
        if (take > n) take = n;
        memcpy(x->body_snip + x->snip_len, data, take);
        x->snip_len += take;
        x->body_snip[x->snip_len] = 0;
        return 0;
    }
    int rc = bench_sse_feed(&x->sse, data, n, on_event, x, &x->err);
    return rc > 0 ? 1 : rc;
}

static void note_error(run *r, bench_result *res) {
    pthread_mutex_lock(&r->mu);
    int show = !r->cfg->quiet && r->n_errors_printed < 5;
    if (show) r->n_errors_printed++;
    pthread_mutex_unlock(&r->mu);
    if (show) sw_warn("bench: request failed: %s", res->err);
}

/* A progress line on stderr at most every 10 s while requests finish. */
static void note_done(run *r, const bench_result *res) {
    pthread_mutex_lock(&r->mu);
    r->n_done++;
    r->n_failed += !res->ok;
    double now = sw_now_ms();
    int show = !r->cfg->quiet && now - r->last_progress_ms >= 10000;
    if (show) r->last_progress_ms = now;
    int done = r->n_done, failed = r->n_failed;
    pthread_mutex_unlock(&r->mu);
    if (show) sw_info("bench: %d requests finished (%d failed) after %.0f s", done, failed, (now - r->t_start_ms) / 1000);
}

static void do_request(run *r, const char *body, bench_result *res) {
    exchange *x = calloc(1, sizeof *x);
    if (!x) { snprintf(res->err, sizeof res->err, "out of memory"); note_error(r, res); return; }
    double t0 = sw_now_ms();
    res->start_ms = t0 - r->t_start_ms;
    bench_stream_init(&x->st, t0);
    bench_sse_init(&x->sse);
    int rc = bench_http_request(&r->url, "POST", r->path, r->cfg->api_key, body, r->cfg->timeout_s, &x->status,
                                on_body, x, &x->err);
    res->http_status = x->status;
    if (x->st.failed) {
        snprintf(res->err, sizeof res->err, "%s", x->st.err);
    } else if (rc) {
        snprintf(res->err, sizeof res->err, "%.199s", x->err.msg[0] ? x->err.msg : "request failed");
    } else if (x->status != 200) {
        for (char *p = x->body_snip; *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
        snprintf(res->err, sizeof res->err, "HTTP %d: %s", x->status, x->body_snip);
    } else if (x->st.t_end_ms == 0) {
        snprintf(res->err, sizeof res->err, "stream ended without data: [DONE]");
    } else if (x->st.n_content == 0) {
        snprintf(res->err, sizeof res->err, "stream carried no content tokens");
    } else {
        res->ok = 1;
        res->ttft_ms = x->st.t_first_ms - t0;
        res->e2e_ms = x->st.t_end_ms - t0;
        res->output_tokens = x->st.usage_completion >= 0 ? x->st.usage_completion : x->st.n_content;
        res->prompt_tokens = x->st.usage_prompt;
        res->tpot_ms = res->output_tokens > 1 ? (res->e2e_ms - res->ttft_ms) / (res->output_tokens - 1) : -1;
        res->itl_ms = x->st.itl_ms;
        res->n_itl = x->st.n_itl;
        x->st.itl_ms = NULL;
    }
    if (!res->ok) note_error(r, res);
    note_done(r, res);
    bench_stream_free(&x->st);
    bench_sse_free(&x->sse);
    free(x);
}

/* Allocates the result of the next request (caller holds mu or is the only thread). */
static bench_result *new_result(run *r) {
    if (r->n_res == r->res_cap) {
        int nc = r->res_cap ? r->res_cap * 2 : 256;
        bench_result **n = realloc(r->res, (size_t)nc * sizeof *n);
        if (!n) return NULL;
        r->res = n;
        r->res_cap = nc;
    }
    bench_result *res = calloc(1, sizeof *res);
    if (!res) return NULL;
    res->prompt_tokens = -1;
    res->tpot_ms = -1;
    r->res[r->n_res++] = res;
    return res;
}

/* Next request's result slot and body; NULL body means out of memory (res->err set). */
static int next_request(run *r, int i, bench_result **res, char **body, sw_err *err) {
    const bench_request *rq;
    int rc = bench_workload_get(r->wl, i, &rq, err);
    if (rc) return rc;
    *res = new_result(r);
    if (!*res) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    (*res)->approx_prompt_tokens = rq->approx_prompt_tokens;
    *body = build_body(r, rq);
    if (!*body) return sw_err_set(err, SW_ERR_NOMEM, "out of memory building request %d", i);
    return SW_OK;
}

/* ---- open loop ---- */
static void *open_thread(void *arg) {
    job *j = arg;
    run *r = j->r;
    do_request(r, j->body, j->res);
    free(j->body);
    free(j);
    pthread_mutex_lock(&r->mu);
    r->in_flight--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void sleep_until_ms(double t_ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(t_ms / 1000.0);
    ts.tv_nsec = (long)((t_ms - (double)ts.tv_sec * 1000.0) * 1e6);
    if (ts.tv_nsec < 0) ts.tv_nsec = 0;
    if (ts.tv_nsec > 999999999) ts.tv_nsec = 999999999;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static int run_open(run *r, sw_err *err) {
    const bench_config *c = r->cfg;
    bench_rng arr;
    bench_rng_seed(&arr, c->seed ^ 0xa5a5a5a5deadbeefULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    int rc = SW_OK;
    double next_s = 0;
    for (int i = 0;; i++) {
        if (c->n_requests > 0 ? i >= c->n_requests : next_s >= c->duration_s) break;
        bench_result *res = NULL;
        char *body = NULL;
        if ((rc = next_request(r, i, &res, &body, err))) { free(body); break; }
        res->sched_ms = next_s * 1000.0;
        sleep_until_ms(r->t_start_ms + res->sched_ms);
        job *j = malloc(sizeof *j);
        if (j) { j->r = r; j->res = res; j->body = body; }
        pthread_mutex_lock(&r->mu);
        r->in_flight++;
        pthread_mutex_unlock(&r->mu);
        pthread_t th;
        if (!j || pthread_create(&th, &attr, open_thread, j)) {
            snprintf(res->err, sizeof res->err, "cannot start a request thread");
            note_error(r, res);
            free(body);
            free(j);
            pthread_mutex_lock(&r->mu);
            r->in_flight--;
            pthread_mutex_unlock(&r->mu);
        }
        next_s += bench_arrival_gap(&arr, c->rate, c->burstiness);
    }
    pthread_attr_destroy(&attr);
    /* with --duration the observation window is the whole duration, even when the next
     * arrival would have fallen after it (else throughput would be overstated) */
    if (!rc && c->n_requests == 0) sleep_until_ms(r->t_start_ms + c->duration_s * 1000.0);
    pthread_mutex_lock(&r->mu);
    while (r->in_flight > 0) pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ---- closed loop ---- */
typedef struct closed_arg { run *r; int rc; sw_err err; } closed_arg;

static void *closed_thread(void *arg) {
    closed_arg *a = arg;
    run *r = a->r;
    const bench_config *c = r->cfg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int i = r->issued;
        int stop = c->n_requests > 0 ? i >= c->n_requests : sw_now_ms() - r->t_start_ms >= c->duration_s * 1000.0;
        bench_result *res = NULL;
        char *body = NULL;
        if (!stop) {
            r->issued++;
            a->rc = next_request(r, i, &res, &body, &a->err);
            if (!a->rc) res->sched_ms = sw_now_ms() - r->t_start_ms;
        }
        pthread_mutex_unlock(&r->mu);
        if (stop || a->rc) { free(body); break; }
        do_request(r, body, res);
        free(body);
    }
    return NULL;
}

static int run_closed(run *r, sw_err *err) {
    int n = r->cfg->concurrency;
    pthread_t *th = calloc((size_t)n, sizeof *th);
    closed_arg *args = calloc((size_t)n, sizeof *args);
    if (!th || !args) { free(th); free(args); return sw_err_set(err, SW_ERR_NOMEM, "out of memory"); }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    int started = 0, rc = SW_OK;
    for (; started < n; started++) {
        args[started].r = r;
        if (pthread_create(&th[started], &attr, closed_thread, &args[started])) {
            rc = sw_err_set(err, SW_ERR_NOMEM, "cannot start worker thread %d", started);
            break;
        }
    }
    pthread_attr_destroy(&attr);
    for (int k = 0; k < started; k++) {
        pthread_join(th[k], NULL);
        if (!rc && args[k].rc) { rc = args[k].rc; *err = args[k].err; }
    }
    free(th);
    free(args);
    return rc;
}

/* ---- model discovery ---- */
typedef struct grow_buf { char *p; size_t n, cap; } grow_buf;

static int collect(void *ctx, const char *data, size_t n) {
    grow_buf *b = ctx;
    if (b->n + n + 1 > (4u << 20)) return SW_ERR_RANGE;
    if (b->n + n + 1 > b->cap) {
        size_t nc = (b->n + n + 1) * 2;
        char *np = realloc(b->p, nc);
        if (!np) return SW_ERR_NOMEM;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* First model id of GET /v1/models into r->model; leaves it empty when unavailable. */
static void discover_model(run *r) {
    grow_buf b = {0};
    int status = 0;
    sw_err e = {0};
    int rc = bench_http_request(&r->url, "GET", "/v1/models", r->cfg->api_key, NULL, r->cfg->timeout_s, &status, collect, &b, &e);
    json_t *j = !rc && status == 200 && b.p ? json_loads(b.p, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id"));
    if (id && strlen(id) < sizeof r->model) snprintf(r->model, sizeof r->model, "%s", id);
    else if (!r->cfg->quiet) sw_warn("bench: could not read a model name from GET /v1/models (%s); sending none",
                                     rc ? e.msg : status != 200 ? "non-200 status" : "no data[0].id");
    json_decref(j);
    free(b.p);
}

/* ---- entry ---- */
static int check_config(const bench_config *c, sw_err *err) {
    if (c->concurrency < 0) return sw_err_set(err, SW_ERR_ARG, "concurrency must be >= 1");
    if (c->concurrency == 0 && !(c->rate > 0)) return sw_err_set(err, SW_ERR_ARG, "give --rate R > 0 or --concurrency C");
    if (c->concurrency > 4096) return sw_err_set(err, SW_ERR_ARG, "concurrency over 4096");
    if (!(c->burstiness > 0) || isinf(c->burstiness)) return sw_err_set(err, SW_ERR_ARG, "burstiness must be > 0");
    if ((c->n_requests > 0) == (c->duration_s > 0)) return sw_err_set(err, SW_ERR_ARG, "give exactly one of --requests N or --duration S");
    if (c->n_requests < 0 || c->n_requests > 1000000) return sw_err_set(err, SW_ERR_ARG, "requests must be in 1..1000000");
    if (c->duration_s > 0 && (c->duration_s > 86400 || isnan(c->duration_s))) return sw_err_set(err, SW_ERR_ARG, "duration must be <= 86400 s");
    if (c->slo_ttft_ms < 0 || c->slo_tpot_ms < 0) return sw_err_set(err, SW_ERR_ARG, "SLOs must be >= 0");
    if (c->short_prompt_tokens < 0 || c->short_prompt_tokens > 10000000)
        return sw_err_set(err, SW_ERR_ARG, "short-prompt threshold must be in 1..10000000 tokens");
    if (!(c->timeout_s > 0) || c->timeout_s > 86400) return sw_err_set(err, SW_ERR_ARG, "timeout must be in (0, 86400] s");
    if (c->endpoint != BENCH_EP_COMPLETIONS && c->endpoint != BENCH_EP_CHAT) return sw_err_set(err, SW_ERR_ARG, "bad endpoint");
    return SW_OK;
}

int bench_run(const bench_config *cfg, bench_report **out, sw_err *err) {
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc) return rc;
    run *r = calloc(1, sizeof *r);
    bench_report *rep = calloc(1, sizeof *rep);
    if (!r || !rep) { free(r); free(rep); return sw_err_set(err, SW_ERR_NOMEM, "out of memory"); }
    r->cfg = cfg;
    r->path = cfg->endpoint == BENCH_EP_CHAT ? "/v1/chat/completions" : "/v1/completions";
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if ((rc = bench_url_parse(cfg->url, &r->url, err))) goto done;
    if (cfg->extra_body) {
        json_error_t je;
        r->extra = json_loads(cfg->extra_body, 0, &je);
        if (!json_is_object(r->extra)) {
            rc = sw_err_set(err, SW_ERR_ARG, "--extra-body must be a JSON object (%s)", r->extra ? "not an object" : je.text);
            goto done;
        }
    }
    if ((rc = bench_workload_create(cfg->workload, cfg->seed, &r->wl, err))) goto done;
    if (cfg->model) {
        if (strlen(cfg->model) >= sizeof r->model) { rc = sw_err_set(err, SW_ERR_ARG, "model name too long"); goto done; }
        snprintf(r->model, sizeof r->model, "%s", cfg->model);
    } else {
        discover_model(r);
    }
    r->t_start_ms = r->last_progress_ms = sw_now_ms();
    rc = cfg->concurrency > 0 ? run_closed(r, err) : run_open(r, err);
    double t_end = sw_now_ms();
    if (rc) goto done;
    rep->cfg = *cfg;
    snprintf(rep->model, sizeof rep->model, "%s", r->model);
    rep->duration_s = (t_end - r->t_start_ms) / 1000.0;
    rep->results = calloc((size_t)(r->n_res ? r->n_res : 1), sizeof *rep->results);
    if (!rep->results) { rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < r->n_res; i++) {
        rep->results[i] = *r->res[i];
        r->res[i]->itl_ms = NULL; /* moved */
    }
    rep->n_results = r->n_res;
    bench_report_aggregate(rep);
    *out = rep;
    rep = NULL;
done:
    for (int i = 0; i < r->n_res; i++) { free(r->res[i]->itl_ms); free(r->res[i]); }
    free(r->res);
    bench_workload_destroy(r->wl);
    json_decref(r->extra);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    bench_report_destroy(rep);
    return rc;
}

void bench_report_destroy(bench_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_results; i++) free(r->results[i].itl_ms);
    free(r->results);
    free(r);
}

/* ---- aggregation ---- */
void bench_report_aggregate(bench_report *r) {
    size_t n = (size_t)(r->n_results ? r->n_results : 1), n_itl = 1;
    for (int i = 0; i < r->n_results; i++) n_itl += (size_t)r->results[i].n_itl;
    double *ttft = malloc(n * sizeof *ttft), *tpot = malloc(n * sizeof *tpot), *e2e = malloc(n * sizeof *e2e);
    double *itl = malloc(n_itl * sizeof *itl), *ttft_s = malloc(n * sizeof *ttft_s);
    size_t k = 0, kt = 0, ki = 0, ks = 0;
    r->completed = r->failed = r->good = r->n_errors = r->rejected = 0;
    r->short_requests = r->short_rejected = r->short_good = 0;
    r->short_prompt_tokens = r->cfg.short_prompt_tokens > 0 ? r->cfg.short_prompt_tokens : BENCH_SHORT_PROMPT_DEFAULT;
    r->total_output_tokens = r->total_input_tokens = 0;
    for (int i = 0; i < r->n_results; i++) {
        const bench_result *x = &r->results[i];
        /* the server's count when it sent one (completed requests), else the estimate */
        int is_short = (x->prompt_tokens >= 0 ? x->prompt_tokens : x->approx_prompt_tokens) <= r->short_prompt_tokens;
        r->short_requests += is_short;
        if (!x->ok) {
            int rejected = x->http_status == 503;
            r->rejected += rejected;
            r->short_rejected += rejected && is_short;
            r->failed++;
            if (r->n_errors < 5) snprintf(r->errors[r->n_errors++], sizeof r->errors[0], "%s", x->err);
            continue;
        }
        r->completed++;
        r->total_output_tokens += x->output_tokens;
        r->total_input_tokens += x->prompt_tokens >= 0 ? x->prompt_tokens : x->approx_prompt_tokens;
        int good = (r->cfg.slo_ttft_ms <= 0 || x->ttft_ms <= r->cfg.slo_ttft_ms) &&
                   (r->cfg.slo_tpot_ms <= 0 || x->tpot_ms < 0 || x->tpot_ms <= r->cfg.slo_tpot_ms);
        r->good += good;
        r->short_good += good && is_short;
        if (!ttft || !tpot || !e2e || !itl || !ttft_s) continue;
        if (is_short) ttft_s[ks++] = x->ttft_ms;
        ttft[k] = x->ttft_ms;
        e2e[k++] = x->e2e_ms;
        if (x->tpot_ms >= 0) tpot[kt++] = x->tpot_ms;
        if (x->n_itl > 0) memcpy(itl + ki, x->itl_ms, (size_t)x->n_itl * sizeof *itl);
        ki += (size_t)x->n_itl;
    }
    bench_stat_compute(ttft, k, &r->ttft);
    bench_stat_compute(e2e, k, &r->e2el);
    bench_stat_compute(tpot, kt, &r->tpot);
    bench_stat_compute(itl, ki, &r->itl);
    bench_stat_compute(ttft_s, ks, &r->ttft_short);
    free(ttft); free(tpot); free(e2e); free(itl); free(ttft_s);
    double d = r->duration_s > 0 ? r->duration_s : NAN;
    r->request_throughput = r->completed / d;
    r->output_throughput = (double)r->total_output_tokens / d;
    r->input_throughput = (double)r->total_input_tokens / d;
    r->goodput = r->good / d;
    int total = r->completed + r->failed;
    r->slo_attainment = total ? (double)r->good / total : NAN;
}

/* ---- output ---- */
static void print_stat(FILE *f, const char *name, const bench_stat *s) {
    if (s->n == 0) { fprintf(f, "%-10s %10s %10s %10s %10s %6d\n", name, "-", "-", "-", "-", 0); return; }
    fprintf(f, "%-10s %10.2f %10.2f %10.2f %10.2f %6d\n", name, s->mean, s->p50, s->p90, s->p99, s->n);
}

void bench_report_print(const bench_report *r, FILE *f) {
    const bench_config *c = &r->cfg;
    char mode[96];
    if (c->concurrency > 0) snprintf(mode, sizeof mode, "closed loop, concurrency %d", c->concurrency);
    else snprintf(mode, sizeof mode, "open loop, rate %.3g req/s, burstiness %.3g", c->rate, c->burstiness);
    fprintf(f, "==================== swiftlet bench ====================\n");
    fprintf(f, "%-34s %s\n", "Server:", c->url);
    fprintf(f, "%-34s %s\n", "Model:", r->model[0] ? r->model : "(none sent)");
    fprintf(f, "%-34s %s (%s)\n", "Workload:", bench_workload_kind_name(c->workload),
            c->endpoint == BENCH_EP_CHAT ? "chat" : "completions");
    fprintf(f, "%-34s %s\n", "Arrivals:", mode);
    fprintf(f, "%-34s %d\n", "Successful requests:", r->completed);
    fprintf(f, "%-34s %d\n", "Failed requests:", r->failed);
    fprintf(f, "%-34s %d\n", "  of which rejected (HTTP 503):", r->rejected);
    fprintf(f, "%-34s %.2f\n", "Benchmark duration (s):", r->duration_s);
    fprintf(f, "%-34s %ld\n", "Total input tokens:", r->total_input_tokens);
    fprintf(f, "%-34s %ld\n", "Total generated tokens:", r->total_output_tokens);
    fprintf(f, "%-34s %.3f\n", "Request throughput (req/s):", r->request_throughput);
    fprintf(f, "%-34s %.2f\n", "Output token throughput (tok/s):", r->output_throughput);
    char slo[96] = "";
    int n = 0;
    if (c->slo_ttft_ms > 0) n += snprintf(slo + n, sizeof slo - (size_t)n, "TTFT <= %g ms", c->slo_ttft_ms);
    if (c->slo_tpot_ms > 0) snprintf(slo + n, sizeof slo - (size_t)n, "%sTPOT <= %g ms", n ? ", " : "", c->slo_tpot_ms);
    fprintf(f, "%-34s %.3f  (%s)\n", "Goodput (req/s):", r->goodput, slo[0] ? slo : "no SLO given");
    if (isfinite(r->slo_attainment)) fprintf(f, "%-34s %.1f%%\n", "SLO attainment:", 100.0 * r->slo_attainment);
    else fprintf(f, "%-34s -\n", "SLO attainment:");
    fprintf(f, "---------------- latency (ms) ---------------------------\n");
    fprintf(f, "%-10s %10s %10s %10s %10s %6s\n", "", "mean", "p50", "p90", "p99", "n");
    print_stat(f, "TTFT", &r->ttft);
    char sname[24];
    snprintf(sname, sizeof sname, "TTFT<=%d", r->short_prompt_tokens);
    print_stat(f, sname, &r->ttft_short);
    print_stat(f, "TPOT", &r->tpot);
    print_stat(f, "ITL", &r->itl);
    print_stat(f, "E2E", &r->e2el);
    fprintf(f, "%s: TTFT of completed requests with prompts of <= %d tokens (%d such requests, "
               "%d rejected, %d met every SLO)\n", sname, r->short_prompt_tokens, r->short_requests, r->short_rejected,
            r->short_good);
    fprintf(f, "========================================================\n");
    for (int i = 0; i < r->n_errors; i++) fprintf(f, "error: %s\n", r->errors[i]);
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *stat_json(const bench_stat *s) {
    return json_pack("{s:o, s:o, s:o, s:o, s:i}", "mean", num(s->mean), "p50", num(s->p50), "p90", num(s->p90),
                     "p99", num(s->p99), "n", s->n);
}

json_t *bench_report_json(const bench_report *r) {
    const bench_config *c = &r->cfg;
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "completed", json_integer(r->completed));
    json_object_set_new(o, "failed", json_integer(r->failed));
    json_object_set_new(o, "n_rejected", json_integer(r->rejected));
    json_object_set_new(o, "duration_s", num(r->duration_s));
    json_object_set_new(o, "request_throughput", num(r->request_throughput));
    json_object_set_new(o, "output_throughput", num(r->output_throughput));
    json_object_set_new(o, "input_throughput", num(r->input_throughput));
    json_object_set_new(o, "total_input_tokens", json_integer(r->total_input_tokens));
    json_object_set_new(o, "total_output_tokens", json_integer(r->total_output_tokens));
    json_object_set_new(o, "ttft_ms", stat_json(&r->ttft));
    json_object_set_new(o, "tpot_ms", stat_json(&r->tpot));
    json_object_set_new(o, "itl_ms", stat_json(&r->itl));
    json_object_set_new(o, "e2el_ms", stat_json(&r->e2el));
    json_object_set_new(o, "ttft_short", stat_json(&r->ttft_short));
    json_object_set_new(o, "short_prompt_tokens", json_integer(r->short_prompt_tokens));
    json_object_set_new(o, "short_requests", json_integer(r->short_requests));
    json_object_set_new(o, "short_rejected", json_integer(r->short_rejected));
    json_object_set_new(o, "short_good", json_integer(r->short_good));
    json_object_set_new(o, "goodput", num(r->goodput));
    json_object_set_new(o, "good_requests", json_integer(r->good));
    json_object_set_new(o, "slo_attainment", num(r->slo_attainment));
    json_object_set_new(o, "percentiles", json_string("linear interpolation between closest ranks (numpy default)"));
    json_t *errs = json_array();
    for (int i = 0; i < r->n_errors; i++) json_array_append_new(errs, json_string(r->errors[i]));
    json_object_set_new(o, "errors", errs);
    /* run parameters */
    json_object_set_new(o, "url", json_string(c->url ? c->url : ""));
    json_object_set_new(o, "model", json_string(r->model));
    json_object_set_new(o, "workload", json_string(bench_workload_kind_name(c->workload)));
    json_object_set_new(o, "endpoint", json_string(c->endpoint == BENCH_EP_CHAT ? "chat" : "completions"));
    json_object_set_new(o, "rate", c->concurrency > 0 ? json_null() : num(c->rate));
    json_object_set_new(o, "burstiness", num(c->burstiness));
    json_object_set_new(o, "concurrency", c->concurrency > 0 ? json_integer(c->concurrency) : json_null());
    json_object_set_new(o, "num_requests", c->n_requests > 0 ? json_integer(c->n_requests) : json_null());
    json_object_set_new(o, "target_duration_s", c->duration_s > 0 ? num(c->duration_s) : json_null());
    json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(o, "slo_ttft_ms", c->slo_ttft_ms > 0 ? num(c->slo_ttft_ms) : json_null());
    json_object_set_new(o, "slo_tpot_ms", c->slo_tpot_ms > 0 ? num(c->slo_tpot_ms) : json_null());
    json_object_set_new(o, "send_slo", json_boolean(c->send_slo));
    json_t *extra = c->extra_body ? json_loads(c->extra_body, 0, NULL) : NULL;
    json_object_set_new(o, "extra_body", extra ? extra : json_null());
    return o;
}
