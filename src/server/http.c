/* http.c — the HTTP server: libmicrohttpd on a fixed pool of threads (epoll), routing,
 * API-key auth (/metrics too unless --metrics-public), body size limit, admission control,
 * graceful drain, the access log (one JSON line per request, written when it completes),
 * and the generation
 * driver that turns engine tokens into OpenAI responses.
 *
 * Connection model. No callback ever blocks: a pool thread serves many connections.
 *  - Everything decidable from the headers (route, method, key, readiness, declared
 *    length) is answered in libmicrohttpd's first callback, before any body is read.
 *  - A generation (`gen`) owns the parsed request and one engine request per choice (n).
 *    While it waits for the engine (slo verdict, queue, tokens) its connection is
 *    suspended (MHD_suspend_connection); the engine's per-request notify hook and the
 *    watchdog resume it (gen_wake). Non-streaming: the access handler pumps tokens on
 *    every resume and answers once every choice is done. Streaming: once the first token
 *    (or the end) is there, a 200 text/event-stream response is queued whose content
 *    reader pumps tokens through the streaming detokenizer, the stop-string matcher and
 *    (chat on a reasoning model) the think splitter (api_think.c: reasoning_content vs
 *    content), and suspends again when it has nothing to send.
 *  - One watchdog thread, every WATCH_MS: shuts down connections that have not delivered
 *    a whole request within the read timeout (slow headers / bodies), and checks the
 *    sockets of suspended generations for hang-up (libmicrohttpd cannot see it while a
 *    connection is suspended): the engine requests are cancelled, so their KV blocks are
 *    freed at the next engine step.
 *  - Drain (http_server_drain): /health says 503 draining, new generations get 503,
 *    generations in flight go on; http_server_destroy then ends what is left. */
#include "server/server.h"
#include "server/api_tools.h"
#include "kv/kv.h"
#include <jansson.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT_T;
#else
typedef enum MHD_Result MHD_RESULT_T;
#endif

#define POLL_CAP 32
#define WATCH_MS 100.0
/* A declared Content-Length up to this many times the limit is read and discarded before
 * the 413 (so the client reads it); beyond, the 413 goes out at once. */
#define HTTP_DISCARD_FACTOR 4

typedef struct gen gen;

/* One TCP connection from accept to close (libmicrohttpd's socket_context): what the
 * watchdog needs for the read timeout. Fields under the server's mu. */
typedef struct sock {
    int fd;
    double t_read_ms;         /* when the current request could start arriving */
    bool reading;             /* a request (headers or body) is still arriving */
    bool cut;                 /* shut down by the watchdog */
    struct sock *prev, *next;
} sock;

struct http_server {
    struct MHD_Daemon *d;
    char *host;
    http_keys keys;           /* no keys = no auth */
    FILE *alog;               /* access log (--access-log), NULL = none */
    bool alog_owned;          /* opened here (not stdout) */
    bool metrics_public;
    int port;
    int max_queue;
    size_t max_body;
    int max_tokens_default;
    bool prefix_cache_per_user;
    double read_timeout_ms;
    double request_timeout_s; /* default and cap of a request's timeout; 0 = none */
    atomic_bool ready;
    atomic_bool draining;     /* new generations refused, /health 503 draining */
    atomic_bool stopping;     /* generations in flight are ended */
    http_backend be;          /* valid once ready */
    char *model_name;         /* owned copy of be.model_name */
    metrics met;
    pthread_mutex_t mu;       /* guards n_active, gens, n_gens, socks, watch_stop */
    pthread_cond_t cv;        /* watchdog sleep; signalled to stop it */
    int n_active;             /* engine requests submitted and not yet released */
    gen *gens;                /* generations in flight (their engine requests submitted) */
    int n_gens;
    sock *socks;              /* open connections */
    pthread_t watch;
    bool watch_on, watch_stop;
    unsigned long long n_ended;   /* generations ended so far (under mu) */
    atomic_ullong next_id;
};

enum route { ROUTE_NONE, ROUTE_COMPLETIONS, ROUTE_CHAT, ROUTE_MODELS, ROUTE_HEALTH, ROUTE_METRICS, ROUTE_APPLY_TEMPLATE };

/* Per-request state of a generation route (MHD's con_cls). */
typedef struct conn {
    api_buf body;
    api_kind kind;
    bool too_big;            /* over max_body: the rest is read and discarded, then 413 */
    bool dispatched;         /* the body is complete and the request was handled (or it was
                              * answered from its headers) */
    gen *g;                  /* the generation the access handler drives; NULL once its
                              * response is queued (a stream's gen belongs to the response) */
    bool trim;               /* a large response: malloc_trim once it is sent */
    /* access log */
    double t0_ms;            /* first callback */
    int route;               /* enum route */
    char method[8];
    int n_prompt, n_out;     /* tokens (generation routes) */
    double ttft_ms;          /* 0 = no token */
    char user[65];           /* tenant (request's `user`), cut to 64 bytes */
} conn;

#define HTTP_TRIM_BYTES (1u << 20)

typedef struct choice {
    engine_req *r;
    tok_stream ts;
    api_stop stop;
    api_think think;         /* chat on a reasoning model: <think> block -> reasoning_content */
    api_buf text;            /* non-stream: emitted text (content) so far */
    api_buf reasoning;       /* non-stream: reasoning_content so far */
    api_buf lpj[4];          /* non-stream logprobs as JSON text: the items of each array of
                              * the logprobs object (chat: content; completions: tokens,
                              * token_logprobs, top_logprobs, text_offset), built token by token */
    size_t text_off;         /* bytes emitted so far (completions text_offset) */
    int n_tokens;
    engine_finish fin;       /* NONE while running */
    bool done;               /* fin decided and (stream) final chunk queued */
    bool role_sent;
    api_tools_parser *tp;    /* tool calls are parsed out of the text (NULL = plain text) */
    api_tool_calls calls;    /* calls so far (ids; non-stream: names and arguments) */
    uint64_t id_rng;         /* call ids */
} choice;

struct gen {
    http_server *s;
    struct MHD_Connection *c;
    api_request req;
    int n_prompt;
    int n;                   /* choices */
    choice ch[API_MAX_N];
    int fd;                  /* client socket (hang-up checks), -1 unknown */
    char id[48];
    api_resp_meta meta;
    char err_msg[256];       /* first engine error */
    conn *cn;                /* the request's connection state (valid while the request runs) */
    char *tbuf;              /* (tbuf_cap) one token's text: tok_text_max bytes always suffice */
    int tbuf_cap;
    /* streaming */
    api_buf out;             /* SSE bytes not yet handed to MHD */
    size_t out_off;
    bool finished;           /* every choice done, usage + [DONE] queued */
    /* wake-ups (gen_wake / gen_suspend) */
    pthread_mutex_t wmu;
    bool suspended;          /* under wmu: the connection is suspended */
    bool news;               /* under wmu: woken since the last gen_suspend */
    atomic_bool gone;        /* the client hung up (seen by the watchdog) */
    bool registered;         /* in s->gens */
    gen *prev, *next;        /* s->gens, under s->mu */
};

/* ------------------------------------------------------------------ responses */

static MHD_RESULT_T send_body(struct MHD_Connection *c, int status, const char *ctype, char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(body); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_RESULT_T ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static MHD_RESULT_T send_json(struct MHD_Connection *c, int status, json_t *root) {
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!s) return MHD_NO;
    return send_body(c, status, "application/json", s, strlen(s));
}

/* allow: value of the Allow header of a 405 (NULL otherwise). */
static MHD_RESULT_T send_error_allow(struct MHD_Connection *c, const api_error *e, const char *allow) {
    char *s = api_error_json(e);
    if (!s) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r) { free(s); return MHD_NO; }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (e->status == 429 || e->status == 503) MHD_add_response_header(r, "Retry-After", "1");
    if (e->status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (allow) MHD_add_response_header(r, "Allow", allow);
    MHD_RESULT_T ret = MHD_queue_response(c, (unsigned)e->status, r);
    MHD_destroy_response(r);
    return ret;
}

static MHD_RESULT_T send_error(struct MHD_Connection *c, const api_error *e) { return send_error_allow(c, e, NULL); }

static MHD_RESULT_T fail(struct MHD_Connection *c, int status, const char *type, const char *code, const char *param,
                         const char *msg) {
    api_error e;
    api_error_set(&e, status, type, code, param, "%s", msg);
    return send_error(c, &e);
}

/* ------------------------------------------------------------------ generation */

/* Resumes g's connection if it is suspended, else notes that there is news so that the
 * next gen_suspend does not sleep. Any thread: the engine calls it (through gen_notify)
 * with the request's lock held, the watchdog with s->mu held. Lock order: a request's mu
 * or s->mu, then g->wmu, then libmicrohttpd's own; never the other way round. */
static void gen_wake(gen *g) {
    pthread_mutex_lock(&g->wmu);
    g->news = true;
    if (g->suspended) {
        g->suspended = false;
        MHD_resume_connection(g->c);
    }
    pthread_mutex_unlock(&g->wmu);
}

static void gen_notify(void *arg) { gen_wake(arg); }

/* From a callback of g's connection only: suspends it until gen_wake and returns true, or
 * returns false (without suspending) when news came since the last call or the server is
 * stopping (a suspended connection would outlive the daemon); the caller looks again. */
static bool gen_suspend(gen *g) {
    pthread_mutex_lock(&g->wmu);
    bool sleep = !g->news && !atomic_load(&g->s->stopping);
    if (sleep) {
        g->suspended = true;
        MHD_suspend_connection(g->c);
    }
    g->news = false;
    pthread_mutex_unlock(&g->wmu);
    return sleep;
}

/* Whether g should end now: the client left or the server is stopping. */
static bool gen_abandoned(gen *g) { return atomic_load(&g->gone) || atomic_load(&g->s->stopping); }

/* True when the peer closed or reset the connection. */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void gen_cancel_all(gen *g) {
    for (int i = 0; i < g->n; i++)
        if (g->ch[i].r) engine_req_cancel(g->ch[i].r);
}

/* Adds g to the server's generations in flight (watchdog, drain) and hooks the engine's
 * notifications to it. */
static void gen_register(gen *g) {
    http_server *s = g->s;
    pthread_mutex_lock(&s->mu);
    g->next = s->gens;
    if (s->gens) s->gens->prev = g;
    s->gens = g;
    s->n_gens++;
    g->registered = true;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < g->n; i++) engine_req_set_notify(g->ch[i].r, gen_notify, g);
}

static void gen_destroy(gen *g) {
    if (!g) return;
    /* no notify call is running or will start after this (engine_req_set_notify) */
    for (int i = 0; i < g->n; i++)
        if (g->ch[i].r) engine_req_set_notify(g->ch[i].r, NULL, NULL);
    if (g->registered) {
        pthread_mutex_lock(&g->s->mu);
        if (g->prev) g->prev->next = g->next; else g->s->gens = g->next;
        if (g->next) g->next->prev = g->prev;
        g->s->n_gens--;
        g->s->n_ended++;
        pthread_mutex_unlock(&g->s->mu);
    }
    int released = 0;
    for (int i = 0; i < g->n; i++) {
        choice *c = &g->ch[i];
        if (c->r) {
            engine_timing t;
            engine_req_timing(c->r, &t);
            if (t.t_finish_ms <= 0) t.t_finish_ms = sw_now_ms();
            metrics_observe(&g->s->met, &t, c->fin != ENGINE_FINISH_NONE ? c->fin : ENGINE_FINISH_CANCELLED);
            engine_req_release(c->r);
            released++;
        }
        api_stop_free(&c->stop);
        api_think_free(&c->think);
        api_tools_parser_destroy(c->tp);
        api_tool_calls_free(&c->calls);
        api_buf_free(&c->text);
        api_buf_free(&c->reasoning);
        for (int k = 0; k < 4; k++) api_buf_free(&c->lpj[k]);
    }
    if (released) {
        pthread_mutex_lock(&g->s->mu);
        g->s->n_active -= released;
        pthread_mutex_unlock(&g->s->mu);
    }
    api_request_free(&g->req);
    api_buf_free(&g->out);
    free(g->tbuf);
    pthread_mutex_destroy(&g->wmu);
    free(g);
}

static json_t *lp_new(api_kind kind) {
    if (kind == API_CHAT) return json_pack("{s:[]}", "content");
    return json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs", "top_logprobs", "text_offset");
}

static json_t *byte_array(const char *p, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) json_array_append_new(a, json_integer((unsigned char)p[i]));
    return a;
}

/* Text of token id in g->tbuf (control tokens rendered); returns its length (0 if none). */
static int token_text(gen *g, int32_t id) {
    int n = tok_piece(g->s->be.tk, id, true, g->tbuf, g->tbuf_cap);
    return n < 0 || n > g->tbuf_cap ? 0 : n; /* > cap cannot happen: tbuf holds tok_text_max */
}

static const char *const LP_KEYS[2][4] = {{"content"}, {"tokens", "token_logprobs", "top_logprobs", "text_offset"}};
static int lp_n_keys(api_kind kind) { return kind == API_CHAT ? 1 : 4; }

/* Non-stream: appends the one-token container one (from lp_new + lp_add) to c->lpj as
 * text, so a response holds JSON text, not a jansson tree per token (~10x the memory). */
static int lp_keep(choice *c, api_kind kind, json_t *one) {
    for (int k = 0; k < lp_n_keys(kind); k++) {
        json_t *item = json_array_get(json_object_get(one, LP_KEYS[kind == API_CHAT ? 0 : 1][k]), 0);
        char *js = item ? json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        int rc = !js || (c->lpj[k].len && api_buf_append(&c->lpj[k], ",", 1)) || api_buf_append(&c->lpj[k], js, strlen(js));
        free(js);
        if (rc) return SW_ERR_NOMEM;
    }
    return SW_OK;
}

/* Adds one token's logprob entry to a container from lp_new. */
static void lp_add(gen *g, json_t *lp, const engine_token *t, size_t text_off) {
    int n_top = t->n_top < g->req.top_logprobs ? t->n_top : g->req.top_logprobs;
    if (g->req.kind == API_CHAT) {
        json_t *tops = json_array();
        for (int k = 0; k < n_top; k++) {
            int tn = token_text(g, t->top_ids[k]);
            json_array_append_new(tops, json_pack("{s:o, s:f, s:o}", "token", api_json_text(g->tbuf, (size_t)tn),
                                                  "logprob", (double)t->top_logprobs[k], "bytes", byte_array(g->tbuf, tn)));
        }
        int pn = token_text(g, t->id);
        json_array_append_new(json_object_get(lp, "content"),
                              json_pack("{s:o, s:f, s:o, s:o}", "token", api_json_text(g->tbuf, (size_t)pn), "logprob",
                                        (double)t->logprob, "bytes", byte_array(g->tbuf, pn), "top_logprobs", tops));
        return;
    }
    int pn = token_text(g, t->id);
    json_array_append_new(json_object_get(lp, "tokens"), api_json_text(g->tbuf, (size_t)pn));
    json_array_append_new(json_object_get(lp, "token_logprobs"), json_real(t->logprob));
    json_array_append_new(json_object_get(lp, "text_offset"), json_integer((json_int_t)text_off));
    json_t *top = json_object();
    for (int k = 0; top && k < n_top; k++) {
        int tn = token_text(g, t->top_ids[k]);
        json_t *key = api_json_text(g->tbuf, (size_t)tn);
        if (key) json_object_set_new(top, json_string_value(key), json_real(t->top_logprobs[k]));
        json_decref(key);
    }
    json_array_append_new(json_object_get(lp, "top_logprobs"), top);
}

/* Queues one SSE chunk for choice i (reasoning NULL: no reasoning_content). */
static int emit_chunk(gen *g, int i, const char *text, size_t len, const api_buf *reasoning, const char *finish,
                      json_t *lp) {
    choice *c = &g->ch[i];
    bool role = g->req.kind == API_CHAT && !c->role_sent;
    c->role_sent = true;
    const char *r = reasoning && reasoning->len ? reasoning->p : NULL;
    char *js = api_chunk_json_reasoning(g->req.kind, &g->meta, i, text, len, r, r ? reasoning->len : 0, finish, lp, role);
    if (!js) return SW_ERR_NOMEM;
    int rc = api_sse_event(&g->out, js, strlen(js));
    free(js);
    return rc;
}

/* finish_reason of a choice: "tool_calls" when it ended (stop) with calls. */
static const char *finish_name(const choice *c) {
    return c->fin == ENGINE_FINISH_STOP && c->calls.n > 0 ? "tool_calls" : api_finish_name(c->fin);
}

typedef struct tools_ctx { gen *g; int i; } tools_ctx;

/* Tool-call parser events of choice i: content text and calls go to the response being
 * built, or (stream) out as chunks: delta.content, delta.tool_calls. */
static int tools_sink(void *arg, const api_tool_ev *ev) {
    tools_ctx *t = arg;
    gen *g = t->g;
    choice *c = &g->ch[t->i];
    if (ev->kind == API_TOOL_TEXT)
        return g->req.stream ? emit_chunk(g, t->i, ev->s, ev->len, NULL, NULL, NULL) : api_buf_append(&c->text, ev->s, ev->len);
    if (ev->kind == API_TOOL_END) return SW_OK;
    int rc = api_tool_calls_add(&c->calls, ev, &c->id_rng);
    if (rc || !g->req.stream) return rc;
    char *js = api_tools_chunk_json(&g->meta, t->i, ev, ev->kind == API_TOOL_START ? c->calls.v[c->calls.n - 1].id : NULL);
    rc = js ? api_sse_event(&g->out, js, strlen(js)) : SW_ERR_NOMEM;
    free(js);
    return rc;
}

/* Passes choice i's new text (piece, emptied) through its tool-call parser; end: the
 * choice is over, release what the parser holds. */
static void tools_feed(gen *g, int i, api_buf *piece, bool end) {
    choice *c = &g->ch[i];
    tools_ctx t = {g, i};
    if (piece->len) api_tools_feed(c->tp, piece->p, piece->len, tools_sink, &t);
    piece->len = 0;
    if (end) api_tools_finish(c->tp, tools_sink, &t);
}

/* Ends choice i with finish f: flushes held-back bytes. */
static void choice_finish(gen *g, int i, engine_finish f, api_buf *piece) {
    choice *c = &g->ch[i];
    int n = tok_stream_flush(&c->ts, g->tbuf, g->tbuf_cap);
    if (n > 0 && n <= g->tbuf_cap) api_stop_feed(&c->stop, g->tbuf, (size_t)n, piece);
    if (c->stop.stopped) f = ENGINE_FINISH_STOP;
    else api_stop_flush(&c->stop, piece);
    c->fin = f;
    c->done = true;
    if (f == ENGINE_FINISH_ERROR && !g->err_msg[0]) {
        const char *m = engine_req_error(c->r);
        snprintf(g->err_msg, sizeof g->err_msg, "%s", m && m[0] ? m : "generation failed");
    }
}

/* Splits the stop-filtered text in piece into reasoning (into reason) and content (back
 * into piece) when the choice has a reasoning splitter; flush at its end. */
static void choice_split(choice *c, api_buf *piece, api_buf *reason, api_buf *tmp, bool flush) {
    reason->len = 0;
    if (!api_think_active(&c->think)) return;
    tmp->len = 0;
    api_think_feed(&c->think, piece->p, piece->len, reason, tmp);
    if (flush) api_think_flush(&c->think, reason, tmp);
    api_buf t = *piece;
    *piece = *tmp;
    *tmp = t;
}

/* Stream: queues a piece's chunk (reasoning, content, logprobs, finish); none when empty. */
static void emit_piece(gen *g, int i, const api_buf *piece, const api_buf *reason, const char *finish, json_t *lp) {
    if (!piece->len && !reason->len && !lp && !finish) return;
    bool text = piece->len || g->req.kind == API_COMPLETIONS;
    emit_chunk(g, i, text ? (piece->p ? piece->p : "") : NULL, piece->len, reason, finish, lp);
}

/* Passes choice i's new stop-filtered text on: the reasoning split off, tool calls parsed
 * out of the content, then streamed as chunks (finish_reason and logprobs in the last) or
 * kept for the response. end: the choice is over (flush what the splitters hold). */
static void choice_emit(gen *g, int i, api_buf *piece, api_buf *reason, api_buf *tmp, bool end, json_t *lp) {
    choice *c = &g->ch[i];
    choice_split(c, piece, reason, tmp, end);
    if (!g->req.stream) {
        if (reason->len) api_buf_append(&c->reasoning, reason->p, reason->len);
        if (c->tp) tools_feed(g, i, piece, end);
        else if (piece->len) api_buf_append(&c->text, piece->p, piece->len);
        return;
    }
    if (c->tp) { /* reasoning first, then the parser's content and call chunks */
        if (reason->len) emit_chunk(g, i, NULL, 0, reason, NULL, NULL);
        reason->len = 0;
        tools_feed(g, i, piece, end);
    }
    emit_piece(g, i, piece, reason, end ? finish_name(c) : NULL, lp);
}

/* Takes every available token of every running choice. Returns true if anything changed. */
static bool gen_pump(gen *g) {
    const tok *tk = g->s->be.tk;
    bool stream = g->req.stream, changed = false;
    engine_token toks[POLL_CAP];
    api_buf piece = {0}, reason = {0}, tmp = {0};
    for (int i = 0; i < g->n; i++) {
        choice *c = &g->ch[i];
        if (c->done) continue;
        if (stream && g->req.kind == API_CHAT && !c->role_sent) {
            emit_chunk(g, i, "", 0, NULL, NULL, NULL);
            changed = true;
        }
        engine_finish fin = ENGINE_FINISH_NONE;
        int nt = engine_req_poll(c->r, toks, POLL_CAP, 0, &fin);
        for (int k = 0; k < nt && !c->done; k++) {
            const engine_token *t = &toks[k];
            c->n_tokens++;
            changed = true;
            piece.len = 0;
            if (g->req.ignore_eos || !tok_is_eog(tk, t->id)) {
                int nb = tok_stream_feed(&c->ts, t->id, g->tbuf, g->tbuf_cap);
                if (nb > 0 && nb <= g->tbuf_cap) api_stop_feed(&c->stop, g->tbuf, (size_t)nb, &piece);
            }
            json_t *lp = NULL;
            if (g->req.logprobs) {
                lp = lp_new(g->req.kind);
                if (lp) lp_add(g, lp, t, c->text_off);
                if (lp && !stream) {
                    lp_keep(c, g->req.kind, lp);
                    json_decref(lp);
                    lp = NULL;
                }
            }
            if (c->stop.stopped) {
                engine_req_cancel(c->r);
                c->fin = ENGINE_FINISH_STOP;
                c->done = true;
            }
            c->text_off += piece.len;
            choice_emit(g, i, &piece, &reason, &tmp, c->done, lp);
        }
        if (!c->done && fin != ENGINE_FINISH_NONE) {
            piece.len = 0;
            choice_finish(g, i, fin, &piece);
            changed = true;
            c->text_off += piece.len;
            if (stream && fin == ENGINE_FINISH_ERROR) {
                api_error e;
                api_error_set(&e, 500, "server_error", NULL, NULL, "%s", g->err_msg);
                char *js = api_error_json(&e);
                if (js) api_sse_event(&g->out, js, strlen(js));
                free(js);
            } else {
                choice_emit(g, i, &piece, &reason, &tmp, true, NULL);
            }
        }
    }
    api_buf_free(&piece);
    api_buf_free(&reason);
    api_buf_free(&tmp);
    return changed;
}

static bool gen_all_done(const gen *g) {
    for (int i = 0; i < g->n; i++)
        if (!g->ch[i].done) return false;
    return true;
}

static int gen_completion_tokens(const gen *g) {
    int n = 0;
    for (int i = 0; i < g->n; i++) n += g->ch[i].n_tokens;
    return n;
}

/* Records the request's token counts and time to first token for the access log. */
static void gen_note(gen *g) {
    if (!g->cn) return;
    g->cn->n_prompt = g->n_prompt;
    g->cn->n_out = gen_completion_tokens(g);
    for (int i = 0; i < g->n; i++) {
        engine_timing t;
        engine_req_timing(g->ch[i].r, &t);
        double ttft = t.t_first_token_ms > 0 ? t.t_first_token_ms - t.t_submit_ms : 0;
        if (ttft > 0 && (g->cn->ttft_ms == 0 || ttft < g->cn->ttft_ms)) g->cn->ttft_ms = ttft;
    }
}

/* Stream end: usage chunk (when asked) and [DONE]. */
static void gen_stream_close(gen *g) {
    if (g->req.include_usage) {
        char *js = api_usage_chunk_json(g->req.kind, &g->meta, g->n_prompt, gen_completion_tokens(g));
        if (js) api_sse_event(&g->out, js, strlen(js));
        free(js);
    }
    api_sse_done(&g->out);
    g->finished = true;
}

/* MHD content reader for SSE: hands over what is queued; with nothing to send, pumps the
 * engine and, still with nothing, suspends the connection (returning 0) until gen_wake. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    gen *g = cls;
    for (;;) {
        if (g->out_off < g->out.len) {
            size_t n = g->out.len - g->out_off;
            if (n > max) n = max;
            memcpy(buf, g->out.p + g->out_off, n);
            g->out_off += n;
            if (g->out_off == g->out.len) g->out_off = g->out.len = 0;
            return (ssize_t)n;
        }
        if (g->finished) {
            gen_note(g);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (gen_abandoned(g)) {
            gen_cancel_all(g);
            gen_note(g);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        gen_pump(g);
        if (gen_all_done(g)) gen_stream_close(g);
        if (g->out.len) continue;
        if (gen_suspend(g)) return 0;
    }
}

static void stream_free(void *cls) { gen_destroy(cls); }

#define PUT(b, lit) api_buf_append(b, lit, sizeof lit - 1)

/* Appends s[0..n) as a JSON string (invalid UTF-8 replaced). */
static int put_json_str(api_buf *b, const char *s, size_t n) {
    json_t *j = api_json_text(s, n);
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    int rc = d ? api_buf_append(b, d, strlen(d)) : SW_ERR_NOMEM;
    free(d);
    return rc;
}

/* The non-streaming response body, written as text piece by piece (logprobs already are
 * text): its size is the JSON's, with no tree of the whole response alongside. */
static int gen_response(gen *g, api_buf *b) {
    api_kind kind = g->req.kind;
    int rc = PUT(b, "{\"id\":") || put_json_str(b, g->meta.id, strlen(g->meta.id)) ||
             api_buf_printf(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":",
                            kind == API_CHAT ? "chat.completion" : "text_completion", g->meta.created) ||
             put_json_str(b, g->meta.model, strlen(g->meta.model)) || PUT(b, ",\"choices\":[");
    for (int i = 0; !rc && i < g->n; i++) {
        choice *c = &g->ch[i];
        const char *text = c->text.p ? c->text.p : "";
        bool calls_only = c->calls.n > 0 && strspn(text, " \t\r\n") == c->text.len; /* content null */
        rc = api_buf_printf(b, "%s{\"index\":%d,", i ? "," : "", i) ||
             (kind == API_CHAT ? PUT(b, "\"message\":{\"role\":\"assistant\",\"content\":")
                               : PUT(b, "\"text\":")) ||
             (calls_only ? PUT(b, "null") : put_json_str(b, text, c->text.len)) ||
             (c->reasoning.len && (PUT(b, ",\"reasoning_content\":") ||
                                   put_json_str(b, c->reasoning.p, c->reasoning.len))) ||
             (c->calls.n > 0 && (PUT(b, ",\"tool_calls\":") || api_tool_calls_json(&c->calls, b))) ||
             (kind == API_CHAT && PUT(b, "}")) || PUT(b, ",\"logprobs\":");
        if (!rc && !g->req.logprobs) rc = PUT(b, "null");
        for (int k = 0; !rc && g->req.logprobs && k < lp_n_keys(kind); k++)
            rc = api_buf_printf(b, "%s\"%s\":[", k ? "," : "{", LP_KEYS[kind == API_CHAT ? 0 : 1][k]) ||
                 api_buf_append(b, c->lpj[k].p ? c->lpj[k].p : "", c->lpj[k].len) ||
                 (k + 1 == lp_n_keys(kind) ? PUT(b, "]}") : PUT(b, "]"));
        const char *fin = finish_name(c);
        if (!rc) rc = fin ? api_buf_printf(b, ",\"finish_reason\":\"%s\"}", fin) : PUT(b, ",\"finish_reason\":null}");
    }
    int ct = gen_completion_tokens(g);
    if (!rc)
        rc = api_buf_printf(b, "],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}",
                            g->n_prompt, ct, g->n_prompt + ct);
    return rc ? SW_ERR_NOMEM : SW_OK;
}

/* ------------------------------------------------------------------ request handling */

/* Prompt token ids of the request (malloc'd) or an error; *think_open: the rendered chat
 * prompt ends inside a think block (the output starts in reasoning). */
static int build_prompt(http_server *s, const api_request *rq, int32_t **ids, int *n_ids, bool *think_open,
                        api_error *e) {
    const tok *tk = s->be.tk;
    const char *param = rq->kind == API_CHAT ? "messages" : "prompt";
    if (rq->prompt_ids) {
        if (rq->n_prompt_ids >= s->be.max_ctx)
            return api_error_set(e, 400, "invalid_request_error", "context_length_exceeded", param,
                                 "the prompt has %d tokens; this model's context is %d tokens (prompt + completion)",
                                 rq->n_prompt_ids, s->be.max_ctx);
        int nv = tok_n_vocab(tk);
        for (int i = 0; i < rq->n_prompt_ids; i++)
            if (rq->prompt_ids[i] >= nv)
                return api_error_set(e, 400, "invalid_request_error", NULL, "prompt",
                                     "token id %d in 'prompt' is outside the vocabulary (size %d)",
                                     (int)rq->prompt_ids[i], nv);
        *ids = malloc((size_t)rq->n_prompt_ids * sizeof **ids);
        if (!*ids) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        memcpy(*ids, rq->prompt_ids, (size_t)rq->n_prompt_ids * sizeof **ids);
        *n_ids = rq->n_prompt_ids;
        return SW_OK;
    }
    char *text = NULL;
    size_t len = rq->prompt_len;
    bool special = false;
    if (rq->kind == API_CHAT) {
        int rc = api_chat_prompt(s->be.chat_template, s->be.chat, rq, &text, &len, e);
        if (rc) return rc;
        special = true;
        *think_open = api_think_prompt_open(text, len);
    }
    const char *src = text ? text : rq->prompt;
    /* refuse what cannot fit before paying for tokenization (tok_max_token_bytes) */
    size_t max_bytes = (size_t)s->be.max_ctx * (size_t)tok_max_token_bytes(tk) * 4;
    if (len > max_bytes || len > (size_t)INT32_MAX / 2) {
        free(text);
        return api_error_set(e, 400, "invalid_request_error", "context_length_exceeded", param,
                             "'%s' is %zu bytes: more than fit this model's context of %d tokens (at most %zu bytes)",
                             param, len, s->be.max_ctx, max_bytes);
    }
    int32_t *buf;
    int n = tok_encode_alloc(tk, src, len, true, special, &buf);
    free(text);
    if (n < 0) {
        free(buf);
        return api_error_set(e, n == SW_ERR_NOMEM ? 500 : 400, n == SW_ERR_NOMEM ? "server_error" : "invalid_request_error",
                             NULL, param, "cannot tokenize '%s': %s", param, sw_status_name(n));
    }
    /* a template that spells out BOS itself plus add_bos would double it */
    int32_t bos = tok_bos(tk);
    if (n >= 2 && bos >= 0 && buf[0] == bos && buf[1] == bos) {
        memmove(buf, buf + 1, (size_t)(n - 1) * sizeof *buf);
        n--;
    }
    if (n == 0) {
        free(buf);
        return api_error_set(e, 400, "invalid_request_error", NULL, param, "'%s' is empty", param);
    }
    *ids = buf;
    *n_ids = n;
    return SW_OK;
}

/* Admission: reserves n engine slots or refuses with 429. */
static int admit(http_server *s, int n, api_error *e) {
    engine_stats st;
    engine_get_stats(s->be.eng, &st);
    pthread_mutex_lock(&s->mu);
    int queued = s->n_active - s->be.max_seqs;
    if (queued < st.n_waiting) queued = st.n_waiting;
    if (queued < 0) queued = 0;
    int newly_waiting = s->n_active + n - s->be.max_seqs;
    if (newly_waiting < 0) newly_waiting = 0;
    if (newly_waiting > n) newly_waiting = n;
    bool ok = queued + newly_waiting <= s->max_queue || newly_waiting == 0;
    if (ok) s->n_active += n;
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        return api_error_set(e, 429, "rate_limit_error", "queue_full", NULL,
                             "server busy: %d requests waiting (limit %d); retry later", queued, s->max_queue);
    return SW_OK;
}

static void unadmit(http_server *s, int n) {
    pthread_mutex_lock(&s->mu);
    s->n_active -= n;
    pthread_mutex_unlock(&s->mu);
}

/* The error a generation that ended before its first token reports instead of a 200
 * (false when it has none: it is answered normally). */
static bool gen_early_error(gen *g, api_error *e) {
    for (int i = 0; i < g->n; i++) {
        choice *c = &g->ch[i];
        if (c->n_tokens > 0) continue;
        const char *why = engine_req_error(c->r);
        switch (c->fin) {
        case ENGINE_FINISH_REJECTED:
            api_error_set(e, 503, "server_error", "slo_unattainable", NULL, "%s", why ? why : "objective cannot be met");
            return true;
        case ENGINE_FINISH_ERROR:
            api_error_set(e, 500, "server_error", NULL, NULL, "%s", g->err_msg[0] ? g->err_msg : "generation failed");
            return true;
        case ENGINE_FINISH_QUEUE_TIMEOUT:
            api_error_set(e, 503, "server_error", "queue_timeout", NULL, "%s", why ? why : "queue timeout");
            return true;
        case ENGINE_FINISH_TIMEOUT:
            api_error_set(e, 504, "server_error", "request_timeout", "timeout", "%s", why ? why : "request timeout");
            return true;
        default:
            break;
        }
    }
    return false;
}

/* Whether every choice of a stream has its first token or has ended: time for the 200. */
static bool gen_started(gen *g) {
    for (int i = 0; i < g->n; i++) {
        engine_timing t;
        engine_req_timing(g->ch[i].r, &t);
        if (t.n_generated == 0 && t.t_finish_ms <= 0) return false;
    }
    return true;
}

/* Notes the end of choices that ended before their first token (for gen_early_error). */
static void gen_note_early_ends(gen *g) {
    for (int i = 0; i < g->n; i++) {
        choice *c = &g->ch[i];
        engine_finish fin;
        if (c->done || c->n_tokens > 0 || engine_req_poll(c->r, NULL, 0, 0, &fin) != 0 || fin == ENGINE_FINISH_NONE)
            continue;
        c->fin = fin;
        if (fin == ENGINE_FINISH_ERROR && !g->err_msg[0]) {
            const char *m = engine_req_error(c->r);
            snprintf(g->err_msg, sizeof g->err_msg, "%s", m && m[0] ? m : "generation failed");
        }
    }
}

/* The access handler's part of a generation, called on its final call and again on every
 * resume until a response is queued. A stream waits (suspended) until every choice has
 * its first token or has ended — a refusal, a timeout in the queue or an error before
 * that is still a JSON error with its status — then hands over to stream_reader. A
 * non-streaming request pumps tokens on every resume and answers once all choices are
 * done. Returns MHD_NO to drop the connection (client gone, server stopping); the
 * connection's on_completed then frees g. */
static MHD_RESULT_T gen_drive(gen *g, conn *cn) {
    struct MHD_Connection *c = g->c;
    api_error e;
    for (;;) {
        if (gen_abandoned(g)) {
            gen_cancel_all(g);
            gen_note(g);
            return MHD_NO;
        }
        if (g->req.stream && gen_started(g)) {
            gen_note_early_ends(g);
            if (gen_early_error(g, &e)) {
                gen_cancel_all(g);
                return send_error(c, &e);
            }
            struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, g, stream_free);
            if (!r) return MHD_NO;
            cn->g = NULL; /* the response owns g now */
            MHD_add_response_header(r, "Content-Type", "text/event-stream");
            MHD_add_response_header(r, "Cache-Control", "no-cache");
            MHD_RESULT_T ret = MHD_queue_response(c, MHD_HTTP_OK, r);
            MHD_destroy_response(r);
            return ret;
        }
        if (!g->req.stream) {
            gen_pump(g);
            if (gen_all_done(g)) {
                if (gen_early_error(g, &e)) return send_error(c, &e);
                if (g->err_msg[0]) {
                    api_error_set(&e, 500, "server_error", NULL, NULL, "%s", g->err_msg);
                    return send_error(c, &e);
                }
                gen_note(g);
                api_buf body = {0};
                int brc = gen_response(g, &body);
                cn->g = NULL; /* free the generation before the body is sent */
                gen_destroy(g);
                if (brc) {
                    api_buf_free(&body);
                    return fail(c, 500, "server_error", NULL, NULL, "out of memory");
                }
                if (body.len > HTTP_TRIM_BYTES) cn->trim = true; /* give the memory back once sent */
                return send_body(c, MHD_HTTP_OK, "application/json", body.p, body.len);
            }
        }
        if (gen_suspend(g)) return MHD_YES;
    }
}

static MHD_RESULT_T handle_generate(http_server *s, struct MHD_Connection *c, api_kind kind, conn *cn) {
    api_error e;
    gen *g = calloc(1, sizeof *g);
    if (!g) return fail(c, 500, "server_error", NULL, NULL, "out of memory");
    g->s = s;
    g->tbuf_cap = tok_text_max(s->be.tk);
    g->tbuf = malloc((size_t)g->tbuf_cap);
    if (!g->tbuf) {
        free(g);
        return fail(c, 500, "server_error", NULL, NULL, "out of memory");
    }
    g->c = c;
    pthread_mutex_init(&g->wmu, NULL);
    int32_t *ids = NULL;
    int n_ids = 0, admitted = 0;
    bool think_open = false, tools_failed = false;
    gram_grammar *gg = NULL; /* the output constraint, if any (api_grammar.c) */
    if (api_request_parse(kind, cn->body.p ? cn->body.p : "", cn->body.len, &g->req, &e)) goto err;
    const api_request *rq = &g->req;
    if (rq->user) snprintf(cn->user, sizeof cn->user, "%s", rq->user); /* access log */
    if (rq->model && strcmp(rq->model, s->model_name) != 0) {
        api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                      "the model '%s' does not exist; this server serves '%s'", rq->model, s->model_name);
        goto err;
    }
    if (build_prompt(s, rq, &ids, &n_ids, &think_open, &e)) goto err;
    const char *pparam = kind == API_CHAT ? "messages" : "prompt";
    if (n_ids >= s->be.max_ctx) {
        api_error_set(&e, 400, "invalid_request_error", "context_length_exceeded", pparam,
                      "the prompt has %d tokens; this model's context is %d tokens (prompt + completion)", n_ids,
                      s->be.max_ctx);
        goto err;
    }
    int room = s->be.max_ctx - n_ids;
    int max_tokens = rq->max_tokens > 0 ? rq->max_tokens : kind == API_CHAT ? s->max_tokens_default : 16;
    if (max_tokens > room) max_tokens = room;
    uint64_t lp_entries = (uint64_t)rq->n * (uint64_t)(rq->top_logprobs + 1) * (uint64_t)max_tokens;
    if (rq->logprobs && !rq->stream && lp_entries > HTTP_MAX_LOGPROB_ENTRIES) {
        api_error_set(&e, 400, "invalid_request_error", NULL, kind == API_CHAT ? "top_logprobs" : "logprobs",
                      "n x (top_logprobs + 1) x max_tokens = %llu logprob entries; a non-streaming response holds "
                      "at most %d: lower max_tokens, n or top_logprobs, or stream",
                      (unsigned long long)lp_entries, HTTP_MAX_LOGPROB_ENTRIES);
        goto err;
    }
    if (api_grammar_get(s->be.grammars, rq, &gg, &e)) goto err;
    const char *trigger = NULL; /* tools: constrain the calls (tool_choice auto: lazily, from this text on) */
    if (!gg && api_tools_grammar(s->be.grammars, (api_tool_family)s->be.tool_family, rq, &gg, &trigger, &e)) goto err;
    if (admit(s, rq->n, &e)) goto err;
    admitted = rq->n;
    g->n_prompt = n_ids;
    unsigned long long idn = atomic_fetch_add(&s->next_id, 1);
    snprintf(g->id, sizeof g->id, "%s-%llx%08llx", kind == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)time(NULL), idn);
    g->meta = (api_resp_meta){g->id, (long long)time(NULL), s->model_name};
    /* prefix-cache namespace: per tenant (--prefix-cache-scope user; requests without a
     * user share one namespace of their own), then the request's cache_salt */
    uint64_t salt = 0;
    if (s->prefix_cache_per_user)
        salt = kv_salt(rq->user ? rq->user : "", rq->user ? strlen(rq->user) : 0, kv_salt("scope:user", 10, 0));
    if (rq->cache_salt) salt = kv_salt(rq->cache_salt, strlen(rq->cache_salt), salt);
    uint64_t seed = rq->has_seed ? rq->seed : (uint64_t)sw_now_ns() ^ (idn * 0x9E3779B97F4A7C15ull);
    for (int i = 0; i < rq->n; i++) {
        engine_req_params p = {0};
        p.prompt = ids;
        p.n_prompt = n_ids;
        p.max_tokens = max_tokens;
        p.ignore_eos = rq->ignore_eos;
        sampler_params_default(&p.sampling);
        p.sampling.temperature = rq->temperature;
        p.sampling.top_k = rq->top_k;
        p.sampling.top_p = rq->top_p;
        p.sampling.min_p = rq->min_p;
        p.sampling.presence_penalty = rq->presence_penalty;
        p.sampling.frequency_penalty = rq->frequency_penalty;
        p.sampling.seed = seed + (uint64_t)i;
        p.sampling.logprob = rq->logprobs;
        p.sampling.n_logprobs = rq->logprobs ? rq->top_logprobs : 0;
        p.priority = rq->priority;
        p.slo_ttft_ms = rq->slo_ttft_ms;
        p.slo_tpot_ms = rq->slo_tpot_ms;
        p.user = rq->user;
        p.cache_salt = salt;
        double tmo = rq->timeout_s;
        if (s->request_timeout_s > 0 && (tmo <= 0 || tmo > s->request_timeout_s)) tmo = s->request_timeout_s;
        p.timeout_ms = 1000.0 * tmo;
        p.bias_ids = rq->bias_ids;
        p.bias = rq->bias;
        p.n_bias = rq->n_bias;
        choice *ch = &g->ch[i];
        sw_err err = {0};
        int rc = !gg ? SW_OK : trigger ? gram_matcher_create_lazy(gg, trigger, &p.constraint, &err)
                                       : gram_matcher_create(gg, &p.constraint, &err);
        if (rc == SW_OK) rc = engine_submit(s->be.eng, &p, &ch->r, &err);
        if (rc) {
            ch->r = NULL;
            if (rc == SW_ERR_RANGE)
                api_error_set(&e, 400, "invalid_request_error", "context_length_exceeded", pparam, "%s", err.msg);
            else if (rc == SW_ERR_FULL)
                api_error_set(&e, 429, "rate_limit_error", "queue_full", NULL, "%s", err.msg);
            else if (rc == SW_ERR_ARG)
                api_error_set(&e, 400, "invalid_request_error", NULL, NULL, "%s", err.msg);
            else
                api_error_set(&e, 500, "server_error", NULL, NULL, "engine: %s", err.msg);
            break;
        }
        g->n = i + 1;
        admitted--; /* now counted through the choice; released in gen_destroy */
        tok_stream_init(&ch->ts, s->be.tk);
        ch->ts.first = false; /* a continuation: keep the first token's leading space */
        api_stop_init(&ch->stop, g->req.stop, g->req.n_stop);
        api_think_init(&ch->think, kind == API_CHAT && s->be.reasoning, think_open);
        ch->id_rng = (uint64_t)sw_now_ns() ^ (idn * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)i << 56);
        if (api_tools_active(rq, (api_tool_family)s->be.tool_family) &&
            api_tools_parser_create((api_tool_family)s->be.tool_family, &ch->tp)) {
            api_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
            tools_failed = true;
            break;
        }
    }
    free(ids);
    ids = NULL;
    gram_grammar_release(gg);
    gg = NULL;
    if (g->n < rq->n || tools_failed) goto err;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    g->fd = ci ? ci->connect_fd : -1;
    g->cn = cn;
    cn->g = g;
    gen_register(g);
    return gen_drive(g, cn);
err:
    free(ids);
    gram_grammar_release(gg);
    if (admitted > 0) unadmit(s, admitted);
    gen_destroy(g);
    return send_error(c, &e);
}

static MHD_RESULT_T handle_models(http_server *s, struct MHD_Connection *c) {
    json_t *m = json_pack("{s:s, s:s, s:I, s:s, s:i}", "id", s->model_name, "object", "model", "created",
                          (json_int_t)time(NULL), "owned_by", "swiftlet", "max_model_len", s->be.max_ctx);
    return send_json(c, MHD_HTTP_OK, json_pack("{s:s, s:[o]}", "object", "list", "data", m));
}

static MHD_RESULT_T handle_metrics(http_server *s, struct MHD_Connection *c) {
    engine_stats st = {0};
    if (atomic_load(&s->ready)) engine_get_stats(s->be.eng, &st);
    api_buf b = {0};
    if (metrics_render(&s->met, &st, s->model_name ? s->model_name : "", s->be.kv_block_size, &b) != SW_OK) {
        api_buf_free(&b);
        return fail(c, 500, "server_error", NULL, NULL, "out of memory");
    }
    return send_body(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

static enum route route_of(const char *url, const char **method_needed) {
    static const struct { const char *path; enum route r; const char *method; } routes[] = {
        {"/v1/completions", ROUTE_COMPLETIONS, "POST"}, {"/v1/chat/completions", ROUTE_CHAT, "POST"},
        {"/v1/models", ROUTE_MODELS, "GET"},           {"/health", ROUTE_HEALTH, "GET"},
        {"/metrics", ROUTE_METRICS, "GET"},            {"/apply-template", ROUTE_APPLY_TEMPLATE, "POST"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].path)) {
            *method_needed = routes[i].method;
            return routes[i].r;
        }
    return ROUTE_NONE;
}

static bool authorized(http_server *s, struct MHD_Connection *c) {
    if (s->keys.n == 0) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ') h++;
    return http_keys_match(&s->keys, h, strlen(h));
}

/* Everything decidable from the request line and headers alone, in libmicrohttpd's first
 * call, before a byte of body is read: route (404), method (405), /health, API key (401;
 * /metrics too unless --metrics-public) and readiness (503). Returns true when a response was queued (*ret says
 * how; libmicrohttpd then closes the connection without reading the body); false when the
 * request goes on to its body (generation routes). */
static bool decide_on_headers(http_server *s, struct MHD_Connection *c, const char *url, const char *method,
                              enum route *rt, MHD_RESULT_T *ret) {
    const char *need = NULL;
    enum route r = route_of(url, &need);
    *rt = r;
    api_error e;
    if (r == ROUTE_NONE) {
        api_error_set(&e, 404, "invalid_request_error", "not_found", NULL, "no route for %s %s", method, url);
        *ret = send_error(c, &e);
        return true;
    }
    bool head_ok = !strcmp(need, "GET") && !strcmp(method, "HEAD");
    if (strcmp(method, need) != 0 && !head_ok) {
        api_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s %s is not allowed; use %s",
                      method, url, need);
        *ret = send_error_allow(c, &e, need);
        return true;
    }
    bool draining = atomic_load(&s->draining) || atomic_load(&s->stopping);
    if (r == ROUTE_HEALTH) {
        bool ok = atomic_load(&s->ready) && !draining;
        const char *b = ok ? "{\"status\":\"ok\"}" : draining ? "{\"status\":\"draining\"}" : "{\"status\":\"loading\"}";
        *ret = send_body(c, ok ? 200 : 503, "application/json", strdup(b), strlen(b));
        return true;
    }
    bool open_route = r == ROUTE_METRICS && s->metrics_public;
    if (!open_route && !authorized(s, c)) {
        *ret = fail(c, 401, "authentication_error", "invalid_api_key", NULL, "missing or invalid API key");
        return true;
    }
    if (r == ROUTE_METRICS) {
        *ret = handle_metrics(s, c);
        return true;
    }
    if (draining) {
        *ret = fail(c, 503, "server_error", "draining", NULL, "the server is shutting down; retry on another instance");
        return true;
    }
    if (!atomic_load(&s->ready)) {
        *ret = fail(c, 503, "server_error", "not_ready", NULL, "the model is loading; retry shortly");
        return true;
    }
    if (r == ROUTE_MODELS) {
        *ret = handle_models(s, c);
        return true;
    }
    return false;
}

/* 413 for a body over the limit. */
static MHD_RESULT_T send_too_large(http_server *s, struct MHD_Connection *c) {
    api_error e;
    api_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL, "request body larger than %zu bytes",
                  s->max_body);
    return send_error(c, &e);
}

/* The watchdog's record of c (NULL if libmicrohttpd did not give one). */
static sock *sock_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Marks c's request as fully arrived (reading = false) or as the next one awaited. */
static void sock_set_reading(http_server *s, struct MHD_Connection *c, bool reading) {
    sock *k = sock_of(c);
    if (!k) return;
    pthread_mutex_lock(&s->mu);
    k->reading = reading;
    k->t_read_ms = sw_now_ms();
    pthread_mutex_unlock(&s->mu);
}

static MHD_RESULT_T on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    http_server *s = cls;
    conn *cn = *con_cls;
    if (!cn) {
        cn = calloc(1, sizeof *cn); /* for every request: the access log's record */
        if (!cn) return MHD_NO;
        *con_cls = cn;
        cn->t0_ms = sw_now_ms();
        snprintf(cn->method, sizeof cn->method, "%s", method);
        enum route r;
        MHD_RESULT_T ret;
        bool decided = decide_on_headers(s, c, url, method, &r, &ret);
        cn->route = r;
        if (decided) {
            cn->dispatched = true;
            sock_set_reading(s, c, false);
            return ret;
        }
        /* A declared body over the limit is refused now. A modest excess is read and
         * discarded (never stored) so that an honest client, still sending, gets to read
         * its 413; a huge one is answered at once and the connection closed. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long n_cl = cl ? strtoull(cl, NULL, 10) : 0;
        if (n_cl > (unsigned long long)s->max_body * HTTP_DISCARD_FACTOR) {
            cn->dispatched = true;
            sock_set_reading(s, c, false);
            return send_too_large(s, c);
        }
        cn->kind = r == ROUTE_CHAT ? API_CHAT : API_COMPLETIONS;
        cn->too_big = n_cl > s->max_body;
        return MHD_YES;
    }
    if (*upload_size) {
        if (cn->dispatched) { /* answered from its headers: nothing more is stored */
            *upload_size = 0;
            return MHD_YES;
        }
        if (!cn->too_big && cn->body.len + *upload_size > s->max_body) {
            cn->too_big = true; /* chunked, without a declared length */
            api_buf_free(&cn->body);
        }
        if (!cn->too_big && api_buf_append(&cn->body, upload, *upload_size) != SW_OK) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cn->g) return gen_drive(cn->g, cn); /* resumed */
    if (cn->dispatched) return MHD_YES;
    cn->dispatched = true;
    sock_set_reading(s, c, false);
    if (cn->too_big) return send_too_large(s, c);
    if (atomic_load(&s->draining) || atomic_load(&s->stopping))
        return fail(c, 503, "server_error", "draining", NULL, "the server is shutting down; retry on another instance");
    if (cn->route == ROUTE_APPLY_TEMPLATE) {
        api_error e;
        char *body = NULL;
        if (api_chat_apply_template(s->be.chat_template, s->be.chat, cn->body.p ? cn->body.p : "", cn->body.len, &body, &e))
            return send_error(c, &e);
        return send_body(c, MHD_HTTP_OK, "application/json", body, strlen(body));
    }
    return handle_generate(s, c, cn->kind, cn);
}

static const char *route_name(int r) {
    static const char *const names[] = {"unknown", "/v1/completions", "/v1/chat/completions", "/v1/models", "/health",
                                        "/metrics", "/apply-template"};
    return r >= 0 && r < (int)(sizeof names / sizeof names[0]) ? names[r] : "unknown";
}

/* One access-log line per request (JSON): time, method, route (never the raw URL), status,
 * tokens, time to first token, duration, tenant; never prompt or output text. */
static void access_log(http_server *s, struct MHD_Connection *c, const conn *cn, enum MHD_RequestTerminationCode toe) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    int status = ci ? (int)ci->http_status : 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    json_t *user = cn->user[0] ? api_json_text(cn->user, strlen(cn->user)) : json_null();
    char *ujs = user ? json_dumps(user, JSON_ENCODE_ANY) : NULL;
    json_decref(user);
    char method[sizeof cn->method];
    for (size_t i = 0; i < sizeof method; i++) {
        char ch = cn->method[i];
        method[i] = ch == 0 || (ch >= 'A' && ch <= 'Z') ? ch : '?';
    }
    fprintf(s->alog,
            "{\"time\":\"%s.%03ldZ\",\"method\":\"%s\",\"route\":\"%s\",\"status\":%d,\"prompt_tokens\":%d,"
            "\"completion_tokens\":%d,\"ttft_ms\":%.1f,\"duration_ms\":%.1f,\"user\":%s,\"completed\":%s}\n",
            when, ts.tv_nsec / 1000000, method, route_name(cn->route), status, cn->n_prompt, cn->n_out, cn->ttft_ms,
            sw_now_ms() - cn->t0_ms, ujs ? ujs : "null", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true" : "false");
    fflush(s->alog);
    free(ujs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    http_server *s = cls;
    sock_set_reading(s, c, true); /* keep-alive: the next request may come */
    conn *cn = *con_cls;
    if (!cn) return;
    if (cn->g) {
        gen_cancel_all(cn->g);
        gen_note(cn->g);
        gen_destroy(cn->g);
    }
    if (s->alog) access_log(s, c, cn, toe);
    api_buf_free(&cn->body);
    bool trim = cn->trim;
    free(cn);
    *con_cls = NULL;
    if (trim) malloc_trim(0);
}

/* Connection opened / closed: the watchdog's registry. Closed comes before libmicrohttpd
 * closes the socket, so the watchdog never touches a reused descriptor. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        sock *k = calloc(1, sizeof *k);
        if (!k || !ci) {
            free(k);
            return;
        }
        k->fd = ci->connect_fd;
        k->reading = true;
        k->t_read_ms = sw_now_ms();
        pthread_mutex_lock(&s->mu);
        k->next = s->socks;
        if (s->socks) s->socks->prev = k;
        s->socks = k;
        pthread_mutex_unlock(&s->mu);
        *socket_context = k;
        return;
    }
    sock *k = *socket_context;
    if (!k) return;
    pthread_mutex_lock(&s->mu);
    if (k->prev) k->prev->next = k->next; else s->socks = k->next;
    if (k->next) k->next->prev = k->prev;
    pthread_mutex_unlock(&s->mu);
    free(k);
    *socket_context = NULL;
}

/* The watchdog thread: read timeouts, hang-ups of suspended generations, and the wake-up
 * of every generation when the server stops. */
static void *watch_main(void *arg) {
    http_server *s = arg;
    unsigned long long trimmed_at = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->watch_stop) {
        /* idle after some work: hand the freed heap back to the system (glibc keeps the
         * pages of every thread's arena otherwise, and RSS creeps up under mixed load) */
        if (s->n_gens == 0 && s->n_ended != trimmed_at) {
            trimmed_at = s->n_ended;
            pthread_mutex_unlock(&s->mu);
            malloc_trim(0);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        double now = sw_now_ms();
        for (sock *k = s->socks; k; k = k->next)
            if (k->reading && !k->cut && now - k->t_read_ms > s->read_timeout_ms) {
                shutdown(k->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
                k->cut = true;
            }
        bool stopping = atomic_load(&s->stopping);
        for (gen *g = s->gens; g; g = g->next) {
            if (!atomic_load(&g->gone) && client_gone(g->fd)) {
                atomic_store(&g->gone, true);
                gen_cancel_all(g);
            }
            if (stopping || atomic_load(&g->gone)) gen_wake(g);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(WATCH_MS * 1e6);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    sw_debug("http: %s", line);
}

int http_server_create(const http_config *cfg, http_server **out, sw_err *err) {
    *out = NULL;
    http_server *s = calloc(1, sizeof *s);
    if (!s) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    s->metrics_public = cfg->metrics_public;
    s->prefix_cache_per_user = cfg->prefix_cache_per_user;
    bool keys_ok = true;
    for (int i = 0; cfg->api_keys && i < cfg->api_keys->n; i++)
        keys_ok = keys_ok && http_keys_add(&s->keys, cfg->api_keys->v[i], strlen(cfg->api_keys->v[i])) == SW_OK;
    s->max_queue = cfg->max_queue < 0 ? 0 : cfg->max_queue;
    s->max_body = cfg->max_body ? cfg->max_body : HTTP_MAX_BODY;
    s->max_tokens_default = cfg->max_tokens_default > 0 ? cfg->max_tokens_default : HTTP_MAX_TOKENS_DEFAULT;
    s->read_timeout_ms = 1000.0 * (cfg->read_timeout_s > 0 ? cfg->read_timeout_s : HTTP_READ_TIMEOUT_S);
    s->request_timeout_s = cfg->request_timeout_s > 0 ? cfg->request_timeout_s : 0;
    unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : HTTP_THREADS;
    unsigned idle_s = cfg->conn_timeout_s > 0 ? (unsigned)cfg->conn_timeout_s : HTTP_CONN_TIMEOUT_S;
    unsigned per_ip = cfg->max_conns_per_ip > 0 ? (unsigned)cfg->max_conns_per_ip : HTTP_MAX_CONNS_PER_IP;
    unsigned max_conns = cfg->max_conns > 0 ? (unsigned)cfg->max_conns : HTTP_MAX_CONNS;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    metrics_init(&s->met);
    int rc = SW_OK;
    if (!s->host || !keys_ok) {
        rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (cfg->access_log && !strcmp(cfg->access_log, "-")) {
        s->alog = stdout;
    } else if (cfg->access_log) {
        s->alog_owned = (s->alog = fopen(cfg->access_log, "a")) != NULL;
        if (!s->alog) {
            rc = sw_err_set(err, SW_ERR_IO, "cannot open the access log %s", cfg->access_log);
            goto fail;
        }
    }
    if (cfg->port < 0 || cfg->port > 65535) {
        rc = sw_err_set(err, SW_ERR_ARG, "port %d out of range", cfg->port);
        goto fail;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(s->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        rc = sw_err_set(err, SW_ERR_ARG, "cannot resolve host '%s': %s", s->host, gai_strerror(gai));
        goto fail;
    }
    if (pthread_create(&s->watch, NULL, watch_main, s) != 0) {
        freeaddrinfo(ai);
        rc = sw_err_set(err, SW_ERR_NOMEM, "cannot start the connection watchdog thread");
        goto fail;
    }
    s->watch_on = true;
    /* a fixed pool of epoll threads; nothing in a callback blocks (see the top of the file) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_THREAD_POOL_SIZE, threads,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_LIMIT, max_conns,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        rc = sw_err_set(err, SW_ERR_IO, "cannot listen on %s:%d (in use or not permitted)", s->host, cfg->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    *out = s;
    return SW_OK;
fail:
    http_server_destroy(s);
    return rc;
}

int http_server_port(const http_server *s) { return s->port; }

void http_server_ready(http_server *s, const http_backend *b) {
    s->be = *b;
    free(s->model_name);
    s->model_name = strdup(b->model_name ? b->model_name : "swiftlet");
    s->be.model_name = s->model_name;
    if (s->be.max_seqs < 1) s->be.max_seqs = 1;
    atomic_store(&s->ready, s->model_name != NULL);
}

void http_server_drain(http_server *s) { atomic_store(&s->draining, true); }

int http_server_in_flight(http_server *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->n_gens;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void http_server_destroy(http_server *s) {
    if (!s) return;
    /* End every generation: each is woken (under mu, after stopping is set, so none can
     * suspend again) and drops its connection; then no connection is suspended when the
     * daemon stops, as libmicrohttpd requires. */
    atomic_store(&s->stopping, true);
    pthread_mutex_lock(&s->mu);
    for (gen *g = s->gens; g; g = g->next) gen_wake(g);
    pthread_mutex_unlock(&s->mu);
    if (s->d) MHD_stop_daemon(s->d);
    if (s->watch_on) {
        pthread_mutex_lock(&s->mu);
        s->watch_stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->watch, NULL);
    }
    metrics_destroy(&s->met);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->model_name);
    free(s->host);
    http_keys_free(&s->keys);
    if (s->alog_owned) fclose(s->alog);
    free(s);
}
