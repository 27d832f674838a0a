/* cmd_tokenize.c — `swiftlet tokenize -m GGUF [--no-bos] [--special] TEXT...`: prints the
 * token ids of TEXT (the arguments joined by single spaces) on one line, space-separated.
 * The text is plain unless --special (then control-token strings such as <|im_start|>
 * become their ids). A vocab-only GGUF is enough. Exit 0 ok, 1 on a bad file or text,
 * 2 on bad usage. */
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "tokenizer/tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: swiftlet tokenize -m MODEL.gguf [--no-bos] [--special] TEXT...\n"
                    "  prints the token ids of TEXT on one line\n"
                    "  --no-bos   do not prepend BOS even if the vocab asks for it\n"
                    "  --special  parse special-token strings (e.g. <|im_start|>) in TEXT\n");
}

int cli_tokenize(int argc, char **argv) {
    const char *path = NULL;
    bool bos = true, special = false;
    int first_text = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (++i >= argc) { usage(); return 2; }
            path = argv[i];
        } else if (!strcmp(argv[i], "--no-bos")) {
            bos = false;
        } else if (!strcmp(argv[i], "--special")) {
            special = true;
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
