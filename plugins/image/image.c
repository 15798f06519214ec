/*
 * The docker-image source plugin: scheme "docker-image".
 *
 * translate  ref=REF (normalized) [resolvemode=..] [layerlimit=N] ->
 *            docker-image://REF with image.resolvemode / image.layerlimit.
 * resolve    GETs the manifest (an index is followed to the platform's
 *            manifest) and pins BuildKit's index-0 cache key: the sha256 of
 *            {"Digest":..,"OS":..,"Arch":..[,"Variant":..][,"Limit":N]}.
 *            What fetch needs (registry, repository, layer descriptors) is
 *            kept in the plugin's key-value store under the pin.
 * fetch      each layer, bottom first, into the blob store (a blob already
 *            there is not downloaded again), then unpacked: the first into
 *            the fetch directory, the others into host->add_layer() ones.
 *
 * core/oci and core/util are built into this module (see meson.build).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include <kiln/plugin.h>

#include "oci/layout.h"
#include "oci/registry.h"
#include "oci/unpack.h"

#define IMAGE_KV_MAX (1u << 20)

static const kiln_host_t *host;

static int image_init(const kiln_host_t *h, void **state)
{
    (void)state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -EIO;
    }
    host = h;
    return 0;
}

static void image_teardown(void *state)
{
    (void)state;
    curl_global_cleanup();
}

/* ---- translate ---- */

static int image_translate(void *state, kiln_job_t *job, const char *scheme,
                           const kiln_attrs_t *params, char *ident,
                           size_t ident_size, kiln_attrs_t *attrs)
{
    const char *ref = host->attr_get(params, "ref");
    const char *mode = host->attr_get(params, "resolvemode");
    const char *limit = host->attr_get(params, "layerlimit");
    size_t n = host->attr_count(params);
    const char *slash;
    int rc = 0;

    (void)state;
    (void)scheme;
    for (size_t i = 0; i < n; i++) {
        const char *k = host->attr_key(params, i);
        if (strcmp(k, "ref") != 0 && strcmp(k, "resolvemode") != 0 &&
            strcmp(k, "layerlimit") != 0) {
            return host->fail(job, -EINVAL,
                              "unknown parameter %s (known: ref, "
                              "resolvemode, layerlimit)",
                              k);
        }
    }
    if (ref == NULL) {
        return host->fail(job, -EINVAL, "missing parameter ref=REF");
    }
    /* A registry host has a '.' or ':' or is "localhost". */
    slash = strchr(ref, '/');
    if (slash == NULL || (memchr(ref, '.', (size_t)(slash - ref)) == NULL &&
                          memchr(ref, ':', (size_t)(slash - ref)) == NULL &&
                          strncmp(ref, "localhost/", 10) != 0)) {
        return host->fail(job, -EINVAL,
                          "ref=%s: not a normalized reference (want one "
                          "naming its registry, like "
                          "docker.io/library/busybox:latest)",
                          ref);
    }
    if ((size_t)snprintf(ident, ident_size, "docker-image://%s", ref) >=
        ident_size) {
        return host->fail(job, -ENAMETOOLONG, "ref=%s: too long", ref);
    }
    if (mode != NULL) {
        if (strcmp(mode, "default") != 0 && strcmp(mode, "pull") != 0 &&
            strcmp(mode, "local") != 0) {
            return host->fail(job, -EINVAL,
                              "resolvemode=%s: want default, pull or local",
                              mode);
        }
        if (strcmp(mode, "default") != 0) {
            rc = host->attr_set(attrs, "image.resolvemode", mode);
        }
    }
    if (rc == 0 && limit != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*limit == '\0' || *end != '\0' || v <= 0 || v > 1000000) {
            return host->fail(job, -EINVAL, "layerlimit=%s: want a number > 0",
                              limit);
        }
        rc = host->attr_set(attrs, "image.layerlimit", limit);
    }
    return rc;
}

/* ---- registry client ---- */

static int job_cancelled(void *ud)
{
    return host->cancelled((const kiln_job_t *)ud);
}

static int reg_open(kiln_job_t *job, kiln__oci_reg_t **r)
{
    kiln__oci_reg_opts_t o = {0};
    kiln_error_t err = {0};
    int rc;

    o.cancelled = job_cancelled;
    o.cancel_ud = job;
    rc = kiln__oci_reg_new(&o, r, &err);
    return rc == 0 ? 0 : host->fail(job, rc, "%s", err.message);
}

/* ---- resolve ---- */

/* The layer limit of src (0: none), or a negative errno. */
static long src_limit(kiln_job_t *job, const kiln_source_t *src)
{
    const char *s = host->attr_get(src->attrs, "image.layerlimit");
    char *end;
    long v;

    if (s == NULL) {
        return 0;
    }
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 1000000) {
        return host->fail(job, -EINVAL,
                          "image.layerlimit=%s: want a "
                          "number > 0",
                          s);
    }
    return v;
}

static int src_platform(kiln_job_t *job, const kiln_source_t *src,
                        kiln_oci_platform_t *p)
{
    memset(p, 0, sizeof(*p));
    if (src->os == NULL || src->arch == NULL || src->os[0] == '\0' ||
        src->arch[0] == '\0') {
        kiln__oci_platform_host(p);
        return 0;
    }
    if (strlen(src->os) >= sizeof(p->os) ||
        strlen(src->arch) >= sizeof(p->arch) ||
        (src->variant != NULL && strlen(src->variant) >= sizeof(p->variant))) {
        return host->fail(job, -EINVAL, "platform %s/%s: too long", src->os,
                          src->arch);
    }
    strcpy(p->os, src->os);
    strcpy(p->arch, src->arch);
    if (src->variant != NULL) {
        strcpy(p->variant, src->variant);
    }
    return 0;
}

/* The kv key remembering the pin of an identifier on a platform (for
 * image.resolvemode=local). */
static char *ref_key(const kiln_source_t *src, const kiln_oci_platform_t *p)
{
    char plat[96];
    size_t n;
    char *k;

    kiln__oci_platform_format(p, plat, sizeof(plat));
    n = strlen(src->identifier) + strlen(plat) + 8;
    k = malloc(n);
    if (k != NULL) {
        snprintf(k, n, "ref:%s|%s", src->identifier, plat);
    }
    return k;
}

/* BuildKit's index-0 cache key of a resolved image. */
static int image_pin(const char *digest, const kiln_oci_platform_t *p,
                     long limit, char pin[KILN_DIGEST_STRLEN + 1])
{
    json_t *o = json_object();
    char *text;
    int rc;

    if (o == NULL) {
        return -ENOMEM;
    }
    json_object_set_new(o, "Digest", json_string(digest));
    json_object_set_new(o, "OS", json_string(p->os));
    json_object_set_new(o, "Arch", json_string(p->arch));
    if (p->variant[0] != '\0') {
        json_object_set_new(o, "Variant", json_string(p->variant));
    }
    if (limit > 0) {
        json_object_set_new(o, "Limit", json_integer(limit));
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL) {
        return -ENOMEM;
    }
    rc = kiln__sha256_digest(text, strlen(text), pin);
    free(text);
    return rc;
}

/* Saves what fetch needs under the pin. */
static int save_meta(kiln_job_t *job, const char *pin,
                     const kiln__oci_ref_t *ref, const char *digest,
                     const kiln_oci_image_manifest_t *m, size_t n_layers)
{
    json_t *o = json_object(), *layers = json_array();
    char *text;
    int rc;

    if (o == NULL || layers == NULL) {
        json_decref(o);
        json_decref(layers);
        return host->fail(job, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n_layers; i++) {
        json_array_append_new(layers, json_pack("{s:s,s:I}", "digest",
                                                m->layers[i].digest, "size",
                                                (json_int_t)m->layers[i].size));
    }
    json_object_set_new(o, "registry", json_string(ref->registry));
    json_object_set_new(o, "repository", json_string(ref->repository));
    json_object_set_new(o, "manifest", json_string(digest));
    json_object_set_new(o, "layers", layers);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL) {
        return host->fail(job, -ENOMEM, "out of memory");
    }
    rc = host->kv_set(job, pin, text, strlen(text));
    free(text);
    return rc;
}

/* GETs `ref` and follows an index to the manifest for `p`. Fills *m and
 * digest (the chosen manifest's). */
static int get_manifest(kiln_job_t *job, kiln__oci_reg_t *r,
                        const kiln__oci_ref_t *ref, const char *name,
                        const kiln_oci_platform_t *p,
                        kiln_oci_image_manifest_t *m,
                        char digest[KILN_DIGEST_STRLEN + 1])
{
    kiln__oci_manifest_t got = {0};
    kiln_error_t err = {0};
    int rc;

    rc = kiln__oci_manifest_get(r, ref, &got, &err);
    if (rc != 0) {
        return host->fail(job, rc, "%s", err.message);
    }
    if (kiln__oci_mt_is_index(got.media_type)) {
        kiln_oci_index_t ix = {0};
        kiln__oci_ref_t sub = *ref;
        size_t chosen;

        rc = kiln__oci_index_parse(got.body, got.len, &ix, &err);
        if (rc == 0) {
            rc = kiln__oci_platform_select(ix.manifests, ix.n_manifests, p,
                                           name, &chosen, &err);
        }
        if (rc != 0) {
            kiln__oci_index_clear(&ix);
            kiln__oci_manifest_clear(&got);
            return host->fail(job, rc, "%s", err.message);
        }
        kiln__oci_manifest_clear(&got);
        sub.tag = NULL;
        sub.digest = ix.manifests[chosen].digest;
        rc = kiln__oci_manifest_get(r, &sub, &got, &err);
        kiln__oci_index_clear(&ix);
        if (rc != 0) {
            return host->fail(job, rc, "%s", err.message);
        }
    }
    if (!kiln__oci_mt_is_manifest(got.media_type)) {
        rc = host->fail(job, -EBADMSG, "%s: unsupported manifest type %s", name,
                        got.media_type ? got.media_type : "(none)");
        kiln__oci_manifest_clear(&got);
        return rc;
    }
    rc = kiln__oci_image_manifest_parse(got.body, got.len, m, &err);
    if (rc != 0) {
        kiln__oci_manifest_clear(&got);
        return host->fail(job, rc, "%s: %s", name, err.message);
    }
    memcpy(digest, got.digest, KILN_DIGEST_STRLEN + 1);
    kiln__oci_manifest_clear(&got);
    return 0;
}

static int image_resolve(void *state, kiln_job_t *job, const kiln_source_t *src)
{
    const char *mode = host->attr_get(src->attrs, "image.resolvemode");
    const char *checksum = host->attr_get(src->attrs, "image.checksum");
    kiln__oci_ref_t ref = {0};
    kiln_oci_platform_t plat;
    kiln_oci_image_manifest_t m = {0};
    kiln__oci_reg_t *r = NULL;
    kiln_error_t err = {0};
    char digest[KILN_DIGEST_STRLEN + 1], pin[KILN_DIGEST_STRLEN + 1];
    char *rkey = NULL;
    size_t n_layers;
    long limit;
    int rc;

    (void)state;
    limit = src_limit(job, src);
    if (limit < 0) {
        return (int)limit;
    }
    rc = src_platform(job, src, &plat);
    if (rc != 0) {
        return rc;
    }
    rc = kiln__oci_ref_parse(src->locator, &ref, &err);
    if (rc != 0) {
        return host->fail(job, rc, "%s", err.message);
    }
    rkey = ref_key(src, &plat);
    if (rkey == NULL) {
        rc = host->fail(job, -ENOMEM, "out of memory");
        goto out;
    }
    if (mode != NULL && strcmp(mode, "local") == 0) {
        char old[KILN_DIGEST_STRLEN + 1];
        size_t len;
        if (host->kv_get(job, rkey, old, sizeof(old) - 1, &len) == 0 &&
            len == KILN_DIGEST_STRLEN) {
            old[len] = '\0';
            if (host->kv_get(job, old, NULL, 0, &len) == -ERANGE) {
                rc = host->set_pin(job, old);
                goto out;
            }
        }
    }
    rc = reg_open(job, &r);
    if (rc != 0) {
        goto out;
    }
    rc = get_manifest(job, r, &ref, src->locator, &plat, &m, digest);
    if (rc != 0) {
        goto out;
    }
    if (checksum != NULL && strcmp(checksum, digest) != 0) {
        rc = host->fail(job, -EBADMSG,
                        "%s: manifest digest %s, image.checksum wants %s",
                        src->locator, digest, checksum);
        goto out;
    }
    n_layers = m.n_layers;
    if (limit > 0) {
        if ((size_t)limit > m.n_layers) {
            rc = host->fail(job, -EINVAL,
                            "%s: layer limit %ld, the image has %zu layers",
                            src->locator, limit, m.n_layers);
            goto out;
        }
        n_layers = (size_t)limit;
    }
    rc = image_pin(digest, &plat, limit, pin);
    if (rc != 0) {
        rc = host->fail(job, rc, "out of memory");
        goto out;
    }
    rc = save_meta(job, pin, &ref, digest, &m, n_layers);
    if (rc == 0) {
        rc = host->kv_set(job, rkey, pin, strlen(pin));
    }
    if (rc == 0) {
        host->log(job, KILN_PLUGIN_LOG_INFO, "%s: manifest %s", src->locator,
                  digest);
        rc = host->set_pin(job, pin);
    }
out:
    free(rkey);
    kiln__oci_image_manifest_clear(&m);
    kiln__oci_reg_free(r);
    kiln__oci_ref_clear(&ref);
    return rc;
}

/* ---- fetch ---- */

struct sink {
    kiln_job_t *job;
    int fd;
    uint64_t done;
    uint64_t total;
};

static int sink_write(void *ud, const void *data, size_t len, kiln_error_t *err)
{
    struct sink *s = ud;
    const char *p = data;

    if (host->cancelled(s->job)) {
        return kiln__fail(err, KILN_ECANCELED, "canceled");
    }
    while (len > 0) {
        ssize_t w = write(s->fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return kiln__fail(err, KILN_EIO, "writing blob: %s",
                              strerror(errno));
        }
        p += w;
        len -= (size_t)w;
        s->done += (uint64_t)w;
    }
    host->progress(s->job, s->done, s->total);
    return 0;
}

/* Opens layer `digest` (of `size` bytes) from the blob store, downloading
 * it first when it is not there; the client *r is made on first use. */
static int layer_open(kiln_job_t *job, kiln__oci_reg_t **r,
                      const char *registry, const char *repo,
                      const char *digest, uint64_t size, struct sink *s,
                      int *fd)
{
    kiln_error_t err = {0};
    char got[72];
    void *w;
    int rc;

    if (host->blob_open(job, digest, fd) == 0) {
        s->done += size;
        return 0;
    }
    if (*r == NULL) {
        rc = reg_open(job, r);
        if (rc != 0) {
            return rc;
        }
    }
    rc = host->blob_create(job, &s->fd, &w);
    if (rc != 0) {
        return rc;
    }
    rc = kiln__oci_blob_get(*r, registry, repo, digest, sink_write, s, NULL,
                            &err);
    if (rc != 0) {
        host->blob_abort(job, w);
        return host->fail(job, rc, "%s", err.message);
    }
    rc = host->blob_commit(job, w, digest, got);
    if (rc != 0) {
        return rc;
    }
    return host->blob_open(job, digest, fd);
}

static int image_fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                       const char *dest_dir)
{
    kiln__oci_reg_t *r = NULL;
    json_t *meta = NULL, *layers;
    json_error_t jerr;
    const char *registry, *repo;
    char *buf = NULL, dir[4096];
    struct sink s = {.job = job, .fd = -1};
    size_t len;
    int rc;

    (void)state;
    buf = malloc(IMAGE_KV_MAX);
    if (buf == NULL) {
        return host->fail(job, -ENOMEM, "out of memory");
    }
    rc = host->kv_get(job, src->pin, buf, IMAGE_KV_MAX, &len);
    if (rc != 0) {
        free(buf);
        return host->fail(job, rc == -ENOENT ? -ENOENT : rc,
                          "%s: nothing known of pin %s (resolve again)",
                          src->locator, src->pin);
    }
    meta = json_loadb(buf, len, 0, &jerr);
    free(buf);
    if (meta == NULL ||
        json_unpack(meta, "{s:s,s:s,s:o}", "registry", &registry, "repository",
                    &repo, "layers", &layers) != 0 ||
        !json_is_array(layers)) {
        json_decref(meta);
        return host->fail(job, -EBADMSG, "%s: corrupt metadata of pin %s",
                          src->locator, src->pin);
    }
    for (size_t i = 0; i < json_array_size(layers); i++) {
        json_int_t size = 0;
        const char *dg = NULL;
        if (json_unpack(json_array_get(layers, i), "{s:s,s:I}", "digest", &dg,
                        "size", &size) == 0 &&
            size > 0) {
            s.total += (uint64_t)size;
        }
    }
    for (size_t i = 0; i < json_array_size(layers) && rc == 0; i++) {
        kiln_oci_unpack_opts_t uo = {0};
        kiln_error_t err = {0};
        json_int_t size = 0;
        const char *dg = NULL;
        int fd = -1;

        if (host->cancelled(job)) {
            rc = host->fail(job, -ECANCELED, "canceled");
            break;
        }
        if (json_unpack(json_array_get(layers, i), "{s:s,s:I}", "digest", &dg,
                        "size", &size) != 0 ||
            !kiln__digest_valid(dg)) {
            rc = host->fail(job, -EBADMSG, "%s: corrupt metadata of pin %s",
                            src->locator, src->pin);
            break;
        }
        if (i == 0) {
            snprintf(dir, sizeof(dir), "%s", dest_dir);
        } else if (!KILN_HOST_HAS(host, add_layer)) {
            rc = host->fail(job, -ENOTSUP,
                            "%s: %zu layers need a host with add_layer "
                            "(ABI 1.1)",
                            src->locator, json_array_size(layers));
            break;
        } else {
            rc = host->add_layer(job, dir, sizeof(dir));
            if (rc != 0) {
                rc = host->fail(job, rc, "adding layer %zu: %s", i,
                                strerror(-rc));
                break;
            }
        }
        rc = layer_open(job, &r, registry, repo, dg,
                        size > 0 ? (uint64_t)size : 0, &s, &fd);
        if (rc != 0) {
            break;
        }
        uo.expect_digest = dg;
        rc = kiln__oci_unpack_fd(fd, dir, &uo, NULL, &err);
        close(fd);
        if (rc != 0) {
            rc = host->fail(job, rc, "layer %s: %s", dg, err.message);
        }
        host->progress(job, s.done, s.total);
    }
    kiln__oci_reg_free(r);
    json_decref(meta);
    return rc;
}

static const char *const image_schemes[] = {"docker-image", NULL};

static const kiln_plugin_t image_plugin = {
    KILN_PLUGIN_HEADER,
    .name = "image",
    .version = "1.0.0",
    .description = "container images from OCI / Docker registries",
    .schemes = image_schemes,
    .init = image_init,
    .teardown = image_teardown,
    .translate = image_translate,
    .resolve = image_resolve,
    .fetch = image_fetch,
};

KILN_PLUGIN_DEFINE(image_plugin)
