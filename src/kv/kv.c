/* kv.c — block pool, block tables and prefix cache (see kv.h for the model).
 *
 * Per-block state lives in parallel arrays indexed by block id. A block is in exactly
 * one of three states: USED (ref > 0), IDLE (ref 0, registered in the prefix cache, on
 * the LRU list) or FREE (ref 0, on the free stack). The prefix cache is a chained hash
 * table: buckets[h & mask] -> first block, hnext[b] -> next block of the same bucket;
 * every registered block stores its chain hash, its parent's hash and its tokens, and a
 * lookup compares all three. Allocation pops the free stack and, only when it is empty,
 * evicts the LRU head (least recently released idle block). */
#include "kv/kv.h"
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "gguf/gguf.h"
#include "kernels/kq.h"

struct kv_pool {
    model_kv store;     /* K/V memory, (n_layer, n_blocks, block_size, kv_dim) each */
    int bs;             /* block size in tokens */
    int n;              /* number of blocks */
    bool prefix_cache;

    int32_t *ref;       /* (n) reference counts */
    uint8_t *cached;    /* (n) 1 = registered in the hash table */
    uint64_t *hash;     /* (n) chain hash of a registered block */
    uint64_t *parent;   /* (n) chain hash of its predecessor (0 for block 0 of a chain) */
    int32_t *tok;       /* (n, bs) token ids of a registered block */

    int32_t *free_ids;  /* (n) free stack, n_free valid */
    int n_free;

    int32_t *lru_prev, *lru_next; /* (n) idle list links, -1 = none */
    int lru_head, lru_tail;       /* head = least recently released */
    int n_idle;

    int32_t *buckets;   /* (n_buckets) first block of each chain, -1 = empty */
    int32_t *hnext;     /* (n) next block in the same bucket */
    uint64_t mask;      /* n_buckets - 1 */

    uint64_t prefix_queries, prefix_hits, n_evictions;
};

/* Bytes of one token's K (or V) row of one layer: n_head_kv heads of head_dim values of
 * dtype (F32 4 bytes each, F16 2, Q8_0 34 per 32; 0 when a head is not whole blocks). */
static size_t row_bytes(const model_config *mc, uint32_t dtype) {
    return (size_t)mc->n_head_kv * kq_kv_row_bytes(dtype, mc->head_dim);
}

size_t kv_block_bytes(const model_config *mc, uint32_t dtype, int block_size) {
    return 2 * (size_t)mc->n_layer * (size_t)block_size * row_bytes(mc, dtype);
}

int kv_blocks_for_bytes(const model_config *mc, uint32_t dtype, int block_size, size_t mem_bytes) {
    size_t b = kv_block_bytes(mc, dtype, block_size);
    if (b == 0) return 0;
    size_t n = mem_bytes / b;
    return n > (size_t)INT32_MAX / 2 ? INT32_MAX / 2 : (int)n;
}

/* ---- LRU list of idle blocks ---- */

static void lru_push_tail(kv_pool *p, int b) {
    p->lru_prev[b] = p->lru_tail;
    p->lru_next[b] = -1;
    if (p->lru_tail >= 0) p->lru_next[p->lru_tail] = b; else p->lru_head = b;
    p->lru_tail = b;
    p->n_idle++;
}

static void lru_remove(kv_pool *p, int b) {
    int pr = p->lru_prev[b], nx = p->lru_next[b];
    if (pr >= 0) p->lru_next[pr] = nx; else p->lru_head = nx;
    if (nx >= 0) p->lru_prev[nx] = pr; else p->lru_tail = pr;
    p->lru_prev[b] = p->lru_next[b] = -1;
    p->n_idle--;
}

/* ---- hash table ---- */

static uint64_t chain_hash(const kv_pool *p, const int32_t *tokens, uint64_t prev) {
    return XXH3_64bits_withSeed(tokens, (size_t)p->bs * sizeof(int32_t), prev);
}

static int table_find(const kv_pool *p, uint64_t h, uint64_t prev, const int32_t *tokens) {
    for (int b = p->buckets[h & p->mask]; b >= 0; b = p->hnext[b])
        if (p->hash[b] == h && p->parent[b] == prev &&
            !memcmp(p->tok + (size_t)b * p->bs, tokens, (size_t)p->bs * sizeof(int32_t)))
            return b;
    return -1;
}

static void table_insert(kv_pool *p, int b, uint64_t h, uint64_t prev, const int32_t *tokens) {
    p->hash[b] = h;
    p->parent[b] = prev;
    memcpy(p->tok + (size_t)b * p->bs, tokens, (size_t)p->bs * sizeof(int32_t));
    p->hnext[b] = p->buckets[h & p->mask];
    p->buckets[h & p->mask] = b;
    p->cached[b] = 1;
}

static void table_remove(kv_pool *p, int b) {
    int32_t *link = &p->buckets[p->hash[b] & p->mask];
    while (*link != b) link = &p->hnext[*link];
    *link = p->hnext[b];
    p->hnext[b] = -1;
    p->cached[b] = 0;
}

/* ---- allocation ---- */

/* Takes one unreferenced block: the free stack first, else evicts the LRU idle block.
 * Caller checked kv_n_available() > 0. */
static int block_take(kv_pool *p) {
    int b;
    if (p->n_free > 0) {
        b = p->free_ids[--p->n_free];
    } else {
        b = p->lru_head;
        lru_remove(p, b);
        table_remove(p, b);
        p->n_evictions++;
    }
    p->ref[b] = 1;
    return b;
}

static int seq_reserve(kv_seq *s, int n_blocks) {
    if (n_blocks <= s->cap) return SW_OK;
    int cap = s->cap ? s->cap : 8;
    while (cap < n_blocks) cap *= 2;
    int32_t *bl = realloc(s->blocks, (size_t)cap * sizeof *bl);
    if (!bl) return SW_ERR_NOMEM;
    s->blocks = bl;
    uint64_t *hs = realloc(s->hashes, (size_t)cap * sizeof *hs);
    if (!hs) return SW_ERR_NOMEM;
    s->hashes = hs;
    s->cap = cap;
    return SW_OK;
}

static int blocks_for(const kv_pool *p, int n_slots) { return (int)(((int64_t)n_slots + p->bs - 1) / p->bs); }

/* Longest chain of cached full blocks of tokens[0..n), leaving >= 1 token. Fills
 * ids/hashes (may be NULL) and counts the hits that are idle (ref 0). */
static int prefix_match(const kv_pool *p, uint64_t salt, const int32_t *tokens, int n, int32_t *ids, uint64_t *hashes,
                        int *n_idle_hits) {
    int hits = 0, idle = 0;
    if (p->prefix_cache && n > 1) {
        int max_blocks = (n - 1) / p->bs;
        uint64_t prev = salt; /* the chain's root: a salt starts a namespace of its own */
        for (; hits < max_blocks; hits++) {
            const int32_t *t = tokens + (size_t)hits * p->bs;
            uint64_t h = chain_hash(p, t, prev);
            int b = table_find(p, h, prev, t);
            if (b < 0) break;
            if (p->ref[b] == 0) idle++;
            if (ids) ids[hits] = b;
            if (hashes) hashes[hits] = h;
            prev = h;
        }
    }
    if (n_idle_hits) *n_idle_hits = idle;
    return hits;
}

/* ---- public API ---- */

int kv_pool_create(const model_config *mc, uint32_t dtype, int block_size, int n_blocks,
                   bool prefix_cache, kv_pool **out, sw_err *err) {
    *out = NULL;
    int rc = model_kv_check_dtype(mc, dtype, err);
    if (rc) return rc;
    if (block_size < 1 || block_size > 4096)
        return sw_err_set(err, SW_ERR_ARG, "kv: block size %d out of range 1..4096", block_size);
    if (n_blocks < 1 || n_blocks > INT32_MAX / 4)
        return sw_err_set(err, SW_ERR_ARG, "kv: %d blocks out of range (pool too small?)", n_blocks);
    if (mc->n_layer < 1 || mc->n_head_kv < 1 || mc->head_dim < 1)
        return sw_err_set(err, SW_ERR_ARG, "kv: bad model shape");
    uint64_t rows, bytes;
    int kv_dim = mc->n_head_kv * mc->head_dim;
    if (!sw_mul_u64((uint64_t)mc->n_layer * (uint64_t)n_blocks, (uint64_t)block_size, &rows) ||
        !sw_mul_u64(rows, row_bytes(mc, dtype), &bytes) || bytes > SIZE_MAX / 2)
        return sw_err_set(err, SW_ERR_RANGE, "kv: pool size overflows");
    bytes = (bytes + 63) & ~(uint64_t)63;

    kv_pool *p = calloc(1, sizeof *p);
    if (!p) return sw_err_set(err, SW_ERR_NOMEM, "kv: out of memory");
    p->bs = block_size;
    p->n = n_blocks;
    p->prefix_cache = prefix_cache;
    uint64_t nb = 1;
    while (nb < 2 * (uint64_t)n_blocks) nb <<= 1;
    p->mask = nb - 1;
    p->store = (model_kv){.dtype = dtype, .block_size = block_size, .n_blocks = n_blocks,
                          .n_layer = mc->n_layer, .kv_dim = kv_dim};
    p->store.k = aligned_alloc(64, bytes);
    p->store.v = aligned_alloc(64, bytes);
    p->ref = calloc((size_t)n_blocks, sizeof *p->ref);
    p->cached = calloc((size_t)n_blocks, 1);
    p->hash = calloc((size_t)n_blocks, sizeof *p->hash);
    p->parent = calloc((size_t)n_blocks, sizeof *p->parent);
    p->tok = calloc((size_t)n_blocks * (size_t)block_size, sizeof *p->tok);
    p->free_ids = malloc((size_t)n_blocks * sizeof *p->free_ids);
    p->lru_prev = malloc((size_t)n_blocks * sizeof *p->lru_prev);
    p->lru_next = malloc((size_t)n_blocks * sizeof *p->lru_next);
    p->hnext = malloc((size_t)n_blocks * sizeof *p->hnext);
    p->buckets = malloc((size_t)nb * sizeof *p->buckets);
    if (!p->store.k || !p->store.v || !p->ref || !p->cached || !p->hash || !p->parent || !p->tok ||
        !p->free_ids || !p->lru_prev || !p->lru_next || !p->hnext || !p->buckets) {
        kv_pool_destroy(p);
        return sw_err_set(err, SW_ERR_NOMEM, "kv: cannot allocate a pool of %d blocks (%.1f MiB)", n_blocks,
                          2.0 * (double)bytes / (1024.0 * 1024.0));
    }
    memset(p->store.k, 0, bytes);
    memset(p->store.v, 0, bytes);
    /* free stack popped from the end: hand out block 0 first */
    for (int i = 0; i < n_blocks; i++) p->free_ids[i] = n_blocks - 1 - i;
    p->n_free = n_blocks;
    for (int i = 0; i < n_blocks; i++) p->lru_prev[i] = p->lru_next[i] = p->hnext[i] = -1;
    for (uint64_t i = 0; i < nb; i++) p->buckets[i] = -1;
    p->lru_head = p->lru_tail = -1;
    *out = p;
    return SW_OK;
}

void kv_pool_destroy(kv_pool *p) {
    if (!p) return;
    free(p->store.k); free(p->store.v);
    free(p->ref); free(p->cached); free(p->hash); free(p->parent); free(p->tok);
    free(p->free_ids); free(p->lru_prev); free(p->lru_next); free(p->hnext); free(p->buckets);
    free(p);
}

const model_kv *kv_pool_store(const kv_pool *p) { return &p->store; }
int kv_block_size(const kv_pool *p) { return p->bs; }
int kv_n_blocks(const kv_pool *p) { return p->n; }
int kv_n_available(const kv_pool *p) { return p->n_free + p->n_idle; }

void kv_get_stats(const kv_pool *p, kv_stats *out) {
    out->n_blocks = p->n;
    out->n_free = p->n_free;
    out->n_idle = p->n_idle;
    out->n_used = p->n - p->n_free - p->n_idle;
    out->prefix_queries = p->prefix_queries;
    out->prefix_hits = p->prefix_hits;
    out->n_evictions = p->n_evictions;
}

void kv_seq_init(kv_seq *s) { memset(s, 0, sizeof *s); }

void kv_seq_destroy(kv_seq *s) {
    free(s->blocks);
    free(s->hashes);
    memset(s, 0, sizeof *s);
}

int kv_prefix_lookup(const kv_pool *p, uint64_t salt, const int32_t *tokens, int n) {
    return prefix_match(p, salt, tokens, n, NULL, NULL, NULL) * p->bs;
}

uint64_t kv_salt(const char *s, size_t n, uint64_t prev) {
    if (n == 0) return prev;
    uint64_t h = XXH3_64bits_withSeed(s, n, prev ^ 0x5a17c0de5a17c0deULL);
    return h ? h : 1;
}

bool kv_can_admit(const kv_pool *p, uint64_t salt, const int32_t *tokens, int n, int n_slots) {
    int idle_hits;
    int hits = prefix_match(p, salt, tokens, n, NULL, NULL, &idle_hits);
    if (n_slots <= hits * p->bs) return false;
    int need = blocks_for(p, n_slots) - hits;
    return need + idle_hits <= kv_n_available(p);
}

int kv_admit(kv_pool *p, kv_seq *s, uint64_t salt, const int32_t *tokens, int n, int n_slots) {
    if (s->n_blocks != 0 || n < 1 || n_slots < 1) return SW_ERR_ARG;
    if (!kv_can_admit(p, salt, tokens, n, n_slots)) return SW_ERR_FULL;
    int total = blocks_for(p, n_slots);
    if (seq_reserve(s, total) != SW_OK) return SW_ERR_NOMEM;
    s->salt = salt;
    int hits = prefix_match(p, salt, tokens, n, s->blocks, s->hashes, NULL);
    for (int i = 0; i < hits; i++) {
        int b = s->blocks[i];
        if (p->ref[b]++ == 0) lru_remove(p, b);
    }
    for (int i = hits; i < total; i++) s->blocks[i] = block_take(p);
    s->n_blocks = total;
    s->n_hashed = hits;
    s->n_cached = hits * p->bs;
    p->prefix_queries += (uint64_t)n;
    p->prefix_hits += (uint64_t)s->n_cached;
    return SW_OK;
}

bool kv_can_grow(const kv_pool *p, const kv_seq *s, int n_slots) {
    return blocks_for(p, n_slots) - s->n_blocks <= kv_n_available(p);
}

int kv_grow(kv_pool *p, kv_seq *s, int n_slots) {
    int total = blocks_for(p, n_slots);
    if (total <= s->n_blocks) return SW_OK;
    if (total - s->n_blocks > kv_n_available(p)) return SW_ERR_FULL;
    if (seq_reserve(s, total) != SW_OK) return SW_ERR_NOMEM;
    for (int i = s->n_blocks; i < total; i++) s->blocks[i] = block_take(p);
    s->n_blocks = total;
    return SW_OK;
}

void kv_commit(kv_pool *p, kv_seq *s, const int32_t *tokens, int n_computed) {
    if (!p->prefix_cache) return;
    int full = n_computed / p->bs;
    if (full > s->n_blocks) full = s->n_blocks;
    for (int i = s->n_hashed; i < full; i++) {
        const int32_t *t = tokens + (size_t)i * p->bs;
        uint64_t prev = i ? s->hashes[i - 1] : s->salt;
        uint64_t h = chain_hash(p, t, prev);
        s->hashes[i] = h;
        /* An identical block already cached (another sequence computed the same
         * prefix concurrently): keep that one; this copy stays private and is freed. */
        if (table_find(p, h, prev, t) < 0) table_insert(p, s->blocks[i], h, prev, t);
    }
    if (full > s->n_hashed) s->n_hashed = full;
}

void kv_release(kv_pool *p, kv_seq *s) {
    /* Last block first: a chain's deeper blocks become least recently used, so eviction
     * trims chains from the end and keeps their reusable beginnings longest. */
    for (int i = s->n_blocks - 1; i >= 0; i--) {
        int b = s->blocks[i];
        if (--p->ref[b] > 0) continue;
        if (p->cached[b]) lru_push_tail(p, b);
        else p->free_ids[p->n_free++] = b;
    }
    s->n_blocks = s->n_hashed = s->n_cached = 0;
}

int kv_block_ref(const kv_pool *p, int block) { return block >= 0 && block < p->n ? p->ref[block] : -1; }
bool kv_block_cached(const kv_pool *p, int block) { return block >= 0 && block < p->n && p->cached[block]; }

int kv_check(const kv_pool *p, sw_err *err) {
    int rc = SW_OK;
    uint8_t *seen = calloc((size_t)p->n, 1); /* 1 = free stack, 2 = LRU */
    if (!seen) return sw_err_set(err, SW_ERR_NOMEM, "kv_check: out of memory");
    for (int i = 0; i < p->n_free; i++) {
        int b = p->free_ids[i];
        if (b < 0 || b >= p->n || seen[b]) { rc = sw_err_set(err, SW_ERR_FORMAT, "free stack: bad/duplicate block %d", b); goto out; }
        if (p->ref[b] != 0 || p->cached[b]) { rc = sw_err_set(err, SW_ERR_FORMAT, "free block %d has ref %d cached %d", b, p->ref[b], p->cached[b]); goto out; }
        seen[b] = 1;
    }
    int n_lru = 0, prev = -1;
    for (int b = p->lru_head; b >= 0; prev = b, b = p->lru_next[b]) {
        if (b >= p->n || seen[b] || ++n_lru > p->n) { rc = sw_err_set(err, SW_ERR_FORMAT, "LRU: bad/duplicate block %d", b); goto out; }
        if (p->lru_prev[b] != prev) { rc = sw_err_set(err, SW_ERR_FORMAT, "LRU: broken back link at %d", b); goto out; }
        if (p->ref[b] != 0 || !p->cached[b]) { rc = sw_err_set(err, SW_ERR_FORMAT, "idle block %d has ref %d cached %d", b, p->ref[b], p->cached[b]); goto out; }
        seen[b] = 2;
    }
    if (prev != p->lru_tail || n_lru != p->n_idle) { rc = sw_err_set(err, SW_ERR_FORMAT, "LRU: tail/count mismatch (%d vs %d)", n_lru, p->n_idle); goto out; }
    int n_cached = 0;
    for (int b = 0; b < p->n; b++) {
        if (p->ref[b] < 0) { rc = sw_err_set(err, SW_ERR_FORMAT, "block %d: negative ref", b); goto out; }
        if (!seen[b] && p->ref[b] == 0) { rc = sw_err_set(err, SW_ERR_FORMAT, "block %d leaked (ref 0, on no list)", b); goto out; }
        if (!p->cached[b]) continue;
        n_cached++;
        int found = 0;
        for (int c = p->buckets[p->hash[b] & p->mask], steps = 0; c >= 0 && steps <= p->n; c = p->hnext[c], steps++)
            if (c == b) found = 1;
        if (!found) { rc = sw_err_set(err, SW_ERR_FORMAT, "cached block %d not in its bucket", b); goto out; }
    }
    int n_in_table = 0;
    for (uint64_t i = 0; i <= p->mask; i++)
        for (int c = p->buckets[i]; c >= 0; c = p->hnext[c]) {
            if (!p->cached[c] || (p->hash[c] & p->mask) != i || ++n_in_table > p->n) {
                rc = sw_err_set(err, SW_ERR_FORMAT, "hash table: bad entry %d in bucket %llu", c, (unsigned long long)i);
                goto out;
            }
        }
    if (n_in_table != n_cached) rc = sw_err_set(err, SW_ERR_FORMAT, "hash table holds %d blocks, %d marked cached", n_in_table, n_cached);
out:
    free(seen);
    return rc;
}
