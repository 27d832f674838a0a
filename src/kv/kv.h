/* kv.h — the paged KV cache: a pool of fixed-size blocks of K/V (the model_kv store a
 * forward pass reads and writes), per-sequence block tables that grow with the actual
 * length of a sequence, and a prefix cache that lets sequences share full blocks.
 * Prefix `kv_`.
 *
 * Blocks: each has a reference count (how many live sequences use it). Unreferenced
 * blocks are either FREE (on the free list, content meaningless) or CACHED-IDLE (a full
 * block registered in the prefix cache, kept on an LRU list and evicted, least recently
 * released first, only when the free list is empty). A block with references is never
 * handed out.
 *
 * Prefix cache: full block i of a sequence is keyed by the hash chain
 * h_i = XXH3_64bits_withSeed(token ids of block i, h_{i-1}), h_{-1} = the salt. Each cached
 * block also stores its tokens and its parent hash, and a lookup compares them, so a
 * 64-bit collision can never make a sequence reuse K/V of other tokens. A new sequence
 * reuses the longest chain of cached full blocks of its tokens, always leaving at least
 * one token to compute (so a forward pass produces logits).
 *
 * Salt (vLLM's cache_salt): the root of a sequence's chain. Block 0 is stored with the salt
 * as its parent and a lookup compares parents, so sequences share blocks only when their
 * salts are equal: a tenant cannot probe another's prompts through cache hits. Salt 0 is
 * the shared namespace.
 *
 * Check-then-commit: every allocation is a pair (kv_can_admit -> kv_admit,
 * kv_can_grow -> kv_grow); the commit fails with SW_ERR_FULL and changes nothing when
 * its check would have failed. Not thread-safe: one owner (the engine thread). */
#ifndef SW_KV_H
#define SW_KV_H
#include "base/base.h"
#include "model/model.h"

/* One sequence's view of the pool. Owned by the caller; start with kv_seq_init, give
 * the blocks back with kv_release, free the table memory with kv_seq_destroy. */
typedef struct kv_seq {
    int32_t *blocks;   /* (cap) physical block ids; blocks[i] holds positions i*bs .. i*bs+bs-1 */
    uint64_t *hashes;  /* (cap) chain hash of block i, valid for i < n_hashed */
    int n_blocks;      /* blocks held: the sequence has n_blocks*bs token slots */
    int n_hashed;      /* leading full blocks whose chain hash is known (hit or committed) */
    int n_cached;      /* tokens reused from the prefix cache at the last kv_admit */
    int cap;           /* allocated length of blocks/hashes */
    uint64_t salt;     /* prefix-cache namespace, set by kv_admit */
} kv_seq;

typedef struct kv_stats {
    int n_blocks;           /* whole pool */
    int n_free;             /* on the free list */
    int n_idle;             /* cached, unreferenced (evictable, LRU) */
    int n_used;             /* referenced by at least one sequence */
    uint64_t prefix_queries;/* tokens looked up at kv_admit */
    uint64_t prefix_hits;   /* of which found in the cache */
    uint64_t n_evictions;   /* idle cached blocks recycled */
} kv_stats;

typedef struct kv_pool kv_pool;

/* Bytes one block of K and V takes for all layers of the model (the real row size of
 * dtype: Q8_0 is 34 bytes per 32 values, 0.53x F16). */
size_t kv_block_bytes(const model_config *mc, uint32_t dtype, int block_size);
/* How many blocks fit in mem_bytes (0 if not one). */
int kv_blocks_for_bytes(const model_config *mc, uint32_t dtype, int block_size, size_t mem_bytes);

/* Allocates a pool of n_blocks blocks of block_size tokens for model mc; dtype
 * GGUF_DTYPE_F16, GGUF_DTYPE_F32 or GGUF_DTYPE_Q8_0 (head_dim a multiple of 32). prefix_cache=false: full blocks are never shared. */
int kv_pool_create(const model_config *mc, uint32_t dtype, int block_size, int n_blocks,
                   bool prefix_cache, kv_pool **out, sw_err *err);
void kv_pool_destroy(kv_pool *p);
const model_kv *kv_pool_store(const kv_pool *p); /* borrowed: the K/V memory */
int kv_block_size(const kv_pool *p);
int kv_n_blocks(const kv_pool *p);
int kv_n_available(const kv_pool *p);             /* free + idle cached blocks */
void kv_get_stats(const kv_pool *p, kv_stats *out);

void kv_seq_init(kv_seq *s);
void kv_seq_destroy(kv_seq *s);                   /* frees the table; kv_release first */

/* A salt from bytes s[0..n), chained after prev (n = 0 gives prev back; never 0 otherwise):
 * e.g. kv_salt(cache_salt, len, kv_salt(user, len, 0)). */
uint64_t kv_salt(const char *s, size_t n, uint64_t prev);

/* Tokens of tokens[0..n) a kv_admit with this salt would take from the prefix cache now
 * (a multiple of the block size, at most n-1). Read-only. */
int kv_prefix_lookup(const kv_pool *p, uint64_t salt, const int32_t *tokens, int n);

/* Admission of an empty sequence s whose known tokens are tokens[0..n), in the prefix-cache
 * namespace salt (0 = shared): takes the cached prefix (sets s->n_cached) and then allocates blocks so that s holds n_slots
 * token slots (n_slots > the cached length; n_slots <= n is not required).
 * kv_can_admit says whether kv_admit would succeed. */
bool kv_can_admit(const kv_pool *p, uint64_t salt, const int32_t *tokens, int n, int n_slots);
int kv_admit(kv_pool *p, kv_seq *s, uint64_t salt, const int32_t *tokens, int n, int n_slots);

/* Grows s to hold n_slots token slots (no-op when it already does). */
bool kv_can_grow(const kv_pool *p, const kv_seq *s, int n_slots);
int kv_grow(kv_pool *p, kv_seq *s, int n_slots);

/* Declares that the K/V of tokens[0..n_computed) of s are written: registers the full
 * blocks among them in the prefix cache (if enabled). */
void kv_commit(kv_pool *p, kv_seq *s, const int32_t *tokens, int n_computed);

/* Drops s's references (full cached blocks stay cached, idle); s becomes empty. */
void kv_release(kv_pool *p, kv_seq *s);

/* Test/introspection helpers. */
int kv_block_ref(const kv_pool *p, int block);    /* reference count of a block */
bool kv_block_cached(const kv_pool *p, int block);/* registered in the prefix cache */
/* Checks every internal invariant (lists, counts, hash table); 0 = consistent,
 * otherwise SW_ERR_FORMAT with what is wrong in err. O(n_blocks). */
int kv_check(const kv_pool *p, sw_err *err);

#endif
