/*
 * Unpacking an OCI layer blob into a kiln snapshot layer directory (the
 * OCI layer format on disk, see snap/snap.h): whiteouts `.wh.NAME` and
 * opaque markers `.wh..wh..opq` are kept as the empty files they are in
 * the tar, not applied.
 *
 * The blob may be an uncompressed tar or gzip / zstd compressed (told
 * apart by their magic bytes). While streaming, the SHA-256 of the raw
 * bytes (the blob digest) and of the decompressed tar (the diff_id) are
 * computed and reported.
 *
 * Hostile input is rejected with a message naming the entry:
 * - a leading "/" is stripped, as Docker does ("/etc/x" is "etc/x");
 *   a path with a ".." component is rejected, wherever it would lead;
 * - nothing is created through a symlink: every parent is opened with
 *   O_NOFOLLOW|O_DIRECTORY relative to its parent's descriptor, so a path
 *   crossing a symlink that an earlier entry placed is rejected (ELOOP /
 *   ENOTDIR), and new entries are made with mkdirat / openat(O_EXCL) /
 *   symlinkat / linkat relative to that descriptor;
 * - a hardlink's target is resolved the same way: inside the layer,
 *   through no symlink, an existing non-directory of this layer;
 * - character and block devices and fifos only when running as root
 *   (euid 0), else rejected; sockets and other types always;
 * - decompressed bytes past the limit (default 16 GiB) stop the unpack.
 * Ownership is applied only as root; xattrs user.* always, the others
 * only as root (without root they are skipped); file systems that do not
 * support xattrs (ENOTSUP) skip them, and symlinks get none. An empty
 * blob is an empty layer (as Go's tar reader sees it).
 *
 * An entry replacing an earlier one of the same path removes it first (a
 * non-empty directory is kept and merged when the new entry is a
 * directory, else it is an error). Directory modes and times are applied
 * after the last entry.
 *
 * On any failure, a digest mismatch included, the directory is left as it
 * is, partly filled: the caller discards it.
 */
#ifndef KILN_OCI_UNPACK_H
#define KILN_OCI_UNPACK_H

#include <stdint.h>

#include "oci/layout.h"

/* Default limit on decompressed bytes. */
#define KILN_OCI_UNPACK_MAX_BYTES (16ull * 1024 * 1024 * 1024)

typedef struct kiln_oci_unpack_opts {
    uint64_t max_bytes;         /* limit on the tar's size; 0: default */
    const char *expect_digest;  /* "sha256:..." of the blob, or NULL */
    const char *expect_diff_id; /* "sha256:..." of the tar, or NULL */
} kiln_oci_unpack_opts_t;

typedef struct kiln_oci_unpack_result {
    char digest[KILN_DIGEST_STRLEN + 1];  /* of the raw bytes read */
    char diff_id[KILN_DIGEST_STRLEN + 1]; /* of the decompressed tar */
    kiln_oci_comp_t comp;                 /* what the magic said */
    uint64_t blob_bytes;                  /* raw bytes read */
    uint64_t tar_bytes;                   /* decompressed bytes */
    uint64_t entries;                     /* tar entries applied */
} kiln_oci_unpack_result_t;

/*
 * Unpacks the blob read from `fd` (to its end; borrowed, not closed) into
 * the existing, empty directory `dir`. `opts` may be NULL; `res` may be
 * NULL, else it is filled on success and, as far as known, on failure.
 * Errors: KILN_EBADMSG (not a tar, corrupt compression, a digest mismatch:
 * the message names both digests), KILN_EINVAL (a hostile entry), -EPERM
 * (a device or fifo without root), KILN_E2BIG (the size limit), KILN_EIO,
 * KILN_ENOMEM.
 */
int kiln__oci_unpack_fd(int fd, const char *dir,
                        const kiln_oci_unpack_opts_t *opts,
                        kiln_oci_unpack_result_t *res, kiln_error_t *err);

/* As kiln__oci_unpack_fd(), reading the blob from data[0..len). */
int kiln__oci_unpack_mem(const void *data, size_t len, const char *dir,
                         const kiln_oci_unpack_opts_t *opts,
                         kiln_oci_unpack_result_t *res, kiln_error_t *err);

#endif
