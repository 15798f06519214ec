/*
 * docker-image:// resolve: the manifest from the registry (an index is
 * followed to the platform's manifest), its config, and the pin.
 *
 * image.resolvemode, as BuildKit: "pull" always asks the registry;
 * "local" uses the image resolved before for this reference and platform
 * when it is still here, else asks; "default" (or none) asks, and when
 * the registry cannot be reached (any failure but "image not found") uses
 * the image resolved before, with a warning. A reference pinned by digest
 * names immutable content: an image resolved before under it is used
 * without any request in every mode.
 */
#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "image.h"

#define host image_host

/* GETs `ref` and follows an index to the manifest for `p`. Fills *m,
 * top (the digest of what ref names) and digest (the chosen manifest's). */
static int get_manifest(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                        const char *name, const kiln_oci_platform_t *p,
                        kiln_oci_image_manifest_t *m,
                        char top[KILN_DIGEST_STRLEN + 1],
                        char digest[KILN_DIGEST_STRLEN + 1],
                        kiln_error_t *err)
{
    kiln__oci_manifest_t got = {0};
    int rc;

    rc = kiln__oci_manifest_get(r, ref, &got, err);
    if (rc != 0) {
        return rc;
    }
    memcpy(top, got.digest, KILN_DIGEST_STRLEN + 1);
    if (kiln__oci_mt_is_index(got.media_type)) {
        kiln_oci_index_t ix = {0};
        kiln__oci_ref_t sub = *ref;
        size_t chosen;

        rc = kiln__oci_index_parse(got.body, got.len, &ix, err);
        if (rc == 0) {
            rc = kiln__oci_platform_select(ix.manifests, ix.n_manifests, p,
                                           name, &chosen, err);
        }
        kiln__oci_manifest_clear(&got);
        if (rc == 0) {
            sub.tag = NULL;
            sub.digest = ix.manifests[chosen].digest;
            rc = kiln__oci_manifest_get(r, &sub, &got, err);
        }
        kiln__oci_index_clear(&ix);
        if (rc != 0) {
            return rc;
        }
    }
    if (!kiln__oci_mt_is_manifest(got.media_type)) {
        rc = kiln__fail(err, KILN_EBADMSG, "%s: unsupported manifest type %s",
                        name, got.media_type ? got.media_type : "(none)");
        kiln__oci_manifest_clear(&got);
        return rc;
    }
    rc = kiln__oci_image_manifest_parse(got.body, got.len, m, err);
    if (rc != 0) {
        rc = kiln__fail_prefix(err, rc, "%s", name);
    } else {
        memcpy(digest, got.digest, KILN_DIGEST_STRLEN + 1);
    }
    kiln__oci_manifest_clear(&got);
    return rc;
}

/* The config blob of `m`, through the blob store (verified). */
static int get_config(kiln_job_t *job, kiln__oci_reg_t **r,
                      const kiln__oci_ref_t *ref,
                      const kiln_oci_image_manifest_t *m, uint8_t **data,
                      size_t *len)
{
    image_counter_t done = 0;
    kiln_error_t err = {0};
    size_t cap = IMAGE_CONFIG_MAX, n = 0;
    uint8_t *buf = NULL;
    int fd = -1, rc;

    if (m->config.size < 0 || (uint64_t)m->config.size >= cap) {
        return host->fail(job, -E2BIG, "config %s: %" PRId64 " bytes",
                          m->config.digest, m->config.size);
    }
    rc = image_blob_fetch(job, r, ref->registry, ref->repository,
                          m->config.digest, &done, 0, &fd, &err);
    if (rc < 0) {
        return host->fail(job, rc, "%s", err.message);
    }
    rc = image_read_fd(fd, cap, &buf, &n);
    if (rc == 0 && n != (size_t)m->config.size) {
        free(buf);
        rc = -EBADMSG;
    }
    if (rc != 0) {
        return host->fail(job, rc, "config %s: read %zu bytes of %" PRId64,
                          m->config.digest, n, m->config.size);
    }
    *data = buf;
    *len = n;
    return 0;
}

int image_resolve_registry(kiln_job_t *job, const kiln_source_t *src)
{
    const char *mode = host->attr_get(src->attrs, "image.resolvemode");
    const char *checksum = host->attr_get(src->attrs, "image.checksum");
    kiln__oci_ref_t ref = {0};
    kiln_oci_platform_t plat;
    kiln_oci_image_manifest_t m = {0};
    kiln__oci_reg_t *r = NULL;
    kiln_error_t err = {0};
    image_resolved_t res = {0};
    char top[KILN_DIGEST_STRLEN + 1], digest[KILN_DIGEST_STRLEN + 1];
    uint8_t *config = NULL;
    size_t config_len = 0;
    long limit;
    int rc;

    if (mode != NULL && strcmp(mode, "default") != 0 &&
        strcmp(mode, "pull") != 0 && strcmp(mode, "local") != 0) {
        return host->fail(job, -EINVAL,
                          "image.resolvemode=%s: want default, pull or local",
                          mode);
    }
    limit = image_src_limit(job, src, "image.layerlimit");
    if (limit < 0) {
        return (int)limit;
    }
    rc = image_src_platform(job, src, &plat);
    if (rc != 0) {
        return rc;
    }
    rc = kiln__oci_ref_parse(src->locator, &ref, &err);
    if (rc != 0) {
        return host->fail(job, rc, "%s", err.message);
    }
    if (ref.digest != NULL
            ? image_reuse(job, src, &plat, limit, ref.digest) == 0
            : mode != NULL && strcmp(mode, "local") == 0 &&
                  image_reuse(job, src, &plat, limit, NULL) == 0) {
        goto out;
    }
    rc = image_reg_open(job, &r);
    if (rc == 0) {
        rc = get_manifest(r, &ref, src->locator, &plat, &m, top, digest,
                          &err);
        if (rc != 0) {
            if (rc != KILN_ENOENT && rc != KILN_ECANCELED &&
                (mode == NULL || strcmp(mode, "default") == 0) &&
                image_reuse(job, src, &plat, limit, NULL) == 0) {
                host->log(job, KILN_PLUGIN_LOG_WARN,
                          "%s; using the image resolved before",
                          err.message);
                rc = 0;
                goto out;
            }
            rc = host->fail(job, rc, "%s", err.message);
        }
    }
    if (rc == 0 && checksum != NULL && strcmp(checksum, top) != 0) {
        rc = host->fail(job, -EBADMSG,
                        "%s: resolved to %s, image.checksum wants %s",
                        src->locator, top, checksum);
    }
    if (rc == 0) {
        rc = get_config(job, &r, &ref, &m, &config, &config_len);
    }
    if (rc == 0) {
        res.origin.registry = ref.registry;
        res.origin.repository = ref.repository;
        res.digest = top;
        res.manifest = digest;
        res.m = &m;
        res.config = config;
        res.config_len = config_len;
        rc = image_finish(job, src, &plat, limit, &res);
    }
out:
    free(config);
    kiln__oci_image_manifest_clear(&m);
    kiln__oci_reg_free(r);
    kiln__oci_ref_clear(&ref);
    return rc;
}
