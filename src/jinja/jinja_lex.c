/* jinja_lex.c — the Jinja lexer: splits a template into text and the tokens of {{ }},
 * {% %} tags ({# #} comments are dropped, {% raw %} bodies become text). Whitespace
 * control: `{%-`/`{{-`/`{#-` strip the whitespace before the tag, `-%}`/`-}}`/`-#}` the
 * whitespace after it (`+` is accepted and does nothing, as trim_blocks/lstrip_blocks
 * are off). Text newlines are normalized to \n and one final newline of the template is
 * dropped, as Jinja2 does by default. Every token records its line and column. */
#include "jinja/jinja_impl.h"
#include <ctype.h>
#include <errno.h>

typedef struct lexer {
    jarena *a;
    const char *s;
    size_t n, pos;
    int line, col;          /* of pos */
    jtok *t;
    size_t nt, cap;
    sw_err *err;
} lexer;

static int lfail(lexer *L, const char *msg) {
    return sw_err_set(L->err, SW_ERR_FORMAT, "line %d col %d: %s", L->line, L->col, msg);
}

static void advance(lexer *L, size_t k) {
    for (size_t i = 0; i < k && L->pos < L->n; i++, L->pos++) {
        if (L->s[L->pos] == '\n') { L->line++; L->col = 1; } else L->col++;
    }
}

static jtok *push(lexer *L, jtok_type t, int line, int col) {
    if (L->nt == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtok *v = jarena_alloc(L->a, cap * sizeof *v);
        if (!v) return NULL;
        if (L->nt) memcpy(v, L->t, L->nt * sizeof *v);
        L->t = v; L->cap = cap;
    }
    jtok *k = &L->t[L->nt++];
    memset(k, 0, sizeof *k);
    k->t = t; k->line = line; k->col = col;
    return k;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Emits text s[b..e) with optional left/right whitespace stripping and \r\n -> \n. */
static int emit_text(lexer *L, size_t b, size_t e, bool lstrip, bool rstrip, int line, int col) {
    if (lstrip) while (b < e && is_space(L->s[b])) b++;
    if (rstrip) while (e > b && is_space(L->s[e - 1])) e--;
    if (b == e) return SW_OK;
    char *p = jarena_alloc(L->a, e - b + 1);
    if (!p) return lfail(L, "template too large");
    size_t k = 0;
    for (size_t i = b; i < e; i++) {
        if (L->s[i] == '\r') { p[k++] = '\n'; if (i + 1 < e && L->s[i + 1] == '\n') i++; }
        else p[k++] = L->s[i];
    }
    jtok *t = push(L, JT_TEXT, line, col);
    if (!t) return lfail(L, "template too large");
    t->s = (jstr){p, k};
    return SW_OK;
}

static bool at(lexer *L, const char *lit) {
    size_t k = strlen(lit);
    return L->pos + k <= L->n && !memcmp(L->s + L->pos, lit, k);
}

/* Finds the next tag opening at or after pos ("{{", "{%", "{#"); returns n when none. */
static size_t next_tag(lexer *L, size_t from) {
    for (size_t i = from; i + 1 < L->n; i++)
        if (L->s[i] == '{' && (L->s[i + 1] == '{' || L->s[i + 1] == '%' || L->s[i + 1] == '#')) return i;
    return L->n;
}

static int lex_string(lexer *L) {
    int line = L->line, col = L->col;
    char q = L->s[L->pos];
    advance(L, 1);
    size_t start = L->pos;
    /* the unescaped text is never longer than the source */
    size_t end = start;
    while (end < L->n && L->s[end] != q) { if (L->s[end] == '\\') end++; end++; }
    if (end >= L->n) return sw_err_set(L->err, SW_ERR_FORMAT, "line %d col %d: unterminated string literal", line, col);
    char *p = jarena_alloc(L->a, end - start + 1);
    if (!p) return lfail(L, "template too large");
    size_t k = 0;
    for (size_t i = start; i < end; i++) {
        char c = L->s[i];
        if (c != '\\') { p[k++] = c; continue; }
        char e = L->s[++i];
        switch (e) {
        case 'n': p[k++] = '\n'; break;
        case 't': p[k++] = '\t'; break;
        case 'r': p[k++] = '\r'; break;
        case 'b': p[k++] = '\b'; break;
        case 'f': p[k++] = '\f'; break;
        case 'v': p[k++] = '\v'; break;
        case '0': p[k++] = '\0'; break;
        case '\\': case '\'': case '"': p[k++] = e; break;
        case '\n': break;
        case 'x': case 'u': {
            int nd = e == 'x' ? 2 : 4;
            uint32_t cp = 0; int d;
            for (d = 0; d < nd && i + 1 + d < end && isxdigit((unsigned char)L->s[i + 1 + d]); d++) {
                char h = L->s[i + 1 + d];
                cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            }
            if (d != nd) { p[k++] = '\\'; p[k++] = e; break; }
            i += (size_t)nd;
            /* encode as UTF-8 (fits: the escape took >= 4 source bytes, UTF-8 <= 3) */
            if (cp < 0x80) p[k++] = (char)cp;
            else if (cp < 0x800) { p[k++] = (char)(0xC0 | (cp >> 6)); p[k++] = (char)(0x80 | (cp & 0x3F)); }
            else { p[k++] = (char)(0xE0 | (cp >> 12)); p[k++] = (char)(0x80 | ((cp >> 6) & 0x3F)); p[k++] = (char)(0x80 | (cp & 0x3F)); }
            break;
        }
        default: p[k++] = '\\'; p[k++] = e; break;
        }
    }
    p[k] = 0;
    advance(L, end - start + 1);
    jtok *t = push(L, JT_STRING, line, col);
    if (!t) return lfail(L, "template too large");
    t->s = (jstr){p, k};
    return SW_OK;
}

static int lex_number(lexer *L) {
    int line = L->line, col = L->col;
    size_t b = L->pos, e = b;
    bool flt = false;
    while (e < L->n && (isdigit((unsigned char)L->s[e]) || L->s[e] == '_')) e++;
    if (e + 1 < L->n && L->s[e] == '.' && isdigit((unsigned char)L->s[e + 1])) {
        flt = true; e++;
        while (e < L->n && (isdigit((unsigned char)L->s[e]) || L->s[e] == '_')) e++;
    }
    if (e < L->n && (L->s[e] == 'e' || L->s[e] == 'E')) {
        size_t x = e + 1;
        if (x < L->n && (L->s[x] == '+' || L->s[x] == '-')) x++;
        if (x < L->n && isdigit((unsigned char)L->s[x])) {
            flt = true; e = x;
            while (e < L->n && isdigit((unsigned char)L->s[e])) e++;
        }
    }
    char buf[64]; size_t k = 0;
    for (size_t i = b; i < e && k < sizeof buf - 1; i++) if (L->s[i] != '_') buf[k++] = L->s[i];
    buf[k] = 0;
    if (e - b >= sizeof buf) return lfail(L, "number literal too long");
    jtok *t = push(L, flt ? JT_FLOAT : JT_INT, line, col);
    if (!t) return lfail(L, "template too large");
    if (flt) t->f = strtod(buf, NULL);
    else {
        errno = 0;
        char *endp;
        long long v = strtoll(buf, &endp, 10);
        if (errno) return lfail(L, "integer literal out of range");
        t->i = v;
    }
    advance(L, e - b);
    return SW_OK;
}

static int lex_op(lexer *L) {
    static const struct { const char *s; int op; } two[] = {
        {"==", JOP_EQ}, {"!=", JOP_NE}, {"<=", JOP_LE}, {">=", JOP_GE}, {"//", JOP_FLOORDIV}, {"**", JOP_POW}};
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
        if (at(L, two[i].s)) {
            jtok *t = push(L, JT_OP, L->line, L->col);
            if (!t) return lfail(L, "template too large");
            t->op = two[i].op;
            advance(L, 2);
            return SW_OK;
        }
    char c = L->s[L->pos];
    if (!strchr("+-*/%~<>=()[]{},.:|", c)) {
        char msg[64];
        snprintf(msg, sizeof msg, "unexpected character '%c'", isprint((unsigned char)c) ? c : '?');
        return lfail(L, msg);
    }
    jtok *t = push(L, JT_OP, L->line, L->col);
    if (!t) return lfail(L, "template too large");
    t->op = c;
    advance(L, 1);
    return SW_OK;
}

/* {% raw %} ... {% endraw %}: pos is just past the tag; finds the end tag. */
static int lex_raw(lexer *L, bool *lstrip_next) {
    int line = L->line, col = L->col;
    for (size_t i = L->pos; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%') continue;
        size_t j = i + 2;
        bool strip_before = j < L->n && L->s[j] == '-';
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) j++;
        while (j < L->n && is_space(L->s[j])) j++;
        if (j + 6 > L->n || memcmp(L->s + j, "endraw", 6)) continue;
        j += 6;
        while (j < L->n && is_space(L->s[j])) j++;
        bool strip_after = j < L->n && L->s[j] == '-';
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) j++;
        if (j + 2 > L->n || L->s[j] != '%' || L->s[j + 1] != '}') continue;
        int rc = emit_text(L, L->pos, i, *lstrip_next, strip_before, line, col);
        if (rc) return rc;
        advance(L, j + 2 - L->pos);
        *lstrip_next = strip_after;
        return SW_OK;
    }
    return lfail(L, "unterminated {% raw %} block");
}

int jinja_lex(jarena *a, const char *src, size_t len, jtok **toks, size_t *n, sw_err *err) {
    lexer L = {.a = a, .s = src, .n = len, .line = 1, .col = 1, .err = err};
    if (L.n && L.s[L.n - 1] == '\n') { L.n--; if (L.n && L.s[L.n - 1] == '\r') L.n--; }
    bool lstrip_next = false;
    while (L.pos < L.n) {
        size_t q = next_tag(&L, L.pos);
        bool strip_before = q + 2 < L.n && L.s[q + 2] == '-';
        int rc = emit_text(&L, L.pos, q, lstrip_next, strip_before, L.line, L.col);
        if (rc) return rc;
        lstrip_next = false;
        advance(&L, q - L.pos);
        if (L.pos >= L.n) break;
        char kind = L.s[L.pos + 1];
        int tline = L.line, tcol = L.col;
        if (kind == '#') {
            const char *end = NULL;
            for (size_t i = L.pos + 2; i + 1 < L.n; i++) if (L.s[i] == '#' && L.s[i + 1] == '}') { end = L.s + i; break; }
            if (!end) return lfail(&L, "unterminated comment");
            lstrip_next = end > L.s + L.pos + 2 && end[-1] == '-';
            advance(&L, (size_t)(end - (L.s + L.pos)) + 2);
            continue;
        }
        bool block = kind == '%';
        jtok *t = push(&L, block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, tline, tcol);
        if (!t) return lfail(&L, "template too large");
        advance(&L, 2);
        if (L.pos < L.n && (L.s[L.pos] == '-' || L.s[L.pos] == '+')) advance(&L, 1);
        size_t first_tok = L.nt;
        int braces = 0;
        for (;;) {
            while (L.pos < L.n && is_space(L.s[L.pos])) advance(&L, 1);
            if (L.pos >= L.n) return sw_err_set(err, SW_ERR_FORMAT, "line %d col %d: unclosed tag", tline, tcol);
            const char *end2 = block ? "%}" : "}}";
            bool minus = L.s[L.pos] == '-' || L.s[L.pos] == '+';
            if (braces == 0 && (at(&L, end2) || (minus && L.pos + 2 < L.n && !memcmp(L.s + L.pos + 1, end2, 2)))) {
                lstrip_next = L.s[L.pos] == '-';
                jtok *e = push(&L, block ? JT_BLOCK_END : JT_VAR_END, L.line, L.col);
                if (!e) return lfail(&L, "template too large");
                advance(&L, minus ? 3 : 2);
                break;
            }
            char c = L.s[L.pos];
            if (c == '"' || c == '\'') rc = lex_string(&L);
            else if (isdigit((unsigned char)c)) rc = lex_number(&L);
            else if (isalpha((unsigned char)c) || c == '_') {
                size_t b = L.pos, e = b;
                while (e < L.n && (isalnum((unsigned char)L.s[e]) || L.s[e] == '_')) e++;
                jtok *nt = push(&L, JT_NAME, L.line, L.col);
                if (!nt) return lfail(&L, "template too large");
                char *name = jarena_strdup(L.a, L.s + b, e - b);
                if (!name) return lfail(&L, "template too large");
                nt->s = (jstr){name, e - b};
                advance(&L, e - b);
                rc = SW_OK;
            } else {
                if (c == '{' || c == '[' || c == '(') braces += c == '{';
                if (c == '}' && braces > 0) braces--;
                rc = lex_op(&L);
            }
            if (rc) return rc;
        }
        /* {% raw %}: the body up to {% endraw %} is text */
        if (block && L.nt == first_tok + 2 && L.t[first_tok].t == JT_NAME && jstr_is(L.t[first_tok].s, "raw")) {
            L.nt -= 3;
            rc = lex_raw(&L, &lstrip_next);
            if (rc) return rc;
        }
    }
    if (!push(&L, JT_EOF, L.line, L.col)) return lfail(&L, "template too large");
    *toks = L.t;
    *n = L.nt;
    return SW_OK;
}
