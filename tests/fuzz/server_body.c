/* server_body.c — libFuzzer target for the server's request-body parser/validator
 * (api_request_parse) on arbitrary bytes. The first byte picks the endpoint (even:
 * completions, odd: chat); the rest is the body. A parsed request's text then goes
 * through the stop-string matcher in uneven pieces and into chunk JSON, and every error
 * through the error JSON, so those paths see fuzzed strings too. Checks invariants:
 * errors are 4xx/5xx with a message; the stop matcher never emits a stop string. */
#include "server/server.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    api_kind kind = (data[0] & 1) ? API_CHAT : API_COMPLETIONS;
    api_request r;
    api_error e = {0};
    if (api_request_parse(kind, (const char *)data + 1, size - 1, &r, &e) != SW_OK) {
        if (e.status < 400 || e.status > 599 || !e.message[0]) abort();
        free(api_error_json(&e));
        return 0;
    }
    const char *text = r.prompt ? r.prompt : (r.n_messages ? r.messages[0].content : "");
    size_t len = r.prompt ? r.prompt_len : strlen(text);
    api_stop st;
    api_stop_init(&st, r.stop, r.n_stop);
    api_buf out = {0};
    for (size_t i = 0, step = 1; i < len && !st.stopped; i += step, step = step % 7 + 1)
        api_stop_feed(&st, text + i, i + step <= len ? step : len - i, &out);
    if (!st.stopped) api_stop_flush(&st, &out);
    for (int k = 0; k < r.n_stop && out.p; k++)
        if (memmem(out.p, out.len, r.stop[k], strlen(r.stop[k]))) abort();
    api_resp_meta m = {"cmpl-fuzz", 0, r.model ? r.model : "m"};
    free(api_chunk_json(kind, &m, 0, out.p ? out.p : "", out.len, "stop", NULL, true));
    api_buf_free(&out);
    api_stop_free(&st);
    api_request_free(&r);
    return 0;
}
