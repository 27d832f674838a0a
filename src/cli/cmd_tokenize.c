/* cmd_tokenize.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tokenize: not built yet\n"); return 1; }

