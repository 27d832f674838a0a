#include "grammar/gram_internal.h"
int gram_compile_regex(const gram_vocab *v, const char *re, size_t len, gram_grammar **out, sw_err *err) { return sw_err_set(err, SW_ERR_UNSUPPORTED, "x"); }
int gram_compile_schema(const gram_vocab *v, const json_t *schema, gram_grammar **out, sw_err *err) { return sw_err_set(err, SW_ERR_UNSUPPORTED, "x"); }
int gram_compile_json_object(const gram_vocab *v, gram_grammar **out, sw_err *err) { return sw_err_set(err, SW_ERR_UNSUPPORTED, "x"); }
