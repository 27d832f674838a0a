/* cmd_gen_model.c — placeholder until its module lands (replaced by the real subcommand). */
#include "cli/cli.h"
#include <stdio.h>
int cli_gen_model(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "gen_model: not built yet\n"); return 1; }
int cli_quantize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "quantize: not built yet\\n"); return 1; }
