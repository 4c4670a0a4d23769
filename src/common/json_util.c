/* json_util.c - see json_util.h. */
#include "common/json_util.h"

#include <stdio.h>
#include <string.h>

#include "moesim/sim.h"

static bool is_path(const char *s) {
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n > 5 && strcmp(s + n - 5, ".json") == 0);
}

ms_status ms_json_load_preset(const char *what, const char *prefix, const char *missing, const char *name,
                              json_t **root, char *path, size_t plen, ms_error *err) {
    *root = NULL;
    if (!name || !*name) return ms_error_set(err, MS_E_INPUT, "empty %s preset name", what);
    if (is_path(name)) {
        snprintf(path, plen, "%s", name);
    } else {
        for (const char *q = name; *q; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '-' ||
                  *q == '_' || *q == '.'))
                return ms_error_set(err, MS_E_INPUT, "bad %s preset name '%s'", what, name);
        snprintf(path, plen, "%s/%s%s.json", ms_preset_dir(), prefix, name);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    ms_status st = ms_file_read_all(path, &buf, &len, err);
    if (st != MS_OK) {
        if (is_path(name)) return st;
        if (missing) return ms_error_set(err, MS_E_INPUT, "%s '%s' (no %s)", missing, name, path);
        return ms_error_set(err, MS_E_INPUT, "unknown %s preset '%s' (no %s)", what, name, path);
    }
    json_error_t je;
    *root = json_loadb((const char *)buf, len, 0, &je);
    ms_free(buf);
    if (!*root) return ms_error_set(err, MS_E_INPUT, "%s: line %d: %s", path, je.line, je.text);
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        return ms_error_set(err, MS_E_INPUT, "%s: not a JSON object", path);
    }
    return MS_OK;
}

ms_status ms_json_figure(json_t *obj, const char *path, const char *key, const char *noun, double *out,
                         ms_error *err) {
    json_t *f = json_object_get(obj, key);
    if (!f) return ms_error_set(err, MS_E_INPUT, "%s: missing %s '%s'", path, noun, key);
    json_t *v = json_object_get(f, "value"), *s = json_object_get(f, "source");
    if (!json_is_object(f) || !json_is_number(v))
        return ms_error_set(err, MS_E_INPUT, "%s: '%s' must be {\"value\": number, \"source\": \"...\"}", path, key);
    if (!json_is_string(s) || json_string_length(s) == 0)
        return ms_error_set(err, MS_E_INPUT, "%s: '%s' has no source", path, key);
    *out = json_number_value(v);
    return MS_OK;
}
