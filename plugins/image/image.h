/*
 * The image plugin's parts: image.c (descriptor, translate, the pin, the
 * metadata kept under it, fetch), resolve_registry.c (docker-image://) and
 * resolve_layout.c (oci-layout://). Private to the plugin.
 */
#ifndef KILN_PLUGIN_IMAGE_H
#define KILN_PLUGIN_IMAGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/plugin.h>

#include "oci/layout.h"
#include "oci/registry.h"

/* Most bytes of an image config, and of the metadata kept under a pin. */
#define IMAGE_CONFIG_MAX (8u << 20)
#define IMAGE_KV_MAX     (1u << 20)

extern const kiln_host_t *image_host;

/* Where an image's blobs come from. */
typedef struct image_origin {
    const char *registry;   /* docker-image: "127.0.0.1:5000" */
    const char *repository; /* docker-image: "library/busybox" */
    const char *store;      /* oci-layout: the oci.store attr, or NULL */
} image_origin_t;

/* What resolve found, to pin and remember. */
typedef struct image_resolved {
    image_origin_t origin;
    /* What the reference names (an index, or a manifest): the digest
     * BuildKit's key and ResolveImageConfig use. */
    const char *digest;
    const char *manifest;               /* the platform manifest's */
    const kiln_oci_image_manifest_t *m; /* its layers and config */
    const uint8_t *config;              /* the config blob */
    size_t config_len;
} image_resolved_t;

/* The layer limit of src (attr `attr`; 0: none), or a negative errno. */
long image_src_limit(kiln_job_t *job, const kiln_source_t *src,
                     const char *attr);
/* The platform the op asks for, else the host's. */
int image_src_platform(kiln_job_t *job, const kiln_source_t *src,
                       kiln_oci_platform_t *p);
/* The key-value key remembering the pin of src's identifier on p. */
char *image_ref_key(const kiln_source_t *src, const kiln_oci_platform_t *p);

/*
 * Pins what resolve found: checks the layer limit, computes BuildKit's
 * index-0 key, keeps what fetch needs under it, remembers it for the
 * identifier (image_ref_key), and sets the metadata clients see.
 */
int image_finish(kiln_job_t *job, const kiln_source_t *src,
                 const kiln_oci_platform_t *p, long limit,
                 const image_resolved_t *r);

/*
 * The pin resolved before for src on p, when what it names is still here
 * (its metadata and config): sets pin and metadata as image_finish() did,
 * and returns 0; -ENOENT when there is none (nothing recorded in the job).
 * With `digest` (a reference pinned by digest) the pin is computed, not
 * looked up: immutable content needs no request.
 */
int image_reuse(kiln_job_t *job, const kiln_source_t *src,
                const kiln_oci_platform_t *p, long limit, const char *digest);

int image_resolve_registry(kiln_job_t *job, const kiln_source_t *src);
int image_resolve_layout(kiln_job_t *job, const kiln_source_t *src);

/* Reads fd to its end (less than `limit` bytes: -E2BIG otherwise) into a
 * malloc'ed *data, and closes it. */
int image_read_fd(int fd, size_t limit, uint8_t **data, size_t *len);

/* The registry client for a job (cancellable through it). */
int image_reg_open(kiln_job_t *job, kiln__oci_reg_t **r);

/* Bytes done, counted by a fetch's threads. */
typedef _Atomic uint64_t image_counter_t;

/*
 * Blob `digest` from the blob store (1), or downloaded into it first from
 * registry/repository (0; *r made on first use; the bytes counted in *done
 * of total as they come). *fd is open for reading. Failures fill `err`
 * (nothing is recorded in the job: callers on threads of their own report
 * it), and nothing is left in the blob store.
 */
int image_blob_fetch(kiln_job_t *job, kiln__oci_reg_t **r,
                     const char *registry, const char *repo,
                     const char *digest, image_counter_t *done,
                     uint64_t total, int *fd, kiln_error_t *err);

/* The OCI layout directory of store (NULL: the build's only one). */
const char *image_layout_dir(kiln_job_t *job, const kiln_source_t *src,
                             const char *store);

#endif
