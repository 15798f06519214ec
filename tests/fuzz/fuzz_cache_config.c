/*
 * libFuzzer target for build cache configs and their manifests
 * (core/cache): the input is parsed as a cacheconfig.v0 and as the
 * manifest or index around one. A parse either fails with a message or
 * succeeds; a config that parses is written (sorted as BuildKit sorts it),
 * must parse again and write to the same bytes, merges with itself into
 * a config that parses, and every result's layer chain can be walked; a
 * manifest that parses is written in both forms and read back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/config.h"
#include "cache/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(int rc, const kiln_error_t *err)
{
    if (rc < 0 && err->message[0] == '\0') {
        fprintf(stderr, "error %d without a message\n", rc);
        abort();
    }
    if (rc > 0) {
        abort();
    }
}

static char *write_or_die(kiln__cc_t *cc, size_t *len)
{
    kiln_error_t err = {0};
    char *out = NULL;

    if (kiln__cc_write(cc, &out, len, &err) != 0) {
        fprintf(stderr, "write: %s\n", err.message);
        abort();
    }
    return out;
}

static void fuzz_config(const uint8_t *data, size_t size)
{
    kiln__cc_t *cc = NULL, *again = NULL;
    kiln_error_t err = {0};
    char *one, *two;
    size_t l1, l2;
    int rc = kiln__cc_parse(data, size, &cc, &err);

    check_error(rc, &err);
    if (rc < 0) {
        return;
    }
    for (size_t r = 0; r < cc->n_records; r++) {
        for (size_t k = 0; k < cc->records[r].n_results; k++) {
            int64_t *chain = NULL;
            size_t n = 0;
            if (kiln__cc_layer_chain(cc, cc->records[r].results[k].layer,
                                     &chain, &n, &err) != 0 ||
                n == 0 || n > cc->n_layers) {
                abort();
            }
            free(chain);
        }
    }
    one = write_or_die(cc, &l1);
    if (kiln__cc_parse(one, l1, &again, &err) != 0) {
        fprintf(stderr, "written config does not parse: %s\n", err.message);
        abort();
    }
    two = write_or_die(again, &l2);
    if (l1 != l2 || memcmp(one, two, l1) != 0) {
        abort();
    }
    free(two);
    if (kiln__cc_merge(again, cc, &err) == 0) {
        kiln__cc_t *third = NULL;

        /* What a merge makes is a config that parses again. */
        two = write_or_die(again, &l2);
        if (kiln__cc_parse(two, l2, &third, &err) != 0) {
            fprintf(stderr, "merged config does not parse: %s\n",
                    err.message);
            abort();
        }
        kiln__cc_free(third);
        free(two);
    }
    if (kiln__cc_limit(again, 2, 0, NULL, &err) == 0) {
        free(write_or_die(again, &l2));
    }
    free(one);
    kiln__cc_free(again);
    kiln__cc_free(cc);
}

static void fuzz_manifest(const uint8_t *data, size_t size)
{
    kiln__cache_manifest_t m, back;
    kiln__cc_t *cc = NULL;
    kiln_error_t err = {0};
    int rc = kiln__cache_manifest_parse(data, size, &m, &err);

    check_error(rc, &err);
    if (rc < 0) {
        return;
    }
    if (kiln__cc_new(&cc, &err) != 0) {
        abort();
    }
    for (size_t i = 0; i < m.n_layers; i++) {
        size_t idx;
        if (kiln__cc_add_layer(cc, m.layers[i].blob, -1, &idx, &err) != 0) {
            abort();
        }
    }
    if (kiln__cache_manifest_attach(&m, cc, &err) != 0) {
        abort();
    }
    for (int form = 0; form < 2; form++) {
        const char *mt = NULL;
        char *out = NULL;
        size_t len = 0;

        if (kiln__cache_manifest_write(cc, m.config_digest, m.config_size,
                                       form == 0, true, &out, &len, &mt,
                                       &err) != 0) {
            abort();
        }
        if (kiln__cache_manifest_parse(out, len, &back, &err) != 0 ||
            strcmp(back.config_digest, m.config_digest) != 0) {
            abort();
        }
        kiln__cache_manifest_clear(&back);
        free(out);
    }
    kiln__cc_free(cc);
    kiln__cache_manifest_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_config(data, size);
    fuzz_manifest(data, size);
    return 0;
}
