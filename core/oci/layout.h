/*
 * OCI image layouts (image-spec v1.1 "image-layout.md"): writing layer
 * blobs, image configs, manifests and indexes into a layout directory, and
 * reading them back with every blob checked against its digest. Platform
 * selection from an index follows containerd's matching rules.
 *
 * A layout directory holds `oci-layout`, `index.json` and the blobs under
 * `blobs/sha256/<hex>`. Every file is written under a temporary name in the
 * same directory and renamed into place, so a reader never sees a partial
 * blob or index. Only sha256 digests are produced and accepted.
 *
 * Functions return 0 or a negative KILN_E* code with a message in `err`
 * (which may be NULL): KILN_EINVAL / KILN_EBADMSG for malformed JSON or a
 * digest mismatch, KILN_E2BIG past a size limit, KILN_ENOENT for a missing
 * ref or blob, KILN_EIO for file system errors, KILN_ENOMEM. Strings in the
 * structs below are malloc'ed and owned by the struct; each struct has a
 * _clear function that frees them (a zeroed struct is valid to clear).
 * Nothing here keeps global state: any function may be called from any
 * thread, on distinct objects.
 */
#ifndef KILN_OCI_LAYOUT_H
#define KILN_OCI_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Largest manifest, index or config blob (and index.json) read, in bytes. */
#define KILN_OCI_JSON_MAX (4u * 1024 * 1024)

/* Deepest chain of indexes followed from index.json to a manifest. */
#define KILN_OCI_MAX_NESTING 8

/* Media types. */
#define KILN_OCI_MT_INDEX     "application/vnd.oci.image.index.v1+json"
#define KILN_OCI_MT_MANIFEST  "application/vnd.oci.image.manifest.v1+json"
#define KILN_OCI_MT_CONFIG    "application/vnd.oci.image.config.v1+json"
#define KILN_OCI_MT_LAYER     "application/vnd.oci.image.layer.v1.tar"
#define KILN_OCI_MT_LAYER_GZ  "application/vnd.oci.image.layer.v1.tar+gzip"
#define KILN_OCI_MT_LAYER_ZST "application/vnd.oci.image.layer.v1.tar+zstd"
#define KILN_DOCKER_MT_MANIFEST                                                \
    "application/vnd.docker.distribution.manifest.v2+json"
#define KILN_DOCKER_MT_LIST                                                    \
    "application/vnd.docker.distribution.manifest.list.v2+json"
#define KILN_DOCKER_MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define KILN_DOCKER_MT_LAYER_GZ                                                \
    "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* The annotation naming a manifest in index.json. */
#define KILN_OCI_REF_NAME "org.opencontainers.image.ref.name"

/* Layer compression. */
typedef enum kiln_oci_comp {
    KILN_OCI_COMP_NONE = 0,
    KILN_OCI_COMP_GZIP,
    KILN_OCI_COMP_ZSTD,
} kiln_oci_comp_t;

/* A platform as in image-spec's index: os, architecture, optional variant
 * (empty strings when absent). */
typedef struct kiln_oci_platform {
    char os[32];
    char arch[32];
    char variant[16];
} kiln_oci_platform_t;

/*
 * A content descriptor. `platform` is meaningful in index entries only
 * (has_platform says whether the entry carried one); `ref_name` is the
 * org.opencontainers.image.ref.name annotation, or NULL.
 */
typedef struct kiln_oci_desc {
    char *media_type;
    char digest[KILN_DIGEST_STRLEN + 1];
    int64_t size;
    bool has_platform;
    kiln_oci_platform_t platform;
    char *ref_name;
} kiln_oci_desc_t;

/* A parsed index (OCI index or Docker manifest list). */
typedef struct kiln_oci_index {
    char *media_type; /* the blob's mediaType field, or NULL */
    kiln_oci_desc_t *manifests;
    size_t n_manifests;
} kiln_oci_index_t;

/* A parsed image manifest (OCI or Docker schema2). */
typedef struct kiln_oci_image_manifest {
    char *media_type; /* the blob's mediaType field, or NULL */
    kiln_oci_desc_t config;
    kiln_oci_desc_t *layers;
    size_t n_layers;
} kiln_oci_image_manifest_t;

/* A string list; `v == NULL` with n == 0 means "absent" (not written). */
typedef struct kiln_oci_strv {
    char **v;
    size_t n;
} kiln_oci_strv_t;

/* One history entry of an image config. */
typedef struct kiln_oci_history {
    char *created; /* RFC 3339, or NULL */
    char *created_by;
    char *comment;
    bool empty_layer;
} kiln_oci_history_t;

/*
 * An image config: the fields kiln reads and writes. Labels are key/value
 * pairs, `labels.v[2i]` the key and `labels.v[2i+1]` its value (written in
 * key order). `cmd` / `entrypoint` with v == NULL are absent; with v != NULL
 * and n == 0 they are an empty list.
 */
typedef struct kiln_oci_config {
    char *architecture;
    char *os;
    char *variant;
    char *created;
    kiln_oci_strv_t env;
    kiln_oci_strv_t cmd;
    kiln_oci_strv_t entrypoint;
    char *working_dir;
    char *user;
    kiln_oci_strv_t labels;
    kiln_oci_strv_t diff_ids;
    kiln_oci_history_t *history;
    size_t n_history;
} kiln_oci_config_t;

void kiln__oci_desc_clear(kiln_oci_desc_t *d);
void kiln__oci_index_clear(kiln_oci_index_t *ix);
void kiln__oci_image_manifest_clear(kiln_oci_image_manifest_t *m);
void kiln__oci_config_clear(kiln_oci_config_t *c);

/* Deep copy of `src` into `dst` (which is overwritten, not cleared). */
int kiln__oci_desc_copy(kiln_oci_desc_t *dst, const kiln_oci_desc_t *src,
                        kiln_error_t *err);

/* True if `mt` is an index / a manifest media type (OCI or Docker). */
bool kiln__oci_mt_is_index(const char *mt);
bool kiln__oci_mt_is_manifest(const char *mt);

/*
 * JSON parsing (json.c). `data[0..len)` is borrowed; `len` above
 * KILN_OCI_JSON_MAX is KILN_E2BIG. Unknown fields are ignored; a field of
 * the wrong type, a descriptor without a valid sha256 digest or with a
 * negative size is KILN_EBADMSG naming the field. On failure *out is left
 * cleared.
 */
int kiln__oci_index_parse(const void *data, size_t len, kiln_oci_index_t *out,
                          kiln_error_t *err);
int kiln__oci_image_manifest_parse(const void *data, size_t len,
                                   kiln_oci_image_manifest_t *out,
                                   kiln_error_t *err);
int kiln__oci_config_parse(const void *data, size_t len, kiln_oci_config_t *out,
                           kiln_error_t *err);

/*
 * JSON writing (json.c): compact, keys sorted, into a malloc'ed buffer the
 * caller frees (*len excludes the NUL). The manifest is an OCI image
 * manifest (schemaVersion 2) with `config` and `layers`; the index an OCI
 * index of `manifests` (their platform and ref_name written when set).
 */
int kiln__oci_config_json(const kiln_oci_config_t *c, char **out, size_t *len,
                          kiln_error_t *err);
int kiln__oci_image_manifest_json(const kiln_oci_desc_t *config,
                                  const kiln_oci_desc_t *layers,
                                  size_t n_layers, char **out, size_t *len,
                                  kiln_error_t *err);
int kiln__oci_index_json(const kiln_oci_desc_t *manifests, size_t n, char **out,
                         size_t *len, kiln_error_t *err);

/*
 * Writing a layout (layout.c, pack.c).
 */

/* Creates `dir` if needed, its blobs/sha256/ and `oci-layout`. An existing
 * layout is kept (its blobs stay). */
int kiln__oci_layout_init(const char *dir, kiln_error_t *err);

/* Stores `data` as a blob of layout `dir` and fills `out` (media type
 * copied from `media_type`, digest, size). Free with kiln__oci_desc_clear. */
int kiln__oci_write_blob(const char *dir, const char *media_type,
                         const void *data, size_t len, kiln_oci_desc_t *out,
                         kiln_error_t *err);

/*
 * Packs the tree under `src` (not included itself) as a layer blob of
 * layout `dir`: a POSIX pax tar, entries in byte order of their paths,
 * with modes, owners (numeric only), mtimes, symlinks, hardlinks (files
 * sharing an inode: the first in order is stored, the others link to it),
 * xattrs, char/block devices and fifos; sockets are skipped; `.wh.*` files
 * are stored as they are. Compressed as `comp` (gzip without a timestamp,
 * so equal trees give equal blobs). Fills `out` (layer media type, digest,
 * size) and `diff_id` (sha256 of the uncompressed tar), both computed while
 * writing. Symlinks under `src` are never followed.
 */
int kiln__oci_write_layer(const char *dir, const char *src,
                          kiln_oci_comp_t comp, kiln_oci_desc_t *out,
                          char diff_id[KILN_DIGEST_STRLEN + 1],
                          kiln_error_t *err);

/* As kiln__oci_write_layer(), at compression level `level` (gzip 1-9,
 * zstd 1-22; 0: the compressor's default). */
int kiln__oci_write_layer_level(const char *dir, const char *src,
                                kiln_oci_comp_t comp, int level,
                                kiln_oci_desc_t *out,
                                char diff_id[KILN_DIGEST_STRLEN + 1],
                                kiln_error_t *err);

/* Writes the config / manifest / index JSON as blobs (see above). */
int kiln__oci_write_config(const char *dir, const kiln_oci_config_t *c,
                           kiln_oci_desc_t *out, kiln_error_t *err);
int kiln__oci_write_manifest(const char *dir, const kiln_oci_desc_t *config,
                             const kiln_oci_desc_t *layers, size_t n_layers,
                             kiln_oci_desc_t *out, kiln_error_t *err);
int kiln__oci_write_index_blob(const char *dir,
                               const kiln_oci_desc_t *manifests, size_t n,
                               kiln_oci_desc_t *out, kiln_error_t *err);

/* Replaces `dir`/index.json with an index of `manifests` (each ref_name
 * becomes its org.opencontainers.image.ref.name annotation). */
int kiln__oci_write_index_json(const char *dir,
                               const kiln_oci_desc_t *manifests, size_t n,
                               kiln_error_t *err);

/*
 * Reading a layout (layout.c).
 */
typedef struct kiln_oci_layout kiln_oci_layout_t;

/* Opens the layout at `dir`: checks `oci-layout` (imageLayoutVersion
 * "1.0.0") and parses index.json. Free with kiln__oci_layout_free (NULL
 * ok). */
int kiln__oci_layout_open(const char *dir, kiln_oci_layout_t **out,
                          kiln_error_t *err);
void kiln__oci_layout_free(kiln_oci_layout_t *l);

/* The layout's index.json, owned by the layout. */
const kiln_oci_index_t *kiln__oci_layout_index(const kiln_oci_layout_t *l);

/*
 * Reads blob `digest` (at most `limit` bytes) into a malloc'ed buffer the
 * caller frees, and checks it: a digest mismatch is KILN_EBADMSG with a
 * message naming the blob and both digests; `size` >= 0 must match too.
 */
int kiln__oci_layout_read_blob(const kiln_oci_layout_t *l, const char *digest,
                               int64_t size, size_t limit, uint8_t **data,
                               size_t *len, kiln_error_t *err);

/* Opens blob `digest` for reading (O_RDONLY|O_NOFOLLOW|O_CLOEXEC); the
 * caller closes *fd and verifies the content (kiln__oci_unpack does). */
int kiln__oci_layout_open_blob(const kiln_oci_layout_t *l, const char *digest,
                               int *fd, kiln_error_t *err);

/*
 * Finds the image `ref` names: a ref name annotation in index.json, or a
 * digest (of an entry of index.json, or of any manifest or index blob).
 * Indexes met on the way (nested ones too, up to KILN_OCI_MAX_NESTING) are
 * followed by choosing the entry for `platform` (the host's when NULL).
 * Fills *manifest (parsed) and, if not NULL, `desc` with the chosen
 * manifest's descriptor (clear it after). Errors: KILN_ENOENT (no such
 * ref, or no manifest for the platform), the read and parse errors.
 */
int kiln__oci_layout_find(const kiln_oci_layout_t *l, const char *ref,
                          const kiln_oci_platform_t *platform,
                          kiln_oci_image_manifest_t *manifest,
                          kiln_oci_desc_t *desc, kiln_error_t *err);

/* Reads and parses the config blob a manifest names. */
int kiln__oci_layout_read_config(const kiln_oci_layout_t *l,
                                 const kiln_oci_image_manifest_t *m,
                                 kiln_oci_config_t *out, kiln_error_t *err);

/*
 * Platforms (platform.c).
 */

/* The host's platform from uname(): os "linux"; x86_64 is amd64, aarch64
 * arm64/v8, armv5..armv8 arm/vN, i386..i686 386, others as uname says. */
void kiln__oci_platform_host(kiln_oci_platform_t *p);

/* Parses "os/arch[/variant]"; normalises aliases (x86_64 → amd64, aarch64
 * → arm64, armhf → arm/v7, armel → arm/v6). KILN_EINVAL if malformed. */
int kiln__oci_platform_parse(const char *s, kiln_oci_platform_t *p,
                             kiln_error_t *err);

/* Writes "os/arch[/variant]" into buf (at least 82 bytes). */
void kiln__oci_platform_format(const kiln_oci_platform_t *p, char *buf,
                               size_t size);

/*
 * Chooses the entry of `manifests[0..n)` for `want`, as containerd's
 * platforms.Only(): os and architecture must be equal; arm64/v8 accepts
 * arm64 then arm/v8, v7, v6, v5; arm/vN accepts vN down to v5; amd64/vN
 * accepts vN down to v1 (v1 is amd64 without variant). An entry with no
 * variant matches any variant of its architecture, after every entry whose
 * variant matches exactly. Entries without a platform never match. Sets
 * *chosen to the index; KILN_ENOENT when nothing matches, with the message
 * "no manifest for linux/arm64/v8 in NAME (has: linux/amd64, linux/arm/v7)".
 */
int kiln__oci_platform_select(const kiln_oci_desc_t *manifests, size_t n,
                              const kiln_oci_platform_t *want, const char *name,
                              size_t *chosen, kiln_error_t *err);

#endif
