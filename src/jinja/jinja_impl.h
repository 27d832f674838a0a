/* jinja_impl.h — the interpreter's internal types, shared by its files: the arena every
 * render (and every parse) allocates from, the value model (jv), the token stream of the
 * lexer, the AST of the parser, and the render context of the evaluator. */
#ifndef SW_JINJA_IMPL_H
#define SW_JINJA_IMPL_H
#include "jinja/jinja.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena: bump allocator with a byte limit, freed as a whole ---- */
typedef struct jarena_chunk jarena_chunk;
typedef struct jarena { jarena_chunk *head; size_t total, limit; } jarena;
void *jarena_alloc(jarena *a, size_t n);       /* zeroed; NULL past the limit or on OOM */
char *jarena_strdup(jarena *a, const char *s, size_t n);
void jarena_free(jarena *a);

/* ---- values ---- */
typedef enum jv_kind {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS,
    JV_MACRO, JV_LOOP,
} jv_kind;

typedef struct jstr { const char *p; size_t n; } jstr;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jmacro jmacro;
typedef struct jloop jloop;

typedef struct jv {
    jv_kind k;
    union {
        bool b;
        int64_t i;
        double f;
        jstr s;              /* JV_STR; JV_UNDEF: the name, for messages (may be empty) */
        jlist *l;
        jdict *d;            /* JV_DICT and JV_NS */
        const jmacro *m;
        jloop *lp;
    };
} jv;

struct jlist { size_t n, cap; jv *v; bool tuple; };   /* tuple: printed as (a, b) */
struct jdict { size_t n, cap; jv *key, *val; };   /* insertion order kept */

static inline jv jv_undef(void) { jv v = {.k = JV_UNDEF}; return v; }
static inline jv jv_none(void) { jv v = {.k = JV_NONE}; return v; }
static inline jv jv_bool(bool b) { jv v = {.k = JV_BOOL, .b = b}; return v; }
static inline jv jv_int(int64_t i) { jv v = {.k = JV_INT, .i = i}; return v; }
static inline jv jv_float(double f) { jv v = {.k = JV_FLOAT, .f = f}; return v; }
static inline jv jv_str(const char *p, size_t n) { jv v = {.k = JV_STR, .s = {p, n}}; return v; }

jlist *jv_list_new(jarena *a, size_t cap);
int jv_list_push(jarena *a, jlist *l, jv x);                /* SW_ERR_NOMEM past the limit */
jdict *jv_dict_new(jarena *a, size_t cap);
int jv_dict_set(jarena *a, jdict *d, jv key, jv val);       /* replaces an equal key */
jv *jv_dict_get(const jdict *d, jv key);                    /* NULL when absent */
jv *jv_dict_get_str(const jdict *d, const char *k, size_t n);

bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
const char *jv_kind_name(jv v);                             /* Python's type names */

/* Growable malloc'd text buffer with a size limit (output, str(), tojson). */
typedef struct jbuf { char *p; size_t n, cap, limit; bool over; } jbuf;
bool jbuf_add(jbuf *b, const char *s, size_t n);            /* false: over limit / OOM */
static inline bool jbuf_str(jbuf *b, const char *s) { return jbuf_add(b, s, strlen(s)); }
void jbuf_free(jbuf *b);

/* str(v) (Python's), repr-style inside containers; tojson (json.dumps). false: limit. */
bool jv_to_str(jbuf *b, jv v, int depth);
int jv_tojson(jbuf *b, jv v, int indent, bool ensure_ascii, bool sort_keys, int depth, sw_err *err);
void jv_float_repr(double f, char out[40]);
int jv_from_json(jarena *a, const json_t *j, int depth, jv *out, sw_err *err);

/* UTF-8: number of code points; byte offset of code point i (clamped to n). */
size_t ju_len(const char *s, size_t n);
size_t ju_offset(const char *s, size_t n, size_t i);

/* ---- tokens ---- */
typedef enum jtok_type {
    JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP, JT_EOF,
} jtok_type;

/* Operators (JT_OP's op): single chars use their char code, two-char ones these. */
enum { JOP_EQ = 256, JOP_NE, JOP_LE, JOP_GE, JOP_FLOORDIV, JOP_POW };

typedef struct jtok {
    jtok_type t;
    int op;
    jstr s;              /* text, name, or unescaped string literal */
    int64_t i;
    double f;
    int line, col;
} jtok;

int jinja_lex(jarena *a, const char *src, size_t len, jtok **toks, size_t *n, sw_err *err);

/* ---- AST ---- */
typedef enum jnode_kind {
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_BLOCK, N_MACRO, N_CALL_BLOCK, N_FILTER_BLOCK,
    N_BREAK, N_CONTINUE, N_DO, N_BODY,
    /* expressions */
    E_CONST, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_BIN, E_NEG, E_POS,
    E_NOT, E_AND, E_OR, E_COND, E_COMPARE, E_LIST, E_TUPLE, E_DICT,
} jnode_kind;

typedef struct jnode jnode;
typedef struct jnodes { jnode **v; int n; } jnodes;

struct jnode {
    jnode_kind k;
    int op;              /* E_BIN/E_COMPARE operator; E_TEST: 1 when negated */
    int line, col;
    jstr name;           /* E_NAME/E_ATTR/E_FILTER/E_TEST/N_MACRO/N_SET target; text */
    jnode *a, *b, *c;    /* children (meaning per kind) */
    jnodes args;         /* call/filter/test args, list items, body */
    jnodes kwargs;       /* keyword arg values; dict values; else body; macro defaults */
    jstr *names;         /* keyword names / macro params / for targets */
    int n_names;
    jv val;              /* E_CONST */
};

int jinja_parse_tokens(jarena *a, const jtok *toks, size_t n, jnode **root, sw_err *err);

struct jinja_template { jarena arena; jnode *root; };

/* ---- rendering ---- */
typedef struct jframe jframe;
struct jframe { jframe *parent; size_t n, cap; jstr *name; jv *val; };

struct jmacro {
    const jnode *def;    /* N_MACRO, or N_CALL_BLOCK for `caller` */
    jframe *closure;
    const jmacro *caller;  /* the call block's body, when called from {% call %} */
};

struct jloop { int64_t index0, length; const jlist *items; };   /* what loop.* reads */

typedef struct jctx {
    jarena *a;
    sw_err *err;
    jinja_limits lim;
    uint64_t steps;
    int depth;           /* macro call nesting */
    const char *today;
    int ctl;             /* 1 = break, 2 = continue pending */
} jctx;

/* Sets err to "line L: msg" (SW_ERR_FORMAT) and returns it. */
int jx_fail(jctx *c, const jnode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int jx_limit(jctx *c, const char *what);
int jx_eval(jctx *c, jframe *f, const jnode *e, jv *out);
jv jx_getattr(jv obj, jstr name);
int jx_call_macro(jctx *c, const jnode *at, const jmacro *m, const jv *args, int nargs,
                  const jstr *kwn, const jv *kwv, int nkw, jv *out);

/* builtins (jinja_builtin.c): name lookups return SW_ERR_NOTFOUND when unknown. */
int jb_filter(jctx *c, jframe *f, const jnode *at, jstr name, jv x, const jv *args, int nargs,
              const jstr *kwn, const jv *kwv, int nkw, jv *out);
int jb_test(jctx *c, jframe *f, const jnode *at, jstr name, jv x, const jv *args, int nargs, bool *out);
int jb_method(jctx *c, const jnode *at, jv obj, jstr name, const jv *args, int nargs,
              const jstr *kwn, const jv *kwv, int nkw, jv *out);
int jb_global(jctx *c, const jnode *at, jstr name, const jv *args, int nargs,
              const jstr *kwn, const jv *kwv, int nkw, jv *out);
int jb_str(jctx *c, const jnode *at, jv v, jv *out);   /* str(v) as a JV_STR */

static inline bool jstr_is(jstr s, const char *lit) { return strlen(lit) == s.n && !memcmp(s.p, lit, s.n); }
#endif
