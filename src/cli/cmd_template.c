/* cmd_template.c — `swiftlet template (-m MODEL.gguf | --template FILE.jinja
 * [--bos-token T] [--eos-token T]) REQUEST.json`: renders an OpenAI chat request body
 * (messages, tools, add_generation_prompt (default true), chat_template_kwargs) with the
 * model's own tokenizer.chat_template (and its BOS/EOS token texts) or a template file,
 * and prints the prompt exactly as rendered (no newline added). strftime_now uses
 * SWIFTLET_NOW=YYYY-MM-DD when set. Exit 0 ok, 1 on a bad file, request or render error
 * (the template's message on stderr), 2 on bad usage. */
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "server/server.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: swiftlet template (-m MODEL.gguf | --template FILE.jinja [--bos-token T] [--eos-token T]) REQUEST.json\n"
                    "  prints the chat prompt that REQUEST.json (an OpenAI chat request body) renders to\n"
                    "  -m MODEL.gguf          use the model's tokenizer.chat_template and BOS/EOS token texts\n"
                    "  --template FILE.jinja  use this template instead\n"
                    "  --bos-token/--eos-token T  the bos_token / eos_token the template sees\n"
                    "  SWIFTLET_NOW=YYYY-MM-DD fixes the date strftime_now returns\n");
}

int cli_template(int argc, char **argv) {
    const char *model_path = NULL, *tmpl_path = NULL, *bos = NULL, *eos = NULL, *req_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        bool takes = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--template") ||
                     !strcmp(a, "--bos-token") || !strcmp(a, "--eos-token");
        if (takes && i + 1 >= argc) { fprintf(stderr, "template: %s needs a value\n", a); usage(); return 2; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model_path = argv[++i];
        else if (!strcmp(a, "--template")) tmpl_path = argv[++i];
        else if (!strcmp(a, "--bos-token")) bos = argv[++i];
        else if (!strcmp(a, "--eos-token")) eos = argv[++i];
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "template: unknown option '%s'\n", a); usage(); return 2; }
        else if (!req_path) req_path = a;
        else { fprintf(stderr, "template: one REQUEST.json only\n"); usage(); return 2; }
    }
    if (!req_path || !model_path == !tmpl_path) {
        fprintf(stderr, "template: give REQUEST.json and exactly one of -m MODEL.gguf or --template FILE.jinja\n");
        usage();
        return 2;
    }
    sw_err err = {0};
    gguf_ctx *g = NULL;
    api_chat_template *ct = NULL;
    char *src = NULL, *text = NULL;
    json_t *req = NULL;
    int status = 1;
    if (model_path) {
        if (gguf_open(model_path, &g, &err) || api_chat_template_load(g, &ct, &err)) {
            fprintf(stderr, "template: %s: %s\n", model_path, err.msg);
            goto out;
        }
    } else {
        size_t len = 0;
        if (sw_read_file(tmpl_path, &src, &len, &err) || api_chat_template_create(src, len, bos, eos, &ct, &err)) {
            fprintf(stderr, "template: %s: %s\n", tmpl_path, err.msg);
            goto out;
        }
    }
    if (model_path && (bos || eos)) {   /* overrides of the model's token texts */
        api_chat_template_destroy(ct);
        ct = NULL;
        const char *t = NULL;
        size_t len = 0;
        gguf_get_str(g, "tokenizer.chat_template", &t, &len);
        if (api_chat_template_create(t, len, bos, eos, &ct, &err)) { fprintf(stderr, "template: %s\n", err.msg); goto out; }
    }
    json_error_t jerr;
    req = json_load_file(req_path, 0, &jerr);
    if (!req) {
        fprintf(stderr, "template: %s: line %d: %s\n", req_path, jerr.line, jerr.text);
        goto out;
    }
    size_t n = 0;
    if (api_chat_template_render(ct, req, &text, &n, &err)) {
        fprintf(stderr, "template: %s\n", err.msg);
        goto out;
    }
    status = fwrite(text, 1, n, stdout) == n && fflush(stdout) == 0 ? 0 : 1;
out:
    free(text);
    json_decref(req);
    api_chat_template_destroy(ct);
    free(src);
    gguf_close(g);
    return status;
}
