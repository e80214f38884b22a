/* tools/cmd_index.c -- placeholder until the index lands. */
#include "cli.h"

int cmd_index(int argc, char **argv)
{
    (void)argc; (void)argv;
    cli_err("index: not built yet");
    return CLI_EXIT_ERROR;
}
