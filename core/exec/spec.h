/*
 * What kiln tells its exec helper (kiln-run) about one process: the
 * command, its environment and every mount, as a byte string sent over a
 * socket (never a file: secrets travel in it). Shared by libkiln, which
 * encodes, and the helper, which decodes; private to core/.
 *
 * Wire form: records, each a tag byte, a field count (u32, little
 * endian) and that many fields, each a length (u32) and its bytes. The
 * decoder checks every length against what is left and every count
 * against the record's kind, so any byte string either decodes into a
 * complete spec or is refused with a message saying where.
 */
#ifndef KILN_EXEC_SPEC_H
#define KILN_EXEC_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Record tags. */
enum kiln__exec_tag {
    KILN__EXEC_ARG = 'A',      /* one argv element */
    KILN__EXEC_ENV = 'E',      /* one "KEY=VALUE" */
    KILN__EXEC_CWD = 'C',      /* working directory */
    KILN__EXEC_USER = 'U',     /* "uid", "uid:gid", "name", "name:group" */
    KILN__EXEC_HOSTNAME = 'H', /* UTS host name */
    KILN__EXEC_HOSTS = 'h',    /* /etc/hosts content */
    KILN__EXEC_RESOLV = 'r',   /* /etc/resolv.conf content */
    KILN__EXEC_NET = 'N',      /* "host" or "none" */
    KILN__EXEC_ULIMIT = 'L',   /* name, soft, hard (decimal) */
    KILN__EXEC_MOUNT = 'M',    /* see kiln__exec_mount_t */
    KILN__EXEC_STAGING = 'R',  /* an empty directory for the helper */
};

enum kiln__exec_mount_type {
    /* An overlay: lowerdirs (top first, ':'-separated, escaped as overlayfs
     * wants), upper and work directories ("" for a read-only overlay). */
    KILN__EXEC_MNT_OVERLAY = 1,
    /* A bind mount of a host directory or file. */
    KILN__EXEC_MNT_BIND = 2,
    KILN__EXEC_MNT_TMPFS = 3,
    /* A file made from `data` on the helper's private tmpfs. */
    KILN__EXEC_MNT_SECRET = 4,
    /* A socket of the helper's own (uid, gid, mode) relayed to the host
     * socket `src`: SSH agent forwarding. */
    KILN__EXEC_MNT_SOCKET = 5,
};

/*
 * One mount, in order: the root ("/") first. Fields by type:
 * OVERLAY src (lowerdirs), upper, work, selector; BIND src, selector;
 * TMPFS size; SECRET data, uid, gid, mode; SOCKET src, uid, gid, mode.
 * `selector` (a path inside the mounted tree, "" for all) is what appears at
 * dest.
 */
typedef struct kiln__exec_mount {
    int type;
    char *dest;
    char *src;
    char *upper;
    char *work;
    char *selector;
    bool readonly;
    bool stub_parents; /* remove created parent directories afterwards */
    uint64_t size;
    uint32_t uid, gid, mode;
    uint8_t *data;
    size_t len;
} kiln__exec_mount_t;

typedef struct kiln__exec_ulimit {
    char *name;
    uint64_t soft, hard;
} kiln__exec_ulimit_t;

typedef struct kiln__exec_spec {
    char **args;
    size_t n_args;
    char **env;
    size_t n_env;
    char *cwd;
    char *user;
    char *hostname;
    char *hosts;
    char *resolv;
    char *staging;
    bool net_none;
    kiln__exec_mount_t *mounts;
    size_t n_mounts;
    kiln__exec_ulimit_t *ulimits;
    size_t n_ulimits;
} kiln__exec_spec_t;

/* One record as read: fields borrowed from the buffer. */
#define KILN__EXEC_REC_MAX 16
typedef struct kiln__exec_rec {
    int tag;
    size_t n;
    const uint8_t *f[KILN__EXEC_REC_MAX];
    size_t len[KILN__EXEC_REC_MAX];
} kiln__exec_rec_t;

/* Appends a record of `n` fields; lens NULL: the fields are C strings. */
void kiln__exec_rec(kiln__buf_t *b, int tag, size_t n,
                    const void *const *fields, const size_t *lens);

/* Reads the record at *off of data[0..len) (*off < len) and moves *off
 * past it. KILN_EBADMSG when it is truncated or has too many fields. */
int kiln__exec_rec_next(const uint8_t *data, size_t len, size_t *off,
                        kiln__exec_rec_t *rec, kiln_error_t *err);

/* Appends the spec's records to `b` (check kiln__buf_ok()). */
void kiln__exec_spec_encode(const kiln__exec_spec_t *s, kiln__buf_t *b);

/*
 * Decodes data[0..len) into *s (zeroed first; release with
 * kiln__exec_spec_clear() also on failure). Errors: KILN_EBADMSG (a
 * truncated or unknown record, a wrong field count, a bad number, an
 * argument list that is empty or a NUL inside a string; the message gives
 * the offset), KILN_ENOMEM.
 */
int kiln__exec_spec_decode(const uint8_t *data, size_t len,
                           kiln__exec_spec_t *s, kiln_error_t *err);

/* Frees what a decoded (or hand-filled, all heap) spec holds. Secret bytes
 * are overwritten before they are freed. */
void kiln__exec_spec_clear(kiln__exec_spec_t *s);

#endif
