/* bench_http.c — the client side of the wire: URL parsing, one blocking HTTP/1.1
 * exchange per connection (Connection: close; status line + headers read up to a 64 KiB
 * limit; body framed by chunked encoding, Content-Length, or connection close), an
 * incremental chunked decoder, an incremental SSE parser, and the per-request stream
 * timer that turns OpenAI streaming chunks into TTFT / inter-token latencies. */
#include "bench/bench.h"
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HEADER_LIMIT 65536
#define SSE_LINE_LIMIT (8u << 20)

int bench_url_parse(const char *url, bench_url *u, sw_err *err) {
    memset(u, 0, sizeof *u);
    if (!url) return sw_err_set(err, SW_ERR_ARG, "no URL given");
    if (!strncasecmp(url, "https://", 8)) return sw_err_set(err, SW_ERR_UNSUPPORTED, "%s: https is not supported (plain HTTP only)", url);
    if (strncasecmp(url, "http://", 7)) return sw_err_set(err, SW_ERR_ARG, "%s: URL must start with http://", url);
    const char *p = url + 7, *host_end, *hs = p;
    if (*p == '[') {
        hs = p + 1;
        host_end = strchr(hs, ']');
        if (!host_end) return sw_err_set(err, SW_ERR_ARG, "%s: unterminated IPv6 address", url);
        p = host_end + 1;
    } else {
        p += strcspn(p, ":/");
        host_end = p;
    }
    size_t hl = (size_t)(host_end - hs);
    if (hl == 0 || hl >= sizeof u->host) return sw_err_set(err, SW_ERR_ARG, "%s: bad host", url);
    memcpy(u->host, hs, hl);
    strcpy(u->port, "80");
    if (*p == ':') {
        p++;
        size_t pl = strspn(p, "0123456789");
        long port = pl && pl < 6 ? strtol(p, NULL, 10) : 0;
        if (port < 1 || port > 65535) return sw_err_set(err, SW_ERR_ARG, "%s: bad port", url);
        snprintf(u->port, sizeof u->port, "%ld", port);
        p += pl;
    }
    if (*p && *p != '/') return sw_err_set(err, SW_ERR_ARG, "%s: unexpected text after host", url);
    size_t bl = strlen(p);
    while (bl > 0 && p[bl - 1] == '/') bl--;
    if (bl >= sizeof u->base) return sw_err_set(err, SW_ERR_ARG, "%s: path too long", url);
    memcpy(u->base, p, bl);
    return SW_OK;
}

/* ---- chunked transfer decoding ---- */
enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LINE, CH_END_LF, CH_DONE };

int bench_chunked_feed(bench_chunked *c, const char *in, size_t n, bench_sink_fn sink, void *ctx, sw_err *err) {
    size_t i = 0;
    while (i < n && c->state != CH_DONE) {
        char ch = in[i];
        switch (c->state) {
        case CH_SIZE: {
            int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                  : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
            if (d >= 0) {
                if (++c->n_digits > 15) return sw_err_set(err, SW_ERR_FORMAT, "chunk size too large");
                c->remaining = c->remaining * 16 + (uint64_t)d;
            } else if (c->n_digits > 0 && (ch == ';' || ch == ' ' || ch == '\t')) {
                c->state = CH_EXT;
            } else if (c->n_digits > 0 && ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (c->n_digits > 0 && ch == '\n') {
                c->state = c->remaining ? CH_DATA : CH_TRAILER;
            } else {
                return sw_err_set(err, SW_ERR_FORMAT, "bad chunk size line (byte 0x%02x)", (unsigned char)ch);
            }
            i++;
            break;
        }
        case CH_EXT:
            if (ch == '\n') c->state = c->remaining ? CH_DATA : CH_TRAILER;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') return sw_err_set(err, SW_ERR_FORMAT, "chunk size line: CR without LF");
            c->state = c->remaining ? CH_DATA : CH_TRAILER;
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i;
            if ((uint64_t)take > c->remaining) take = (size_t)c->remaining;
            int rc = sink(ctx, in + i, take);
            if (rc) return rc;
            i += take;
            c->remaining -= take;
            if (!c->remaining) c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch == '\r') c->state = CH_DATA_LF;
            else if (ch == '\n') { c->state = CH_SIZE; c->n_digits = 0; }
            else return sw_err_set(err, SW_ERR_FORMAT, "chunk longer than its declared size");
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n') return sw_err_set(err, SW_ERR_FORMAT, "chunk data: CR without LF");
            c->state = CH_SIZE; c->n_digits = 0; c->remaining = 0;
            i++;
            break;
        case CH_TRAILER: /* at the start of a trailer line: blank line ends the body */
            if (ch == '\r') c->state = CH_END_LF;
            else if (ch == '\n') { c->state = CH_DONE; c->done = 1; }
            else c->state = CH_TRAILER_LINE;
            i++;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\n') c->state = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n') return sw_err_set(err, SW_ERR_FORMAT, "chunked body: bad final line");
            c->state = CH_DONE; c->done = 1;
            i++;
            break;
        }
    }
    return SW_OK;
}

/* ---- server-sent events ---- */
void bench_sse_init(bench_sse *s) { memset(s, 0, sizeof *s); }

void bench_sse_free(bench_sse *s) {
    free(s->line);
    free(s->data);
    memset(s, 0, sizeof *s);
}

static int grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb) return -1;
    *buf = nb;
    *cap = nc;
    return 0;
}

/* One complete line (without its terminator). */
static int sse_line(bench_sse *s, bench_event_fn on_event, void *ctx, sw_err *err) {
    const char *l = s->line ? s->line : "";
    size_t n = s->line_len;
    if (n == 0) {
        if (!s->has_data) return 0;
        if (grow(&s->data, &s->data_cap, s->data_len + 1)) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        s->data[s->data_len] = 0;
        int rc = on_event(ctx, s->data, s->data_len);
        s->data_len = 0;
        s->has_data = 0;
        return rc;
    }
    if (l[0] == ':') return 0; /* comment */
    size_t colon = 0;
    while (colon < n && l[colon] != ':') colon++;
    if (colon != 4 || memcmp(l, "data", 4)) return 0; /* event:, id:, retry: ignored */
    size_t v = colon < n ? colon + 1 : n; /* "data" alone: empty value */
    if (v < n && l[v] == ' ') v++;
    size_t add = n - v + (s->has_data ? 1 : 0);
    if (grow(&s->data, &s->data_cap, s->data_len + add + 1)) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    if (s->has_data) s->data[s->data_len++] = '\n';
    memcpy(s->data + s->data_len, l + v, n - v);
    s->data_len += n - v;
    s->has_data = 1;
    return 0;
}

int bench_sse_feed(bench_sse *s, const char *in, size_t n, bench_event_fn on_event, void *ctx, sw_err *err) {
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '\n' && s->prev_cr) { s->prev_cr = 0; continue; } /* \r\n: line already ended at \r */
        s->prev_cr = 0;
        if (ch == '\r' || ch == '\n') {
            s->prev_cr = ch == '\r';
            int rc = sse_line(s, on_event, ctx, err);
            s->line_len = 0;
            if (rc) return rc;
            continue;
        }
        if (s->line_len >= SSE_LINE_LIMIT) return sw_err_set(err, SW_ERR_FORMAT, "SSE line longer than %u bytes", SSE_LINE_LIMIT);
        if (grow(&s->line, &s->line_cap, s->line_len + 1)) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        s->line[s->line_len++] = ch;
    }
    return 0;
}

/* ---- HTTP/1.1 exchange ---- */
static int dial(const bench_url *u, double timeout_s, sw_err *err) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gr = getaddrinfo(u->host, u->port, &hints, &res);
    if (gr) return sw_err_set(err, SW_ERR_IO, "%s:%s: %s", u->host, u->port, gai_strerror(gr));
    int fd = -1, last_errno = 0;
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) { last_errno = errno; continue; }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* also bounds connect */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return sw_err_set(err, SW_ERR_IO, "connect %s:%s: %s", u->host, u->port, strerror(last_errno));
    return fd;
}

static int send_all(int fd, const char *p, size_t n, sw_err *err) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return sw_err_set(err, SW_ERR_IO, "send: %s", w < 0 ? strerror(errno) : "closed");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Case-insensitive search for header `name` in the header block; value copied to out. */
static int header_value(const char *hdr, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    for (const char *l = strstr(hdr, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (!strncasecmp(l, name, nl) && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t vl = strcspn(v, "\r\n");
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
            if (vl >= cap) vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return 1;
        }
    }
    return 0;
}

enum { BODY_CHUNKED, BODY_LENGTH, BODY_CLOSE };

int bench_http_request(const bench_url *u, const char *method, const char *path, const char *api_key,
                       const char *body, double timeout_s, int *status, bench_sink_fn on_body, void *ctx,
                       sw_err *err) {
    *status = 0;
    size_t blen = body ? strlen(body) : 0;
    char head[2048];
    char auth[600] = "";
    if (api_key && *api_key) {
        if (strlen(api_key) > 500) return sw_err_set(err, SW_ERR_ARG, "API key too long");
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", api_key);
    }
    int v6 = strchr(u->host, ':') != NULL; /* IPv6 literal: bracketed in Host */
    int hl = snprintf(head, sizeof head,
                      "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: swiftlet-bench\r\nAccept: */*\r\n"
                      "Connection: close\r\n%s%s",
                      method, u->base, path, v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, auth,
                      body ? "Content-Type: application/json\r\n" : "");
    if (hl < 0 || (size_t)hl >= sizeof head - 64) return sw_err_set(err, SW_ERR_ARG, "request line too long");
    hl += snprintf(head + hl, sizeof head - (size_t)hl, "Content-Length: %zu\r\n\r\n", blen);

    int fd = dial(u, timeout_s, err);
    if (fd < 0) return fd;
    int rc = send_all(fd, head, (size_t)hl, err);
    if (!rc && blen) rc = send_all(fd, body, blen, err);
    char *buf = rc ? NULL : malloc(HEADER_LIMIT + 1);
    if (!rc && !buf) rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    size_t have = 0, hdr_end = 0;
    /* status line and headers */
    while (!rc && !hdr_end) {
        if (have >= HEADER_LIMIT) { rc = sw_err_set(err, SW_ERR_FORMAT, "response headers over %d bytes", HEADER_LIMIT); break; }
        ssize_t r = recv(fd, buf + have, HEADER_LIMIT - have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { rc = sw_err_set(err, SW_ERR_IO, "recv: %s", errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno)); break; }
        if (r == 0) { rc = sw_err_set(err, SW_ERR_IO, "connection closed before the response headers"); break; }
        have += (size_t)r;
        buf[have] = 0;
        char *e = strstr(buf, "\r\n\r\n");
        if (e) hdr_end = (size_t)(e - buf) + 4;
    }
    int mode = BODY_CLOSE;
    uint64_t left = 0;
    if (!rc) {
        int major = 0, minor = 0, st = 0;
        if (sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &st) != 3 || st < 100 || st > 999) {
            rc = sw_err_set(err, SW_ERR_FORMAT, "bad HTTP status line");
        } else {
            *status = st;
            char v[128];
            buf[hdr_end - 2] = 0; /* header block ends at its last CRLF */
            if (header_value(buf, "Transfer-Encoding", v, sizeof v) && strcasestr(v, "chunked")) {
                mode = BODY_CHUNKED;
            } else if (header_value(buf, "Content-Length", v, sizeof v)) {
                char *end;
                errno = 0;
                unsigned long long cl = strtoull(v, &end, 10);
                if (errno || end == v || *end || v[0] == '-') rc = sw_err_set(err, SW_ERR_FORMAT, "bad Content-Length '%s'", v);
                mode = BODY_LENGTH;
                left = cl;
            }
            if (st == 204 || st == 304 || !strcasecmp(method, "HEAD")) { mode = BODY_LENGTH; left = 0; }
        }
    }
    /* body */
    bench_chunked ch = {0};
    const char *p = buf ? buf + hdr_end : NULL;
    size_t n = have - hdr_end;
    for (int first = 1; !rc; first = 0) {
        if (!first) {
            if (mode == BODY_CHUNKED && ch.done) break;
            if (mode == BODY_LENGTH && left == 0) break;
            ssize_t r = recv(fd, buf, HEADER_LIMIT, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) { rc = sw_err_set(err, SW_ERR_IO, "recv: %s", errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno)); break; }
            if (r == 0) {
                if (mode == BODY_CHUNKED) rc = sw_err_set(err, SW_ERR_IO, "connection closed inside a chunked body");
                else if (mode == BODY_LENGTH) rc = sw_err_set(err, SW_ERR_IO, "connection closed with %llu body bytes missing", (unsigned long long)left);
                break;
            }
            p = buf;
            n = (size_t)r;
        }
        if (mode == BODY_LENGTH) {
            if ((uint64_t)n > left) n = (size_t)left;
            left -= n;
        }
        if (n == 0) continue;
        rc = mode == BODY_CHUNKED ? bench_chunked_feed(&ch, p, n, on_body, ctx, err) : on_body(ctx, p, n);
    }
    free(buf);
    close(fd);
    return rc;
}

/* ---- streaming completion timing ---- */
void bench_stream_init(bench_stream *s, double t0_ms) {
    memset(s, 0, sizeof *s);
    s->t0_ms = t0_ms;
    s->usage_completion = s->usage_prompt = -1;
}

void bench_stream_free(bench_stream *s) {
    free(s->itl_ms);
    s->itl_ms = NULL;
    s->n_itl = s->itl_cap = 0;
}

static int stream_fail(bench_stream *s, const char *fmt, const char *detail) {
    s->failed = 1;
    snprintf(s->err, sizeof s->err, fmt, detail);
    return -1;
}

int bench_stream_event(bench_stream *s, const char *data, size_t n, double now_ms) {
    if (s->failed) return -1;
    if (s->t_end_ms > 0) return 0; /* anything after [DONE] is ignored */
    if (n == 6 && !memcmp(data, "[DONE]", 6)) { s->t_end_ms = now_ms; return 0; }
    json_error_t je;
    /* JSON_ALLOW_NUL: "\u0000" is valid JSON (a byte-level vocabulary has a token for byte 0) */
    json_t *j = json_loadb(data, n, JSON_ALLOW_NUL, &je);
    if (!j || !json_is_object(j)) {
        char snip[140];
        snprintf(snip, sizeof snip, "%.60s at byte %d: %.*s", j ? "not an object" : je.text, j ? 0 : je.position,
                 (int)(n < 48 ? n : 48), data);
        json_decref(j);
        return stream_fail(s, "malformed SSE data (not a JSON object): %s", snip);
    }
    json_t *e = json_object_get(j, "error");
    if (e) {
        const char *m = json_string_value(json_object_get(e, "message"));
        if (!m) m = json_string_value(e);
        int rc = stream_fail(s, "error event: %s", m ? m : "(no message)");
        json_decref(j);
        return rc;
    }
    json_t *choices = json_object_get(j, "choices");
    json_t *c0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    json_t *text = NULL; /* a JSON string; its length, not strlen, says whether it is empty */
    if (json_is_object(c0)) {
        text = json_object_get(c0, "text");
        if (!json_is_string(text)) text = json_object_get(json_object_get(c0, "delta"), "content");
    }
    if (json_is_string(text) && json_string_length(text) > 0) {
        if (s->n_content >= (1 << 22)) { json_decref(j); return stream_fail(s, "%s", "stream longer than 4M content chunks"); }
        if (s->n_content == 0) {
            s->t_first_ms = now_ms;
        } else {
            if (s->n_itl == s->itl_cap) {
                int nc = s->itl_cap ? s->itl_cap * 2 : 64;
                double *ni = realloc(s->itl_ms, (size_t)nc * sizeof *ni);
                if (!ni) { json_decref(j); return stream_fail(s, "%s", "out of memory"); }
                s->itl_ms = ni;
                s->itl_cap = nc;
            }
            s->itl_ms[s->n_itl++] = now_ms - s->t_last_ms;
        }
        s->t_last_ms = now_ms;
        s->n_content++;
    }
    json_t *usage = json_object_get(j, "usage");
    if (json_is_object(usage)) {
        json_t *ct = json_object_get(usage, "completion_tokens"), *pt = json_object_get(usage, "prompt_tokens");
        if (json_is_integer(ct) && json_integer_value(ct) >= 0 && json_integer_value(ct) < (1 << 30))
            s->usage_completion = (int)json_integer_value(ct);
        if (json_is_integer(pt) && json_integer_value(pt) >= 0 && json_integer_value(pt) < (1 << 30))
            s->usage_prompt = (int)json_integer_value(pt);
    }
    json_decref(j);
    return 0;
}
