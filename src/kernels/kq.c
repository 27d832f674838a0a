/* kq.c — the kernels' front door: run-time ISA dispatch (cpuid once, SWIFTLET_ISA to
 * force one), the matmul driver (activation prep into scratch, then output rows split
 * over OpenMP threads), RoPE, the K/V row helpers, and the read-bandwidth probe.
 * The kernels themselves live in kq_ref.c (scalar), kq_avx2.c and kq_avx512.c. */
#include "kernels/kq_internal.h"
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- scratch bounds ---------------------------------------------------------------- */

/* kernels_test runs every ISA with exactly kq_matmul_scratch_bytes of scratch under ASan,
 * so these bounds are checked for every layout. */

/* Upper bound of one packed 16-token group of any ISA's gemm path. */
static size_t pack_bound(const kq_traits *tr, int64_t n_in) {
    return tr->quantized ? (size_t)n_in * 20 + 256 : (size_t)n_in * KQ_GEMM_TOK * 4 + 256;
}

/* Upper bound of one prepared activation row of any ISA. */
static size_t prep_bound(const kq_traits *tr, int64_t n_in) {
    return tr->quantized ? (size_t)n_in * 4 + 256 : kq_act_row_bytes(tr->dtype, n_in);
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t prep_row_bytes(const kq_mm_impl *im, uint32_t dtype, int64_t n_in) {
    return round64(im->prep_bytes ? im->prep_bytes(n_in) : kq_act_row_bytes(dtype, n_in));
}

bool kq_dtype_supported(uint32_t dtype) { return kq_traits_of(dtype) != NULL; }

size_t kq_matmul_scratch_bytes(uint32_t dtype, int64_t n_in, int64_t n_tok) {
    const kq_traits *tr = kq_traits_of(dtype);
    if (!tr || n_tok <= 0 || n_in <= 0) return 64;
    size_t std = (size_t)n_tok * round64(prep_bound(tr, n_in));
    size_t groups = (size_t)((n_tok + KQ_GEMM_TOK - 1) / KQ_GEMM_TOK);
    size_t gemm = groups * round64(pack_bound(tr, n_in));
    return (std > gemm ? std : gemm) + 64;
}

/* ---- dispatch -------------------------------------------------------------------- */

#if defined(__x86_64__)
static bool cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static bool cpu_has_avx512(void) {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16");
}
#endif

int kq_ops_for_isa(const char *name, kq_ops *ops) {
    kq_ops_scalar(ops);
    if (!strcmp(name, "scalar")) return SW_OK;
#if defined(__x86_64__)
    if (!strcmp(name, "avx2")) {
        if (!cpu_has_avx2()) return SW_ERR_UNSUPPORTED;
        kq_ops_avx2(ops);
        return SW_OK;
    }
    if (!strcmp(name, "avx512")) {
        if (!cpu_has_avx512()) return SW_ERR_UNSUPPORTED;
        kq_ops_avx2(ops);
        kq_ops_avx512(ops);
        return SW_OK;
    }
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
    if (!strcmp(name, "neon")) {
        kq_ops_neon(ops);
        return SW_OK;
    }
#endif
    return SW_ERR_UNSUPPORTED;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static kq_ops g_ops; /* written once under pthread_once, read-only afterwards */

static void ops_init(void) {
    const char *want = getenv("SWIFTLET_ISA");
    if (want && *want) {
        if (kq_ops_for_isa(want, &g_ops) == SW_OK) return;
        sw_warn("SWIFTLET_ISA=%s is not available on this CPU/build; choosing automatically", want);
    }
    if (kq_ops_for_isa("neon", &g_ops) == SW_OK) return;
    if (kq_ops_for_isa("avx512", &g_ops) == SW_OK) return;
    if (kq_ops_for_isa("avx2", &g_ops) == SW_OK) return;
    kq_ops_for_isa("scalar", &g_ops);
}

const kq_ops *kq_ops_get(void) {
    pthread_once(&g_once, ops_init);
    return &g_ops;
}

const char *kq_isa_name(void) { return kq_ops_get()->name; }

/* ---- matmul driver --------------------------------------------------------------- */

/* Output rows are handed out in multiples of this (the kernels' row tile). */
#define KQ_ROW_CHUNK 16

static void thread_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t chunks = (n + KQ_ROW_CHUNK - 1) / KQ_ROW_CHUNK;
    int64_t c0 = chunks * ith / nth, c1 = chunks * (ith + 1) / nth;
    *lo = c0 * KQ_ROW_CHUNK;
    *hi = c1 * KQ_ROW_CHUNK < n ? c1 * KQ_ROW_CHUNK : n;
}

/* Packs every activation block of every 16-token group (n_groups groups, xq_row_bytes
 * apart in dst) for the gemm path; thread ith of nt takes an equal share of the blocks. */
static void pack_groups(const kq_mm_impl *im, const float *X, int64_t n_in, int64_t n_tok, int64_t n_groups,
                        uint8_t *dst, size_t group_bytes, int ith, int nt) {
    const int64_t nbp = n_in / im->pack_elems, total = n_groups * nbp;
    const int64_t w0 = total * ith / nt, w1 = total * (ith + 1) / nt;
    for (int64_t i = w0; i < w1;) {
        const int64_t g = i / nbp, b0 = i % nbp, b1 = nbp < b0 + (w1 - i) ? nbp : b0 + (w1 - i);
        const int64_t t0 = g * KQ_GEMM_TOK, n = n_tok - t0 < KQ_GEMM_TOK ? n_tok - t0 : KQ_GEMM_TOK;
        im->pack(X + t0 * n_in, n_in, n, b0, b1, dst + (size_t)g * group_bytes);
        i += b1 - b0;
    }
}

/* What every thread of a matmul needs: Y[m] (n_tok, n_out[m]) = X · W[m]ᵀ for m < n_mat,
 * all W[m] of one dtype and n_in; the output rows of all matrices, taken as one range, are
 * split over the threads. */
typedef struct mm_plan {
    const kq_mm_impl *im;
    kq_mm_args a;               /* all but W, n_out, Y, which are per matrix */
    int n_mat;
    const void *const *W;       /* (n_mat) */
    const int64_t *n_out;       /* (n_mat) */
    float *const *Y;            /* (n_mat) */
    const float *X;             /* (n_tok, n_in) */
    uint8_t *scratch;           /* 64-byte aligned */
    int64_t rows, n_groups;     /* Σ n_out; 16-token groups */
    bool gemm;
} mm_plan;

/* Fills *p; false (after an error message, with every Y zeroed when report) on an
 * unsupported dtype or shape — a programmer error: the model validates them at load. */
static bool mm_plan_init(mm_plan *p, const kq_ops *ops, int n_mat, uint32_t dtype, const void *const *W,
                         const int64_t *n_out, int64_t n_in, const float *X, int64_t n_tok, float *const *Y,
                         void *scratch, bool report) {
    const kq_traits *tr = kq_traits_of(dtype);
    int64_t rows = 0;
    for (int m = 0; m < n_mat; m++) rows += n_out[m] > 0 ? n_out[m] : 0;
    if (!tr || !ops->mm[dtype].rows || n_in <= 0 || n_in % tr->blck || rows <= 0 || n_tok <= 0) {
        if (report) {
            sw_error("kq_matmul: unsupported dtype %u or shape (%lld rows x %lld)", dtype, (long long)rows, (long long)n_in);
            for (int m = 0; m < n_mat; m++)
                if (n_out[m] > 0 && n_tok > 0) memset(Y[m], 0, (size_t)(n_out[m] * n_tok) * sizeof *Y[m]);
        }
        return false;
    }
    const kq_mm_impl *im = &ops->mm[dtype];
    *p = (mm_plan){.im = im, .n_mat = n_mat, .W = W, .n_out = n_out, .Y = Y, .X = X, .rows = rows,
                   .n_groups = (n_tok + KQ_GEMM_TOK - 1) / KQ_GEMM_TOK, .gemm = im->gemm && n_tok >= im->gemm_min_tok,
                   /* the SIMD layouts use aligned loads; kq_matmul_scratch_bytes leaves 64 bytes to spare */
                   .scratch = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63),
                   .a = {.tr = tr, .w_row_bytes = (size_t)(n_in / tr->blck) * tr->bytes, .n_in = n_in, .n_tok = n_tok}};
    if (p->gemm) {
        p->a.xq = p->scratch;
        p->a.xq_row_bytes = round64(im->pack_bytes(n_in));
    } else if (im->prep) {
        p->a.xq = p->scratch;
        p->a.xq_row_bytes = prep_row_bytes(im, dtype, n_in);
    } else {
        p->a.xq = (const uint8_t *)X;
        p->a.xq_row_bytes = (size_t)n_in * sizeof(float);
    }
    /* the layouts of every ISA fit the bound kq_matmul_scratch_bytes promised */
    assert(p->a.xq == (const uint8_t *)X ||
           (p->gemm ? (size_t)p->n_groups : (size_t)n_tok) * p->a.xq_row_bytes + 64 <= kq_matmul_scratch_bytes(dtype, n_in, n_tok));
    return true;
}

/* Thread ith of the nt threads of the current parallel region (all of which call it):
 * converts its share of the activations, waits for the others, computes its rows. */
static void mm_run(const mm_plan *p, int ith, int nt) {
    const kq_mm_impl *im = p->im;
    kq_mm_args a = p->a;
    const int64_t n_in = a.n_in, n_tok = a.n_tok;
    if (p->gemm) pack_groups(im, p->X, n_in, n_tok, p->n_groups, p->scratch, a.xq_row_bytes, ith, nt);
    else if (im->prep)
        for (int64_t t = ith; t < n_tok; t += nt) im->prep(p->X + t * n_in, p->scratch + (size_t)t * a.xq_row_bytes, n_in);
#pragma omp barrier
    int64_t r0, r1, base = 0;
    thread_range(p->rows, ith, nt, &r0, &r1);
    for (int m = 0; m < p->n_mat; base += p->n_out[m], m++) {
        /* this thread's rows of matrix m */
        const int64_t o0 = r0 > base ? r0 - base : 0, o1 = r1 - base < p->n_out[m] ? r1 - base : p->n_out[m];
        if (o0 >= o1) continue;
        a.W = p->W[m];
        a.n_out = p->n_out[m];
        a.Y = p->Y[m];
        if (p->gemm) {
            /* blocks of rows small enough to stay in cache while every group passes */
            const int64_t rb = 96;
            for (int64_t ob = o0; ob < o1; ob += rb) {
                int64_t oe = ob + rb < o1 ? ob + rb : o1;
                for (int64_t g = 0; g < p->n_groups; g++) im->gemm(&a, g, ob, oe);
            }
        } else {
            im->rows(&a, o0, o1);
        }
    }
}

/* The products of the plan on a parallel region of its own, up to sw_n_threads() threads. */
static void matmul_multi(const kq_ops *ops, int n_mat, uint32_t dtype, const void *const *W, const int64_t *n_out,
                         int64_t n_in, const float *X, int64_t n_tok, float *const *Y, void *scratch) {
    mm_plan p;
    if (!mm_plan_init(&p, ops, n_mat, dtype, W, n_out, n_in, X, n_tok, Y, scratch, true)) return;
    int nth = sw_n_threads();
    if ((p.rows + KQ_ROW_CHUNK - 1) / KQ_ROW_CHUNK < nth) nth = (int)((p.rows + KQ_ROW_CHUNK - 1) / KQ_ROW_CHUNK);
#pragma omp parallel num_threads(nth)
    mm_run(&p, omp_get_thread_num(), omp_get_num_threads());
}

void kq_matmul_ops(const kq_ops *ops, uint32_t dtype, const void *W, int64_t n_out, int64_t n_in,
                   const float *X, int64_t n_tok, float *Y, void *scratch) {
    matmul_multi(ops, 1, dtype, &W, &n_out, n_in, X, n_tok, &Y, scratch);
}

void kq_matmul(uint32_t dtype, const void *W, int64_t n_out, int64_t n_in, const float *X, int64_t n_tok,
               float *Y, void *scratch) {
    kq_matmul_ops(kq_ops_get(), dtype, W, n_out, n_in, X, n_tok, Y, scratch);
}

void kq_matmul_n_team_ops(const kq_ops *ops, int n_mat, uint32_t dtype, const void *const *W, const int64_t *n_out,
                          int64_t n_in, const float *X, int64_t n_tok, float *const *Y, void *scratch) {
    mm_plan p;
    const int ith = omp_get_thread_num();
    if (mm_plan_init(&p, ops, n_mat, dtype, W, n_out, n_in, X, n_tok, Y, scratch, ith == 0))
        mm_run(&p, ith, omp_get_num_threads());
#pragma omp barrier
}

void kq_matmul_n_team(int n_mat, uint32_t dtype, const void *const *W, const int64_t *n_out, int64_t n_in,
                      const float *X, int64_t n_tok, float *const *Y, void *scratch) {
    kq_matmul_n_team_ops(kq_ops_get(), n_mat, dtype, W, n_out, n_in, X, n_tok, Y, scratch);
}

void kq_matmul_ref(uint32_t dtype, const void *W, int64_t n_out, int64_t n_in, const float *X, int64_t n_tok,
                   float *Y, void *scratch) {
    const kq_traits *tr = kq_traits_of(dtype);
    if (!tr || n_in <= 0 || n_in % tr->blck || n_out <= 0 || n_tok <= 0) {
        sw_error("kq_matmul_ref: unsupported dtype %u or shape", dtype);
        if (n_out > 0 && n_tok > 0) memset(Y, 0, (size_t)(n_out * n_tok) * sizeof *Y);
        return;
    }
    kq_ops ops;
    kq_ops_scalar(&ops);
    const kq_mm_impl *im = &ops.mm[dtype];
    kq_mm_args a = {.tr = tr, .W = W, .w_row_bytes = (size_t)(n_in / tr->blck) * tr->bytes, .n_in = n_in,
                    .n_out = n_out, .n_tok = n_tok, .Y = Y};
    if (im->prep) {
        a.xq = scratch;
        a.xq_row_bytes = round64(kq_act_row_bytes(dtype, n_in));
        for (int64_t t = 0; t < n_tok; t++) im->prep(X + t * n_in, (uint8_t *)scratch + (size_t)t * a.xq_row_bytes, n_in);
    } else {
        a.xq = (const uint8_t *)X;
        a.xq_row_bytes = (size_t)n_in * sizeof(float);
    }
    im->rows(&a, 0, n_out);
}

/* ---- vector ops ------------------------------------------------------------------ */

void kq_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) { kq_ops_get()->rmsnorm(out, x, w, n, eps); }
void kq_softmax(float *x, int64_t n) { kq_ops_get()->softmax(x, n); }
void kq_silu_mul(float *out, const float *gate, const float *up, int64_t n) { kq_ops_get()->silu_mul(out, gate, up, n); }
void kq_add(float *out, const float *a, const float *b, int64_t n) { kq_ops_get()->add(out, a, b, n); }
float kq_dot_f32(const float *a, const float *b, int64_t n) { return kq_ops_get()->dot_f32(a, b, n); }

size_t kq_kv_row_bytes(uint32_t dtype, int64_t n) {
    const kq_traits *tr = kq_traits_of(dtype);
    if (!tr || !tr->kv || n < 0 || n % tr->blck) return 0;
    return (size_t)(n / tr->blck) * tr->bytes;
}

float kq_dot_kv(uint32_t dtype, const void *k, const float *q, int64_t n) {
    const kq_ops *ops = kq_ops_get();
    switch (dtype) {
    case GGUF_DTYPE_F16: return ops->dot_f16(k, q, n);
    case GGUF_DTYPE_Q8_0: return ops->dot_q8_0(k, q, n);
    default: return ops->dot_f32(k, q, n);
    }
}

void kq_axpy_kv(uint32_t dtype, float *y, float a, const void *v, int64_t n) {
    const kq_ops *ops = kq_ops_get();
    switch (dtype) {
    case GGUF_DTYPE_F16: ops->axpy_f16(y, a, v, n); break;
    case GGUF_DTYPE_Q8_0: ops->axpy_q8_0(y, a, v, n); break;
    default: ops->axpy_f32(y, a, v, n); break;
    }
}

void kq_store_kv(uint32_t dtype, void *dst, const float *src, int64_t n) {
    const kq_ops *ops = kq_ops_get();
    switch (dtype) {
    case GGUF_DTYPE_F16: ops->store_f16(dst, src, n); break;
    /* plain Q8_0 blocks from the scalar quantizer: an ISA's activation prep may pack its
     * own layout (AVX-512 adds an offset and sums), which is not the stored format */
    case GGUF_DTYPE_Q8_0: kq_quantize_q8_0_act(src, dst, n); break;
    default: memmove(dst, src, (size_t)n * sizeof(float)); break;
    }
}

/* ---- RoPE ------------------------------------------------------------------------ */

/* Angles as ggml computes them: theta_0 = pos, theta_{i+1} = theta_i * base^(-2/head_dim)
 * (in float), then cos/sin of each; pairs [p0, p0+n) of one head. */
static void rope_apply(float *x, int64_t head_dim, int64_t p0, int64_t n, const float *cs, const float *sn, bool neox) {
    const int64_t half = head_dim / 2;
    for (int64_t j = 0; j < n; j++) {
        const int64_t i = p0 + j, i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        const float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * cs[j] - x1 * sn[j];
        x[i1] = x0 * sn[j] + x1 * cs[j];
    }
}

#define KQ_ROPE_CHUNK 256

void kq_rope_heads(float *x, int64_t n_heads, int64_t head_dim, int64_t pos, float theta, bool neox) {
    float cs[KQ_ROPE_CHUNK], sn[KQ_ROPE_CHUNK];
    const int64_t half = head_dim / 2;
    const float scale = powf(theta, -2.0f / (float)head_dim);
    float th = (float)pos;
    for (int64_t p0 = 0; p0 < half; p0 += KQ_ROPE_CHUNK) {
        const int64_t n = half - p0 < KQ_ROPE_CHUNK ? half - p0 : KQ_ROPE_CHUNK;
        for (int64_t j = 0; j < n; j++, th *= scale) {
            cs[j] = cosf(th);
            sn[j] = sinf(th);
        }
        for (int64_t h = 0; h < n_heads; h++) rope_apply(x + h * head_dim, head_dim, p0, n, cs, sn, neox);
    }
}

void kq_rope(float *x, int64_t head_dim, int64_t pos, float theta, bool neox) { kq_rope_heads(x, 1, head_dim, pos, theta, neox); }

/* ---- read bandwidth ---------------------------------------------------------------- */

typedef uint64_t kq_v4u64 __attribute__((vector_size(32)));

double kq_read_bandwidth(size_t bytes) {
    const size_t slice = (size_t)4 << 20; /* timed unit: all threads read one 4 MiB slice */
    bytes = bytes / slice * slice;
    if (bytes < 2 * slice) return 0;
    kq_v4u64 *buf = aligned_alloc(4096, bytes);
    if (!buf) return 0;
    const size_t n = bytes / sizeof *buf, ns = slice / sizeof *buf;
    const int nth = sw_n_threads();
#pragma omp parallel for num_threads(nth) schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = (kq_v4u64){i, i + 1, i + 2, i + 3};
    double best = 0;
    uint64_t sink = 0;
    /* slices are visited in order, so each is cold (the buffer is far larger than the
     * cache); the fastest slice counts, as the fastest call does in kbench */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t s0 = 0; s0 < n; s0 += ns) {
            double t0 = sw_now_ms();
            uint64_t acc = 0;
#pragma omp parallel num_threads(nth) reduction(^ : acc)
            {
                kq_v4u64 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
#pragma omp for schedule(static) nowait
                for (size_t i = s0; i < s0 + ns; i += 4) {
                    a0 ^= buf[i];
                    a1 ^= buf[i + 1];
                    a2 ^= buf[i + 2];
                    a3 ^= buf[i + 3];
                }
                a0 ^= a1 ^ a2 ^ a3;
                acc ^= a0[0] ^ a0[1] ^ a0[2] ^ a0[3];
            }
            double ms = sw_now_ms() - t0;
            sink ^= acc;
            if (ms > 0 && (double)slice / (ms * 1e6) > best) best = (double)slice / (ms * 1e6);
        }
    }
    free(buf);
    /* the xor of all words is folded into the result so the reads cannot be dropped */
    return best + (double)(sink & 1) * 0.0;
}
