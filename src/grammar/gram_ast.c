/* gram_ast.c — the grammar AST every front end builds: byte sets, sequences,
 * alternatives, bounded/unbounded repetition and references to named rules, in growable
 * arrays addressed by index. A builder given -1 (an earlier allocation failed) returns -1,
 * so a front end checks for out-of-memory once, at the end. */
#include "grammar/gram_internal.h"
#include <stdio.h>

void gast_init(gram_ast *a) { memset(a, 0, sizeof *a); }

void gast_free(gram_ast *a) {
    for (int i = 0; i < a->n_r; i++) free(a->rules[i].name);
    free(a->rules);
    free(a->n);
    free(a->kids);
    memset(a, 0, sizeof *a);
}

static bool grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > (1 << 28)) return false;
        nc *= 2;
    }
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

int gram_ilist_push(gram_ilist *l, int x) {
    if (!grow((void **)&l->v, &l->cap, l->n + 1, sizeof(int))) return -1;
    l->v[l->n++] = x;
    return 0;
}

static int node_new(gram_ast *a, int kind) {
    if (a->oom || !grow((void **)&a->n, &a->cap_n, a->n_n + 1, sizeof(gram_node))) { a->oom = true; return -1; }
    gram_node *n = &a->n[a->n_n];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    return a->n_n++;
}

int gast_bytes(gram_ast *a, const gram_bset *s) {
    int i = node_new(a, GN_BYTES);
    if (i >= 0) a->n[i].set = *s;
    return i;
}

int gast_byte(gram_ast *a, unsigned b) {
    gram_bset s = {{0}};
    gram_bset_add(&s, b & 255);
    return gast_bytes(a, &s);
}

static int list_node(gram_ast *a, int kind, const int *kids, int n) {
    for (int i = 0; i < n; i++)
        if (kids[i] < 0) { a->oom = true; return -1; }
    if (kind == GN_SEQ && n == 1) return kids[0];
    if (kind == GN_ALT && n == 1) return kids[0];
    if (a->oom || !grow((void **)&a->kids, &a->cap_k, a->n_k + n, sizeof(int))) { a->oom = true; return -1; }
    int k0 = a->n_k;
    if (n) memcpy(a->kids + k0, kids, (size_t)n * sizeof(int));
    a->n_k += n;
    int i = node_new(a, kind);
    if (i < 0) return -1;
    a->n[i].kid0 = k0;
    a->n[i].nkid = n;
    return i;
}

int gast_seq(gram_ast *a, const int *kids, int n) { return list_node(a, GN_SEQ, kids, n); }
int gast_alt(gram_ast *a, const int *kids, int n) { return list_node(a, GN_ALT, kids, n); }
int gast_seq2(gram_ast *a, int x, int y) { int k[2] = {x, y}; return gast_seq(a, k, 2); }
int gast_seq3(gram_ast *a, int x, int y, int z) { int k[3] = {x, y, z}; return gast_seq(a, k, 3); }
int gast_alt2(gram_ast *a, int x, int y) { int k[2] = {x, y}; return gast_alt(a, k, 2); }
int gast_empty(gram_ast *a) { return list_node(a, GN_SEQ, NULL, 0); }
int gast_nothing(gram_ast *a) { return list_node(a, GN_ALT, NULL, 0); }

int gast_lit(gram_ast *a, const char *s, size_t n) {
    if (n == 0) return gast_empty(a);
    if (n > (1u << 20)) { a->oom = true; return -1; }
    int *k = malloc(n * sizeof(int));
    if (!k) { a->oom = true; return -1; }
    for (size_t i = 0; i < n; i++) k[i] = gast_byte(a, (unsigned char)s[i]);
    int r = gast_seq(a, k, (int)n);
    free(k);
    return r;
}

int gast_rep(gram_ast *a, int kid, int min, int max) {
    if (kid < 0) { a->oom = true; return -1; }
    if (min == 1 && max == 1) return kid;
    int i = node_new(a, GN_REP);
    if (i < 0) return -1;
    a->n[i].kid0 = kid;
    a->n[i].min = min;
    a->n[i].max = max;
    return i;
}

int gast_opt(gram_ast *a, int kid) { return gast_rep(a, kid, 0, 1); }

int gast_ref(gram_ast *a, int rule) {
    if (rule < 0) { a->oom = true; return -1; }
    int i = node_new(a, GN_REF);
    if (i >= 0) a->n[i].ref = rule;
    return i;
}

int gast_rule(gram_ast *a, const char *name, size_t len) {
    for (int i = 0; i < a->n_r; i++)
        if (strlen(a->rules[i].name) == len && !memcmp(a->rules[i].name, name, len)) return i;
    if (a->oom || !grow((void **)&a->rules, &a->cap_r, a->n_r + 1, sizeof(gram_ast_rule))) { a->oom = true; return -1; }
    char *nm = malloc(len + 1);
    if (!nm) { a->oom = true; return -1; }
    memcpy(nm, name, len);
    nm[len] = 0;
    a->rules[a->n_r].name = nm;
    a->rules[a->n_r].body = -1;
    return a->n_r++;
}

int gast_rule_new(gram_ast *a, const char *prefix) {
    char buf[96];
    snprintf(buf, sizeof buf, "%.60s#%d", prefix, a->n_r);
    if (a->oom || !grow((void **)&a->rules, &a->cap_r, a->n_r + 1, sizeof(gram_ast_rule))) { a->oom = true; return -1; }
    char *nm = strdup(buf);
    if (!nm) { a->oom = true; return -1; }
    a->rules[a->n_r].name = nm;
    a->rules[a->n_r].body = -1;
    return a->n_r++;
}
