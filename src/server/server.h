/* server.h — the OpenAI-compatible HTTP server behind `swiftlet serve`. Four layers, each
 * usable (and unit-tested) on its own:
 *   api_     request bodies -> validated api_request (jansson), OpenAI error JSON,
 *            response / SSE chunk JSON, stop-string matcher, a growable byte buffer;
 *   metrics_ Prometheus text exposition (vLLM's metric names under `swiftlet:`);
 *   http_    libmicrohttpd daemon: routes, auth (constant-time compare), admission
 *            (bounded queue -> 429), streaming generation driven by the engine.
 * The api_ and metrics_ parts never touch the engine or tokenizer, so the parser can be
 * fuzzed and tested without a model. */
#ifndef SW_SERVER_H
#define SW_SERVER_H
#include <pthread.h>
#include <jansson.h>
#include "base/base.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/tok.h"

/* ---------- growable byte buffer (always NUL-terminated when p != NULL) ---------- */
typedef struct api_buf { char *p; size_t len, cap; } api_buf;
int api_buf_append(api_buf *b, const char *s, size_t n);   /* SW_OK / SW_ERR_NOMEM */
int api_buf_printf(api_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void api_buf_free(api_buf *b);                               /* back to {0} */

/* ---------- OpenAI-style errors: {"error":{"message","type","param","code"}} ---------- */
typedef struct api_error {
    int status;          /* HTTP status: 400, 401, 404, 405, 413, 429, 500, 503 */
    const char *type;    /* "invalid_request_error", "authentication_error", ... (static) */
    const char *code;    /* static string or NULL (JSON null) */
    char param[64];      /* offending field; "" -> JSON null */
    char message[384];
} api_error;
/* Fills e; param may be NULL; returns SW_ERR_ARG so callers can `return api_error_set(...)`.
 * A message longer than the field is cut on a UTF-8 character boundary. */
int api_error_set(api_error *e, int status, const char *type, const char *code, const char *param,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Error body (malloc'd, NUL-terminated JSON); message and param are sanitized to valid
 * UTF-8 (invalid bytes -> U+FFFD). NULL only when out of memory. */
char *api_error_json(const api_error *e);

/* ---------- requests ---------- */
typedef enum api_kind { API_COMPLETIONS, API_CHAT } api_kind;

#define API_MAX_STOP 4      /* OpenAI's limit on stop strings */
#define API_MAX_N 16        /* choices per request */
#define API_MAX_LOGPROBS 20 /* top logprobs per token (engine_token holds 20) */
#define API_MAX_MESSAGES 4096

typedef struct api_msg { char *role; char *content; } api_msg; /* both owned, NUL-terminated */

/* Tool calling fields of a chat request (api_tools_req.c). */
enum { API_TOOL_CHOICE_AUTO, API_TOOL_CHOICE_NONE, API_TOOL_CHOICE_REQUIRED, API_TOOL_CHOICE_NAMED };
typedef struct api_tool_req {
    json_t *list;                /* the request's non-empty `tools` array (a reference), NULL = none */
    int choice;                  /* API_TOOL_CHOICE_* */
    char *name;                  /* NAMED: the tool (owned) */
    bool parallel;               /* parallel_tool_calls (default true) */
} api_tool_req;

typedef struct api_request {
    api_kind kind;
    char *model;                 /* NULL when absent */
    char *prompt;                /* completions: text prompt (NULL when given as token ids) */
    size_t prompt_len;
    int32_t *prompt_ids;         /* completions: (n_prompt_ids) token ids, NULL when text */
    int n_prompt_ids;
    api_msg *messages;           /* chat: (n_messages) */
    int n_messages;
    int max_tokens;              /* -1 = not given */
    float temperature;           /* default 1 */
    float top_p;                 /* default 1 */
    int top_k;                   /* 0 = off (-1 accepted as off) */
    float min_p;                 /* default 0 */
    bool has_seed;
    uint64_t seed;
    char *stop[API_MAX_STOP];    /* (n_stop) non-empty strings */
    int n_stop;
    float presence_penalty, frequency_penalty;
    bool logprobs;               /* report the sampled token's logprob */
    int top_logprobs;            /* alternatives per token, 0..API_MAX_LOGPROBS */
    int n;                       /* choices, 1..API_MAX_N */
    bool stream;
    bool include_usage;          /* stream_options.include_usage */
    bool ignore_eos;
    char *user;                  /* NULL when absent */
    char *cache_salt;            /* vLLM's cache_salt: prefix-cache namespace; NULL when absent */
    int priority;
    double slo_ttft_ms, slo_tpot_ms; /* 0 = server default */
    double timeout_s;            /* extension: end the request this long after it was queued
                                  * (finish_reason "timeout"; 504 before any token); 0 = none */
    json_t *body;                /* chat: the whole request object (a reference), for the chat template */
    /* output constraint (api_grammar.c): kind "json" | "schema" | "gbnf" | "regex" |
     * "choice" and its source text, NULL kind = none; gparam: the field that gave it */
    const char *gkind, *gparam;
    char *gtext; size_t glen;
    int32_t *bias_ids; float *bias; int n_bias; /* logit_bias */
    api_tool_req tools;          /* tools, tool_choice, parallel_tool_calls */
} api_request;

/* Parses and validates a request body. On error fills e (400 naming the field) and
 * returns a negative status; *out is then empty (nothing to free). */
int api_request_parse(api_kind kind, const char *body, size_t len, api_request *out, api_error *e);
void api_request_free(api_request *r);
/* api_grammar.c: response_format / grammar / json_schema / guided_* / logit_bias. */
int api_parse_structured(json_t *root, api_request *r, api_error *e);
void api_structured_free(api_request *r);
/* The request's compiled constraint through the cache (*out NULL when it has none);
 * 400 naming the field and the unsupported keyword when it cannot be compiled. */
int api_grammar_get(gram_cache *c, const api_request *r, gram_grammar **out, api_error *e);

/* ---------- stop strings ---------- */
/* Feeds detokenized text; passes through only text that can no longer be part of a stop
 * string (holds back the longest suffix that is a prefix of one). Once a stop string
 * matched, the text before it is emitted, the rest dropped, and stopped is set. */
typedef struct api_stop {
    char *const *stops;          /* borrowed (n_stops) */
    int n_stops;
    api_buf held;
    bool stopped;
} api_stop;
void api_stop_init(api_stop *s, char *const *stops, int n_stops);
/* Appends the emittable part of held+text to out. Returns SW_OK or SW_ERR_NOMEM. */
int api_stop_feed(api_stop *s, const char *text, size_t len, api_buf *out);
/* End of generation without a stop: releases what was held back. */
int api_stop_flush(api_stop *s, api_buf *out);
void api_stop_free(api_stop *s);

/* ---------- reasoning (api_think.c) ---------- */
/* Splits a reasoning model's chat output into reasoning_content and content: a
 * `<think>...</think>` block at the start of the output (after optional whitespace, or
 * open from the start when the prompt ended inside one) is reasoning, trimmed; the rest,
 * its leading whitespace dropped, is content. No block: all content, unchanged; no
 * `</think>`: all reasoning. Fed text pieces (after stop strings); holds back possible
 * partial tags, so the result is the same however the text is split. Reasoning always
 * comes before content. */
typedef enum api_think_state { API_THINK_OFF, API_THINK_START, API_THINK_IN, API_THINK_AFTER, API_THINK_CONTENT } api_think_state;
typedef struct api_think {
    api_think_state state;
    bool reasoned;       /* some reasoning emitted (its leading whitespace is behind us) */
    api_buf held;        /* undecided tail */
} api_think;
/* enabled false: everything is content (state OFF); open: the prompt left a think block open. */
void api_think_init(api_think *t, bool enabled, bool open);
bool api_think_active(const api_think *t);  /* not OFF */
/* Appends what is decided of held+text to reasoning / content. SW_OK or SW_ERR_NOMEM. */
int api_think_feed(api_think *t, const char *text, size_t len, api_buf *reasoning, api_buf *content);
/* End of output: releases what was held back. */
int api_think_flush(api_think *t, api_buf *reasoning, api_buf *content);
void api_think_free(api_think *t);
/* Whether a rendered prompt ends inside a think block (its last `<think>` followed only by
 * whitespace), as DeepSeek-R1 distills' templates leave it. */
bool api_think_prompt_open(const char *prompt, size_t len);
/* Whether a chat template's text mentions `<think>` (a reasoning model: --reasoning-format auto). */
bool api_think_template_uses(const char *tmpl, size_t len);

/* ---------- responses and SSE ---------- */
/* A JSON string (jansson json_t *, new reference) of n bytes: valid UTF-8 kept, each invalid
 * byte replaced by U+FFFD. NULL only when out of memory. */
void *api_json_text(const char *s, size_t n);
const char *api_finish_name(engine_finish f); /* "stop", "length", "abort", "error", NULL for NONE */
/* "data: <json>\n\n" (compact JSON) / "data: [DONE]\n\n". */
int api_sse_event(api_buf *b, const char *json, size_t len);
int api_sse_done(api_buf *b);
/* One streaming chunk (object "text_completion" or "chat.completion.chunk") with a single
 * choice. text may be NULL (no content field for chat, "" for completions); finish NULL
 * = JSON null; logprobs stolen (may be NULL); role_delta adds delta.role = "assistant". */
typedef struct api_resp_meta { const char *id; long long created; const char *model; } api_resp_meta;
char *api_chunk_json(api_kind kind, const api_resp_meta *m, int index, const char *text, size_t text_len,
                     const char *finish, void *logprobs_json, bool role_delta);
/* The same with delta.reasoning_content (chat; reasoning NULL = no such field). */
char *api_chunk_json_reasoning(api_kind kind, const api_resp_meta *m, int index, const char *text, size_t text_len,
                               const char *reasoning, size_t reasoning_len, const char *finish, void *logprobs_json,
                               bool role_delta);
/* Final usage-only chunk (choices: []). */
char *api_usage_chunk_json(api_kind kind, const api_resp_meta *m, int prompt_tokens, int completion_tokens);

/* ---------- metrics ---------- */
#define METRICS_MAX_BUCKETS 32
typedef struct metrics_hist {
    const double *bounds;        /* (n_bounds) upper bounds in seconds, increasing; +Inf implicit */
    int n_bounds;
    uint64_t counts[METRICS_MAX_BUCKETS]; /* per bucket, non-cumulative; [n_bounds] = +Inf */
    double sum;
    uint64_t count;
} metrics_hist;
void metrics_hist_init(metrics_hist *h, const double *bounds, int n_bounds);
void metrics_hist_observe(metrics_hist *h, double v);

enum { METRICS_FINISH_STOP, METRICS_FINISH_LENGTH, METRICS_FINISH_ABORT, METRICS_FINISH_ERROR, METRICS_FINISH_REJECTED,
       METRICS_N_FINISH };
typedef struct metrics {
    pthread_mutex_t mu;
    metrics_hist ttft, tpot, e2e, queue;
    uint64_t finished[METRICS_N_FINISH];
} metrics;
void metrics_init(metrics *m);
void metrics_destroy(metrics *m);
/* Records one finished engine request (thread-safe). */
void metrics_observe(metrics *m, const engine_timing *t, engine_finish f);
/* Prometheus text format 0.0.4 of m + an engine snapshot, labelled model_name;
 * kv_block_size (tokens per KV block) goes into swiftlet:cache_config_info. */
int metrics_render(metrics *m, const engine_stats *s, const char *model_name, int kv_block_size, api_buf *out);

/* ---------- chat templates (api_chat.c) ---------- */
/* The model's own Jinja chat template with its BOS/EOS token texts. */
typedef struct api_chat_template api_chat_template;
/* Compiles template text (bos/eos may be NULL). A syntax error -> SW_ERR_FORMAT + message. */
int api_chat_template_create(const char *text, size_t len, const char *bos, const char *eos,
                             api_chat_template **out, sw_err *err);
/* From a GGUF's tokenizer.chat_template: SW_ERR_NOTFOUND when it has none. */
int api_chat_template_load(const gguf_ctx *g, api_chat_template **out, sw_err *err);
void api_chat_template_destroy(api_chat_template *ct);
/* Renders an OpenAI chat request object (malloc'd text). A template error -> its message. */
int api_chat_template_render(const api_chat_template *ct, const json_t *request, char **text, size_t *len, sw_err *err);
/* The prompt text of a parsed chat request: ct when non-NULL, else the hard-coded family;
 * a render error is a 400 carrying the template's message. */
int api_chat_prompt(const api_chat_template *ct, tok_chat_family family, const api_request *rq,
                    char **text, size_t *len, api_error *e);
/* POST /apply-template: the body is a chat request; *json_out = {"prompt": TEXT} (malloc'd). */
int api_chat_apply_template(const api_chat_template *ct, tok_chat_family family, const char *body, size_t body_len,
                            char **json_out, api_error *e);

/* ---------- HTTP server ---------- */
/* Constant-time comparison (time depends only on the lengths). */
bool http_ct_equal(const char *a, size_t alen, const char *b, size_t blen);

/* A set of API keys (each owned, NUL-terminated). */
typedef struct http_keys { char **v; int n; } http_keys;
int http_keys_add(http_keys *k, const char *key, size_t len); /* SW_ERR_ARG for an empty key */
/* Adds the keys of a key file's text: one per line, surrounding blanks trimmed, blank
 * lines and lines starting with '#' ignored; a file without a key (or a key with an inner
 * space or control character) is an error. */
int http_keys_parse(http_keys *k, const char *text, size_t len, sw_err *err);
/* Whether key is in the set; compares with every key, each in constant time. */
bool http_keys_match(const http_keys *k, const char *key, size_t len);
void http_keys_free(http_keys *k);

#define HTTP_MAX_BODY (4u << 20)
#define HTTP_MAX_TOKENS_DEFAULT 1024
/* A non-streaming response with logprobs holds n x (top_logprobs + 1) x max_tokens entries
 * (~80 bytes each): more than this is refused (400) — stream it instead. */
#define HTTP_MAX_LOGPROB_ENTRIES (1 << 16)
#define HTTP_THREADS 4            /* libmicrohttpd pool threads (epoll; no callback blocks) */
#define HTTP_CONN_TIMEOUT_S 30    /* idle seconds (no byte either way) before a connection is closed */
#define HTTP_READ_TIMEOUT_S 30    /* seconds for a whole request (headers + body) to arrive */
#define HTTP_MAX_CONNS_PER_IP 256  /* behind a proxy every client has its address: raise it */
#define HTTP_MAX_CONNS 1024

typedef struct http_config {
    const char *host;        /* "127.0.0.1" by default */
    int port;                /* 0 = any free port (see http_server_port) */
    const http_keys *api_keys; /* accepted keys (copied); NULL or empty = no auth */
    bool metrics_public;     /* with keys: /metrics answers without one (default: needs one) */
    const char *access_log;  /* one JSON line per request appended to this file; "-" = stdout;
                              * NULL = none */
    bool prefix_cache_per_user; /* --prefix-cache-scope user: KV blocks are shared only between
                              * requests of the same `user` (and cache_salt) */
    int max_queue;           /* waiting requests allowed before 429 */
    size_t max_body;         /* bytes; 0 = HTTP_MAX_BODY */
    int max_tokens_default;  /* chat max_tokens when a request names none; 0 = HTTP_MAX_TOKENS_DEFAULT
                              * (completions keep OpenAI's 16) */
    int threads;             /* 0 = HTTP_THREADS */
    int conn_timeout_s;      /* 0 = HTTP_CONN_TIMEOUT_S */
    int read_timeout_s;      /* 0 = HTTP_READ_TIMEOUT_S; counted from the connection's open or
                              * the end of its previous response */
    int max_conns_per_ip;    /* 0 = HTTP_MAX_CONNS_PER_IP */
    int max_conns;           /* 0 = HTTP_MAX_CONNS */
    double request_timeout_s; /* default (and cap) of a request's `timeout`; 0 = none */
} http_config;

/* What the server serves once loaded (all borrowed; must outlive the server). */
typedef struct http_backend {
    engine *eng;
    const tok *tk;
    const char *model_name;
    tok_chat_family chat;    /* fallback when chat_template is NULL */
    const api_chat_template *chat_template; /* the model's own template, or NULL */
    int max_ctx;             /* tokens per sequence (prompt + generated) */
    int max_seqs;            /* engine's cap on running sequences */
    int kv_block_size;       /* tokens per KV block (reported in /metrics) */
    gram_cache *grammars;    /* compiled output constraints; NULL = structured outputs off */
    bool reasoning;          /* chat: a leading <think> block goes to reasoning_content
                              * (serve --reasoning-format; api_think.c) */
    int tool_family;         /* api_tool_family (api_tools.h): how calls are written; 0 = none */
} http_backend;

typedef struct http_server http_server;
/* Binds and starts serving: /health answers 503 and the API 503 until http_server_ready. */
int http_server_create(const http_config *cfg, http_server **out, sw_err *err);
int http_server_port(const http_server *s);
void http_server_ready(http_server *s, const http_backend *b);
/* Graceful drain: from now on /health answers 503 {"status":"draining"} and new API
 * requests 503 (code "draining"); generations in flight go on. */
void http_server_drain(http_server *s);
/* Generations in flight (submitted to the engine, response not finished). */
int http_server_in_flight(http_server *s);
/* Ends what is still in flight, stops the pool threads and the watchdog. Call before
 * destroying the engine. */
void http_server_destroy(http_server *s);

#endif
