/* cli.h — one entry point per subcommand: int cli_NAME(int argc, char **argv), argv[0]
 * being the subcommand's name. Each returns the process exit status. */
#ifndef SW_CLI_H
#define SW_CLI_H
#include "engine/engine.h"
#include <stdio.h>
int cli_run(int argc, char **argv);       /* cmd_run.c */
int cli_score(int argc, char **argv);     /* cmd_score.c */
int cli_generate(int argc, char **argv);  /* cmd_generate.c */
int cli_serve(int argc, char **argv);     /* cmd_serve.c */
int cli_bench(int argc, char **argv);     /* cmd_bench.c */
int cli_tokenize(int argc, char **argv);  /* cmd_tokenize.c */
int cli_template(int argc, char **argv);  /* cmd_template.c */
int cli_gen_model(int argc, char **argv); /* cmd_gen_model.c */
int cli_quantize(int argc, char **argv);  /* cmd_gen_model.c */
int cli_kbench(int argc, char **argv);    /* cmd_kbench.c */
int cli_mbench(int argc, char **argv);    /* cmd_mbench.c */
int cli_info(int argc, char **argv);      /* cmd_info.c */
/* Writes the description `swiftlet info` prints of the GGUF file at path to out; returns
 * 0, or 1 when the file cannot be opened or loaded as a model (the reason is printed). */
int cli_info_print(FILE *out, const char *path);
int cli_grammar(int argc, char **argv);   /* cmd_grammar.c */

/* Engine options shared by serve and generate (cli_engine.c). Parses flag a with value v
 * (v may be NULL) into c: returns 0 when a is not an engine option, 1 when it took no
 * value, 2 when it took v, -1 after printing "CMD: ..." on a bad or missing value. */
int cli_engine_option(const char *cmd, const char *a, const char *v, engine_config *c);
extern const char *const cli_engine_usage; /* the lines of --help describing them */
/* Whole-string decimal integer in lo..hi into *out: 0, or -1 (out untouched). */
int cli_parse_long(const char *s, long lo, long hi, long *out);
#endif
