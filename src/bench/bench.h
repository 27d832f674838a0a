/* bench.h — `swiftlet bench`: a load generator for any OpenAI-compatible server
 * (swiftlet, vLLM, llama.cpp's server). It speaks only HTTP/1.1 + the OpenAI API + SSE:
 * a small blocking HTTP client over sockets (bench_http.c), an incremental chunked
 * decoder and SSE parser, per-request stream timing (TTFT, inter-token latencies, TPOT,
 * end-to-end), deterministic text workloads (bench_workload.c), open-loop (Poisson /
 * gamma) or closed-loop drivers with one thread per in-flight request (bench_run.c),
 * statistics with numpy-style percentiles (bench_stats.c), reports as a table / JSON,
 * and hand-written SVG charts for rate sweeps (bench_svg.c). Prefix `bench_`.
 * All times are milliseconds on CLOCK_MONOTONIC unless a name says otherwise. */
#ifndef SW_BENCH_H
#define SW_BENCH_H
#include "base/base.h"
#include <jansson.h>
#include <stdio.h>

/* ---- random numbers and arrivals (bench_stats.c) ---- */
typedef struct bench_rng { uint64_t s[4]; } bench_rng; /* xoshiro256** state */
void bench_rng_seed(bench_rng *r, uint64_t seed);
uint64_t bench_rng_next(bench_rng *r);
double bench_rng_uniform(bench_rng *r);               /* [0, 1) */
int bench_rng_range(bench_rng *r, int lo, int hi);    /* uniform integer in [lo, hi] */
double bench_rng_normal(bench_rng *r);                /* N(0, 1) */
double bench_rng_gamma(bench_rng *r, double shape, double scale); /* Marsaglia-Tsang */
/* Gap in seconds to the next arrival at `rate` req/s: gamma(shape B, scale 1/(rate*B)),
 * vLLM's convention — burstiness B = 1 is a Poisson process (exponential gaps), B < 1
 * burstier, B > 1 more regular. Mean 1/rate, variance 1/(rate^2 * B). */
double bench_arrival_gap(bench_rng *r, double rate, double burstiness);

/* ---- statistics (bench_stats.c) ---- */
typedef struct bench_stat { int n; double mean, p50, p90, p99; } bench_stat; /* n = 0: all NaN */
/* q-th percentile (q in [0, 100]) of n ascending values by linear interpolation between
 * the closest ranks — numpy.percentile's default: h = (n-1)*q/100, x[floor h] + frac*(next-x). */
double bench_percentile(const double *sorted, size_t n, double q);
/* Sorts vals (n of them) in place and fills st. */
void bench_stat_compute(double *vals, size_t n, bench_stat *st);

/* ---- URL, HTTP/1.1 client, chunked decoding, SSE (bench_http.c) ---- */
typedef struct bench_url {
    char host[256];   /* name or address, brackets stripped for IPv6 */
    char port[8];     /* decimal, default "80" */
    char base[256];   /* path prefix without trailing '/', e.g. "" or "/proxy" */
} bench_url;
/* "http://HOST[:PORT][/prefix]"; https is refused (no TLS). */
int bench_url_parse(const char *url, bench_url *u, sw_err *err);

/* Incremental Transfer-Encoding: chunked decoder. */
typedef struct bench_chunked {
    int state;           /* internal */
    uint64_t remaining;  /* bytes left in the current chunk */
    int n_digits;        /* hex digits seen on the size line */
    int done;            /* 1 after the last chunk and trailers */
} bench_chunked;
typedef int (*bench_sink_fn)(void *ctx, const char *data, size_t n); /* non-zero stops */
/* Decodes n bytes, passing payload to sink. Returns 0, SW_ERR_FORMAT on bad framing
 * (err says why), or the sink's non-zero return. Bytes after the end are ignored. */
int bench_chunked_feed(bench_chunked *c, const char *in, size_t n, bench_sink_fn sink, void *ctx, sw_err *err);

/* Incremental server-sent-events parser (WHATWG rules: lines end in \n, \r\n or \r;
 * "data:" lines of one event are joined with \n; a blank line dispatches; comments and
 * other fields are ignored). Lines longer than 8 MiB are a format error. */
typedef struct bench_sse {
    char *line; size_t line_len, line_cap;  /* current partial line */
    char *data; size_t data_len, data_cap;  /* data of the current event */
    int has_data, prev_cr;
} bench_sse;
typedef int (*bench_event_fn)(void *ctx, const char *data, size_t n); /* data NUL-terminated */
void bench_sse_init(bench_sse *s);
void bench_sse_free(bench_sse *s);
int bench_sse_feed(bench_sse *s, const char *in, size_t n, bench_event_fn on_event, void *ctx, sw_err *err);

/* One HTTP/1.1 exchange on a fresh connection (Connection: close). The body (after
 * de-chunking) goes to on_body with the status known in *status before the first call.
 * api_key (may be NULL) is sent as "Authorization: Bearer". timeout_s bounds connect and
 * every single read/write. Returns 0 when the response was read to its end (whatever
 * its status), SW_ERR_IO / SW_ERR_FORMAT with a message otherwise, or the non-zero value
 * on_body returned. */
int bench_http_request(const bench_url *u, const char *method, const char *path, const char *api_key,
                       const char *body, double timeout_s, int *status, bench_sink_fn on_body, void *ctx,
                       sw_err *err);

/* ---- one streamed completion: timing from SSE events (bench_http.c) ---- */
typedef struct bench_stream {
    double t0_ms;             /* request start (before connect) */
    double t_first_ms;        /* first non-empty content chunk; 0 = none yet */
    double t_last_ms;         /* latest content chunk */
    double t_end_ms;          /* [DONE] received; 0 = not yet */
    double *itl_ms;           /* (n_itl) gaps between successive content chunks */
    int n_itl, itl_cap;
    int n_content;            /* content chunks seen */
    int usage_completion;     /* usage.completion_tokens, -1 = no usage chunk */
    int usage_prompt;         /* usage.prompt_tokens, -1 = none */
    int failed;               /* set with err */
    char err[200];
} bench_stream;
void bench_stream_init(bench_stream *s, double t0_ms);
void bench_stream_free(bench_stream *s);
/* Handles one SSE event's data received at now_ms: "[DONE]", a completions chunk
 * (choices[0].text), a chat chunk (choices[0].delta.content), a usage chunk, or an
 * {"error":...} object. Returns 0, or -1 (and sets failed/err) on an error event or data
 * that is not a JSON object. */
int bench_stream_event(bench_stream *s, const char *data, size_t n, double now_ms);

/* ---- workloads (bench_workload.c) ---- */
/* Lengths are approximated in words: a target of T tokens becomes round(0.9*T) words
 * drawn from a fixed list of common English words, in sentences. 0.9 words/token was
 * measured for this list with the GPT-2 and Llama-2 tokenizers (plain English prose is
 * nearer the usual 0.75); the server's usage.prompt_tokens reports the true count. */
#define BENCH_WORDS_PER_TOKEN 0.9
enum bench_workload_kind { BENCH_WL_CHAT_SHARED_PREFIX, BENCH_WL_MIXED_LENGTHS, BENCH_WL_LONG_PROMPT };
typedef struct bench_msg { const char *role; char *content; } bench_msg;
typedef struct bench_request {
    bench_msg *msgs;     /* (n_msgs) system?, then user/assistant turns ending with user */
    int n_msgs;
    int max_tokens;      /* fixed output length (sent with ignore_eos) */
    int approx_prompt_tokens; /* words / BENCH_WORDS_PER_TOKEN over all message contents */
    char user[32];       /* tenant name ("" = none) */
    int conv_id, turn;   /* chat-shared-prefix: conversation and 1-based turn, else -1 */
} bench_request;
typedef struct bench_workload bench_workload;
int bench_workload_kind_parse(const char *name, int *kind);
const char *bench_workload_kind_name(int kind);
int bench_workload_create(int kind, uint64_t seed, bench_workload **out, sw_err *err);
void bench_workload_destroy(bench_workload *w);
/* The i-th request (generated on demand, in order; same seed -> same sequence). The
 * pointer stays valid until destroy. Not thread-safe. */
int bench_workload_get(bench_workload *w, int i, const bench_request **out, sw_err *err);
/* Completions form of a request: the content alone for a single user message, else the
 * turns joined as "System: ...\n\nUser: ...\n\nAssistant: ...\n\nUser: ...\n\nAssistant:".
 * Returns a malloc'd string. Each turn's rendering is a prefix of the next turn's. */
char *bench_request_prompt(const bench_request *rq);
int bench_count_words(const char *s);

/* ---- running a benchmark (bench_run.c) ---- */
enum bench_endpoint { BENCH_EP_COMPLETIONS, BENCH_EP_CHAT };
typedef struct bench_config {
    const char *url;          /* http://host:port */
    const char *model;        /* NULL: ask GET /v1/models, else omit the field */
    const char *api_key;      /* NULL: no Authorization header */
    int workload;             /* enum bench_workload_kind */
    int endpoint;             /* enum bench_endpoint */
    double rate;              /* req/s (open loop) when concurrency == 0 */
    double burstiness;        /* gamma shape, 1 = Poisson */
    int concurrency;          /* > 0: closed loop with this many in flight */
    int n_requests;           /* > 0: stop after this many */
    double duration_s;        /* > 0 (and n_requests == 0): stop issuing after this long */
    double slo_ttft_ms, slo_tpot_ms; /* 0 = no such SLO */
    uint64_t seed;
    int send_slo;             /* 1: bodies carry "slo_ttft_ms" / "slo_tpot_ms" (those SLOs > 0),
                               * swiftlet's extension fields, so the server schedules by the
                               * objectives the bench scores; other servers may reject them */
    int short_prompt_tokens;  /* prompts of <= this many tokens are "short" (ttft_short); 0 = 256 */
    const char *extra_body;   /* JSON object merged (recursively) into every request, or NULL */
    double timeout_s;         /* per connect / read */
    int quiet;                /* no progress or error lines on stderr */
} bench_config;

#define BENCH_SHORT_PROMPT_DEFAULT 256

/* One request's outcome. */
typedef struct bench_result {
    int ok;
    int http_status;      /* status of the response, 0 = none (connect or read failed) */
    double sched_ms;      /* intended start, from benchmark start */
    double start_ms;      /* actual start, from benchmark start */
    double ttft_ms, e2e_ms, tpot_ms; /* tpot < 0 when output_tokens <= 1 */
    double *itl_ms;       /* (n_itl) owned */
    int n_itl;
    int output_tokens;
    int prompt_tokens;        /* usage.prompt_tokens, -1 when the server sent none */
    int approx_prompt_tokens; /* the workload's word-based estimate (used when no usage) */
    char err[200];
} bench_result;

typedef struct bench_report {
    bench_config cfg;     /* strings borrowed from the caller's config */
    char model[128];      /* model name used ("" = none sent) */
    int completed, failed;
    double duration_s;    /* start of the first request to end of the last */
    double request_throughput, output_throughput, input_throughput; /* per second */
    long total_output_tokens, total_input_tokens;
    bench_stat ttft, tpot, itl, e2el; /* ms */
    double goodput;       /* completed requests meeting every SLO, per second */
    double slo_attainment;/* such requests / (completed + failed) */
    int good;             /* how many met every SLO */
    int rejected;         /* failed requests answered HTTP 503 (e.g. swiftlet --policy slo's
                           * "slo_unattainable": refused as predicted to miss its TTFT SLO) */
    int short_prompt_tokens;  /* the threshold used (cfg's, 0 -> BENCH_SHORT_PROMPT_DEFAULT) */
    bench_stat ttft_short;    /* TTFT (ms) of completed requests with prompt <= that many tokens
                               * (usage.prompt_tokens, else the workload's estimate) */
    int short_requests;       /* requests (any outcome) with such prompts; failed ones are
                               * classified by the workload's estimate */
    int short_rejected, short_good; /* of those: answered 503 / met every SLO */
    bench_result *results;/* (n_results) in issue order */
    int n_results;
    char errors[5][200];  /* first few failure messages */
    int n_errors;
} bench_report;

int bench_run(const bench_config *cfg, bench_report **out, sw_err *err);
void bench_report_destroy(bench_report *r);
/* Fills the aggregate fields of r from r->results (used by bench_run; exposed so tests
 * can check the arithmetic on hand-made results). */
void bench_report_aggregate(bench_report *r);
void bench_report_print(const bench_report *r, FILE *f);
/* New reference: keys completed, failed, n_rejected (HTTP 503s, also counted in failed),
 * duration_s, request_throughput, output_throughput, ttft_ms/tpot_ms/itl_ms/e2el_ms and
 * ttft_short {mean,p50,p90,p99,n}, short_prompt_tokens, short_requests, short_rejected,
 * short_good, goodput, slo_attainment, and the run parameters (send_slo among them). */
json_t *bench_report_json(const bench_report *r);

/* ---- sweep chart (bench_svg.c) ---- */
/* Writes an SVG with three panels: p50/p99 TTFT and short-prompt p99 TTFT vs achieved
 * request throughput, p50/p99 TPOT vs achieved throughput, and goodput + throughput vs
 * offered rate. */
int bench_svg_write(const char *path, bench_report *const *reports, int n, sw_err *err);

#endif
