/* chat.c — chat templates: recognises the family of a GGUF's tokenizer.chat_template
 * by its marker strings and renders a conversation the way that family's official
 * Jinja template does, without a Jinja engine:
 *   ChatML / Qwen  <|im_start|>ROLE\nCONTENT<|im_end|>\n ... <|im_start|>assistant\n
 *   Llama 3        <|start_header_id|>ROLE<|end_header_id|>\n\nTRIM(CONTENT)<|eot_id|> ...
 *   Llama 2 / Mistral  [INST] <<SYS>>\nSYS\n<</SYS>>\n\nUSER [/INST] ANSWER </s><s>[INST] ...
 *   Phi-3          <|ROLE|>\nCONTENT<|end|>\n ... <|assistant|>\n
 *   Gemma          <start_of_turn>user\nSYS\n\nTRIM(CONTENT)<end_of_turn>\n ... <start_of_turn>model\n
 * The leading BOS that every one of these templates writes first is left out: tokenize
 * the result with add_bos = tok_add_bos() and parse_special = true. */
#include "tokenizer/tok.h"
#include <stdlib.h>
#include <string.h>

typedef struct sbuf { char *p; size_t n, cap; bool oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Appends s without leading/trailing whitespace (Jinja's trim, Python's strip). */
static void sb_trim(sbuf *b, const char *s) {
    size_t n = strlen(s);
    while (n && is_ws(*s)) { s++; n--; }
    while (n && is_ws(s[n - 1])) n--;
    sb_add(b, s, n);
}

tok_chat_family tok_chat_detect(const char *tmpl) {
    if (!tmpl) return TOK_CHAT_UNKNOWN;
    if (strstr(tmpl, "<|im_start|>")) return TOK_CHAT_CHATML;
    if (strstr(tmpl, "<|start_header_id|>")) return TOK_CHAT_LLAMA3;
    if (strstr(tmpl, "<start_of_turn>")) return TOK_CHAT_GEMMA;
    if (strstr(tmpl, "<|user|>")) return TOK_CHAT_PHI3;
    if (strstr(tmpl, "[INST]")) return TOK_CHAT_LLAMA2;
    return TOK_CHAT_UNKNOWN;
}

static const struct { const char *name; tok_chat_family f; } family_names[] = {
    {"chatml", TOK_CHAT_CHATML}, {"qwen", TOK_CHAT_CHATML}, {"qwen2", TOK_CHAT_CHATML},
    {"llama3", TOK_CHAT_LLAMA3}, {"llama2", TOK_CHAT_LLAMA2}, {"mistral", TOK_CHAT_LLAMA2},
    {"phi3", TOK_CHAT_PHI3}, {"gemma", TOK_CHAT_GEMMA},
};

int tok_chat_family_from_name(const char *name, tok_chat_family *out) {
    for (size_t i = 0; name && i < sizeof family_names / sizeof family_names[0]; i++)
        if (!strcmp(name, family_names[i].name)) { *out = family_names[i].f; return SW_OK; }
    return SW_ERR_NOTFOUND;
}

const char *tok_chat_family_name(tok_chat_family f) {
    switch (f) {
    case TOK_CHAT_CHATML: return "chatml";
    case TOK_CHAT_LLAMA3: return "llama3";
    case TOK_CHAT_LLAMA2: return "llama2";
    case TOK_CHAT_PHI3: return "phi3";
    case TOK_CHAT_GEMMA: return "gemma";
    default: return "unknown";
    }
}

static bool role_is(const tok_chat_msg *m, const char *r) { return !strcmp(m->role, r); }

/* Llama 2 (HF template): a system message becomes a <<SYS>> block at the start of the
 * next user turn; every user turn but the first opens with <s> (the first BOS comes
 * from the tokenizer); the answer is " ANSWER </s>"; user and answer are stripped. */
static int render_llama2(sbuf *b, const tok_chat_msg *m, int n, sw_err *err) {
    const char *sys = NULL;
    bool first = true;
    for (int i = 0; i < n; i++) {
        if (role_is(&m[i], "system")) { sys = m[i].content; continue; }
        if (role_is(&m[i], "user")) {
            if (!first) sb_str(b, "<s>");
            sb_str(b, "[INST] ");
            if (sys) {
                sbuf c = {0};
                sb_str(&c, "<<SYS>>\n"); sb_str(&c, sys); sb_str(&c, "\n<</SYS>>\n\n"); sb_str(&c, m[i].content);
                if (c.oom) { free(c.p); return sw_err_set(err, SW_ERR_NOMEM, "chat: out of memory"); }
                sb_trim(b, c.p);
                free(c.p);
                sys = NULL;
            } else {
                sb_trim(b, m[i].content);
            }
            sb_str(b, " [/INST]");
            first = false;
        } else if (role_is(&m[i], "assistant")) {
            sb_str(b, " "); sb_trim(b, m[i].content); sb_str(b, " </s>");
        } else {
            return sw_err_set(err, SW_ERR_ARG, "chat: role '%.32s' not supported by the llama2 template", m[i].role);
        }
    }
    if (sys) { /* a system prompt with no user turn after it: an empty user turn carries it */
        if (!first) sb_str(b, "<s>");
        sb_str(b, "[INST] <<SYS>>\n"); sb_str(b, sys); sb_str(b, "\n<</SYS>> [/INST]");
    }
    return SW_OK;
}

int tok_chat_render(tok_chat_family f, const tok_chat_msg *msgs, int n, bool add_generation_prompt,
                    char **out, sw_err *err) {
    *out = NULL;
    if (n < 0 || (n > 0 && !msgs)) return sw_err_set(err, SW_ERR_ARG, "chat: bad message list");
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content) return sw_err_set(err, SW_ERR_ARG, "chat: message %d has no role or content", i);
    sbuf b = {0};
    sb_add(&b, "", 0);
    int rc = SW_OK;
    const char *gemma_sys = NULL;
    switch (f) {
    case TOK_CHAT_CHATML:
        for (int i = 0; i < n; i++) {
            sb_str(&b, "<|im_start|>"); sb_str(&b, msgs[i].role); sb_str(&b, "\n");
            sb_str(&b, msgs[i].content); sb_str(&b, "<|im_end|>\n");
        }
        if (add_generation_prompt) sb_str(&b, "<|im_start|>assistant\n");
        break;
    case TOK_CHAT_LLAMA3:
        for (int i = 0; i < n; i++) {
            sb_str(&b, "<|start_header_id|>"); sb_str(&b, msgs[i].role); sb_str(&b, "<|end_header_id|>\n\n");
            sb_trim(&b, msgs[i].content); sb_str(&b, "<|eot_id|>");
        }
        if (add_generation_prompt) sb_str(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case TOK_CHAT_LLAMA2:
        rc = render_llama2(&b, msgs, n, err);
        break;
    case TOK_CHAT_PHI3:
        for (int i = 0; i < n; i++) {
            if (!role_is(&msgs[i], "system") && !role_is(&msgs[i], "user") && !role_is(&msgs[i], "assistant")) {
                rc = sw_err_set(err, SW_ERR_ARG, "chat: role '%.32s' not supported by the phi3 template", msgs[i].role);
                break;
            }
            sb_str(&b, "<|"); sb_str(&b, msgs[i].role); sb_str(&b, "|>\n");
            sb_str(&b, msgs[i].content); sb_str(&b, "<|end|>\n");
        }
        if (add_generation_prompt) sb_str(&b, "<|assistant|>\n");
        break;
    case TOK_CHAT_GEMMA:
        for (int i = 0; i < n && !rc; i++) {
            if (role_is(&msgs[i], "system")) { gemma_sys = msgs[i].content; continue; }
            const char *role = role_is(&msgs[i], "assistant") ? "model" : role_is(&msgs[i], "user") ? "user" : NULL;
            if (!role) {
                rc = sw_err_set(err, SW_ERR_ARG, "chat: role '%.32s' not supported by the gemma template", msgs[i].role);
                break;
            }
            sb_str(&b, "<start_of_turn>"); sb_str(&b, role); sb_str(&b, "\n");
            if (gemma_sys && !strcmp(role, "user")) { sb_str(&b, gemma_sys); sb_str(&b, "\n\n"); gemma_sys = NULL; }
            sb_trim(&b, msgs[i].content); sb_str(&b, "<end_of_turn>\n");
        }
        if (add_generation_prompt) sb_str(&b, "<start_of_turn>model\n");
        break;
    default:
        rc = sw_err_set(err, SW_ERR_ARG, "chat: unknown template family");
        break;
    }
    if (!rc && b.oom) rc = sw_err_set(err, SW_ERR_NOMEM, "chat: out of memory");
    if (rc) { free(b.p); return rc; }
    *out = b.p;
    return SW_OK;
}
