/*
 * libFuzzer target for the definition decoder and validator.
 *
 * Any input must either load or fail with a message; a loaded definition
 * must dump, re-encode, and load again with the same op digests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loaded(kiln_definition_t *def)
{
    kiln_definition_t *again = NULL;
    kiln_error_t err = {0};
    uint8_t *enc = NULL;
    size_t len = 0;
    FILE *null = fopen("/dev/null", "w");

    if (null != NULL) {
        if (kiln_definition_dump_json(def, null, &err) != 0 ||
            kiln_definition_dump_dot(def, null, &err) != 0) {
            abort();
        }
        fclose(null);
    }
    if (kiln_definition_encode(def, &enc, &len, &err) != 0) {
        abort();
    }
    if (kiln_definition_load(enc, len, &err, &again) != 0) {
        fprintf(stderr, "re-encoded definition does not load: %s\n",
                err.message);
        abort();
    }
    if (kiln_definition_op_count(def) != kiln_definition_op_count(again)) {
        abort();
    }
    for (size_t i = 0; i < kiln_definition_op_count(def); i++) {
        if (strcmp(kiln_definition_op_digest(def, i),
                   kiln_definition_op_digest(again, i)) != 0) {
            abort();
        }
    }
    kiln_definition_free(again);
    kiln_free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    int rc = kiln_definition_load(data, size, &err, &def);

    if (rc == 0) {
        check_loaded(def);
    } else if (def != NULL || err.code != rc || err.message[0] == 0) {
        abort(); /* a failure must come with a message and no object */
    }
    kiln_definition_free(def);
    return 0;
}
