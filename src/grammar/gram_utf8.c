/* gram_utf8.c — character classes over Unicode code points turned into byte automata:
 * a set of code point ranges becomes an alternative of byte-range sequences matching
 * exactly the UTF-8 encodings of those code points (the range-splitting method of RE2 /
 * Rust's utf8-ranges: split at encoding-length boundaries, then wherever a range does
 * not cover whole continuation-byte blocks). Surrogates are never matched. */
#include "grammar/gram_internal.h"

int32_t gram_src_cp(const char *s, size_t n, size_t *i) {
    unsigned char c = (unsigned char)s[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (*i + (size_t)len > n) len = 1;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 31 : len == 3 ? c & 15 : c & 7;
    for (int k = 1; k < len; k++) {
        unsigned char d = (unsigned char)s[*i + (size_t)k];
        if ((d & 0xC0) != 0x80) { len = 1; cp = c; break; }
        cp = cp << 6 | (d & 63);
    }
    *i += (size_t)len;
    return (int32_t)cp;
}

int gram_hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int cmp_range(const void *x, const void *y) {
    const gram_cprange *a = x, *b = y;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

int gram_cp_normalize(gram_cprange **rp, int n, bool negate) {
    gram_cprange *r = *rp;
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].lo > r[i].hi) continue;
        if (m && r[i].lo <= r[m - 1].hi + 1) {
            if (r[i].hi > r[m - 1].hi) r[m - 1].hi = r[i].hi;
        } else {
            r[m++] = r[i];
        }
    }
    if (!negate) return m;
    gram_cprange *o = malloc((size_t)(m + 1) * sizeof *o);
    if (!o) return -1;
    int k = 0;
    uint32_t next = 0;
    for (int i = 0; i < m; i++) {
        if (r[i].lo > next) o[k++] = (gram_cprange){next, r[i].lo - 1};
        next = r[i].hi + 1;
    }
    if (next <= 0x10FFFF) o[k++] = (gram_cprange){next, 0x10FFFF};
    free(r);
    *rp = o;
    return k;
}

static int enc(uint32_t c, uint8_t *b) {
    if (c < 0x80) { b[0] = (uint8_t)c; return 1; }
    if (c < 0x800) { b[0] = (uint8_t)(0xC0 | c >> 6); b[1] = (uint8_t)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) {
        b[0] = (uint8_t)(0xE0 | c >> 12); b[1] = (uint8_t)(0x80 | ((c >> 6) & 63)); b[2] = (uint8_t)(0x80 | (c & 63));
        return 3;
    }
    b[0] = (uint8_t)(0xF0 | c >> 18); b[1] = (uint8_t)(0x80 | ((c >> 12) & 63));
    b[2] = (uint8_t)(0x80 | ((c >> 6) & 63)); b[3] = (uint8_t)(0x80 | (c & 63));
    return 4;
}

static int split(gram_ast *a, gram_ilist *alts, uint32_t lo, uint32_t hi) {
    static const uint32_t bounds[3] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= bounds[i] && hi > bounds[i]) {
            if (split(a, alts, lo, bounds[i]) < 0) return -1;
            return split(a, alts, bounds[i] + 1, hi);
        }
    for (int i = 1; i < 4; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                if (split(a, alts, lo, lo | m) < 0) return -1;
                return split(a, alts, (lo | m) + 1, hi);
            }
            if ((hi & m) != m) {
                if (split(a, alts, lo, (hi & ~m) - 1) < 0) return -1;
                return split(a, alts, hi & ~m, hi);
            }
        }
    }
    uint8_t bl[4], bh[4];
    int n = enc(lo, bl);
    enc(hi, bh);
    int k[4];
    for (int i = 0; i < n; i++) {
        gram_bset s = {{0}};
        gram_bset_range(&s, bl[i], bh[i]);
        k[i] = gast_bytes(a, &s);
    }
    return gram_ilist_push(alts, gast_seq(a, k, n));
}

static int bytes_range(gram_ast *a, unsigned lo, unsigned hi) {
    gram_bset s = {{0}};
    gram_bset_range(&s, lo, hi);
    return gast_bytes(a, &s);
}

/* Every non-ASCII code point (surrogates excluded), with the lead-byte branches sharing
 * their continuation tails: 15 automaton states instead of 26 for the per-range split
 * (JSON string content repeats it per character of a length-bounded string). */
static int all_non_ascii(gram_ast *a) {
    int cont = bytes_range(a, 0x80, 0xBF);
    gram_bset e3 = {{0}};
    gram_bset_range(&e3, 0xE1, 0xEC);
    gram_bset_range(&e3, 0xEE, 0xEF);
    int four = gast_alt(a, (int[]){gast_seq2(a, gast_byte(a, 0xF0), bytes_range(a, 0x90, 0xBF)),
                                   gast_seq2(a, bytes_range(a, 0xF1, 0xF3), cont),
                                   gast_seq2(a, gast_byte(a, 0xF4), bytes_range(a, 0x80, 0x8F))}, 3);
    int lead = gast_alt(a, (int[]){bytes_range(a, 0xC2, 0xDF),
                                   gast_seq2(a, gast_byte(a, 0xE0), bytes_range(a, 0xA0, 0xBF)),
                                   gast_seq2(a, gast_bytes(a, &e3), cont),
                                   gast_seq2(a, gast_byte(a, 0xED), bytes_range(a, 0x80, 0x9F)),
                                   gast_seq2(a, four, cont)}, 5);
    return gast_seq2(a, lead, cont);
}

int gast_codepoints(gram_ast *a, const gram_cprange *r, int n) {
    gram_ilist alts = {0};
    gram_bset ascii = {{0}};
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        uint32_t lo = r[i].lo, hi = r[i].hi > 0x10FFFF ? 0x10FFFF : r[i].hi;
        if (lo > hi) continue;
        /* ASCII goes into one byte set; the rest is split, minus the surrogates. */
        if (lo < 0x80) {
            gram_bset_range(&ascii, lo, hi < 0x7F ? hi : 0x7F);
            if (hi < 0x80) continue;
            lo = 0x80;
        }
        if (lo == 0x80 && hi == 0x10FFFF) {
            rc = gram_ilist_push(&alts, all_non_ascii(a));
            continue;
        }
        if (lo < 0xD800 && hi >= 0xD800) {
            rc = split(a, &alts, lo, 0xD7FF);
            lo = 0xE000;
        } else if (lo >= 0xD800 && lo <= 0xDFFF) {
            lo = 0xE000;
        }
        if (rc == 0 && lo <= hi) rc = split(a, &alts, lo, hi);
    }
    if (rc == 0 && !gram_bset_empty(&ascii)) rc = gram_ilist_push(&alts, gast_bytes(a, &ascii));
    int node = rc < 0 ? -1 : gast_alt(a, alts.v, alts.n);
    free(alts.v);
    if (node < 0) a->oom = true;
    return node;
}
