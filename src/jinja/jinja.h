/* jinja.h — a Jinja template interpreter for the subset real chat templates use
 * (Qwen3, Llama 3.x, Gemma 3, gpt-oss, DeepSeek-V3, ...). Prefix `jinja_`.
 * jinja_parse compiles a template once (errors carry line:column); jinja_render renders it
 * with variables given as a jansson object, under limits on output size, memory, steps
 * and recursion depth, so a hostile template or request fails with a message instead of
 * hurting the process. Semantics follow Python's Jinja2 as Hugging Face's chat renderer
 * configures it: trim_blocks/lstrip_blocks off, the template's final newline dropped,
 * `tojson` = json.dumps(ensure_ascii=False) with Python's separators and key order,
 * `raise_exception(msg)`, `strftime_now(fmt)`.
 * jinja_chat_* builds those variables from an OpenAI chat request (jinja_chat.c). */
#ifndef SW_JINJA_H
#define SW_JINJA_H
#include "base/base.h"
#include <jansson.h>

typedef struct jinja_template jinja_template;

/* Render limits; a zero field takes its default (jinja_render documents them). */
typedef struct jinja_limits {
    size_t max_output;   /* bytes of rendered text (default 8 MiB) */
    size_t max_memory;   /* bytes of values built while rendering (default 64 MiB) */
    uint64_t max_steps;  /* statements + expression nodes + loop iterations (default 5M) */
    int max_depth;       /* macro call nesting and nested data depth (default 64) */
} jinja_limits;

typedef struct jinja_opts {
    const char *today;   /* "YYYY-MM-DD": the date strftime_now sees (NULL: the clock) */
    jinja_limits limits;
} jinja_opts;

/* Compiles src (len bytes, need not be NUL-terminated). On a syntax error returns
 * SW_ERR_FORMAT with "line L col C: ..." in err. */
int jinja_parse(const char *src, size_t len, jinja_template **out, sw_err *err);
void jinja_destroy(jinja_template *t);

/* Renders t with vars (a JSON object: name -> value; NULL = none) into a malloc'd
 * NUL-terminated string. t is only read: several threads may render it at once (each
 * render allocates its values in its own arena). A render error (raise_exception,
 * undefined misuse, type error, a limit) returns SW_ERR_FORMAT (SW_ERR_RANGE for limits)
 * with the message in err; raise_exception's message is passed verbatim. opts may be NULL. */
int jinja_render(const jinja_template *t, const json_t *vars, const jinja_opts *opts,
                 char **out, size_t *out_len, sw_err *err);

/* Chat glue: the variables transformers passes to a chat template, from an OpenAI chat
 * request body: messages (as sent), tools (null when absent), add_generation_prompt
 * (default true), bos_token/eos_token (when non-NULL), and every key of
 * chat_template_kwargs. Validates the shape of messages. */
int jinja_chat_vars(const json_t *request, const char *bos_token, const char *eos_token,
                    json_t **vars, sw_err *err);
/* jinja_chat_vars + jinja_render, with strftime_now's date from SWIFTLET_NOW when set.
 * When the render fails and some message's content is an array of text parts, it is
 * rendered again with those parts joined into one string (templates that take only
 * strings then work too); the first error is reported if that fails as well. */
int jinja_chat_render(const jinja_template *t, const json_t *request, const char *bos_token,
                      const char *eos_token, char **out, size_t *out_len, sw_err *err);

#endif
