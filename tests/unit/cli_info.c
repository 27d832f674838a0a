/* cli_info.c — `swiftlet info` on real files of ../shared: the phi3 and gemma3 models of
 * models2 (shapes from ../shared/README.md: phi3 64/2/4/2/16/12/128, Phi-3 vocab with its
 * chat template; gemma3 64/7/4/1/32, window 8, F16 + F32 norms) and a vocab-only file,
 * which is described but reported as not loadable. */
#include "cli/cli.h"
#include "t.h"

/* The text cli_info_print writes for path (malloc'd), its status in *rc. */
static char *info(const char *path, int *rc) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = cli_info_print(f, path);
    fclose(f);
    return buf;
}

static void expect(const char *text, const char *needle, const char *what) {
    T_CHECK(strstr(text, needle) != NULL, "%s: output lacks '%s':\n%s", what, needle, text);
}

int main(void) {
    if (t_shared_missing()) { T_SKIP("%s not found", SHARED); return t_done(); }
    int rc;
    char *s = info(SHARED "/models2/phi3-tiny.f32.gguf", &rc);
    T_EQ_INT(rc, 0);
    expect(s, "architecture    phi3", "phi3");
    expect(s, "F32 x 16", "phi3");
    expect(s, "heads 4 (kv 2, head dim 16)", "phi3");
    expect(s, "12 of 16 dims rotated", "phi3");
    expect(s, "LongRoPE", "phi3");
    expect(s, "context         131072", "phi3");
    expect(s, "chat template   phi3", "phi3");
    expect(s, "32007 \"<|end|>\"", "phi3");
    /* 2 (K, V) x 2 layers x 2 kv heads x 16 dims x 2 bytes */
    expect(s, "256 bytes per token in F16", "phi3");
    expect(s, "no Q8_0: head dim not a multiple of 32", "phi3");
    free(s);
    s = info(SHARED "/models2/gemma3-tiny.f16.gguf", &rc);
    T_EQ_INT(rc, 0);
    expect(s, "architecture    gemma3", "gemma3");
    expect(s, "F16 x 50, F32 x 43", "gemma3");
    expect(s, "sliding window 8", "gemma3");
    /* 2 x 7 layers x 1 kv head x 32 dims x 2 bytes */
    expect(s, "896 bytes per token in F16", "gemma3");
    /* Q8_0: 2 x 7 x 1 x (32 / 32 x 34 bytes); phi3's head dim 16 cannot hold Q8_0 rows (0) */
    expect(s, "476 in Q8_0", "gemma3");
    expect(s, "chat template   none", "gemma3");
    free(s);
    s = info(SHARED "/vocab/ggml-vocab-llama-spm.gguf", &rc);
    T_EQ_INT(rc, 1);
    expect(s, "not loadable", "vocab-only");
    free(s);
    s = info("/nonexistent.gguf", &rc);
    T_EQ_INT(rc, 1);
    free(s);
    return t_done();
}
