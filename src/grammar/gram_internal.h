/* gram_internal.h — what the grammar module's files share and callers do not see:
 * byte sets, the grammar AST the front ends build, the compiled per-rule automata
 * (struct gram_grammar), the vocabulary trie (struct gram_vocab) and the stack pool
 * and walker the matcher and the mask builder run on. */
#ifndef SW_GRAM_INTERNAL_H
#define SW_GRAM_INTERNAL_H
#include "grammar/grammar.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte sets (256 bits) ---- */
typedef struct gram_bset { uint64_t w[4]; } gram_bset;
static inline bool gram_bset_has(const gram_bset *s, unsigned b) { return (s->w[b >> 6] >> (b & 63)) & 1; }
static inline void gram_bset_add(gram_bset *s, unsigned b) { s->w[b >> 6] |= 1ull << (b & 63); }
static inline void gram_bset_range(gram_bset *s, unsigned lo, unsigned hi) { for (unsigned b = lo; b <= hi; b++) gram_bset_add(s, b); }
static inline bool gram_bset_empty(const gram_bset *s) { return !(s->w[0] | s->w[1] | s->w[2] | s->w[3]); }

/* ---- grammar AST (gram_ast.c): nodes in one array, referred to by index; -1 = out of
 * memory (every builder passes -1 through, so callers check once at the end). ---- */
enum gram_node_kind { GN_BYTES, GN_SEQ, GN_ALT, GN_REP, GN_REF };
typedef struct gram_node {
    int kind;
    int kid0, nkid;   /* SEQ/ALT: kids[kid0 .. kid0+nkid); REP: kid0 = the repeated node */
    int min, max;     /* REP: counts; max -1 = unbounded */
    int ref;          /* REF: rule index */
    gram_bset set;    /* BYTES */
} gram_node;
typedef struct gram_ast_rule { char *name; int body; } gram_ast_rule; /* body -1 = undefined */
typedef struct gram_ast {
    gram_node *n; int n_n, cap_n;
    int *kids; int n_k, cap_k;
    gram_ast_rule *rules; int n_r, cap_r;
    bool oom;
} gram_ast;
void gast_init(gram_ast *a);
void gast_free(gram_ast *a);
int gast_bytes(gram_ast *a, const gram_bset *s);
int gast_byte(gram_ast *a, unsigned b);
int gast_lit(gram_ast *a, const char *s, size_t n);
int gast_seq(gram_ast *a, const int *kids, int n);
int gast_alt(gram_ast *a, const int *kids, int n);
int gast_seq2(gram_ast *a, int x, int y);
int gast_seq3(gram_ast *a, int x, int y, int z);
int gast_alt2(gram_ast *a, int x, int y);
int gast_rep(gram_ast *a, int kid, int min, int max);
int gast_opt(gram_ast *a, int kid);
int gast_ref(gram_ast *a, int rule);
int gast_empty(gram_ast *a);   /* matches "" */
int gast_nothing(gram_ast *a); /* matches nothing */
/* Rule by name (created undefined when new); -1 on OOM. */
int gast_rule(gram_ast *a, const char *name, size_t len);
int gast_rule_new(gram_ast *a, const char *prefix); /* a fresh, uniquely named rule */
/* Growable int list for builders. */
typedef struct gram_ilist { int *v; int n, cap; } gram_ilist;
int gram_ilist_push(gram_ilist *l, int x);

/* Grammar source text (gram_utf8.c), shared by the GBNF and regex front ends:
 * gram_src_cp reads one UTF-8 code point of s[*i..n) (a byte that does not start a
 * well-formed sequence is taken as itself) and advances *i; gram_hexval is a hex digit's
 * value or -1. */
int32_t gram_src_cp(const char *s, size_t n, size_t *i);
int gram_hexval(char c);

/* Code points -> UTF-8 (gram_utf8.c). ranges: n sorted, disjoint, inclusive [lo,hi]
 * pairs within 0..0x10FFFF; surrogates are dropped. Returns an AST node matching the
 * UTF-8 encoding of exactly those code points. */
typedef struct gram_cprange { uint32_t lo, hi; } gram_cprange;
int gast_codepoints(gram_ast *a, const gram_cprange *r, int n);
/* Normalises a range list in place (sort, merge); with negate, replaces it with its
 * complement within 0..0x10FFFF. *r may be reallocated. Returns new count or -1 (OOM). */
int gram_cp_normalize(gram_cprange **r, int n, bool negate);

/* Regex (gram_regex.c) -> AST node. json_escaped: the regex describes a JSON string's
 * content and the node matches its escaped form (`"` as \", controls as \n, \u00XX ...).
 * search: the regex may match anywhere unless anchored by ^/$ (JSON Schema `pattern`);
 * otherwise it must match the whole text. */
int gram_regex_ast(gram_ast *a, const char *re, size_t len, bool json_escaped, bool search, int *node, sw_err *err);

/* ---- compiled grammar (gram_nfa.c): rule automata flattened into global states.
 * A state belongs to one rule; edges: byte edges (set -> target) and rule edges (call
 * rule r, then continue at target). A stack frame (state, parent frame) is a point in
 * a rule plus where to return. ---- */
typedef struct gram_mask_cache gram_mask_cache;
struct gram_grammar {
    int refs;                       /* atomic */
    const gram_vocab *v;            /* borrowed */
    int n_states, root;             /* root: start state of the root rule */
    int *be_lo;                     /* (n_states+1) byte edges of state s: be_lo[s]..be_lo[s+1] */
    gram_bset *be_set; int *be_to;  /* (n_byte_edges) */
    gram_bset *first;               /* (n_states) union of the state's byte-edge sets */
    int *re_lo;                     /* (n_states+1) rule edges */
    int *re_start, *re_to;          /* (n_rule_edges) callee's start state, return state */
    uint8_t *re_tail;               /* (n_rule_edges) return state is a bare final: no frame */
    uint8_t *final;                 /* (n_states) */
    int32_t *canon;                 /* (n_states) lowest state with the same finality and edges */
    int n_rules;
    int *rule_start;                /* (n_rules+1) states of rule r: rule_start[r]..rule_start[r+1] */
    int *state_rule;                /* (n_states) */
    gram_mask_cache *mc;
};
/* Compiles an AST with root rule `root` into *out (refs = 1, no mask cache yet). */
int gram_build(const gram_vocab *v, gram_ast *a, int root, gram_grammar **out, sw_err *err);

/* ---- vocabulary (gram_vocab.c) ---- */
typedef struct gram_tnode {      /* trie node, preorder; the root itself is not stored */
    uint8_t byte;
    uint16_t depth;              /* bytes from the root, >= 1 */
    int32_t tok_lo, tok_hi;      /* sorted tokens whose text ends exactly here */
    int32_t end;                 /* first node after this node's subtree */
    int32_t sub_hi;              /* sorted tokens of the subtree: tok_lo .. sub_hi */
} gram_tnode;
/* A slice (gram_vocab.c): the tokens made only of characters of one class, by character
 * count, and a trie over the other tokens. */
enum { GRAM_SLICE_STRING, GRAM_SLICE_ALNUM, GRAM_N_SLICES };
typedef struct gram_slice {
    int max;                     /* most characters in a slice token */
    uint32_t *cum;               /* ((max+1) * n_words) row c: slice token ids of <= c characters */
    int n_rest; int32_t *rest;   /* (n_rest) the other tokens, ascending sorted indices */
    int n_rnodes; gram_tnode *rnodes; /* trie over rest; token ranges index rest */
} gram_slice;
struct gram_vocab {
    int n_vocab, n_words;
    int n_sorted;                /* tokens with non-empty text, sorted by bytes */
    int32_t *sorted_id;          /* (n_sorted) */
    int32_t *rev;                /* (n_vocab) sorted index of each id, -1 = no text */
    uint32_t *sorted_off;        /* (n_sorted+1) text of sorted token i: bytes[off[i]..off[i+1]) */
    char *bytes;
    int n_nodes; gram_tnode *nodes;
    int32_t *eog; int n_eog;     /* end-of-generation ids */
    int max_len;
    gram_slice slice[GRAM_N_SLICES];
    struct gram_shared *shared;  /* level-1 mask entries shared by content across grammars (gram_mask.c) */
};

/* ---- stack pool + walker (gram_stack.c) ----
 * Frames are hash-consed (state, parent) pairs; parent -1 = the real bottom (ROOT),
 * -2 = unknown (SENT: the mask builder's stand-in for frames it does not look at). An
 * item is a frame whose state has byte edges: the set of items is the parse state. */
enum { GRAM_ROOT = -1, GRAM_SENT = -2 };
typedef struct gram_pool {
    int n, cap;
    int32_t *st, *par;           /* (cap) */
    uint32_t *stamp;             /* (cap) closure visit marks */
    int32_t *ht; uint32_t ht_mask;
    uint32_t cur;                /* current closure stamp */
} gram_pool;
typedef struct gram_set {        /* a parse state after some bytes */
    int32_t *items; int n, cap;
    bool acc;                    /* the whole stack can be popped: input may end here */
    bool sent;                   /* SENT was popped: the unknown frames continue here */
} gram_set;
int gram_pool_init(gram_pool *p);
void gram_pool_free(gram_pool *p);
void gram_pool_truncate(gram_pool *p, int n);
int gram_pool_frame(gram_pool *p, int32_t st, int32_t par); /* id or -1 on OOM */
void gram_set_free(gram_set *s);
/* out = the state after byte b from in (out is reset first). */
int gram_advance(const gram_grammar *g, gram_pool *p, const gram_set *in, unsigned b, gram_set *out);
/* Starting state: closure of the root rule. */
int gram_start(const gram_grammar *g, gram_pool *p, gram_set *out);

/* ---- masks (gram_mask.c) ---- */
gram_mask_cache *gram_mask_cache_create(int n_rules);
struct gram_shared *gram_shared_create(void);
void gram_shared_free(struct gram_shared *s);
void gram_mask_cache_free(gram_mask_cache *c);
typedef struct gram_walker gram_walker;
int gram_walker_create(const gram_grammar *g, gram_walker **out);
void gram_walker_destroy(gram_walker *w);
/* mask |= tokens that the item (a frame of pool p) accepts next (EOG not included). */
int gram_mask_item(gram_grammar *g, gram_walker *w, const gram_pool *p, int32_t item, uint32_t *mask, sw_err *err);
#endif
