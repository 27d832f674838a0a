/* cmd_mbench.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_mbench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "mbench: not built yet\n"); return 1; }

