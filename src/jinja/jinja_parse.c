/* jinja_parse.c — recursive-descent parser from the token stream to the AST (jnode).
 * Statements: if/elif/else, for (targets, `if` filter, else, break/continue), set (name,
 * ns.attr, tuple; block set), macro, call (with caller args), filter, generation, do.
 * Expressions follow Jinja2's precedence: conditional < or < and < not < comparisons and
 * `in` < + - < ~ < * / // % < ** < unary - + < postfix (.attr [index] [a:b:c] (call))
 * with filters `|f(args)` and tests `is [not] t(args)` binding tightest.
 * Nesting is limited so a hostile template cannot exhaust the stack. */
#include "jinja/jinja_impl.h"

#define MAX_NEST 200

typedef struct parser {
    jarena *a;
    const jtok *t;
    size_t n, i;
    int nest;
    int loops;           /* for-loop bodies open around the current statement */
    sw_err *err;
} parser;

static const jtok *cur(parser *P) { return &P->t[P->i]; }
static const jtok *peek(parser *P, size_t k) { return &P->t[P->i + k < P->n ? P->i + k : P->n - 1]; }
static void next(parser *P) { if (P->i + 1 < P->n) P->i++; }

static int pfail(parser *P, const char *fmt, const char *arg) {
    const jtok *t = cur(P);
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    return sw_err_set(P->err, SW_ERR_FORMAT, "line %d col %d: %s", t->line, t->col, msg);
}
static int oom(parser *P) { return pfail(P, "%s", "template too large"); }

static bool is_op(parser *P, int op) { return cur(P)->t == JT_OP && cur(P)->op == op; }
static bool is_name(parser *P, const char *s) { return cur(P)->t == JT_NAME && jstr_is(cur(P)->s, s); }
static bool skip_op(parser *P, int op) { if (is_op(P, op)) { next(P); return true; } return false; }
static bool skip_name(parser *P, const char *s) { if (is_name(P, s)) { next(P); return true; } return false; }

static int expect_op(parser *P, int op) {
    if (skip_op(P, op)) return SW_OK;
    char s[4] = {(char)op, 0};
    if (op >= 256) strcpy(s, "op");
    return pfail(P, "expected '%s'", s);
}

static jnode *node(parser *P, jnode_kind k) {
    jnode *n = jarena_alloc(P->a, sizeof *n);
    if (!n) return NULL;
    n->k = k;
    n->line = cur(P)->line;
    n->col = cur(P)->col;
    return n;
}

/* Growable node lists and name lists in the arena. */
static int nodes_push(parser *P, jnodes *l, jnode *x, int *cap) {
    if (l->n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        jnode **v = jarena_alloc(P->a, (size_t)nc * sizeof *v);
        if (!v) return oom(P);
        if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof *v);
        l->v = v; *cap = nc;
    }
    l->v[l->n++] = x;
    return SW_OK;
}

static int names_push(parser *P, jnode *n, jstr s, int *cap) {
    if (n->n_names == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        jstr *v = jarena_alloc(P->a, (size_t)nc * sizeof *v);
        if (!v) return oom(P);
        if (n->n_names) memcpy(v, n->names, (size_t)n->n_names * sizeof *v);
        n->names = v; *cap = nc;
    }
    n->names[n->n_names++] = s;
    return SW_OK;
}

static int parse_expr(parser *P, jnode **out);
static int parse_or(parser *P, jnode **out);
static int parse_unary(parser *P, jnode **out, bool with_filter);
static int parse_primary(parser *P, jnode **out);

/* (args, name=value, ...) after the '(' has been seen; fills n->args/kwargs/names. */
static int parse_call_args(parser *P, jnode *n) {
    int ca = 0, ck = 0, cn = 0, rc;
    if ((rc = expect_op(P, '('))) return rc;
    while (!is_op(P, ')')) {
        if (n->args.n + n->kwargs.n && (rc = expect_op(P, ','))) return rc;
        if (is_op(P, ')')) break;
        jnode *v;
        if (cur(P)->t == JT_NAME && peek(P, 1)->t == JT_OP && peek(P, 1)->op == '=') {
            jstr name = cur(P)->s;
            next(P); next(P);
            if ((rc = parse_expr(P, &v)) || (rc = nodes_push(P, &n->kwargs, v, &ck)) || (rc = names_push(P, n, name, &cn)))
                return rc;
        } else {
            if (n->kwargs.n) return pfail(P, "%s", "positional argument after keyword argument");
            if ((rc = parse_expr(P, &v)) || (rc = nodes_push(P, &n->args, v, &ca))) return rc;
        }
    }
    next(P);
    return SW_OK;
}

static int parse_postfix(parser *P, jnode **inout) {
    int rc;
    for (;;) {
        jnode *x = *inout, *n;
        if (is_op(P, '.')) {
            next(P);
            if (!(n = node(P, E_ATTR))) return oom(P);
            n->a = x;
            if (cur(P)->t == JT_NAME) n->name = cur(P)->s;
            else if (cur(P)->t == JT_INT) {
                n->k = E_ITEM;
                jnode *c = node(P, E_CONST);
                if (!c) return oom(P);
                c->val = jv_int(cur(P)->i);
                n->b = c;
            } else return pfail(P, "%s", "expected an attribute name after '.'");
            next(P);
        } else if (is_op(P, '[')) {
            next(P);
            if (!(n = node(P, E_ITEM))) return oom(P);
            n->a = x;
            jnode *parts[3] = {0};
            int k = 0;
            bool slice = false;
            for (;;) {
                if (!is_op(P, ':') && !is_op(P, ']')) { if ((rc = parse_expr(P, &parts[k]))) return rc; }
                if (is_op(P, ':')) {
                    slice = true;
                    if (++k > 2) return pfail(P, "%s", "too many ':' in slice");
                    next(P);
                    continue;
                }
                break;
            }
            if ((rc = expect_op(P, ']'))) return rc;
            if (slice) {   /* E_SLICE: b = start, c = stop, args[0] = step (each may be NULL) */
                n->k = E_SLICE;
                n->b = parts[0];
                n->c = parts[1];
                if (parts[2]) {
                    jnode **v = jarena_alloc(P->a, sizeof *v);
                    if (!v) return oom(P);
                    v[0] = parts[2];
                    n->args = (jnodes){v, 1};
                }
            } else if (!parts[0]) return pfail(P, "%s", "empty subscript");
            else n->b = parts[0];
        } else if (is_op(P, '(')) {
            if (!(n = node(P, E_CALL))) return oom(P);
            n->a = x;
            if ((rc = parse_call_args(P, n))) return rc;
        } else return SW_OK;
        *inout = n;
    }
}

/* A filter or test name: NAME(.NAME)* as Jinja2 reads it (dotted names are not built
 * in, so they fail when used, like any unknown name). */
static int parse_dotted_name(parser *P, jstr *out) {
    *out = cur(P)->s;
    next(P);
    while (is_op(P, '.') && peek(P, 1)->t == JT_NAME) {
        jstr part = peek(P, 1)->s;
        char *d = jarena_alloc(P->a, out->n + part.n + 2);
        if (!d) return oom(P);
        memcpy(d, out->p, out->n);
        d[out->n] = '.';
        memcpy(d + out->n + 1, part.p, part.n);
        *out = (jstr){d, out->n + part.n + 1};
        next(P);
        next(P);
    }
    return SW_OK;
}

static int parse_filter_expr(parser *P, jnode **inout) {
    int rc;
    for (;;) {
        if (is_op(P, '|')) {
            next(P);
            if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a filter name");
            jnode *n = node(P, E_FILTER);
            if (!n) return oom(P);
            n->a = *inout;
            if ((rc = parse_dotted_name(P, &n->name))) return rc;
            if (is_op(P, '(') && (rc = parse_call_args(P, n))) return rc;
            *inout = n;
        } else if (is_name(P, "is")) {
            next(P);
            jnode *n = node(P, E_TEST);
            if (!n) return oom(P);
            n->a = *inout;
            if (skip_name(P, "not")) n->op = 1;
            if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a test name");
            if ((rc = parse_dotted_name(P, &n->name))) return rc;
            const jtok *t = cur(P);
            if (is_op(P, '(')) { if ((rc = parse_call_args(P, n))) return rc; }
            else if ((t->t == JT_NAME || t->t == JT_STRING || t->t == JT_INT || t->t == JT_FLOAT ||
                      (t->t == JT_OP && (t->op == '[' || t->op == '{'))) &&
                     !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and") && !is_name(P, "if") &&
                     !is_name(P, "in") && !is_name(P, "not") && !is_name(P, "is")) {
                jnode *arg;
                if ((rc = parse_primary(P, &arg))) return rc;
                if ((rc = parse_postfix(P, &arg))) return rc;
                jnode **v = jarena_alloc(P->a, sizeof *v);
                if (!v) return oom(P);
                v[0] = arg; n->args.v = v; n->args.n = 1;
            }
            *inout = n;
        } else return SW_OK;
    }
}

static int parse_primary(parser *P, jnode **out) {
    const jtok *t = cur(P);
    jnode *n;
    int rc;
    if (++P->nest > MAX_NEST) return pfail(P, "%s", "expression nested too deeply");
    if (t->t == JT_NAME) {
        if (!(n = node(P, E_CONST))) return oom(P);
        if (jstr_is(t->s, "true") || jstr_is(t->s, "True")) n->val = jv_bool(true);
        else if (jstr_is(t->s, "false") || jstr_is(t->s, "False")) n->val = jv_bool(false);
        else if (jstr_is(t->s, "none") || jstr_is(t->s, "None")) n->val = jv_none();
        else { n->k = E_NAME; n->name = t->s; }
        next(P);
    } else if (t->t == JT_STRING) {
        if (!(n = node(P, E_CONST))) return oom(P);
        jstr s = t->s;
        next(P);
        while (cur(P)->t == JT_STRING) {   /* adjacent literals concatenate */
            char *p = jarena_alloc(P->a, s.n + cur(P)->s.n + 1);
            if (!p) return oom(P);
            memcpy(p, s.p, s.n); memcpy(p + s.n, cur(P)->s.p, cur(P)->s.n);
            s = (jstr){p, s.n + cur(P)->s.n};
            next(P);
        }
        n->val = jv_str(s.p, s.n);
    } else if (t->t == JT_INT || t->t == JT_FLOAT) {
        if (!(n = node(P, E_CONST))) return oom(P);
        n->val = t->t == JT_INT ? jv_int(t->i) : jv_float(t->f);
        next(P);
    } else if (is_op(P, '(')) {
        next(P);
        if (skip_op(P, ')')) { if (!(n = node(P, E_TUPLE))) return oom(P); }
        else {
            if ((rc = parse_expr(P, &n))) return rc;
            if (is_op(P, ',')) {
                jnode *tu = node(P, E_TUPLE);
                int cap = 0;
                if (!tu || nodes_push(P, &tu->args, n, &cap)) return oom(P);
                while (skip_op(P, ',') && !is_op(P, ')')) {
                    jnode *x;
                    if ((rc = parse_expr(P, &x)) || (rc = nodes_push(P, &tu->args, x, &cap))) return rc;
                }
                n = tu;
            }
            if ((rc = expect_op(P, ')'))) return rc;
        }
    } else if (is_op(P, '[')) {
        next(P);
        if (!(n = node(P, E_LIST))) return oom(P);
        int cap = 0;
        while (!is_op(P, ']')) {
            if (n->args.n && (rc = expect_op(P, ','))) return rc;
            if (is_op(P, ']')) break;
            jnode *x;
            if ((rc = parse_expr(P, &x)) || (rc = nodes_push(P, &n->args, x, &cap))) return rc;
        }
        next(P);
    } else if (is_op(P, '{')) {
        next(P);
        if (!(n = node(P, E_DICT))) return oom(P);
        int ck = 0, cv = 0;
        while (!is_op(P, '}')) {
            if (n->args.n && (rc = expect_op(P, ','))) return rc;
            if (is_op(P, '}')) break;
            jnode *k, *v;
            if ((rc = parse_expr(P, &k)) || (rc = expect_op(P, ':')) || (rc = parse_expr(P, &v))) return rc;
            if ((rc = nodes_push(P, &n->args, k, &ck)) || (rc = nodes_push(P, &n->kwargs, v, &cv))) return rc;
        }
        next(P);
    } else if (t->t == JT_EOF || t->t == JT_VAR_END || t->t == JT_BLOCK_END) {
        return pfail(P, "%s", "unexpected end of expression");
    } else return pfail(P, "%s", "unexpected token in expression");
    P->nest--;
    *out = n;
    return SW_OK;
}

static int parse_unary(parser *P, jnode **out, bool with_filter) {
    int rc;
    jnode *n;
    if (++P->nest > MAX_NEST) return pfail(P, "%s", "expression nested too deeply");
    if (is_op(P, '-') || is_op(P, '+')) {
        if (!(n = node(P, is_op(P, '-') ? E_NEG : E_POS))) return oom(P);
        next(P);
        if ((rc = parse_unary(P, &n->a, false))) return rc;
    } else if ((rc = parse_primary(P, &n))) return rc;
    if ((rc = parse_postfix(P, &n))) return rc;
    if (with_filter && (rc = parse_filter_expr(P, &n))) return rc;
    P->nest--;
    *out = n;
    return SW_OK;
}

static int binary(parser *P, jnode **inout, int op, jnode *rhs) {
    jnode *n = node(P, E_BIN);
    if (!n) return oom(P);
    n->op = op; n->a = *inout; n->b = rhs;
    *inout = n;
    return SW_OK;
}

static int parse_pow(parser *P, jnode **out) {
    int rc;
    if ((rc = parse_unary(P, out, true))) return rc;
    while (is_op(P, JOP_POW)) {
        next(P);
        jnode *r;
        if ((rc = parse_unary(P, &r, true)) || (rc = binary(P, out, JOP_POW, r))) return rc;
    }
    return SW_OK;
}

static int parse_math2(parser *P, jnode **out) {
    int rc;
    if ((rc = parse_pow(P, out))) return rc;
    while (is_op(P, '*') || is_op(P, '/') || is_op(P, JOP_FLOORDIV) || is_op(P, '%')) {
        int op = cur(P)->op;
        next(P);
        jnode *r;
        if ((rc = parse_pow(P, &r)) || (rc = binary(P, out, op, r))) return rc;
    }
    return SW_OK;
}

static int parse_concat(parser *P, jnode **out) {
    int rc;
    if ((rc = parse_math2(P, out))) return rc;
    while (is_op(P, '~')) {
        next(P);
        jnode *r;
        if ((rc = parse_math2(P, &r)) || (rc = binary(P, out, '~', r))) return rc;
    }
    return SW_OK;
}

static int parse_math1(parser *P, jnode **out) {
    int rc;
    if ((rc = parse_concat(P, out))) return rc;
    while (is_op(P, '+') || is_op(P, '-')) {
        int op = cur(P)->op;
        next(P);
        jnode *r;
        if ((rc = parse_concat(P, &r)) || (rc = binary(P, out, op, r))) return rc;
    }
    return SW_OK;
}

/* Comparison operators as E_COMPARE ops: the op char / JOP_* code, 'i' = in, 'n' = not in. */
static int compare_op(parser *P) {
    const jtok *t = cur(P);
    if (t->t == JT_OP && (t->op == JOP_EQ || t->op == JOP_NE || t->op == JOP_LE || t->op == JOP_GE || t->op == '<' || t->op == '>'))
        return t->op;
    if (is_name(P, "in")) return 'i';
    if (is_name(P, "not") && peek(P, 1)->t == JT_NAME && jstr_is(peek(P, 1)->s, "in")) return 'n';
    return 0;
}

static int parse_compare(parser *P, jnode **out) {
    int rc, op;
    if ((rc = parse_math1(P, out))) return rc;
    jnode *prev_rhs = NULL;
    while ((op = compare_op(P))) {
        next(P);
        if (op == 'n') next(P);
        jnode *r, *n = node(P, E_COMPARE);
        if (!n) return oom(P);
        if ((rc = parse_math1(P, &r))) return rc;
        n->op = op; n->b = r;
        if (!prev_rhs) n->a = *out;
        else {   /* a < b < c  ==  (a < b) and (b < c) */
            n->a = prev_rhs;
            jnode *and = node(P, E_AND);
            if (!and) return oom(P);
            and->a = *out; and->b = n;
            n = and;
        }
        prev_rhs = r;
        *out = n;
    }
    return SW_OK;
}

static int parse_not(parser *P, jnode **out) {
    if (is_name(P, "not")) {
        if (++P->nest > MAX_NEST) return pfail(P, "%s", "expression nested too deeply");
        jnode *n = node(P, E_NOT);
        if (!n) return oom(P);
        next(P);
        int rc = parse_not(P, &n->a);
        if (rc) return rc;
        P->nest--;
        *out = n;
        return SW_OK;
    }
    return parse_compare(P, out);
}

/* A left-associative chain "x KW y KW z" of operands parsed by sub, as nodes of kind k. */
static int parse_chain(parser *P, jnode **out, const char *kw, jnode_kind k, int (*sub)(parser *, jnode **)) {
    int rc;
    if ((rc = sub(P, out))) return rc;
    while (skip_name(P, kw)) {
        jnode *n = node(P, k);
        if (!n) return oom(P);
        n->a = *out;
        if ((rc = sub(P, &n->b))) return rc;
        *out = n;
    }
    return SW_OK;
}

static int parse_and(parser *P, jnode **out) { return parse_chain(P, out, "and", E_AND, parse_not); }
static int parse_or(parser *P, jnode **out) { return parse_chain(P, out, "or", E_OR, parse_and); }

static int parse_expr(parser *P, jnode **out) {
    int rc;
    if (++P->nest > MAX_NEST) return pfail(P, "%s", "expression nested too deeply");
    if ((rc = parse_or(P, out))) return rc;
    while (skip_name(P, "if")) {
        jnode *n = node(P, E_COND);
        if (!n) return oom(P);
        n->b = *out;
        if ((rc = parse_or(P, &n->a))) return rc;
        if (skip_name(P, "else") && (rc = parse_expr(P, &n->c))) return rc;
        *out = n;
    }
    P->nest--;
    return SW_OK;
}

/* expr or expr, expr, ... (a tuple) — for set values and for-loop iterables. */
static int parse_tuple_expr(parser *P, jnode **out, bool condexpr) {
    int rc;
    if ((rc = condexpr ? parse_expr(P, out) : parse_or(P, out))) return rc;
    if (!is_op(P, ',')) return SW_OK;
    jnode *tu = node(P, E_TUPLE);
    int cap = 0;
    if (!tu || nodes_push(P, &tu->args, *out, &cap)) return oom(P);
    while (skip_op(P, ',')) {
        if (cur(P)->t == JT_BLOCK_END || is_name(P, "if")) break;
        jnode *x;
        if ((rc = condexpr ? parse_expr(P, &x) : parse_or(P, &x)) || (rc = nodes_push(P, &tu->args, x, &cap))) return rc;
    }
    *out = tu;
    return SW_OK;
}

static int expect_block_end(parser *P) {
    if (cur(P)->t != JT_BLOCK_END) return pfail(P, "%s", "expected '%}'");
    next(P);
    return SW_OK;
}

/* Parses statements into body until a {% NAME %} whose NAME is in stops (a
 * NULL-terminated list); consumes '{%' NAME and returns the index in *which. */
static int parse_body(parser *P, jnodes *body, const char *const *stops, int *which);

static int parse_names(parser *P, jnode *n, int *cap) {
    int rc;
    do {
        if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a name");
        if ((rc = names_push(P, n, cur(P)->s, cap))) return rc;
        next(P);
    } while (skip_op(P, ','));
    return SW_OK;
}

static int parse_for(parser *P, jnode *n) {
    int rc, cap = 0, which;
    bool paren = skip_op(P, '(');
    if ((rc = parse_names(P, n, &cap))) return rc;
    if (paren && (rc = expect_op(P, ')'))) return rc;
    if (!skip_name(P, "in")) return pfail(P, "%s", "expected 'in' in for loop");
    if ((rc = parse_tuple_expr(P, &n->a, false))) return rc;
    if (skip_name(P, "if") && (rc = parse_expr(P, &n->b))) return rc;
    if (is_name(P, "recursive")) return pfail(P, "%s", "recursive loops are not supported");
    if ((rc = expect_block_end(P))) return rc;
    static const char *const stops[] = {"else", "endfor", NULL};
    P->loops++;
    rc = parse_body(P, &n->args, stops, &which);
    P->loops--;
    if (rc) return rc;
    if (which == 0) {
        if ((rc = expect_block_end(P))) return rc;
        static const char *const stops2[] = {"endfor", NULL};
        if ((rc = parse_body(P, &n->kwargs, stops2, &which))) return rc;
    }
    return expect_block_end(P);
}

static int parse_if(parser *P, jnode *n) {
    int rc, which;
    if ((rc = parse_expr(P, &n->a)) || (rc = expect_block_end(P))) return rc;
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    if ((rc = parse_body(P, &n->args, stops, &which))) return rc;
    if (which == 0) {   /* elif: a nested if as the whole else body */
        jnode *e = node(P, N_IF);
        jnode **v = jarena_alloc(P->a, sizeof *v);
        if (!e || !v) return oom(P);
        v[0] = e; n->kwargs.v = v; n->kwargs.n = 1;
        return parse_if(P, e);
    }
    if (which == 1) {
        if ((rc = expect_block_end(P))) return rc;
        static const char *const stops2[] = {"endif", NULL};
        if ((rc = parse_body(P, &n->kwargs, stops2, &which))) return rc;
    }
    return expect_block_end(P);
}

static int parse_set(parser *P, jnode *n) {
    int rc, which, cap = 0;
    if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a name after 'set'");
    if (peek(P, 1)->t == JT_OP && peek(P, 1)->op == '.') {   /* set ns.attr = ... */
        n->name = cur(P)->s;
        next(P); next(P);
        if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected an attribute name");
        if ((rc = names_push(P, n, cur(P)->s, &cap))) return rc;
        n->op = 1;
        next(P);
    } else {
        if ((rc = parse_names(P, n, &cap))) return rc;
    }
    if (skip_op(P, '=')) {
        if ((rc = parse_tuple_expr(P, &n->a, true))) return rc;
        return expect_block_end(P);
    }
    if (n->op == 1 || n->n_names != 1) return pfail(P, "%s", "expected '=' after the set target");
    n->k = N_SET_BLOCK;
    n->name = n->names[0];
    jnode *f = NULL;
    while (skip_op(P, '|')) {   /* {% set x | filter %} */
        if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a filter name");
        jnode *fn = node(P, E_FILTER);
        if (!fn) return oom(P);
        fn->name = cur(P)->s;
        fn->a = f;
        next(P);
        if (is_op(P, '(') && (rc = parse_call_args(P, fn))) return rc;
        f = fn;
    }
    n->b = f;
    if ((rc = expect_block_end(P))) return rc;
    static const char *const stops[] = {"endset", NULL};
    if ((rc = parse_body(P, &n->args, stops, &which))) return rc;
    return expect_block_end(P);
}

/* (a, b=default, ...) for macros and call blocks. */
static int parse_params(parser *P, jnode *n) {
    int rc, cap = 0, cd = 0;
    if ((rc = expect_op(P, '('))) return rc;
    while (!is_op(P, ')')) {
        if (n->n_names && (rc = expect_op(P, ','))) return rc;
        if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a parameter name");
        if ((rc = names_push(P, n, cur(P)->s, &cap))) return rc;
        next(P);
        jnode *d = NULL;
        if (skip_op(P, '=') && (rc = parse_expr(P, &d))) return rc;
        if ((rc = nodes_push(P, &n->kwargs, d, &cd))) return rc;
    }
    next(P);
    return SW_OK;
}

static int parse_macro(parser *P, jnode *n) {
    int rc, which;
    if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a macro name");
    n->name = cur(P)->s;
    next(P);
    if ((rc = parse_params(P, n)) || (rc = expect_block_end(P))) return rc;
    static const char *const stops[] = {"endmacro", NULL};
    int loops = P->loops;   /* a macro body is not inside the caller's loop */
    P->loops = 0;
    rc = parse_body(P, &n->args, stops, &which);
    P->loops = loops;
    if (rc) return rc;
    if (cur(P)->t == JT_NAME) next(P);   /* {% endmacro name %} */
    return expect_block_end(P);
}

static int parse_call_block(parser *P, jnode *n) {
    int rc, which;
    if (is_op(P, '(') && (rc = parse_params(P, n))) return rc;
    if ((rc = parse_expr(P, &n->a))) return rc;
    if (n->a->k != E_CALL) return pfail(P, "%s", "expected a macro call in {% call %}");
    if ((rc = expect_block_end(P))) return rc;
    static const char *const stops[] = {"endcall", NULL};
    if ((rc = parse_body(P, &n->args, stops, &which))) return rc;
    return expect_block_end(P);
}

static int parse_filter_block(parser *P, jnode *n) {
    int rc, which;
    jnode *f = NULL;
    do {
        if (cur(P)->t != JT_NAME) return pfail(P, "%s", "expected a filter name");
        jnode *fn = node(P, E_FILTER);
        if (!fn) return oom(P);
        fn->name = cur(P)->s;
        fn->a = f;
        next(P);
        if (is_op(P, '(') && (rc = parse_call_args(P, fn))) return rc;
        f = fn;
    } while (skip_op(P, '|'));
    n->b = f;
    if ((rc = expect_block_end(P))) return rc;
    static const char *const stops[] = {"endfilter", NULL};
    if ((rc = parse_body(P, &n->args, stops, &which))) return rc;
    return expect_block_end(P);
}

static int parse_statement(parser *P, jnode **out) {
    const jtok *kw = cur(P);
    if (kw->t != JT_NAME) return pfail(P, "%s", "expected a statement name");
    int rc, which;
    jnode *n = node(P, N_BODY);
    if (!n) return oom(P);
    jstr s = kw->s;
    next(P);
    if (++P->nest > MAX_NEST) return pfail(P, "%s", "statements nested too deeply");
    if (jstr_is(s, "if")) { n->k = N_IF; rc = parse_if(P, n); }
    else if (jstr_is(s, "for")) { n->k = N_FOR; rc = parse_for(P, n); }
    else if (jstr_is(s, "set")) { n->k = N_SET; rc = parse_set(P, n); }
    else if (jstr_is(s, "macro")) { n->k = N_MACRO; rc = parse_macro(P, n); }
    else if (jstr_is(s, "call")) { n->k = N_CALL_BLOCK; rc = parse_call_block(P, n); }
    else if (jstr_is(s, "filter")) { n->k = N_FILTER_BLOCK; rc = parse_filter_block(P, n); }
    else if (jstr_is(s, "break") || jstr_is(s, "continue")) {
        if (!P->loops) { P->i--; return pfail(P, "'%s' outside of a for loop", s.p[0] == 'b' ? "break" : "continue"); }
        n->k = s.p[0] == 'b' ? N_BREAK : N_CONTINUE;
        rc = expect_block_end(P);
    }
    else if (jstr_is(s, "do")) { n->k = N_DO; if (!(rc = parse_tuple_expr(P, &n->a, true))) rc = expect_block_end(P); }
    else if (jstr_is(s, "generation")) {
        static const char *const stops[] = {"endgeneration", NULL};
        if (!(rc = expect_block_end(P)) && !(rc = parse_body(P, &n->args, stops, &which))) rc = expect_block_end(P);
    } else {
        P->i--;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(s.n < 60 ? s.n : 60), s.p);
        return pfail(P, "unknown statement '%s'", name);
    }
    if (rc) return rc;
    P->nest--;
    *out = n;
    return SW_OK;
}

static int parse_body(parser *P, jnodes *body, const char *const *stops, int *which) {
    int rc, cap = 0;
    for (;;) {
        const jtok *t = cur(P);
        jnode *n = NULL;
        if (t->t == JT_EOF) {
            if (!stops) return SW_OK;
            return pfail(P, "unexpected end of template, expected {%% %s %%}", stops[0]);
        } else if (t->t == JT_TEXT) {
            if (!(n = node(P, N_TEXT))) return oom(P);
            n->name = t->s;
            next(P);
        } else if (t->t == JT_VAR_BEGIN) {
            next(P);
            if (!(n = node(P, N_OUTPUT))) return oom(P);
            if ((rc = parse_tuple_expr(P, &n->a, true))) return rc;
            if (cur(P)->t != JT_VAR_END) return pfail(P, "%s", "expected '}}'");
            next(P);
        } else if (t->t == JT_BLOCK_BEGIN) {
            next(P);
            const jtok *kw = cur(P);
            for (int k = 0; stops && stops[k]; k++)
                if (kw->t == JT_NAME && jstr_is(kw->s, stops[k])) { next(P); *which = k; return SW_OK; }
            if (kw->t == JT_NAME && kw->s.n >= 3 && (!memcmp(kw->s.p, "end", 3) || jstr_is(kw->s, "elif") || jstr_is(kw->s, "else"))) {
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int)(kw->s.n < 60 ? kw->s.n : 60), kw->s.p);
                return pfail(P, "unexpected '%s'", name);
            }
            if ((rc = parse_statement(P, &n))) return rc;
        } else return pfail(P, "%s", "unexpected token");
        if ((rc = nodes_push(P, body, n, &cap))) return rc;
    }
}

int jinja_parse_tokens(jarena *a, const jtok *toks, size_t n, jnode **root, sw_err *err) {
    parser P = {.a = a, .t = toks, .n = n, .err = err};
    jnode *r = node(&P, N_BODY);
    if (!r) return oom(&P);
    int which, rc = parse_body(&P, &r->args, NULL, &which);
    if (rc) return rc;
    *root = r;
    return SW_OK;
}

int jinja_parse(const char *src, size_t len, jinja_template **out, sw_err *err) {
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    t->arena.limit = 64u << 20;
    jtok *toks;
    size_t n;
    int rc = jinja_lex(&t->arena, src, len, &toks, &n, err);
    if (!rc) rc = jinja_parse_tokens(&t->arena, toks, n, &t->root, err);
    if (rc) { jinja_destroy(t); return rc; }
    *out = t;
    return SW_OK;
}

void jinja_destroy(jinja_template *t) {
    if (!t) return;
    jarena_free(&t->arena);
    free(t);
}
