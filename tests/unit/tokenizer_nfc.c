/* tokenizer_nfc.c — the NFC normalizer (src/tokenizer/nfc.c, internal to the tokenizer
 * module) against the examples of the Unicode standard (UAX #15 and the Unicode charts):
 * composition, singletons, composition exclusions, canonical reordering of marks,
 * Hangul, blocked marks, compatibility characters left alone, text already in NFC
 * reported untouched, invalid UTF-8 bytes kept, and a long run of marks. The qwen3
 * vectors of tokenizer_vocab check it through the tokenizer. */
#include "t.h"
#include "tokenizer/tok_impl.h"

/* NFC of in; want = NULL means "already NFC" (tok_nfc must not copy). */
static void check(const char *what, const char *in, size_t in_len, const char *want, size_t want_len) {
    char *out = (char *)1;
    size_t n = 99;
    int rc = tok_nfc(in, in_len, &out, &n);
    T_EQ_INT(rc, SW_OK);
    if (!want) {
        T_CHECK(out == NULL, "%s: reported changed", what);
    } else {
        T_CHECK(out && n == want_len && memcmp(out, want, n) == 0, "%s: got %zu bytes '%.*s'", what, n, (int)n, out ? out : "");
    }
    if (out != (char *)1) free(out);
}
#define CHECK(what, in, want) check(what, in, sizeof in - 1, want, sizeof want - 1)
#define SAME(what, in) check(what, in, sizeof in - 1, NULL, 0)

int main(void) {
    SAME("ASCII", "Hello, world!\n");
    SAME("empty", "");
    SAME("precomposed e-acute", "caf\u00e9");
    SAME("Devanagari with a virama (class 9, quick check Yes)", "\u0928\u092e\u0938\u094d\u0924\u0947");
    SAME("Thai with marks in canonical order", "\u0e01\u0e23\u0e38\u0e07\u0e40\u0e17\u0e1e");
    CHECK("marks out of canonical order (230 before 220)", "a\u0301\u0316", "\u00e1\u0316");
    SAME("compatibility ligature fi stays (NFKC would change it)", "\ufb01");
    CHECK("e + combining acute", "cafe\u0301", "caf\u00e9");
    CHECK("A + ring", "A\u030a", "\u00c5");
    CHECK("Angstrom sign (singleton)", "\u212b", "\u00c5");
    CHECK("Ohm sign (singleton)", "\u2126", "\u03a9");
    CHECK("Kelvin sign (singleton to ASCII)", "\u212a", "K");
    CHECK("Devanagari qa (composition exclusion)", "\u0958", "\u0915\u093c");
    CHECK("d-dot-above + dot below (UAX #15)", "\u1e0b\u0323", "\u1e0d\u0307");
    CHECK("q + dot above + dot below: reordered, nothing to compose", "q\u0307\u0323", "q\u0323\u0307");
    CHECK("A + diaeresis + macron (two steps)", "A\u0308\u0304", "\u01de");
    CHECK("blocked: a second acute after a composed one", "e\u0301\u0301", "\u00e9\u0301");
    CHECK("Hangul L V T", "\u1100\u1161\u11a8", "\uac01");
    CHECK("Hangul LV + T", "\uac00\u11a8", "\uac01");
    CHECK("Hangul L V", "\u1100\u1161", "\uac00");
    CHECK("Greek with two marks", "\u03b1\u0313\u0301", "\u1f04");
    CHECK("invalid bytes kept, text around them normalized", "\xff" "e\u0301\xc3", "\xff\u00e9\xc3");

    /* 200 marks of alternating classes 230 and 220 after one 'a' (the keyed-sort path):
     * stable-sorted by class, 'a' + the first U+0323 -> U+1EA1, the next U+0323 is
     * blocked by the one before it (same class), no U+1EA1 + U+0301 composite exists */
    char in[1 + 200 * 2 + 1], want[2 + 100 * 2 + 99 * 2 + 1];
    size_t o = 0, w = 0;
    in[o++] = 'a';
    for (int i = 0; i < 100; i++) {
        memcpy(in + o, "\xcc\x81", 2); o += 2; /* U+0301, class 230 */
        memcpy(in + o, "\xcc\xa3", 2); o += 2; /* U+0323, class 220 */
    }
    memcpy(want + w, "\xe1\xba\xa1", 3); w += 3;  /* a + dot below -> U+1EA1 */
    for (int i = 0; i < 99; i++) { memcpy(want + w, "\xcc\xa3", 2); w += 2; }
    for (int i = 0; i < 100; i++) { memcpy(want + w, "\xcc\x81", 2); w += 2; }
    check("long run of marks", in, o, want, w);
    return t_done();
}
