/* cmd_gen.c - moesim gen (placeholder until implemented). */
#include "cli/cli.h"
#include "cli/commands.h"

int cmd_gen(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ms_error err = {MS_E_UNSUPPORTED, "not implemented yet"};
    return cli_fail("gen", &err);
}
