/*
 * An exec op's mounts as kiln prepares them for the helper, and reads
 * their outputs back afterwards (mounts.c). Private to core/exec.
 */
#ifndef KILN_EXEC_MOUNTS_H
#define KILN_EXEC_MOUNTS_H

#include "exec/exec_int.h"

enum mnt_kind {
    MNT_OVERLAY, /* input layers + upper (the output), or read-only */
    MNT_COPY,    /* copy fallback: a full copy, diffed afterwards */
    MNT_PLAIN,   /* a directory of our own bound in (scratch) */
    MNT_CACHE,
    MNT_OTHER, /* tmpfs, secret, SSH socket: nothing comes back */
    MNT_SKIP,  /* an optional secret or socket that was not given */
};

typedef struct kiln__exec_mnt {
    const Pb__Mount *pm;
    enum mnt_kind kind;
    const kiln_snap_view_t *view; /* the input, NULL for scratch */
    kiln__exec_mount_t spec;      /* strings owned here */
    char upper[4096];             /* MNT_OVERLAY/COPY: the new layer;
                                     MNT_PLAIN: the directory */
    char full[4096];              /* MNT_COPY: the copy */
    bool empty;                   /* afterwards: nothing changed */
    kiln__exec_cache_t cache;
} kiln__exec_mnt_t;

typedef struct kiln__exec_ctx {
    const kiln__exec_env_t *env;
    const Pb__ExecOp *op;
    kiln__exec_mnt_t *m; /* sorted: the root first, then by destination */
    size_t n;
    bool copy_mode;
    kiln__exec_stub_t *stubs;
    size_t n_stubs;
} kiln__exec_ctx_t;

/* Fills c->m from the op's mounts (sorted). Errors name the mount. */
int kiln__exec_mounts_prepare(kiln__exec_ctx_t *c, kiln_error_t *err);

/* After the command: turns every mount with an output into its layer. */
int kiln__exec_mounts_collect(kiln__exec_ctx_t *c, kiln_error_t *err);

/* Releases cache locks and what c->m holds. */
void kiln__exec_mounts_release(kiln__exec_ctx_t *c);

/* A new directory from the op's new_layer (removed by the caller). */
int kiln__exec_tmpdir(const kiln__exec_ctx_t *c, char path[4096],
                      kiln_error_t *err);

/* Looks `id` up in a "ID=VALUE" list; NULL if absent. */
const char *kiln__exec_lookup(const char *const *list, const char *id);

#endif
