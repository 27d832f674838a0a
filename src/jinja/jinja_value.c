/* jinja_value.c — the value model of the Jinja interpreter: an arena with a byte limit
 * (all values of one render live in it and die together), lists and insertion-ordered
 * dicts, Python truthiness and equality, str() of values (Python's formatting: True,
 * None, float repr, ['a', 1]), tojson (json.dumps with ensure_ascii/indent/sort_keys and
 * Python's separators), conversion from jansson, and UTF-8 code point indexing. */
#include "jinja/jinja_impl.h"
#include <math.h>
#include <stddef.h>

struct jarena_chunk { jarena_chunk *next; size_t used, cap; max_align_t data[]; };

void *jarena_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jarena_chunk *h = a->head;
    if (!h || h->cap - h->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->limit && (a->total + cap > a->limit || cap > a->limit)) return NULL;
        h = malloc(sizeof *h + cap);
        if (!h) return NULL;
        h->next = a->head; h->used = 0; h->cap = cap;
        a->head = h;
        a->total += cap;
    }
    void *p = (char *)h->data + h->used;
    h->used += n;
    memset(p, 0, n);
    return p;
}

char *jarena_strdup(jarena *a, const char *s, size_t n) {
    char *p = jarena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void jarena_free(jarena *a) {
    for (jarena_chunk *h = a->head, *nx; h; h = nx) { nx = h->next; free(h); }
    a->head = NULL; a->total = 0;
}

jlist *jv_list_new(jarena *a, size_t cap) {
    jlist *l = jarena_alloc(a, sizeof *l);
    if (!l) return NULL;
    if (cap && !(l->v = jarena_alloc(a, cap * sizeof(jv)))) return NULL;
    l->cap = cap;
    return l;
}

int jv_list_push(jarena *a, jlist *l, jv x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *v = jarena_alloc(a, cap * sizeof *v);
        if (!v) return SW_ERR_NOMEM;
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v; l->cap = cap;
    }
    l->v[l->n++] = x;
    return SW_OK;
}

jdict *jv_dict_new(jarena *a, size_t cap) {
    jdict *d = jarena_alloc(a, sizeof *d);
    if (!d) return NULL;
    if (cap && (!(d->key = jarena_alloc(a, cap * sizeof(jv))) || !(d->val = jarena_alloc(a, cap * sizeof(jv)))))
        return NULL;
    d->cap = cap;
    return d;
}

jv *jv_dict_get(const jdict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->key[i], key)) return &d->val[i];
    return NULL;
}

jv *jv_dict_get_str(const jdict *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->key[i].k == JV_STR && d->key[i].s.n == n && !memcmp(d->key[i].s.p, k, n)) return &d->val[i];
    return NULL;
}

int jv_dict_set(jarena *a, jdict *d, jv key, jv val) {
    jv *old = jv_dict_get(d, key);
    if (old) { *old = val; return SW_OK; }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *k = jarena_alloc(a, cap * sizeof *k), *v = jarena_alloc(a, cap * sizeof *v);
        if (!k || !v) return SW_ERR_NOMEM;
        if (d->n) { memcpy(k, d->key, d->n * sizeof *k); memcpy(v, d->val, d->n * sizeof *v); }
        d->key = k; d->val = v; d->cap = cap;
    }
    d->key[d->n] = key;
    d->val[d->n++] = val;
    return SW_OK;
}

bool jv_truthy(jv v) {
    switch (v.k) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0.0;
    case JV_STR: return v.s.n > 0;
    case JV_LIST: return v.l->n > 0;
    case JV_DICT: return v.d->n > 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.k == JV_INT || v.k == JV_FLOAT || v.k == JV_BOOL; }
static double num(jv v) { return v.k == JV_FLOAT ? v.f : v.k == JV_INT ? (double)v.i : (double)v.b; }

/* Deep equality to a bounded depth (past it, containers compare by identity), so a
 * template-built nesting cannot exhaust the stack. */
static bool equal_depth(jv a, jv b, int depth);

bool jv_equal(jv a, jv b) { return equal_depth(a, b, 128); }

static bool equal_depth(jv a, jv b, int depth) {
    if (is_num(a) && is_num(b)) {
        if (a.k != JV_FLOAT && b.k != JV_FLOAT) return (a.k == JV_INT ? a.i : a.b) == (b.k == JV_INT ? b.i : b.b);
        return num(a) == num(b);
    }
    if (a.k != b.k) return false;
    switch (a.k) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.s.n == b.s.n && !memcmp(a.s.p, b.s.p, a.s.n);
    case JV_LIST:
        if (a.l == b.l) return true;
        if (a.l->n != b.l->n || depth <= 0) return false;
        for (size_t i = 0; i < a.l->n; i++) if (!equal_depth(a.l->v[i], b.l->v[i], depth - 1)) return false;
        return true;
    case JV_DICT:
        if (a.d == b.d) return true;
        if (a.d->n != b.d->n || depth <= 0) return false;
        for (size_t i = 0; i < a.d->n; i++) {
            jv *o = jv_dict_get(b.d, a.d->key[i]);
            if (!o || !equal_depth(a.d->val[i], *o, depth - 1)) return false;
        }
        return true;
    case JV_NS: return a.d == b.d;
    case JV_MACRO: return a.m == b.m;
    case JV_LOOP: return a.lp == b.lp;
    default: return false;
    }
}

const char *jv_kind_name(jv v) {
    static const char *names[] = {"Undefined", "NoneType", "bool", "int", "float", "str", "list",
                                  "dict", "Namespace", "Macro", "LoopContext"};
    return names[v.k];
}

bool jbuf_add(jbuf *b, const char *s, size_t n) {
    if (b->over) return false;
    if (b->limit && (n > b->limit || b->n > b->limit - n)) { b->over = true; return false; }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->over = true; return false; }
        b->p = p; b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

void jbuf_free(jbuf *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }

/* Python's repr(float): the shortest digits that round-trip, positional for exponents
 * -4..15, else d.ddde+XX; always with a '.0' or an exponent. */
void jv_float_repr(double f, char out[40]) {
    if (isnan(f)) { strcpy(out, "nan"); return; }
    if (isinf(f)) { strcpy(out, f < 0 ? "-inf" : "inf"); return; }
    if (f == 0) { strcpy(out, signbit(f) ? "-0.0" : "0.0"); return; }
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e = [-]D[.DDD]e[+-]XX: collect digits and the exponent */
    char digits[24]; int nd = 0; const char *p = e; bool neg = false;
    if (*p == '-') { neg = true; p++; }
    for (; *p && *p != 'e'; p++) if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char *o = out;
    if (neg) *o++ = '-';
    if (exp >= 16 || exp < -4) {
        *o++ = digits[0];
        if (nd > 1) { *o++ = '.'; memcpy(o, digits + 1, nd - 1); o += nd - 1; }
        sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    if (exp < 0) {
        *o++ = '0'; *o++ = '.';
        for (int i = 0; i < -exp - 1; i++) *o++ = '0';
        memcpy(o, digits, nd); o += nd;
    } else {
        for (int i = 0; i <= exp; i++) *o++ = i < nd ? digits[i] : '0';
        *o++ = '.';
        if (nd > exp + 1) { memcpy(o, digits + exp + 1, nd - exp - 1); o += nd - exp - 1; }
        else *o++ = '0';
    }
    *o = 0;
}

/* Python's repr(str): single quotes unless the text has ' and no ". */
static bool str_repr(jbuf *b, jstr s) {
    char q = (memchr(s.p, '\'', s.n) && !memchr(s.p, '"', s.n)) ? '"' : '\'';
    if (!jbuf_add(b, &q, 1)) return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        char tmp[8];
        if (ch == '\\' || ch == (unsigned char)q) { tmp[0] = '\\'; tmp[1] = (char)ch; if (!jbuf_add(b, tmp, 2)) return false; }
        else if (ch == '\n') { if (!jbuf_str(b, "\\n")) return false; }
        else if (ch == '\r') { if (!jbuf_str(b, "\\r")) return false; }
        else if (ch == '\t') { if (!jbuf_str(b, "\\t")) return false; }
        else if (ch < 0x20 || ch == 0x7f) { snprintf(tmp, sizeof tmp, "\\x%02x", ch); if (!jbuf_str(b, tmp)) return false; }
        else if (!jbuf_add(b, (const char *)&ch, 1)) return false;
    }
    return jbuf_add(b, &q, 1);
}

static bool to_str(jbuf *b, jv v, int depth, bool inner) {
    char tmp[48];
    if (depth <= 0) return jbuf_str(b, "[...]");
    switch (v.k) {
    case JV_UNDEF: return inner ? jbuf_str(b, "Undefined") : true;
    case JV_NONE: return jbuf_str(b, "None");
    case JV_BOOL: return jbuf_str(b, v.b ? "True" : "False");
    case JV_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v.i); return jbuf_str(b, tmp);
    case JV_FLOAT: jv_float_repr(v.f, tmp); return jbuf_str(b, tmp);
    case JV_STR: return inner ? str_repr(b, v.s) : jbuf_add(b, v.s.p, v.s.n);
    case JV_LIST:
        if (!jbuf_str(b, v.l->tuple ? "(" : "[")) return false;
        for (size_t i = 0; i < v.l->n; i++)
            if ((i && !jbuf_str(b, ", ")) || !to_str(b, v.l->v[i], depth - 1, true)) return false;
        return jbuf_str(b, !v.l->tuple ? "]" : v.l->n == 1 ? ",)" : ")");
    case JV_DICT:
        if (!jbuf_str(b, "{")) return false;
        for (size_t i = 0; i < v.d->n; i++)
            if ((i && !jbuf_str(b, ", ")) || !to_str(b, v.d->key[i], depth - 1, true) || !jbuf_str(b, ": ") ||
                !to_str(b, v.d->val[i], depth - 1, true)) return false;
        return jbuf_str(b, "}");
    case JV_NS: return jbuf_str(b, "<Namespace>");
    case JV_MACRO: return jbuf_str(b, "<Macro>");
    case JV_LOOP: return jbuf_str(b, "<LoopContext>");
    }
    return true;
}

bool jv_to_str(jbuf *b, jv v, int depth) { return to_str(b, v, depth, false); }

static bool json_str(jbuf *b, jstr s, bool ascii) {
    if (!jbuf_str(b, "\"")) return false;
    size_t i = 0;
    while (i < s.n) {
        size_t j = i;
        while (j < s.n) {
            unsigned char ch = (unsigned char)s.p[j];
            if (ch < 0x20 || ch == '"' || ch == '\\' || (ascii && ch >= 0x80)) break;
            j++;
        }
        if (j > i && !jbuf_add(b, s.p + i, j - i)) return false;
        if (j == s.n) break;
        unsigned char ch = (unsigned char)s.p[j];
        char tmp[16];
        const char *esc = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r" :
                          ch == '\t' ? "\\t" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
        if (esc) { if (!jbuf_str(b, esc)) return false; i = j + 1; continue; }
        if (ch < 0x80) { snprintf(tmp, sizeof tmp, "\\u%04x", ch); if (!jbuf_str(b, tmp)) return false; i = j + 1; continue; }
        /* ensure_ascii: decode one UTF-8 sequence (invalid bytes become U+FFFD) */
        uint32_t cp = 0xFFFD; size_t len = 1;
        if ((ch & 0xE0) == 0xC0 && j + 1 < s.n) { cp = ((ch & 0x1Fu) << 6) | (s.p[j + 1] & 0x3F); len = 2; }
        else if ((ch & 0xF0) == 0xE0 && j + 2 < s.n) { cp = ((ch & 0x0Fu) << 12) | ((s.p[j + 1] & 0x3Fu) << 6) | (s.p[j + 2] & 0x3F); len = 3; }
        else if ((ch & 0xF8) == 0xF0 && j + 3 < s.n) {
            cp = ((ch & 0x07u) << 18) | ((s.p[j + 1] & 0x3Fu) << 12) | ((s.p[j + 2] & 0x3Fu) << 6) | (s.p[j + 3] & 0x3F); len = 4;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        } else snprintf(tmp, sizeof tmp, "\\u%04x", cp);
        if (!jbuf_str(b, tmp)) return false;
        i = j + len;
    }
    return jbuf_str(b, "\"");
}

static bool json_nl(jbuf *b, int indent, int level) {
    if (!jbuf_str(b, "\n")) return false;
    for (int i = 0; i < indent * level; i++) if (!jbuf_add(b, " ", 1)) return false;
    return true;
}

static int cmp_keys(const void *x, const void *y) {
    const jv *a = *(const jv *const *)x, *b = *(const jv *const *)y;
    size_t n = a->s.n < b->s.n ? a->s.n : b->s.n;
    int c = memcmp(a->s.p, b->s.p, n);
    return c ? c : (a->s.n > b->s.n) - (a->s.n < b->s.n);
}

static int tojson(jbuf *b, jv v, int indent, bool ascii, bool sort, int level, int depth, sw_err *err) {
    char tmp[48];
    if (level > depth) return sw_err_set(err, SW_ERR_RANGE, "tojson: value nested too deeply");
    bool ok = true;
    switch (v.k) {
    case JV_NONE: ok = jbuf_str(b, "null"); break;
    case JV_BOOL: ok = jbuf_str(b, v.b ? "true" : "false"); break;
    case JV_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v.i); ok = jbuf_str(b, tmp); break;
    case JV_FLOAT:
        if (isnan(v.f)) ok = jbuf_str(b, "NaN");
        else if (isinf(v.f)) ok = jbuf_str(b, v.f < 0 ? "-Infinity" : "Infinity");
        else { jv_float_repr(v.f, tmp); ok = jbuf_str(b, tmp); }
        break;
    case JV_STR: ok = json_str(b, v.s, ascii); break;
    case JV_LIST:
        if (v.l->n == 0) { ok = jbuf_str(b, "[]"); break; }
        if (!jbuf_str(b, "[")) break;
        for (size_t i = 0; i < v.l->n && ok; i++) {
            if (i) ok = jbuf_str(b, indent >= 0 ? "," : ", ");
            if (ok && indent >= 0) ok = json_nl(b, indent, level + 1);
            if (!ok) break;
            int rc = tojson(b, v.l->v[i], indent, ascii, sort, level + 1, depth, err);
            if (rc) return rc;
        }
        if (ok && indent >= 0) ok = json_nl(b, indent, level);
        if (ok) ok = jbuf_str(b, "]");
        break;
    case JV_DICT: {
        if (v.d->n == 0) { ok = jbuf_str(b, "{}"); break; }
        const jv **keys = malloc(v.d->n * sizeof *keys);
        if (!keys) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < v.d->n; i++) {
            if (v.d->key[i].k != JV_STR) { free(keys); return sw_err_set(err, SW_ERR_FORMAT, "tojson: keys must be strings"); }
            keys[i] = &v.d->key[i];
        }
        if (sort) qsort(keys, v.d->n, sizeof *keys, cmp_keys);
        ok = jbuf_str(b, "{");
        for (size_t i = 0; i < v.d->n && ok; i++) {
            if (i) ok = jbuf_str(b, indent >= 0 ? "," : ", ");
            if (ok && indent >= 0) ok = json_nl(b, indent, level + 1);
            if (ok) ok = json_str(b, keys[i]->s, ascii) && jbuf_str(b, ": ");
            if (!ok) break;
            int rc = tojson(b, v.d->val[keys[i] - v.d->key], indent, ascii, sort, level + 1, depth, err);
            if (rc) { free(keys); return rc; }
        }
        free(keys);
        if (ok && indent >= 0) ok = json_nl(b, indent, level);
        if (ok) ok = jbuf_str(b, "}");
        break;
    }
    default:
        return sw_err_set(err, SW_ERR_FORMAT, "tojson: Object of type %s is not JSON serializable", jv_kind_name(v));
    }
    return ok ? SW_OK : sw_err_set(err, SW_ERR_RANGE, "output too large");
}

int jv_tojson(jbuf *b, jv v, int indent, bool ascii, bool sort, int depth, sw_err *err) {
    return tojson(b, v, indent, ascii, sort, 0, depth, err);
}

int jv_from_json(jarena *a, const json_t *j, int depth, jv *out, sw_err *err) {
    if (depth <= 0) return sw_err_set(err, SW_ERR_RANGE, "template variables nested too deeply");
    switch (json_typeof(j)) {
    case JSON_NULL: *out = jv_none(); return SW_OK;
    case JSON_TRUE: *out = jv_bool(true); return SW_OK;
    case JSON_FALSE: *out = jv_bool(false); return SW_OK;
    case JSON_INTEGER: *out = jv_int(json_integer_value(j)); return SW_OK;
    case JSON_REAL: *out = jv_float(json_real_value(j)); return SW_OK;
    case JSON_STRING: {
        size_t n = json_string_length(j);
        char *p = jarena_strdup(a, json_string_value(j), n);
        if (!p) return sw_err_set(err, SW_ERR_RANGE, "template variables too large");
        *out = jv_str(p, n);
        return SW_OK;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jlist *l = jv_list_new(a, n);
        if (!l) return sw_err_set(err, SW_ERR_RANGE, "template variables too large");
        for (size_t i = 0; i < n; i++) {
            int rc = jv_from_json(a, json_array_get(j, i), depth - 1, &l->v[i], err);
            if (rc) return rc;
        }
        l->n = n;
        *out = (jv){.k = JV_LIST, .l = l};
        return SW_OK;
    }
    case JSON_OBJECT: {
        jdict *d = jv_dict_new(a, json_object_size(j));
        if (!d) return sw_err_set(err, SW_ERR_RANGE, "template variables too large");
        const char *k; json_t *v;
        void *it;
        for (it = json_object_iter((json_t *)j); it; it = json_object_iter_next((json_t *)j, it)) {
            k = json_object_iter_key(it);
            v = json_object_iter_value(it);
            size_t kn = json_object_iter_key_len(it);
            char *kp = jarena_strdup(a, k, kn);
            if (!kp) return sw_err_set(err, SW_ERR_RANGE, "template variables too large");
            jv val;
            int rc = jv_from_json(a, v, depth - 1, &val, err);
            if (rc) return rc;
            d->key[d->n] = jv_str(kp, kn);
            d->val[d->n++] = val;
        }
        *out = (jv){.k = JV_DICT, .d = d};
        return SW_OK;
    }
    }
    return sw_err_set(err, SW_ERR_FORMAT, "unknown JSON type");
}

size_t ju_len(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

size_t ju_offset(const char *s, size_t n, size_t i) {
    size_t off = 0;
    while (off < n && i > 0) {
        off++;
        while (off < n && ((unsigned char)s[off] & 0xC0) == 0x80) off++;
        i--;
    }
    return off;
}
