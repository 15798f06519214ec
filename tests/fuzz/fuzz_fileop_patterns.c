/*
 * libFuzzer target for the FileOp matchers: chmod-style mode strings,
 * Go's filepath.Match and .dockerignore-style include/exclude patterns.
 * The input is lines: a mode string, a filepath.Match pattern, a path, then
 * patterns. Every call must return a result or an error, never crash.
 */
#include <stdlib.h>
#include <string.h>

#include "fileop/fileop_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *lines[MAX_LINES];
    size_t n = 0;
    kiln__fo_modeset_t *m = NULL;
    kiln__fo_patterns_t *p = NULL;
    kiln_error_t err = {0};

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *s = text, *nl; n < MAX_LINES; s = nl + 1) {
        lines[n++] = s;
        if ((nl = strchr(s, '\n')) == NULL) {
            break;
        }
        *nl = '\0';
    }
    while (n < 3) {
        lines[n++] = "";
    }
    if (kiln__fo_modeset_parse(lines[0], &m) == 0) {
        (void)kiln__fo_modeset_apply(m, 0100644);
        (void)kiln__fo_modeset_apply(m, 040755);
        kiln__fo_modeset_free(m);
    }
    (void)kiln__fo_fnmatch(lines[1], lines[2]);
    (void)kiln__fo_has_wildcards(lines[1]);
    if (kiln__fo_patterns_new(lines + 3, n - 3, &p, &err) == 0) {
        bool *info = calloc(kiln__fo_patterns_count(p) + 1, sizeof(*info));
        bool *child = calloc(kiln__fo_patterns_count(p) + 1, sizeof(*child));
        char path[4200];

        if (info != NULL && child != NULL) {
            (void)kiln__fo_patterns_match(p, lines[2], NULL, info);
            snprintf(path, sizeof(path), "%s/x", lines[2]);
            (void)kiln__fo_patterns_match(p, path, info, child);
        }
        (void)kiln__fo_patterns_exclusions(p);
        free(info);
        free(child);
        kiln__fo_patterns_free(p);
    }
    free(text);
    return 0;
}
