/* cmd_bench.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_bench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "bench: not built yet\n"); return 1; }

