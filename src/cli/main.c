/* main.c — the `swiftlet` command: dispatches to one subcommand (each in cli/cmd_*.c).
 * Only this layer may exit(); every subcommand returns its exit status. */
#include "cli/cli.h"
#include <stdio.h>
#include <string.h>

static const struct { const char *name; int (*fn)(int, char **); const char *help; } commands[] = {
    {"run", cli_run, "generate a continuation of a prompt (one sequence)"},
    {"score", cli_score, "top-k next-token logits at every position of an input, perplexity"},
    {"generate", cli_generate, "run a JSONL file of prompts through the batching engine"},
    {"serve", cli_serve, "OpenAI-compatible HTTP server"},
    {"bench", cli_bench, "load-test an OpenAI-compatible server (latency, goodput)"},
    {"tokenize", cli_tokenize, "print the token ids of a text"},
    {"info", cli_info, "describe a GGUF model: architecture, sizes, types, context, chat template, KV bytes"},
    {"template", cli_template, "print the prompt a chat request renders to (the model's chat template)"},
    {"grammar", cli_grammar, "check a text against a grammar / JSON schema token by token; mask benchmark"},
    {"gen-model", cli_gen_model, "write a random-weight model (tests, benchmarks)"},
    {"quantize", cli_quantize, "convert a GGUF model's weights to another type"},
    {"kbench", cli_kbench, "kernel throughput vs. the machine's read bandwidth"},
    {"mbench", cli_mbench, "single-stream prompt / decode speed and batch scaling of a model"},
};

static void usage(void) {
    fprintf(stderr, "usage: swiftlet COMMAND [options]   (swiftlet COMMAND --help for its options)\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(); return argc < 2 ? 2 : 0; }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "swiftlet: unknown command '%s'\n", argv[1]);
    usage();
    return 2;
}
