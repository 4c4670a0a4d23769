/* testutil.h - helpers shared by the cmocka tests. */
#ifndef MOESIM_TESTUTIL_H
#define MOESIM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define TU_SKIP 77

/* Environment set by CTest (see CMakeLists.txt); falls back to sane defaults. */
const char *tu_src_dir(void);   /* repository root */
const char *tu_tmp_dir(void);   /* scratch directory for this build */
const char *tu_bin(void);       /* the moesim CLI */
/* ../shared/data/<name> if it exists, else NULL (tests then skip). */
const char *tu_data_dir(const char *name, char *buf, size_t len);
/* ../shared/reference/<name> if it exists, else NULL. */
const char *tu_ref_dir(const char *name, char *buf, size_t len);

/* A fresh path in the scratch directory: <tmp>/<prefix>-<pid>-<n><suffix>. */
const char *tu_tmp_path(const char *prefix, const char *suffix, char *buf, size_t len);

/* Writes len bytes to path; fails the test on error. */
void tu_write_file(const char *path, const void *data, size_t len);

/* Runs a shell command, returns its exit status (or -1); output captured into
 * out (NUL-terminated, truncated to outlen-1) when out is not NULL. */
int tu_run(const char *cmd, char *out, size_t outlen);

/* 1 if /usr/bin/python3 with numpy is available. */
int tu_have_numpy(void);

#endif
