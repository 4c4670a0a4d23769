/* fuzz_memfile.h - for fuzz targets whose parser takes a path: the input goes
 * into one memfd, created on first use and reused across runs (the harness's
 * only state), read back through /proc/self/fd/N. Needs _GNU_SOURCE. */
#ifndef MOESIM_FUZZ_MEMFILE_H
#define MOESIM_FUZZ_MEMFILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Returns a path whose contents are data[0..size); aborts on system errors. */
static const char *fuzz_input_path(const char *name, const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create(name, 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    for (size_t off = 0; off < size;) {
        ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    return path;
}

#endif
