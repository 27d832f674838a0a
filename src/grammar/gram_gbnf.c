/* gram_gbnf.c — llama.cpp's GBNF grammar syntax -> grammar AST:
 *   name ::= alternatives        (one rule per line; `root` is the start rule)
 *   "literal" with escapes \n \r \t \\ \" \' \[ \] \xHH \uHHHH \UHHHHHHHH
 *   [a-z0-9_] [^"\\] character classes over code points (ranges, negation, escapes)
 *   .  any character     ( ... ) grouping     a | b alternation
 *   x* x+ x? x{m} x{m,} x{m,n} repetition     # comment to end of line
 * A newline ends a rule's body except inside parentheses and after `|`. Characters are
 * Unicode code points matched as UTF-8. */
#include "grammar/gram_internal.h"

#define GBNF_MAX_NEST 200
#define GBNF_MAX_REP 10000

typedef struct gp {
    const char *s; size_t n, i;
    gram_ast *a;
    sw_err *err;
    int rc;
    int line;
} gp;

static int fail(gp *p, const char *what) {
    if (p->rc == 0) {
        size_t ctx = p->n - p->i < 20 ? p->n - p->i : 20;
        char near[64];
        size_t k = 0;
        for (size_t j = 0; j < ctx && k + 1 < sizeof near; j++) {
            char c = p->s[p->i + j];
            near[k++] = (c == '\n' || c == '\r' || c == '\t' || (unsigned char)c < 32) ? ' ' : c;
        }
        near[k] = 0;
        p->rc = sw_err_set(p->err, SW_ERR_FORMAT, "gbnf: %s at line %d near '%s'", what, p->line, near);
    }
    return -1;
}

static bool eof(gp *p) { return p->i >= p->n; }
static char cur(gp *p) { return p->i < p->n ? p->s[p->i] : 0; }

/* Skips blanks and comments; newlines too when nl. */
static void space(gp *p, bool nl) {
    while (!eof(p)) {
        char c = cur(p);
        if (c == ' ' || c == '\t' || c == '\r') p->i++;
        else if (c == '#') { while (!eof(p) && cur(p) != '\n') p->i++; }
        else if (c == '\n' && nl) { p->i++; p->line++; }
        else break;
    }
}

static bool is_name(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; }

/* A character of a literal or class, with escapes. -1 on error. */
static int32_t parse_char(gp *p) {
    if (eof(p)) { fail(p, "unexpected end"); return -1; }
    if (cur(p) != '\\') return gram_src_cp(p->s, p->n, &p->i);
    p->i++;
    char e = cur(p);
    p->i++;
    int nhex = 0;
    switch (e) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/': return e;
    case 'x': nhex = 2; break;
    case 'u': nhex = 4; break;
    case 'U': nhex = 8; break;
    default: p->i--; fail(p, "unknown escape"); return -1;
    }
    uint32_t v = 0;
    for (int k = 0; k < nhex; k++) {
        int h = gram_hexval(cur(p));
        if (h < 0) { fail(p, "bad hex escape"); return -1; }
        v = v * 16 + (uint32_t)h;
        p->i++;
    }
    if (v > 0x10FFFF) { fail(p, "code point out of range"); return -1; }
    return (int32_t)v;
}

static int cp_node(gp *p, uint32_t cp) {
    gram_cprange r = {cp, cp};
    if (cp < 0x80) return gast_byte(p->a, cp);
    if (cp >= 0xD800 && cp <= 0xDFFF) return gast_nothing(p->a);
    return gast_codepoints(p->a, &r, 1);
}

static int parse_alts(gp *p, bool nested, int depth);

static int parse_literal(gp *p) {
    p->i++; /* opening quote */
    gram_ilist k = {0};
    while (!eof(p) && cur(p) != '"') {
        if (cur(p) == '\n') { free(k.v); return fail(p, "newline in literal"); }
        int32_t c = parse_char(p);
        if (c < 0) { free(k.v); return -1; }
        if (gram_ilist_push(&k, cp_node(p, (uint32_t)c)) < 0) { free(k.v); p->a->oom = true; return -1; }
    }
    if (eof(p)) { free(k.v); return fail(p, "unterminated literal"); }
    p->i++;
    int n = gast_seq(p->a, k.v, k.n);
    free(k.v);
    return n;
}

static int parse_class(gp *p) {
    p->i++; /* [ */
    bool neg = false;
    if (cur(p) == '^') { neg = true; p->i++; }
    gram_cprange *r = NULL;
    int n = 0, cap = 0;
    while (!eof(p) && cur(p) != ']') {
        int32_t lo = parse_char(p), hi;
        if (lo < 0) { free(r); return -1; }
        hi = lo;
        if (cur(p) == '-' && p->i + 1 < p->n && p->s[p->i + 1] != ']') {
            p->i++;
            if ((hi = parse_char(p)) < 0) { free(r); return -1; }
            if (hi < lo) { free(r); return fail(p, "reversed range in class"); }
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            gram_cprange *q = realloc(r, (size_t)cap * sizeof *r);
            if (!q) { free(r); p->a->oom = true; return -1; }
            r = q;
        }
        r[n++] = (gram_cprange){(uint32_t)lo, (uint32_t)hi};
    }
    if (eof(p)) { free(r); return fail(p, "unterminated character class"); }
    p->i++;
    if (!r) { r = malloc(sizeof *r); if (!r) { p->a->oom = true; return -1; } }
    n = gram_cp_normalize(&r, n, neg);
    int node = n < 0 ? -1 : gast_codepoints(p->a, r, n);
    free(r);
    return node;
}

static int parse_int(gp *p, int *out) {
    if (!(cur(p) >= '0' && cur(p) <= '9')) return -1;
    long v = 0;
    while (cur(p) >= '0' && cur(p) <= '9') {
        v = v * 10 + (cur(p) - '0');
        if (v > GBNF_MAX_REP) return -2;
        p->i++;
    }
    *out = (int)v;
    return 0;
}

static int parse_seq(gp *p, bool nested, int depth) {
    gram_ilist k = {0};
    for (;;) {
        space(p, nested);
        char c = cur(p);
        int x;
        if (eof(p) || c == '|' || c == ')' || c == '\n') break;
        if (c == '"') x = parse_literal(p);
        else if (c == '[') x = parse_class(p);
        else if (c == '.') {
            p->i++;
            gram_cprange all = {0, 0x10FFFF};
            x = gast_codepoints(p->a, &all, 1);
        } else if (c == '(') {
            if (depth >= GBNF_MAX_NEST) { free(k.v); return fail(p, "parentheses nested too deeply"); }
            p->i++;
            x = parse_alts(p, true, depth + 1);
            if (x >= 0) {
                space(p, true);
                if (cur(p) != ')') { free(k.v); return fail(p, "expected ')'"); }
                p->i++;
            }
        } else if (is_name(c)) {
            size_t b = p->i;
            while (!eof(p) && is_name(cur(p))) p->i++;
            size_t e = p->i;
            space(p, false);
            if (p->i + 3 <= p->n && !memcmp(p->s + p->i, "::=", 3)) { p->i = b; break; } /* next rule */
            p->i = e;
            x = gast_ref(p->a, gast_rule(p->a, p->s + b, e - b));
        } else {
            free(k.v);
            return fail(p, "unexpected character");
        }
        if (x < 0) { free(k.v); if (!p->rc) p->a->oom = true; return -1; }
        /* postfix operators */
        for (;;) {
            char o = cur(p);
            if (o == '*') { p->i++; x = gast_rep(p->a, x, 0, -1); }
            else if (o == '+') { p->i++; x = gast_rep(p->a, x, 1, -1); }
            else if (o == '?') { p->i++; x = gast_rep(p->a, x, 0, 1); }
            else if (o == '{') {
                p->i++;
                space(p, false);
                int lo = 0, hi = -1, r;
                if ((r = parse_int(p, &lo)) < 0) { free(k.v); return fail(p, r == -2 ? "repetition count too large" : "expected a number"); }
                space(p, false);
                if (cur(p) == ',') {
                    p->i++;
                    space(p, false);
                    if (cur(p) != '}' && (r = parse_int(p, &hi)) < 0) { free(k.v); return fail(p, r == -2 ? "repetition count too large" : "expected a number"); }
                } else {
                    hi = lo;
                }
                space(p, false);
                if (cur(p) != '}') { free(k.v); return fail(p, "expected '}'"); }
                p->i++;
                if (hi >= 0 && hi < lo) { free(k.v); return fail(p, "repetition max below min"); }
                x = gast_rep(p->a, x, lo, hi);
            } else break;
        }
        if (gram_ilist_push(&k, x) < 0) { free(k.v); p->a->oom = true; return -1; }
    }
    int s = gast_seq(p->a, k.v, k.n);
    free(k.v);
    return s;
}

static int parse_alts(gp *p, bool nested, int depth) {
    gram_ilist k = {0};
    for (;;) {
        int s = parse_seq(p, nested, depth);
        if (s < 0 || gram_ilist_push(&k, s) < 0) { free(k.v); return -1; }
        space(p, nested);
        if (cur(p) != '|') break;
        p->i++;
        space(p, true);
    }
    int a = gast_alt(p->a, k.v, k.n);
    free(k.v);
    return a;
}

int gram_compile_gbnf(const gram_vocab *v, const char *src, size_t len, gram_grammar **out, sw_err *err) {
    *out = NULL;
    gram_ast a;
    gast_init(&a);
    gp p = {src, len, 0, &a, err, 0, 1};
    space(&p, true);
    while (!eof(&p) && p.rc == 0) {
        size_t b = p.i;
        while (!eof(&p) && is_name(cur(&p))) p.i++;
        if (p.i == b) { fail(&p, "expected a rule name"); break; }
        int r = gast_rule(&a, src + b, p.i - b);
        space(&p, false);
        if (p.i + 3 > p.n || strncmp(src + p.i, "::=", 3)) { fail(&p, "expected '::='"); break; }
        p.i += 3;
        space(&p, true);
        int body = parse_alts(&p, false, 0);
        if (body < 0 || r < 0) { if (!p.rc) p.rc = sw_err_set(err, SW_ERR_NOMEM, "gbnf: out of memory"); break; }
        if (a.rules[r].body >= 0) { p.i = b; fail(&p, "rule defined twice"); break; }
        a.rules[r].body = body;
        space(&p, true);
    }
    int rc = p.rc;
    if (rc == 0) {
        int root = -1;
        for (int i = 0; i < a.n_r; i++)
            if (!strcmp(a.rules[i].name, "root")) root = i;
        if (root < 0 || a.rules[root].body < 0) rc = sw_err_set(err, SW_ERR_FORMAT, "gbnf: no 'root' rule");
        else rc = gram_build(v, &a, root, out, err);
    }
    gast_free(&a);
    return rc;
}
