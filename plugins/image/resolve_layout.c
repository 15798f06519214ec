/*
 * oci-layout:// resolve: the image a digest names in an OCI image layout
 * directory (`kiln build --oci-layout STORE=DIR`; the source's oci.store
 * attr names STORE), an index followed to the platform's manifest, its
 * config, and the same pin as docker-image. As BuildKit, the reference
 * must carry a digest (the name before it is only for people); every blob
 * is checked against its digest as it is read.
 */
#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "image.h"

#define host image_host

int image_resolve_layout(kiln_job_t *job, const kiln_source_t *src)
{
    const char *store = host->attr_get(src->attrs, "oci.store");
    const char *at = strrchr(src->locator, '@'), *dir;
    kiln_oci_platform_t plat;
    kiln_oci_image_manifest_t m = {0};
    kiln_oci_desc_t desc = {0};
    kiln_oci_layout_t *lay = NULL;
    kiln_error_t err = {0};
    image_resolved_t res = {0};
    uint8_t *config = NULL;
    size_t config_len = 0;
    long limit;
    int rc;

    if (at == NULL || !kiln__digest_valid(at + 1)) {
        return host->fail(job, -EINVAL,
                          "%s: an oci-layout reference must carry a digest "
                          "(NAME@sha256:...)",
                          src->locator);
    }
    limit = image_src_limit(job, src, "oci.layerlimit");
    if (limit < 0) {
        return (int)limit;
    }
    rc = image_src_platform(job, src, &plat);
    if (rc != 0) {
        return rc;
    }
    dir = image_layout_dir(job, src, store);
    if (dir == NULL) {
        return -ENOENT;
    }
    rc = kiln__oci_layout_open(dir, &lay, &err);
    if (rc == 0) {
        rc = kiln__oci_layout_find(lay, at + 1, &plat, &m, &desc, &err);
    }
    if (rc == 0 && (m.config.size < 0 ||
                    (uint64_t)m.config.size >= IMAGE_CONFIG_MAX)) {
        rc = kiln__fail(&err, KILN_E2BIG, "config %s: %lld bytes",
                        m.config.digest, (long long)m.config.size);
    }
    if (rc == 0) {
        rc = kiln__oci_layout_read_blob(lay, m.config.digest, m.config.size,
                                        IMAGE_CONFIG_MAX, &config,
                                        &config_len, &err);
    }
    if (rc != 0) {
        rc = host->fail(job, rc, "%s", err.message);
    } else {
        /* The config, for image_reuse() and inspect as for registries. */
        int fd;
        void *w;
        char got[72];

        if (host->blob_open(job, m.config.digest, &fd) == 0) {
            close(fd);
        } else if (host->blob_create(job, &fd, &w) == 0) {
            if (write(fd, config, config_len) == (ssize_t)config_len) {
                host->blob_commit(job, w, m.config.digest, got);
            } else {
                host->blob_abort(job, w);
            }
        }
        res.origin.store = store;
        res.digest = at + 1;
        res.manifest = desc.digest;
        res.m = &m;
        res.config = config;
        res.config_len = config_len;
        rc = image_finish(job, src, &plat, limit, &res);
    }
    free(config);
    kiln__oci_desc_clear(&desc);
    kiln__oci_image_manifest_clear(&m);
    kiln__oci_layout_free(lay);
    return rc;
}
