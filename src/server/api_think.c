/* api_think.c — splits a reasoning model's chat output (Qwen3, DeepSeek-R1 distills) into
 * reasoning and content, incrementally. The text (already past the stop-string matcher:
 * stop strings apply to the raw output, reasoning included) arrives in pieces; a think
 * block is recognised only at the start of the output — `<think>` after optional
 * whitespace, or already open when the prompt ended inside one — and ends at the first
 * `</think>`. Its text, trimmed of surrounding whitespace, is reasoning; what follows,
 * with leading whitespace dropped, is content (a later `<think>` is content too). An
 * output without a think block is all content, byte for byte; an unterminated block is
 * all reasoning. Possible partial tags and whitespace that may turn out to be trimmed
 * are held back, so any split of the same text yields the same two strings. Splitting at
 * tags and ASCII whitespace never cuts a UTF-8 character the pieces kept whole. */
#include "server/server.h"
#include <string.h>

static const char OPEN[] = "<think>", CLOSE[] = "</think>";
#define OPEN_LEN (sizeof OPEN - 1)
#define CLOSE_LEN (sizeof CLOSE - 1)

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

void api_think_init(api_think *t, bool enabled, bool open) {
    memset(t, 0, sizeof *t);
    t->state = !enabled ? API_THINK_OFF : open ? API_THINK_IN : API_THINK_START;
}

bool api_think_active(const api_think *t) { return t->state != API_THINK_OFF; }

static int put(api_buf *b, const char *s, size_t n) { return n ? api_buf_append(b, s, n) : SW_OK; }

/* Emits reasoning h[i..j), noting that some was emitted (its leading whitespace is kept). */
static int reason(api_think *t, const char *h, size_t i, size_t j, api_buf *out) {
    if (j > i) t->reasoned = true;
    return put(out, h + i, j - i);
}

/* Longest proper suffix of h[i..n) that is a prefix of tag (tag_len > 1). */
static size_t partial_tag(const char *h, size_t i, size_t n, const char *tag, size_t tag_len) {
    size_t k = n - i < tag_len - 1 ? n - i : tag_len - 1;
    for (; k > 0; k--)
        if (memcmp(h + n - k, tag, k) == 0) return k;
    return 0;
}

/* Runs the state machine over h[0..n); returns in *keep where the undecided tail starts. */
static int run(api_think *t, const char *h, size_t n, size_t *keep, api_buf *reasoning, api_buf *content) {
    size_t i = 0;
    for (;;) {
        switch (t->state) {
        case API_THINK_START: {
            size_t j = i;
            while (j < n && is_ws(h[j])) j++;
            size_t m = n - j < OPEN_LEN ? n - j : OPEN_LEN;
            if (memcmp(h + j, OPEN, m) != 0) { t->state = API_THINK_CONTENT; break; }
            if (m < OPEN_LEN) { *keep = i; return SW_OK; } /* whitespace or a partial "<think>" */
            i = j + OPEN_LEN;
            t->state = API_THINK_IN;
            break;
        }
        case API_THINK_IN: {
            if (!t->reasoned)
                while (i < n && is_ws(h[i])) i++;
            const char *m = memmem(h + i, n - i, CLOSE, CLOSE_LEN);
            if (m) {
                size_t e = (size_t)(m - h), s = e;
                while (s > i && is_ws(h[s - 1])) s--;
                if (reason(t, h, i, s, reasoning)) return SW_ERR_NOMEM;
                i = e + CLOSE_LEN;
                t->state = API_THINK_AFTER;
                break;
            }
            size_t s = n - partial_tag(h, i, n, CLOSE, CLOSE_LEN);
            while (s > i && is_ws(h[s - 1])) s--;
            if (reason(t, h, i, s, reasoning)) return SW_ERR_NOMEM;
            *keep = s;
            return SW_OK;
        }
        case API_THINK_AFTER:
            while (i < n && is_ws(h[i])) i++;
            if (i == n) { *keep = n; return SW_OK; }
            t->state = API_THINK_CONTENT;
            break;
        default: /* OFF, CONTENT */
            *keep = n;
            return put(content, h + i, n - i);
        }
    }
}

int api_think_feed(api_think *t, const char *text, size_t len, api_buf *reasoning, api_buf *content) {
    if (len == 0) return SW_OK;
    if ((t->state == API_THINK_OFF || t->state == API_THINK_CONTENT) && t->held.len == 0)
        return put(content, text, len);
    if (put(&t->held, text, len)) return SW_ERR_NOMEM;
    size_t keep = 0, n = t->held.len;
    int rc = run(t, t->held.p, n, &keep, reasoning, content);
    memmove(t->held.p, t->held.p + keep, n - keep);
    t->held.len = n - keep;
    t->held.p[t->held.len] = 0;
    return rc;
}

int api_think_flush(api_think *t, api_buf *reasoning, api_buf *content) {
    const char *h = t->held.p;
    size_t i = 0, n = t->held.len;
    int rc = SW_OK;
    if (n == 0) return SW_OK;
    if (t->state == API_THINK_START) {
        rc = put(content, h, n); /* never became a think block: the text as it came */
    } else if (t->state == API_THINK_IN) { /* unterminated: a partial "</think>" is text */
        if (!t->reasoned)
            while (i < n && is_ws(h[i])) i++;
        while (n > i && is_ws(h[n - 1])) n--;
        rc = reason(t, h, i, n, reasoning);
    }
    t->held.len = 0;
    t->held.p[0] = 0;
    return rc;
}

void api_think_free(api_think *t) { api_buf_free(&t->held); }

bool api_think_prompt_open(const char *prompt, size_t len) {
    const char *last = NULL;
    for (const char *p = prompt; (p = memmem(p, len - (size_t)(p - prompt), OPEN, OPEN_LEN)); p += OPEN_LEN) last = p;
    if (!last) return false;
    for (const char *p = last + OPEN_LEN; p < prompt + len; p++)
        if (!is_ws(*p)) return false;
    return true;
}

bool api_think_template_uses(const char *tmpl, size_t len) {
    return tmpl && memmem(tmpl, len, OPEN, OPEN_LEN) != NULL;
}
