/* sampler_test.c — the sampler against direct computations: greedy is argmax, top-k=1 is
 * greedy, seeds reproduce / differ, temperature sampling frequencies match softmax,
 * top-k / top-p / min-p keep exactly the tokens they should, penalties change logits as
 * specified (llama.cpp repeat penalty, OpenAI presence/frequency), logprobs equal the
 * log-softmax of the raw logits, and a 151936-entry vocab is sampled quickly. */
#include "sampler/sampler.h"
#include "t.h"
#include <math.h>

static void fill_random(float *x, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 65536.0f * 20.0f - 10.0f;
    }
}

static int32_t sample_once(const sampler_params *p, const float *logits, int n) {
    sampler *s;
    if (sampler_create(p, n, &s) != SW_OK) return -1;
    float *tmp = malloc((size_t)n * sizeof *tmp);
    memcpy(tmp, logits, (size_t)n * sizeof *tmp);
    int32_t id = sampler_sample(s, tmp, NULL, NULL, NULL);
    free(tmp);
    sampler_destroy(s);
    return id;
}

/* Frequencies of n_draw samples from one sampler over a fixed row. */
static void histogram(const sampler_params *p, const float *logits, int n, int n_draw, int *hist) {
    sampler *s;
    memset(hist, 0, (size_t)n * sizeof *hist);
    if (sampler_create(p, n, &s) != SW_OK) return;
    float *tmp = malloc((size_t)n * sizeof *tmp);
    for (int d = 0; d < n_draw; d++) {
        memcpy(tmp, logits, (size_t)n * sizeof *tmp);
        int32_t id = sampler_sample(s, tmp, NULL, NULL, NULL);
        if (id >= 0 && id < n) hist[id]++;
    }
    free(tmp);
    sampler_destroy(s);
}

static void test_greedy(void) {
    enum { N = 1000 };
    float x[N];
    fill_random(x, N, 7);
    int best = 0;
    for (int i = 1; i < N; i++) if (x[i] > x[best]) best = i;
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = 0;
    T_EQ_INT(sample_once(&p, x, N), best);
    sampler_params_default(&p);
    p.top_k = 1;
    p.temperature = 1.5f;
    T_EQ_INT(sample_once(&p, x, N), best);
}

/* Greedy over a big row (the vectorized argmax): the first index of the maximum, NaNs
 * never chosen (index 0 when row[0] is NaN), the maximum in the tail past the last full
 * group of eight, ties, all -inf, and +0 / -0 (equal: the first one wins). */
static void test_greedy_big(void) {
    enum { N = 151936 + 5 };
    float *x = malloc(N * sizeof *x);
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = 0;
    fill_random(x, N, 11);
    for (int round = 0; round < 8; round++) {
        if (round == 1) x[N - 2] = 50.0f;              /* in the tail */
        if (round == 2) x[777] = x[N - 2];              /* a tie: the earlier index */
        if (round == 3) { x[5] = NAN; x[N - 1] = NAN; } /* NaNs ignored */
        if (round == 4) x[0] = NAN;                     /* as the one-pass scan: index 0 */
        if (round == 5) for (int i = 0; i < N; i++) x[i] = -INFINITY;
        if (round == 6) { for (int i = 0; i < N; i++) x[i] = -1.0f; x[300] = -0.0f; x[200] = 0.0f; }
        if (round == 7) { x[200] = -1.0f; x[300] = -0.0f; x[90000] = 0.0f; }
        int best = 0;
        for (int i = 1; i < N; i++) if (x[i] > x[best]) best = i;
        T_EQ_INT(sample_once(&p, x, N), best);
    }
    free(x);
}

static void test_seeds(void) {
    enum { N = 50, STEPS = 64 };
    float x[N];
    fill_random(x, N, 3);
    for (int i = 0; i < N; i++) x[i] *= 0.2f; /* flat: many plausible tokens */
    sampler_params p;
    sampler_params_default(&p);
    int32_t seq[3][STEPS];
    uint64_t seeds[3] = {42, 42, 43};
    for (int r = 0; r < 3; r++) {
        sampler *s;
        p.seed = seeds[r];
        T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
        for (int t = 0; t < STEPS; t++) {
            float tmp[N];
            memcpy(tmp, x, sizeof tmp);
            seq[r][t] = sampler_sample(s, tmp, NULL, NULL, NULL);
            sampler_accept(s, seq[r][t], false);
        }
        sampler_destroy(s);
    }
    T_CHECK(memcmp(seq[0], seq[1], sizeof seq[0]) == 0, "same seed gave different sequences");
    T_CHECK(memcmp(seq[0], seq[2], sizeof seq[0]) != 0, "different seeds gave the same sequence");
}

static void softmax_ref(const float *x, int n, float t, double *p) {
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < n; i++) if (x[i] / t > mx) mx = x[i] / t;
    for (int i = 0; i < n; i++) z += (p[i] = exp(x[i] / t - mx));
    for (int i = 0; i < n; i++) p[i] /= z;
}

static void test_temperature_frequencies(void) {
    enum { N = 6, DRAWS = 200000 };
    float x[N] = {1.0f, 2.0f, 0.5f, 1.5f, -1.0f, 0.0f};
    sampler_params p;
    sampler_params_default(&p);
    float temps[2] = {1.0f, 0.7f};
    for (int ti = 0; ti < 2; ti++) {
        p.temperature = temps[ti];
        int hist[N];
        double ref[N];
        histogram(&p, x, N, DRAWS, hist);
        softmax_ref(x, N, temps[ti], ref);
        for (int i = 0; i < N; i++) {
            double f = (double)hist[i] / DRAWS, sd = sqrt(ref[i] * (1 - ref[i]) / DRAWS);
            T_CHECK(fabs(f - ref[i]) < 5 * sd + 1e-4, "T=%.1f token %d: freq %.4f vs softmax %.4f", temps[ti], i, f, ref[i]);
        }
    }
}

static void test_filters(void) {
    enum { N = 8, DRAWS = 40000 };
    /* probabilities at T=1: about .41 .25 .15 .09 .05 .03 .02 .01 */
    float x[N] = {3.0f, 2.5f, 2.0f, 1.5f, 0.9f, 0.4f, -0.1f, -0.8f};
    double ref[N];
    softmax_ref(x, N, 1.0f, ref);
    sampler_params p;
    int hist[N];

    sampler_params_default(&p);
    p.top_k = 3;
    histogram(&p, x, N, DRAWS, hist);
    double z3 = ref[0] + ref[1] + ref[2];
    for (int i = 0; i < N; i++) {
        if (i >= 3) T_CHECK(hist[i] == 0, "top_k=3 drew token %d", i);
        else T_CHECK(fabs((double)hist[i] / DRAWS - ref[i] / z3) < 0.015, "top_k=3 token %d freq %.3f vs %.3f", i, (double)hist[i] / DRAWS, ref[i] / z3);
    }

    /* top-p: smallest prefix whose mass reaches p. */
    sampler_params_default(&p);
    p.top_p = 0.7f;
    int keep = 0;
    for (double acc = 0; keep < N && acc < 0.7; keep++) acc += ref[keep];
    histogram(&p, x, N, DRAWS, hist);
    for (int i = 0; i < N; i++)
        T_CHECK((hist[i] > 0) == (i < keep), "top_p=0.7 keeps %d tokens, token %d drawn %d times", keep, i, hist[i]);

    /* min-p: keep p >= 0.3 * p_max. */
    sampler_params_default(&p);
    p.min_p = 0.3f;
    histogram(&p, x, N, DRAWS, hist);
    for (int i = 0; i < N; i++) {
        bool kept = ref[i] >= 0.3 * ref[0];
        T_CHECK((hist[i] > 0) == kept, "min_p=0.3 token %d (p=%.3f) drawn %d times", i, ref[i], hist[i]);
    }

    /* combined: top_k=5 then top_p over the renormalised top-5. */
    sampler_params_default(&p);
    p.top_k = 5;
    p.top_p = 0.8f;
    double z5 = 0;
    for (int i = 0; i < 5; i++) z5 += ref[i];
    keep = 0;
    for (double acc = 0; keep < 5 && acc < 0.8; keep++) acc += ref[keep] / z5;
    histogram(&p, x, N, DRAWS, hist);
    for (int i = 0; i < N; i++)
        T_CHECK((hist[i] > 0) == (i < keep), "top_k=5,top_p=0.8 keeps %d, token %d drawn %d", keep, i, hist[i]);
}

/* Penalties observed through greedy choice and through the (unpenalised) logprobs. */
static void test_penalties(void) {
    enum { N = 5 };
    sampler_params p;
    sampler *s;

    /* repeat penalty 2: logit 4 -> 2 for a repeated positive; -1 -> -2 for a negative. */
    float x[N] = {4.0f, 3.0f, -1.0f, -1.5f, 0.0f};
    sampler_params_default(&p);
    p.temperature = 0;
    p.repeat_penalty = 2.0f;
    T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
    sampler_accept(s, 0, true);
    sampler_accept(s, 0, true); /* twice: penalised once */
    sampler_accept(s, 2, true);
    float tmp[N];
    memcpy(tmp, x, sizeof tmp);
    T_EQ_INT(sampler_sample(s, tmp, NULL, NULL, NULL), 1);
    T_CHECK(tmp[0] == 2.0f && tmp[2] == -2.0f && tmp[1] == 3.0f && tmp[3] == -1.5f,
            "penalised logits %g %g %g %g", tmp[0], tmp[1], tmp[2], tmp[3]);
    sampler_destroy(s);

    /* repeat_last_n window: only the last 2 tokens count. */
    p.repeat_last_n = 2;
    T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
    sampler_accept(s, 0, true);
    sampler_accept(s, 3, true);
    sampler_accept(s, 4, true);
    memcpy(tmp, x, sizeof tmp);
    T_EQ_INT(sampler_sample(s, tmp, NULL, NULL, NULL), 0);
    T_CHECK(tmp[0] == 4.0f && tmp[3] == -3.0f, "window: %g %g", tmp[0], tmp[3]);
    sampler_destroy(s);

    /* presence 0.5 + frequency 0.25 over generated tokens only. */
    sampler_params_default(&p);
    p.temperature = 0;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
    sampler_accept(s, 1, true); /* prompt: not counted */
    sampler_accept(s, 0, false);
    sampler_accept(s, 0, false);
    sampler_accept(s, 0, false);
    sampler_accept(s, 4, false);
    memcpy(tmp, x, sizeof tmp);
    int32_t id = sampler_sample(s, tmp, NULL, NULL, NULL);
    T_CHECK(fabsf(tmp[0] - (4.0f - 0.75f - 0.5f)) < 1e-6f && tmp[1] == 3.0f && fabsf(tmp[4] - (-0.75f)) < 1e-6f,
            "presence/frequency: %g %g %g", tmp[0], tmp[1], tmp[4]);
    T_EQ_INT(id, 1); /* 4 - 1.25 = 2.75 < 3 */
    sampler_destroy(s);
}

static void test_logprobs(void) {
    enum { N = 300 };
    float x[N];
    fill_random(x, N, 11);
    double lse = 0, mx = -INFINITY;
    for (int i = 0; i < N; i++) if (x[i] > mx) mx = x[i];
    for (int i = 0; i < N; i++) lse += exp(x[i] - mx);
    lse = mx + log(lse);
    sampler_params p;
    sampler_params_default(&p);
    p.n_logprobs = 5;
    p.repeat_penalty = 1.3f; /* logprobs must ignore penalties */
    p.temperature = 0.8f;
    sampler *s;
    T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
    sampler_accept(s, 17, true);
    float tmp[N], lp = 0, tlp[5];
    int32_t tid[5];
    memcpy(tmp, x, sizeof tmp);
    int32_t id = sampler_sample(s, tmp, &lp, tid, tlp);
    T_CHECK(id >= 0 && id < N, "id %d", id);
    T_CHECK(fabs(lp - (x[id] - lse)) < 1e-4, "sampled logprob %g vs %g", lp, x[id] - lse);
    /* top-5 ids by direct search */
    bool used[N] = {0};
    for (int r = 0; r < 5; r++) {
        int b = -1;
        for (int i = 0; i < N; i++) if (!used[i] && (b < 0 || x[i] > x[b])) b = i;
        used[b] = true;
        T_EQ_INT(tid[r], b);
        T_CHECK(fabs(tlp[r] - (x[b] - lse)) < 1e-4, "top %d logprob %g vs %g", r, tlp[r], x[b] - lse);
    }
    double sum = 0;
    for (int i = 0; i < N; i++) sum += exp(x[i] - lse);
    T_CHECK(fabs(sum - 1) < 1e-9, "softmax sums to %g", sum);
    sampler_destroy(s);
    /* the sampled token's logprob without alternatives (issue 11: reported as 0.0) */
    p.n_logprobs = 0;
    p.logprob = true;
    T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
    memcpy(tmp, x, sizeof tmp);
    lp = 0;
    id = sampler_sample(s, tmp, &lp, tid, tlp);
    T_CHECK(id >= 0 && id < N && fabs(lp - (x[id] - lse)) < 1e-4, "logprob alone: %g vs %g", lp, x[id] - lse);
    T_OK(lp < 0);
    sampler_destroy(s);
}

static void test_bad_params(void) {
    sampler_params p;
    sampler *s = NULL;
    sampler_params_default(&p);
    p.top_p = 0;
    T_EQ_INT(sampler_create(&p, 10, &s), SW_ERR_ARG);
    sampler_params_default(&p);
    p.temperature = -1;
    T_EQ_INT(sampler_create(&p, 10, &s), SW_ERR_ARG);
    sampler_params_default(&p);
    p.n_logprobs = 21;
    T_EQ_INT(sampler_create(&p, 10, &s), SW_ERR_ARG);
    sampler_params_default(&p);
    T_EQ_INT(sampler_create(&p, 0, &s), SW_ERR_ARG);
    T_OK(s == NULL);
    /* out-of-range ids in accept are ignored */
    p.repeat_penalty = 1.1f;
    p.presence_penalty = 0.1f;
    T_EQ_INT(sampler_create(&p, 10, &s), SW_OK);
    sampler_accept(s, -1, false);
    sampler_accept(s, 10, false);
    sampler_destroy(s);
}

/* A big vocab with top-k / top-p: correct support and fast enough. */
static void test_big_vocab(void) {
    enum { N = 151936, STEPS = 200 };
    float *x = malloc(N * sizeof *x), *tmp = malloc(N * sizeof *tmp);
    fill_random(x, N, 5);
    sampler_params p;
    sampler_params_default(&p);
    p.top_k = 40;
    p.top_p = 0.95f;
    p.temperature = 0.8f;
    p.repeat_penalty = 1.1f;
    p.n_logprobs = 3;
    sampler *s;
    T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
    /* the 40th largest logit: every draw must be >= it */
    memcpy(tmp, x, N * sizeof *tmp);
    float kth = 0;
    for (int r = 0; r < 40; r++) {
        int b = 0;
        for (int i = 1; i < N; i++) if (tmp[i] > tmp[b]) b = i;
        kth = tmp[b];
        tmp[b] = -INFINITY;
    }
    double t0 = sw_now_ms();
    bool ok = true;
    for (int t = 0; t < STEPS; t++) {
        memcpy(tmp, x, N * sizeof *tmp);
        float lp, tlp[3];
        int32_t tid[3];
        int32_t id = sampler_sample(s, tmp, &lp, tid, tlp);
        ok = ok && id >= 0 && id < N && x[id] >= kth;
    }
    double ms = (sw_now_ms() - t0) / STEPS;
    T_CHECK(ok, "a draw fell outside the top-40");
    /* informational only: speed is make bench's job, not a unit test's */
    fprintf(stderr, "big vocab: %.3f ms per sample (top-k 40, top-p .95, logprobs 3)\n", ms);
    sampler_destroy(s);

    /* top-p alone over a flat distribution needs most of the vocab: still exact. */
    sampler_params_default(&p);
    p.top_p = 0.5f;
    T_EQ_INT(sampler_create(&p, N, &s), SW_OK);
    for (int i = 0; i < N; i++) x[i] = 0.0f;
    x[123] = 0.5f;
    memcpy(tmp, x, N * sizeof *tmp);
    int32_t id = sampler_sample(s, tmp, NULL, NULL, NULL);
    T_CHECK(id >= 0 && id < N, "flat top-p id %d", id);
    sampler_destroy(s);
    free(x);
    free(tmp);
}

int main(void) {
    test_greedy();
    test_greedy_big();
    test_seeds();
    test_temperature_frequencies();
    test_filters();
    test_penalties();
    test_logprobs();
    test_bad_params();
    test_big_vocab();
    return t_done();
}
