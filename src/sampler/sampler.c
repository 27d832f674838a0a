/* sampler.c — next-token selection from one row of logits.
 *
 * Order of operations (as vLLM / HF apply them): repetition penalty (llama.cpp: over the
 * distinct tokens among the last repeat_last_n accepted tokens, prompt included, a
 * positive logit is divided by the penalty and a negative one multiplied), presence and
 * frequency penalties (OpenAI: logit -= count * frequency + (count > 0) * presence, counts
 * over generated tokens), then greedy argmax when temperature is 0 or top_k is 1, else
 * temperature, top-k, top-p (over the top-k set renormalised), min-p (keep p >= min_p *
 * p_max), and a draw from a xoshiro256** generator seeded from the request's seed.
 *
 * Cost on a 151936-entry vocab: one or two linear passes; top-k is a heap selection of k;
 * top-p alone buckets the vocab by logit and sorts only the buckets that hold the top-p
 * mass (no full sort unless the distribution is nearly flat). Log-probabilities come
 * from the unpenalised logits at temperature 1 (log-softmax of the raw row). */
#include "sampler/sampler.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLER_MAX_LOGPROBS 20

typedef struct cand { float v; int32_t id; } cand;

struct sampler {
    sampler_params p;
    int n_vocab;
    uint64_t rng[4];     /* xoshiro256** state */
    int32_t *ring;       /* (repeat_last_n) last accepted tokens, prompt included */
    int ring_n, ring_pos;
    uint32_t *stamp;     /* (n_vocab) dedup marks for the repeat penalty; NULL when off */
    uint32_t stamp_cur;
    int32_t *counts;     /* (n_vocab) generated-token counts; NULL when presence/frequency off */
    int32_t *seen;       /* (n_vocab) distinct generated tokens, n_seen of them */
    int n_seen;
    float *raw;          /* (n_vocab) unpenalised copy for logprobs; NULL when none are wanted */
    cand *cands;         /* (n_vocab) candidate scratch */
};

void sampler_params_default(sampler_params *p) {
    *p = (sampler_params){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .repeat_penalty = 1.0f,
                          .repeat_last_n = 64, .presence_penalty = 0.0f, .frequency_penalty = 0.0f,
                          .seed = 0x5eed5eedULL, .n_logprobs = 0};
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform double in [0, 1). */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

int sampler_create(const sampler_params *p, int n_vocab, sampler **out) {
    *out = NULL;
    if (!p || n_vocab <= 0 || !(p->temperature >= 0) || !isfinite(p->temperature) || p->top_k < 0 ||
        !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) || !(p->repeat_penalty > 0) ||
        !isfinite(p->repeat_penalty) || p->repeat_last_n < 0 || p->repeat_last_n > (1 << 20) ||
        !isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty) || p->n_logprobs < 0 ||
        p->n_logprobs > SAMPLER_MAX_LOGPROBS)
        return SW_ERR_ARG;
    sampler *s = calloc(1, sizeof *s);
    if (!s) return SW_ERR_NOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    bool ok = true;
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    ok = ok && s->cands;
    if (p->repeat_penalty != 1.0f && p->repeat_last_n > 0) {
        s->ring = malloc((size_t)p->repeat_last_n * sizeof *s->ring);
        s->stamp = calloc((size_t)n_vocab, sizeof *s->stamp);
        ok = ok && s->ring && s->stamp;
    }
    if (p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f) {
        s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
        s->seen = malloc((size_t)n_vocab * sizeof *s->seen);
        ok = ok && s->counts && s->seen;
    }
    if (p->logprob || p->n_logprobs > 0) {
        s->raw = malloc((size_t)n_vocab * sizeof *s->raw);
        ok = ok && s->raw;
    }
    if (!ok) { sampler_destroy(s); return SW_ERR_NOMEM; }
    *out = s;
    return SW_OK;
}

void sampler_destroy(sampler *s) {
    if (!s) return;
    free(s->ring); free(s->stamp); free(s->counts); free(s->seen); free(s->raw); free(s->cands);
    free(s);
}

void sampler_accept(sampler *s, int32_t id, bool is_prompt) {
    if (id < 0 || id >= s->n_vocab) return;
    if (s->ring) {
        s->ring[s->ring_pos] = id;
        s->ring_pos = (s->ring_pos + 1) % s->p.repeat_last_n;
        if (s->ring_n < s->p.repeat_last_n) s->ring_n++;
    }
    if (s->counts && !is_prompt) {
        if (s->counts[id]++ == 0) s->seen[s->n_seen++] = id;
    }
}

static void apply_penalties(sampler *s, float *logits) {
    if (s->ring && s->ring_n > 0) {
        if (++s->stamp_cur == 0) { memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp); s->stamp_cur = 1; }
        float pen = s->p.repeat_penalty;
        for (int i = 0; i < s->ring_n; i++) {
            int32_t id = s->ring[i];
            if (s->stamp[id] == s->stamp_cur) continue;
            s->stamp[id] = s->stamp_cur;
            logits[id] = logits[id] > 0 ? logits[id] / pen : logits[id] * pen;
        }
    }
    if (s->counts) {
        for (int i = 0; i < s->n_seen; i++) {
            int32_t id = s->seen[i];
            logits[id] -= (float)s->counts[id] * s->p.frequency_penalty + s->p.presence_penalty;
        }
    }
}

/* a ranks before b: larger value, then smaller id (deterministic under ties). */
static bool cand_before(cand a, cand b) { return a.v > b.v || (a.v == b.v && a.id < b.id); }

static int cand_cmp(const void *pa, const void *pb) {
    cand a = *(const cand *)pa, b = *(const cand *)pb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* Min-heap (root = worst kept candidate) sift-down over h[0..n). */
static void heap_down(cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_before(h[w], h[l])) w = l;
        if (r < n && cand_before(h[w], h[r])) w = r;
        if (w == i) return;
        cand t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

/* Writes the k best (value, id) of x (n) to out, sorted best first. */
static void top_k_select(const float *x, int n, int k, cand *out) {
    if (k >= n) {
        for (int i = 0; i < n; i++) out[i] = (cand){x[i], i};
        qsort(out, (size_t)n, sizeof *out, cand_cmp);
        return;
    }
    for (int i = 0; i < k; i++) out[i] = (cand){x[i], i};
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(out, k, i);
    for (int i = k; i < n; i++) {
        cand c = {x[i], i};
        if (cand_before(c, out[0])) { out[0] = c; heap_down(out, k, 0); }
    }
    qsort(out, (size_t)k, sizeof *out, cand_cmp);
}

/* The first index of the largest value (NaNs never win; 0 when x[0] is NaN): the
 * maximum over eight independent lanes (a loop the compiler vectorizes), then the first
 * index holding it — what the one-pass `x[i] > x[best]` scan returns, at vector speed. */
static int32_t argmax(const float *x, int n) {
    if (n < 64 || isnan(x[0])) {
        int32_t best = 0;
        for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
        return best;
    }
    float m[8];
    for (int j = 0; j < 8; j++) m[j] = x[0];
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    float mx = m[0];
    for (int j = 1; j < 8; j++) mx = m[j] > mx ? m[j] : mx;
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (i = 0; x[i] != mx; i++) {}
    return i;
}

/* Draws from exp((x - mx) * inv_t) over the tokens whose logit is >= thr; e: (n) scratch. */
static int32_t draw_linear(sampler *s, const float *x, int n, float mx, float inv_t, float thr, float *e) {
    double z = 0;
    for (int i = 0; i < n; i++) z += (e[i] = x[i] >= thr ? expf((x[i] - mx) * inv_t) : 0.0f);
    if (!(z > 0)) return argmax(x, n);
    double r = rng_uniform(s->rng) * z, acc = 0;
    int32_t last = -1;
    for (int i = 0; i < n; i++) {
        if (e[i] == 0.0f) continue;
        acc += e[i];
        last = i;
        if (acc > r) return i;
    }
    return last >= 0 ? last : argmax(x, n);
}

#define SAMPLER_BUCKETS 512
#define SAMPLER_BUCKET_SPAN 24.0f /* scaled logit distance from the max covered by buckets */

/* Top-p without top-k: buckets tokens by (mx - x) * inv_t, finds the bucket where the
 * cumulative mass reaches top_p * Z, and sorts only the tokens of the buckets up to it
 * (an exact prefix of the full order) into c. Returns their count; *z_all = Z. */
static int collect_top_p(const sampler *s, const float *x, float mx, float inv_t, cand *c, double *z_all) {
    double mass[SAMPLER_BUCKETS] = {0};
    const int V = s->n_vocab;
    const float per = SAMPLER_BUCKETS / SAMPLER_BUCKET_SPAN;
    double z = 0;
    for (int i = 0; i < V; i++) {
        float d = (mx - x[i]) * inv_t * per;
        int b = d < SAMPLER_BUCKETS - 1 ? (int)d : SAMPLER_BUCKETS - 1;
        float e = expf((x[i] - mx) * inv_t);
        mass[b] += e;
        z += e;
    }
    *z_all = z;
    double target = (double)s->p.top_p * z, acc = 0;
    int last = SAMPLER_BUCKETS - 1;
    for (int b = 0; b < SAMPLER_BUCKETS; b++) {
        acc += mass[b];
        if (acc >= target) { last = b; break; }
    }
    int n = 0;
    for (int i = 0; i < V; i++) {
        float d = (mx - x[i]) * inv_t * per;
        int b = d < SAMPLER_BUCKETS - 1 ? (int)d : SAMPLER_BUCKETS - 1;
        if (b <= last) c[n++] = (cand){x[i], i};
    }
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    return n;
}

static int32_t sample_filtered(sampler *s, const float *x) {
    const int V = s->n_vocab;
    const float inv_t = 1.0f / s->p.temperature;
    float mx = x[argmax(x, V)];
    /* min-p: p_i >= min_p * p_max  <=>  (x_i - mx) * inv_t >= log(min_p). */
    float thr = s->p.min_p > 0 ? mx + logf(s->p.min_p) / inv_t : -INFINITY;
    bool use_k = s->p.top_k > 0 && s->p.top_k < V, use_p = s->p.top_p < 1.0f;
    cand *c = s->cands;
    if (!use_k && !use_p) return draw_linear(s, x, V, mx, inv_t, thr, (float *)c);

    int n;
    double z = 0; /* normaliser of the top-p distribution: the top-k set, or the whole vocab */
    if (use_k) {
        n = s->p.top_k;
        top_k_select(x, V, n, c);
        for (int i = 0; i < n; i++) z += expf((c[i].v - mx) * inv_t);
    } else {
        n = collect_top_p(s, x, mx, inv_t, c, &z);
    }
    if (use_p) {
        double acc = 0, target = (double)s->p.top_p * z;
        for (int i = 0; i < n; i++) {
            acc += expf((c[i].v - mx) * inv_t);
            if (acc >= target) { n = i + 1; break; }
        }
    }
    int keep = 0;
    while (keep < n && c[keep].v >= thr) keep++;
    if (keep == 0) keep = 1;
    z = 0;
    for (int i = 0; i < keep; i++) z += expf((c[i].v - mx) * inv_t);
    double r = rng_uniform(s->rng) * z, acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += expf((c[i].v - mx) * inv_t);
        if (acc > r) return c[i].id;
    }
    return c[keep - 1].id;
}

int32_t sampler_sample(sampler *s, float *logits, float *logprob, int32_t *top_ids, float *top_logprobs) {
    const int V = s->n_vocab;
    bool want_lp = s->raw && (logprob || (top_ids && top_logprobs));
    if (want_lp) memcpy(s->raw, logits, (size_t)V * sizeof *logits);
    apply_penalties(s, logits);
    int32_t id = (s->p.temperature <= 0 || s->p.top_k == 1) ? argmax(logits, V) : sample_filtered(s, logits);
    if (want_lp) {
        const float *raw = s->raw;
        float mx = raw[argmax(raw, V)];
        double z = 0;
        for (int i = 0; i < V; i++) z += expf(raw[i] - mx);
        float lse = mx + (float)log(z);
        if (logprob) *logprob = raw[id] - lse;
        if (top_ids && top_logprobs) {
            int n = s->p.n_logprobs < V ? s->p.n_logprobs : V;
            cand best[SAMPLER_MAX_LOGPROBS];
            top_k_select(raw, V, n, best);
            for (int i = 0; i < n; i++) { top_ids[i] = best[i].id; top_logprobs[i] = best[i].v - lse; }
        }
    }
    return id;
}
