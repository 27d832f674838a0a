/* gram_regex.c — regular expressions (ECMAScript-style syntax, as JSON Schema `pattern`
 * and vLLM's guided_regex use) -> grammar AST. Supported: literals (UTF-8), `.`, classes
 * [..] with ranges / negation / \d \w \s inside, escapes \d \D \w \W \s \S \n \r \t \f
 * \v \0 \xHH \uHHHH \u{H..} and escaped punctuation, groups ( ) (?: ) (?<name> ),
 * alternation, quantifiers * + ? {n} {n,} {n,m} (lazy/possessive suffixes are accepted
 * and mean the same set of strings), ^ at the start and $ at the end of an alternative.
 * Refused (SW_ERR_UNSUPPORTED, named): lookaround, backreferences, \b \B, anchors
 * elsewhere. In JSON mode each character is matched in its JSON-escaped form inside a
 * string (`"` as \", `\` as \\, `/` also as \/, controls as \n or \u00XX); other
 * characters are matched literally only (a \uXXXX escape of a printable character is
 * not recognised). In search mode an alternative without ^ may be preceded, and one
 * without $ followed, by any characters (JSON Schema `pattern` semantics). */
#include "grammar/gram_internal.h"
#include <stdio.h>

#define RE_MAX_NEST 200
#define RE_MAX_REP 10000

typedef struct rp {
    const char *s; size_t n, i;
    gram_ast *a;
    bool json, search;
    sw_err *err;
    int rc;
} rp;

static int rfail(rp *p, int code, const char *what) {
    if (!p->rc) p->rc = sw_err_set(p->err, code, "regex: %s at offset %zu", what, p->i);
    return -1;
}

typedef struct cpset { gram_cprange *r; int n, cap; } cpset;
static int cs_add(cpset *c, uint32_t lo, uint32_t hi) {
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 8;
        gram_cprange *q = realloc(c->r, (size_t)nc * sizeof *q);
        if (!q) return -1;
        c->r = q;
        c->cap = nc;
    }
    c->r[c->n++] = (gram_cprange){lo, hi};
    return 0;
}

static int add_class_escape(cpset *c, char e) {
    switch (e) {
    case 'd': return cs_add(c, '0', '9');
    case 'w': return cs_add(c, 'a', 'z') | cs_add(c, 'A', 'Z') | cs_add(c, '0', '9') | cs_add(c, '_', '_');
    case 's':
        return cs_add(c, 9, 13) | cs_add(c, ' ', ' ') | cs_add(c, 0xA0, 0xA0) | cs_add(c, 0x1680, 0x1680) |
               cs_add(c, 0x2000, 0x200A) | cs_add(c, 0x2028, 0x2029) | cs_add(c, 0x202F, 0x202F) |
               cs_add(c, 0x205F, 0x205F) | cs_add(c, 0x3000, 0x3000) | cs_add(c, 0xFEFF, 0xFEFF);
    }
    return -1;
}

/* Node for a set of code points, JSON-escaped when p->json. Takes ownership of c->r. */
static int set_node(rp *p, cpset *c, bool negate) {
    if (!c->r && cs_add(c, 1, 0) < 0) { p->a->oom = true; return -1; } /* empty set */
    int n = gram_cp_normalize(&c->r, c->n, negate);
    if (n < 0) { free(c->r); p->a->oom = true; return -1; }
    int node;
    if (!p->json) {
        node = gast_codepoints(p->a, c->r, n);
    } else {
        gram_ilist alts = {0};
        cpset plain = {0};
        bool has[128] = {0};
        for (int i = 0; i < n; i++) {
            for (uint32_t x = c->r[i].lo; x <= c->r[i].hi && x < 128; x++) has[x] = true;
            uint32_t lo = c->r[i].lo < 0x20 ? 0x20 : c->r[i].lo;
            if (lo <= c->r[i].hi) {
                /* printable: literal, except " and \ which must be escaped */
                uint32_t hi = c->r[i].hi;
                if (lo <= '"' && hi >= '"') { if (lo < '"') cs_add(&plain, lo, '"' - 1); lo = '"' + 1; }
                if (lo <= '\\' && hi >= '\\') { if (lo < '\\') cs_add(&plain, lo, '\\' - 1); lo = '\\' + 1; }
                if (lo <= hi) cs_add(&plain, lo, hi);
            }
        }
        if (plain.n) gram_ilist_push(&alts, gast_codepoints(p->a, plain.r, plain.n));
        free(plain.r);
        if (has['"']) gram_ilist_push(&alts, gast_lit(p->a, "\\\"", 2));
        if (has['\\']) gram_ilist_push(&alts, gast_lit(p->a, "\\\\", 2));
        if (has['/']) gram_ilist_push(&alts, gast_lit(p->a, "\\/", 2));
        static const char short_esc[][2] = {{8, 'b'}, {12, 'f'}, {10, 'n'}, {13, 'r'}, {9, 't'}};
        for (int k = 0; k < 5; k++)
            if (has[(int)short_esc[k][0]]) { char e[2] = {'\\', short_esc[k][1]}; gram_ilist_push(&alts, gast_lit(p->a, e, 2)); }
        for (int x = 0; x < 0x20; x++) {
            if (!has[x]) continue;
            static const char *hx = "0123456789abcdef", *HX = "0123456789ABCDEF";
            char lo[6] = {'\\', 'u', '0', '0', hx[x >> 4], hx[x & 15]}, up[6] = {'\\', 'u', '0', '0', HX[x >> 4], HX[x & 15]};
            gram_ilist_push(&alts, gast_lit(p->a, lo, 6));
            if (memcmp(lo, up, 6)) gram_ilist_push(&alts, gast_lit(p->a, up, 6));
        }
        node = gast_alt(p->a, alts.v, alts.n);
        free(alts.v);
    }
    free(c->r);
    c->r = NULL;
    return node;
}

/* After a backslash: a single code point (>= 0), or -2 when it was a class escape added
 * to *c (\d \w \s, or negated via *neg), or -1 on error. */
static int32_t escape(rp *p, cpset *c, bool *neg) {
    if (p->i >= p->n) { rfail(p, SW_ERR_FORMAT, "trailing backslash"); return -1; }
    char e = p->s[p->i++];
    *neg = false;
    switch (e) {
    case 'd': case 'w': case 's':
        if (add_class_escape(c, e) < 0) { p->a->oom = true; return -1; }
        return -2;
    case 'D': case 'W': case 'S':
        *neg = true;
        if (add_class_escape(c, (char)(e + 32)) < 0) { p->a->oom = true; return -1; }
        return -2;
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    case 'b': case 'B': rfail(p, SW_ERR_UNSUPPORTED, "word boundary (\\b, \\B) is not supported"); return -1;
    case 'x': case 'u': {
        uint32_t v = 0;
        if (e == 'u' && p->i < p->n && p->s[p->i] == '{') {
            p->i++;
            int k = 0;
            while (p->i < p->n && p->s[p->i] != '}' && k < 7) { int h = gram_hexval(p->s[p->i]); if (h < 0) break; v = v * 16 + (uint32_t)h; p->i++; k++; }
            if (p->i >= p->n || p->s[p->i] != '}' || k == 0 || v > 0x10FFFF) { rfail(p, SW_ERR_FORMAT, "bad \\u{...} escape"); return -1; }
            p->i++;
            return (int32_t)v;
        }
        int nd = e == 'x' ? 2 : 4;
        for (int k = 0; k < nd; k++) {
            int h = p->i < p->n ? gram_hexval(p->s[p->i]) : -1;
            if (h < 0) { rfail(p, SW_ERR_FORMAT, "bad hex escape"); return -1; }
            v = v * 16 + (uint32_t)h;
            p->i++;
        }
        return (int32_t)v;
    }
    default:
        if (e >= '1' && e <= '9') { rfail(p, SW_ERR_UNSUPPORTED, "backreferences are not supported"); return -1; }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) { p->i--; rfail(p, SW_ERR_UNSUPPORTED, "unknown escape"); return -1; }
        p->i--;
        return gram_src_cp(p->s, p->n, &p->i);
    }
}

static int parse_class(rp *p) {
    p->i++; /* [ */
    bool neg = false;
    if (p->i < p->n && p->s[p->i] == '^') { neg = true; p->i++; }
    cpset c = {0}, sub = {0};
    bool first = true;
    while (p->i < p->n && (p->s[p->i] != ']' || (first && false))) {
        first = false;
        int32_t lo;
        if (p->s[p->i] == '[' && p->i + 1 < p->n && p->s[p->i + 1] == ':') { free(c.r); return rfail(p, SW_ERR_UNSUPPORTED, "POSIX classes are not supported"); }
        if (p->s[p->i] == '\\') {
            p->i++;
            bool eneg;
            sub.n = 0;
            lo = escape(p, &sub, &eneg);
            if (lo == -1) { free(c.r); free(sub.r); return -1; }
            if (lo == -2) {
                int m = gram_cp_normalize(&sub.r, sub.n, eneg);
                if (m < 0) { free(c.r); p->a->oom = true; return -1; }
                for (int k = 0; k < m; k++) cs_add(&c, sub.r[k].lo, sub.r[k].hi);
                free(sub.r);
                sub = (cpset){0};
                continue;
            }
        } else {
            lo = gram_src_cp(p->s, p->n, &p->i);
        }
        int32_t hi = lo;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            if (p->s[p->i] == '\\') {
                p->i++;
                bool eneg;
                hi = escape(p, &sub, &eneg);
                if (hi < 0) { free(c.r); free(sub.r); return hi == -2 ? rfail(p, SW_ERR_FORMAT, "class escape as range end") : -1; }
            } else {
                hi = gram_src_cp(p->s, p->n, &p->i);
            }
            if (hi < lo) { free(c.r); return rfail(p, SW_ERR_FORMAT, "reversed range in class"); }
        }
        if (cs_add(&c, (uint32_t)lo, (uint32_t)hi) < 0) { free(c.r); p->a->oom = true; return -1; }
    }
    free(sub.r);
    if (p->i >= p->n) { free(c.r); return rfail(p, SW_ERR_FORMAT, "unterminated class"); }
    p->i++;
    return set_node(p, &c, neg);
}

static int any_char(rp *p, bool with_newlines) {
    cpset c = {0};
    if (cs_add(&c, '\n', '\n') < 0 || cs_add(&c, '\r', '\r') < 0 || cs_add(&c, 0x2028, 0x2029) < 0) { free(c.r); p->a->oom = true; return -1; }
    if (with_newlines) c.n = 0;
    return set_node(p, &c, true);
}

static int parse_alt(rp *p, int depth);

static int parse_count(rp *p, int *out) {
    long v = 0;
    int k = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        v = v * 10 + (p->s[p->i++] - '0');
        if (v > RE_MAX_REP) return -2;
        k++;
    }
    if (!k) return -1;
    *out = (int)v;
    return 0;
}

static int parse_seq(rp *p, int depth) {
    gram_ilist k = {0};
    bool top = depth == 0, anch_start = false, anch_end = false;
    while (p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
        char c = p->s[p->i];
        int x;
        if (anch_end) { free(k.v); return rfail(p, SW_ERR_UNSUPPORTED, "'$' before the end of the pattern"); }
        if (c == '^') {
            if (!top || k.n || anch_start) { free(k.v); return rfail(p, SW_ERR_UNSUPPORTED, "'^' after the start of the pattern"); }
            anch_start = true;
            p->i++;
            continue;
        }
        if (c == '$') {
            if (!top) { free(k.v); return rfail(p, SW_ERR_UNSUPPORTED, "'$' inside a group"); }
            anch_end = true;
            p->i++;
            continue;
        }
        if (c == '(') {
            if (depth >= RE_MAX_NEST) { free(k.v); return rfail(p, SW_ERR_FORMAT, "groups nested too deeply"); }
            p->i++;
            if (p->i < p->n && p->s[p->i] == '?') {
                p->i++;
                char q = p->i < p->n ? p->s[p->i] : 0;
                if (q == ':') p->i++;
                else if (q == '=' || q == '!' || (q == '<' && p->i + 1 < p->n && (p->s[p->i + 1] == '=' || p->s[p->i + 1] == '!'))) { free(k.v); return rfail(p, SW_ERR_UNSUPPORTED, "lookaround is not supported"); }
                else if (q == '<' || (q == 'P' && p->i + 1 < p->n && p->s[p->i + 1] == '<')) {
                    while (p->i < p->n && p->s[p->i] != '>') p->i++;
                    if (p->i >= p->n) { free(k.v); return rfail(p, SW_ERR_FORMAT, "unterminated group name"); }
                    p->i++;
                } else { free(k.v); return rfail(p, SW_ERR_UNSUPPORTED, "unsupported group flag"); }
            }
            x = parse_alt(p, depth + 1);
            if (x < 0) { free(k.v); return -1; }
            if (p->i >= p->n || p->s[p->i] != ')') { free(k.v); return rfail(p, SW_ERR_FORMAT, "missing ')'"); }
            p->i++;
        } else if (c == '[') {
            x = parse_class(p);
        } else if (c == '.') {
            p->i++;
            x = any_char(p, false);
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (c == '{' && !(p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')) { p->i++; cpset cs = {0}; cs_add(&cs, '{', '{'); x = set_node(p, &cs, false); }
            else { free(k.v); return rfail(p, SW_ERR_FORMAT, "nothing to repeat"); }
        } else {
            cpset cs = {0};
            int32_t cp;
            bool neg = false;
            if (c == '\\') { p->i++; cp = escape(p, &cs, &neg); }
            else cp = gram_src_cp(p->s, p->n, &p->i);
            if (cp == -1) { free(k.v); free(cs.r); return -1; }
            if (cp >= 0 && cs_add(&cs, (uint32_t)cp, (uint32_t)cp) < 0) { free(k.v); free(cs.r); p->a->oom = true; return -1; }
            x = set_node(p, &cs, neg);
        }
        if (x < 0) { free(k.v); return -1; }
        /* quantifiers */
        while (p->i < p->n) {
            char q = p->s[p->i];
            int lo, hi;
            if (q == '*') { lo = 0; hi = -1; p->i++; }
            else if (q == '+') { lo = 1; hi = -1; p->i++; }
            else if (q == '?') { lo = 0; hi = 1; p->i++; }
            else if (q == '{' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9') {
                p->i++;
                int r = parse_count(p, &lo);
                if (r < 0) { free(k.v); return rfail(p, r == -2 ? SW_ERR_UNSUPPORTED : SW_ERR_FORMAT, r == -2 ? "repetition count too large" : "bad repetition"); }
                hi = lo;
                if (p->i < p->n && p->s[p->i] == ',') {
                    p->i++;
                    hi = -1;
                    if (p->i < p->n && p->s[p->i] != '}' && (r = parse_count(p, &hi)) < 0) { free(k.v); return rfail(p, r == -2 ? SW_ERR_UNSUPPORTED : SW_ERR_FORMAT, r == -2 ? "repetition count too large" : "bad repetition"); }
                }
                if (p->i >= p->n || p->s[p->i] != '}') { free(k.v); return rfail(p, SW_ERR_FORMAT, "missing '}'"); }
                p->i++;
                if (hi >= 0 && hi < lo) { free(k.v); return rfail(p, SW_ERR_FORMAT, "repetition max below min"); }
            } else break;
            if (p->i < p->n && (p->s[p->i] == '?' || p->s[p->i] == '+')) p->i++; /* lazy / possessive */
            x = gast_rep(p->a, x, lo, hi);
        }
        if (gram_ilist_push(&k, x) < 0) { free(k.v); p->a->oom = true; return -1; }
    }
    if (top && p->search) {
        /* unanchored ends match anywhere */
        int pre = anch_start ? gast_empty(p->a) : gast_rep(p->a, any_char(p, true), 0, -1);
        int body = gast_seq(p->a, k.v, k.n);
        int post = anch_end ? gast_empty(p->a) : gast_rep(p->a, any_char(p, true), 0, -1);
        free(k.v);
        return gast_seq3(p->a, pre, body, post);
    }
    int s = gast_seq(p->a, k.v, k.n);
    free(k.v);
    return s;
}

static int parse_alt(rp *p, int depth) {
    gram_ilist k = {0};
    for (;;) {
        int s = parse_seq(p, depth);
        if (s < 0 || gram_ilist_push(&k, s) < 0) { free(k.v); if (!p->rc) p->a->oom = true; return -1; }
        if (p->i < p->n && p->s[p->i] == '|') { p->i++; continue; }
        break;
    }
    int a = gast_alt(p->a, k.v, k.n);
    free(k.v);
    return a;
}

int gram_regex_ast(gram_ast *a, const char *re, size_t len, bool json_escaped, bool search, int *node, sw_err *err) {
    rp p = {re, len, 0, a, json_escaped, search, err, 0};
    int x = parse_alt(&p, 0);
    if (p.rc) return p.rc;
    if (x >= 0 && p.i < p.n) return rfail(&p, SW_ERR_FORMAT, "unbalanced ')'"), p.rc;
    if (x < 0 || a->oom) return sw_err_set(err, SW_ERR_NOMEM, "regex: out of memory");
    *node = x;
    return SW_OK;
}

int gram_compile_regex(const gram_vocab *v, const char *re, size_t len, gram_grammar **out, sw_err *err) {
    *out = NULL;
    gram_ast a;
    gast_init(&a);
    int root = gast_rule(&a, "root", 4), node = -1;
    int rc = gram_regex_ast(&a, re, len, false, false, &node, err);
    if (rc == SW_OK) {
        a.rules[root].body = node;
        rc = gram_build(v, &a, root, out, err);
    }
    gast_free(&a);
    return rc;
}
