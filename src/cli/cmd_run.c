/* cmd_run.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "run: not built yet\n"); return 1; }

