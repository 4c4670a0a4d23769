/* json_util.h - JSON helpers shared by the preset readers (hardware, model,
 * energy and deployment presets). Internal to libmoesim. */
#ifndef MOESIM_JSON_UTIL_H
#define MOESIM_JSON_UTIL_H

#include <jansson.h>
#include <stddef.h>

#include "moesim/common.h"

/* Opens a preset: NAME is a path when it contains '/' or ends in .json (used
 * as is), else a preset name (letters, digits, '-', '_', '.') read from
 * <ms_preset_dir()>/<prefix><NAME>.json. Parses the file; on success *root
 * is its top-level JSON object (the caller json_decref's it) and path[plen]
 * the file used. Fails MS_E_INPUT with "empty <what> preset name", "bad
 * <what> preset name 'NAME'", "<missing> 'NAME' (no PATH)" for a name whose
 * file cannot be read (missing NULL: "unknown <what> preset"), "PATH: line
 * N: ..." for bad JSON and "PATH: not a JSON object"; a path that cannot be
 * read fails with ms_file_read_all's status. *root is NULL on failure. */
ms_status ms_json_load_preset(const char *what, const char *prefix, const char *missing, const char *name,
                              json_t **root, char *path, size_t plen, ms_error *err);

/* Reads the figure obj[key] = {"value": number, "source": non-empty string}
 * into *out. Fails MS_E_INPUT (out untouched): "PATH: missing <noun> 'KEY'"
 * when absent, "PATH: 'KEY' must be {"value": number, "source": "..."}" or
 * "PATH: 'KEY' has no source". */
ms_status ms_json_figure(json_t *obj, const char *path, const char *key, const char *noun, double *out,
                         ms_error *err);

#endif
