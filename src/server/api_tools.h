/* api_tools.h — OpenAI tool calling in the server (api_tools.c, prefix api_tools_): the
 * tool-call syntax of a model family, detected once from its chat template text; an
 * incremental parser that splits generated text into content and tool-call events
 * (start with index + name, argument fragments, end) so a stream can forward them as they
 * come; the request fields (tools, tool_choice, parallel_tool_calls); the grammar that
 * constrains the calls (`required` / a named tool from the first token, `auto` lazily from
 * the family's call opener); and the response JSON (message.tool_calls, delta.tool_calls).
 * The parser takes text in any chunking and gives the same events (only how text and
 * argument fragments are cut differs), so it can be chained after another splitter. */
#ifndef SW_API_TOOLS_H
#define SW_API_TOOLS_H
#include "server/server.h"

/* Tool-call syntax of a model family. */
typedef enum api_tool_family {
    API_TOOLS_NONE = 0,   /* no parsing: the text is content */
    API_TOOLS_HERMES,     /* Hermes / Qwen2.5 / Qwen3: <tool_call>{"name":..,"arguments":{..}}</tool_call>, repeated */
    API_TOOLS_LLAMA3,     /* Llama 3.x: [<|python_tag|>]{"name":..,"parameters":{..}} (; {...})* */
    API_TOOLS_MISTRAL,    /* Mistral: [TOOL_CALLS][{"name":..,"arguments":{..}}, ...] */
} api_tool_family;

/* The family a chat template's text calls tools with (NONE when it shows no call syntax
 * or text is NULL). */
api_tool_family api_tools_detect(const char *text, size_t len);
/* --tool-parser NAME: "hermes" | "llama3" | "mistral" | "none"; "auto" -> *auto_ = true. */
int api_tools_family_from_name(const char *name, api_tool_family *out, bool *auto_);
const char *api_tools_family_name(api_tool_family f);

/* ---------- incremental output parser ---------- */
typedef enum api_tool_ev_kind {
    API_TOOL_TEXT,   /* content text: s[0..len) */
    API_TOOL_START,  /* a call begins: index, function name s[0..len) */
    API_TOOL_ARGS,   /* a fragment of the call's arguments (JSON text) s[0..len) */
    API_TOOL_END,    /* the call ended */
} api_tool_ev_kind;
typedef struct api_tool_ev { api_tool_ev_kind kind; int index; const char *s; size_t len; } api_tool_ev;
/* Receives events in order; a non-zero return stops the feed and is returned by it. */
typedef int (*api_tool_sink)(void *ctx, const api_tool_ev *ev);

typedef struct api_tools_parser api_tools_parser;
int api_tools_parser_create(api_tool_family f, api_tools_parser **out);
void api_tools_parser_destroy(api_tools_parser *p);
/* Feeds generated text. Text that might still begin a call is held back until decided. */
int api_tools_feed(api_tools_parser *p, const char *s, size_t n, api_tool_sink sink, void *ctx);
/* End of the generation: releases what was held (a call cut short is ended with the
 * arguments it has; a half-seen opener becomes text). */
int api_tools_finish(api_tools_parser *p, api_tool_sink sink, void *ctx);
int api_tools_n_calls(const api_tools_parser *p); /* calls started so far */

/* ---------- collected calls (non-streaming responses) ---------- */
typedef struct api_tool_call { char id[32]; char *name; api_buf args; } api_tool_call;
typedef struct api_tool_calls { api_tool_call *v; int n, cap; } api_tool_calls;
/* Adds a START / ARGS event (TEXT and END are ignored); ids come from *rng. */
int api_tool_calls_add(api_tool_calls *c, const api_tool_ev *ev, uint64_t *rng);
void api_tool_calls_free(api_tool_calls *c);
/* "call_" + 24 random letters and digits (out: 30 bytes), advancing *rng. */
void api_tools_call_id(uint64_t *rng, char out[32]);
/* The JSON array of message.tool_calls: [{"id","type":"function","function":{"name","arguments"}}]. */
int api_tool_calls_json(const api_tool_calls *c, api_buf *out);
/* One streaming chunk (chat.completion.chunk) whose delta carries a START (id, type,
 * function.name, arguments "") or ARGS (function.arguments fragment) event. */
char *api_tools_chunk_json(const api_resp_meta *m, int choice, const api_tool_ev *ev, const char *id);

/* ---------- request side ---------- */
/* Parses tools / tool_choice / parallel_tool_calls of a chat request into r->tools
 * (400 naming the field on a bad shape, an unknown tool type or an unknown tool name). */
int api_tools_parse_request(json_t *root, api_request *r, api_error *e);
void api_tools_req_free(api_tool_req *tr);
/* Whether the request's output is to be parsed for calls under family f. */
bool api_tools_active(const api_request *r, api_tool_family f);
/* The constraint of the request's calls through the grammar cache: *out NULL when there
 * is none; *trigger: NULL = constrain from the first token, else the text that engages
 * it (tool_choice auto; see gram_matcher_create_lazy). 400 when a tool's parameters
 * cannot be enforced or the family has no call syntax. */
int api_tools_grammar(gram_cache *c, api_tool_family f, const api_request *r, gram_grammar **out,
                      const char **trigger, api_error *e);
#endif
