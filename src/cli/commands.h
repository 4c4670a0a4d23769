/* commands.h - one entry point per CLI command (cmd_<name>.c). */
#ifndef MOESIM_COMMANDS_H
#define MOESIM_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_place(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_moe_bench(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_scale(int argc, char **argv);
int cmd_power(int argc, char **argv);

#endif
