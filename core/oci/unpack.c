/*
 * Layer blobs into snapshot layer directories. Two libarchive readers are
 * chained: `dec` (format raw, gzip and zstd filters) turns the blob into
 * the tar stream and `tar` (format tar only) reads entries from it. The
 * read callbacks hash both streams and enforce the size limit. Entries are
 * created relative to directory descriptors, never through a symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci/unpack_int.h"

/* Records an allocation failure in `err` and returns KILN_ENOMEM. */
static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* Next raw bytes of the blob: >0, 0 at its end, -1 on error. */
static ssize_t src_read(ux_t *x)
{
    ssize_t r;

    if (x->fd < 0) {
        size_t n =
            x->mem_len - x->mem_off < CHUNK ? x->mem_len - x->mem_off : CHUNK;
        memcpy(x->rbuf, x->mem + x->mem_off, n);
        x->mem_off += n;
        r = (ssize_t)n;
    } else {
        do {
            r = read(x->fd, x->rbuf, CHUNK);
        } while (r < 0 && errno == EINTR);
    }
    if (r < 0) {
        x->src_failed = true;
        x->src_errno = errno;
        return -1;
    }
    kiln__oci_sha_update(x->raw_sha, x->rbuf, (size_t)r);
    x->raw_bytes += (uint64_t)r;
    return r;
}

/* libarchive input of `dec`: the raw blob bytes. */
static la_ssize_t raw_read_cb(struct archive *a, void *ud, const void **buf)
{
    ux_t *x = ud;
    ssize_t r = src_read(x);

    if (r < 0) {
        archive_set_error(a, x->src_errno, "read: %s", strerror(x->src_errno));
        return -1;
    }
    *buf = x->rbuf;
    return r;
}

/* Next decompressed bytes into x->tbuf: >0, 0 at the end, -1 on error. */
static ssize_t tar_pull(ux_t *x)
{
    la_ssize_t r;

    if (x->dec_eof) {
        return 0;
    }
    r = archive_read_data(x->dec, x->tbuf, CHUNK);
    if (r < 0) {
        x->dec_failed = true;
        return -1;
    }
    if (r == 0) {
        x->dec_eof = true;
        return 0;
    }
    kiln__oci_sha_update(x->tar_sha, x->tbuf, (size_t)r);
    x->tar_bytes += (uint64_t)r;
    if (x->tar_bytes > x->max) {
        x->over_limit = true;
        return -1;
    }
    return r;
}

/* libarchive input of `tar`: the decompressed bytes of `dec`. */
static la_ssize_t tar_read_cb(struct archive *a, void *ud, const void **buf)
{
    ux_t *x = ud;
    ssize_t r = tar_pull(x);

    if (r < 0) {
        archive_set_error(a, EIO, "layer stream failed");
        return -1;
    }
    *buf = x->tbuf;
    return r;
}

/* The error for a failed read of the tar stream. */
int kiln__oci_ux_stream_error(ux_t *x, const char *what)
{
    if (x->over_limit) {
        return kiln__fail(x->err, KILN_E2BIG,
                          "layer decompresses to more than the limit of %llu "
                          "bytes",
                          (unsigned long long)x->max);
    }
    if (x->src_failed) {
        return kiln__fail(x->err, KILN_EIO, "read layer blob: %s",
                          strerror(x->src_errno));
    }
    if (x->dec_failed) {
        return kiln__fail(x->err, KILN_EBADMSG,
                          "layer blob: corrupt compressed data: %s",
                          archive_error_string(x->dec));
    }
    return kiln__fail(x->err, KILN_EBADMSG, "layer tar%s%s: %s",
                      what ? ": entry " : "", what ? what : "",
                      archive_error_string(x->tar));
}

/* Opens `dec` over the source and `tar` over `dec`; reports in *comp
 * what compression the magic bytes showed. */
static int open_readers(ux_t *x, kiln_oci_comp_t *comp)
{
    struct archive_entry *ae;
    int r;

    x->dec = archive_read_new();
    x->tar = archive_read_new();
    if (x->dec == NULL || x->tar == NULL) {
        return oom(x->err);
    }
    archive_read_support_filter_gzip(x->dec);
    archive_read_support_filter_zstd(x->dec);
    archive_read_support_format_raw(x->dec);
    r = archive_read_open(x->dec, x, NULL, raw_read_cb, NULL);
    if (r == ARCHIVE_OK) {
        r = archive_read_next_header(x->dec, &ae);
    }
    if (r != ARCHIVE_OK && !x->src_failed && x->raw_bytes == 0) {
        /* An empty blob is an empty layer, as Go's tar reader sees it. */
        x->dec_eof = true;
    } else if (x->src_failed) {
        return kiln__oci_ux_stream_error(x, NULL);
    } else if (r == ARCHIVE_EOF) {
        x->dec_eof = true;
    } else if (r != ARCHIVE_OK) {
        return kiln__fail(x->err, KILN_EBADMSG, "layer blob: %s",
                          archive_error_string(x->dec));
    }
    switch (archive_filter_code(x->dec, 0)) {
    case ARCHIVE_FILTER_GZIP:
        *comp = KILN_OCI_COMP_GZIP;
        break;
    case ARCHIVE_FILTER_ZSTD:
        *comp = KILN_OCI_COMP_ZSTD;
        break;
    default:
        *comp = KILN_OCI_COMP_NONE;
    }
    archive_read_support_format_tar(x->tar);
    archive_read_support_format_empty(x->tar);
    if (archive_read_open(x->tar, x, NULL, tar_read_cb, NULL) != ARCHIVE_OK) {
        return kiln__oci_ux_stream_error(x, NULL);
    }
    return 0;
}

/* Reads the rest of both streams, so that the digests cover everything. */
static int drain(ux_t *x)
{
    ssize_t r;

    while ((r = tar_pull(x)) > 0) {
    }
    if (r < 0) {
        return kiln__oci_ux_stream_error(x, NULL);
    }
    while ((r = src_read(x)) > 0) {
    }
    return r < 0 ? kiln__oci_ux_stream_error(x, NULL) : 0;
}

/* KILN_EBADMSG naming both digests when `want` is set and differs. */
static int check_digest(ux_t *x, const char *what, const char *want,
                        const char *got)
{
    if (want != NULL && strcmp(want, got) != 0) {
        return kiln__fail(x->err, KILN_EBADMSG,
                          "layer %s mismatch: expected %s, got %s", what, want,
                          got);
    }
    return 0;
}

/* Applies every entry, then the directories, drains the streams and
 * checks the digests. */
static int run(ux_t *x, const kiln_oci_unpack_opts_t *opts,
               kiln_oci_unpack_result_t *res)
{
    struct archive_entry *ae;
    int r, rc = open_readers(x, &res->comp);

    while (rc == 0 &&
           (r = archive_read_next_header(x->tar, &ae)) != ARCHIVE_EOF) {
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = kiln__oci_ux_stream_error(x, NULL);
            break;
        }
        rc = kiln__oci_ux_apply_entry(x, ae);
        x->entries++;
    }
    if (rc == 0) {
        rc = kiln__oci_ux_finish_dirs(x);
    }
    if (rc == 0) {
        rc = drain(x);
    }
    res->blob_bytes = x->raw_bytes;
    res->tar_bytes = x->tar_bytes;
    res->entries = x->entries;
    if (rc == 0) {
        EVP_MD_CTX *a = x->raw_sha, *b = x->tar_sha;
        x->raw_sha = x->tar_sha = NULL;
        rc = kiln__oci_sha_final(a, res->digest);
        if (kiln__oci_sha_final(b, res->diff_id) < 0 || rc < 0) {
            rc = oom(x->err);
        }
    }
    if (rc == 0) {
        rc = check_digest(x, "digest", opts->expect_digest, res->digest);
    }
    if (rc == 0) {
        rc = check_digest(x, "diff_id", opts->expect_diff_id, res->diff_id);
    }
    return rc;
}

/* Sets up `x` for `dir`, runs, and releases everything but the
 * directory contents. */
static int unpack(ux_t *x, const char *dir, const kiln_oci_unpack_opts_t *opts,
                  kiln_oci_unpack_result_t *res, kiln_error_t *err)
{
    static const kiln_oci_unpack_opts_t defaults = {0, NULL, NULL};
    kiln_oci_unpack_result_t local;
    int rc = 0;

    opts = opts != NULL ? opts : &defaults;
    res = res != NULL ? res : &local;
    memset(res, 0, sizeof(*res));
    x->err = err;
    x->max = opts->max_bytes ? opts->max_bytes : KILN_OCI_UNPACK_MAX_BYTES;
    x->is_root = geteuid() == 0;
    x->raw_sha = kiln__oci_sha_new();
    x->tar_sha = kiln__oci_sha_new();
    x->rbuf = malloc(CHUNK);
    x->tbuf = malloc(CHUNK);
    x->dbuf = malloc(CHUNK);
    x->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!x->raw_sha || !x->tar_sha || !x->rbuf || !x->tbuf || !x->dbuf) {
        rc = oom(err);
    } else if (x->root_fd < 0) {
        rc = kiln__fail(err, errno == ENOENT ? KILN_ENOENT : KILN_EIO,
                        "open %s: %s", dir, strerror(errno));
    }
    if (rc == 0) {
        rc = run(x, opts, res);
    }
    if (x->tar != NULL) {
        archive_read_free(x->tar);
    }
    if (x->dec != NULL) {
        archive_read_free(x->dec);
    }
    for (size_t i = 0; i < x->n_dirs; i++) {
        free(x->dirs[i].path);
    }
    free(x->dirs);
    if (x->root_fd >= 0) {
        close(x->root_fd);
    }
    EVP_MD_CTX_free(x->raw_sha);
    EVP_MD_CTX_free(x->tar_sha);
    free(x->rbuf);
    free(x->tbuf);
    free(x->dbuf);
    return rc;
}

int kiln__oci_unpack_fd(int fd, const char *dir,
                        const kiln_oci_unpack_opts_t *opts,
                        kiln_oci_unpack_result_t *res, kiln_error_t *err)
{
    ux_t x = {0};

    x.fd = fd;
    x.root_fd = -1;
    return unpack(&x, dir, opts, res, err);
}

int kiln__oci_unpack_mem(const void *data, size_t len, const char *dir,
                         const kiln_oci_unpack_opts_t *opts,
                         kiln_oci_unpack_result_t *res, kiln_error_t *err)
{
    ux_t x = {0};

    x.fd = -1;
    x.mem = data;
    x.mem_len = len;
    x.root_fd = -1;
    return unpack(&x, dir, opts, res, err);
}
