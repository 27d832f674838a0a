/* gram_schema.c — JSON Schema (jansson) -> grammar AST, and the free-form JSON grammar.
 * Supported: type (incl. arrays of types), enum, const, anyOf, oneOf (as anyOf: the
 * "exactly one" part is not enforced), allOf with one branch, local $ref (JSON pointers
 * into the document: #, #/$defs/x, #/definitions/x, ...; recursive refs become recursive
 * rules), properties (emitted in schema order; optional ones may be left out; extra
 * properties, when allowed, come after the listed ones and may not reuse a listed name),
 * required (a required name that is not listed is expected after the listed ones, with
 * the additionalProperties schema), additionalProperties
 * (false, a schema, or true/absent = any value), items (schema or false), prefixItems,
 * minItems, maxItems, minLength, maxLength (code points; an escape counts as one), pattern
 * (regex without lookaround, unanchored as the spec says), format (date, time, date-time,
 * email, uuid, uri), minimum, maximum, exclusiveMinimum, exclusiveMaximum (integers
 * exactly, with any integer-valued bound; numbers exactly for integer-valued bounds, no
 * exponent form then; unbounded numbers have at most 16 integer and 16 fraction digits and
 * a 3-digit exponent). Whitespace between tokens: up to GRAM_JSON_WS characters.
 * Annotations (title, description, default, examples, $schema, $id, $comment, ...) are
 * ignored; keywords that constrain values but cannot be enforced are refused with an
 * error that names them (SW_ERR_UNSUPPORTED). */
#include "grammar/gram_internal.h"
#include <math.h>
#include <stdio.h>

#define GRAM_JSON_WS 20
#define SC_MAX_DEPTH 64
#define SC_MAX_INLINE 2000   /* max bounded repetition (lengths, item counts) */

static const char *const unsupported_kw[] = {
    "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "dependencies",
    "patternProperties", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contains",
    "minContains", "maxContains", "multipleOf", "minProperties", "maxProperties", "$dynamicRef",
    "$recursiveRef", "additionalItems", "contentSchema", NULL};
/* keywords whose value constrains instances (anything else is an annotation) */
static const char *const type_kw[] = {
    "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "type", "enum", "const", "uniqueItems", NULL};

typedef struct sref { char *ptr; int rule; } sref;
typedef struct sc {
    gram_ast *a;
    const json_t *root;
    sw_err *err;
    int rc;
    int r_value, r_string, r_number, r_integer;
    sref *refs; int n_refs, cap_refs;
} sc;

static int sfail(sc *c, int code, const char *fmt, const char *arg) {
    if (!c->rc) {
        char m[400];
        snprintf(m, sizeof m, fmt, arg);
        c->rc = sw_err_set(c->err, code, "schema: %s", m);
    }
    return -1;
}

static bool in_list(const char *k, const char *const *l) {
    for (; *l; l++)
        if (!strcmp(k, *l)) return true;
    return false;
}

/* ---- building blocks ---- */
static int ws(sc *c) {
    gram_bset s = {{0}};
    gram_bset_add(&s, ' '); gram_bset_add(&s, '\t'); gram_bset_add(&s, '\n'); gram_bset_add(&s, '\r');
    return gast_rep(c->a, gast_bytes(c->a, &s), 0, GRAM_JSON_WS);
}
static int lit(sc *c, const char *s) { return gast_lit(c->a, s, strlen(s)); }
static int range(sc *c, unsigned lo, unsigned hi) {
    gram_bset s = {{0}};
    gram_bset_range(&s, lo, hi);
    return gast_bytes(c->a, &s);
}
static int digits(sc *c, int min, int max) { return gast_rep(c->a, range(c, '0', '9'), min, max); }

/* A named rule with the given body; returns a reference to it. */
static int as_rule(sc *c, const char *name, int body) {
    int r = gast_rule_new(c->a, name);
    if (r < 0 || body < 0) { c->a->oom = true; return -1; }
    c->a->rules[r].body = body;
    return gast_ref(c->a, r);
}

/* One character of a JSON string's content: printable UTF-8 but " and \, or an escape. */
static int string_char(sc *c) {
    gram_ilist alts = {0};
    gram_cprange rr[3] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}}; /* not " or \ */
    int plain = gast_codepoints(c->a, rr, 3);
    gram_bset esc = {{0}};
    const char *e = "\"\\/bfnrt";
    for (; *e; e++) gram_bset_add(&esc, (unsigned char)*e);
    gram_bset hex = {{0}};
    gram_bset_range(&hex, '0', '9'); gram_bset_range(&hex, 'a', 'f'); gram_bset_range(&hex, 'A', 'F');
    int u = gast_seq2(c->a, gast_byte(c->a, 'u'), gast_rep(c->a, gast_bytes(c->a, &hex), 4, 4));
    int escape = gast_seq2(c->a, gast_byte(c->a, '\\'), gast_alt2(c->a, gast_bytes(c->a, &esc), u));
    gram_ilist_push(&alts, plain);
    gram_ilist_push(&alts, escape);
    int n = gast_alt(c->a, alts.v, alts.n);
    free(alts.v);
    return n;
}

static int string_rule(sc *c) {
    if (c->r_string < 0) {
        int body = gast_seq3(c->a, gast_byte(c->a, '"'), gast_rep(c->a, string_char(c), 0, -1), gast_byte(c->a, '"'));
        c->r_string = gast_rule_new(c->a, "string");
        if (c->r_string < 0) return -1;
        c->a->rules[c->r_string].body = body;
    }
    return gast_ref(c->a, c->r_string);
}

/* -?(0|[1-9][0-9]{0,15}): at most 16 digits, as llama.cpp's schema converter does, so a
 * model cannot run on with digits forever (numbers with bounds are exact instead) */
static int int_part(sc *c) {
    return gast_seq2(c->a, gast_opt(c->a, gast_byte(c->a, '-')),
                     gast_alt2(c->a, gast_byte(c->a, '0'), gast_seq2(c->a, range(c, '1', '9'), digits(c, 0, 15))));
}
static int zero_frac(sc *c) { return gast_opt(c->a, gast_seq2(c->a, gast_byte(c->a, '.'), gast_rep(c->a, gast_byte(c->a, '0'), 1, -1))); }

static int number_rule(sc *c) {
    if (c->r_number < 0) {
        int frac = gast_opt(c->a, gast_seq2(c->a, gast_byte(c->a, '.'), digits(c, 1, 16)));
        gram_bset e = {{0}}, pm = {{0}};
        gram_bset_add(&e, 'e'); gram_bset_add(&e, 'E'); gram_bset_add(&pm, '+'); gram_bset_add(&pm, '-');
        int ex = gast_opt(c->a, gast_seq3(c->a, gast_bytes(c->a, &e), gast_opt(c->a, gast_bytes(c->a, &pm)), digits(c, 1, 3)));
        int body = gast_seq3(c->a, int_part(c), frac, ex);
        if ((c->r_number = gast_rule_new(c->a, "number")) < 0) return -1;
        c->a->rules[c->r_number].body = body;
    }
    return gast_ref(c->a, c->r_number);
}

static int integer_rule(sc *c) {
    if (c->r_integer < 0) {
        int body = gast_seq2(c->a, int_part(c), zero_frac(c));
        if ((c->r_integer = gast_rule_new(c->a, "integer")) < 0) return -1;
        c->a->rules[c->r_integer].body = body;
    }
    return gast_ref(c->a, c->r_integer);
}

static int value_rule(sc *c);

/* "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}" */
static int generic_object(sc *c) {
    int kv1 = gast_seq(c->a, (int[]){string_rule(c), ws(c), gast_byte(c->a, ':'), ws(c), value_rule(c), ws(c)}, 6);
    int kvn = gast_seq(c->a, (int[]){gast_byte(c->a, ','), ws(c), string_rule(c), ws(c), gast_byte(c->a, ':'), ws(c), value_rule(c), ws(c)}, 8);
    int body = gast_opt(c->a, gast_seq2(c->a, kv1, gast_rep(c->a, kvn, 0, -1)));
    return gast_seq(c->a, (int[]){gast_byte(c->a, '{'), ws(c), body, gast_byte(c->a, '}')}, 4);
}
static int generic_array(sc *c) {
    int v1 = gast_seq2(c->a, value_rule(c), ws(c));
    int vn = gast_seq(c->a, (int[]){gast_byte(c->a, ','), ws(c), value_rule(c), ws(c)}, 4);
    int body = gast_opt(c->a, gast_seq2(c->a, v1, gast_rep(c->a, vn, 0, -1)));
    return gast_seq(c->a, (int[]){gast_byte(c->a, '['), ws(c), body, gast_byte(c->a, ']')}, 4);
}

static int value_rule(sc *c) {
    if (c->r_value < 0) {
        if ((c->r_value = gast_rule_new(c->a, "value")) < 0) return -1;
        int alts[7] = {generic_object(c), generic_array(c), string_rule(c), number_rule(c), lit(c, "true"), lit(c, "false"), lit(c, "null")};
        int body = gast_alt(c->a, alts, 7);
        if (body < 0) return -1;
        c->a->rules[c->r_value].body = body;
    }
    return gast_ref(c->a, c->r_value);
}

/* ---- integer ranges as digit grammars ---- */
/* Same-length decimal strings x <= y (no sign): all strings of that length between them. */
static int digit_range(sc *c, const char *x, const char *y, int n) {
    if (n == 0) return gast_empty(c->a);
    bool xz = true, y9 = true;
    for (int i = 1; i < n; i++) { xz &= x[i] == '0'; y9 &= y[i] == '9'; }
    if (x[0] == y[0]) return gast_seq2(c->a, gast_byte(c->a, (unsigned char)x[0]), digit_range(c, x + 1, y + 1, n - 1));
    if (xz && y9) return gast_seq2(c->a, range(c, (unsigned char)x[0], (unsigned char)y[0]), digits(c, n - 1, n - 1));
    char nine[24], zero[24];
    memset(nine, '9', sizeof nine);
    memset(zero, '0', sizeof zero);
    gram_ilist alts = {0};
    gram_ilist_push(&alts, gast_seq2(c->a, gast_byte(c->a, (unsigned char)x[0]), digit_range(c, x + 1, nine, n - 1)));
    if (y[0] - x[0] > 1) gram_ilist_push(&alts, gast_seq2(c->a, range(c, (unsigned char)(x[0] + 1), (unsigned char)(y[0] - 1)), digits(c, n - 1, n - 1)));
    gram_ilist_push(&alts, gast_seq2(c->a, gast_byte(c->a, (unsigned char)y[0]), digit_range(c, zero, y + 1, n - 1)));
    int r = gast_alt(c->a, alts.v, alts.n);
    free(alts.v);
    return r;
}

/* Non-negative integers a..b written without leading zeros (b < 0: unbounded). */
static int uint_range(sc *c, int64_t a, int64_t b) {
    if (b >= 0 && b < a) return gast_nothing(c->a);
    char sa[24], sb[24];
    int la = snprintf(sa, sizeof sa, "%lld", (long long)a);
    gram_ilist alts = {0};
    int lb = b >= 0 ? snprintf(sb, sizeof sb, "%lld", (long long)b) : 20;
    for (int d = la; d <= lb && d <= 19; d++) {
        char lo[24], hi[24];
        if (d == la) memcpy(lo, sa, (size_t)d + 1);
        else { lo[0] = '1'; memset(lo + 1, '0', (size_t)d - 1); lo[d] = 0; }
        if (b >= 0 && d == lb) memcpy(hi, sb, (size_t)d + 1);
        else { memset(hi, '9', (size_t)d); hi[d] = 0; }
        if (b < 0 && d > la) { /* every longer number */
            gram_ilist_push(&alts, gast_seq2(c->a, range(c, '1', '9'), digits(c, la, -1)));
            break;
        }
        gram_ilist_push(&alts, digit_range(c, lo, hi, d));
    }
    int r = gast_alt(c->a, alts.v, alts.n);
    free(alts.v);
    return r;
}

/* Magnitudes m = I + F (I integer part, F fraction) with lower bound A (excl: m > A) and
 * upper bound B (B < 0: none; excl: m < B), A and B integers >= 0. integer: F must be 0. */
static int magnitude(sc *c, int64_t A, bool aex, int64_t B, bool bex, bool integer) {
    int anyf = integer ? zero_frac(c) : gast_opt(c->a, gast_seq2(c->a, gast_byte(c->a, '.'), digits(c, 1, -1)));
    int nzf = gast_seq(c->a, (int[]){gast_byte(c->a, '.'), digits(c, 0, -1), range(c, '1', '9'), digits(c, 0, -1)}, 4);
    gram_ilist alts = {0};
    if (integer) {
        int64_t lo = aex ? A + 1 : A, hi = B < 0 ? -1 : (bex ? B - 1 : B);
        if (hi < 0 && B >= 0) { free(alts.v); return gast_nothing(c->a); }
        int r = gast_seq2(c->a, uint_range(c, lo, hi), zero_frac(c));
        return r;
    }
    /* I strictly inside: any fraction */
    int64_t ilo = aex ? A + 1 : A, ihi = B < 0 ? -1 : B - 1;
    if (B < 0 || ihi >= ilo) gram_ilist_push(&alts, gast_seq2(c->a, uint_range(c, ilo, ihi), anyf));
    /* I == A with a non-zero fraction when the lower bound is exclusive (and A < B) */
    if (aex && (B < 0 || A < B)) gram_ilist_push(&alts, gast_seq2(c->a, uint_range(c, A, A), nzf));
    /* I == B with a zero fraction when the upper bound is inclusive */
    if (B >= 0 && !bex && (aex ? B > A : B >= A)) gram_ilist_push(&alts, gast_seq2(c->a, uint_range(c, B, B), zero_frac(c)));
    int r = gast_alt(c->a, alts.v, alts.n);
    free(alts.v);
    return r;
}

typedef struct bound { bool has, ex; int64_t v; } bound;

/* Numbers (or integers) in [lo, hi] (each bound optional / exclusive). */
static int number_range(sc *c, bound lo, bound hi, bool integer) {
    gram_ilist alts = {0};
    /* non-negative side: v = m */
    bool pos_ok = !(hi.has && (hi.v < 0 || (hi.v == 0 && hi.ex)));
    if (pos_ok) {
        int64_t A = 0;
        bool aex = false;
        if (lo.has && lo.v >= 0) { A = lo.v; aex = lo.ex; }
        int64_t B = hi.has ? hi.v : -1;
        gram_ilist_push(&alts, magnitude(c, A, aex, B, hi.has && hi.ex, integer));
    }
    /* negative side: v = -m, m > 0 */
    bool neg_ok = !(lo.has && (lo.v > 0 || (lo.v == 0)));
    if (neg_ok) {
        int64_t A = 0;
        bool aex = true;
        if (hi.has && hi.v < 0) { A = -hi.v; aex = hi.ex; }
        int64_t B = lo.has ? -lo.v : -1;
        gram_ilist_push(&alts, gast_seq2(c->a, gast_byte(c->a, '-'), magnitude(c, A, aex, B, lo.has && lo.ex, integer)));
    }
    int r = gast_alt(c->a, alts.v, alts.n);
    free(alts.v);
    return r;
}

static int get_bound(sc *c, const json_t *s, const char *kw, bool ex, bool is_lower, bool integer, bound *b) {
    const json_t *v = json_object_get(s, kw);
    if (!v) return 0;
    if (!json_is_number(v)) return sfail(c, SW_ERR_FORMAT, "'%s' must be a number", kw);
    double d = json_number_value(v);
    if (!(fabs(d) < 9e15)) return sfail(c, SW_ERR_UNSUPPORTED, "'%s' beyond +-9e15 is not supported", kw);
    int64_t x;
    bool bex = ex;
    if (d == floor(d)) x = (int64_t)d;
    else if (integer) { /* integers: round the bound inwards, inclusive */
        x = is_lower ? (int64_t)ceil(d) : (int64_t)floor(d);
        bex = false;
    } else return sfail(c, SW_ERR_UNSUPPORTED, "'%s' with a non-integer value for a number is not supported", kw);
    /* combine: keep the tighter bound */
    if (!b->has || (is_lower ? (x > b->v || (x == b->v && bex)) : (x < b->v || (x == b->v && bex)))) *b = (bound){true, bex, x};
    return 0;
}

static int numeric(sc *c, const json_t *s, bool integer) {
    bound lo = {0}, hi = {0};
    if (get_bound(c, s, "minimum", false, true, integer, &lo) < 0 || get_bound(c, s, "exclusiveMinimum", true, true, integer, &lo) < 0 ||
        get_bound(c, s, "maximum", false, false, integer, &hi) < 0 || get_bound(c, s, "exclusiveMaximum", true, false, integer, &hi) < 0)
        return -1;
    if (!lo.has && !hi.has) return integer ? integer_rule(c) : number_rule(c);
    return as_rule(c, integer ? "integer-range" : "number-range", number_range(c, lo, hi, integer));
}

/* ---- string formats ---- */
static int two(sc *c, char a0, char a1, char b0, char b1) { /* "a0a1".."b0b1" two digits */
    char x[3] = {a0, a1, 0}, y[3] = {b0, b1, 0};
    return digit_range(c, x, y, 2);
}
/* YYYY-MM-DD with the days of each month (February up to 29: leap years not checked) */
static int fmt_date(sc *c) {
    int m31 = gast_alt(c->a, (int[]){lit(c, "01"), lit(c, "03"), lit(c, "05"), lit(c, "07"), lit(c, "08"), lit(c, "10"), lit(c, "12")}, 7);
    int m30 = gast_alt(c->a, (int[]){lit(c, "04"), lit(c, "06"), lit(c, "09"), lit(c, "11")}, 4);
    int md = gast_alt(c->a, (int[]){gast_seq3(c->a, m31, gast_byte(c->a, '-'), two(c, '0', '1', '3', '1')),
                                    gast_seq3(c->a, m30, gast_byte(c->a, '-'), two(c, '0', '1', '3', '0')),
                                    gast_seq3(c->a, lit(c, "02"), gast_byte(c->a, '-'), two(c, '0', '1', '2', '9'))}, 3);
    return gast_seq3(c->a, digits(c, 4, 4), gast_byte(c->a, '-'), md);
}
static int fmt_time(sc *c) {
    gram_bset z = {{0}}, pm = {{0}};
    gram_bset_add(&z, 'Z'); gram_bset_add(&z, 'z'); gram_bset_add(&pm, '+'); gram_bset_add(&pm, '-');
    /* hh:mm:ss, the leap second :60 only after 23:59 (its UTC offset is not checked) */
    int hms = gast_alt2(c->a, gast_seq(c->a, (int[]){two(c, '0', '0', '2', '3'), gast_byte(c->a, ':'), two(c, '0', '0', '5', '9'), gast_byte(c->a, ':'), two(c, '0', '0', '5', '9')}, 5),
                        lit(c, "23:59:60"));
    int frac = gast_opt(c->a, gast_seq2(c->a, gast_byte(c->a, '.'), digits(c, 1, -1)));
    int off = gast_alt2(c->a, gast_bytes(c->a, &z), gast_seq(c->a, (int[]){gast_bytes(c->a, &pm), two(c, '0', '0', '2', '3'), gast_byte(c->a, ':'), two(c, '0', '0', '5', '9')}, 4));
    return gast_seq3(c->a, hms, frac, off);
}
static int fmt_node(sc *c, const char *f) {
    gram_bset hex = {{0}};
    gram_bset_range(&hex, '0', '9'); gram_bset_range(&hex, 'a', 'f'); gram_bset_range(&hex, 'A', 'F');
    if (!strcmp(f, "date")) return fmt_date(c);
    if (!strcmp(f, "time")) return fmt_time(c);
    if (!strcmp(f, "date-time")) {
        gram_bset t = {{0}};
        gram_bset_add(&t, 'T'); gram_bset_add(&t, 't');
        return gast_seq3(c->a, fmt_date(c), gast_bytes(c->a, &t), fmt_time(c));
    }
    if (!strcmp(f, "uuid")) {
        int h = gast_bytes(c->a, &hex);
        int g[9] = {gast_rep(c->a, h, 8, 8), gast_byte(c->a, '-'), gast_rep(c->a, h, 4, 4), gast_byte(c->a, '-'), gast_rep(c->a, h, 4, 4),
                    gast_byte(c->a, '-'), gast_rep(c->a, h, 4, 4), gast_byte(c->a, '-'), gast_rep(c->a, h, 12, 12)};
        return gast_seq(c->a, g, 9);
    }
    if (!strcmp(f, "email")) {
        /* local@domain: dot-atoms of [A-Za-z0-9!#$%&'*+/=?^_`{|}~-] (no leading, trailing or
         * double dots); domain labels of letters, digits and inner hyphens */
        gram_bset at = {{0}};
        gram_bset_range(&at, 'a', 'z'); gram_bset_range(&at, 'A', 'Z'); gram_bset_range(&at, '0', '9');
        for (const char *p = "!#$%&'*+=?^_`{|}~-"; *p; p++) gram_bset_add(&at, (unsigned char)*p);
        int atom = gast_rep(c->a, gast_bytes(c->a, &at), 1, -1);
        int local = gast_seq2(c->a, atom, gast_rep(c->a, gast_seq2(c->a, gast_byte(c->a, '.'), gast_rep(c->a, gast_bytes(c->a, &at), 1, -1)), 0, -1));
        /* a JSON-escaped '/' (\/) is also allowed in the local part */
        gram_bset an = {{0}}, anh = {{0}};
        gram_bset_range(&an, 'a', 'z'); gram_bset_range(&an, 'A', 'Z'); gram_bset_range(&an, '0', '9');
        anh = an;
        gram_bset_add(&anh, '-');
        int label = gast_seq2(c->a, gast_bytes(c->a, &an), gast_opt(c->a, gast_seq2(c->a, gast_rep(c->a, gast_bytes(c->a, &anh), 0, 62), gast_bytes(c->a, &an))));
        int domain = gast_seq2(c->a, label, gast_rep(c->a, gast_seq2(c->a, gast_byte(c->a, '.'), label), 0, -1));
        return gast_seq3(c->a, local, gast_byte(c->a, '@'), domain);
    }
    if (!strcmp(f, "uri")) {
        /* scheme ":" then URI characters (RFC 3986 unreserved / reserved / pct-encoded) */
        gram_bset sch = {{0}}, sch1 = {{0}}, u = {{0}};
        gram_bset_range(&sch1, 'a', 'z'); gram_bset_range(&sch1, 'A', 'Z');
        sch = sch1;
        gram_bset_range(&sch, '0', '9'); gram_bset_add(&sch, '+'); gram_bset_add(&sch, '-'); gram_bset_add(&sch, '.');
        u = sch;
        for (const char *p = "_~:/?#[]@!$&'()*+,;="; *p; p++) gram_bset_add(&u, (unsigned char)*p);
        int pct = gast_seq3(c->a, gast_byte(c->a, '%'), gast_bytes(c->a, &hex), gast_bytes(c->a, &hex));
        int ch = gast_alt(c->a, (int[]){gast_bytes(c->a, &u), pct, lit(c, "\\/")}, 3);
        return gast_seq(c->a, (int[]){gast_bytes(c->a, &sch1), gast_rep(c->a, gast_bytes(c->a, &sch), 0, -1), gast_byte(c->a, ':'), gast_rep(c->a, ch, 0, -1)}, 4);
    }
    return sfail(c, SW_ERR_UNSUPPORTED, "format '%s' is not supported", f);
}

static int get_count(sc *c, const json_t *s, const char *kw, int64_t *out) {
    const json_t *v = json_object_get(s, kw);
    if (!v) return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || d < 0 || d != floor(d)) return sfail(c, SW_ERR_FORMAT, "'%s' must be a non-negative integer", kw);
    if (d > SC_MAX_INLINE) {
        if (!strncmp(kw, "max", 3)) return 0; /* a huge max is no max */
        return sfail(c, SW_ERR_UNSUPPORTED, "'%s' above 2000 is not supported", kw);
    }
    *out = (int64_t)d;
    return 0;
}

static int string_node(sc *c, const json_t *s) {
    const json_t *pat = json_object_get(s, "pattern"), *fmt = json_object_get(s, "format");
    int64_t mn = 0, mx = -1;
    if (get_count(c, s, "minLength", &mn) < 0 || get_count(c, s, "maxLength", &mx) < 0) return -1;
    bool lengths = mn > 0 || mx >= 0;
    if (pat && fmt) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "'pattern' together with 'format' is not supported");
    if (pat) {
        if (!json_is_string(pat)) return sfail(c, SW_ERR_FORMAT, "%s", "'pattern' must be a string");
        if (lengths) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "'minLength'/'maxLength' together with 'pattern' is not supported");
        int node;
        int rc = gram_regex_ast(c->a, json_string_value(pat), json_string_length(pat), true, true, &node, c->err);
        if (rc != SW_OK) { c->rc = rc; return -1; }
        return as_rule(c, "pattern", gast_seq3(c->a, gast_byte(c->a, '"'), node, gast_byte(c->a, '"')));
    }
    if (fmt) {
        if (!json_is_string(fmt)) return sfail(c, SW_ERR_FORMAT, "%s", "'format' must be a string");
        if (lengths) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "'minLength'/'maxLength' together with 'format' is not supported");
        int node = fmt_node(c, json_string_value(fmt));
        if (node < 0) return -1;
        return as_rule(c, "format", gast_seq3(c->a, gast_byte(c->a, '"'), node, gast_byte(c->a, '"')));
    }
    if (!lengths) return string_rule(c);
    if (mx >= 0 && mx < mn) return gast_nothing(c->a);
    return as_rule(c, "string-len", gast_seq3(c->a, gast_byte(c->a, '"'), gast_rep(c->a, string_char(c), (int)mn, (int)mx), gast_byte(c->a, '"')));
}

static int schema(sc *c, const json_t *s, int depth);

/* JSON text of a value, whitespace allowed between tokens, object keys in order. */
static int literal(sc *c, const json_t *v) {
    if (json_is_object(v)) {
        gram_ilist k = {0};
        gram_ilist_push(&k, gast_byte(c->a, '{'));
        gram_ilist_push(&k, ws(c));
        const char *key;
        json_t *x;
        bool first = true;
        json_object_foreach((json_t *)v, key, x) {
            if (!first) { gram_ilist_push(&k, gast_byte(c->a, ',')); gram_ilist_push(&k, ws(c)); }
            first = false;
            json_t *ks = json_string(key);
            char *kd = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
            gram_ilist_push(&k, kd ? lit(c, kd) : -1);
            free(kd);
            json_decref(ks);
            gram_ilist_push(&k, ws(c));
            gram_ilist_push(&k, gast_byte(c->a, ':'));
            gram_ilist_push(&k, ws(c));
            gram_ilist_push(&k, literal(c, x));
            gram_ilist_push(&k, ws(c));
        }
        gram_ilist_push(&k, gast_byte(c->a, '}'));
        int r = gast_seq(c->a, k.v, k.n);
        free(k.v);
        return r;
    }
    if (json_is_array(v)) {
        gram_ilist k = {0};
        gram_ilist_push(&k, gast_byte(c->a, '['));
        gram_ilist_push(&k, ws(c));
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) { gram_ilist_push(&k, gast_byte(c->a, ',')); gram_ilist_push(&k, ws(c)); }
            gram_ilist_push(&k, literal(c, json_array_get(v, i)));
            gram_ilist_push(&k, ws(c));
        }
        gram_ilist_push(&k, gast_byte(c->a, ']'));
        int r = gast_seq(c->a, k.v, k.n);
        free(k.v);
        return r;
    }
    double d = json_is_number(v) ? json_number_value(v) : 0;
    if (json_is_number(v) && d == floor(d) && fabs(d) < 9e15) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)d);
        return gast_seq2(c->a, lit(c, b), zero_frac(c)); /* 1 == 1.0 */
    }
    char *t = json_dumps(v, JSON_ENCODE_ANY);
    if (!t) { c->a->oom = true; return -1; }
    int r = lit(c, t);
    free(t);
    return r;
}

static bool type_matches(const json_t *v, const char *type) {
    if (!strcmp(type, "string")) return json_is_string(v);
    if (!strcmp(type, "number")) return json_is_number(v);
    if (!strcmp(type, "integer")) return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    if (!strcmp(type, "boolean")) return json_is_boolean(v);
    if (!strcmp(type, "null")) return json_is_null(v);
    if (!strcmp(type, "object")) return json_is_object(v);
    if (!strcmp(type, "array")) return json_is_array(v);
    return false;
}

/* One string-content character other than the ASCII bytes in `not` (a 128-entry table). */
static int char_except(sc *c, const bool *not) {
    gram_cprange r[130];
    int n = 0;
    for (unsigned x = 0x20; x < 0x80; x++) {
        if (x == '"' || x == '\\' || not[x]) continue;
        if (n && r[n - 1].hi == x - 1) r[n - 1].hi = x;
        else r[n++] = (gram_cprange){x, x};
    }
    r[n++] = (gram_cprange){0x80, 0x10FFFF};
    gram_bset esc = {{0}}, hex = {{0}};
    for (const char *e = "\"\\/bfnrt"; *e; e++) gram_bset_add(&esc, (unsigned char)*e);
    gram_bset_range(&hex, '0', '9'); gram_bset_range(&hex, 'a', 'f'); gram_bset_range(&hex, 'A', 'F');
    int u = gast_seq2(c->a, gast_byte(c->a, 'u'), gast_rep(c->a, gast_bytes(c->a, &hex), 4, 4));
    int escape = gast_seq2(c->a, gast_byte(c->a, '\\'), gast_alt2(c->a, gast_bytes(c->a, &esc), u));
    return gast_alt2(c->a, gast_codepoints(c->a, r, n), escape);
}

/* The rest of a JSON string (content then closing quote) whose content is not one of the
 * keys (printable ASCII without escapes) that have `d` bytes equal to key[0][0..d). */
static int string_except(sc *c, const char *const *keys, int n, int d) {
    gram_ilist alts = {0};
    bool child[128] = {0}, terminal = false;
    for (int i = 0; i < n; i++) {
        if (!keys[i]) continue;
        unsigned char b = (unsigned char)keys[i][d];
        if (!b) terminal = true;
        else child[b] = true;
    }
    if (!terminal) gram_ilist_push(&alts, gast_byte(c->a, '"'));
    for (unsigned b = 0x20; b < 0x80; b++) {
        if (!child[b]) continue;
        const char **sub = malloc((size_t)n * sizeof *sub);
        if (!sub) { free(alts.v); c->a->oom = true; return -1; }
        for (int i = 0; i < n; i++) sub[i] = keys[i] && (unsigned char)keys[i][d] == b ? keys[i] : NULL;
        gram_ilist_push(&alts, gast_seq2(c->a, gast_byte(c->a, b), string_except(c, sub, n, d + 1)));
        free(sub);
    }
    gram_ilist_push(&alts, gast_seq3(c->a, char_except(c, child), gast_rep(c->a, string_char(c), 0, -1), gast_byte(c->a, '"')));
    int r = gast_alt(c->a, alts.v, alts.n);
    free(alts.v);
    return r;
}

static bool plain_key(const char *k) {
    if (strlen(k) > 64) return false; /* long keys: not excluded (keeps the recursion short) */
    for (; *k; k++)
        if ((unsigned char)*k < 0x20 || (unsigned char)*k >= 0x80 || *k == '"' || *k == '\\') return false;
    return true;
}

typedef struct prop { const char *key; const json_t *schema; bool required; } prop;

static int object_node(sc *c, const json_t *s, int depth) {
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required"),
                 *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return sfail(c, SW_ERR_FORMAT, "%s", "'properties' must be an object");
    if (req && !json_is_array(req)) return sfail(c, SW_ERR_FORMAT, "%s", "'required' must be an array");
    if (!props && !req && (!addl || json_is_true(addl))) return value_rule(c) >= 0 ? as_rule(c, "object", generic_object(c)) : -1;
    size_t np = props ? json_object_size(props) : 0, nr = req ? json_array_size(req) : 0;
    if (np + nr > 200) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "more than 200 'properties' are not supported");
    /* listed properties in schema order, then required names that are not listed (their
     * value follows additionalProperties) */
    prop *pl = calloc(np + nr + 1, sizeof *pl);
    int *kv = calloc(np + nr + 1, sizeof(int));
    const char **keys = calloc(np + nr + 1, sizeof(char *));
    if (!pl || !kv || !keys) { free(pl); free(kv); free(keys); c->a->oom = true; return -1; }
    int n = 0;
    const char *key;
    json_t *ps;
    json_object_foreach((json_t *)props, key, ps) pl[n++] = (prop){key, ps, false};
    for (size_t r = 0; r < nr; r++) {
        const json_t *x = json_array_get(req, r);
        if (!json_is_string(x)) { free(pl); free(kv); free(keys); return sfail(c, SW_ERR_FORMAT, "%s", "'required' entries must be strings"); }
        int k = 0;
        while (k < n && strcmp(pl[k].key, json_string_value(x))) k++;
        if (k == n) pl[n++] = (prop){json_string_value(x), addl ? addl : json_true(), false};
        pl[k].required = true;
    }
    bool approx_keys = false, impossible = false;
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        keys[k] = pl[k].key;
        approx_keys |= !plain_key(pl[k].key);
        if (json_is_false(pl[k].schema)) { kv[k] = -1; impossible |= pl[k].required; continue; }
        json_t *ks = json_string(pl[k].key);
        char *kd = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        int val = schema(c, pl[k].schema, depth + 1);
        kv[k] = kd && val >= 0 ? gast_seq(c->a, (int[]){lit(c, kd), ws(c), gast_byte(c->a, ':'), ws(c), val}, 5) : -1;
        free(kd);
        if (kv[k] < 0) rc = -1;
    }
    /* additional properties: a key that is none of the listed ones (exactly, for keys of
     * printable ASCII; other keys are not excluded), then a value of the schema */
    int addkv = -1;
    if (rc == 0 && !impossible && (!addl || !json_is_false(addl))) {
        int val = addl ? schema(c, addl, depth + 1) : value_rule(c);
        int kstr = approx_keys || n == 0 ? string_rule(c) : gast_seq2(c->a, gast_byte(c->a, '"'), string_except(c, keys, n, 0));
        if (val < 0) rc = -1;
        else addkv = gast_seq(c->a, (int[]){as_rule(c, "key", kstr), ws(c), gast_byte(c->a, ':'), ws(c), val}, 5);
    }
    bool *required = malloc((size_t)n + 1);
    if (rc == 0 && required)
        for (int k = 0; k < n; k++) required[k] = pl[k].required;
    free(pl);
    free(keys);
    if (rc < 0 || !required || impossible) { free(kv); free(required); if (!required) c->a->oom = true; return impossible && rc == 0 ? gast_nothing(c->a) : -1; }
    /* S: after at least one property; F: the first property. Built from the end. */
    int S = addkv >= 0 ? gast_rep(c->a, gast_seq3(c->a, gast_byte(c->a, ','), ws(c), gast_seq2(c->a, addkv, ws(c))), 0, -1) : gast_empty(c->a);
    int F = addkv >= 0 ? gast_opt(c->a, gast_seq3(c->a, addkv, ws(c), S)) : gast_empty(c->a);
    for (int k = n - 1; k >= 0; k--) {
        if (kv[k] < 0) continue;
        int item = gast_seq2(c->a, kv[k], ws(c));
        int withc = gast_seq3(c->a, gast_byte(c->a, ','), ws(c), item);
        /* S is used twice below: a rule keeps the automaton linear in the property count */
        if (!required[k] && k > 0) S = as_rule(c, "props", S);
        int nS = required[k] ? gast_seq2(c->a, withc, S) : gast_seq2(c->a, gast_opt(c->a, withc), S);
        int first = gast_seq2(c->a, item, S);
        int nF = required[k] ? first : gast_alt2(c->a, first, F);
        S = nS;
        F = nF;
    }
    free(kv);
    free(required);
    return as_rule(c, "object", gast_seq(c->a, (int[]){gast_byte(c->a, '{'), ws(c), F, gast_byte(c->a, '}')}, 4));
}

static int array_node(sc *c, const json_t *s, int depth) {
    const json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems"),
                 *uniq = json_object_get(s, "uniqueItems");
    if (uniq && json_is_true(uniq)) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "'uniqueItems' is not supported");
    if (items && json_is_array(items)) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "'items' as an array (use prefixItems) is not supported");
    if (prefix && !json_is_array(prefix)) return sfail(c, SW_ERR_FORMAT, "%s", "'prefixItems' must be an array");
    int64_t mn = 0, mx = -1;
    if (get_count(c, s, "minItems", &mn) < 0 || get_count(c, s, "maxItems", &mx) < 0) return -1;
    int k = prefix ? (int)json_array_size(prefix) : 0;
    if (k > SC_MAX_INLINE) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "'prefixItems' longer than 2000 is not supported");
    if (mx >= 0 && mx < mn) return gast_nothing(c->a);
    bool tail_ok = !(items && json_is_false(items));
    int item = -1;
    if (tail_ok) item = items ? schema(c, items, depth + 1) : value_rule(c);
    if (tail_ok && item < 0) return -1;
    int *slot = calloc((size_t)k + 1, sizeof(int));
    if (!slot) { c->a->oom = true; return -1; }
    for (int i = 0; i < k; i++)
        if ((slot[i] = schema(c, json_array_get(prefix, (size_t)i), depth + 1)) < 0) { free(slot); return -1; }
    /* count limits: at most k elements when the tail is closed */
    if (!tail_ok && (mx < 0 || mx > k)) mx = k;
    if (mx >= 0 && mx < mn) { free(slot); return gast_nothing(c->a); }
    /* L(i): what may follow after i elements. Past max(k, mn) it is a bounded/unbounded
     * repetition of the tail item. */
    int64_t cut = k > mn ? k : mn;
    if (cut < 1) cut = 1;
    if (mx >= 0 && cut > mx) cut = mx;
    int L;
    {
        int rest_max = mx < 0 ? -1 : (int)(mx - cut);
        L = tail_ok && rest_max != 0 ? gast_rep(c->a, gast_seq(c->a, (int[]){gast_byte(c->a, ','), ws(c), item, ws(c)}, 4), 0, rest_max) : gast_empty(c->a);
    }
    for (int64_t i = cut - 1; i >= 1; i--) {
        int v = i < k ? slot[i] : item;
        int step = gast_seq(c->a, (int[]){gast_byte(c->a, ','), ws(c), v, ws(c), L}, 5);
        L = i >= mn ? gast_opt(c->a, step) : step;
        /* with i >= mn and i < k the element may be left out, and with it the rest */
    }
    int first = k > 0 ? slot[0] : item;
    int body;
    if (mx == 0 || first < 0) body = gast_empty(c->a);
    else {
        int elems = gast_seq3(c->a, first, ws(c), L);
        body = mn == 0 ? gast_opt(c->a, elems) : elems;
    }
    if (mn > 0 && (mx == 0 || first < 0)) { free(slot); return gast_nothing(c->a); }
    free(slot);
    return as_rule(c, "array", gast_seq(c->a, (int[]){gast_byte(c->a, '['), ws(c), body, gast_byte(c->a, ']')}, 4));
}

static int type_node(sc *c, const json_t *s, const char *type, int depth) {
    if (!strcmp(type, "string")) return string_node(c, s);
    if (!strcmp(type, "number")) return numeric(c, s, false);
    if (!strcmp(type, "integer")) return numeric(c, s, true);
    if (!strcmp(type, "boolean")) return gast_alt2(c->a, lit(c, "true"), lit(c, "false"));
    if (!strcmp(type, "null")) return lit(c, "null");
    if (!strcmp(type, "object")) return object_node(c, s, depth);
    if (!strcmp(type, "array")) return array_node(c, s, depth);
    return sfail(c, SW_ERR_FORMAT, "unknown type '%s'", type);
}

/* JSON pointer (RFC 6901, '#'-prefixed URI fragment) into the root document. */
static const json_t *resolve(sc *c, const char *ref) {
    if (ref[0] != '#') return NULL;
    const json_t *cur = c->root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof tok) {
            if (p[0] == '~' && p[1] == '0') { tok[n++] = '~'; p += 2; }
            else if (p[0] == '~' && p[1] == '1') { tok[n++] = '/'; p += 2; }
            else if (p[0] == '%' && p[1] && p[2]) {
                int h = 0;
                for (int k = 1; k <= 2; k++) {
                    char x = p[k];
                    h = h * 16 + (x >= '0' && x <= '9' ? x - '0' : (x | 32) >= 'a' && (x | 32) <= 'f' ? (x | 32) - 'a' + 10 : 0);
                }
                tok[n++] = (char)h;
                p += 3;
            } else tok[n++] = *p++;
        }
        tok[n] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, tok);
        else if (json_is_array(cur)) {
            char *end;
            long i = strtol(tok, &end, 10);
            cur = *end || n == 0 ? NULL : json_array_get(cur, (size_t)i);
        } else cur = NULL;
        if (!cur) return NULL;
    }
    return *p ? NULL : cur;
}

static int ref_node(sc *c, const char *ref, int depth) {
    for (int i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ptr, ref)) return gast_ref(c->a, c->refs[i].rule);
    const json_t *t = resolve(c, ref);
    if (!t) return sfail(c, SW_ERR_UNSUPPORTED, "$ref '%.200s' is not a local JSON pointer into this schema", ref);
    if (c->n_refs == c->cap_refs) {
        int nc = c->cap_refs ? c->cap_refs * 2 : 8;
        sref *q = realloc(c->refs, (size_t)nc * sizeof *q);
        if (!q) { c->a->oom = true; return -1; }
        c->refs = q;
        c->cap_refs = nc;
    }
    int r = gast_rule_new(c->a, "ref");
    char *dup = strdup(ref);
    if (r < 0 || !dup) { free(dup); c->a->oom = true; return -1; }
    c->refs[c->n_refs++] = (sref){dup, r};
    int body = schema(c, t, depth + 1); /* the rule exists already: recursion refers to it */
    if (body < 0) return -1;
    c->a->rules[r].body = body;
    return gast_ref(c->a, r);
}

/* The keys of s other than those in allowed that constrain values: first one, or NULL. */
static const char *sibling_constraint(const json_t *s, const char *self) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (!strcmp(k, self)) continue;
        if (in_list(k, type_kw) || in_list(k, unsupported_kw) || !strcmp(k, "$ref") || !strcmp(k, "anyOf") || !strcmp(k, "oneOf") || !strcmp(k, "allOf")) return k;
    }
    return NULL;
}

static int schema(sc *c, const json_t *s, int depth) {
    if (c->rc) return -1;
    if (depth > SC_MAX_DEPTH) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "schema nested too deeply");
    if (json_is_true(s)) return value_rule(c);
    if (json_is_false(s)) return gast_nothing(c->a);
    if (!json_is_object(s)) return sfail(c, SW_ERR_FORMAT, "%s", "a schema must be an object or a boolean");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (in_list(k, unsupported_kw)) return sfail(c, SW_ERR_UNSUPPORTED, "keyword '%s' is not supported", k);
        if (!strcmp(k, "uniqueItems") && json_is_true(v)) return sfail(c, SW_ERR_UNSUPPORTED, "keyword '%s' is not supported", k);
    }
    static const char *const combinators[] = {"$ref", "anyOf", "oneOf", "allOf"};
    for (int i = 0; i < 4; i++) {
        const json_t *x = json_object_get(s, combinators[i]);
        if (!x) continue;
        const char *sib = sibling_constraint(s, combinators[i]);
        if (sib) {
            char m[200];
            snprintf(m, sizeof m, "'%s' next to '%s'", combinators[i], sib);
            return sfail(c, SW_ERR_UNSUPPORTED, "%s is not supported", m);
        }
        if (i == 0) {
            if (!json_is_string(x)) return sfail(c, SW_ERR_FORMAT, "%s", "'$ref' must be a string");
            return ref_node(c, json_string_value(x), depth);
        }
        if (!json_is_array(x) || json_array_size(x) == 0) return sfail(c, SW_ERR_FORMAT, "'%s' must be a non-empty array", combinators[i]);
        if (i == 3) {
            if (json_array_size(x) != 1) return sfail(c, SW_ERR_UNSUPPORTED, "%s", "'allOf' with more than one branch is not supported");
            return schema(c, json_array_get(x, 0), depth + 1);
        }
        gram_ilist alts = {0};
        for (size_t j = 0; j < json_array_size(x); j++) {
            int b = schema(c, json_array_get(x, j), depth + 1);
            if (b < 0 || gram_ilist_push(&alts, b) < 0) { free(alts.v); return -1; }
        }
        int r = gast_alt(c->a, alts.v, alts.n);
        free(alts.v);
        return as_rule(c, combinators[i], r);
    }
    /* types */
    const char *types[8];
    int nt = 0;
    const json_t *t = json_object_get(s, "type");
    if (t && json_is_string(t)) types[nt++] = json_string_value(t);
    else if (t && json_is_array(t)) {
        for (size_t j = 0; j < json_array_size(t) && nt < 8; j++) {
            if (!json_is_string(json_array_get(t, j))) return sfail(c, SW_ERR_FORMAT, "%s", "'type' entries must be strings");
            types[nt++] = json_string_value(json_array_get(t, j));
        }
        if (nt == 0) return gast_nothing(c->a);
    } else if (t) return sfail(c, SW_ERR_FORMAT, "%s", "'type' must be a string or an array");
    else {
        static const char *all[6] = {"object", "array", "string", "number", "boolean", "null"};
        for (int j = 0; j < 6; j++) types[nt++] = all[j];
    }
    bool has_number = false;
    for (int j = 0; j < nt; j++) has_number |= !strcmp(types[j], "number");
    /* enum / const: the listed values of the allowed types */
    const json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    if (en || cn) {
        if (en && !json_is_array(en)) return sfail(c, SW_ERR_FORMAT, "%s", "'enum' must be an array");
        gram_ilist alts = {0};
        size_t nv = cn ? 1 : json_array_size(en);
        for (size_t j = 0; j < nv; j++) {
            const json_t *x = cn ? cn : json_array_get(en, j);
            if (cn && en) {
                bool found = false;
                for (size_t q = 0; q < json_array_size(en); q++) found |= json_equal(x, json_array_get(en, q));
                if (!found) continue;
            }
            bool ok = false;
            for (int q = 0; q < nt; q++) ok |= type_matches(x, types[q]);
            if (ok && gram_ilist_push(&alts, literal(c, x)) < 0) { free(alts.v); return -1; }
        }
        int r = gast_alt(c->a, alts.v, alts.n);
        free(alts.v);
        return r;
    }
    gram_ilist alts = {0};
    for (int j = 0; j < nt; j++) {
        if (has_number && !strcmp(types[j], "integer")) continue;
        int b = type_node(c, s, types[j], depth);
        if (b < 0 || gram_ilist_push(&alts, b) < 0) { free(alts.v); return -1; }
    }
    int r = gast_alt(c->a, alts.v, alts.n);
    free(alts.v);
    return r;
}

static int compile_root(const gram_vocab *v, const json_t *s, bool object_only, gram_grammar **out, sw_err *err) {
    *out = NULL;
    gram_ast a;
    gast_init(&a);
    sc c = {&a, s, err, 0, -1, -1, -1, -1, NULL, 0, 0};
    int root = gast_rule(&a, "root", 4);
    int body = object_only ? (value_rule(&c) >= 0 ? generic_object(&c) : -1) : schema(&c, s, 0);
    int rc = c.rc;
    if (!rc && (body < 0 || a.oom)) rc = sw_err_set(err, SW_ERR_NOMEM, "schema: out of memory");
    if (!rc) {
        a.rules[root].body = gast_seq3(&a, ws(&c), body, ws(&c));
        rc = gram_build(v, &a, root, out, err);
    }
    for (int i = 0; i < c.n_refs; i++) free(c.refs[i].ptr);
    free(c.refs);
    gast_free(&a);
    return rc;
}

int gram_compile_schema(const gram_vocab *v, const json_t *schema_doc, gram_grammar **out, sw_err *err) {
    return compile_root(v, schema_doc, false, out, err);
}

int gram_compile_schema_framed(const gram_vocab *v, const json_t *s, const gram_frame *f, gram_grammar **out, sw_err *err) {
    *out = NULL;
    if (f->min < 0 || (f->max >= 0 && f->max < f->min) || f->max > SC_MAX_INLINE)
        return sw_err_set(err, SW_ERR_ARG, "framed schema: bad item counts %d..%d", f->min, f->max);
    gram_ast a;
    gast_init(&a);
    sc c = {&a, s, err, 0, -1, -1, -1, -1, NULL, 0, 0};
    int root = gast_rule(&a, "root", 4);
    int item = gast_rule(&a, "item", 4);
    int body = schema(&c, s, 0);
    int rc = c.rc;
    if (!rc && (body < 0 || a.oom)) rc = sw_err_set(err, SW_ERR_NOMEM, "schema: out of memory");
    if (!rc) {
        a.rules[item].body = gast_seq(&a, (int[]){lit(&c, f->open), ws(&c), body, ws(&c), lit(&c, f->close)}, 5);
        int items = gast_ref(&a, item);
        if (f->max != 1)
            items = gast_seq2(&a, items, gast_rep(&a, gast_seq3(&a, lit(&c, f->sep), ws(&c), gast_ref(&a, item)),
                                                  f->min > 0 ? f->min - 1 : 0, f->max < 0 ? -1 : f->max - 1));
        if (f->min == 0) items = f->max == 0 ? gast_empty(&a) : gast_opt(&a, items);
        a.rules[root].body = gast_seq3(&a, lit(&c, f->prefix), items, lit(&c, f->suffix));
        rc = a.oom ? sw_err_set(err, SW_ERR_NOMEM, "schema: out of memory") : gram_build(v, &a, root, out, err);
    }
    for (int i = 0; i < c.n_refs; i++) free(c.refs[i].ptr);
    free(c.refs);
    gast_free(&a);
    return rc;
}

int gram_compile_json_object(const gram_vocab *v, gram_grammar **out, sw_err *err) {
    return compile_root(v, NULL, true, out, err);
}

int gram_compile_choice(const gram_vocab *v, const char *const *choices, int n, gram_grammar **out, sw_err *err) {
    *out = NULL;
    gram_ast a;
    gast_init(&a);
    int root = gast_rule(&a, "root", 4);
    gram_ilist alts = {0};
    for (int i = 0; i < n; i++) gram_ilist_push(&alts, gast_lit(&a, choices[i], strlen(choices[i])));
    int body = gast_alt(&a, alts.v, alts.n);
    free(alts.v);
    int rc;
    if (body < 0 || a.oom) rc = sw_err_set(err, SW_ERR_NOMEM, "choice: out of memory");
    else {
        a.rules[root].body = body;
        rc = gram_build(v, &a, root, out, err);
    }
    gast_free(&a);
    return rc;
}
