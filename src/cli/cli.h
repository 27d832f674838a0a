/* cli.h — one entry point per subcommand: int cli_NAME(int argc, char **argv), argv[0]
 * being the subcommand's name. Each returns the process exit status. */
#ifndef SW_CLI_H
#define SW_CLI_H
int cli_tokenize(int argc, char **argv);
#endif
