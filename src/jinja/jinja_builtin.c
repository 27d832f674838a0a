/* jinja_builtin.c — the filters, tests, methods and global functions templates call:
 * filters tojson trim length/count upper lower capitalize title items join default/d
 * first last map select reject selectattr rejectattr list string int float replace safe
 * escape/e reverse abs indent; tests defined undefined none boolean true false integer float
 * number string mapping iterable sequence callable odd even divisibleby eq/ne/lt/le/gt/ge
 * in lower upper sameas; str methods startswith endswith split rsplit strip lstrip rstrip
 * replace title upper lower capitalize find count; dict methods items keys values get;
 * list methods count index;
 * loop.cycle; globals raise_exception strftime_now namespace range dict.
 * Semantics are Python's / Jinja2's (str methods work on code points where it matters). */
#include "jinja/jinja_impl.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <time.h>

#define NAME(s) (int)((s).n > 60 ? 60 : (s).n), (s).p

static int oom(jctx *c) { return jx_limit(c, "memory"); }

static jv list_v(jlist *l) { return (jv){.k = JV_LIST, .l = l}; }

static int new_str(jctx *c, const char *p, size_t n, jv *out) {
    char *q = jarena_strdup(c->a, p, n);
    if (!q) return oom(c);
    *out = jv_str(q, n);
    return SW_OK;
}

/* Keyword argument by name, else positional argument pos, else NULL. */
static const jv *arg(const jv *args, int nargs, const jstr *kwn, const jv *kwv, int nkw, int pos, const char *name) {
    for (int i = 0; i < nkw; i++) if (jstr_is(kwn[i], name)) return &kwv[i];
    return pos >= 0 && pos < nargs ? &args[pos] : NULL;
}

/* ---- string helpers ---- */
static bool py_space(unsigned char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f); }

static size_t cp_len(const char *p, size_t n) { size_t k = ju_offset(p, n, 1); return k ? k : 1; }

/* Does s start (at byte i) with one of the code points in chars? Returns its length. */
static size_t strip_match(jstr s, size_t i, const jv *chars, bool from_end) {
    if (!chars || chars->k != JV_STR) {
        if (from_end) return i > 0 && py_space((unsigned char)s.p[i - 1]) ? 1 : 0;
        return i < s.n && py_space((unsigned char)s.p[i]) ? 1 : 0;
    }
    for (size_t k = 0; k < chars->s.n;) {
        size_t l = cp_len(chars->s.p + k, chars->s.n - k);
        if (from_end ? (i >= l && !memcmp(s.p + i - l, chars->s.p + k, l)) : (i + l <= s.n && !memcmp(s.p + i, chars->s.p + k, l)))
            return l;
        k += l;
    }
    return 0;
}

static jv do_strip(jstr s, const jv *chars, bool left, bool right) {
    size_t b = 0, e = s.n, l;
    if (left) while (b < e && (l = strip_match((jstr){s.p, e}, b, chars, false))) b += l;
    if (right) while (e > b && (l = strip_match((jstr){s.p + b, e - b}, e - b, chars, true))) e -= l;
    return jv_str(s.p + b, e - b);
}

/* Simple case mapping of one code point: ASCII, Latin-1, Latin Extended-A, Greek,
 * Cyrillic (what chat text needs; other scripts are left as they are). */
static bool latin_a_upper(uint32_t cp) {   /* U+0100..U+017F alternate upper/lower */
    return ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) ? (cp & 1) : !(cp & 1);
}

/* Simple case mapping of one code point: ASCII, Latin-1, Latin Extended-A, Greek,
 * Cyrillic (what chat text needs; other scripts are left as they are). */
static uint32_t cp_case(uint32_t cp, bool upper) {
    if (cp < 0x80) return (uint32_t)(upper ? toupper((int)cp) : tolower((int)cp));
    bool latin_a = cp >= 0x100 && cp <= 0x17E && cp != 0x130 && cp != 0x131 && cp != 0x138 && cp != 0x149 && cp != 0x178;
    if (upper) {
        if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) || (cp >= 0x3B1 && cp <= 0x3C9 && cp != 0x3C2) || (cp >= 0x430 && cp <= 0x44F)) return cp - 0x20;
        if (cp == 0xFF) return 0x178;
        if (cp == 0x3C2) return 0x3A3;
        if (cp >= 0x450 && cp <= 0x45F) return cp - 0x50;
        if (latin_a && !latin_a_upper(cp)) return cp - 1;
    } else {
        if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F)) return cp + 0x20;
        if (cp == 0x178) return 0xFF;
        if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
        if (latin_a && latin_a_upper(cp)) return cp + 1;
    }
    return cp;
}

static bool cp_cased(uint32_t cp) { return cp < 0x80 ? isalpha((int)cp) != 0 : cp_case(cp, true) != cp || cp_case(cp, false) != cp; }

static size_t utf8_put(char *p, uint32_t cp) {
    if (cp < 0x80) { p[0] = (char)cp; return 1; }
    if (cp < 0x800) { p[0] = (char)(0xC0 | (cp >> 6)); p[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    p[0] = (char)(0xE0 | (cp >> 12)); p[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); p[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* 0 upper, 1 lower, 2 capitalize (first upper, rest lower), 3 title (Python's rules). */
static int case_map(jctx *c, jstr s, int mode, jv *out) {
    char *p = jarena_alloc(c->a, s.n + 1);
    if (!p) return oom(c);
    size_t o = 0;
    bool prev_cased = false;
    for (size_t i = 0; i < s.n;) {
        unsigned char ch = (unsigned char)s.p[i];
        size_t l = cp_len(s.p + i, s.n - i);
        uint32_t cp = ch;
        if (l == 2 && (ch & 0xE0) == 0xC0) cp = ((ch & 0x1Fu) << 6) | (s.p[i + 1] & 0x3F);
        else if (l != 1 || ch >= 0x80) {   /* 3-4 byte sequences and invalid bytes pass unchanged */
            memcpy(p + o, s.p + i, l);
            o += l;
            i += l;
            prev_cased = true;
            continue;
        }
        bool up = mode == 0 || (mode == 2 && i == 0) || (mode == 3 && !prev_cased);
        uint32_t m = cp_case(cp, up);
        if (cp == 0x3A3 && !up && prev_cased) {   /* Python's final sigma */
            size_t j = i + l;
            uint32_t nx = j < s.n ? (unsigned char)s.p[j] : 0;
            if (j + 1 < s.n && (nx & 0xE0) == 0xC0) nx = ((nx & 0x1Fu) << 6) | (s.p[j + 1] & 0x3F);
            if (!nx || !cp_cased(nx)) m = 0x3C2;
        }
        prev_cased = cp_cased(cp);
        size_t w = (m < 0x80) == (cp < 0x80) && (m < 0x800) == (cp < 0x800) ? utf8_put(p + o, m) : utf8_put(p + o, cp);
        o += w;
        i += l;
    }
    *out = jv_str(p, o);
    return SW_OK;
}

/* Jinja2's title filter (not str.title): the text is split before runs of whitespace,
 * '-', '(', '{', '[', '<'; each piece gets its first character upper-cased and the rest
 * lower-cased. */
static int title_filter(jctx *c, jstr s, jv *out) {
    jbuf b = {.limit = c->lim.max_output};
    bool ok = true;
    for (size_t i = 0; i < s.n && ok;) {
        size_t e = i;
        while (e < s.n && (py_space((unsigned char)s.p[e]) || strchr("-({[<", s.p[e]))) e++;
        if (e > i) { ok = jbuf_add(&b, s.p + i, e - i); i = e; continue; }
        while (e < s.n && !(py_space((unsigned char)s.p[e]) || strchr("-({[<", s.p[e]))) e++;
        jv piece;
        int rc = case_map(c, (jstr){s.p + i, e - i}, 2, &piece);
        if (rc) { jbuf_free(&b); return rc; }
        ok = jbuf_add(&b, piece.s.p, piece.s.n);
        i = e;
    }
    int rc = ok ? new_str(c, b.p ? b.p : "", b.n, out) : jx_limit(c, "output");
    jbuf_free(&b);
    return rc;
}

static int str_replace(jctx *c, jstr s, jstr old, jstr new, int64_t count, jv *out) {
    jbuf b = {.limit = c->lim.max_output};
    size_t i = 0;
    int64_t done = 0;
    bool ok = true;
    if (old.n == 0) {   /* Python inserts new before every code point and at the end */
        while (ok && (count < 0 || done < count)) {
            ok = jbuf_add(&b, new.p, new.n);
            done++;
            if (i >= s.n) break;
            size_t l = cp_len(s.p + i, s.n - i);
            ok = ok && jbuf_add(&b, s.p + i, l);
            i += l;
        }
    } else {
        while (ok && i < s.n && (count < 0 || done < count)) {
            const char *hit = memmem(s.p + i, s.n - i, old.p, old.n);
            if (!hit) break;
            ok = jbuf_add(&b, s.p + i, (size_t)(hit - (s.p + i))) && jbuf_add(&b, new.p, new.n);
            i = (size_t)(hit - s.p) + old.n;
            done++;
        }
    }
    if (ok && i < s.n) ok = jbuf_add(&b, s.p + i, s.n - i);
    int rc = ok ? new_str(c, b.p ? b.p : "", b.n, out) : jx_limit(c, "output");
    jbuf_free(&b);
    return rc;
}

static int str_split(jctx *c, const jnode *at, jstr s, const jv *sepv, int64_t maxsplit, bool from_right, jv *out) {
    jlist *l = jv_list_new(c->a, 0);
    if (!l) return oom(c);
    if (sepv && sepv->k != JV_NONE && sepv->k != JV_STR) return jx_fail(c, at, "split: separator must be a string or None");
    bool ws = !sepv || sepv->k == JV_NONE;
    if (!ws && sepv->s.n == 0) return jx_fail(c, at, "empty separator");
    /* collect pieces in order; for rsplit, split from the right and reverse at the end */
    jlist *tmp = jv_list_new(c->a, 0);
    if (!tmp) return oom(c);
    size_t b = 0, e = s.n;
    int64_t splits = 0;
    if (ws) {
        for (;;) {
            if (!from_right) while (b < e && py_space((unsigned char)s.p[b])) b++;
            else while (e > b && py_space((unsigned char)s.p[e - 1])) e--;
            if (b >= e) break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                if (jv_list_push(c->a, tmp, jv_str(s.p + b, e - b))) return oom(c);
                break;
            }
            size_t x;
            if (!from_right) {
                x = b;
                while (x < e && !py_space((unsigned char)s.p[x])) x++;
                if (jv_list_push(c->a, tmp, jv_str(s.p + b, x - b))) return oom(c);
                b = x;
            } else {
                x = e;
                while (x > b && !py_space((unsigned char)s.p[x - 1])) x--;
                if (jv_list_push(c->a, tmp, jv_str(s.p + x, e - x))) return oom(c);
                e = x;
            }
            splits++;
        }
    } else {
        jstr sep = sepv->s;
        for (;;) {
            const char *hit = NULL;
            if (maxsplit < 0 || splits < maxsplit) {
                if (!from_right) hit = memmem(s.p + b, e - b, sep.p, sep.n);
                else for (size_t x = e; x >= b + sep.n && !hit; x--) if (!memcmp(s.p + x - sep.n, sep.p, sep.n)) hit = s.p + x - sep.n;
            }
            if (!hit) { if (jv_list_push(c->a, tmp, jv_str(s.p + b, e - b))) return oom(c); break; }
            size_t h = (size_t)(hit - s.p);
            if (!from_right) { if (jv_list_push(c->a, tmp, jv_str(s.p + b, h - b))) return oom(c); b = h + sep.n; }
            else { if (jv_list_push(c->a, tmp, jv_str(s.p + h + sep.n, e - h - sep.n))) return oom(c); e = h; }
            splits++;
            if (++c->steps > c->lim.max_steps) return jx_limit(c, "step");
        }
    }
    for (size_t i = 0; i < tmp->n; i++)
        if (jv_list_push(c->a, l, tmp->v[from_right ? tmp->n - 1 - i : i])) return oom(c);
    *out = list_v(l);
    return SW_OK;
}

static bool has_prefix(jstr s, jstr p, bool suffix) {
    if (p.n > s.n) return false;
    return !memcmp(suffix ? s.p + s.n - p.n : s.p, p.p, p.n);
}

static int starts_ends(jctx *c, const jnode *at, jstr s, const jv *p, bool suffix, jv *out) {
    if (!p) return jx_fail(c, at, "%s takes one argument", suffix ? "endswith" : "startswith");
    if (p->k == JV_STR) { *out = jv_bool(has_prefix(s, p->s, suffix)); return SW_OK; }
    if (p->k == JV_LIST) {
        bool r = false;
        for (size_t i = 0; i < p->l->n; i++) {
            if (p->l->v[i].k != JV_STR) return jx_fail(c, at, "startswith/endswith tuple must hold strings");
            r |= has_prefix(s, p->l->v[i].s, suffix);
        }
        *out = jv_bool(r);
        return SW_OK;
    }
    return jx_fail(c, at, "startswith/endswith argument must be str or a tuple of str");
}

/* ---- attribute paths (map/selectattr/join attribute=) ---- */
static int attr_path(jctx *c, jv x, jstr path, jv *out) {
    size_t i = 0;
    while (i <= path.n) {
        size_t e = i;
        while (e < path.n && path.p[e] != '.') e++;
        jstr part = {path.p + i, e - i};
        bool digits = part.n > 0;
        for (size_t k = 0; k < part.n; k++) digits &= isdigit((unsigned char)part.p[k]) != 0;
        if (digits && x.k == JV_LIST) {
            int64_t idx = strtoll(part.p, NULL, 10);
            x = idx >= 0 && (size_t)idx < x.l->n ? x.l->v[idx] : jv_undef();
        } else x = jx_getattr(x, part);
        i = e + 1;
        if (e == path.n) break;
    }
    *out = x;
    (void)c;
    return SW_OK;
}

static int to_int(jctx *c, const jnode *at, jv x, jv def, jv *out) {
    switch (x.k) {
    case JV_INT: *out = x; return SW_OK;
    case JV_BOOL: *out = jv_int(x.b); return SW_OK;
    case JV_FLOAT:
        if (isnan(x.f) || fabs(x.f) >= 9.2e18) { *out = def; return SW_OK; }
        *out = jv_int((int64_t)x.f); return SW_OK;
    case JV_STR: {
        char buf[64];
        jv t = do_strip(x.s, NULL, true, true);
        if (t.s.n == 0 || t.s.n >= sizeof buf) { *out = def; return SW_OK; }
        memcpy(buf, t.s.p, t.s.n); buf[t.s.n] = 0;
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (!*end && !errno) { *out = jv_int(v); return SW_OK; }
        double d = strtod(buf, &end);
        if (!*end && isfinite(d) && fabs(d) < 9.2e18) { *out = jv_int((int64_t)d); return SW_OK; }
        *out = def;
        return SW_OK;
    }
    default: *out = def; (void)c; (void)at; return SW_OK;
    }
}

static int filter_list(jctx *c, const jnode *at, jv x, jlist **out) {
    jlist *l = jv_list_new(c->a, 0);
    if (!l) return oom(c);
    switch (x.k) {
    case JV_LIST: for (size_t i = 0; i < x.l->n; i++) if (jv_list_push(c->a, l, x.l->v[i])) return oom(c); break;
    case JV_DICT: for (size_t i = 0; i < x.d->n; i++) if (jv_list_push(c->a, l, x.d->key[i])) return oom(c); break;
    case JV_STR:
        for (size_t i = 0; i < x.s.n;) {
            size_t k = cp_len(x.s.p + i, x.s.n - i);
            if (jv_list_push(c->a, l, jv_str(x.s.p + i, k))) return oom(c);
            i += k;
        }
        break;
    case JV_UNDEF: break;
    default: return jx_fail(c, at, "'%s' object is not iterable", jv_kind_name(x));
    }
    *out = l;
    return SW_OK;
}

/* select/reject/selectattr/rejectattr: keep items whose test (or truthiness) == want. */
static int select_items(jctx *c, jframe *f, const jnode *at, jv x, bool attr, bool want,
                        const jv *args, int nargs, jv *out) {
    jlist *items, *l = jv_list_new(c->a, 0);
    int rc;
    if (!l) return oom(c);
    if ((rc = filter_list(c, at, x, &items))) return rc;
    int k = 0;
    jstr path = {0};
    if (attr) {
        if (nargs < 1 || args[0].k != JV_STR) return jx_fail(c, at, "selectattr/rejectattr need an attribute name");
        path = args[0].s;
        k = 1;
    }
    if (nargs > k && args[k].k != JV_STR) return jx_fail(c, at, "test name must be a string");
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        if (attr && (rc = attr_path(c, v, path, &v))) return rc;
        bool r;
        if (nargs > k) { if ((rc = jb_test(c, f, at, args[k].s, v, args + k + 1, nargs - k - 1, &r))) return rc == SW_ERR_NOTFOUND ? jx_fail(c, at, "no test named '%.*s'", NAME(args[k].s)) : rc; }
        else r = jv_truthy(v);
        if (r == want && jv_list_push(c->a, l, items->v[i])) return oom(c);
        if (++c->steps > c->lim.max_steps) return jx_limit(c, "step");
    }
    *out = list_v(l);
    return SW_OK;
}

static int html_escape(jctx *c, jstr s, jv *out) {
    jbuf b = {.limit = c->lim.max_output};
    bool ok = true;
    for (size_t i = 0; i < s.n && ok; i++) {
        switch (s.p[i]) {
        case '&': ok = jbuf_str(&b, "&amp;"); break;
        case '<': ok = jbuf_str(&b, "&lt;"); break;
        case '>': ok = jbuf_str(&b, "&gt;"); break;
        case '"': ok = jbuf_str(&b, "&#34;"); break;
        case '\'': ok = jbuf_str(&b, "&#39;"); break;
        default: ok = jbuf_add(&b, s.p + i, 1);
        }
    }
    int rc = ok ? new_str(c, b.p ? b.p : "", b.n, out) : jx_limit(c, "output");
    jbuf_free(&b);
    return rc;
}

int jb_filter(jctx *c, jframe *f, const jnode *at, jstr name, jv x, const jv *args, int nargs,
              const jstr *kwn, const jv *kwv, int nkw, jv *out) {
    int rc;
    jv s;
#define A(pos, nm) arg(args, nargs, kwn, kwv, nkw, pos, nm)
    if ((jstr_is(name, "int") || jstr_is(name, "float") || jstr_is(name, "indent")) && x.k == JV_UNDEF)
        return x.s.n ? jx_fail(c, at, "'%.*s' is undefined", NAME(x.s)) : jx_fail(c, at, "value is undefined");
    if (jstr_is(name, "tojson")) {
        const jv *ind = A(0, "indent"), *asc = A(-1, "ensure_ascii"), *sk = A(-1, "sort_keys");
        int indent = -1;
        if (ind && ind->k == JV_INT) indent = ind->i < 0 ? 0 : ind->i > 64 ? 64 : (int)ind->i;
        jbuf b = {.limit = c->lim.max_output};
        rc = jv_tojson(&b, x, indent, asc && jv_truthy(*asc), sk && jv_truthy(*sk), c->lim.max_depth, c->err);
        if (!rc) rc = new_str(c, b.p ? b.p : "", b.n, out);
        else if (rc != SW_ERR_RANGE) rc = jx_fail(c, at, "%s", c->err->msg);
        jbuf_free(&b);
        return rc;
    }
    if (jstr_is(name, "trim")) {
        if ((rc = jb_str(c, at, x, &s))) return rc;
        *out = do_strip(s.s, A(0, "chars"), true, true);
        return SW_OK;
    }
    if (jstr_is(name, "length") || jstr_is(name, "count")) {
        switch (x.k) {
        case JV_STR: *out = jv_int((int64_t)ju_len(x.s.p, x.s.n)); return SW_OK;
        case JV_LIST: *out = jv_int((int64_t)x.l->n); return SW_OK;
        case JV_DICT: case JV_NS: *out = jv_int((int64_t)x.d->n); return SW_OK;
        case JV_UNDEF: *out = jv_int(0); return SW_OK;
        default: return jx_fail(c, at, "object of type '%s' has no len()", jv_kind_name(x));
        }
    }
    if (jstr_is(name, "upper") || jstr_is(name, "lower") || jstr_is(name, "capitalize") || jstr_is(name, "title")) {
        if ((rc = jb_str(c, at, x, &s))) return rc;
        if (jstr_is(name, "title")) return title_filter(c, s.s, out);
        return case_map(c, s.s, jstr_is(name, "upper") ? 0 : jstr_is(name, "lower") ? 1 : 2, out);
    }
    if (jstr_is(name, "items")) {
        jlist *l = jv_list_new(c->a, 0);
        if (!l) return oom(c);
        if (x.k == JV_DICT || x.k == JV_NS) {
            for (size_t i = 0; i < x.d->n; i++) {
                jlist *p = jv_list_new(c->a, 2);
                if (!p) return oom(c);
                p->v[0] = x.d->key[i]; p->v[1] = x.d->val[i]; p->n = 2; p->tuple = true;
                if (jv_list_push(c->a, l, list_v(p))) return oom(c);
            }
        } else if (x.k != JV_UNDEF) return jx_fail(c, at, "items: can only get item pairs from a mapping");
        *out = list_v(l);
        return SW_OK;
    }
    if (jstr_is(name, "join")) {
        const jv *sep = A(0, "d"), *attr = A(1, "attribute");
        jlist *items;
        if ((rc = filter_list(c, at, x, &items))) return rc;
        jv sv = jv_str("", 0);
        if (sep && (rc = jb_str(c, at, *sep, &sv))) return rc;
        jbuf b = {.limit = c->lim.max_output};
        for (size_t i = 0; i < items->n && !rc; i++) {
            jv v = items->v[i], t;
            if (attr && attr->k == JV_STR) attr_path(c, v, attr->s, &v);
            if ((rc = jb_str(c, at, v, &t))) break;
            if ((i && !jbuf_add(&b, sv.s.p, sv.s.n)) || !jbuf_add(&b, t.s.p, t.s.n)) rc = jx_limit(c, "output");
        }
        if (!rc) rc = new_str(c, b.p ? b.p : "", b.n, out);
        jbuf_free(&b);
        return rc;
    }
    if (jstr_is(name, "default") || jstr_is(name, "d")) {
        const jv *dv = A(0, "default_value"), *boolean = A(1, "boolean");
        bool use = x.k == JV_UNDEF || (boolean && jv_truthy(*boolean) && !jv_truthy(x));
        *out = use ? (dv ? *dv : jv_str("", 0)) : x;
        return SW_OK;
    }
    if (jstr_is(name, "first") || jstr_is(name, "last")) {
        bool first = jstr_is(name, "first");
        jlist *items;
        if (x.k == JV_UNDEF) { *out = jv_undef(); return SW_OK; }
        if ((rc = filter_list(c, at, x, &items))) return rc;
        *out = items->n ? items->v[first ? 0 : items->n - 1] : jv_undef();
        return SW_OK;
    }
    if (jstr_is(name, "list")) {
        jlist *items;
        if ((rc = filter_list(c, at, x, &items))) return rc;
        *out = list_v(items);
        return SW_OK;
    }
    if (jstr_is(name, "reverse")) {
        if (x.k == JV_STR) {
            char *p = jarena_alloc(c->a, x.s.n + 1);
            if (!p) return oom(c);
            size_t o = x.s.n;
            for (size_t i = 0; i < x.s.n;) { size_t k = cp_len(x.s.p + i, x.s.n - i); o -= k; memcpy(p + o, x.s.p + i, k); i += k; }
            *out = jv_str(p, x.s.n);
            return SW_OK;
        }
        jlist *items;
        if ((rc = filter_list(c, at, x, &items))) return rc;
        for (size_t i = 0; i < items->n / 2; i++) { jv t = items->v[i]; items->v[i] = items->v[items->n - 1 - i]; items->v[items->n - 1 - i] = t; }
        *out = list_v(items);
        return SW_OK;
    }
    if (jstr_is(name, "map")) {
        jlist *items, *l = jv_list_new(c->a, 0);
        if (!l) return oom(c);
        if ((rc = filter_list(c, at, x, &items))) return rc;
        const jv *attr = A(-1, "attribute"), *dflt = A(-1, "default");
        if (!attr && (nargs < 1 || args[0].k != JV_STR)) return jx_fail(c, at, "map needs a filter name or attribute=");
        for (size_t i = 0; i < items->n; i++) {
            jv v;
            if (attr) {
                if (attr->k != JV_STR) return jx_fail(c, at, "map: attribute must be a string");
                attr_path(c, items->v[i], attr->s, &v);
                if (v.k == JV_UNDEF && dflt) v = *dflt;
            } else if ((rc = jb_filter(c, f, at, args[0].s, items->v[i], args + 1, nargs - 1, NULL, NULL, 0, &v)))
                return rc == SW_ERR_NOTFOUND ? jx_fail(c, at, "no filter named '%.*s'", NAME(args[0].s)) : rc;
            if (jv_list_push(c->a, l, v)) return oom(c);
            if (++c->steps > c->lim.max_steps) return jx_limit(c, "step");
        }
        *out = list_v(l);
        return SW_OK;
    }
    if (jstr_is(name, "select")) return select_items(c, f, at, x, false, true, args, nargs, out);
    if (jstr_is(name, "reject")) return select_items(c, f, at, x, false, false, args, nargs, out);
    if (jstr_is(name, "selectattr")) return select_items(c, f, at, x, true, true, args, nargs, out);
    if (jstr_is(name, "rejectattr")) return select_items(c, f, at, x, true, false, args, nargs, out);
    if (jstr_is(name, "string")) return jb_str(c, at, x, out);
    if (jstr_is(name, "safe")) return jb_str(c, at, x, out);
    if (jstr_is(name, "escape") || jstr_is(name, "e")) {
        if ((rc = jb_str(c, at, x, &s))) return rc;
        return html_escape(c, s.s, out);
    }
    if (jstr_is(name, "int")) {
        const jv *d = A(0, "default");
        return to_int(c, at, x, d ? *d : jv_int(0), out);
    }
    if (jstr_is(name, "float")) {
        const jv *d = A(0, "default");
        jv def = d ? *d : jv_float(0.0);
        if (x.k == JV_FLOAT) *out = x;
        else if (x.k == JV_INT || x.k == JV_BOOL) *out = jv_float(x.k == JV_INT ? (double)x.i : x.b);
        else if (x.k == JV_STR) {
            char buf[64], *end;
            jv t = do_strip(x.s, NULL, true, true);
            if (t.s.n == 0 || t.s.n >= sizeof buf) { *out = def; return SW_OK; }
            memcpy(buf, t.s.p, t.s.n); buf[t.s.n] = 0;
            double v = strtod(buf, &end);
            *out = *end ? def : jv_float(v);
        } else *out = def;
        return SW_OK;
    }
    if (jstr_is(name, "abs")) {
        if (x.k == JV_INT) { if (x.i == INT64_MIN) return jx_fail(c, at, "integer overflow"); *out = jv_int(x.i < 0 ? -x.i : x.i); }
        else if (x.k == JV_FLOAT) *out = jv_float(fabs(x.f));
        else if (x.k == JV_BOOL) *out = jv_int(x.b);
        else return jx_fail(c, at, "bad operand type for abs(): '%s'", jv_kind_name(x));
        return SW_OK;
    }
    if (jstr_is(name, "indent")) {   /* indent(width=4, first=False, blank=False) */
        const jv *w = A(0, "width"), *first = A(1, "first"), *blank = A(2, "blank");
        jv pad = jv_str("    ", 4);
        if (w && w->k == JV_STR) pad = *w;
        else if (w && w->k == JV_INT) {
            int64_t k = w->i < 0 ? 0 : w->i > 256 ? 256 : w->i;
            char *p = jarena_alloc(c->a, (size_t)k + 1);
            if (!p) return oom(c);
            memset(p, ' ', (size_t)k);
            pad = jv_str(p, (size_t)k);
        }
        if ((rc = jb_str(c, at, x, &s))) return rc;
        jbuf b = {.limit = c->lim.max_output};
        bool ok = true;
        for (size_t i = 0, line = 0; i <= s.s.n && ok; line++) {
            const char *nl = memchr(s.s.p + i, '\n', s.s.n - i);
            size_t e = nl ? (size_t)(nl - s.s.p) : s.s.n;
            bool empty = e == i;
            if ((line > 0 || (first && jv_truthy(*first))) && (!empty || (blank && jv_truthy(*blank))))
                ok = jbuf_add(&b, pad.s.p, pad.s.n);
            ok = ok && jbuf_add(&b, s.s.p + i, e - i) && (!nl || jbuf_add(&b, "\n", 1));
            if (!nl) break;
            i = e + 1;
        }
        rc = ok ? new_str(c, b.p ? b.p : "", b.n, out) : jx_limit(c, "output");
        jbuf_free(&b);
        return rc;
    }
    if (jstr_is(name, "replace")) {
        const jv *o = A(0, "old"), *n = A(1, "new"), *cnt = A(2, "count");
        if (!o || !n) return jx_fail(c, at, "replace needs old and new");
        jv so, sn;
        if ((rc = jb_str(c, at, x, &s)) || (rc = jb_str(c, at, *o, &so)) || (rc = jb_str(c, at, *n, &sn))) return rc;
        return str_replace(c, s.s, so.s, sn.s, cnt && cnt->k == JV_INT ? cnt->i : -1, out);
    }
#undef A
    (void)f;
    return SW_ERR_NOTFOUND;
}

int jb_test(jctx *c, jframe *f, const jnode *at, jstr name, jv x, const jv *args, int nargs, bool *out) {
    const jv *a0 = nargs > 0 ? &args[0] : NULL;
    if (jstr_is(name, "defined")) *out = x.k != JV_UNDEF;
    else if (jstr_is(name, "undefined")) *out = x.k == JV_UNDEF;
    else if (jstr_is(name, "none")) *out = x.k == JV_NONE;
    else if (jstr_is(name, "boolean")) *out = x.k == JV_BOOL;
    else if (jstr_is(name, "true")) *out = x.k == JV_BOOL && x.b;
    else if (jstr_is(name, "false")) *out = x.k == JV_BOOL && !x.b;
    else if (jstr_is(name, "integer")) *out = x.k == JV_INT;
    else if (jstr_is(name, "float")) *out = x.k == JV_FLOAT;
    else if (jstr_is(name, "number")) *out = x.k == JV_INT || x.k == JV_FLOAT || x.k == JV_BOOL;
    else if (jstr_is(name, "string")) *out = x.k == JV_STR;
    else if (jstr_is(name, "mapping")) *out = x.k == JV_DICT;
    else if (jstr_is(name, "iterable")) *out = x.k == JV_STR || x.k == JV_LIST || x.k == JV_DICT || x.k == JV_UNDEF;
    else if (jstr_is(name, "sequence")) *out = x.k == JV_STR || x.k == JV_LIST || x.k == JV_DICT || x.k == JV_UNDEF;
    else if (jstr_is(name, "callable")) *out = x.k == JV_MACRO || x.k == JV_UNDEF;   /* Jinja2's Undefined is callable */
    else if (jstr_is(name, "odd") || jstr_is(name, "even") || jstr_is(name, "divisibleby")) {
        /* Python: value % 2 == 1 / value % 2 == 0 / value % num == 0 (bools count as 0/1) */
        jv d = jstr_is(name, "divisibleby") ? (a0 ? *a0 : jv_undef()) : jv_int(2);
        bool xn = x.k == JV_INT || x.k == JV_BOOL || x.k == JV_FLOAT, dn = d.k == JV_INT || d.k == JV_BOOL || d.k == JV_FLOAT;
        if (!xn || !dn) return jx_fail(c, at, "%.*s test needs numbers", NAME(name));
        double xv = x.k == JV_FLOAT ? x.f : x.k == JV_INT ? (double)x.i : x.b, dv = d.k == JV_FLOAT ? d.f : d.k == JV_INT ? (double)d.i : d.b;
        if (dv == 0) return jx_fail(c, at, "integer division or modulo by zero");
        double r;
        if (x.k != JV_FLOAT && d.k != JV_FLOAT) {
            int64_t xi = x.k == JV_INT ? x.i : x.b, di = d.k == JV_INT ? d.i : d.b;
            int64_t m = di == -1 ? 0 : xi % di;
            if (m != 0 && ((m < 0) != (di < 0))) m += di;
            r = (double)m;
        } else {
            r = fmod(xv, dv);
            if (r != 0 && ((r < 0) != (dv < 0))) r += dv;
        }
        *out = jstr_is(name, "odd") ? r == 1 : r == 0;
    } else if (jstr_is(name, "eq") || jstr_is(name, "equalto") || jstr_is(name, "==") || jstr_is(name, "sameas")) {
        if (!a0) return jx_fail(c, at, "test needs an argument");
        *out = jv_equal(x, *a0) && (!jstr_is(name, "sameas") || x.k == a0->k);
    } else if (jstr_is(name, "ne")) {
        if (!a0) return jx_fail(c, at, "test needs an argument");
        *out = !jv_equal(x, *a0);
    } else if (jstr_is(name, "lt") || jstr_is(name, "le") || jstr_is(name, "gt") || jstr_is(name, "ge") ||
               jstr_is(name, "lessthan") || jstr_is(name, "greaterthan")) {
        if (!a0) return jx_fail(c, at, "test needs an argument");
        double p, q;
        if ((x.k == JV_INT || x.k == JV_FLOAT) && (a0->k == JV_INT || a0->k == JV_FLOAT)) {
            p = x.k == JV_INT ? (double)x.i : x.f; q = a0->k == JV_INT ? (double)a0->i : a0->f;
        } else if (x.k == JV_STR && a0->k == JV_STR) {
            size_t n = x.s.n < a0->s.n ? x.s.n : a0->s.n;
            int cmp = memcmp(x.s.p, a0->s.p, n);
            p = cmp ? cmp : (double)x.s.n; q = cmp ? 0 : (double)a0->s.n;
        } else return jx_fail(c, at, "comparison test between '%s' and '%s'", jv_kind_name(x), jv_kind_name(*a0));
        *out = (jstr_is(name, "lt") || jstr_is(name, "lessthan")) ? p < q : jstr_is(name, "le") ? p <= q :
               (jstr_is(name, "gt") || jstr_is(name, "greaterthan")) ? p > q : p >= q;
    } else if (jstr_is(name, "in")) {
        if (!a0) return jx_fail(c, at, "test needs an argument");
        if (a0->k == JV_STR) { if (x.k != JV_STR) return jx_fail(c, at, "'in <string>' requires string as left operand");
                               *out = x.s.n == 0 || memmem(a0->s.p, a0->s.n, x.s.p, x.s.n); }
        else if (a0->k == JV_LIST) { *out = false; for (size_t i = 0; i < a0->l->n && !*out; i++) *out = jv_equal(a0->l->v[i], x); }
        else if (a0->k == JV_DICT) *out = jv_dict_get(a0->d, x) != NULL;
        else return jx_fail(c, at, "'in' test needs a container");
    } else if (jstr_is(name, "lower") || jstr_is(name, "upper")) {
        if (x.k != JV_STR) { *out = false; return SW_OK; }
        bool up = jstr_is(name, "upper"), any = false, ok = true;
        for (size_t i = 0; i < x.s.n; i++) {
            unsigned char ch = (unsigned char)x.s.p[i];
            if (isalpha(ch) && ch < 0x80) { any = true; if ((up && islower(ch)) || (!up && isupper(ch))) ok = false; }
        }
        *out = any && ok;
    } else return SW_ERR_NOTFOUND;
    (void)f;
    return SW_OK;
}

int jb_method(jctx *c, const jnode *at, jv obj, jstr name, const jv *args, int nargs,
              const jstr *kwn, const jv *kwv, int nkw, jv *out) {
#define A(pos, nm) arg(args, nargs, kwn, kwv, nkw, pos, nm)
    if (obj.k == JV_STR) {
        jstr s = obj.s;
        static const struct { const char *name; int max; } arity[] = {
            {"startswith", 1}, {"endswith", 1}, {"strip", 1}, {"lstrip", 1}, {"rstrip", 1}, {"split", 2}, {"rsplit", 2},
            {"replace", 3}, {"upper", 0}, {"lower", 0}, {"capitalize", 0}, {"title", 0}, {"find", 1}, {"count", 1}};
        for (size_t i = 0; i < sizeof arity / sizeof arity[0]; i++)
            if (jstr_is(name, arity[i].name) && nargs + nkw > arity[i].max)
                return jx_fail(c, at, "%s expected at most %d argument%s, got %d", arity[i].name, arity[i].max,
                               arity[i].max == 1 ? "" : "s", nargs + nkw);
        if (jstr_is(name, "startswith")) return starts_ends(c, at, s, A(0, "prefix"), false, out);
        if (jstr_is(name, "endswith")) return starts_ends(c, at, s, A(0, "suffix"), true, out);
        if (jstr_is(name, "strip") || jstr_is(name, "lstrip") || jstr_is(name, "rstrip")) {
            const jv *ch = A(0, "chars");
            if (ch && ch->k != JV_STR && ch->k != JV_NONE) return jx_fail(c, at, "strip arg must be None or str");
            *out = do_strip(s, ch, name.p[0] != 'r', name.p[0] != 'l');
            return SW_OK;
        }
        if (jstr_is(name, "split") || jstr_is(name, "rsplit")) {
            const jv *ms = A(1, "maxsplit");
            if (ms && ms->k != JV_INT) return jx_fail(c, at, "maxsplit must be an integer");
            return str_split(c, at, s, A(0, "sep"), ms ? ms->i : -1, name.p[0] == 'r', out);
        }
        if (jstr_is(name, "replace")) {
            const jv *o = A(0, "old"), *n = A(1, "new"), *cnt = A(2, "count");
            if (!o || !n || o->k != JV_STR || n->k != JV_STR) return jx_fail(c, at, "replace needs two strings");
            if (cnt && cnt->k != JV_INT) return jx_fail(c, at, "replace: count must be an integer");
            return str_replace(c, s, o->s, n->s, cnt && cnt->k == JV_INT ? cnt->i : -1, out);
        }
        if (jstr_is(name, "upper")) return case_map(c, s, 0, out);
        if (jstr_is(name, "lower")) return case_map(c, s, 1, out);
        if (jstr_is(name, "capitalize")) return case_map(c, s, 2, out);
        if (jstr_is(name, "title")) return case_map(c, s, 3, out);
        if (jstr_is(name, "find") || jstr_is(name, "count")) {
            const jv *sub = A(0, "sub");
            if (!sub || sub->k != JV_STR) return jx_fail(c, at, "%.*s needs a string", NAME(name));
            if (name.p[0] == 'f') {
                const char *h = sub->s.n ? memmem(s.p, s.n, sub->s.p, sub->s.n) : s.p;
                *out = jv_int(h ? (int64_t)ju_len(s.p, (size_t)(h - s.p)) : -1);
            } else {
                int64_t k = 0;
                if (!sub->s.n) k = (int64_t)ju_len(s.p, s.n) + 1;
                else for (const char *p = s.p, *h; (h = memmem(p, s.n - (size_t)(p - s.p), sub->s.p, sub->s.n)); p = h + sub->s.n) k++;
                *out = jv_int(k);
            }
            return SW_OK;
        }
    } else if (obj.k == JV_DICT) {
        if (jstr_is(name, "items") || jstr_is(name, "keys") || jstr_is(name, "values")) {
            if (name.p[0] == 'i') return jb_filter(c, NULL, at, name, obj, NULL, 0, NULL, NULL, 0, out);
            jlist *l = jv_list_new(c->a, obj.d->n);
            if (!l) return oom(c);
            for (size_t i = 0; i < obj.d->n; i++) l->v[i] = name.p[0] == 'k' ? obj.d->key[i] : obj.d->val[i];
            l->n = obj.d->n;
            *out = list_v(l);
            return SW_OK;
        }
        if (jstr_is(name, "get")) {
            const jv *k = A(0, "key"), *d = A(1, "default");
            if (!k) return jx_fail(c, at, "get needs a key");
            jv *v = jv_dict_get(obj.d, *k);
            *out = v ? *v : d ? *d : jv_none();
            return SW_OK;
        }
    } else if (obj.k == JV_LIST && (jstr_is(name, "count") || jstr_is(name, "index"))) {
        if (nargs != 1 || nkw) return jx_fail(c, at, "%.*s takes exactly one argument", NAME(name));
        int64_t k = 0, first = -1;
        for (size_t i = 0; i < obj.l->n; i++)
            if (jv_equal(obj.l->v[i], args[0])) { k++; if (first < 0) first = (int64_t)i; }
        if (name.p[0] == 'i' && first < 0) return jx_fail(c, at, "list.index(x): x not in list");
        *out = jv_int(name.p[0] == 'c' ? k : first);
        return SW_OK;
    } else if (obj.k == JV_LOOP && jstr_is(name, "cycle")) {
        if (nargs == 0) return jx_fail(c, at, "no items for cycling given");
        *out = args[obj.lp->index0 % nargs];
        return SW_OK;
    }
#undef A
    return jx_fail(c, at, "'%s' object has no method '%.*s'", jv_kind_name(obj), NAME(name));
}

static int kw_dict(jctx *c, const jstr *kwn, const jv *kwv, int nkw, jv_kind kind, jv *out) {
    jdict *d = jv_dict_new(c->a, (size_t)nkw);
    if (!d) return oom(c);
    for (int i = 0; i < nkw; i++)
        if (jv_dict_set(c->a, d, jv_str(kwn[i].p, kwn[i].n), kwv[i])) return oom(c);
    *out = (jv){.k = kind, .d = d};
    return SW_OK;
}

int jb_global(jctx *c, const jnode *at, jstr name, const jv *args, int nargs,
              const jstr *kwn, const jv *kwv, int nkw, jv *out) {
    int rc;
    if (jstr_is(name, "raise_exception")) {
        jv m = jv_str("", 0);
        if (nargs > 0 && (rc = jb_str(c, at, args[0], &m))) return rc;
        return sw_err_set(c->err, SW_ERR_FORMAT, "%.*s", (int)(m.s.n > 500 ? 500 : m.s.n), m.s.p);
    }
    if (jstr_is(name, "namespace")) {
        if (nargs == 1 && args[0].k == JV_DICT) {
            jdict *d = jv_dict_new(c->a, args[0].d->n);
            if (!d) return oom(c);
            for (size_t i = 0; i < args[0].d->n; i++) if (jv_dict_set(c->a, d, args[0].d->key[i], args[0].d->val[i])) return oom(c);
            for (int i = 0; i < nkw; i++) if (jv_dict_set(c->a, d, jv_str(kwn[i].p, kwn[i].n), kwv[i])) return oom(c);
            *out = (jv){.k = JV_NS, .d = d};
            return SW_OK;
        }
        return kw_dict(c, kwn, kwv, nkw, JV_NS, out);
    }
    if (jstr_is(name, "dict")) return kw_dict(c, kwn, kwv, nkw, JV_DICT, out);
    if (jstr_is(name, "range")) {
        int64_t v[3] = {0, 0, 1};
        if (nargs < 1 || nargs > 3) return jx_fail(c, at, "range expects 1 to 3 integer arguments");
        for (int i = 0; i < nargs; i++) if (args[i].k != JV_INT) return jx_fail(c, at, "range expects integers");
        if (nargs == 1) v[1] = args[0].i;
        else { v[0] = args[0].i; v[1] = args[1].i; if (nargs == 3) v[2] = args[2].i; }
        if (v[2] == 0) return jx_fail(c, at, "range() arg 3 must not be zero");
        double count = ceil(((double)v[1] - (double)v[0]) / (double)v[2]);
        if (count < 0) count = 0;
        if (count > (double)(c->lim.max_steps - c->steps)) return jx_limit(c, "step");
        jlist *l = jv_list_new(c->a, (size_t)count);
        if (!l) return oom(c);
        for (int64_t i = 0; i < (int64_t)count; i++) l->v[i] = jv_int(v[0] + i * v[2]);
        l->n = (size_t)count;
        c->steps += (uint64_t)count;
        *out = list_v(l);
        return SW_OK;
    }
    if (jstr_is(name, "strftime_now")) {
        if (nargs < 1 || args[0].k != JV_STR) return jx_fail(c, at, "strftime_now needs a format string");
        struct tm tm = {0};
        int y, mo, d;
        if (c->today && sscanf(c->today, "%d-%d-%d", &y, &mo, &d) == 3) {
            tm.tm_year = y - 1900; tm.tm_mon = mo - 1; tm.tm_mday = d; tm.tm_isdst = -1;
            time_t t = timegm(&tm);
            gmtime_r(&t, &tm);
        } else {
            time_t t = time(NULL);
            localtime_r(&t, &tm);
        }
        char fmt[256], buf[512];
        if (args[0].s.n >= sizeof fmt) return jx_fail(c, at, "strftime_now format too long");
        memcpy(fmt, args[0].s.p, args[0].s.n);
        fmt[args[0].s.n] = 0;
        size_t n = strftime(buf, sizeof buf, fmt, &tm);
        return new_str(c, buf, n, out);
    }
    return SW_ERR_NOTFOUND;
}
