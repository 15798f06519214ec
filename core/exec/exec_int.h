/*
 * The parts of core/exec: running the helper (spawn.c), reading an
 * overlay's upper directory back into a layer (upper.c), cache mounts
 * (cachemount.c). Private to core/exec.
 */
#ifndef KILN_EXEC_EXEC_INT_H
#define KILN_EXEC_EXEC_INT_H

#include "exec/exec.h"
#include "exec/spec.h"

#define KILN__EXEC_TAIL_LINES 20
#define KILN__EXEC_TAIL_WIDTH 120

/* What one run of the helper gave. */
typedef struct kiln__exec_proc {
    int64_t exit_status;
    int term_signal;
    bool cancelled;     /* killed because the build was canceled */
    kiln__buf_t status; /* the helper's status records */
    char tail[KILN__EXEC_TAIL_LINES][KILN__EXEC_TAIL_WIDTH];
    size_t n_tail; /* lines seen; tail holds the last 20 */
} kiln__exec_proc_t;

/*
 * Spawns kiln-run, sends it spec[0..len), streams its output to
 * env->output until it exits (killing it when env->fenv->cancelled says
 * so), and fills *p (free p->status with kiln__buf_free()). Blocks.
 * Errors: the helper cannot be started (its path in the message).
 */
int kiln__exec_spawn(const kiln__exec_env_t *env, const uint8_t *spec,
                     size_t len, kiln__exec_proc_t *p, kiln_error_t *err);

/* The last lines of output, oldest first, each "  line\n", in buf. */
void kiln__exec_tail(const kiln__exec_proc_t *p, char *buf, size_t size);

/* True when a layer directory holds whiteouts or opaque markers (which
 * overlayfs would show as files); cached per directory, as layers never
 * change. Errors read as true (the caller then flattens, which is safe). */
bool kiln__exec_layer_has_whiteouts(const char *dir);

/*
 * The directory overlayfs should get for layer `dir` (into out): the layer
 * itself, or for a layer with whiteouts its twin in the store's tmp area
 * (lower.c; made once, then reused). KILN_ENOTSUP without root (no twin
 * can be made: flatten instead), or an error making it.
 */
int kiln__exec_lower_dir(kiln__store_t *store, const char *dir, char *out,
                         size_t size);

/* A stub the helper made: container path, and whether it is a parent
 * directory that may go too. */
typedef struct kiln__exec_stub {
    char *path;
    bool parent;
} kiln__exec_stub_t;

/*
 * Turns an overlay upper directory into a layer over `lower` (the view
 * that was its lower dirs): overlay whiteouts become `.wh.` files, opaque
 * directories get `.wh..wh..opq`, overlay xattrs go; the stubs below
 * `prefix` (the mount's destination) are removed, and directories that
 * were only copied up, unchanged, go too. *empty is set when nothing is
 * left (the root's metadata unchanged too). Errors: KILN_EINVAL for a name
 * the layer format cannot hold (".wh.*" made by the command), KILN_EIO.
 */
int kiln__exec_upper_to_layer(const char *upper, const kiln_snap_view_t *lower,
                              const kiln__exec_stub_t *stubs, size_t n_stubs,
                              const char *prefix, bool *empty,
                              kiln_error_t *err);

/* Removes the stubs below `prefix` from a plain directory (a bind-mounted
 * scratch output or the copy fallback's root). */
int kiln__exec_remove_stubs(const char *dir, const kiln__exec_stub_t *stubs,
                            size_t n_stubs, const char *prefix,
                            kiln_error_t *err);

/* Gives directory `dir` the mode, owner and times of `lower`'s root (0755
 * root:root for an empty view), as a layer's root must carry them. */
int kiln__exec_copy_root_meta(const kiln_snap_view_t *lower, const char *dir,
                              kiln_error_t *err);

/* A cache mount held for one exec. */
typedef struct kiln__exec_cache {
    char *dir; /* the directory to mount */
    int lock_fd;
    bool fresh; /* just created: seed it */
} kiln__exec_cache_t;

/*
 * Takes cache mount `id` with `sharing` (Pb__CacheSharingOpt): SHARED
 * mounts the one directory in every concurrent exec, LOCKED waits until
 * no other exec holds it, PRIVATE takes a directory no other exec holds
 * (making a new one if all are taken). Waiting stops with KILN_ECANCELED
 * when `cancelled` says so. Release with kiln__exec_cache_release().
 */
int kiln__exec_cache_acquire(kiln__store_t *store, const char *id, int sharing,
                             bool (*cancelled)(void *), void *ud,
                             kiln__exec_cache_t *c, kiln_error_t *err);
void kiln__exec_cache_release(kiln__store_t *store, const char *id,
                              kiln__exec_cache_t *c);

#endif
