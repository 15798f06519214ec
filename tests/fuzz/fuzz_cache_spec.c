/*
 * libFuzzer target for --export-cache / --import-cache specs
 * (core/cache/spec.c): the input, as a string, is parsed as an export and
 * as an import spec. Each either fails with a message or gives a spec
 * with a type and what that type needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    for (int exp = 0; exp < 2; exp++) {
        kiln__cache_spec_t sp;
        kiln_error_t err = {0};
        int rc = kiln__cache_spec_parse(s, exp, &sp, &err);

        if (rc < 0 && err.message[0] == '\0') {
            abort();
        }
        if (rc == 0) {
            if (sp.type == KILN__CACHE_LOCAL &&
                (sp.dir == NULL || sp.tag == NULL)) {
                abort();
            }
            if (sp.type == KILN__CACHE_REGISTRY &&
                (sp.reg.registry == NULL || sp.reg.tag == NULL)) {
                abort();
            }
            kiln__cache_spec_clear(&sp);
        }
    }
    free(s);
    return 0;
}
