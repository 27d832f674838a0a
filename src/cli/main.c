/* main.c — the `swiftlet` command: dispatches to one subcommand (each in cli/cmd_*.c).
 * Only this layer may exit(); every subcommand returns its exit status. */
#include "cli/cli.h"
#include <stdio.h>
#include <string.h>

static const struct { const char *name; int (*fn)(int, char **); const char *help; } commands[] = {
    {"tokenize", cli_tokenize, "print the token ids of a text"},
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
