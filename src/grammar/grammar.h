/* grammar.h — constrained decoding: grammars (GBNF, regex, JSON Schema, free-form JSON)
 * compiled to one automaton per rule over bytes, a matcher that walks it with explicit
 * stacks, and per-step token masks over a model's vocabulary. Prefix `gram_`.
 *
 * Pipeline: front end (gram_gbnf.c / gram_regex.c / gram_schema.c) -> grammar AST
 * (gram_ast.c) -> per-rule byte automata (gram_nfa.c) -> gram_grammar. A gram_vocab
 * (gram_vocab.c) is the model's token texts as a byte trie, built once per model.
 * A gram_matcher (gram_matcher.c) holds one sequence's parse state (a set of stacks,
 * gram_stack.c) and fills a bitmask of allowed token ids (gram_mask.c); masks of the
 * tokens that depend only on the top frames of a stack are cached in the grammar.
 * gram_cache.c keeps compiled grammars in an LRU keyed by a hash of their source.
 * A grammar is read-only after compile apart from its mask cache (mutex-protected), so
 * matchers of one grammar may run on different threads. */
#ifndef SW_GRAMMAR_H
#define SW_GRAMMAR_H
#include "base/base.h"
#include "tokenizer/tok.h"
#include <jansson.h>

typedef struct gram_vocab gram_vocab;
typedef struct gram_grammar gram_grammar;
typedef struct gram_matcher gram_matcher;
typedef struct gram_cache gram_cache;

/* Token texts of t (tok_piece without special rendering; tokens with empty text, i.e.
 * control tokens, are never allowed by a mask except the end-of-generation ones, which
 * are allowed exactly when the grammar accepts). */
int gram_vocab_create(const tok *t, gram_vocab **out, sw_err *err);
void gram_vocab_destroy(gram_vocab *v);
int gram_vocab_n_vocab(const gram_vocab *v);
int gram_vocab_n_words(const gram_vocab *v);  /* uint32 words of a mask */

/* Compilers. v: the vocabulary the grammar's masks are for (borrowed; must outlive the
 * grammar). Errors are SW_ERR_FORMAT (syntax) or SW_ERR_UNSUPPORTED (a construct or
 * schema keyword that cannot be enforced; the message names it). */
int gram_compile_gbnf(const gram_vocab *v, const char *src, size_t len, gram_grammar **out, sw_err *err);
int gram_compile_regex(const gram_vocab *v, const char *re, size_t len, gram_grammar **out, sw_err *err);
int gram_compile_schema(const gram_vocab *v, const json_t *schema, gram_grammar **out, sw_err *err);
int gram_compile_json_object(const gram_vocab *v, gram_grammar **out, sw_err *err); /* any JSON object */
/* One of the strings, exactly (vLLM guided_choice). */
int gram_compile_choice(const gram_vocab *v, const char *const *choices, int n, gram_grammar **out, sw_err *err);
/* JSON values under one schema, framed by literal text: prefix, then min..max items
 * (max -1 = unbounded) separated by sep, each open + value + close, then suffix; JSON
 * whitespace (bounded) is allowed around every value and after every sep. Tool calls:
 * e.g. open "<tool_call>\n", close "\n</tool_call>", sep "\n". */
typedef struct gram_frame { const char *prefix, *open, *close, *sep, *suffix; int min, max; } gram_frame;
int gram_compile_schema_framed(const gram_vocab *v, const json_t *schema, const gram_frame *f, gram_grammar **out, sw_err *err);
/* Grammars are reference counted: compile returns one reference. */
void gram_grammar_retain(gram_grammar *g);
void gram_grammar_release(gram_grammar *g);
int gram_grammar_n_states(const gram_grammar *g);

/* Matcher: one sequence's parse state. */
int gram_matcher_create(gram_grammar *g, gram_matcher **out, sw_err *err);
/* A lazy matcher: free text (every token allowed, end allowed) until `trigger` appears
 * in the accepted text; from then the grammar runs from the trigger's first byte (the
 * grammar's text must begin with it) over the rest, and when the grammar has matched and
 * can take nothing more the text is free again (the next trigger starts it anew). A
 * token that completes the trigger but whose remaining bytes the grammar rejects is
 * refused (with the free text accepting, so a generation ends there). */
int gram_matcher_create_lazy(gram_grammar *g, const char *trigger, gram_matcher **out, sw_err *err);
void gram_matcher_destroy(gram_matcher *m);
/* Advances by a byte string; false (state unchanged) if the grammar rejects it. */
bool gram_matcher_accept_bytes(gram_matcher *m, const char *s, size_t n);
/* Advances by a token: its text, or for an end-of-generation token, accepting-ness. */
bool gram_matcher_accept_token(gram_matcher *m, int32_t id);
bool gram_matcher_is_accepting(const gram_matcher *m); /* the text so far is complete */
bool gram_matcher_is_dead(const gram_matcher *m);      /* nothing more can be accepted */
/* Size of the vocabulary the matcher's masks cover (0 when compiled without one). */
int gram_matcher_n_vocab(const gram_matcher *m);
/* Fills mask (gram_vocab_n_words words): bit id set = token id allowed next. */
int gram_matcher_fill_mask(gram_matcher *m, uint32_t *mask, sw_err *err);
static inline bool gram_mask_test(const uint32_t *mask, int32_t id) { return (mask[id >> 5] >> (id & 31)) & 1; }

/* Tokenizes text (no BOS, plain text) with t and walks the masks token by token: each
 * token must be in the mask, and at the end an end-of-generation token must be. Sets
 * *accepted, and *reject_byte to the offset of the first rejected token's text (the text
 * length when only the end was rejected). A SentencePiece vocab's leading-space prefix is
 * matched without it (the first token is checked by its text minus that space).
 * mask_ns (may be NULL): receives the wall-clock nanoseconds of each fill_mask, and
 * mask_ns[cap_ns + i] its thread CPU nanoseconds (the array holds 2 * cap_ns), n_tokens + 1
 * of them at most, *n_masks their count. */
int gram_check_text(gram_grammar *g, const tok *t, const char *text, size_t len, bool *accepted,
                    size_t *reject_byte, int64_t *mask_ns, int cap_ns, int *n_masks, sw_err *err);

/* Fills the vocabulary's shared mask store for the generic JSON rules (strings with
 * escapes, numbers, nested values) by walking a sample document byte by byte with masks,
 * so the first structured request does not pay those trie walks (~0.1-1 s at 150k ids). */
int gram_vocab_warmup(const gram_vocab *v, sw_err *err);

/* Compiled-grammar cache (LRU by content hash). kind: "gbnf", "regex", "schema", "json",
 * "choice" (text: a JSON array of strings), "framed" (text: {"schema", "prefix", "open",
 * "close", "sep", "suffix", "min", "max"}: gram_compile_schema_framed). Returns a new reference. Thread-safe. */
int gram_cache_create(const gram_vocab *v, int capacity, gram_cache **out, sw_err *err);
void gram_cache_destroy(gram_cache *c);
int gram_cache_get(gram_cache *c, const char *kind, const char *text, size_t len, gram_grammar **out, sw_err *err);
#endif
