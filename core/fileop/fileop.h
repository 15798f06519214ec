/*
 * FileOp, MergeOp and DiffOp over layered snapshots (snap/snap.h), with
 * BuildKit's semantics (solver/llbsolver/ops/{file,merge,diff}.go,
 * solver/llbsolver/file/backend.go, tonistiigi/fsutil copy).
 *
 * An op reads the snapshots of its inputs through views (one per
 * Op.inputs[i]) and produces each output as a stack: the whole stack of one
 * input (or scratch) at the bottom, then an ordered list of layers on top.
 * New layers are written into empty directories the caller hands out through
 * a callback (for instance directories under the store's tmp/); nothing is
 * ever written elsewhere, and every path an action names is resolved inside
 * its snapshot, so symlinks that point out (/etc/passwd, ../../x) stay in.
 *
 * FileOp layers. Actions that simply follow each other (action j based on
 * action j-1, and nothing else reads j-1's intermediate state) share one
 * layer, written by one writer. An intermediate result that is read again
 * (as a copy's secondaryInput, as the input of a chown-by-name, as the base
 * of two actions, or because it is an output) ends its layer there, so that
 * its state is an immutable stack of its own. Only actions an output depends
 * on are run, as BuildKit does. A layer in which an action changed nothing is
 * dropped.
 *
 * MergeOp. The output is the concatenation of the inputs' stacks, in input
 * order, sharing their layers: nothing is copied. As BuildKit (whose MergeOp
 * "looks the same as if you had taken the layers of the snapshots backing
 * each input and applied them all on top of one another"), deletions in a
 * later input (its whiteouts and opaque directories) do apply to what the
 * earlier inputs brought, and an input's layers are applied again even if an
 * earlier input already had them.
 *
 * DiffOp. Lower scratch: the output is upper. Upper scratch and lower not:
 * the layer that deletes everything lower has. Otherwise, when lower's stack
 * is a prefix of upper's (the same layer directories), the output is the rest
 * of upper's layers, shared (lower == upper gives an empty output); else one
 * new layer computed with kiln__snap_diff().
 *
 * Errors: 0 or a negative KILN_E* code with a message in `err` that names
 * the action (by index) and the path at fault, e.g.
 * "action 2: copy /src/missing to /dst: /src/missing: no such file or
 * directory". On failure, the directories handed out by new_layer may hold
 * partial layers: the caller removes them all.
 *
 * Threads: the functions block (file I/O) and are meant for a worker
 * thread; they share nothing between calls.
 */
#ifndef KILN_FILEOP_FILEOP_H
#define KILN_FILEOP_FILEOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "ops.pb-c.h"
#include "snap/snap.h"

/*
 * Hands out a new, empty directory for a layer: writes its path (at most
 * `size` bytes with the NUL) into `path`. Returns 0 or a KILN_E* code with a
 * message in err. The caller keeps track of every directory it handed out.
 */
typedef int (*kiln_fileop_layer_fn)(void *ud, char *path, size_t size,
                                    kiln_error_t *err);

/* Polled between actions and entries of long copies; true stops the op with
 * KILN_ECANCELED. */
typedef bool (*kiln_fileop_cancel_fn)(void *ud);

/* Adds `bytes` of file data copied or unpacked to the op's progress. */
typedef void (*kiln_fileop_progress_fn)(void *ud, uint64_t bytes);

/* What an op runs on. Everything is borrowed for the duration of the call. */
typedef struct kiln_fileop_env {
    const kiln_snap_view_t *const *inputs; /* view of Op.inputs[i] */
    size_t n_inputs;
    kiln_fileop_layer_fn new_layer;  /* for FileOp and a computed DiffOp */
    kiln_fileop_cancel_fn cancelled; /* may be NULL */
    void *ud;                        /* passed to the callbacks */
    kiln_fileop_progress_fn progress; /* may be NULL */
} kiln_fileop_env_t;

typedef struct kiln_fileop_layer {
    char *dir;    /* layer directory */
    bool created; /* true: written by this op into a directory from
                     new_layer; false: an input's layer, shared */
} kiln_fileop_layer_t;

/* One output: base's whole stack, then `layers` on top, bottom first. */
typedef struct kiln_fileop_output {
    int64_t base; /* index into Op.inputs, or -1: scratch */
    size_t n_layers;
    kiln_fileop_layer_t *layers;
} kiln_fileop_output_t;

typedef struct kiln_fileop_result {
    size_t n_outputs; /* output i is outputs[i] */
    kiln_fileop_output_t *outputs;
    /* Directories from new_layer that are in no output (the layers of
     * intermediate states only read by other actions, or empty): the caller
     * removes them. */
    size_t n_discard;
    char **discard;
} kiln_fileop_result_t;

/*
 * Runs the actions of a FileOp whose inputs are env->inputs (n_inputs must
 * be the op's input count). On success *out holds one output per distinct
 * FileAction.output (0..k-1); free it with kiln__fileop_result_free().
 * Errors: KILN_EINVAL (bad indexes, an action without a body, an invalid
 * pattern or mode string), KILN_ENOENT and other KILN_E* codes from the
 * actions, KILN_ECANCELED.
 */
int kiln__fileop_run(const Pb__FileOp *op, const kiln_fileop_env_t *env,
                     kiln_error_t *err, kiln_fileop_result_t **out);

/* A MergeOp: one output, no new layer. */
int kiln__mergeop_run(const Pb__MergeOp *op, const kiln_fileop_env_t *env,
                      kiln_error_t *err, kiln_fileop_result_t **out);

/* A DiffOp: one output, at most one new layer. */
int kiln__diffop_run(const Pb__DiffOp *op, const kiln_fileop_env_t *env,
                     kiln_error_t *err, kiln_fileop_result_t **out);

/*
 * The content checksum of `path` in `v` ("sha256:<hex>"), for content
 * cache keys (checksum.c): type, permission bits, owner, size, xattrs and
 * bytes of everything at and below the path, mtimes excluded. With
 * `wildcard`, the path's wildcard matches (as a copy resolves them) and
 * their checksums; `follow` follows a symlink in the last component. An
 * absent path has a checksum too. Errors: KILN_EIO, KILN_ENOMEM.
 */
int kiln__fileop_checksum(const kiln_snap_view_t *v, const char *path,
                          bool wildcard, bool follow,
                          char out[KILN_DIGEST_STRLEN + 1], kiln_error_t *err);

/* Frees a result (not the directories). NULL is a no-op. */
void kiln__fileop_result_free(kiln_fileop_result_t *r);

/*
 * The full stack of an output, bottom first: the layers of
 * env->inputs[o->base] (none for scratch), then o->layers. *layers is
 * malloc'ed (the strings are borrowed from the views and the output); free
 * it with free(). Returns 0 or KILN_ENOMEM.
 */
int kiln__fileop_output_stack(const kiln_fileop_env_t *env,
                              const kiln_fileop_output_t *o,
                              const char ***layers, size_t *n);

/* Opens a view of an output's full stack (kiln__fileop_output_stack()). */
int kiln__fileop_output_view(const kiln_fileop_env_t *env,
                             const kiln_fileop_output_t *o, kiln_error_t *err,
                             kiln_snap_view_t **out);

#endif
