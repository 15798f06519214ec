/*
 * libFuzzer target for the OCI JSON documents (core/oci/json.c): the
 * input is parsed as an index, a manifest and an image config. Each parse
 * either fails with a message or succeeds; what succeeds is written back
 * out and must parse again to the same shape, and platform selection over
 * a parsed index must either choose an entry or explain why not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/layout.h"

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

static void fuzz_index(const uint8_t *data, size_t size)
{
    kiln_oci_index_t ix, again;
    kiln_oci_platform_t host;
    kiln_error_t err = {0};
    char *json;
    size_t len, chosen;
    int rc = kiln__oci_index_parse(data, size, &ix, &err);

    check_error(rc, &err);
    if (rc < 0) {
        return;
    }
    kiln__oci_platform_host(&host);
    rc = kiln__oci_platform_select(ix.manifests, ix.n_manifests, &host, "fuzz",
                                   &chosen, &err);
    check_error(rc, &err);
    if (rc == 0 && chosen >= ix.n_manifests) {
        abort();
    }
    if (kiln__oci_index_json(ix.manifests, ix.n_manifests, &json, &len, &err) ==
        0) {
        if (kiln__oci_index_parse(json, len, &again, &err) != 0 ||
            again.n_manifests != ix.n_manifests) {
            fprintf(stderr, "index does not parse back: %s\n", err.message);
            abort();
        }
        kiln__oci_index_clear(&again);
        free(json);
    }
    kiln__oci_index_clear(&ix);
}

static void fuzz_manifest(const uint8_t *data, size_t size)
{
    kiln_oci_image_manifest_t m, again;
    kiln_error_t err = {0};
    char *json;
    size_t len;
    int rc = kiln__oci_image_manifest_parse(data, size, &m, &err);

    check_error(rc, &err);
    if (rc < 0) {
        return;
    }
    if (kiln__oci_image_manifest_json(&m.config, m.layers, m.n_layers, &json,
                                      &len, &err) == 0) {
        if (kiln__oci_image_manifest_parse(json, len, &again, &err) != 0 ||
            again.n_layers != m.n_layers ||
            strcmp(again.config.digest, m.config.digest) != 0) {
            fprintf(stderr, "manifest does not parse back: %s\n", err.message);
            abort();
        }
        kiln__oci_image_manifest_clear(&again);
        free(json);
    }
    kiln__oci_image_manifest_clear(&m);
}

static void fuzz_config(const uint8_t *data, size_t size)
{
    kiln_oci_config_t c, again;
    kiln_error_t err = {0};
    char *json;
    size_t len;
    int rc = kiln__oci_config_parse(data, size, &c, &err);

    check_error(rc, &err);
    if (rc < 0) {
        return;
    }
    if (kiln__oci_config_json(&c, &json, &len, &err) == 0) {
        if (kiln__oci_config_parse(json, len, &again, &err) != 0 ||
            again.diff_ids.n != c.diff_ids.n || again.env.n != c.env.n) {
            fprintf(stderr, "config does not parse back: %s\n", err.message);
            abort();
        }
        kiln__oci_config_clear(&again);
        free(json);
    }
    kiln__oci_config_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_index(data, size);
    fuzz_manifest(data, size);
    fuzz_config(data, size);
    return 0;
}
