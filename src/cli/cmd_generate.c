/* cmd_generate.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_generate(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "generate: not built yet\n"); return 1; }

