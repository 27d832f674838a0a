/* nfc.c — Unicode Normalization Form C (UAX #15), as Qwen's tokenizer.json normalizer
 * applies it before pre-tokenizing: a quick check (text holding no code point whose NFC
 * quick check is No/Maybe, its marks in canonical order, is already NFC: returned
 * untouched), else
 * full canonical decomposition, canonical ordering of combining marks, and canonical
 * composition (Hangul arithmetically). Tables in unicode_nfc.c. Invalid UTF-8 bytes pass
 * through as themselves (internally code points 0x110000 + byte: class 0, never composed). */
#include "tokenizer/tok_impl.h"
#include <stdlib.h>
#include <string.h>

#define NFC_RAW 0x110000u /* + byte: a byte that is not valid UTF-8 */

enum { H_SBASE = 0xAC00, H_LBASE = 0x1100, H_VBASE = 0x1161, H_TBASE = 0x11A7,
       H_LCOUNT = 19, H_VCOUNT = 21, H_TCOUNT = 28, H_NCOUNT = H_VCOUNT * H_TCOUNT, H_SCOUNT = H_LCOUNT * H_NCOUNT };

/* One UTF-8 character (tok_utf8_decode); a byte that does not start a valid character
 * decodes alone to NFC_RAW + byte. Returns its length. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    size_t l = tok_utf8_decode(s, n, cp);
    if (l) return l;
    *cp = NFC_RAW + s[0];
    return 1;
}

static size_t utf8_put(uint32_t cp, char *o) {
    if (cp >= NFC_RAW) { o[0] = (char)(cp - NFC_RAW); return 1; }
    return tok_utf8_encode(cp, o);
}

static bool in_qc(uint32_t cp) {
    if (cp < tok_nfc_qc[0].first) return false;
    int lo = 0, hi = tok_nfc_qc_n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (cp < tok_nfc_qc[m].first) hi = m - 1;
        else if (cp > tok_nfc_qc[m].last) lo = m + 1;
        else return true;
    }
    return false;
}

static uint8_t ccc(uint32_t cp) {
    if (cp < tok_nfc_ccc[0].first) return 0;
    int lo = 0, hi = tok_nfc_ccc_n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (cp < tok_nfc_ccc[m].first) hi = m - 1;
        else if (cp > tok_nfc_ccc[m].last) lo = m + 1;
        else return (uint8_t)tok_nfc_ccc[m].to;
    }
    return 0;
}

static const tok_nfc_dec *decomp(uint32_t cp) {
    int lo = 0, hi = tok_nfc_decomp_n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (cp < tok_nfc_decomp[m].cp) hi = m - 1;
        else if (cp > tok_nfc_decomp[m].cp) lo = m + 1;
        else return &tok_nfc_decomp[m];
    }
    return NULL;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (b < 0x300) return 0; /* no composite has a second character below U+0300 */
    if (a >= H_LBASE && a < H_LBASE + H_LCOUNT && b >= H_VBASE && b < H_VBASE + H_VCOUNT)
        return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
    if (a >= H_SBASE && a < H_SBASE + H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 && b > H_TBASE && b < H_TBASE + H_TCOUNT)
        return a + (b - H_TBASE);
    if (a >= NFC_RAW || b >= NFC_RAW) return 0;
    uint64_t k = (uint64_t)a << 21 | b;
    int lo = 0, hi = tok_nfc_comp_n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (k < tok_nfc_comp[m].key) hi = m - 1;
        else if (k > tok_nfc_comp[m].key) lo = m + 1;
        else return tok_nfc_comp[m].cp;
    }
    return 0;
}

/* Growable code point buffer. */
typedef struct cpvec { uint32_t *v; size_t n, cap; } cpvec;

static int cp_push(cpvec *b, uint32_t cp) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        uint32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) return SW_ERR_NOMEM;
        b->v = v; b->cap = cap;
    }
    b->v[b->n++] = cp;
    return SW_OK;
}

/* Full canonical decomposition of the text. */
static int decompose(const uint8_t *s, size_t len, cpvec *b) {
    int rc = SW_OK;
    for (size_t i = 0; i < len && !rc;) {
        uint32_t cp;
        i += utf8_next(s + i, len - i, &cp);
        if (cp >= H_SBASE && cp < H_SBASE + H_SCOUNT) {
            uint32_t k = cp - H_SBASE;
            rc = cp_push(b, H_LBASE + k / H_NCOUNT);
            if (!rc) rc = cp_push(b, H_VBASE + k % H_NCOUNT / H_TCOUNT);
            if (!rc && k % H_TCOUNT) rc = cp_push(b, H_TBASE + k % H_TCOUNT);
            continue;
        }
        const tok_nfc_dec *d = cp >= 0xc0 && cp < NFC_RAW ? decomp(cp) : NULL;
        if (!d) { rc = cp_push(b, cp); continue; }
        for (int j = 0; j < d->n && !rc; j++) rc = cp_push(b, tok_nfc_pool[d->off + j]);
    }
    return rc;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Stable sort of v[0..n) by combining class: insertion sort for the usual short runs, a
 * keyed qsort (class, position, code point) for long ones so no input is quadratic. */
static int sort_marks(uint32_t *v, size_t n) {
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t x = v[i];
            uint8_t cx = ccc(x);
            size_t j = i;
            for (; j > 0 && ccc(v[j - 1]) > cx; j--) v[j] = v[j - 1];
            v[j] = x;
        }
        return SW_OK;
    }
    uint64_t *k = malloc(n * sizeof *k);
    if (!k) return SW_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) k[i] = (uint64_t)ccc(v[i]) << 56 | (uint64_t)i << 21 | v[i];
    qsort(k, n, sizeof *k, cmp_u64);
    for (size_t i = 0; i < n; i++) v[i] = (uint32_t)(k[i] & 0x1fffff);
    free(k);
    return SW_OK;
}

/* Canonical composition in place; returns the new length. A mark composes with the last
 * starter unless a character between them has class 0 or a class >= its own. */
static size_t compose_all(uint32_t *v, size_t n) {
    size_t o = 0;
    long starter = -1;
    int last = -1; /* class of the last character kept after the starter; -1: none */
    for (size_t i = 0; i < n; i++) {
        uint32_t c = v[i];
        int cc = ccc(c);
        if (starter >= 0 && (last == -1 || (last != 0 && last < cc))) {
            uint32_t p = compose(v[starter], c);
            if (p) { v[starter] = p; continue; }
        }
        if (cc == 0) { starter = (long)o; last = -1; }
        else last = cc;
        v[o++] = c;
    }
    return o;
}

/* Growable output bytes. */
typedef struct bytevec { char *v; size_t n, cap; } bytevec;

static int bytes_put(bytevec *o, const void *p, size_t n) {
    if (n == 0) return SW_OK;
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + n) cap *= 2;
        char *v = realloc(o->v, cap);
        if (!v) return SW_ERR_NOMEM;
        o->v = v; o->cap = cap;
    }
    memcpy(o->v + o->n, p, n);
    o->n += n;
    return SW_OK;
}

/* Appends the NFC of s[0..len) to o (b: scratch). */
static int normalize(const uint8_t *s, size_t len, cpvec *b, bytevec *o) {
    b->n = 0;
    int rc = decompose(s, len, b);
    for (size_t r = 0; r < b->n && !rc;) { /* canonical ordering of each run of marks */
        if (ccc(b->v[r]) == 0) { r++; continue; }
        size_t e = r + 1;
        while (e < b->n && ccc(b->v[e]) != 0) e++;
        rc = sort_marks(b->v + r, e - r);
        r = e;
    }
    size_t n = rc ? 0 : compose_all(b->v, b->n);
    for (size_t j = 0; j < n && !rc; j++) {
        char u[4];
        rc = bytes_put(o, u, utf8_put(b->v[j], u));
    }
    return rc;
}

/* Only the stretches that fail the quick check are normalized: an ASCII character is a
 * boundary (class 0, composes with nothing before it), so each such stretch runs from the
 * ASCII character before it to the ASCII character after it. */
int tok_nfc(const char *text, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    const uint8_t *s = (const uint8_t *)text;
    bytevec o = {0};
    cpvec b = {0};
    size_t i = 0, done = 0; /* text[0, done) is in o (once o is in use) */
    int last = 0, rc = SW_OK; /* last: combining class of the previous character */
    while (i < len && !rc) {
        if (s[i] < 0x80) { i++; last = 0; continue; }
        size_t c0 = i;
        uint32_t cp;
        i += utf8_next(s + i, len - i, &cp);
        if (cp >= NFC_RAW || !(tok_nfc_busy[cp >> 13] >> (cp >> 8 & 31) & 1)) { last = 0; continue; }
        int cc = ccc(cp);
        bool need = in_qc(cp) || (cc && last > cc);
        last = cc;
        if (!need) continue;
        size_t a = c0, e = i;
        while (a > done && s[a - 1] >= 0x80) a--;
        if (a > done) a--; /* the ASCII character the stretch starts with */
        while (e < len && s[e] >= 0x80) e++;
        rc = bytes_put(&o, s + done, a - done);
        if (!rc) rc = normalize(s + a, e - a, &b, &o);
        done = i = e;
        last = 0;
    }
    if (!rc && o.v) rc = bytes_put(&o, s + done, len - done);
    free(b.v);
    if (rc) { free(o.v); return rc; }
    *out = o.v;
    *out_len = o.n;
    return SW_OK;
}
