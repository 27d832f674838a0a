/* sampler.h — turns one row of logits into the next token: penalties (repetition,
 * presence, frequency), temperature, top-k, top-p, min-p, then a draw from a seeded
 * per-request RNG (same seed -> same output); greedy when temperature is 0. Also
 * log-probabilities of the sampled token and the top-n alternatives. Prefix `sampler_`. */
#ifndef SW_SAMPLER_H
#define SW_SAMPLER_H
#include "base/base.h"

typedef struct sampler_params {
    float temperature;       /* 0 = greedy */
    int top_k;               /* 0 = off */
    float top_p;             /* 1 = off */
    float min_p;             /* 0 = off */
    float repeat_penalty;    /* 1 = off (llama.cpp style, over the last repeat_last_n tokens) */
    int repeat_last_n;       /* 64 */
    float presence_penalty;  /* 0 = off (OpenAI style, over generated tokens) */
    float frequency_penalty; /* 0 = off */
    uint64_t seed;           /* same seed -> same output */
    bool logprob;            /* report the sampled token's logprob (implied by n_logprobs > 0) */
    int n_logprobs;          /* 0 = no alternatives; else report top-n logprobs per token (<= 20) */
} sampler_params;
void sampler_params_default(sampler_params *p);

/* Per-request sampler state: params, RNG state, token history for penalties. */
typedef struct sampler sampler;
int sampler_create(const sampler_params *p, int n_vocab, sampler **out);
void sampler_destroy(sampler *s);
/* Records a token into the history (prompt tokens count for repeat_penalty only). */
void sampler_accept(sampler *s, int32_t id, bool is_prompt);
/* Samples from logits (n_vocab; modified in place as scratch). Returns the token id;
 * when p->logprob or p->n_logprobs > 0, fills (where non-NULL) the sampled token's
 * logprob and the top p->n_logprobs (id, logprob) pairs, computed from the unpenalised
 * logits; otherwise leaves them untouched. */
int32_t sampler_sample(sampler *s, float *logits, float *logprob, int32_t *top_ids, float *top_logprobs);

#endif
