/* cmd_tokenize.c — `swiftlet tokenize -m GGUF [--no-bos] TEXT` (being written). */
#include "cli/cli.h"
#include <stdio.h>
int cli_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tokenize: not built yet\n"); return 1; }
