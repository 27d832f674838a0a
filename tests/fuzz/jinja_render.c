/* jinja_render.c — libFuzzer target for the Jinja interpreter: the input is a template;
 * it is parsed and, when it parses, rendered against a fixed chat context (messages with
 * a system prompt, tool calls with object and string arguments, a tool result, content
 * parts; tools; add_generation_prompt; special tokens) under tight limits, so any
 * unchecked length, bad recursion or leak in the lexer, parser or evaluator shows up as
 * an ASan/UBSan report. A render error is a normal outcome. */
#include "jinja/jinja.h"
#include <stdlib.h>

static const char *context =
    "{\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are helpful.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris?\"}]},"
    "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"think\",\"tool_calls\":["
    "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"n\":2.5}}},"
    "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"name\":\"get_weather\",\"content\":\"{\\\"t\\\": 21}\"},"
    "{\"role\":\"user\",\"content\":\"Thanks \\u00e9\\u65e5 </think>\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},"
    "\"n\":{\"type\":[\"number\",\"null\"],\"default\":1}},\"required\":[\"city\"]}}}],"
    "\"add_generation_prompt\":true,\"enable_thinking\":false,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}";

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static json_t *vars;
    if (!vars) vars = json_loads(context, 0, NULL);
    jinja_template *t = NULL;
    sw_err err;
    if (jinja_parse((const char *)data, size, &t, &err)) return 0;
    jinja_opts o = {.today = "2025-06-15",
                    .limits = {.max_output = 1 << 20, .max_memory = 32 << 20, .max_steps = 200000, .max_depth = 32}};
    char *out = NULL;
    size_t n = 0;
    if (jinja_render(t, vars, &o, &out, &n, &err) == 0 && n && out[n] != 0) abort();
    free(out);
    jinja_destroy(t);
    return 0;
}
