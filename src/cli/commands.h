/* commands.h - one entry point per CLI command (cmd_<name>.c). */
#ifndef MOESIM_COMMANDS_H
#define MOESIM_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_place(int argc, char **argv);

#endif
