/* api_tools.c — the tool-call output parser: detects each family's call syntax in
 * generated text and turns it into content text and call events (see api_tools.h).
 * It runs byte by byte, so any chunking of the same text gives the same events:
 *   TEXT   content; bytes that are a prefix of a call opener are held until decided
 *   PRE    after an opener that is not JSON itself: whitespace, then '{' (or '[' for
 *          Mistral's list)
 *   OBJ    the call object {"name": "...", "arguments"|"parameters": VALUE, ...}: the
 *          name is read whole (START once it is known), the arguments value's bytes are
 *          passed on as they come (ARGS), other keys are skipped; '}' at depth 0 ends it
 *   after  Hermes: whitespace + "</tool_call>"; Llama 3: ';' + next object; Mistral: ','
 *          + next object or ']'
 * Until START, every byte since the opener is kept: if the text turns out not to be a
 * call, it is released as content. Whitespace after a call is dropped when another call
 * or the end follows (so is whitespace before a first call). Request fields, grammar and response JSON: api_tools_req.c. */
#include "server/api_tools.h"
#include <stdlib.h>
#include <string.h>

enum { S_TEXT, S_PRE, S_OBJ, S_CLOSE, S_SEMI, S_ALIST };
enum { O_START, O_KEY_OR_END, O_KEY, O_COLON, O_VAL_START, O_NAME, O_VAL, O_ASTR, O_COMMA_OR_END };
enum { V_OTHER, V_NAME, V_ARGS };

/* In an opener, WS stands for any run of JSON whitespace (possibly empty). */
#define WS "\x01"

typedef struct fam_def {
    const char *openers[2];
    bool in_json[2];        /* the opener is the start of the call object itself */
    char want;              /* PRE: the byte that must follow the opener */
    int after;              /* state after a call object */
    const char *closer;     /* S_CLOSE */
} fam_def;

static const fam_def FAMS[] = {
    [API_TOOLS_NONE] = {{NULL, NULL}, {false, false}, 0, S_TEXT, NULL},
    [API_TOOLS_HERMES] = {{"<tool_call>", NULL}, {false, false}, '{', S_CLOSE, "</tool_call>"},
    [API_TOOLS_LLAMA3] = {{"<|python_tag|>", "{" WS "\"name\""}, {false, true}, '{', S_SEMI, NULL},
    [API_TOOLS_MISTRAL] = {{"[TOOL_CALLS]", NULL}, {false, false}, '[', S_ALIST, NULL},
};

struct api_tools_parser {
    api_tool_family fam;
    const fam_def *d;
    int state;
    char want;              /* S_PRE: '{' or '[' */
    api_buf hold;           /* TEXT: a possible opener prefix; CLOSE: a possible closer prefix */
    api_buf ws;             /* whitespace after a call, dropped if a call or the end follows */
    bool after_call;
    api_buf raw;            /* since the opener, until START: released as text if no call */
    bool started;           /* START sent for the current call */
    int n_calls;            /* calls started */
    /* call object */
    int os, vkind, depth;
    bool in_str, esc, scalar, have_name, have_args;
    char key[16]; int key_len; bool key_long;
    api_buf name, pend_args, astr;
    /* events of the current feed, coalesced */
    api_buf out;            /* pending TEXT or ARGS bytes */
    int out_kind;           /* -1 none, API_TOOL_TEXT, API_TOOL_ARGS */
    api_tool_sink sink;
    void *ctx;
    int rc;                 /* first failure (sink or memory) */
};

static bool is_ws(unsigned char b) { return b == ' ' || b == '\n' || b == '\t' || b == '\r'; }

static void emit(api_tools_parser *p, const api_tool_ev *ev) {
    if (!p->rc && p->sink) p->rc = p->sink(p->ctx, ev);
}

static void flush_out(api_tools_parser *p) {
    if (p->out_kind >= 0 && p->out.len) {
        api_tool_ev ev = {p->out_kind, p->n_calls - 1, p->out.p, p->out.len};
        emit(p, &ev);
    }
    p->out.len = 0;
    p->out_kind = -1;
}

static void put(api_tools_parser *p, int kind, const char *s, size_t n) {
    if (!n) return;
    if (p->out_kind != kind) flush_out(p);
    p->out_kind = kind;
    if (api_buf_append(&p->out, s, n) && !p->rc) p->rc = SW_ERR_NOMEM;
}

static void text(api_tools_parser *p, const char *s, size_t n) {
    if (n && p->after_call) { /* text after a call: the whitespace before it is content too */
        p->after_call = false;
        put(p, API_TOOL_TEXT, p->ws.p, p->ws.len);
    }
    p->ws.len = 0;
    put(p, API_TOOL_TEXT, s, n);
}

static void app(api_tools_parser *p, api_buf *b, const char *s, size_t n) {
    if (api_buf_append(b, s, n) && !p->rc) p->rc = SW_ERR_NOMEM;
}

int api_tools_parser_create(api_tool_family f, api_tools_parser **out) {
    *out = NULL;
    if ((int)f < 0 || (size_t)f >= sizeof FAMS / sizeof FAMS[0]) return SW_ERR_ARG;
    api_tools_parser *p = calloc(1, sizeof *p);
    if (!p) return SW_ERR_NOMEM;
    p->fam = f;
    p->d = &FAMS[f];
    p->out_kind = -1;
    p->after_call = f != API_TOOLS_NONE; /* whitespace before a first call is dropped too */
    *out = p;
    return SW_OK;
}

void api_tools_parser_destroy(api_tools_parser *p) {
    if (!p) return;
    api_buf_free(&p->hold);
    api_buf_free(&p->ws);
    api_buf_free(&p->raw);
    api_buf_free(&p->name);
    api_buf_free(&p->pend_args);
    api_buf_free(&p->astr);
    api_buf_free(&p->out);
    free(p);
}

int api_tools_n_calls(const api_tools_parser *p) { return p->n_calls; }

/* ---- call objects ---- */
static void obj_reset(api_tools_parser *p) {
    p->os = O_START;
    p->vkind = V_OTHER;
    p->depth = 0;
    p->in_str = p->esc = p->scalar = p->have_name = p->have_args = false;
    p->key_len = 0;
    p->key_long = false;
    p->name.len = p->pend_args.len = p->astr.len = 0;
}

static void begin_call(api_tools_parser *p) {
    p->raw.len = 0;
    p->started = false;
    obj_reset(p);
}

/* Not a call after all (nothing was started): what was held is content. */
static void abandon(api_tools_parser *p) {
    api_buf r = p->raw;
    p->raw = (api_buf){0};
    p->state = S_TEXT;
    p->after_call = false;
    p->ws.len = 0;
    text(p, r.p, r.len);
    api_buf_free(&r);
}

static void end_call(api_tools_parser *p) {
    if (!p->have_args) put(p, API_TOOL_ARGS, "{}", 2);
    flush_out(p);
    api_tool_ev ev = {API_TOOL_END, p->n_calls - 1, NULL, 0};
    emit(p, &ev);
    p->started = false;
    p->raw.len = 0;
    p->ws.len = 0;
    p->after_call = true;
}

/* A malformed call: text if nothing was started, else the call ends here. */
static void fail(api_tools_parser *p) {
    if (!p->started) { abandon(p); return; }
    end_call(p);
    p->state = S_TEXT;
}

static void args_bytes(api_tools_parser *p, const char *s, size_t n) {
    p->have_args = true;
    if (p->started) put(p, API_TOOL_ARGS, s, n);
    else app(p, &p->pend_args, s, n);
}

/* A JSON string's raw text (between the quotes) decoded; false if it is not valid. */
static bool decode_str(api_tools_parser *p, const api_buf *raw, api_buf *out) {
    api_buf q = {0};
    bool ok = !api_buf_append(&q, "\"", 1) && !api_buf_append(&q, raw->p ? raw->p : "", raw->len) && !api_buf_append(&q, "\"", 1);
    json_t *j = ok ? json_loadb(q.p, q.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    api_buf_free(&q);
    out->len = 0;
    ok = json_is_string(j) && !api_buf_append(out, json_string_value(j), json_string_length(j));
    json_decref(j);
    return ok;
}

static void got_name(api_tools_parser *p) {
    api_buf dec = {0};
    if (p->have_name || !decode_str(p, &p->name, &dec) || dec.len == 0) {
        api_buf_free(&dec);
        fail(p);
        return;
    }
    p->have_name = true;
    flush_out(p);
    p->n_calls++;
    p->started = true;
    p->raw.len = 0;
    api_tool_ev ev = {API_TOOL_START, p->n_calls - 1, dec.p, dec.len};
    emit(p, &ev);
    api_buf_free(&dec);
    if (p->pend_args.len) put(p, API_TOOL_ARGS, p->pend_args.p, p->pend_args.len);
    p->pend_args.len = 0;
}

static void obj_end(api_tools_parser *p) {
    if (!p->have_name) { fail(p); return; }
    end_call(p);
    p->state = p->d->after;
    p->hold.len = 0;
}

/* One byte of a string whose opening quote was seen; true at its closing quote. */
static bool str_byte(api_tools_parser *p, unsigned char b) {
    if (p->esc) { p->esc = false; return false; }
    if (b == '\\') { p->esc = true; return false; }
    return b == '"';
}

static void obj_byte(api_tools_parser *p, unsigned char b) {
    char c = (char)b;
    switch (p->os) {
    case O_START:
        if (is_ws(b)) return;
        if (b == '{') p->os = O_KEY_OR_END;
        else fail(p);
        return;
    case O_KEY_OR_END:
        if (is_ws(b)) return;
        if (b == '"') { p->os = O_KEY; p->key_len = 0; p->key_long = false; p->esc = false; }
        else if (b == '}') obj_end(p);
        else fail(p);
        return;
    case O_KEY:
        if (str_byte(p, b)) { p->os = O_COLON; return; }
        if (p->key_len < (int)sizeof p->key - 1) p->key[p->key_len++] = c;
        else p->key_long = true;
        return;
    case O_COLON:
        if (is_ws(b)) return;
        if (b != ':') { fail(p); return; }
        p->key[p->key_len] = 0;
        p->vkind = p->key_long ? V_OTHER
                 : !strcmp(p->key, "name") ? V_NAME
                 : !strcmp(p->key, "arguments") || !strcmp(p->key, "parameters") ? V_ARGS : V_OTHER;
        p->os = O_VAL_START;
        return;
    case O_VAL_START:
        if (is_ws(b)) return;
        p->esc = false;
        if (p->vkind == V_NAME) {
            if (b != '"') { fail(p); return; }
            p->name.len = 0;
            p->os = O_NAME;
            return;
        }
        if (p->vkind == V_ARGS && p->have_args) { fail(p); return; } /* arguments given twice */
        if (p->vkind == V_ARGS && b == '"') { p->astr.len = 0; p->os = O_ASTR; return; }
        p->os = O_VAL;
        p->depth = 0;
        p->in_str = false;
        p->scalar = !(b == '{' || b == '[' || b == '"');
        if (b == '}' || b == ']' || b == ',' || b == ':') { fail(p); return; }
        __attribute__((fallthrough)); /* this byte is the value's first */
    case O_VAL:
        if (p->scalar && (b == ',' || b == '}' || is_ws(b))) { /* the scalar ended before this byte */
            p->os = O_COMMA_OR_END;
            obj_byte(p, b);
            return;
        }
        if (p->vkind == V_ARGS) args_bytes(p, &c, 1);
        if (p->scalar) return;
        if (p->in_str) {
            if (str_byte(p, b)) p->in_str = false;
        } else if (b == '"') {
            p->in_str = true;
        } else if (b == '{' || b == '[') {
            p->depth++;
        } else if (b == '}' || b == ']') {
            p->depth--;
        }
        if (!p->in_str && p->depth == 0) p->os = O_COMMA_OR_END;
        return;
    case O_NAME:
        if (str_byte(p, b)) { p->os = O_COMMA_OR_END; got_name(p); return; }
        if (p->name.len >= 256) { fail(p); return; }
        app(p, &p->name, &c, 1);
        return;
    case O_ASTR:
        if (str_byte(p, b)) {
            api_buf dec = {0};
            if (!decode_str(p, &p->astr, &dec)) { api_buf_free(&dec); fail(p); return; }
            args_bytes(p, dec.p ? dec.p : "", dec.len);
            p->have_args = true;
            api_buf_free(&dec);
            p->os = O_COMMA_OR_END;
            return;
        }
        app(p, &p->astr, &c, 1);
        return;
    case O_COMMA_OR_END:
        if (is_ws(b)) return;
        if (b == ',') p->os = O_KEY_OR_END;
        else if (b == '}') obj_end(p);
        else fail(p);
        return;
    }
}

/* ---- outside call objects ---- */
static void text_byte(api_tools_parser *p, unsigned char b);

/* How held text h[0..n) stands against opener op: 0 no match, 1 a proper prefix, 2 all of it. */
static int opener_match(const char *op, const char *h, size_t n) {
    size_t i = 0;
    for (; *op; op++) {
        if (*op == WS[0]) {
            while (i < n && is_ws((unsigned char)h[i])) i++;
            continue;
        }
        if (i == n) return 1;
        if (h[i++] != *op) return 0;
    }
    return i == n ? 2 : 0;
}

static void start_opener(api_tools_parser *p, int k) {
    begin_call(p);
    app(p, &p->raw, p->ws.p, p->ws.len); /* the whitespace before is content if this is no call */
    p->ws.len = 0;
    api_buf op = p->hold; /* the opener's text as it came */
    p->hold = (api_buf){0};
    app(p, &p->raw, op.p, op.len);
    if (p->d->in_json[k]) {
        p->state = S_OBJ;
        for (size_t q = 0; q < op.len && p->state == S_OBJ; q++) obj_byte(p, (unsigned char)op.p[q]);
    } else {
        p->state = S_PRE;
        p->want = p->d->want;
    }
    api_buf_free(&op);
}

static void text_byte(api_tools_parser *p, unsigned char b) {
    if (!p->d->openers[0]) { char c = (char)b; text(p, &c, 1); return; }
    if (p->after_call && p->hold.len == 0 && is_ws(b)) { app(p, &p->ws, (const char *)&b, 1); return; }
    app(p, &p->hold, (const char *)&b, 1);
    while (p->hold.len) {
        bool prefix = false;
        for (int k = 0; k < 2 && p->d->openers[k]; k++) {
            int m = opener_match(p->d->openers[k], p->hold.p, p->hold.len);
            if (m == 2) { start_opener(p, k); return; }
            prefix |= m == 1;
        }
        if (prefix) return;
        text(p, p->hold.p, 1);
        memmove(p->hold.p, p->hold.p + 1, --p->hold.len);
    }
}

static void step(api_tools_parser *p, unsigned char b) {
    switch (p->state) {
    case S_TEXT:
        text_byte(p, b);
        return;
    case S_PRE:
        if (!p->started) app(p, &p->raw, (const char *)&b, 1);
        if (is_ws(b)) return;
        if (b != (unsigned char)p->want) { fail(p); return; }
        if (p->want == '[') { p->want = '{'; return; }
        p->state = S_OBJ;
        obj_byte(p, b);
        return;
    case S_OBJ:
        if (!p->started) app(p, &p->raw, (const char *)&b, 1);
        obj_byte(p, b);
        return;
    case S_CLOSE: { /* whitespace, then the closer */
        const char *cl = p->d->closer;
        size_t cn = strlen(cl);
        if (p->hold.len == 0 && is_ws(b)) { app(p, &p->ws, (const char *)&b, 1); return; }
        if (p->hold.len < cn && (unsigned char)cl[p->hold.len] == b) {
            app(p, &p->hold, (const char *)&b, 1);
            if (p->hold.len == cn) { p->hold.len = 0; p->ws.len = 0; p->state = S_TEXT; }
            return;
        }
        api_buf h = p->hold; /* not the closer: what was held is content */
        p->hold = (api_buf){0};
        p->state = S_TEXT;
        text(p, h.p, h.len);
        api_buf_free(&h);
        text_byte(p, b);
        return;
    }
    case S_SEMI: /* Llama 3: '; {...}' continues the list */
        if (is_ws(b)) { app(p, &p->ws, (const char *)&b, 1); return; }
        if (b == ';') {
            begin_call(p);
            app(p, &p->raw, ";", 1);
            p->ws.len = 0;
            p->state = S_PRE;
            p->want = '{';
            return;
        }
        p->state = S_TEXT;
        text_byte(p, b);
        return;
    case S_ALIST: /* Mistral: ', {...}' or the closing ']' */
        if (is_ws(b)) return;
        if (b == ',') {
            begin_call(p);
            p->state = S_PRE;
            p->want = '{';
            return;
        }
        p->ws.len = 0;
        p->state = S_TEXT;
        if (b != ']') text_byte(p, b);
        return;
    }
}

int api_tools_feed(api_tools_parser *p, const char *s, size_t n, api_tool_sink sink, void *ctx) {
    p->sink = sink;
    p->ctx = ctx;
    for (size_t i = 0; i < n && !p->rc; i++) step(p, (unsigned char)s[i]);
    flush_out(p);
    return p->rc;
}

int api_tools_finish(api_tools_parser *p, api_tool_sink sink, void *ctx) {
    p->sink = sink;
    p->ctx = ctx;
    switch (p->state) {
    case S_TEXT: {
        if (p->n_calls == 0 && p->after_call) { /* whitespace-only output without calls stays */
            p->after_call = false;
            put(p, API_TOOL_TEXT, p->ws.p, p->ws.len);
        }
        api_buf h = p->hold;
        p->hold = (api_buf){0};
        text(p, h.p, h.len);
        api_buf_free(&h);
        break;
    }
    case S_PRE:
    case S_OBJ:
        if (p->started) end_call(p);
        else abandon(p);
        break;
    default: /* after a call: a partial closer or separator is dropped */
        break;
    }
    p->state = S_TEXT;
    p->hold.len = p->ws.len = 0;
    p->after_call = false;
    flush_out(p);
    return p->rc;
}

/* ---- families ---- */
static bool has(const char *t, size_t n, const char *needle) { return t && memmem(t, n, needle, strlen(needle)) != NULL; }

api_tool_family api_tools_detect(const char *t, size_t n) {
    if (has(t, n, "<tool_call>")) return API_TOOLS_HERMES;
    if (has(t, n, "[TOOL_CALLS]")) return API_TOOLS_MISTRAL;
    if (has(t, n, "<|python_tag|>") || has(t, n, "ipython")) return API_TOOLS_LLAMA3;
    return API_TOOLS_NONE;
}

static const char *const FAM_NAMES[] = {"none", "hermes", "llama3", "mistral"};

const char *api_tools_family_name(api_tool_family f) {
    return (unsigned)f < sizeof FAM_NAMES / sizeof FAM_NAMES[0] ? FAM_NAMES[f] : "?";
}

int api_tools_family_from_name(const char *name, api_tool_family *out, bool *auto_) {
    *auto_ = !strcmp(name, "auto");
    if (*auto_) return SW_OK;
    for (unsigned i = 0; i < sizeof FAM_NAMES / sizeof FAM_NAMES[0]; i++)
        if (!strcmp(name, FAM_NAMES[i])) { *out = (api_tool_family)i; return SW_OK; }
    return SW_ERR_ARG;
}
