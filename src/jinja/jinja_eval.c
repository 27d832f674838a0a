/* jinja_eval.c — the evaluator: runs the AST against a frame chain of variables,
 * writing text to a size-limited buffer. Scoping is Jinja2's: if/filter/generation bodies
 * share their frame, every for-loop iteration and every macro call gets a fresh frame (so
 * `set` inside a loop does not leak out; namespace() objects carry state across), macros
 * see the frame they were defined in. Every statement, expression node and loop
 * iteration costs one step; steps, output bytes, memory and macro nesting are capped. */
#include "jinja/jinja_impl.h"
#include <math.h>
#include <stdarg.h>

int jx_fail(jctx *c, const jnode *at, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) return sw_err_set(c->err, SW_ERR_FORMAT, "template line %d: %s", at->line, msg);
    return sw_err_set(c->err, SW_ERR_FORMAT, "%s", msg);
}

int jx_limit(jctx *c, const char *what) {
    return sw_err_set(c->err, SW_ERR_RANGE, "template render exceeded its %s limit", what);
}

static int step(jctx *c) {
    if (++c->steps > c->lim.max_steps) return jx_limit(c, "step");
    return SW_OK;
}

/* ---- frames ---- */
static jv *frame_find(jframe *f, jstr name) {
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->name[i].n == name.n && !memcmp(f->name[i].p, name.p, name.n)) return &f->val[i];
    return NULL;
}

static int frame_set(jctx *c, jframe *f, jstr name, jv v) {
    for (size_t i = 0; i < f->n; i++)
        if (f->name[i].n == name.n && !memcmp(f->name[i].p, name.p, name.n)) { f->val[i] = v; return SW_OK; }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        jstr *nn = jarena_alloc(c->a, cap * sizeof *nn);
        jv *nv = jarena_alloc(c->a, cap * sizeof *nv);
        if (!nn || !nv) return jx_limit(c, "memory");
        if (f->n) { memcpy(nn, f->name, f->n * sizeof *nn); memcpy(nv, f->val, f->n * sizeof *nv); }
        f->name = nn; f->val = nv; f->cap = cap;
    }
    f->name[f->n] = name;
    f->val[f->n++] = v;
    return SW_OK;
}

static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = jarena_alloc(c->a, sizeof *f);
    if (f) f->parent = parent;
    return f;
}

static jv undef_named(jstr name) { jv v = {.k = JV_UNDEF, .s = name}; return v; }

static int undefined_error(jctx *c, const jnode *at, jv v) {
    if (v.s.n) return jx_fail(c, at, "'%.*s' is undefined", (int)(v.s.n > 100 ? 100 : v.s.n), v.s.p);
    return jx_fail(c, at, "value is undefined");
}

int jb_str(jctx *c, const jnode *at, jv v, jv *out) {
    if (v.k == JV_STR) { *out = v; return SW_OK; }
    jbuf b = {.limit = c->lim.max_output};
    if (!jv_to_str(&b, v, c->lim.max_depth)) { jbuf_free(&b); return jx_limit(c, "output"); }
    char *p = jarena_strdup(c->a, b.p ? b.p : "", b.n);
    size_t n = b.n;
    jbuf_free(&b);
    if (!p) return jx_limit(c, "memory");
    *out = jv_str(p, n);
    return SW_OK;
}

/* ---- attribute / item access ---- */
jv jx_getattr(jv obj, jstr name) {
    if (obj.k == JV_DICT || obj.k == JV_NS) {
        jv *v = jv_dict_get_str(obj.d, name.p, name.n);
        return v ? *v : undef_named(name);
    }
    if (obj.k == JV_LOOP) {
        const jloop *l = obj.lp;
        if (jstr_is(name, "index")) return jv_int(l->index0 + 1);
        if (jstr_is(name, "index0")) return jv_int(l->index0);
        if (jstr_is(name, "revindex")) return jv_int(l->length - l->index0);
        if (jstr_is(name, "revindex0")) return jv_int(l->length - l->index0 - 1);
        if (jstr_is(name, "first")) return jv_bool(l->index0 == 0);
        if (jstr_is(name, "last")) return jv_bool(l->index0 == l->length - 1);
        if (jstr_is(name, "length")) return jv_int(l->length);
        if (jstr_is(name, "depth")) return jv_int(1);
        if (jstr_is(name, "depth0")) return jv_int(0);
        if (jstr_is(name, "previtem")) return l->index0 > 0 ? l->items->v[l->index0 - 1] : undef_named(name);
        if (jstr_is(name, "nextitem")) return l->index0 + 1 < l->length ? l->items->v[l->index0 + 1] : undef_named(name);
    }
    return undef_named(name);
}

/* Python index i (negative from the end) into a sequence of n; false when out of range. */
static bool norm_index(int64_t i, size_t n, size_t *out) {
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return false;
    *out = (size_t)i;
    return true;
}

static int getitem(jctx *c, const jnode *at, jv obj, jv key, jv *out) {
    size_t k;
    switch (obj.k) {
    case JV_UNDEF: return undefined_error(c, at, obj);
    case JV_LIST:
        if (key.k != JV_INT && key.k != JV_BOOL) { *out = jv_undef(); return SW_OK; }
        *out = norm_index(key.k == JV_INT ? key.i : key.b, obj.l->n, &k) ? obj.l->v[k] : jv_undef();
        return SW_OK;
    case JV_STR: {
        if (key.k != JV_INT) { *out = jv_undef(); return SW_OK; }
        size_t n = ju_len(obj.s.p, obj.s.n);
        if (!norm_index(key.i, n, &k)) { *out = jv_undef(); return SW_OK; }
        size_t b = ju_offset(obj.s.p, obj.s.n, k), e = ju_offset(obj.s.p, obj.s.n, k + 1);
        *out = jv_str(obj.s.p + b, e - b);
        return SW_OK;
    }
    case JV_DICT: case JV_NS: {
        jv *v = jv_dict_get(obj.d, key);
        *out = v ? *v : (key.k == JV_STR ? undef_named(key.s) : jv_undef());
        return SW_OK;
    }
    case JV_LOOP:
        *out = key.k == JV_STR ? jx_getattr(obj, key.s) : jv_undef();
        return SW_OK;
    default:
        *out = jv_undef();
        return SW_OK;
    }
}

/* Python slice indices for length n. */
static void slice_bounds(int64_t n, jv start, jv stop, int64_t st, int64_t *b, int64_t *e) {
    int64_t lo = st > 0 ? 0 : -1, hi = st > 0 ? n : n - 1;
    if (start.k == JV_INT) { *b = start.i < 0 ? start.i + n : start.i; if (*b < lo) *b = lo; if (*b > hi) *b = hi; }
    else *b = st > 0 ? lo : hi;
    if (stop.k == JV_INT) { *e = stop.i < 0 ? stop.i + n : stop.i; if (*e < lo) *e = lo; if (*e > hi) *e = hi; }
    else *e = st > 0 ? hi : lo;
}

static int do_slice(jctx *c, const jnode *at, jv obj, jv start, jv stop, jv stepv, jv *out) {
    for (int i = 0; i < 3; i++) {
        jv x = i == 0 ? start : i == 1 ? stop : stepv;
        if (x.k != JV_INT && x.k != JV_NONE && x.k != JV_UNDEF) return jx_fail(c, at, "slice indices must be integers or None");
    }
    int64_t st = stepv.k == JV_INT ? stepv.i : 1;
    if (st == 0) return jx_fail(c, at, "slice step cannot be zero");
    if (obj.k == JV_UNDEF) return undefined_error(c, at, obj);
    if (obj.k == JV_LIST) {
        int64_t b, e;
        slice_bounds((int64_t)obj.l->n, start, stop, st, &b, &e);
        jlist *l = jv_list_new(c->a, 0);
        if (!l) return jx_limit(c, "memory");
        for (int64_t i = b; st > 0 ? i < e : i > e; i += st)
            if (jv_list_push(c->a, l, obj.l->v[i])) return jx_limit(c, "memory");
        *out = (jv){.k = JV_LIST, .l = l};
        return SW_OK;
    }
    if (obj.k == JV_STR) {
        size_t n = ju_len(obj.s.p, obj.s.n);
        int64_t b, e;
        slice_bounds((int64_t)n, start, stop, st, &b, &e);
        if (st == 1) {
            if (e < b) e = b;
            size_t ob = ju_offset(obj.s.p, obj.s.n, (size_t)b), oe = ju_offset(obj.s.p, obj.s.n, (size_t)e);
            *out = jv_str(obj.s.p + ob, oe - ob);
            return SW_OK;
        }
        jbuf buf = {.limit = c->lim.max_output};
        for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
            size_t ob = ju_offset(obj.s.p, obj.s.n, (size_t)i), oe = ju_offset(obj.s.p, obj.s.n, (size_t)i + 1);
            if (!jbuf_add(&buf, obj.s.p + ob, oe - ob)) { jbuf_free(&buf); return jx_limit(c, "output"); }
        }
        char *p = jarena_strdup(c->a, buf.p ? buf.p : "", buf.n);
        size_t len = buf.n;
        jbuf_free(&buf);
        if (!p) return jx_limit(c, "memory");
        *out = jv_str(p, len);
        return SW_OK;
    }
    return jx_fail(c, at, "'%s' object is not subscriptable", jv_kind_name(obj));
}

/* ---- arithmetic ---- */
static bool numeric(jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }
static double fnum(jv v) { return v.k == JV_FLOAT ? v.f : v.k == JV_INT ? (double)v.i : (double)v.b; }
static int64_t inum(jv v) { return v.k == JV_INT ? v.i : (int64_t)v.b; }

static int concat_str(jctx *c, jstr a, jstr b, jv *out) {
    if (a.n + b.n > c->lim.max_output) return jx_limit(c, "output");
    char *p = jarena_alloc(c->a, a.n + b.n + 1);
    if (!p) return jx_limit(c, "memory");
    memcpy(p, a.p, a.n); memcpy(p + a.n, b.p, b.n);
    *out = jv_str(p, a.n + b.n);
    return SW_OK;
}

static int binop(jctx *c, const jnode *at, int op, jv a, jv b, jv *out) {
    if (op == '~') {
        jv sa, sb;
        int rc;
        if ((rc = jb_str(c, at, a, &sa)) || (rc = jb_str(c, at, b, &sb))) return rc;
        return concat_str(c, sa.s, sb.s, out);
    }
    if (a.k == JV_UNDEF) return undefined_error(c, at, a);
    if (b.k == JV_UNDEF) return undefined_error(c, at, b);
    if (op == '+' && a.k == JV_STR && b.k == JV_STR) return concat_str(c, a.s, b.s, out);
    if (op == '+' && a.k == JV_LIST && b.k == JV_LIST) {
        jlist *l = jv_list_new(c->a, a.l->n + b.l->n);
        if (!l) return jx_limit(c, "memory");
        memcpy(l->v, a.l->v, a.l->n * sizeof(jv));
        memcpy(l->v + a.l->n, b.l->v, b.l->n * sizeof(jv));
        l->n = a.l->n + b.l->n;
        *out = (jv){.k = JV_LIST, .l = l};
        return SW_OK;
    }
    if (op == '*' && ((a.k == JV_STR && (b.k == JV_INT || b.k == JV_BOOL)) || ((a.k == JV_INT || a.k == JV_BOOL) && b.k == JV_STR))) {
        jstr s = a.k == JV_STR ? a.s : b.s;
        jv kv = a.k == JV_STR ? b : a;
        int64_t k = kv.k == JV_INT ? kv.i : kv.b;
        if (k <= 0 || s.n == 0) { *out = jv_str("", 0); return SW_OK; }
        if ((uint64_t)k > c->lim.max_output / s.n) return jx_limit(c, "output");
        char *p = jarena_alloc(c->a, s.n * (size_t)k + 1);
        if (!p) return jx_limit(c, "memory");
        for (int64_t i = 0; i < k; i++) memcpy(p + (size_t)i * s.n, s.p, s.n);
        *out = jv_str(p, s.n * (size_t)k);
        return SW_OK;
    }
    if (op == '*' && ((a.k == JV_LIST && (b.k == JV_INT || b.k == JV_BOOL)) || ((a.k == JV_INT || a.k == JV_BOOL) && b.k == JV_LIST))) {
        const jlist *src = a.k == JV_LIST ? a.l : b.l;
        jv k = a.k == JV_LIST ? b : a;
        int64_t times = k.k == JV_INT ? k.i : k.b;
        if (times < 0) times = 0;
        if (src->n && (uint64_t)times > (c->lim.max_steps - c->steps) / src->n) return jx_limit(c, "step");
        jlist *l = jv_list_new(c->a, src->n * (size_t)times);
        if (!l) return jx_limit(c, "memory");
        for (int64_t i = 0; i < times; i++) memcpy(l->v + (size_t)i * src->n, src->v, src->n * sizeof(jv));
        l->n = src->n * (size_t)times;
        l->tuple = src->tuple;
        c->steps += l->n;
        *out = (jv){.k = JV_LIST, .l = l};
        return SW_OK;
    }
    if (!numeric(a) || !numeric(b))
        return jx_fail(c, at, "unsupported operand types for '%s': '%s' and '%s'",
                       op == JOP_FLOORDIV ? "//" : op == JOP_POW ? "**" : (char[]){(char)op, 0}, jv_kind_name(a), jv_kind_name(b));
    bool flt = a.k == JV_FLOAT || b.k == JV_FLOAT;
    if (op == '/') {
        if (fnum(b) == 0) return jx_fail(c, at, "division by zero");
        *out = jv_float(fnum(a) / fnum(b));
        return SW_OK;
    }
    if (flt) {
        double x = fnum(a), y = fnum(b), r;
        switch (op) {
        case '+': r = x + y; break;
        case '-': r = x - y; break;
        case '*': r = x * y; break;
        case JOP_POW: r = pow(x, y); break;
        case JOP_FLOORDIV: if (y == 0) return jx_fail(c, at, "division by zero"); r = floor(x / y); break;
        case '%': if (y == 0) return jx_fail(c, at, "modulo by zero"); r = fmod(x, y); if (r != 0 && ((r < 0) != (y < 0))) r += y; break;
        default: return jx_fail(c, at, "bad operator");
        }
        *out = jv_float(r);
        return SW_OK;
    }
    int64_t x = inum(a), y = inum(b), r;
    bool ovf = false;
    switch (op) {
    case '+': ovf = __builtin_add_overflow(x, y, &r); break;
    case '-': ovf = __builtin_sub_overflow(x, y, &r); break;
    case '*': ovf = __builtin_mul_overflow(x, y, &r); break;
    case JOP_FLOORDIV: case '%':
        if (y == 0) return jx_fail(c, at, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) { ovf = true; break; }
        r = op == '%' ? x % y : x / y;
        if (op == '%' && r != 0 && ((r < 0) != (y < 0))) r += y;
        if (op == JOP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0))) r--;
        break;
    case JOP_POW:
        if (y < 0) { *out = jv_float(pow((double)x, (double)y)); return SW_OK; }
        r = 1;
        for (int64_t i = 0; i < y && !ovf; i++) ovf = __builtin_mul_overflow(r, x, &r);
        break;
    default: return jx_fail(c, at, "bad operator");
    }
    if (ovf) return jx_fail(c, at, "integer overflow");
    *out = jv_int(r);
    return SW_OK;
}

static int contains(jctx *c, const jnode *at, jv item, jv seq, bool *out) {
    switch (seq.k) {
    case JV_STR:
        if (item.k != JV_STR) return jx_fail(c, at, "'in <string>' requires string as left operand, not %s", jv_kind_name(item));
        *out = item.s.n == 0 || memmem(seq.s.p, seq.s.n, item.s.p, item.s.n) != NULL;
        return SW_OK;
    case JV_LIST:
        *out = false;
        for (size_t i = 0; i < seq.l->n && !*out; i++) *out = jv_equal(seq.l->v[i], item);
        return SW_OK;
    case JV_DICT: *out = jv_dict_get(seq.d, item) != NULL; return SW_OK;
    case JV_UNDEF: *out = false; return SW_OK;
    default: return jx_fail(c, at, "argument of type '%s' is not iterable", jv_kind_name(seq));
    }
}

/* Three-way order of two values as Python orders them (numbers, strings, lists
 * lexicographically); SW_ERR_TYPE when they are not ordered. */
static int order(jv a, jv b, int depth, int *cmp) {
    if (numeric(a) && numeric(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) *cmp = (inum(a) > inum(b)) - (inum(a) < inum(b));
        else *cmp = (fnum(a) > fnum(b)) - (fnum(a) < fnum(b));
        return SW_OK;
    }
    if (a.k == JV_STR && b.k == JV_STR) {
        size_t n = a.s.n < b.s.n ? a.s.n : b.s.n;
        *cmp = memcmp(a.s.p, b.s.p, n);
        if (!*cmp) *cmp = (a.s.n > b.s.n) - (a.s.n < b.s.n);
        else *cmp = *cmp < 0 ? -1 : 1;
        return SW_OK;
    }
    if (a.k == JV_LIST && b.k == JV_LIST && depth > 0) {
        for (size_t i = 0; i < a.l->n && i < b.l->n; i++) {
            if (jv_equal(a.l->v[i], b.l->v[i])) continue;
            return order(a.l->v[i], b.l->v[i], depth - 1, cmp);
        }
        *cmp = (a.l->n > b.l->n) - (a.l->n < b.l->n);
        return SW_OK;
    }
    return SW_ERR_TYPE;
}

static int compare(jctx *c, const jnode *at, int op, jv a, jv b, bool *out) {
    if (op == JOP_EQ) { *out = jv_equal(a, b); return SW_OK; }
    if (op == JOP_NE) { *out = !jv_equal(a, b); return SW_OK; }
    if (op == 'i' || op == 'n') {
        int rc = contains(c, at, a, b, out);
        if (!rc && op == 'n') *out = !*out;
        return rc;
    }
    int cmp = 0;
    if (order(a, b, 64, &cmp) != SW_OK) {
        if (a.k == JV_UNDEF) return undefined_error(c, at, a);
        if (b.k == JV_UNDEF) return undefined_error(c, at, b);
        return jx_fail(c, at, "'<' not supported between instances of '%s' and '%s'", jv_kind_name(a), jv_kind_name(b));
    }
    switch (op) {
    case '<': *out = cmp < 0; break;
    case '>': *out = cmp > 0; break;
    case JOP_LE: *out = cmp <= 0; break;
    default: *out = cmp >= 0; break;
    }
    return SW_OK;
}

/* ---- calls ---- */
typedef struct jargs { jv *v; int n; jstr *kwn; jv *kwv; int nkw; } jargs;

static int eval_args(jctx *c, jframe *f, const jnode *n, jargs *a) {
    memset(a, 0, sizeof *a);
    if (n->args.n && !(a->v = jarena_alloc(c->a, (size_t)n->args.n * sizeof(jv)))) return jx_limit(c, "memory");
    if (n->kwargs.n && !(a->kwv = jarena_alloc(c->a, (size_t)n->kwargs.n * sizeof(jv)))) return jx_limit(c, "memory");
    for (int i = 0; i < n->args.n; i++) {
        int rc = jx_eval(c, f, n->args.v[i], &a->v[i]);
        if (rc) return rc;
    }
    for (int i = 0; i < n->kwargs.n; i++) {
        int rc = jx_eval(c, f, n->kwargs.v[i], &a->kwv[i]);
        if (rc) return rc;
    }
    a->n = n->args.n;
    a->nkw = n->kwargs.n;
    a->kwn = n->names;
    return SW_OK;
}

static int exec_body(jctx *c, jframe *f, const jnodes *body, jbuf *out);

/* Renders body into a new string value (the arena owns it). */
static int render_to_str(jctx *c, jframe *f, const jnodes *body, jv *out) {
    jbuf b = {.limit = c->lim.max_output};
    int rc = exec_body(c, f, body, &b);
    if (!rc) {
        char *p = jarena_strdup(c->a, b.p ? b.p : "", b.n);
        if (!p) rc = jx_limit(c, "memory");
        else *out = jv_str(p, b.n);
    }
    jbuf_free(&b);
    return rc;
}

int jx_call_macro(jctx *c, const jnode *at, const jmacro *m, const jv *args, int nargs,
                  const jstr *kwn, const jv *kwv, int nkw, jv *out) {
    const jnode *def = m->def;
    if (c->depth >= c->lim.max_depth) return jx_limit(c, "recursion depth");
    if (nargs > def->n_names) return jx_fail(c, at, "macro '%.*s' takes %d arguments, %d given", (int)def->name.n, def->name.p, def->n_names, nargs);
    jframe *f = frame_new(c, m->closure);
    if (!f) return jx_limit(c, "memory");
    int rc;
    for (int i = 0; i < def->n_names; i++) {
        jv v = jv_undef();
        bool set = false;
        if (i < nargs) { v = args[i]; set = true; }
        for (int k = 0; k < nkw; k++)
            if (kwn[k].n == def->names[i].n && !memcmp(kwn[k].p, def->names[i].p, kwn[k].n)) { v = kwv[k]; set = true; }
        if (!set) {
            v = undef_named(def->names[i]);
            if (def->kwargs.v[i] && (rc = jx_eval(c, f, def->kwargs.v[i], &v))) return rc;
        }
        if ((rc = frame_set(c, f, def->names[i], v))) return rc;
    }
    for (int k = 0; k < nkw; k++) {
        bool known = false;
        for (int i = 0; i < def->n_names; i++) known |= kwn[k].n == def->names[i].n && !memcmp(kwn[k].p, def->names[i].p, kwn[k].n);
        if (!known) return jx_fail(c, at, "macro takes no keyword argument '%.*s'", (int)(kwn[k].n > 60 ? 60 : kwn[k].n), kwn[k].p);
    }
    if (m->caller && (rc = frame_set(c, f, (jstr){"caller", 6}, (jv){.k = JV_MACRO, .m = m->caller}))) return rc;
    c->depth++;
    rc = render_to_str(c, f, &def->args, out);
    c->depth--;
    c->ctl = 0;
    return rc;
}

static int eval_call(jctx *c, jframe *f, const jnode *n, const jmacro *caller, jv *out) {
    const jnode *fn = n->a;
    jargs a;
    int rc;
    jv callee;
    if (fn->k == E_ATTR) {
        jv obj;
        if ((rc = jx_eval(c, f, fn->a, &obj))) return rc;
        if (obj.k == JV_UNDEF) return undefined_error(c, fn, obj);
        callee = jx_getattr(obj, fn->name);
        if (callee.k != JV_MACRO) {
            if ((rc = eval_args(c, f, n, &a))) return rc;
            return jb_method(c, n, obj, fn->name, a.v, a.n, a.kwn, a.kwv, a.nkw, out);
        }
    } else if (fn->k == E_NAME) {
        jv *v = frame_find(f, fn->name);
        if (!v) {
            if ((rc = eval_args(c, f, n, &a))) return rc;
            rc = jb_global(c, n, fn->name, a.v, a.n, a.kwn, a.kwv, a.nkw, out);
            if (rc == SW_ERR_NOTFOUND) return jx_fail(c, n, "'%.*s' is undefined", (int)(fn->name.n > 100 ? 100 : fn->name.n), fn->name.p);
            return rc;
        }
        callee = *v;
    } else if ((rc = jx_eval(c, f, fn, &callee))) return rc;
    if (callee.k != JV_MACRO) {
        if (callee.k == JV_UNDEF) return undefined_error(c, n, callee);
        return jx_fail(c, n, "'%s' object is not callable", jv_kind_name(callee));
    }
    if ((rc = eval_args(c, f, n, &a))) return rc;
    if (caller) {
        jmacro *m = jarena_alloc(c->a, sizeof *m);
        if (!m) return jx_limit(c, "memory");
        *m = *callee.m;
        m->caller = caller;
        return jx_call_macro(c, n, m, a.v, a.n, a.kwn, a.kwv, a.nkw, out);
    }
    return jx_call_macro(c, n, callee.m, a.v, a.n, a.kwn, a.kwv, a.nkw, out);
}

/* Applies a filter chain (fn->a is the inner filter, NULL = the input itself). */
static int apply_filters(jctx *c, jframe *f, const jnode *fn, jv x, jv *out) {
    if (!fn) { *out = x; return SW_OK; }
    jv in;
    jargs a;
    int rc;
    if ((rc = apply_filters(c, f, fn->a, x, &in)) || (rc = eval_args(c, f, fn, &a))) return rc;
    rc = jb_filter(c, f, fn, fn->name, in, a.v, a.n, a.kwn, a.kwv, a.nkw, out);
    if (rc == SW_ERR_NOTFOUND) return jx_fail(c, fn, "no filter named '%.*s'", (int)(fn->name.n > 60 ? 60 : fn->name.n), fn->name.p);
    return rc;
}

int jx_eval(jctx *c, jframe *f, const jnode *e, jv *out) {
    int rc;
    jv a, b;
    if ((rc = step(c))) return rc;
    switch (e->k) {
    case E_CONST: *out = e->val; return SW_OK;
    case E_NAME: {
        jv *v = frame_find(f, e->name);
        *out = v ? *v : undef_named(e->name);
        return SW_OK;
    }
    case E_ATTR:
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        if (a.k == JV_UNDEF) return undefined_error(c, e, a);
        *out = jx_getattr(a, e->name);
        return SW_OK;
    case E_ITEM:
        if ((rc = jx_eval(c, f, e->a, &a)) || (rc = jx_eval(c, f, e->b, &b))) return rc;
        return getitem(c, e, a, b, out);
    case E_SLICE: {
        jv s0 = jv_none(), s1 = jv_none(), s2 = jv_none();
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        if (e->b && (rc = jx_eval(c, f, e->b, &s0))) return rc;
        if (e->c && (rc = jx_eval(c, f, e->c, &s1))) return rc;
        if (e->args.n && (rc = jx_eval(c, f, e->args.v[0], &s2))) return rc;
        return do_slice(c, e, a, s0, s1, s2, out);
    }
    case E_CALL: return eval_call(c, f, e, NULL, out);
    case E_FILTER: {
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        jargs args;
        if ((rc = eval_args(c, f, e, &args))) return rc;
        rc = jb_filter(c, f, e, e->name, a, args.v, args.n, args.kwn, args.kwv, args.nkw, out);
        if (rc == SW_ERR_NOTFOUND) return jx_fail(c, e, "no filter named '%.*s'", (int)(e->name.n > 60 ? 60 : e->name.n), e->name.p);
        return rc;
    }
    case E_TEST: {
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        jargs args;
        if ((rc = eval_args(c, f, e, &args))) return rc;
        bool r;
        rc = jb_test(c, f, e, e->name, a, args.v, args.n, &r);
        if (rc == SW_ERR_NOTFOUND) return jx_fail(c, e, "no test named '%.*s'", (int)(e->name.n > 60 ? 60 : e->name.n), e->name.p);
        if (rc) return rc;
        *out = jv_bool(e->op ? !r : r);
        return SW_OK;
    }
    case E_BIN:
        if ((rc = jx_eval(c, f, e->a, &a)) || (rc = jx_eval(c, f, e->b, &b))) return rc;
        return binop(c, e, e->op, a, b, out);
    case E_NEG: case E_POS:
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        if (a.k == JV_INT) { if (e->k == E_NEG && a.i == INT64_MIN) return jx_fail(c, e, "integer overflow"); *out = jv_int(e->k == E_NEG ? -a.i : a.i); }
        else if (a.k == JV_FLOAT) *out = jv_float(e->k == E_NEG ? -a.f : a.f);
        else if (a.k == JV_BOOL) *out = jv_int(e->k == E_NEG ? -(int)a.b : a.b);
        else if (a.k == JV_UNDEF) return undefined_error(c, e, a);
        else return jx_fail(c, e, "bad operand type for unary %c: '%s'", e->k == E_NEG ? '-' : '+', jv_kind_name(a));
        return SW_OK;
    case E_NOT:
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        *out = jv_bool(!jv_truthy(a));
        return SW_OK;
    case E_AND: case E_OR:
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        if (jv_truthy(a) == (e->k == E_OR)) { *out = a; return SW_OK; }
        return jx_eval(c, f, e->b, out);
    case E_COND:
        if ((rc = jx_eval(c, f, e->a, &a))) return rc;
        if (jv_truthy(a)) return jx_eval(c, f, e->b, out);
        if (e->c) return jx_eval(c, f, e->c, out);
        *out = jv_undef();
        return SW_OK;
    case E_COMPARE: {
        bool r = false;
        if ((rc = jx_eval(c, f, e->a, &a)) || (rc = jx_eval(c, f, e->b, &b)) || (rc = compare(c, e, e->op, a, b, &r))) return rc;
        *out = jv_bool(r);
        return SW_OK;
    }
    case E_LIST: case E_TUPLE: {
        jlist *l = jv_list_new(c->a, (size_t)e->args.n);
        if (!l) return jx_limit(c, "memory");
        for (int i = 0; i < e->args.n; i++)
            if ((rc = jx_eval(c, f, e->args.v[i], &l->v[i]))) return rc;
        l->n = (size_t)e->args.n;
        l->tuple = e->k == E_TUPLE;
        *out = (jv){.k = JV_LIST, .l = l};
        return SW_OK;
    }
    case E_DICT: {
        jdict *d = jv_dict_new(c->a, (size_t)e->args.n);
        if (!d) return jx_limit(c, "memory");
        for (int i = 0; i < e->args.n; i++) {
            if ((rc = jx_eval(c, f, e->args.v[i], &a)) || (rc = jx_eval(c, f, e->kwargs.v[i], &b))) return rc;
            if (jv_dict_set(c->a, d, a, b)) return jx_limit(c, "memory");
        }
        *out = (jv){.k = JV_DICT, .d = d};
        return SW_OK;
    }
    default:
        return jx_fail(c, e, "not an expression");
    }
}

/* ---- statements ---- */
static int write_value(jctx *c, const jnode *at, jv v, jbuf *out) {
    if (v.k == JV_STR) { if (!jbuf_add(out, v.s.p, v.s.n)) return jx_limit(c, "output"); return SW_OK; }
    if (!jv_to_str(out, v, c->lim.max_depth)) return jx_limit(c, "output");
    return SW_OK;
}

/* The items a for loop walks: list items, dict keys, string characters. */
static int iter_items(jctx *c, const jnode *at, jv v, jlist **out) {
    if (v.k == JV_LIST) { *out = v.l; return SW_OK; }
    jlist *l = jv_list_new(c->a, 0);
    if (!l) return jx_limit(c, "memory");
    if (v.k == JV_DICT) {
        for (size_t i = 0; i < v.d->n; i++) if (jv_list_push(c->a, l, v.d->key[i])) return jx_limit(c, "memory");
    } else if (v.k == JV_STR) {
        for (size_t i = 0; i < v.s.n;) {
            size_t e = i + ju_offset(v.s.p + i, v.s.n - i, 1);
            if (jv_list_push(c->a, l, jv_str(v.s.p + i, e - i))) return jx_limit(c, "memory");
            i = e;
        }
    } else if (v.k != JV_UNDEF) return jx_fail(c, at, "'%s' object is not iterable", jv_kind_name(v));
    *out = l;
    return SW_OK;
}

static int bind_targets(jctx *c, jframe *f, const jnode *n, jv item) {
    if (n->n_names == 1) return frame_set(c, f, n->names[0], item);
    jlist *l;
    int rc = iter_items(c, n, item, &l);
    if (rc) return rc;
    if (l->n != (size_t)n->n_names)
        return jx_fail(c, n, "cannot unpack %zu values into %d names", l->n, n->n_names);
    for (int i = 0; i < n->n_names; i++) if ((rc = frame_set(c, f, n->names[i], l->v[i]))) return rc;
    return SW_OK;
}

static int exec_for(jctx *c, jframe *f, const jnode *n, jbuf *out) {
    jv it;
    jlist *items;
    int rc;
    if ((rc = jx_eval(c, f, n->a, &it)) || (rc = iter_items(c, n, it, &items))) return rc;
    jframe *lf = frame_new(c, f);
    if (!lf) return jx_limit(c, "memory");
    if (n->b) {   /* {% for x in xs if cond %}: filter first, loop.* counts what is left */
        jlist *kept = jv_list_new(c->a, 0);
        if (!kept) return jx_limit(c, "memory");
        for (size_t i = 0; i < items->n; i++) {
            jv cond;
            lf->n = 0;
            if ((rc = step(c)) || (rc = bind_targets(c, lf, n, items->v[i])) || (rc = jx_eval(c, lf, n->b, &cond))) return rc;
            if (jv_truthy(cond) && jv_list_push(c->a, kept, items->v[i])) return jx_limit(c, "memory");
        }
        items = kept;
    }
    if (items->n == 0) return exec_body(c, f, &n->kwargs, out);
    jloop *lp = jarena_alloc(c->a, sizeof *lp);
    if (!lp) return jx_limit(c, "memory");
    lp->items = items;
    lp->length = (int64_t)items->n;
    for (size_t i = 0; i < items->n; i++) {
        lp->index0 = (int64_t)i;
        lf->n = 0;
        if ((rc = step(c)) || (rc = bind_targets(c, lf, n, items->v[i])) ||
            (rc = frame_set(c, lf, (jstr){"loop", 4}, (jv){.k = JV_LOOP, .lp = lp})))
            return rc;
        if ((rc = exec_body(c, lf, &n->args, out))) return rc;
        int ctl = c->ctl;
        c->ctl = 0;
        if (ctl == 1) break;
    }
    return SW_OK;
}

static int exec_set(jctx *c, jframe *f, const jnode *n) {
    jv v;
    int rc = jx_eval(c, f, n->a, &v);
    if (rc) return rc;
    if (n->op == 1) {   /* ns.attr = v */
        jv *ns = frame_find(f, n->name);
        if (!ns || ns->k != JV_NS) return jx_fail(c, n, "cannot assign attribute on non-namespace object '%.*s'", (int)(n->name.n > 60 ? 60 : n->name.n), n->name.p);
        if (jv_dict_set(c->a, ns->d, jv_str(n->names[0].p, n->names[0].n), v)) return jx_limit(c, "memory");
        return SW_OK;
    }
    return bind_targets(c, f, n, v);
}

static int exec_stmt(jctx *c, jframe *f, const jnode *n, jbuf *out) {
    int rc;
    jv v;
    if ((rc = step(c))) return rc;
    switch (n->k) {
    case N_TEXT:
        if (!jbuf_add(out, n->name.p, n->name.n)) return jx_limit(c, "output");
        return SW_OK;
    case N_OUTPUT:
        if ((rc = jx_eval(c, f, n->a, &v))) return rc;
        return write_value(c, n, v, out);
    case N_IF:
        if ((rc = jx_eval(c, f, n->a, &v))) return rc;
        return exec_body(c, f, jv_truthy(v) ? &n->args : &n->kwargs, out);
    case N_FOR: return exec_for(c, f, n, out);
    case N_SET: return exec_set(c, f, n);
    case N_SET_BLOCK:
        if ((rc = render_to_str(c, f, &n->args, &v)) || (rc = apply_filters(c, f, n->b, v, &v))) return rc;
        return frame_set(c, f, n->name, v);
    case N_MACRO: {
        jmacro *m = jarena_alloc(c->a, sizeof *m);
        if (!m) return jx_limit(c, "memory");
        m->def = n;
        m->closure = f;
        return frame_set(c, f, n->name, (jv){.k = JV_MACRO, .m = m});
    }
    case N_CALL_BLOCK: {
        jmacro *caller = jarena_alloc(c->a, sizeof *caller);
        if (!caller) return jx_limit(c, "memory");
        caller->def = n;
        caller->closure = f;
        if ((rc = eval_call(c, f, n->a, caller, &v))) return rc;
        return write_value(c, n, v, out);
    }
    case N_FILTER_BLOCK:
        if ((rc = render_to_str(c, f, &n->args, &v)) || (rc = apply_filters(c, f, n->b, v, &v))) return rc;
        return write_value(c, n, v, out);
    case N_BREAK: c->ctl = 1; return SW_OK;
    case N_CONTINUE: c->ctl = 2; return SW_OK;
    case N_DO: return jx_eval(c, f, n->a, &v);
    case N_BODY: return exec_body(c, f, &n->args, out);
    default: return jx_fail(c, n, "not a statement");
    }
}

static int exec_body(jctx *c, jframe *f, const jnodes *body, jbuf *out) {
    for (int i = 0; i < body->n; i++) {
        int rc = exec_stmt(c, f, body->v[i], out);
        if (rc) return rc;
        if (c->ctl) return SW_OK;
    }
    return SW_OK;
}

int jinja_render(const jinja_template *t, const json_t *vars, const jinja_opts *opts,
                 char **out, size_t *out_len, sw_err *err) {
    jinja_limits lim = opts ? opts->limits : (jinja_limits){0};
    if (!lim.max_output) lim.max_output = 8u << 20;
    if (!lim.max_memory) lim.max_memory = 64u << 20;
    if (!lim.max_steps) lim.max_steps = 5000000;
    if (!lim.max_depth) lim.max_depth = 64;
    jarena arena = {.limit = lim.max_memory};
    jctx c = {.a = &arena, .err = err, .lim = lim, .today = opts ? opts->today : NULL};
    jbuf b = {.limit = lim.max_output};
    int rc = SW_OK;
    jframe *root = frame_new(&c, NULL);
    if (!root) rc = jx_limit(&c, "memory");
    if (!rc && vars && !json_is_object(vars)) rc = sw_err_set(err, SW_ERR_ARG, "template variables must be a JSON object");
    if (!rc && vars) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)vars, k, v) {
            jv x;
            if ((rc = jv_from_json(&arena, v, lim.max_depth, &x, err))) break;
            char *kp = jarena_strdup(&arena, k, strlen(k));
            if (!kp) { rc = jx_limit(&c, "memory"); break; }
            if ((rc = frame_set(&c, root, (jstr){kp, strlen(kp)}, x))) break;
        }
    }
    if (!rc) rc = exec_body(&c, root, &t->root->args, &b);
    if (!rc && !b.p && !jbuf_add(&b, "", 0)) rc = jx_limit(&c, "output");
    jarena_free(&arena);
    if (rc) { jbuf_free(&b); return rc; }
    *out = b.p;
    if (out_len) *out_len = b.n;
    return SW_OK;
}
