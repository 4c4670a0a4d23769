/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

const char *tu_src_dir(void) { return env_or("MOESIM_SRC", "."); }
const char *tu_tmp_dir(void) { return env_or("MOESIM_TMP", "/tmp"); }
const char *tu_bin(void) { return env_or("MOESIM_BIN", "moesim"); }

static const char *existing_dir(const char *root, const char *name, char *buf, size_t len) {
    struct stat st;
    snprintf(buf, len, "%s/%s", root, name);
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return buf;
    return NULL;
}

const char *tu_data_dir(const char *name, char *buf, size_t len) {
    return existing_dir(env_or("MOESIM_DATA", "../shared/data"), name, buf, len);
}

const char *tu_ref_dir(const char *name, char *buf, size_t len) {
    return existing_dir(env_or("MOESIM_REF", "../shared/reference"), name, buf, len);
}

const char *tu_tmp_path(const char *prefix, const char *suffix, char *buf, size_t len) {
    static unsigned counter;
    snprintf(buf, len, "%s/%s-%d-%u%s", tu_tmp_dir(), prefix, (int)getpid(), counter++, suffix);
    return buf;
}

void tu_write_file(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

int tu_run(const char *cmd, char *out, size_t outlen) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = 0;
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, p)) > 0) {
        if (out && used + 1 < outlen) {
            size_t take = n < outlen - 1 - used ? n : outlen - 1 - used;
            memcpy(out + used, tmp, take);
            used += take;
        }
    }
    if (out && outlen) out[used] = '\0';
    int st = pclose(p);
    return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

int tu_have_numpy(void) {
    return tu_run("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1", NULL, 0) == 0;
}
