/* fuzz-report.c - libFuzzer target for the report's input reader
 * (ms_report_add_file: kind detection and the reader of every kind, the
 * strict replay reader among them) and the page it draws from what it read.
 * The reader takes a path, so the input goes into one memfd, reused across
 * runs, read back through /proc/self/fd/N.
 *
 * An input is accepted or refused with MS_E_INPUT (MS_E_NOMEM aside); what
 * is accepted must draw a page (ms_report_write_html, to /dev/null). Nothing
 * may crash, leak or read out of bounds.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DMOESIM_FUZZ=ON -DMOESIM_TESTS=OFF
 *        -DCMAKE_BUILD_TYPE=Debug && cmake --build build-fuzz -j2
 * Run:   ./build-fuzz/fuzz-report -max_total_time=60 -max_len=65536 fuzz/corpus/report
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "moesim/report.h"

#include "fuzz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_path("fuzz-report", data, size);
    ms_error err;
    ms_report *r = NULL;
    if (ms_report_new(&r, &err) != MS_OK) return 0;
    ms_report_kind kind;
    ms_status st = ms_report_add_file(r, path, &kind, &err);
    if (st != MS_OK && st != MS_E_INPUT && st != MS_E_NOMEM) __builtin_trap();
    if (st == MS_OK) {
        FILE *fp = fopen("/dev/null", "w");
        if (!fp) abort();
        st = ms_report_write_html(r, NULL, fp, &err);
        fclose(fp);
        if (st != MS_OK && st != MS_E_NOMEM) __builtin_trap();
    }
    ms_report_free(r);
    return 0;
}
