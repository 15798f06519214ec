/*
 * What holds a cache config in a registry or an OCI layout: an OCI image
 * manifest whose config is the cache config and whose layers are the layer
 * blobs (BuildKit's image-manifest=true, its default since v0.21), or an
 * OCI index / Docker manifest list listing the layer blobs followed by the
 * config descriptor (image-manifest=false; BuildKit before v0.21). Both are
 * read; the exporter writes the one its options ask for.
 */
#ifndef KILN_CACHE_MANIFEST_H
#define KILN_CACHE_MANIFEST_H

#include "cache/config.h"

#define KILN_CACHE_ANN_CREATED "buildkit/createdat"
#define KILN_CACHE_ANN_DIFF_ID "containerd.io/uncompressed"

/* A parsed cache manifest: the config's descriptor and the layers'. */
typedef struct kiln__cache_manifest {
    char config_digest[KILN_DIGEST_STRLEN + 1];
    int64_t config_size;
    kiln__cc_layer_t *layers; /* blob, media_type, size, diff_id, created */
    size_t n_layers;
} kiln__cache_manifest_t;

void kiln__cache_manifest_clear(kiln__cache_manifest_t *m);

/*
 * Parses an image manifest or index (told apart by its mediaType field,
 * or by having `config` / `manifests`). KILN_EBADMSG when it is neither,
 * or holds no application/vnd.buildkit.cacheconfig.v0 config, naming what
 * is wrong; KILN_E2BIG over 1 MiB, as BuildKit.
 */
int kiln__cache_manifest_parse(const void *data, size_t len,
                               kiln__cache_manifest_t *out,
                               kiln_error_t *err);

/* Copies media type, size, diff_id and created of each manifest layer
 * onto the config's layers of the same blob. */
int kiln__cache_manifest_attach(const kiln__cache_manifest_t *m,
                                kiln__cc_t *cc, kiln_error_t *err);

/*
 * Writes the manifest for config blob (digest, size) and the config's
 * layers (each blob once, in config order; every layer must have its
 * media type and size). `image_manifest` picks the form, `oci` the media
 * types (Docker's when false: a manifest list). *out is malloc'ed, *mt
 * static.
 */
int kiln__cache_manifest_write(const kiln__cc_t *cc, const char *config_digest,
                               int64_t config_size, bool image_manifest,
                               bool oci, char **out, size_t *len,
                               const char **mt, kiln_error_t *err);

#endif
