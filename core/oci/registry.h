/*
 * The OCI distribution (registry v2 API) client: manifests and blobs pulled
 * and pushed over libcurl, with anonymous, Basic and Bearer token auth.
 *
 * References are taken already normalized (core/llb normalizes what users
 * write); kiln__oci_ref_parse() reads only that form. Every function that
 * can fail returns 0 or a negative KILN_E* code and fills `err`.
 *
 * A client (kiln__oci_reg_t) holds one curl handle and a token cache, so it
 * is used by one thread at a time; use one client per thread.
 */
#ifndef KILN_OCI_REGISTRY_H
#define KILN_OCI_REGISTRY_H

#include "internal.h"

/* The media types negotiated for manifests. */
#define KILN_OCI_MT_INDEX    "application/vnd.oci.image.index.v1+json"
#define KILN_OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define KILN_OCI_MT_DOCKER_LIST                                                \
    "application/vnd.docker.distribution.manifest.list.v2+json"
#define KILN_OCI_MT_DOCKER_V2                                                  \
    "application/vnd.docker.distribution.manifest.v2+json"

/* The largest manifest accepted, as containerd's limit. */
#define KILN_OCI_MANIFEST_MAX (4u << 20)

/*
 * A normalized image reference. `registry` is host[:port] as written
 * ("docker.io", "127.0.0.1:5000", "[::1]:5000"); the client maps docker.io
 * to registry-1.docker.io when it connects. At least one of `tag` and
 * `digest` is set. All strings are owned (kiln__oci_ref_clear()).
 */
typedef struct kiln__oci_ref {
    char *registry;
    char *repository; /* "library/alpine" */
    char *tag;        /* "latest", or NULL */
    char *digest;     /* "sha256:<hex>", or NULL */
} kiln__oci_ref_t;

/*
 * Parses a normalized reference: "docker.io/library/alpine:latest",
 * "127.0.0.1:5000/busybox@sha256:...", "host/ns/repo:tag@sha256:...".
 * Fills `out` (owned by the caller, released with kiln__oci_ref_clear())
 * only on success. Errors: KILN_EINVAL with a message saying which part is
 * wrong, KILN_ENOMEM.
 */
int kiln__oci_ref_parse(const char *s, kiln__oci_ref_t *out, kiln_error_t *err);

/*
 * Normalizes a reference as Docker and BuildKit's Go client do
 * (distribution's ParseNormalizedNamed, then TagNameOnly; refnorm.c):
 * "alpine" -> "docker.io/library/alpine:latest", "user/app" ->
 * "docker.io/user/app:latest", "index.docker.io/x" ->
 * "docker.io/library/x:latest"; a host (a first component with '.' or
 * ':', "localhost", or an upper-case letter) stays; a digest-only reference
 * gets no tag. *out is malloc'ed. Errors: KILN_EINVAL with Go's message
 * ("invalid reference format: repository name (Alpine) must be
 * lowercase"), KILN_ENOMEM.
 */
int kiln__oci_ref_normalize(const char *ref, char **out, kiln_error_t *err);

/* Why `d` is not a digest go-digest accepts ("sha256:", "sha384:" or
 * "sha512:" and that many lowercase hex digits), or NULL. */
const char *kiln__digest_check(const char *d);

/* Releases the strings of `r` and zeroes it. Safe on a zeroed struct. */
void kiln__oci_ref_clear(kiln__oci_ref_t *r);

/*
 * Writes "registry/repository[:tag][@digest]" into buf (truncated to
 * `size`, always NUL-terminated when size > 0). Returns buf.
 */
const char *kiln__oci_ref_format(const kiln__oci_ref_t *r, char *buf,
                                 size_t size);

/* The host to connect to for `registry`: "registry-1.docker.io" for
 * docker.io and index.docker.io, otherwise `registry` itself. Static or
 * borrowed storage. */
const char *kiln__oci_registry_endpoint(const char *registry);

/* Options of a client. All pointers are borrowed for the client's life. */
typedef struct kiln__oci_reg_opts {
    /* Registries (host[:port], as in references) spoken to over plain HTTP.
     * Loopback registries always are. */
    const char *const *insecure;
    size_t n_insecure;
    /* Explicit credentials for every registry, or NULL: they win over the
     * Docker config file. */
    const char *username;
    const char *password;
    /* Directory holding config.json; NULL means $DOCKER_CONFIG, else
     * $HOME/.docker. */
    const char *docker_config_dir;
    /* Seconds to connect (0: 30) and without any byte moving (0: 60). */
    long connect_timeout;
    long idle_timeout;
    /* Polled during transfers: a nonzero return stops the transfer with
     * KILN_ECANCELED. NULL: never cancelled. */
    int (*cancelled)(void *ud);
    void *cancel_ud;
} kiln__oci_reg_opts_t;

typedef struct kiln__oci_reg kiln__oci_reg_t;

/*
 * Creates a client; `opts` may be NULL for the defaults. The caller frees
 * *out with kiln__oci_reg_free(). Errors: KILN_ENOMEM.
 */
int kiln__oci_reg_new(const kiln__oci_reg_opts_t *opts, kiln__oci_reg_t **out,
                      kiln_error_t *err);

/* Frees a client and wipes its cached tokens. NULL is a no-op. */
void kiln__oci_reg_free(kiln__oci_reg_t *r);

/* A manifest as fetched. Owned strings and body (kiln__oci_manifest_clear). */
typedef struct kiln__oci_manifest {
    char *media_type; /* Content-Type of the response */
    char digest[KILN_DIGEST_STRLEN + 1];
    uint64_t size;
    uint8_t *body; /* NULL after a HEAD */
    size_t len;
} kiln__oci_manifest_t;

/* Releases a manifest's memory and zeroes it. */
void kiln__oci_manifest_clear(kiln__oci_manifest_t *m);

/*
 * GET the manifest `ref` names (by digest when it has one, else by tag),
 * accepting OCI indexes and manifests and Docker manifest lists and schema2
 * manifests. The digest is computed from the body; when `ref` has a digest
 * the body must match it. Fills *out only on success.
 * Errors: KILN_ENOENT "image not found: REF", KILN_EBADMSG (digest
 * mismatch), KILN_E2BIG (over KILN_OCI_MANIFEST_MAX), KILN_EIO (transport,
 * auth, other statuses), KILN_ECANCELED, KILN_ENOMEM.
 */
int kiln__oci_manifest_get(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                           kiln__oci_manifest_t *out, kiln_error_t *err);

/*
 * HEAD the manifest: media type, digest (Docker-Content-Digest, or the
 * reference's digest) and size; out->body stays NULL. Errors as
 * kiln__oci_manifest_get(), and KILN_EIO when the registry names no digest
 * for a tag.
 */
int kiln__oci_manifest_head(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                            kiln__oci_manifest_t *out, kiln_error_t *err);

/*
 * PUT body[0..len) as the manifest `ref` names (its tag, else its digest)
 * with Content-Type `media_type`. Writes the body's digest into `digest`
 * when it is not NULL.
 */
int kiln__oci_manifest_put(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                           const char *media_type, const void *body, size_t len,
                           char digest[KILN_DIGEST_STRLEN + 1],
                           kiln_error_t *err);

/*
 * Receives a blob's bytes in order. Returns 0 to go on, or a negative
 * KILN_E* code (with `err` filled, if it likes) to stop the download.
 */
typedef int (*kiln__oci_write_fn)(void *ud, const void *data, size_t len,
                                  kiln_error_t *err);

/*
 * GET blob `digest` of `repository` on `registry`, following redirects,
 * streaming it to `write`. A dropped connection is resumed with a Range
 * request from the offset received (up to 3 times). The bytes are hashed:
 * a mismatch fails with KILN_EBADMSG naming both digests, after `write` saw
 * them all, so callers must not trust what they wrote until this returns 0.
 * *size (may be NULL) receives the byte count.
 * Errors: KILN_ENOENT (no such blob), KILN_EBADMSG, KILN_EIO,
 * KILN_ECANCELED, KILN_ENOMEM, or what `write` returned.
 */
int kiln__oci_blob_get(kiln__oci_reg_t *r, const char *registry,
                       const char *repository, const char *digest,
                       kiln__oci_write_fn write, void *ud, uint64_t *size,
                       kiln_error_t *err);

/*
 * HEAD a blob: *exists tells whether the registry has it, and *size (may be
 * NULL) its size when it does. A 404 is not an error.
 */
int kiln__oci_blob_head(kiln__oci_reg_t *r, const char *registry,
                        const char *repository, const char *digest,
                        bool *exists, uint64_t *size, kiln_error_t *err);

/*
 * Monolithic push: POST an upload, then PUT data[0..len) with ?digest=.
 * `digest` may be NULL (computed); when given it must be the data's digest.
 */
int kiln__oci_blob_push(kiln__oci_reg_t *r, const char *registry,
                        const char *repository, const char *digest,
                        const void *data, size_t len, kiln_error_t *err);

/*
 * Fills buf[0..cap) with the next bytes of a blob being pushed and sets
 * *got (0 at the end). Returns 0 or a negative KILN_E* code.
 */
typedef int (*kiln__oci_read_fn)(void *ud, void *buf, size_t cap, size_t *got,
                                 kiln_error_t *err);

/*
 * Chunked push: POST an upload, PATCH chunks of up to `chunk` bytes (0:
 * 8 MiB) read from `read` with Content-Range, then PUT ?digest=. The digest
 * is computed while reading; when `digest` is given it must match, or the
 * upload is not committed (KILN_EBADMSG). `out_digest` (may be NULL)
 * receives the digest.
 */
int kiln__oci_blob_push_chunked(kiln__oci_reg_t *r, const char *registry,
                                const char *repository, const char *digest,
                                kiln__oci_read_fn read, void *ud, size_t chunk,
                                char out_digest[KILN_DIGEST_STRLEN + 1],
                                kiln_error_t *err);

/*
 * Cross-repository mount: POST ?mount=DIGEST&from=FROM_REPO. *mounted is
 * true on 201; false when the registry offered an upload instead (202),
 * which is then cancelled so the caller pushes the blob itself.
 */
int kiln__oci_blob_mount(kiln__oci_reg_t *r, const char *registry,
                         const char *repository, const char *from_repository,
                         const char *digest, bool *mounted, kiln_error_t *err);

#endif
