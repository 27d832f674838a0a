/* kv_test.c — the paged KV pool and prefix cache, checked against a simple independent
 * model: the model keys every cached block by the WHOLE token prefix it ends (plain
 * array comparison, no hashing), tracks reference counts per block, and orders idle
 * blocks by release time, so it predicts prefix hits, which blocks an allocation may
 * take (free ones first, then the least recently released idle ones, in that order),
 * and every count. Plus directed tests: hash chain (same block tokens after another
 * prefix never match), LRU order, "at least one token left to compute", no leaks. */
#include "t.h"
#include "kv/kv.h"
#include "gguf/gguf.h"

static model_config tiny_cfg(void) {
    model_config c = {0};
    c.n_layer = 2; c.n_head_kv = 1; c.head_dim = 4;
    return c;
}

static kv_pool *make_pool(int bs, int n_blocks, bool cache) {
    model_config c = tiny_cfg();
    kv_pool *p = NULL;
    sw_err err = {0};
    int rc = kv_pool_create(&c, GGUF_DTYPE_F16, bs, n_blocks, cache, &p, &err);
    T_CHECK(rc == SW_OK, "kv_pool_create: %s", err.msg);
    return p;
}

static void check_consistent(const kv_pool *p) {
    sw_err err = {0};
    int rc = kv_check(p, &err);
    T_CHECK(rc == SW_OK, "kv_check: %s", err.msg);
}

/* ---- directed tests ---- */

static void test_basic(void) {
    kv_pool *p = make_pool(4, 8, true);
    int32_t a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    kv_seq s; kv_seq_init(&s);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 10), 0);
    T_OK(kv_can_admit(p, 0, a, 10, 10));
    T_EQ_INT(kv_admit(p, &s, 0, a, 10, 10), SW_OK);
    T_EQ_INT(s.n_blocks, 3);
    T_EQ_INT(s.n_cached, 0);
    T_EQ_INT(kv_n_available(p), 5);
    /* nothing registered before the K/V are declared computed */
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 10), 0);
    kv_commit(p, &s, a, 10);
    T_EQ_INT(s.n_hashed, 2);
    T_OK(kv_block_cached(p, s.blocks[0]) && kv_block_cached(p, s.blocks[1]) && !kv_block_cached(p, s.blocks[2]));
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 10), 8);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 9), 8);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 8), 4);   /* leaves one token to compute */
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 5), 4);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 4), 0);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 1), 0);

    /* a second sequence shares the two full blocks (refs 2) */
    kv_seq s2; kv_seq_init(&s2);
    T_EQ_INT(kv_admit(p, &s2, 0, a, 9, 9), SW_OK);
    T_EQ_INT(s2.n_cached, 8);
    T_EQ_INT(s2.blocks[0], s.blocks[0]);
    T_EQ_INT(s2.blocks[1], s.blocks[1]);
    T_OK(s2.blocks[2] != s.blocks[2]);
    T_EQ_INT(kv_block_ref(p, s.blocks[0]), 2);
    T_EQ_INT(kv_block_ref(p, s.blocks[2]), 1);
    kv_stats st; kv_get_stats(p, &st);
    T_EQ_INT(st.n_used, 4);
    T_EQ_INT(st.prefix_queries, 19);
    T_EQ_INT(st.prefix_hits, 8);

    kv_release(p, &s);
    T_EQ_INT(kv_block_ref(p, s2.blocks[0]), 1);
    kv_release(p, &s2);
    kv_get_stats(p, &st);
    T_EQ_INT(st.n_used, 0);
    T_EQ_INT(st.n_idle, 2);
    T_EQ_INT(st.n_free, 6);
    check_consistent(p);
    /* admission beyond the pool fails and changes nothing */
    int32_t big[40] = {0};
    T_OK(!kv_can_admit(p, 0, big, 40, 40));
    T_EQ_INT(kv_admit(p, &s, 0, big, 40, 40), SW_ERR_FULL);
    T_EQ_INT(s.n_blocks, 0);
    /* 8 blocks = 6 free + 2 idle: a 32-token sequence evicts both idle ones */
    T_OK(kv_can_admit(p, 0, big, 40, 32));
    T_EQ_INT(kv_admit(p, &s, 0, big, 40, 32), SW_OK);
    kv_get_stats(p, &st);
    T_EQ_INT(st.n_evictions, 2);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 10), 0);
    T_OK(!kv_can_grow(p, &s, 33));
    T_EQ_INT(kv_grow(p, &s, 33), SW_ERR_FULL);
    T_EQ_INT(kv_grow(p, &s, 30), SW_OK); /* already held: no-op */
    kv_release(p, &s);
    check_consistent(p);
    kv_seq_destroy(&s); kv_seq_destroy(&s2);
    kv_pool_destroy(p);
}

static void test_hash_chain(void) {
    kv_pool *p = make_pool(2, 16, true);
    int32_t x[5] = {7, 8, 3, 4, 9};  /* blocks [7 8] [3 4] */
    int32_t y[5] = {5, 6, 3, 4, 9};  /* blocks [5 6] [3 4]: same 2nd block, other prefix */
    int32_t z[3] = {3, 4, 9};        /* [3 4] as the FIRST block */
    kv_seq s; kv_seq_init(&s);
    T_EQ_INT(kv_admit(p, &s, 0, x, 5, 5), SW_OK);
    kv_commit(p, &s, x, 5);
    T_EQ_INT(kv_prefix_lookup(p, 0, x, 5), 4);
    T_EQ_INT(kv_prefix_lookup(p, 0, y, 5), 0);
    T_EQ_INT(kv_prefix_lookup(p, 0, z, 3), 0);
    kv_seq s2; kv_seq_init(&s2);
    T_EQ_INT(kv_admit(p, &s2, 0, y, 5, 5), SW_OK);
    T_EQ_INT(s2.n_cached, 0);
    kv_commit(p, &s2, y, 5);
    /* both chains are cached independently: [3 4] exists twice, under different parents */
    T_OK(s2.blocks[1] != s.blocks[1]);
    T_OK(kv_block_cached(p, s2.blocks[1]) && kv_block_cached(p, s.blocks[1]));
    T_EQ_INT(kv_prefix_lookup(p, 0, y, 5), 4);
    T_EQ_INT(kv_prefix_lookup(p, 0, z, 3), 0);
    /* identical concurrent prefix: the second copy is not registered (stays private) */
    kv_seq s3; kv_seq_init(&s3);
    T_EQ_INT(kv_admit(p, &s3, 0, x, 1, 5), SW_OK); /* n=1: no lookup possible */
    T_EQ_INT(s3.n_cached, 0);
    kv_commit(p, &s3, x, 5);
    T_OK(!kv_block_cached(p, s3.blocks[0]) && !kv_block_cached(p, s3.blocks[1]));
    T_EQ_INT(s3.n_hashed, 2);
    kv_release(p, &s3);
    kv_release(p, &s2);
    kv_release(p, &s);
    kv_stats st; kv_get_stats(p, &st);
    T_EQ_INT(st.n_idle, 4);
    T_EQ_INT(st.n_free, 12);
    check_consistent(p);
    kv_seq_destroy(&s); kv_seq_destroy(&s2); kv_seq_destroy(&s3);
    kv_pool_destroy(p);
}

static void test_lru_order(void) {
    /* 4 blocks of 1 token: cache 3 single-block chains, released in order A, B, C */
    kv_pool *p = make_pool(1, 4, true);
    int32_t t[3][2] = {{10, 0}, {11, 0}, {12, 0}};
    kv_seq s[3];
    for (int i = 0; i < 3; i++) {
        kv_seq_init(&s[i]);
        T_EQ_INT(kv_admit(p, &s[i], 0, t[i], 2, 1), SW_OK);
        kv_commit(p, &s[i], t[i], 1);
    }
    int blk[3] = {s[0].blocks[0], s[1].blocks[0], s[2].blocks[0]};
    kv_release(p, &s[1]);
    kv_release(p, &s[0]);
    kv_release(p, &s[2]);
    /* touch B again: it becomes most recent (order now A, C, B) */
    T_EQ_INT(kv_admit(p, &s[1], 0, t[1], 2, 2), SW_OK);
    T_EQ_INT(s[1].blocks[0], blk[1]);
    int free_blk = s[1].blocks[1];
    kv_release(p, &s[1]);
    /* one new block at a time: the free block first, then A, then C, then B */
    kv_seq u; kv_seq_init(&u);
    int32_t w[8] = {99, 98, 97, 96, 95, 94, 93, 92};
    T_EQ_INT(kv_admit(p, &u, 0, w, 8, 1), SW_OK);
    T_EQ_INT(u.blocks[0], free_blk);
    int expect[3] = {blk[0], blk[2], blk[1]};
    for (int i = 0; i < 3; i++) {
        T_OK(kv_can_grow(p, &u, i + 2));
        T_EQ_INT(kv_grow(p, &u, i + 2), SW_OK);
        T_EQ_INT(u.blocks[i + 1], expect[i]);
        T_OK(!kv_block_cached(p, expect[i]));
    }
    T_EQ_INT(kv_prefix_lookup(p, 0, t[1], 2), 0);
    kv_stats st; kv_get_stats(p, &st);
    T_EQ_INT(st.n_evictions, 3);
    kv_release(p, &u);
    check_consistent(p);
    for (int i = 0; i < 3; i++) kv_seq_destroy(&s[i]);
    kv_seq_destroy(&u);
    kv_pool_destroy(p);
}

static void test_no_cache(void) {
    kv_pool *p = make_pool(2, 4, false);
    int32_t a[6] = {1, 2, 3, 4, 5, 6};
    kv_seq s; kv_seq_init(&s);
    T_EQ_INT(kv_admit(p, &s, 0, a, 6, 6), SW_OK);
    kv_commit(p, &s, a, 6);
    T_OK(!kv_block_cached(p, s.blocks[0]));
    kv_release(p, &s);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 6), 0);
    kv_stats st; kv_get_stats(p, &st);
    T_EQ_INT(st.n_free, 4);
    kv_seq_destroy(&s);
    kv_pool_destroy(p);
}

static void test_bad_args(void) {
    model_config c = tiny_cfg();
    kv_pool *p = NULL;
    T_EQ_INT(kv_pool_create(&c, GGUF_DTYPE_Q8_0, 16, 4, true, &p, NULL), SW_ERR_UNSUPPORTED); /* head_dim 4 */
    T_EQ_INT(kv_pool_create(&c, GGUF_DTYPE_Q4_0, 16, 4, true, &p, NULL), SW_ERR_ARG);
    T_EQ_INT(kv_pool_create(&c, GGUF_DTYPE_F16, 0, 4, true, &p, NULL), SW_ERR_ARG);
    T_EQ_INT(kv_pool_create(&c, GGUF_DTYPE_F16, 16, 0, true, &p, NULL), SW_ERR_ARG);
    T_OK(p == NULL);
    T_EQ_INT(kv_blocks_for_bytes(&c, GGUF_DTYPE_F32, 16, 2 * 2 * 16 * 4 * 4 * 10 + 5), 10);
    T_EQ_INT(kv_block_bytes(&c, GGUF_DTYPE_F16, 16), 2 * 2 * 16 * 4 * 2);
}

/* Q8_0 sizing: a block's bytes are the real row size (34 per 32 values), so a budget holds
 * 32/17 (~1.88x) the tokens of F16, and a pool of them works. */
static void test_q8_0_sizing(void) {
    model_config c = {0};
    c.n_layer = 3; c.n_head_kv = 2; c.head_dim = 64;
    T_EQ_INT((int)kv_block_bytes(&c, GGUF_DTYPE_Q8_0, 16), 2 * 3 * 16 * 2 * (64 / 32 * 34));
    const size_t mem = (size_t)64 << 20;
    int b16 = kv_blocks_for_bytes(&c, GGUF_DTYPE_F16, 16, mem), b8 = kv_blocks_for_bytes(&c, GGUF_DTYPE_Q8_0, 16, mem);
    T_EQ_INT(b16, (int)(mem / (2 * 3 * 16 * 2 * 64 * 2)));
    T_EQ_INT(b8, (int)(mem / (2 * 3 * 16 * 2 * 68)));
    T_CHECK(b8 >= b16 * 1.87 && b8 <= b16 * 1.89, "Q8_0 holds %d blocks, F16 %d (ratio %.3f)", b8, b16, (double)b8 / b16);
    c.head_dim = 48; /* not whole blocks: no Q8_0 pool, and no size for one */
    T_EQ_INT((int)kv_block_bytes(&c, GGUF_DTYPE_Q8_0, 16), 0);
    T_EQ_INT(kv_blocks_for_bytes(&c, GGUF_DTYPE_Q8_0, 16, mem), 0);
    kv_pool *p = NULL;
    sw_err err = {0};
    T_EQ_INT(kv_pool_create(&c, GGUF_DTYPE_Q8_0, 16, 4, true, &p, &err), SW_ERR_UNSUPPORTED);
    T_CHECK(strstr(err.msg, "head_dim") != NULL, "message: %s", err.msg);
    c.head_dim = 64;
    T_EQ_INT(kv_pool_create(&c, GGUF_DTYPE_Q8_0, 16, b8 < 64 ? b8 : 64, true, &p, &err), SW_OK);
    if (p) {
        const model_kv *st = kv_pool_store(p);
        T_EQ_INT((int)st->dtype, GGUF_DTYPE_Q8_0);
        T_OK((char *)model_kv_row(st, st->k, 2, 3, 5) - (char *)st->k == (long)(((2 * st->n_blocks + 3) * 16 + 5) * 2 * 68));
        kv_pool_destroy(p);
    }
}

/* ---- randomized test against the model ---- */

#define MAXS 6
#define MAXT 64
#define MAXB 64

typedef struct { int live; int32_t tok[MAXT]; int n, n_computed; kv_seq kv; } tseq;

typedef struct {
    int bs, nb;
    int ref[MAXB];
    int key_len[MAXB];          /* 0 = not cached; else the prefix tok[0..key_len) it ends */
    int32_t key[MAXB][MAXT];
    uint64_t released_at[MAXB];
    uint64_t clock;
} tmodel;

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static int m_find(const tmodel *m, const int32_t *tok, int len) {
    for (int b = 0; b < m->nb; b++)
        if (m->key_len[b] == len && !memcmp(m->key[b], tok, (size_t)len * sizeof *tok)) return b;
    return -1;
}

/* Expected prefix hits (blocks) and the idle ones among them. */
static int m_hits(const tmodel *m, const int32_t *tok, int n, int *ids, int *idle) {
    int h = 0; *idle = 0;
    while (h < (n - 1) / m->bs) {
        int b = m_find(m, tok, (h + 1) * m->bs);
        if (b < 0) break;
        if (m->ref[b] == 0) (*idle)++;
        ids[h++] = b;
    }
    return h;
}

static int m_count(const tmodel *m, int what) { /* 0 free, 1 idle, 2 used */
    int c = 0;
    for (int b = 0; b < m->nb; b++) {
        int st = m->ref[b] > 0 ? 2 : m->key_len[b] ? 1 : 0;
        c += st == what;
    }
    return c;
}

/* Verifies the n_new blocks just taken (at s->blocks[first..]) against the model:
 * free blocks first (any order), then idle blocks by release time; updates the model. */
static void m_take(tmodel *m, const kv_seq *s, int first, int n_new) {
    int n_free = m_count(m, 0);
    for (int i = 0; i < n_new; i++) {
        int b = s->blocks[first + i];
        T_CHECK(b >= 0 && b < m->nb, "block id %d", b);
        if (b < 0 || b >= m->nb) return;
        T_CHECK(m->ref[b] == 0, "handed out block %d with ref %d", b, m->ref[b]);
        if (i < n_free) {
            T_CHECK(m->key_len[b] == 0, "took cached block %d while free blocks exist", b);
        } else {
            int oldest = -1;
            for (int c = 0; c < m->nb; c++)
                if (m->ref[c] == 0 && m->key_len[c] && (oldest < 0 || m->released_at[c] < m->released_at[oldest])) oldest = c;
            T_CHECK(b == oldest, "evicted %d, expected LRU block %d", b, oldest);
            m->key_len[b] = 0;
        }
        m->ref[b] = 1;
    }
}

/* Model of kv_commit: registers full blocks whose prefix is not cached yet. */
static void m_commit(tmodel *m, const tseq *q, int *m_hashed) {
    int full = q->n_computed / m->bs;
    if (full > q->kv.n_blocks) full = q->kv.n_blocks;
    for (int i = *m_hashed; i < full; i++) {
        int len = (i + 1) * m->bs;
        if (m_find(m, q->tok, len) >= 0) continue;
        int b = q->kv.blocks[i];
        m->key_len[b] = len;
        memcpy(m->key[b], q->tok, (size_t)len * sizeof(int32_t));
    }
    if (full > *m_hashed) *m_hashed = full;
}

static void m_release(tmodel *m, const kv_seq *s) {
    for (int i = s->n_blocks - 1; i >= 0; i--) {
        int b = s->blocks[i];
        if (--m->ref[b] == 0 && m->key_len[b]) m->released_at[b] = ++m->clock;
    }
}

static void compare(const kv_pool *p, const tmodel *m) {
    kv_stats st; kv_get_stats(p, &st);
    T_EQ_INT(st.n_free, m_count(m, 0));
    T_EQ_INT(st.n_idle, m_count(m, 1));
    T_EQ_INT(st.n_used, m_count(m, 2));
    for (int b = 0; b < m->nb; b++) {
        T_CHECK(kv_block_ref(p, b) == m->ref[b], "block %d ref %d, model %d", b, kv_block_ref(p, b), m->ref[b]);
        T_CHECK(kv_block_cached(p, b) == (m->key_len[b] > 0), "block %d cached %d, model %d", b,
                kv_block_cached(p, b), m->key_len[b] > 0);
    }
    check_consistent(p);
}

static void random_run(int bs, int nb, int n_ops, uint64_t seed) {
    rng_state = seed;
    kv_pool *p = make_pool(bs, nb, true);
    static tmodel m;
    memset(&m, 0, sizeof m);
    m.bs = bs; m.nb = nb;
    tseq q[MAXS];
    int hashed[MAXS] = {0};
    memset(q, 0, sizeof q);
    for (int i = 0; i < MAXS; i++) kv_seq_init(&q[i].kv);
    int32_t base[3][MAXT];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < MAXT; j++) base[i][j] = (int32_t)rnd(3);
    int fails_before = t_fail;
    long n_admit = 0, n_hit_tokens = 0, n_evict_checks = 0;
    for (int op = 0; op < n_ops && t_fail == fails_before; op++) {
        int i = (int)rnd(MAXS);
        tseq *s = &q[i];
        int kind = (int)rnd(10);
        if (!s->live) {
            /* admit: a prompt sharing a random-length prefix with a base string */
            int n = 1 + (int)rnd(MAXT / 2);
            int share = (int)rnd((uint32_t)n + 1);
            const int32_t *b = base[rnd(3)];
            for (int j = 0; j < n; j++) s->tok[j] = j < share ? b[j] : (int32_t)rnd(3);
            s->n = n;
            int ids[MAXB], idle;
            int h = m_hits(&m, s->tok, n, ids, &idle);
            T_EQ_INT(kv_prefix_lookup(p, 0, s->tok, n), h * bs);
            int slots = h * bs + 1 + (int)rnd((uint32_t)(n - h * bs));
            int need = (slots + bs - 1) / bs - h;
            bool can = need + idle <= m_count(&m, 0) + m_count(&m, 1);
            T_EQ_INT(kv_can_admit(p, 0, s->tok, n, slots), can);
            int rc = kv_admit(p, &s->kv, 0, s->tok, n, slots);
            T_EQ_INT(rc, can ? SW_OK : SW_ERR_FULL);
            if (rc != SW_OK) continue;
            n_admit++; n_hit_tokens += h * bs;
            T_EQ_INT(s->kv.n_cached, h * bs);
            for (int j = 0; j < h; j++) {
                T_EQ_INT(s->kv.blocks[j], ids[j]);
                m.ref[ids[j]]++;
            }
            if (need > m_count(&m, 0)) n_evict_checks++;
            m_take(&m, &s->kv, h, need);
            s->live = 1;
            hashed[i] = h;
            s->n_computed = slots < n ? slots : n;
            kv_commit(p, &s->kv, s->tok, s->n_computed);
            m_commit(&m, s, &hashed[i]);
            T_EQ_INT(s->kv.n_hashed, hashed[i]);
        } else if (kind < 7) {
            /* step: next prefill chunk, or a decode of one new token */
            if (s->n_computed == s->n) {
                if (s->n == MAXT) continue;
                s->tok[s->n++] = (int32_t)rnd(3);
            }
            int target = s->n_computed + 1 + (int)rnd((uint32_t)(s->n - s->n_computed));
            int have = s->kv.n_blocks;
            int need = (target + bs - 1) / bs - have;
            if (need < 0) need = 0;
            bool can = need <= m_count(&m, 0) + m_count(&m, 1);
            T_EQ_INT(kv_can_grow(p, &s->kv, target), can);
            int rc = kv_grow(p, &s->kv, target);
            T_EQ_INT(rc, can ? SW_OK : SW_ERR_FULL);
            if (rc != SW_OK) continue;
            if (need > m_count(&m, 0)) n_evict_checks++;
            m_take(&m, &s->kv, have, need);
            s->n_computed = target;
            kv_commit(p, &s->kv, s->tok, s->n_computed);
            m_commit(&m, s, &hashed[i]);
        } else {
            /* finish or cancel (possibly mid-prefill) */
            m_release(&m, &s->kv);
            kv_release(p, &s->kv);
            T_EQ_INT(s->kv.n_blocks, 0);
            s->live = 0;
            hashed[i] = 0;
        }
        compare(p, &m);
    }
    for (int i = 0; i < MAXS; i++) {
        if (q[i].live) { m_release(&m, &q[i].kv); kv_release(p, &q[i].kv); }
        kv_seq_destroy(&q[i].kv);
    }
    compare(p, &m);
    kv_stats st; kv_get_stats(p, &st);
    T_EQ_INT(st.n_used, 0);
    T_EQ_INT(st.n_free + st.n_idle, nb);
    T_CHECK(n_admit > 50 && n_hit_tokens > 0 && n_evict_checks > 10,
            "weak run: %ld admits, %ld hit tokens, %ld evicting allocations", n_admit, n_hit_tokens, n_evict_checks);
    printf("random bs=%d blocks=%d: %ld admits, %ld hit tokens, %ld evicting allocations, %llu evictions\n", bs, nb,
           n_admit, n_hit_tokens, n_evict_checks, (unsigned long long)st.n_evictions);
    kv_pool_destroy(p);
}

/* cache_salt (issue 11: the shared prefix cache was an oracle for other users' prompts):
 * blocks are shared only between sequences with the same salt, never across salts or
 * between a salt and the shared namespace (0). */
static void test_salt(void) {
    kv_pool *p = make_pool(4, 32, true);
    int32_t a[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}; /* 3 full blocks + 1 */
    uint64_t alice = kv_salt("alice", 5, 0), bob = kv_salt("bob", 3, 0);
    T_OK(alice != 0 && bob != 0 && alice != bob);
    T_EQ_INT(kv_salt("", 0, alice), alice);
    T_OK(kv_salt("x", 1, alice) != kv_salt("x", 1, bob));
    kv_seq s; kv_seq_init(&s);
    T_EQ_INT(kv_admit(p, &s, alice, a, 13, 13), SW_OK);
    kv_commit(p, &s, a, 13);
    /* same salt shares the whole chain; another salt or none shares nothing */
    T_EQ_INT(kv_prefix_lookup(p, alice, a, 13), 12);
    T_EQ_INT(kv_prefix_lookup(p, bob, a, 13), 0);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 13), 0);
    T_OK(kv_can_admit(p, bob, a, 13, 13));
    kv_seq b; kv_seq_init(&b);
    T_EQ_INT(kv_admit(p, &b, bob, a, 13, 13), SW_OK);
    T_EQ_INT(b.n_cached, 0);
    for (int i = 0; i < 3; i++) T_OK(b.blocks[i] != s.blocks[i]);
    kv_commit(p, &b, a, 13);
    kv_seq c; kv_seq_init(&c);
    T_EQ_INT(kv_admit(p, &c, alice, a, 13, 13), SW_OK);
    T_EQ_INT(c.n_cached, 12);
    for (int i = 0; i < 3; i++) T_EQ_INT(c.blocks[i], s.blocks[i]);
    /* the shared namespace is its own: its chain never matches a salted one */
    kv_seq d; kv_seq_init(&d);
    T_EQ_INT(kv_admit(p, &d, 0, a, 13, 13), SW_OK);
    T_EQ_INT(d.n_cached, 0);
    kv_commit(p, &d, a, 13);
    T_EQ_INT(kv_prefix_lookup(p, 0, a, 13), 12);
    T_EQ_INT(kv_prefix_lookup(p, bob, a, 13), 12);
    T_EQ_INT(kv_prefix_lookup(p, kv_salt("carol", 5, 0), a, 13), 0);
    kv_release(p, &d); kv_release(p, &c); kv_release(p, &b); kv_release(p, &s);
    check_consistent(p);
    kv_seq_destroy(&d); kv_seq_destroy(&c); kv_seq_destroy(&b); kv_seq_destroy(&s);
    kv_pool_destroy(p);
}

int main(void) {
    test_basic();
    test_hash_chain();
    test_salt();
    test_lru_order();
    test_no_cache();
    test_bad_args();
    test_q8_0_sizing();
    random_run(4, 24, 20000, 1);
    random_run(1, 40, 20000, 2);
    random_run(2, 16, 20000, 3);
    random_run(16, 8, 20000, 4);
    return t_done();
}
