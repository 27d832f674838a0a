/* tok.h — tokenizers built from GGUF metadata (`tokenizer.ggml.*`): SentencePiece-style
 * BPE (`llama`), byte-level BPE (`gpt2`, pre-tokenizer by `tokenizer.ggml.pre`) and
 * WordPiece (`bert`), with special tokens and BOS/EOS rules; detokenization to raw
 * bytes; chat templates. Ids match the reference (llama.cpp; Hugging Face's tokenizers for
 * llama3, qwen3, gptoss, gemma3) on every ../shared/vocab test vector.
 * Works on vocab-only GGUF files. A tok is read-only after tok_create: any number of
 * threads may encode/decode with it at once. Prefix `tok_`. */
#ifndef SW_TOK_H
#define SW_TOK_H
#include "base/base.h"
#include "gguf/gguf.h"

typedef struct tok tok;

/* Builds a tokenizer from the file's metadata (copies what it needs; ctx may be closed after). */
int tok_create(const gguf_ctx *ctx, tok **out, sw_err *err);
void tok_destroy(tok *t);

int tok_n_vocab(const tok *t);
int32_t tok_bos(const tok *t);          /* -1 if none */
int32_t tok_eos(const tok *t);          /* -1 if none */
bool tok_add_bos(const tok *t);         /* tokenizer.ggml.add_bos_token (default by model type) */
bool tok_is_eog(const tok *t, int32_t id); /* end of generation: EOS, EOT, <|im_end|>, ... */

/* Tokenizes len bytes of text. add_bos: prepend BOS when the vocab wants one
 * (WordPiece: [CLS] first and [SEP] last).
 * parse_special: recognise special/control token strings in the text (chat prompts);
 * false = plain text. As in llama.cpp, USER_DEFINED tokens (e.g. deepseek's "ü", the
 * space-run tokens of gpt-neox/mpt/gemma3) are split out in both modes; CONTROL and
 * UNKNOWN ones only with parse_special; the longest one starting leftmost wins. Bytes that are not valid UTF-8 are kept (byte-level BPE
 * round-trips any input exactly; SentencePiece uses byte tokens). Writes at most cap
 * ids; returns the number of ids the full result has (may exceed cap: call again with a
 * bigger buffer), or a negative status (SW_ERR_RANGE for a text over 256 MiB). */
int tok_encode(const tok *t, const char *text, size_t len, bool add_bos, bool parse_special,
               int32_t *ids, int cap);

/* tok_encode into a malloc'd array (*out, release with free()); returns the id count or
 * a negative status (*out = NULL then). */
int tok_encode_alloc(const tok *t, const char *text, size_t len, bool add_bos, bool parse_special, int32_t **out);

/* Token text output — tok_piece, tok_stream_feed and tok_stream_flush — follows one rule,
 * snprintf's: a call writes at most cap bytes (the first bytes of the text) and returns
 * the text's full length; a return > cap means it did not fit, and a streaming call then
 * leaves the stream unchanged: call again with a buffer of at least that many bytes.
 * tok_text_max(t) bytes always suffice for any one call (a vocab's tokens may be
 * hundreds of bytes long: gpt-neox and mpt have tokens over 256 bytes). */
int tok_text_max(const tok *t);
/* Bytes of the longest token text in the vocab: a token never stands for more input
 * bytes than that, up to normalization (WordPiece accent stripping, NFC), so a text of
 * more than 4 x this many bytes per token of room cannot fit (checked before encoding). */
int tok_max_token_bytes(const tok *t);

/* Bytes of one token as they appear in the text (byte tokens decoded; SentencePiece '▁'
 * -> ' '). Control tokens give "" unless render_special. Returns the byte count (the
 * rule above), or SW_ERR_RANGE for an id outside the vocab. */
int tok_piece(const tok *t, int32_t id, bool render_special, char *buf, int cap);

/* Id of the token whose text is exactly text[0..len) (e.g. "<|im_end|>"), or -1. */
int32_t tok_find(const tok *t, const char *text, size_t len);

/* Streaming detokenizer: feed ids one at a time; emits only complete UTF-8 characters,
 * holding back a character split across tokens until it completes; a byte that can
 * never be valid UTF-8 becomes U+FFFD. Control tokens print nothing. Handles the
 * SentencePiece leading space of the first token: while `first` is true, the first
 * non-empty piece loses one leading ' ' (SentencePiece / WordPiece vocabs only).
 * To decode a continuation (tokens generated after a prompt), set s->first = false
 * after tok_stream_init so " Paris" keeps its space. */
typedef struct tok_stream { const tok *t; bool first; char pending[8]; int n_pending; } tok_stream;
void tok_stream_init(tok_stream *s, const tok *t);
/* Writes the printable bytes that id completes to out and returns their count (the rule
 * above: a count > cap means nothing was consumed). */
int tok_stream_feed(tok_stream *s, int32_t id, char *out, int cap);
/* Flushes held-back bytes (invalid/incomplete UTF-8 at the end) as U+FFFD; returns count
 * (the rule above). */
int tok_stream_flush(tok_stream *s, char *out, int cap);

/* Chat templates: the families in real use, recognised from tokenizer.chat_template. */
typedef enum tok_chat_family {
    TOK_CHAT_CHATML, TOK_CHAT_LLAMA3, TOK_CHAT_LLAMA2, TOK_CHAT_PHI3, TOK_CHAT_GEMMA, TOK_CHAT_UNKNOWN
} tok_chat_family;
typedef struct tok_chat_msg { const char *role; const char *content; } tok_chat_msg;
tok_chat_family tok_chat_detect(const char *template_text);     /* NULL text -> UNKNOWN */
int tok_chat_family_from_name(const char *name, tok_chat_family *out); /* "chatml", "llama3", ... */
const char *tok_chat_family_name(tok_chat_family f);
/* Renders messages + the assistant generation prompt into a malloc'd string, as the
 * family's real template does but without its leading BOS: tokenize the result with
 * add_bos = true (BOS per vocab) and parse_special = true. Roles: ChatML and Llama 3 take
 * any; the others take system/user/assistant (a system message folds into the next user
 * turn for Llama 2 and Gemma) and reject anything else with SW_ERR_ARG. */
int tok_chat_render(tok_chat_family f, const tok_chat_msg *msgs, int n, bool add_generation_prompt,
                    char **out, sw_err *err);

#endif
