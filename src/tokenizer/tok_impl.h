/* tok_impl.h — internals of the tokenizer module shared by its .c files (tok.c: vocab,
 * special tokens, memo, SentencePiece BPE, detokenizer; bpe.c: byte-level BPE with PCRE2
 * pre-tokenizer; wpm.c: WordPiece; nfc.c + unicode_nfc.c: NFC; unicode_data.c: tables
 * for WordPiece). Not part of the contract: only src/tokenizer/ (and its unit tests)
 * include it. */
#ifndef SW_TOK_IMPL_H
#define SW_TOK_IMPL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "tokenizer/tok.h"

enum tok_kind { TOK_KIND_SPM, TOK_KIND_BPE, TOK_KIND_WPM };

/* Token types as tokenizer.ggml.token_type numbers them. */
enum tok_ttype {
    TOK_TTYPE_UNDEFINED = 0, TOK_TTYPE_NORMAL = 1, TOK_TTYPE_UNKNOWN = 2, TOK_TTYPE_CONTROL = 3,
    TOK_TTYPE_USER_DEFINED = 4, TOK_TTYPE_UNUSED = 5, TOK_TTYPE_BYTE = 6,
};

/* Per-token flag bits (tok.flags). */
enum { TOK_FLAG_EOG = 1, TOK_FLAG_LSTRIP = 2, TOK_FLAG_RSTRIP = 4 };

#define TOK_MAX_REGEX 6

/* One merge rule of byte-level BPE: (left id, right id) -> result id, priority = rank. */
typedef struct tok_merge { uint64_t key; int32_t rank; int32_t result; } tok_merge;

struct tok {
    int kind;                 /* tok_kind */
    int n_vocab;
    char *blob;               /* all token texts back to back (not NUL-terminated) */
    uint32_t *off, *len;      /* (n_vocab) token text = blob + off[i], len[i] bytes */
    float *score;             /* (n_vocab) SentencePiece scores (0 when absent) */
    uint8_t *ttype;           /* (n_vocab) tok_ttype */
    uint8_t *flags;           /* (n_vocab) TOK_FLAG_* */
    struct tok_hslot { int32_t id; uint32_t off, len, tag; } *hslot; /* (hmask + 1) open-addressing
                               * table text -> id (id -1 = empty); off/len copied from the token
                               * and tag = high hash bits, so a probe reads one cache line */
    uint32_t hmask;
    int32_t *special;         /* (n_special) CONTROL / USER_DEFINED / UNKNOWN ids, longest text first */
    int n_special;
    /* trie of the specials' texts: node 0 = root; edge (node, byte) -> child in an open-
     * addressing table keyed by (node << 8 | byte) + 1 (0 = empty); per node the token a
     * text ending there is, among all specials (term_all) and among USER_DEFINED ones
     * (term_user), -1 = none; first bytes of each set as bitsets */
    struct tok_trie_edge { uint64_t key; int32_t child; } *trie_edge;
    uint64_t trie_emask;
    int32_t *trie_term_all, *trie_term_user;
    uint64_t start_all[4], start_user[4];
    int32_t bos, eos, eot, unk, sep; /* sep: WordPiece [SEP], appended with BOS ([CLS]) */
    int max_token_len;        /* longest token text in bytes */
    bool add_bos, add_space_prefix;
    uint64_t spm_glue[4];     /* SPM: bytes b such that some token holds b then ▁ (b not ending a ▁):
                               * a merge can cross a ▁ only right after such a byte */
    int32_t ascii_tok[128];   /* SPM: id of each one-byte text; -1 = none */
    int32_t byte_tok[256];    /* SPM: id of <0xNN>; BPE: id of the byte's mapped character; -1 = none */
    /* byte-level BPE only */
    tok_merge *merges;        /* (mmask + 1) open-addressing table, key 0 = empty */
    uint32_t mmask;
    pcre2_code *re[TOK_MAX_REGEX]; /* pre-tokenizer regexes, applied in order */
    int n_re;
    bool ignore_merges;       /* llama3: a word that is a whole token is not merged */
    bool nfc;                 /* Qwen: NFC-normalize each text fragment first */
};

/* Growable id list (the result of one encode call). */
typedef struct tok_vec { int32_t *v; size_t n, cap; } tok_vec;
int tok_vec_push(tok_vec *o, int32_t id);

/* Memo of one encode call: word bytes -> the ids they gave, so a word met again (most
 * words of real text) is not merged again. Bounded: stops memorizing past TOK_MEMO_MAX
 * words. Words are copied, so the memo may outlive the buffers they came from. */
typedef struct tok_memo_slot { uint64_t h; uint32_t off, len, ids, n; } tok_memo_slot;
typedef struct tok_memo {
    tok_memo_slot *slot; uint32_t mask, used; /* open addressing, len 0 = empty */
    char *bytes; size_t nbytes, bcap;         /* the words back to back */
    int32_t *ids; size_t nids, icap;          /* their ids back to back */
} tok_memo;
#define TOK_MEMO_MAX (1u << 16)
#define TOK_MEMO_WORD 64 /* longer words are not memorized */
/* Appends the memorized ids of s[0..n) (hash h) to out: 1 if found, 0 if not, or a negative status. */
int tok_memo_get(const tok_memo *m, const char *s, size_t n, uint64_t h, tok_vec *out);
/* Memorizes s[0..n) -> ids[0..k) (a no-op when full or the word is long). */
int tok_memo_put(tok_memo *m, const char *s, size_t n, uint64_t h, const int32_t *ids, size_t k);
void tok_memo_free(tok_memo *m);

/* Candidate merge of adjacent symbols left, right (indices into the caller's symbol
 * array): the smallest key pops first, ties go to the leftmost pair. size = byte length
 * of the merged text when queued (a pair whose symbols changed since is stale); id = the
 * merged token (byte-level BPE). */
typedef struct tok_bigram { float key; int32_t left, right, id; uint32_t size; } tok_bigram;
typedef struct tok_heap { tok_bigram *v; size_t n, cap; } tok_heap;
int tok_heap_push(tok_heap *h, tok_bigram b);
tok_bigram tok_heap_pop(tok_heap *h); /* h must not be empty */

/* Id of the token whose text is exactly s[0..n), or -1. */
int32_t tok_lookup(const tok *t, const char *s, size_t n);

/* Byte-level BPE: loads merges + regexes (tok.c has filled the vocab); encodes one raw
 * text fragment (no special tokens in it); frees what bpe_init allocated. */
int tok_bpe_init(tok *t, const gguf_ctx *ctx, sw_err *err);
int tok_bpe_encode(const tok *t, const char *text, size_t len, tok_memo *memo, tok_vec *out);
void tok_bpe_free(tok *t);
/* Appends the raw bytes that a byte-level BPE token text stands for; returns count (may exceed cap). */
int tok_bpe_decode_text(const char *s, size_t n, char *buf, int cap);

/* WordPiece (`bert`): encodes one raw text fragment (wpm.c). */
int tok_wpm_encode(const tok *t, const char *text, size_t len, tok_vec *out);

/* Unicode tables (unicode_data.c), sorted by first code point. */
typedef struct tok_cp_range { uint32_t first, last; } tok_cp_range;
typedef struct tok_cp_map { uint32_t first, last, to; } tok_cp_map; /* every cp in [first, last] -> to */
extern const tok_cp_range tok_ucd_punct[], tok_ucd_control[];
extern const int tok_ucd_punct_n, tok_ucd_control_n;
extern const tok_cp_map tok_ucd_nfd[], tok_ucd_lower[];
extern const int tok_ucd_nfd_n, tok_ucd_lower_n;

/* Strict UTF-8 (no overlongs, surrogates or > U+10FFFF). tok_utf8_decode reads one
 * character of s[0..n) (n > 0) into *cp and returns its length, or 0 when s does not start
 * a valid character (the caller picks the substitute). tok_utf8_encode writes cp (a valid
 * scalar value) and returns its length (1-4). */
static inline size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t l = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (l == 0 || l > n) return 0;
    uint32_t v = c & (0x7f >> l);
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((l == 3 && (v < 0x800 || (v >= 0xd800 && v < 0xe000))) || (l == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return l;
}

static inline size_t tok_utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* NFC tables (unicode_nfc.c, generated by scripts/gen_unicode_nfc.py). */
typedef struct tok_nfc_dec { uint32_t cp; uint16_t off; uint8_t n; } tok_nfc_dec; /* tok_nfc_pool[off..off+n) */
typedef struct tok_nfc_pair { uint64_t key; uint32_t cp; } tok_nfc_pair;          /* key = first << 21 | second */
extern const tok_cp_map tok_nfc_ccc[];
extern const tok_cp_range tok_nfc_qc[];
extern const tok_nfc_dec tok_nfc_decomp[];
extern const uint32_t tok_nfc_pool[];
extern const tok_nfc_pair tok_nfc_comp[];
extern const uint32_t tok_nfc_busy[]; /* (0x110000 / 256 / 32) bitset of blocks with marks or flagged code points */
extern const int tok_nfc_busy_n, tok_nfc_ccc_n, tok_nfc_qc_n, tok_nfc_decomp_n, tok_nfc_pool_n, tok_nfc_comp_n;

/* Unicode NFC of text[0..len) (nfc.c). *out = NULL when the quick check proves the text
 * NFC (one pass; ASCII at memory speed); else *out is a malloc'd normalized copy of
 * *out_len bytes (possibly equal to the input). Bytes that are not valid UTF-8 are kept as they are and block
 * composition across them. */
int tok_nfc(const char *text, size_t len, char **out, size_t *out_len);

#endif
