/* cmd_info.c - moesim info (placeholder until implemented). */
#include "cli/cli.h"
#include "cli/commands.h"

int cmd_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ms_error err = {MS_E_UNSUPPORTED, "not implemented yet"};
    return cli_fail("info", &err);
}
