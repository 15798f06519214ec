/* kiln_cache_list(): the records of an exported build cache. */
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"

static void describe(const kiln__cc_t *cc, const kiln__cc_record_t *r,
                     kiln_cache_record_t *out)
{
    int64_t top = -1;

    memset(out, 0, sizeof(*out));
    out->digest = r->digest;
    out->description = r->description;
    out->n_results = r->n_results + r->n_chains;
    out->n_inputs = r->n_inputs;
    for (size_t k = 0; k < r->n_results; k++) {
        if (out->created == NULL ||
            strcmp(r->results[k].created, out->created) > 0) {
            out->created = r->results[k].created;
            top = r->results[k].layer;
        }
    }
    /* Parsing ruled out loops: the walk ends. */
    for (int64_t l = top; l >= 0; l = cc->layers[l].parent) {
        out->size += cc->layers[l].size > 0 ? (uint64_t)cc->layers[l].size : 0;
        out->n_layers++;
    }
    if (out->created != NULL && out->created[0] == '\0') {
        out->created = NULL;
    }
}

int kiln_cache_list(const char *spec, kiln_cache_record_cb cb, void *ud,
                    kiln_error_t *err)
{
    kiln__cache_spec_t sp;
    kiln__cache_manifest_t m = {0};
    kiln__oci_reg_t *reg = NULL;
    kiln__cc_t *cc = NULL;
    char digest[KILN_DIGEST_STRLEN + 1];
    int rc = kiln__cache_spec_parse(spec, false, &sp, err);

    if (rc < 0) {
        return rc;
    }
    if (sp.type == KILN__CACHE_REGISTRY) {
        rc = kiln__cache_reg_new(&sp, NULL, &reg, err);
    }
    if (rc == 0) {
        rc = kiln__cache_read(&sp, reg, &cc, &m, digest, err);
    }
    for (size_t i = 0; rc == 0 && i < cc->n_records; i++) {
        kiln_cache_record_t r;

        describe(cc, &cc->records[i], &r);
        rc = cb(&r, ud);
    }
    kiln__cc_free(cc);
    kiln__cache_manifest_clear(&m);
    kiln__oci_reg_free(reg);
    kiln__cache_spec_clear(&sp);
    return rc;
}
