/* cmd_stats.c - moesim stats (placeholder until implemented). */
#include "cli/cli.h"
#include "cli/commands.h"

int cmd_stats(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ms_error err = {MS_E_UNSUPPORTED, "not implemented yet"};
    return cli_fail("stats", &err);
}
