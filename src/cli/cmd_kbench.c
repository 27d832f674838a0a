/* cmd_kbench.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_kbench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "kbench: not built yet\n"); return 1; }

