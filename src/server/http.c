/* http.c — the HTTP server (libmicrohttpd, one thread per connection): routing, API-key
 * auth, body size limit, admission control, and the generation driver that turns engine
 * tokens into OpenAI responses.
 *
 * A generation (`gen`) owns the parsed request and one engine request per choice (n).
 * The connection thread waits on the engine (engine_req_poll with a short timeout, so a
 * token is picked up the moment it is sampled), pumps every available token through the
 * streaming detokenizer and the stop-string matcher,
 * then either appends SSE chunks (stream: a content-reader callback hands them to MHD as
 * soon as they exist) or accumulates the text for one JSON response. While waiting it
 * checks the client socket for hang-up every 100 ms and cancels the engine requests when
 * the client is gone, so their KV blocks are freed at the next engine step. */
#include "server/server.h"
#include <jansson.h>
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

#define WAIT_SLICE_MS 100.0
#define POLL_CAP 32

struct http_server {
    struct MHD_Daemon *d;
    char *host;
    char *api_key;
    size_t api_key_len;
    int port;
    int max_queue;
    size_t max_body;
    atomic_bool ready;
    atomic_bool stopping;
    http_backend be;          /* valid once ready */
    char *model_name;         /* owned copy of be.model_name */
    metrics met;
    pthread_mutex_t mu;       /* guards n_active */
    int n_active;             /* engine requests submitted and not yet released */
    atomic_ullong next_id;
};

enum route { ROUTE_NONE, ROUTE_COMPLETIONS, ROUTE_CHAT, ROUTE_MODELS, ROUTE_HEALTH, ROUTE_METRICS };

/* Per-connection-request state (MHD's con_cls). */
typedef struct conn {
    api_buf body;
    bool too_big;
    bool started;
} conn;

typedef struct choice {
    engine_req *r;
    tok_stream ts;
    api_stop stop;
    api_buf text;            /* non-stream: emitted text so far */
    json_t *lp;              /* non-stream logprobs container, NULL when not requested */
    size_t text_off;         /* bytes emitted so far (completions text_offset) */
    int n_tokens;
    engine_finish fin;       /* NONE while running */
    bool done;               /* fin decided and (stream) final chunk queued */
    bool role_sent;
} choice;

typedef struct gen {
    http_server *s;
    api_request req;
    int n_prompt;
    int n;                   /* choices */
    choice ch[API_MAX_N];
    int fd;                  /* client socket (hang-up checks), -1 unknown */
    char id[48];
    api_resp_meta meta;
    char err_msg[256];       /* first engine error */
    /* streaming */
    api_buf out;             /* SSE bytes not yet handed to MHD */
    size_t out_off;
    bool finished;           /* every choice done, usage + [DONE] queued */
} gen;

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
    if (e->status == 429) MHD_add_response_header(r, "Retry-After", "1");
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

/* Blocks until the first running choice has news or ms pass. With several choices the
 * slice is short: the others' tokens usually come in the same engine step. */
static void gen_wait(gen *g, double ms) {
    for (int i = 0; i < g->n; i++) {
        if (g->ch[i].done) continue;
        engine_finish fin;
        engine_req_poll(g->ch[i].r, NULL, 0, g->n > 1 ? ms / 10 : ms, &fin);
        return;
    }
}

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

static void gen_destroy(gen *g) {
    if (!g) return;
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
        api_buf_free(&c->text);
        json_decref(c->lp);
    }
    if (released) {
        pthread_mutex_lock(&g->s->mu);
        g->s->n_active -= released;
        pthread_mutex_unlock(&g->s->mu);
    }
    api_request_free(&g->req);
    api_buf_free(&g->out);
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

/* Adds one token's logprob entry to a container from lp_new. */
static void lp_add(const gen *g, json_t *lp, const engine_token *t, size_t text_off) {
    const tok *tk = g->s->be.tk;
    char piece[256];
    int pn = tok_piece(tk, t->id, true, piece, sizeof piece);
    if (pn < 0) pn = 0;
    if (pn > (int)sizeof piece) pn = (int)sizeof piece;
    int n_top = t->n_top < g->req.top_logprobs ? t->n_top : g->req.top_logprobs;
    if (g->req.kind == API_CHAT) {
        json_t *tops = json_array();
        for (int k = 0; k < n_top; k++) {
            char tp[256];
            int tn = tok_piece(tk, t->top_ids[k], true, tp, sizeof tp);
            if (tn < 0) tn = 0;
            if (tn > (int)sizeof tp) tn = (int)sizeof tp;
            json_array_append_new(tops, json_pack("{s:o, s:f, s:o}", "token", api_json_text(tp, (size_t)tn),
                                                  "logprob", (double)t->top_logprobs[k], "bytes", byte_array(tp, tn)));
        }
        json_array_append_new(json_object_get(lp, "content"),
                              json_pack("{s:o, s:f, s:o, s:o}", "token", api_json_text(piece, (size_t)pn), "logprob",
                                        (double)t->logprob, "bytes", byte_array(piece, pn), "top_logprobs", tops));
        return;
    }
    json_array_append_new(json_object_get(lp, "tokens"), api_json_text(piece, (size_t)pn));
    json_array_append_new(json_object_get(lp, "token_logprobs"), json_real(t->logprob));
    json_array_append_new(json_object_get(lp, "text_offset"), json_integer((json_int_t)text_off));
    json_t *top = json_object();
    for (int k = 0; top && k < n_top; k++) {
        char tp[256];
        int tn = tok_piece(tk, t->top_ids[k], true, tp, sizeof tp);
        if (tn < 0) tn = 0;
        if (tn > (int)sizeof tp) tn = (int)sizeof tp;
        json_t *key = api_json_text(tp, (size_t)tn);
        if (key) json_object_set_new(top, json_string_value(key), json_real(t->top_logprobs[k]));
        json_decref(key);
    }
    json_array_append_new(json_object_get(lp, "top_logprobs"), top);
}

/* Queues one SSE chunk for choice i. */
static int emit_chunk(gen *g, int i, const char *text, size_t len, const char *finish, json_t *lp) {
    choice *c = &g->ch[i];
    bool role = g->req.kind == API_CHAT && !c->role_sent;
    c->role_sent = true;
    char *js = api_chunk_json(g->req.kind, &g->meta, i, text, len, finish, lp, role);
    if (!js) return SW_ERR_NOMEM;
    int rc = api_sse_event(&g->out, js, strlen(js));
    free(js);
    return rc;
}

/* Ends choice i with finish f: flushes held-back bytes. */
static void choice_finish(gen *g, int i, engine_finish f, api_buf *piece) {
    choice *c = &g->ch[i];
    char tail[64];
    int n = tok_stream_flush(&c->ts, tail, sizeof tail);
    if (n > (int)sizeof tail) n = (int)sizeof tail;
    if (n > 0) api_stop_feed(&c->stop, tail, (size_t)n, piece);
    if (c->stop.stopped) f = ENGINE_FINISH_STOP;
    else api_stop_flush(&c->stop, piece);
    c->fin = f;
    c->done = true;
    if (f == ENGINE_FINISH_ERROR && !g->err_msg[0]) {
        const char *m = engine_req_error(c->r);
        snprintf(g->err_msg, sizeof g->err_msg, "%s", m && m[0] ? m : "generation failed");
    }
}

/* Takes every available token of every running choice. Returns true if anything changed. */
static bool gen_pump(gen *g) {
    const tok *tk = g->s->be.tk;
    bool stream = g->req.stream, changed = false;
    engine_token toks[POLL_CAP];
    api_buf piece = {0};
    for (int i = 0; i < g->n; i++) {
        choice *c = &g->ch[i];
        if (c->done) continue;
        if (stream && g->req.kind == API_CHAT && !c->role_sent) {
            emit_chunk(g, i, "", 0, NULL, NULL);
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
                char bytes[256];
                int nb = tok_stream_feed(&c->ts, t->id, bytes, sizeof bytes);
                if (nb > (int)sizeof bytes) nb = (int)sizeof bytes;
                if (nb > 0) api_stop_feed(&c->stop, bytes, (size_t)nb, &piece);
            }
            json_t *lp = NULL;
            if (g->req.logprobs) {
                lp = stream ? lp_new(g->req.kind) : c->lp;
                if (lp) lp_add(g, lp, t, c->text_off);
            }
            if (c->stop.stopped) {
                engine_req_cancel(c->r);
                c->fin = ENGINE_FINISH_STOP;
                c->done = true;
            }
            if (stream) {
                if (piece.len || lp || c->done)
                    emit_chunk(g, i, piece.len || g->req.kind == API_COMPLETIONS ? (piece.p ? piece.p : "") : NULL,
                               piece.len, c->done ? "stop" : NULL, lp);
            } else if (piece.len) {
                api_buf_append(&c->text, piece.p, piece.len);
            }
            c->text_off += piece.len;
        }
        if (!c->done && fin != ENGINE_FINISH_NONE) {
            piece.len = 0;
            choice_finish(g, i, fin, &piece);
            changed = true;
            if (stream) {
                if (fin == ENGINE_FINISH_ERROR) {
                    api_error e;
                    api_error_set(&e, 500, "server_error", NULL, NULL, "%s", g->err_msg);
                    char *js = api_error_json(&e);
                    if (js) api_sse_event(&g->out, js, strlen(js));
                    free(js);
                } else {
                    emit_chunk(g, i, piece.len || g->req.kind == API_COMPLETIONS ? (piece.p ? piece.p : "") : NULL,
                               piece.len, api_finish_name(c->fin), NULL);
                }
            } else if (piece.len) {
                api_buf_append(&c->text, piece.p, piece.len);
            }
            c->text_off += piece.len;
        }
    }
    api_buf_free(&piece);
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

/* MHD content reader for SSE: blocks (in this connection's thread) until bytes exist. */
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
        if (g->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        gen_pump(g);
        if (gen_all_done(g)) gen_stream_close(g);
        if (g->out.len) continue;
        if (atomic_load(&g->s->stopping) || client_gone(g->fd)) {
            gen_cancel_all(g);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        gen_wait(g, WAIT_SLICE_MS);
    }
}

static void stream_free(void *cls) { gen_destroy(cls); }

/* Non-streaming: runs to the end. Returns false when the client left or the server stops. */
static bool gen_run(gen *g) {
    for (;;) {
        gen_pump(g);
        if (gen_all_done(g)) return true;
        if (atomic_load(&g->s->stopping) || client_gone(g->fd)) {
            gen_cancel_all(g);
            return false;
        }
        gen_wait(g, WAIT_SLICE_MS);
    }
}

static json_t *gen_response(gen *g) {
    api_kind kind = g->req.kind;
    json_t *choices = json_array();
    for (int i = 0; i < g->n; i++) {
        choice *c = &g->ch[i];
        json_t *text = api_json_text(c->text.p ? c->text.p : "", c->text.len);
        json_t *lp = c->lp ? json_incref(c->lp) : json_null();
        json_t *ch;
        if (kind == API_CHAT)
            ch = json_pack("{s:i, s:{s:s, s:o}, s:o, s:s}", "index", i, "message", "role", "assistant", "content", text,
                           "logprobs", lp, "finish_reason", api_finish_name(c->fin));
        else
            ch = json_pack("{s:i, s:o, s:o, s:s}", "index", i, "text", text, "logprobs", lp, "finish_reason",
                           api_finish_name(c->fin));
        json_array_append_new(choices, ch);
    }
    int ct = gen_completion_tokens(g);
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:{s:i, s:i, s:i}}", "id", g->meta.id, "object",
                     kind == API_CHAT ? "chat.completion" : "text_completion", "created", (json_int_t)g->meta.created,
                     "model", g->meta.model, "choices", choices, "usage", "prompt_tokens", g->n_prompt,
                     "completion_tokens", ct, "total_tokens", g->n_prompt + ct);
}

/* ------------------------------------------------------------------ request handling */

/* Prompt token ids of the request (malloc'd) or an error. */
static int build_prompt(http_server *s, const api_request *rq, int32_t **ids, int *n_ids, api_error *e) {
    const tok *tk = s->be.tk;
    const char *param = rq->kind == API_CHAT ? "messages" : "prompt";
    if (rq->prompt_ids) {
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
        tok_chat_msg *msgs = calloc((size_t)rq->n_messages, sizeof *msgs);
        if (!msgs) return api_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        for (int i = 0; i < rq->n_messages; i++) msgs[i] = (tok_chat_msg){rq->messages[i].role, rq->messages[i].content};
        sw_err err = {0};
        int rc = tok_chat_render(s->be.chat, msgs, rq->n_messages, true, &text, &err);
        free(msgs);
        if (rc) return api_error_set(e, 400, "invalid_request_error", NULL, "messages", "chat template: %s", err.msg);
        len = strlen(text);
        special = true;
    }
    const char *src = text ? text : rq->prompt;
    if (len > (size_t)INT32_MAX / 2) {
        free(text);
        return api_error_set(e, 400, "invalid_request_error", NULL, param, "'%s' is too long", param);
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

static MHD_RESULT_T handle_generate(http_server *s, struct MHD_Connection *c, api_kind kind, conn *cn) {
    api_error e;
    gen *g = calloc(1, sizeof *g);
    if (!g) return fail(c, 500, "server_error", NULL, NULL, "out of memory");
    g->s = s;
    int32_t *ids = NULL;
    int n_ids = 0, admitted = 0;
    gram_grammar *gg = NULL; /* the output constraint, if any (api_grammar.c) */
    if (api_request_parse(kind, cn->body.p ? cn->body.p : "", cn->body.len, &g->req, &e)) goto err;
    const api_request *rq = &g->req;
    if (rq->model && strcmp(rq->model, s->model_name) != 0) {
        api_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                      "the model '%s' does not exist; this server serves '%s'", rq->model, s->model_name);
        goto err;
    }
    if (build_prompt(s, rq, &ids, &n_ids, &e)) goto err;
    const char *pparam = kind == API_CHAT ? "messages" : "prompt";
    if (n_ids >= s->be.max_ctx) {
        api_error_set(&e, 400, "invalid_request_error", "context_length_exceeded", pparam,
                      "the prompt has %d tokens; this model's context is %d tokens (prompt + completion)", n_ids,
                      s->be.max_ctx);
        goto err;
    }
    int room = s->be.max_ctx - n_ids;
    int max_tokens = rq->max_tokens > 0 ? rq->max_tokens : kind == API_CHAT ? room : 16;
    if (max_tokens > room) max_tokens = room;
    if (api_grammar_get(s->be.grammars, rq, &gg, &e)) goto err;
    if (admit(s, rq->n, &e)) goto err;
    admitted = rq->n;
    g->n_prompt = n_ids;
    unsigned long long idn = atomic_fetch_add(&s->next_id, 1);
    snprintf(g->id, sizeof g->id, "%s-%llx%08llx", kind == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)time(NULL), idn);
    g->meta = (api_resp_meta){g->id, (long long)time(NULL), s->model_name};
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
        p.sampling.n_logprobs = rq->logprobs ? rq->top_logprobs : 0;
        p.priority = rq->priority;
        p.slo_ttft_ms = rq->slo_ttft_ms;
        p.slo_tpot_ms = rq->slo_tpot_ms;
        p.user = rq->user;
        p.bias_ids = rq->bias_ids;
        p.bias = rq->bias;
        p.n_bias = rq->n_bias;
        choice *ch = &g->ch[i];
        sw_err err = {0};
        int rc = gg ? gram_matcher_create(gg, &p.constraint, &err) : SW_OK;
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
        if (rq->logprobs && !rq->stream) ch->lp = lp_new(kind);
    }
    free(ids);
    ids = NULL;
    gram_grammar_release(gg);
    gg = NULL;
    if (g->n < rq->n) goto err;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    g->fd = ci ? ci->connect_fd : -1;
    /* --policy slo decides at its next step whether each request can meet its objective;
     * a refusal is a 503 naming the reason, before any byte of a stream is sent. */
    for (int i = 0; i < g->n; i++) {
        engine_verdict v;
        while ((v = engine_req_verdict(g->ch[i].r, WAIT_SLICE_MS)) == ENGINE_VERDICT_PENDING) {
            if (atomic_load(&s->stopping) || client_gone(g->fd)) {
                gen_cancel_all(g);
                gen_destroy(g);
                return MHD_NO;
            }
        }
        if (v == ENGINE_VERDICT_REJECTED) {
            g->ch[i].fin = ENGINE_FINISH_REJECTED;
            const char *why = engine_req_error(g->ch[i].r);
            api_error_set(&e, 503, "server_error", "slo_unattainable", NULL, "%s", why ? why : "objective cannot be met");
            goto err;
        }
    }
    if (rq->stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, g, stream_free);
        if (!r) {
            gen_destroy(g);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_RESULT_T ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!gen_run(g)) {
        gen_destroy(g);
        return MHD_NO; /* client gone or server stopping: close the connection */
    }
    if (g->err_msg[0]) {
        api_error_set(&e, 500, "server_error", NULL, NULL, "%s", g->err_msg);
        gen_destroy(g);
        return send_error(c, &e);
    }
    json_t *resp = gen_response(g);
    gen_destroy(g);
    return send_json(c, MHD_HTTP_OK, resp);
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
        {"/metrics", ROUTE_METRICS, "GET"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(url, routes[i].path)) {
            *method_needed = routes[i].method;
            return routes[i].r;
        }
    return ROUTE_NONE;
}

static bool authorized(http_server *s, struct MHD_Connection *c) {
    if (!s->api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ') h++;
    return http_ct_equal(h, strlen(h), s->api_key, s->api_key_len);
}

static MHD_RESULT_T dispatch(http_server *s, struct MHD_Connection *c, const char *url, const char *method, conn *cn) {
    const char *need = NULL;
    enum route r = route_of(url, &need);
    if (r == ROUTE_NONE) {
        api_error e;
        api_error_set(&e, 404, "invalid_request_error", "not_found", NULL, "no route for %s %s", method, url);
        return send_error(c, &e);
    }
    bool head_ok = !strcmp(need, "GET") && !strcmp(method, "HEAD");
    if (strcmp(method, need) != 0 && !head_ok) {
        api_error e;
        api_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s %s is not allowed; use %s",
                      method, url, need);
        return send_error_allow(c, &e, need);
    }
    if (r == ROUTE_HEALTH) {
        bool ok = atomic_load(&s->ready) && !atomic_load(&s->stopping);
        const char *b = ok ? "{\"status\":\"ok\"}" : "{\"status\":\"loading\"}";
        return send_body(c, ok ? 200 : 503, "application/json", strdup(b), strlen(b));
    }
    if (r == ROUTE_METRICS) return handle_metrics(s, c);
    if (!authorized(s, c))
        return fail(c, 401, "authentication_error", "invalid_api_key", NULL, "missing or invalid API key");
    if (!atomic_load(&s->ready) || atomic_load(&s->stopping))
        return fail(c, 503, "server_error", "not_ready", NULL, "the model is loading; retry shortly");
    if (r == ROUTE_MODELS) return handle_models(s, c);
    if (cn->too_big) {
        api_error e;
        api_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                      "request body larger than %zu bytes", s->max_body);
        return send_error(c, &e);
    }
    return handle_generate(s, c, r == ROUTE_CHAT ? API_CHAT : API_COMPLETIONS, cn);
}

static MHD_RESULT_T on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    http_server *s = cls;
    conn *cn = *con_cls;
    if (!cn) {
        cn = calloc(1, sizeof *cn);
        if (!cn) return MHD_NO;
        *con_cls = cn;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->max_body) cn->too_big = true;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cn->too_big && cn->body.len + *upload_size > s->max_body) {
            cn->too_big = true;
            api_buf_free(&cn->body);
        }
        if (!cn->too_big && api_buf_append(&cn->body, upload, *upload_size) != SW_OK) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cn->started) return MHD_YES;
    cn->started = true;
    return dispatch(s, c, url, method, cn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    conn *cn = *con_cls;
    if (!cn) return;
    api_buf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
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
    s->api_key = cfg->api_key && cfg->api_key[0] ? strdup(cfg->api_key) : NULL;
    s->api_key_len = s->api_key ? strlen(s->api_key) : 0;
    s->max_queue = cfg->max_queue < 0 ? 0 : cfg->max_queue;
    s->max_body = cfg->max_body ? cfg->max_body : HTTP_MAX_BODY;
    pthread_mutex_init(&s->mu, NULL);
    metrics_init(&s->met);
    int rc = SW_OK;
    if (!s->host || (cfg->api_key && cfg->api_key[0] && !s->api_key)) {
        rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        goto fail;
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
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

void http_server_destroy(http_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, true);
    if (s->d) MHD_stop_daemon(s->d);
    metrics_destroy(&s->met);
    pthread_mutex_destroy(&s->mu);
    free(s->model_name);
    free(s->host);
    free(s->api_key);
    free(s);
}
