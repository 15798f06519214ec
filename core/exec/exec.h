/*
 * ExecOp: runs a command in its own namespaces over the op's mounts and
 * returns the changes as layers. Private to core/; see docs/exec.md.
 *
 * The root and every writable input mount are overlays: the input
 * snapshot's layers are the lower directories, a fresh directory from
 * new_layer the upper, and that upper (overlay whiteouts turned into the
 * snapshot format's `.wh.` files, mount stubs and untouched copied-up
 * directories removed) becomes the output's one new layer. Where overlayfs
 * is refused, the input is copied and the output is the diff of the copy
 * against the input (a warning says so, once per process).
 *
 * The process itself is kiln-run (helper.h), spawned with uv_spawn on a
 * private loop of the calling thread, which blocks until it ends; its
 * output is passed on line by line as it arrives.
 */
#ifndef KILN_EXEC_EXEC_H
#define KILN_EXEC_EXEC_H

#include "fileop/fileop.h"
#include "store/store.h"

typedef struct kiln__exec_env {
    const Pb__ExecOp *op;
    const kiln_fileop_env_t *fenv;  /* inputs, new_layer, cancelled */
    kiln__store_t *store;           /* cache mounts, scratch */
    const char *const *secrets;     /* "ID=PATH", may be NULL */
    const char *const *secret_envs; /* "ID=VAR", may be NULL */
    const char *const *ssh;         /* "ID=SOCKET", may be NULL */
    /* The command's output: complete lines (or a long line's pieces),
     * stream 1 or 2. Called on the calling thread. */
    void (*output)(void *ud, int stream, const uint8_t *data, size_t len);
    /* A warning about the op (ignored fields, the copy fallback). */
    void (*warn)(void *ud, const char *msg);
    void *ud;
} kiln__exec_env_t;

/*
 * Runs the op. On success *out has one output per Mount.output index
 * (base: the mount's input, layers: its new layer if anything changed);
 * free it with kiln__fileop_result_free(). Every directory it used came
 * from new_layer; the caller removes those in no output.
 * Errors: KILN_EINVAL (a bad op: no args, a mount without a destination,
 * an unknown secret or SSH id, an INSECURE security mode), KILN_EIO (the
 * command failed: its exit code, command line and last lines of output
 * in the message), KILN_ENOTSUP (the kernel refuses namespaces; the
 * message says so), KILN_ECANCELED, store errors.
 */
int kiln__exec_run(const kiln__exec_env_t *env, kiln_error_t *err,
                   kiln_fileop_result_t **out);

/* Where kiln-run is: $KILN_RUN_HELPER, the build tree's (for programs in
 * it), else the installed one. */
const char *kiln__exec_helper_path(void);

#endif
