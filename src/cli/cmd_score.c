/* cmd_score.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_score(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "score: not built yet\n"); return 1; }

