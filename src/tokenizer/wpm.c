/* wpm.c — WordPiece (`tokenizer.ggml.model = bert`), as llama.cpp runs BERT vocabs:
 * the text is decoded to code points, each reduced to the first code point of its NFD
 * form (accents dropped) and lowercased; whitespace ends a word, control characters are
 * dropped, punctuation, ASCII symbols and CJK ideographs become one-character words.
 * Each word, prefixed with "▁" (the GGUF form of a word start; continuation pieces are
 * stored without BERT's "##"), is cut greedily into the longest tokens from the left;
 * a word with an uncovered position becomes [UNK]. Bytes that are not UTF-8 are dropped. */
#include "tokenizer/tok_impl.h"
#include <stdlib.h>
#include <string.h>

static bool in_ranges(const tok_cp_range *r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].first) hi = mid - 1;
        else if (cp > r[mid].last) lo = mid + 1;
        else return true;
    }
    return false;
}

static uint32_t map_cp(const tok_cp_map *m, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < m[mid].first) hi = mid - 1;
        else if (cp > m[mid].last) lo = mid + 1;
        else return m[mid].to;
    }
    return cp;
}

static bool is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* CJK ideograph blocks as BERT's _is_chinese_char lists them. */
static bool is_cjk(uint32_t c) {
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x20000 && c <= 0x2a6df) ||
           (c >= 0x2a700 && c <= 0x2b73f) || (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

/* Decodes one code point at s (n > 0 bytes left); invalid -> 0xFFFD over one byte. */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t *len) {
    uint32_t cp;
    *len = tok_utf8_decode(s, n, &cp);
    if (*len) return cp;
    *len = 1;
    return 0xfffd;
}

/* Greedy longest-match of w[0..n) (which starts with ▁); [UNK] if some position has no token. */
static int wordpiece(const tok *t, const char *w, size_t n, tok_vec *out) {
    size_t start = out->n;
    int rc = SW_OK;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i + (size_t)t->max_token_len < n ? i + (size_t)t->max_token_len : n;
        int32_t id = -1;
        for (; j > i && (id = tok_lookup(t, w + i, j - i)) < 0; j--) {}
        if (id < 0) { out->n = start; break; }
        rc = tok_vec_push(out, id);
        i = j;
    }
    if (!rc && out->n == start && t->unk >= 0) rc = tok_vec_push(out, t->unk);
    return rc;
}

int tok_wpm_encode(const tok *t, const char *text, size_t len, tok_vec *out) {
    char *w = malloc(len * 4 + 8); /* ▁ + the word: lowercasing may lengthen a character */
    if (!w) return SW_ERR_NOMEM;
    size_t wn = 3;
    memcpy(w, "\xe2\x96\x81", 3);
    int rc = SW_OK;
    for (size_t i = 0, l; i < len && !rc; i += l) {
        uint32_t cp = map_cp(tok_ucd_nfd, tok_ucd_nfd_n, utf8_next((const uint8_t *)text + i, len - i, &l));
        if (is_space(cp)) {
            if (wn > 3) rc = wordpiece(t, w, wn, out);
            wn = 3;
            continue;
        }
        if (cp == 0 || cp == 0xfffd || in_ranges(tok_ucd_control, tok_ucd_control_n, cp)) continue;
        uint32_t lc = map_cp(tok_ucd_lower, tok_ucd_lower_n, cp);
        bool alone = in_ranges(tok_ucd_punct, tok_ucd_punct_n, cp) || (cp < 0x7f && strchr("$+<=>^`|~", (int)cp)) || is_cjk(cp);
        if (alone) {
            if (wn > 3) rc = wordpiece(t, w, wn, out);
            wn = 3 + tok_utf8_encode(lc, w + 3);
            if (!rc) rc = wordpiece(t, w, wn, out);
            wn = 3;
        } else {
            wn += tok_utf8_encode(lc, w + wn);
        }
    }
    if (wn > 3 && !rc) rc = wordpiece(t, w, wn, out);
    free(w);
    return rc;
}
