/* model_gen.h — random-weight Llama/Qwen2/Qwen3/Gemma3/Phi3 GGUF models with real tokenizers (for tests,
 * benchmarks and the server's built-in default model), and requantization of a model's
 * F32/F16 weights. Prefix `model_gen_`.
 *
 * Files follow llama.cpp's conventions exactly (metadata keys, tensor names, which
 * tensors a Q4_K_M / Q5_K_M / Q3_K_M / Q2_K / IQ4_NL / IQ4_XS / Q4_0 / Q5_0 file keeps at higher precision, and the
 * fallbacks for rows that do not hold whole 256-element K-quant blocks). Weights are drawn per row
 * from a counter-based RNG keyed by (seed, tensor name, row), so the same seed gives the
 * same values whatever the weight type or thread count, and the same bytes on every run.
 * Tensors are streamed to disk row chunk by row chunk (OpenMP over rows), so memory stays
 * small even for the 1B preset. */
#ifndef SW_MODEL_GEN_H
#define SW_MODEL_GEN_H
#include "base/base.h"

typedef struct model_gen_params {
    const char *preset;     /* "smollm2-135m" | "qwen2.5-0.5b" | "llama-3.2-1b" | "qwen3-0.6b" | "gemma3-1b" |
                               "phi-4-mini" | "tiny"; NULL = explicit shape */
    const char *arch;       /* "llama" | "qwen2" | "qwen3" | "gemma3" | "phi3"; NULL = the preset's. Each
                               gets its family's tensors and metadata: qwen3/gemma3 q/k norms, gemma3
                               post norms + sliding window (512, every 6th layer global), phi3 fused
                               qkv / gate+up and LongRoPE factors (original context 4096, partial
                               rotary 3/4); llama-3.2-1b adds Llama 3.1's rope_freqs */
    /* Shape; 0 (or tied = -1) takes the preset's value. Without a preset all must be set
     * except n_vocab (default: the vocab's size), n_ctx (2048), rope_theta (1e4 llama,
     * 1e6 qwen2) and tied (0). */
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    int64_t head_dim;       /* 0: the preset's, else n_embd / n_head */
    float rope_theta;
    int tied;
    const char *type;       /* "f32" | "f16" | "q8_0" | "q4_0" | "q5_0" | "q4_k_m" | "q5_k_m" | "q3_k_m" | "q2_k" |
                               "iq4_nl" | "iq4_xs" */
    const char *vocab_path; /* GGUF whose tokenizer.* keys are copied; NULL = built-in byte-level vocab (259 tokens, ChatML) */
    const char *name;       /* general.name; NULL = the preset's name or "random" */
    const char *chat_template; /* tokenizer.chat_template text; NULL = the vocab's (builtin: ChatML) */
    uint64_t seed;
} model_gen_params;

/* Fills p with defaults: preset "tiny", type "f32", tied -1, seed 42, everything else 0/NULL. */
void model_gen_params_init(model_gen_params *p);

/* Writes a random model to out_path. Bad parameters -> SW_ERR_ARG with a message. */
int model_gen_write(const model_gen_params *p, const char *out_path, sw_err *err);

/* Copies in_path to out_path with its F32/F16/BF16 weight matrices converted to type
 * ("f16" | "q8_0" | "q4_0" | "q5_0" | "q4_k_m" | "q5_k_m" | "q3_k_m" | "q2_k" | "iq4_nl" |
 * "iq4_xs", same per-tensor rules as
 * generation); 1-D
 * tensors (norms, biases) and already-quantized tensors are copied unchanged. */
int model_gen_quantize(const char *in_path, const char *out_path, const char *type, sw_err *err);

#endif
