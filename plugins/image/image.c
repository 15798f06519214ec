/*
 * The image source plugin: schemes "docker-image" (images in OCI / Docker
 * registries) and "oci-layout" (images in OCI image layout directories).
 *
 * translate  docker-image: ref=REF, normalized as BuildKit's llb.Image
 *            (busybox -> docker.io/library/busybox:latest), resolvemode,
 *            layerlimit -> image.resolvemode / image.layerlimit.
 *            oci-layout: ref=NAME@DIGEST (kept as given, as llb.OCILayout),
 *            store, session, layerlimit -> oci.store / oci.session /
 *            oci.layerlimit.
 * resolve    finds the platform's manifest (resolve_registry.c,
 *            resolve_layout.c) and pins BuildKit's index-0 cache key: the
 *            sha256 of {"Digest":..,"OS":..,"Arch":..[,"Variant":..]
 *            [,"Limit":N]}. What fetch needs (where the blobs are, the
 *            layer descriptors) is kept in the key-value store under the
 *            pin; the digest and config are set as metadata.
 * fetch      each layer, bottom first, from the blob store (a registry's
 *            blobs are downloaded into it once) or the layout, unpacked into
 *            a layer the host keeps under the chain of blob digests below
 *            and including it: a second image sharing bottom layers stacks
 *            the same unpacked layers, and nothing is unpacked twice.
 *
 * core/oci and core/util are built into this module (see meson.build).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "image.h"
#include "oci/unpack.h"

const kiln_host_t *image_host;
#define host image_host

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

static int check_params(kiln_job_t *job, const kiln_attrs_t *params,
                        const char *const *known, const char *list)
{
    size_t n = host->attr_count(params);

    for (size_t i = 0; i < n; i++) {
        const char *k = host->attr_key(params, i);
        size_t j = 0;

        while (known[j] != NULL && strcmp(known[j], k) != 0) {
            j++;
        }
        if (known[j] == NULL) {
            return host->fail(job, -EINVAL,
                              "unknown parameter %s (known: %s)", k, list);
        }
    }
    return 0;
}

static int set_limit(kiln_job_t *job, const char *limit, kiln_attrs_t *attrs,
                     const char *attr)
{
    char *end;
    long v;

    if (limit == NULL) {
        return 0;
    }
    v = strtol(limit, &end, 10);
    if (*limit == '\0' || *end != '\0' || v <= 0 || v > 1000000) {
        return host->fail(job, -EINVAL, "layerlimit=%s: want a number > 0",
                          limit);
    }
    return host->attr_set(attrs, attr, limit);
}

static int translate_image(kiln_job_t *job, const kiln_attrs_t *params,
                           char *ident, size_t ident_size,
                           kiln_attrs_t *attrs)
{
    static const char *const known[] = {"ref", "resolvemode", "layerlimit",
                                        NULL};
    const char *ref = host->attr_get(params, "ref");
    const char *mode = host->attr_get(params, "resolvemode");
    kiln_error_t err = {0};
    char *norm = NULL;
    int rc = check_params(job, params, known, "ref, resolvemode, layerlimit");

    if (rc != 0) {
        return rc;
    }
    if (ref == NULL) {
        return host->fail(job, -EINVAL, "missing parameter ref=REF");
    }
    rc = kiln__oci_ref_normalize(ref, &norm, &err);
    if (rc != 0) {
        return host->fail(job, -EINVAL, "ref=%s: %s", ref, err.message);
    }
    if ((size_t)snprintf(ident, ident_size, "docker-image://%s", norm) >=
        ident_size) {
        rc = host->fail(job, -ENAMETOOLONG, "ref=%s: too long", ref);
    }
    free(norm);
    if (rc == 0 && mode != NULL) {
        if (strcmp(mode, "default") != 0 && strcmp(mode, "pull") != 0 &&
            strcmp(mode, "local") != 0) {
            return host->fail(job, -EINVAL,
                              "resolvemode=%s: want default, pull or local",
                              mode);
        }
        /* As llb.Image: the default is not written. */
        if (strcmp(mode, "default") != 0) {
            rc = host->attr_set(attrs, "image.resolvemode", mode);
        }
    }
    if (rc == 0) {
        rc = set_limit(job, host->attr_get(params, "layerlimit"), attrs,
                       "image.layerlimit");
    }
    return rc;
}

static int translate_layout(kiln_job_t *job, const kiln_attrs_t *params,
                            char *ident, size_t ident_size,
                            kiln_attrs_t *attrs)
{
    static const char *const known[] = {"ref", "store", "session",
                                        "layerlimit", NULL};
    const char *ref = host->attr_get(params, "ref");
    const char *store = host->attr_get(params, "store");
    const char *session = host->attr_get(params, "session");
    const char *at;
    int rc = check_params(job, params, known,
                          "ref, store, session, layerlimit");

    if (rc != 0) {
        return rc;
    }
    if (ref == NULL) {
        return host->fail(job, -EINVAL, "missing parameter ref=NAME@DIGEST");
    }
    at = strrchr(ref, '@');
    if (at == NULL || !kiln__digest_valid(at + 1)) {
        return host->fail(job, -EINVAL,
                          "ref=%s: an oci-layout reference must carry a "
                          "digest (NAME@sha256:...); tags are not resolved",
                          ref);
    }
    if ((size_t)snprintf(ident, ident_size, "oci-layout://%s", ref) >=
        ident_size) {
        return host->fail(job, -ENAMETOOLONG, "ref=%s: too long", ref);
    }
    if (session != NULL && session[0] != '\0') {
        rc = host->attr_set(attrs, "oci.session", session);
    }
    if (rc == 0 && store != NULL && store[0] != '\0') {
        rc = host->attr_set(attrs, "oci.store", store);
    }
    if (rc == 0) {
        rc = set_limit(job, host->attr_get(params, "layerlimit"), attrs,
                       "oci.layerlimit");
    }
    return rc;
}

static int image_translate(void *state, kiln_job_t *job, const char *scheme,
                           const kiln_attrs_t *params, char *ident,
                           size_t ident_size, kiln_attrs_t *attrs)
{
    (void)state;
    if (strcmp(scheme, "oci-layout") == 0) {
        return translate_layout(job, params, ident, ident_size, attrs);
    }
    return translate_image(job, params, ident, ident_size, attrs);
}

/* ---- what resolve and fetch share ---- */

long image_src_limit(kiln_job_t *job, const kiln_source_t *src,
                     const char *attr)
{
    const char *s = host->attr_get(src->attrs, attr);
    char *end;
    long v;

    if (s == NULL) {
        return 0;
    }
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 1000000) {
        return host->fail(job, -EINVAL, "%s=%s: want a number > 0", attr, s);
    }
    return v;
}

int image_src_platform(kiln_job_t *job, const kiln_source_t *src,
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

char *image_ref_key(const kiln_source_t *src, const kiln_oci_platform_t *p)
{
    const char *store = host->attr_get(src->attrs, "oci.store");
    char plat[96];
    size_t n;
    char *k;

    kiln__oci_platform_format(p, plat, sizeof(plat));
    n = strlen(src->identifier) + strlen(plat) + (store ? strlen(store) : 0) +
        16;
    k = malloc(n);
    if (k != NULL) {
        snprintf(k, n, "ref:%s|%s%s%s", src->identifier, plat,
                 store != NULL ? "|" : "", store != NULL ? store : "");
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

/* Keeps what fetch needs (and image_reuse) under the pin. */
static int save_meta(kiln_job_t *job, const char *pin,
                     const image_resolved_t *r, size_t n_layers)
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
        json_array_append_new(layers,
                              json_pack("{s:s,s:I}", "digest",
                                        r->m->layers[i].digest, "size",
                                        (json_int_t)r->m->layers[i].size));
    }
    if (r->origin.registry != NULL) {
        json_object_set_new(o, "registry", json_string(r->origin.registry));
        json_object_set_new(o, "repository",
                            json_string(r->origin.repository));
    } else {
        json_object_set_new(o, "layout", json_true());
        if (r->origin.store != NULL) {
            json_object_set_new(o, "store", json_string(r->origin.store));
        }
    }
    json_object_set_new(o, "digest", json_string(r->digest));
    json_object_set_new(o, "manifest", json_string(r->manifest));
    json_object_set_new(o, "config", json_string(r->m->config.digest));
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

/* The metadata a client of resolve sees; old hosts have none. */
static int set_meta(kiln_job_t *job, const char *digest, const void *config,
                    size_t config_len)
{
    int rc = 0;

    if (KILN_HOST_HAS(host, set_meta)) {
        rc = host->set_meta(job, "image.digest", digest, strlen(digest));
        if (rc == 0) {
            rc = host->set_meta(job, "image.config", config, config_len);
        }
    }
    return rc;
}

int image_finish(kiln_job_t *job, const kiln_source_t *src,
                 const kiln_oci_platform_t *p, long limit,
                 const image_resolved_t *r)
{
    char pin[KILN_DIGEST_STRLEN + 1];
    size_t n_layers = r->m->n_layers;
    char *rkey;
    int rc;

    if (limit > 0) {
        if ((size_t)limit > r->m->n_layers) {
            return host->fail(job, -EINVAL,
                              "%s: layer limit %ld, the image has %zu layers",
                              src->locator, limit, r->m->n_layers);
        }
        n_layers = (size_t)limit;
    }
    rc = image_pin(r->digest, p, limit, pin);
    if (rc != 0) {
        return host->fail(job, rc, "out of memory");
    }
    rc = save_meta(job, pin, r, n_layers);
    if (rc == 0 && (rkey = image_ref_key(src, p)) != NULL) {
        rc = host->kv_set(job, rkey, pin, strlen(pin));
        free(rkey);
    }
    if (rc == 0) {
        rc = set_meta(job, r->digest, r->config, r->config_len);
    }
    if (rc == 0) {
        host->log(job, KILN_PLUGIN_LOG_INFO, "%s: %s (manifest %s)",
                  src->locator, r->digest, r->manifest);
        rc = host->set_pin(job, pin);
    }
    return rc;
}

/* The metadata kept under `pin`, parsed; NULL when there is none. */
static json_t *load_meta(kiln_job_t *job, const char *pin)
{
    char *buf = malloc(IMAGE_KV_MAX);
    json_t *meta = NULL;
    size_t len;

    if (buf != NULL && host->kv_get(job, pin, buf, IMAGE_KV_MAX, &len) == 0) {
        meta = json_loadb(buf, len, 0, NULL);
    }
    free(buf);
    return meta;
}

int image_read_fd(int fd, size_t limit, uint8_t **data, size_t *len)
{
    uint8_t *buf = malloc(limit);
    size_t n = 0;
    int rc = buf != NULL ? 0 : -ENOMEM;

    while (rc == 0 && n < limit) {
        ssize_t got = read(fd, buf + n, limit - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            rc = got < 0 ? -errno : 0;
            break;
        }
        n += (size_t)got;
    }
    close(fd);
    if (rc == 0 && n == limit) {
        rc = -E2BIG;
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Reads blob `digest` of the blob store (less than `limit` bytes). */
static int read_blob(kiln_job_t *job, const char *digest, size_t limit,
                     uint8_t **data, size_t *len)
{
    int fd = -1, rc = host->blob_open(job, digest, &fd);

    return rc != 0 ? rc : image_read_fd(fd, limit, data, len);
}

int image_reuse(kiln_job_t *job, const kiln_source_t *src,
                const kiln_oci_platform_t *p, long limit, const char *digest)
{
    char pin[KILN_DIGEST_STRLEN + 1], *rkey = NULL;
    const char *top = NULL, *config = NULL;
    uint8_t *cfg = NULL;
    json_t *meta = NULL;
    size_t len = 0;
    int rc = -ENOENT;

    if (digest != NULL) {
        if (image_pin(digest, p, limit, pin) == 0) {
            meta = load_meta(job, pin);
        }
    } else if ((rkey = image_ref_key(src, p)) != NULL &&
               host->kv_get(job, rkey, pin, sizeof(pin) - 1, &len) == 0 &&
               len == KILN_DIGEST_STRLEN) {
        pin[len] = '\0';
        meta = load_meta(job, pin);
    }
    free(rkey);
    if (meta != NULL &&
        json_unpack(meta, "{s:s,s:s}", "digest", &top, "config", &config) ==
            0 &&
        read_blob(job, config, IMAGE_CONFIG_MAX, &cfg, &len) == 0) {
        rc = set_meta(job, top, cfg, len);
        if (rc == 0) {
            host->log(job, KILN_PLUGIN_LOG_INFO,
                      "%s: %s, resolved before", src->locator, top);
            rc = host->set_pin(job, pin);
        }
    }
    free(cfg);
    json_decref(meta);
    return rc;
}

/* ---- blobs ---- */

static int job_cancelled(void *ud)
{
    return host->cancelled((const kiln_job_t *)ud);
}

/* A registry client that stops when the job is canceled. */
static int reg_new(kiln_job_t *job, kiln__oci_reg_t **r, kiln_error_t *err)
{
    kiln__oci_reg_opts_t o = {0};

    o.cancelled = job_cancelled;
    o.cancel_ud = job;
    return kiln__oci_reg_new(&o, r, err);
}

int image_reg_open(kiln_job_t *job, kiln__oci_reg_t **r)
{
    kiln_error_t err = {0};
    int rc = reg_new(job, r, &err);

    return rc == 0 ? 0 : host->fail(job, rc, "%s", err.message);
}

struct sink {
    kiln_job_t *job;
    int fd;
    image_counter_t *done;
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
        host->progress(s->job, atomic_fetch_add(s->done, (uint64_t)w) + w,
                       s->total);
    }
    return 0;
}

int image_blob_fetch(kiln_job_t *job, kiln__oci_reg_t **r,
                     const char *registry, const char *repo,
                     const char *digest, image_counter_t *done,
                     uint64_t total, int *fd, kiln_error_t *err)
{
    struct sink s = {.job = job, .fd = -1, .done = done, .total = total};
    uint64_t size = 0;
    char got[72];
    void *w;
    int rc;

    if (host->blob_open(job, digest, fd) == 0) {
        return 1;
    }
    if (*r == NULL && (rc = reg_new(job, r, err)) != 0) {
        return rc;
    }
    rc = host->blob_create(job, &s.fd, &w);
    if (rc != 0) {
        return kiln__fail(err, rc, "blob store: cannot write %s", digest);
    }
    rc = kiln__oci_blob_get(*r, registry, repo, digest, sink_write, &s, &size,
                            err);
    if (rc != 0) {
        host->blob_abort(job, w);
        return rc;
    }
    rc = host->blob_commit(job, w, digest, got);
    if (rc == 0) {
        rc = host->blob_open(job, digest, fd);
    }
    return rc == 0 ? 0
                   : kiln__fail(err, rc, "blob store: cannot keep %s: %s",
                                digest, strerror(-rc));
}

const char *image_layout_dir(kiln_job_t *job, const kiln_source_t *src,
                             const char *store)
{
    const char *dir = NULL;

    if (KILN_HOST_HAS(host, oci_layout_dir)) {
        dir = host->oci_layout_dir(job, store);
    }
    if (dir == NULL) {
        (void)src;
        host->fail(job, -ENOENT, "%s%s%s (kiln build --oci-layout STORE=DIR)",
                   store != NULL ? "the build names no OCI layout '"
                                 : "the build names no single OCI layout "
                                   "and the source no oci.store",
                   store != NULL ? store : "", store != NULL ? "'" : "");
    }
    return dir;
}

/* ---- fetch ---- */

/* The next layer's key: the chain of blob digests up to it. */
static int chain_key(char chain[KILN_DIGEST_STRLEN + 1], const char *digest,
                     size_t i, char *key, size_t size)
{
    char text[2 * KILN_DIGEST_STRLEN + 2];

    if (i == 0) {
        memcpy(chain, digest, KILN_DIGEST_STRLEN + 1);
    } else {
        snprintf(text, sizeof(text), "%s %s", chain, digest);
        if (kiln__sha256_digest(text, strlen(text), chain) != 0) {
            return -ENOMEM;
        }
    }
    snprintf(key, size, "image-layer:%s", chain);
    return 0;
}

/* The directory layer i goes into (nothing to do: *reused). */
static int layer_dir(kiln_job_t *job, const kiln_source_t *src, size_t i,
                     size_t n, const char *key, const char *dest_dir,
                     char *dir, size_t size, int *reused)
{
    int rc;

    *reused = 0;
    if (KILN_HOST_HAS(host, add_layer_keyed)) {
        rc = host->add_layer_keyed(job, key, dir, size, reused);
    } else if (i == 0) {
        snprintf(dir, size, "%s", dest_dir);
        return 0;
    } else if (!KILN_HOST_HAS(host, add_layer)) {
        return host->fail(job, -ENOTSUP,
                          "%s: %zu layers need a host with add_layer "
                          "(ABI 1.1)",
                          src->locator, n);
    } else {
        rc = host->add_layer(job, dir, size);
    }
    return rc == 0 ? 0
                   : host->fail(job, rc, "adding layer %zu: %s", i,
                                strerror(-rc));
}

/* Layers fetched at once: downloads and unpacks overlap, and each layer
 * goes into a directory of its own, so order does not matter. */
#define FETCH_THREADS 4

/* One layer of a fetch. */
struct layer {
    const char *digest;
    uint64_t size;
    char dir[4096];
    bool todo; /* false: reused */
    int rc;
    kiln_error_t err;
};

/* A fetch in flight: the layers and what the threads share. */
struct fetch {
    kiln_job_t *job;
    const char *registry, *repo; /* NULL for a layout */
    const kiln_oci_layout_t *lay;
    struct layer *layers;
    size_t n;
    atomic_size_t next;
    atomic_bool failed;
    image_counter_t done;
    uint64_t total;
};

/* Opens layer l's blob and unpacks it (verified) into its directory. */
static int fetch_one(struct fetch *f, kiln__oci_reg_t **r, struct layer *l)
{
    kiln_oci_unpack_opts_t uo = {0};
    int fd = -1, rc;

    if (f->lay != NULL) {
        rc = kiln__oci_layout_open_blob(f->lay, l->digest, &fd, &l->err);
    } else {
        rc = image_blob_fetch(f->job, r, f->registry, f->repo, l->digest,
                              &f->done, f->total, &fd, &l->err);
        if (rc == 1) { /* in the blob store already */
            rc = 0;
            atomic_fetch_add(&f->done, l->size);
        } else if (rc == 0) {
            l->size = 0; /* counted while it streamed in */
        }
    }
    if (rc != 0) {
        return rc;
    }
    uo.expect_digest = l->digest;
    rc = kiln__oci_unpack_fd(fd, l->dir, &uo, NULL, &l->err);
    close(fd);
    if (rc != 0) {
        return kiln__fail_prefix(&l->err, rc, "layer %s", l->digest);
    }
    if (f->lay != NULL) {
        atomic_fetch_add(&f->done, l->size);
    }
    host->progress(f->job, atomic_load(&f->done), f->total);
    return 0;
}

static void *fetch_thread(void *ud)
{
    struct fetch *f = ud;
    kiln__oci_reg_t *r = NULL; /* a client per thread */

    for (;;) {
        size_t i = atomic_fetch_add(&f->next, 1);
        struct layer *l = &f->layers[i < f->n ? i : 0];

        if (i >= f->n || atomic_load(&f->failed)) {
            break;
        }
        if (!l->todo) {
            continue;
        }
        if (host->cancelled(f->job)) {
            l->rc = kiln__fail(&l->err, KILN_ECANCELED, "canceled");
        } else {
            l->rc = fetch_one(f, &r, l);
        }
        if (l->rc != 0) {
            atomic_store(&f->failed, true);
        }
    }
    kiln__oci_reg_free(r);
    return NULL;
}

/* Runs the layers' fetches on up to FETCH_THREADS threads; the first
 * failing layer's error is the fetch's. */
static int fetch_layers(struct fetch *f)
{
    pthread_t t[FETCH_THREADS];
    size_t todo = 0, n_threads = 0;

    for (size_t i = 0; i < f->n; i++) {
        todo += f->layers[i].todo;
    }
    for (; n_threads < FETCH_THREADS && n_threads < todo; n_threads++) {
        if (pthread_create(&t[n_threads], NULL, fetch_thread, f) != 0) {
            break;
        }
    }
    if (n_threads == 0 && todo > 0) {
        fetch_thread(f); /* no thread to be had: this one does it */
    }
    for (size_t i = 0; i < n_threads; i++) {
        pthread_join(t[i], NULL);
    }
    for (size_t i = 0; i < f->n; i++) {
        if (f->layers[i].rc != 0) {
            return host->fail(f->job, f->layers[i].rc, "%s",
                              f->layers[i].err.message);
        }
    }
    host->progress(f->job, f->total, f->total);
    return 0;
}

static int image_fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                       const char *dest_dir)
{
    struct fetch f = {.job = job};
    kiln_oci_layout_t *lay = NULL;
    json_t *meta, *layers;
    const char *registry = NULL, *repo = NULL, *store = NULL;
    char chain[KILN_DIGEST_STRLEN + 1], key[96];
    kiln_error_t err = {0};
    int rc = 0, layout = 0;

    (void)state;
    meta = load_meta(job, src->pin);
    if (meta == NULL) {
        return host->fail(job, -ENOENT,
                          "%s: nothing known of pin %s (resolve again)",
                          src->locator, src->pin);
    }
    if (json_unpack(meta, "{s?s,s?s,s?b,s?s,s:o}", "registry", &registry,
                    "repository", &repo, "layout", &layout, "store", &store,
                    "layers", &layers) != 0 ||
        !json_is_array(layers) || (!layout && (registry == NULL ||
                                               repo == NULL))) {
        json_decref(meta);
        return host->fail(job, -EBADMSG, "%s: corrupt metadata of pin %s",
                          src->locator, src->pin);
    }
    f.n = json_array_size(layers);
    f.layers = calloc(f.n + 1, sizeof(*f.layers));
    if (f.layers == NULL) {
        json_decref(meta);
        return host->fail(job, -ENOMEM, "out of memory");
    }
    /* The stack, in order, on this thread: which layers are already
     * unpacked, and the directories of the others. */
    for (size_t i = 0; i < f.n && rc == 0; i++) {
        struct layer *l = &f.layers[i];
        json_int_t size = 0;
        int reused = 0;

        if (json_unpack(json_array_get(layers, i), "{s:s,s:I}", "digest",
                        &l->digest, "size", &size) != 0 ||
            !kiln__digest_valid(l->digest) || size < 0) {
            rc = host->fail(job, -EBADMSG, "%s: corrupt metadata of pin %s",
                            src->locator, src->pin);
            break;
        }
        l->size = (uint64_t)size;
        f.total += l->size;
        rc = chain_key(chain, l->digest, i, key, sizeof(key));
        if (rc == 0) {
            rc = layer_dir(job, src, i, f.n, key, dest_dir, l->dir,
                           sizeof(l->dir), &reused);
        }
        l->todo = rc == 0 && !reused;
        if (reused) {
            atomic_fetch_add(&f.done, l->size);
        }
    }
    if (rc == 0 && layout) {
        const char *dir = image_layout_dir(job, src, store);

        if (dir == NULL) {
            rc = -ENOENT;
        } else if ((rc = kiln__oci_layout_open(dir, &lay, &err)) != 0) {
            rc = host->fail(job, rc, "%s", err.message);
        }
        f.lay = lay;
    } else {
        f.registry = registry;
        f.repo = repo;
    }
    if (rc == 0) {
        rc = fetch_layers(&f);
    }
    kiln__oci_layout_free(lay);
    free(f.layers);
    json_decref(meta);
    return rc;
}

static int image_resolve(void *state, kiln_job_t *job, const kiln_source_t *src)
{
    (void)state;
    if (strcmp(src->scheme, "oci-layout") == 0) {
        return image_resolve_layout(job, src);
    }
    return image_resolve_registry(job, src);
}

static const char *const image_schemes[] = {"docker-image", "oci-layout",
                                            NULL};

static const kiln_plugin_t image_plugin = {
    KILN_PLUGIN_HEADER,
    .name = "image",
    .version = "1.1.0",
    .description = "container images from OCI / Docker registries and OCI "
                   "layout directories",
    .schemes = image_schemes,
    .init = image_init,
    .teardown = image_teardown,
    .translate = image_translate,
    .resolve = image_resolve,
    .fetch = image_fetch,
};

KILN_PLUGIN_DEFINE(image_plugin)
