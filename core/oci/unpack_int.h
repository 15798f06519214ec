/*
 * Shared by unpack.c (the streams) and unpack_entry.c (the entries): the
 * state of one unpack.
 */
#ifndef KILN_OCI_UNPACK_INT_H
#define KILN_OCI_UNPACK_INT_H

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "oci/layout_int.h"
#include "oci/unpack.h"

#define CHUNK (64 * 1024)

/* A directory whose mode and times are set after the last entry. */
typedef struct dirrec {
    char *path; /* "" for the layer root */
    size_t seq;
    mode_t mode;
    struct timespec times[2];
} dirrec_t;

typedef struct ux {
    int fd; /* source, or -1 for memory */
    const uint8_t *mem;
    size_t mem_len, mem_off;
    EVP_MD_CTX *raw_sha, *tar_sha;
    uint64_t raw_bytes, tar_bytes, max;
    struct archive *dec, *tar;
    bool dec_eof, over_limit, src_failed, dec_failed;
    int src_errno;
    uint8_t *rbuf, *tbuf, *dbuf; /* raw, tar stream, entry data */
    kiln_error_t *err;
    int root_fd;
    bool is_root;
    const char *name; /* current entry, for messages */
    dirrec_t *dirs;
    size_t n_dirs, cap_dirs;
    uint64_t entries;
} ux_t;

/* The error for a failed read of the tar stream (limit, source, corrupt
 * compression or tar); `what` names the entry being read, or NULL. */
int kiln__oci_ux_stream_error(ux_t *x, const char *what);

/* Applies one tar entry to the layer directory. */
int kiln__oci_ux_apply_entry(ux_t *x, struct archive_entry *ae);

/* Sets the recorded directories' modes and times, after the last entry. */
int kiln__oci_ux_finish_dirs(ux_t *x);

#endif
