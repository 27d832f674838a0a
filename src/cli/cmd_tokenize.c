/* cmd_tokenize.c — `swiftlet tokenize -m GGUF [--no-bos] [--special] TEXT...`: prints the
 * token ids of TEXT (the arguments joined by single spaces) on one line, space-separated.
 * The text is plain unless --special (then control-token strings such as <|im_start|>
 * become their ids). A vocab-only GGUF is enough. `--bench FILE [--repeat N]` instead
 * encodes the file's text N times (one thread, one encode call each) and prints the
 * speed in MB/s (best and mean). Exit 0 ok, 1 on a bad file or text, 2 on bad usage. */
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "tokenizer/tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(void) {
    fprintf(stderr, "usage: swiftlet tokenize -m MODEL.gguf [--no-bos] [--special] TEXT...\n"
                    "       swiftlet tokenize -m MODEL.gguf --bench FILE [--repeat N]\n"
                    "  prints the token ids of TEXT on one line\n"
                    "  --no-bos      do not prepend BOS even if the vocab asks for it\n"
                    "  --special     parse special-token strings (e.g. <|im_start|>) in TEXT\n"
                    "  --bench FILE  encode FILE's text N times (default 5) and print the speed\n");
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Encodes text repeat times, one call each; prints the best and mean speed by the wall
 * clock and by this thread's CPU time (the fairer figure on a loaded machine). */
static int bench(const tok *t, const char *path, const char *text, size_t len, bool bos, bool special, int repeat) {
    double best = 0, total = 0, cbest = 0;
    int n = 0;
    for (int r = 0; r < repeat; r++) {
        double t0 = sw_now_ms(), c0 = cpu_ms();
        n = tok_encode(t, text, len, bos, special, NULL, 0);
        double ms = sw_now_ms() - t0, cms = cpu_ms() - c0;
        if (n < 0) { fprintf(stderr, "tokenize: cannot tokenize %s: %s\n", path, sw_status_name(n)); return 1; }
        total += ms;
        if (r == 0 || ms < best) best = ms;
        if (r == 0 || cms < cbest) cbest = cms;
    }
    double mb = (double)len / 1e6;
    printf("%s: %.3f MB, %d tokens (%.2f bytes/token); wall best %.1f ms = %.1f MB/s, mean %.1f MB/s; "
           "cpu best %.1f ms = %.1f MB/s (%d runs)\n",
           path, mb, n, n ? (double)len / n : 0.0, best, mb / (best / 1000), mb / (total / repeat / 1000),
           cbest, mb / (cbest / 1000), repeat);
    return 0;
}

int cli_tokenize(int argc, char **argv) {
    const char *path = NULL, *bench_path = NULL;
    bool bos = true, special = false;
    int repeat = 5;
    int first_text = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (++i >= argc) { usage(); return 2; }
            path = argv[i];
        } else if (!strcmp(argv[i], "--no-bos")) {
            bos = false;
        } else if (!strcmp(argv[i], "--special")) {
            special = true;
        } else if (!strcmp(argv[i], "--bench") || !strcmp(argv[i], "--repeat")) {
            if (i + 1 >= argc) { usage(); return 2; }
            if (argv[i][2] == 'b') bench_path = argv[++i];
            else if ((repeat = atoi(argv[++i])) < 1) { fprintf(stderr, "tokenize: --repeat needs a count >= 1\n"); return 2; }
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else if (!strcmp(argv[i], "--")) {
            first_text = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            fprintf(stderr, "tokenize: unknown option '%s'\n", argv[i]);
            usage();
            return 2;
        } else {
            first_text = i;
            break;
        }
    }
    if (!path) { fprintf(stderr, "tokenize: -m MODEL.gguf is required\n"); usage(); return 2; }

    size_t len = 0;
    for (int i = first_text; i < argc; i++) len += strlen(argv[i]) + 1;
    char *text = malloc(len + 1);
    if (!text) { fprintf(stderr, "tokenize: out of memory\n"); return 1; }
    size_t o = 0;
    for (int i = first_text; i < argc; i++) {
        if (i > first_text) text[o++] = ' ';
        size_t l = strlen(argv[i]);
        memcpy(text + o, argv[i], l);
        o += l;
    }
    text[o] = 0;

    sw_err err = {0};
    if (bench_path) {
        free(text);
        if (sw_read_file(bench_path, &text, &o, &err) != SW_OK) { fprintf(stderr, "tokenize: %s\n", err.msg); return 1; }
    }
    gguf_ctx *ctx = NULL;
    tok *t = NULL;
    int32_t *ids = NULL;
    int rc = 1;
    if (gguf_open(path, &ctx, &err) != SW_OK) {
        fprintf(stderr, "tokenize: %s\n", err.msg);
        goto done;
    }
    if (tok_create(ctx, &t, &err) != SW_OK) {
        fprintf(stderr, "tokenize: %s: %s\n", path, err.msg);
        goto done;
    }
    if (bench_path) {
        rc = bench(t, bench_path, text, o, bos, special, repeat);
        goto done;
    }
    int n = tok_encode_alloc(t, text, o, bos, special, &ids);
    if (n < 0) { fprintf(stderr, "tokenize: cannot tokenize the text: %s\n", sw_status_name(n)); goto done; }
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    rc = 0;
done:
    free(ids);
    tok_destroy(t);
    gguf_close(ctx);
    free(text);
    return rc;
}
