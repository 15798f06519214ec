/*
 * Layered snapshots.
 *
 * A snapshot is an ordered stack of immutable layers, bottom first. A layer
 * is a directory holding a diff in the OCI layer format: files, directories
 * and symlinks as they are on disk (mode, owner, mtime, xattrs), an empty
 * file `.wh.NAME` that deletes NAME from the layers below, and an empty file
 * `.wh..wh..opq` in a directory that hides everything below in that
 * directory. As in overlayfs, a non-directory in a layer also hides whatever
 * the layers below have at that path, and the layer directory itself holds
 * the metadata (mode, owner, times) of the snapshot's root. Layers are shared
 * between snapshots (a chain of file ops adds one small layer per op; a merge
 * stacks its inputs' layers), so no snapshot costs more than its own
 * changes, and a layer is exactly what a cache export uploads.
 *
 * A view reads the merged tree of a stack without mounting anything. Paths
 * given to the view are resolved inside the snapshot, one component at a
 * time by the view itself: `..` stops at the root, and symlinks (absolute or
 * relative, in any layer) are followed as if the snapshot root were `/`, so
 * nothing can reach outside it. `..` applies to the path resolved so far, as
 * the kernel does in a chroot; callers that want Go's lexical
 * filepath.Clean (as BuildKit applies to action paths) clean first. Names
 * beginning with `.wh.` are never visible and cannot be created. Looking a
 * name up costs a few fstatat() calls per layer that holds its parent, never
 * a scan.
 *
 * A writer adds one new layer on top of a view; every write goes through
 * file descriptors opened with O_NOFOLLOW|O_DIRECTORY under the new layer's
 * directory, so a symlink in any layer can never redirect a write.
 *
 * Nothing here touches the store's database: the caller decides where layer
 * directories live (for a new layer, an empty directory under the store's
 * tmp/) and commits them. Functions return 0 or a negative errno value
 * (besides the KILN_E* codes: -EEXIST, -ENOTDIR, -EISDIR, -EPERM,
 * -ENAMETOOLONG, KILN_ELOOP) with a message in `err` that names the path at
 * fault.
 *
 * Threads: a view may be read from several threads at once (its listing
 * cache has a lock); a writer, and its view, by one thread at a time.
 *
 * Costs: a view holds one descriptor per layer (a writer's view one more
 * per layer). Looking a name up costs one or two fstatat() per layer that
 * holds its parent directory (the name, then its whiteout or the
 * directory's opaque marker); once a directory of an immutable layer has
 * been looked up in a few times, the view reads its listing once and
 * answers from memory (bounded: 16 MiB of names per view). Listings read
 * each contributing layer's directory once. Without root, the kernel's
 * permission checks apply to layer contents (a directory without x for the
 * caller cannot be read).
 */
#ifndef KILN_SNAP_SNAP_H
#define KILN_SNAP_SNAP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "internal.h"

/* Above this many layers a new snapshot should be flattened (see
 * kiln__snap_materialize()), so lookups and exec mounts stay bounded. Views
 * work at any depth (tested with 200 layers); lookups cost grows linearly. */
#define KILN_SNAP_MAX_DEPTH 32

/* Symlinks followed while resolving one path before KILN_ELOOP. */
#define KILN_SNAP_MAX_LINKS 255

typedef struct kiln_snap_view kiln_snap_view_t;

/*
 * Opens a view of the layer directories `layers[0..n)` (bottom first; n may
 * be 0: the empty tree, scratch). The paths are copied and each layer is
 * held open (one descriptor per layer); the directories must stay in place
 * until kiln__snap_view_free() and must not change meanwhile: a view keeps
 * the listings of directories it looks names up in often (the layer a
 * writer writes is only read through the writer's view, which never caches
 * it). Errors: KILN_ENOENT / KILN_EIO (a layer
 * cannot be opened), KILN_ENOMEM. Free with kiln__snap_view_free() (NULL ok).
 */
int kiln__snap_view_open(const char *const *layers, size_t n, kiln_error_t *err,
                         kiln_snap_view_t **out);
void kiln__snap_view_free(kiln_snap_view_t *v);

/* Layer count, and the directory of layer i (bottom first; NULL past the
 * end). */
size_t kiln__snap_view_depth(const kiln_snap_view_t *v);
const char *kiln__snap_view_layer(const kiln_snap_view_t *v, size_t i);

/* What a path resolves to in a view. */
typedef struct kiln_snap_entry {
    char path[4096]; /* canonical: absolute, no symlinks, no "." or ".." */
    int layer;       /* index of the layer that provides it, -1: absent */
    struct stat st;  /* lstat() of it in that layer (valid if layer >= 0) */
} kiln_snap_entry_t;

/*
 * Resolves `path` (absolute or relative to the root; "" is the root) inside
 * the view. Intermediate symlinks are always followed within the root; the
 * last component is followed only if `follow` (a dangling symlink then
 * resolves to its target's canonical path, absent, as BuildKit's RootPath
 * does). A trailing slash is ignored.
 *
 * Returns 0 with out->layer >= 0 when the path exists, or out->layer == -1
 * when its parent exists but the last component does not (out->path is then
 * where it would be created). Errors: KILN_ENOENT when a parent is missing
 * (out->path names the first missing directory, out->layer == -1), -ENOTDIR
 * (a non-directory used as a directory), KILN_ELOOP (more than
 * KILN_SNAP_MAX_LINKS symlinks), -ENAMETOOLONG, KILN_EIO.
 *
 * The root always exists; in an empty view (n == 0) it resolves with
 * layer == -1 and st describing an empty 0755 directory owned by 0:0.
 */
int kiln__snap_resolve(const kiln_snap_view_t *v, const char *path, bool follow,
                       kiln_snap_entry_t *out, kiln_error_t *err);

/*
 * Lists the merged directory at `dir` (resolved without following its last
 * component; normally a canonical path from resolve), sorted by name
 * (strcmp), whiteouts and opaque directories applied, without "." and "..".
 * Calls fn for each child with its name and entry (the entry is only valid
 * during the call); a non-zero return from fn stops the walk and is
 * returned. Errors: those of resolve, -ENOTDIR.
 */
typedef int (*kiln_snap_dir_fn)(const char *name,
                                const kiln_snap_entry_t *child, void *ud);
int kiln__snap_readdir(const kiln_snap_view_t *v, const char *dir,
                       kiln_snap_dir_fn fn, void *ud, kiln_error_t *err);

/* Opens a regular file of the view (an entry from resolve or readdir) for
 * reading (O_RDONLY|O_CLOEXEC, never following a symlink). The caller closes
 * *fd. Errors: KILN_ENOENT (absent entry), KILN_EINVAL (not a regular file),
 * KILN_EIO. */
int kiln__snap_open_file(const kiln_snap_view_t *v,
                         const kiln_snap_entry_t *entry, int *fd,
                         kiln_error_t *err);

/* Reads a symlink's target as stored, NUL-terminated, into buf. Errors:
 * KILN_EINVAL (not a symlink), -ENAMETOOLONG (does not fit), KILN_EIO. */
int kiln__snap_readlink(const kiln_snap_view_t *v,
                        const kiln_snap_entry_t *entry, char *buf, size_t size,
                        kiln_error_t *err);

/*
 * Writers: a new layer over a view. `layer_dir` must be an empty directory;
 * the writer gives it the metadata of the base's root (0755 for scratch)
 * and records changes there in the layer format above. The base view is
 * borrowed and must outlive the writer. kiln__snap_writer_view() gives a
 * view of base + the layer being written (owned by the writer, valid until
 * kiln__snap_writer_free()), for actions that read what earlier actions of
 * the same op wrote. Errors of _new: KILN_EINVAL (not empty), KILN_EIO,
 * KILN_ENOMEM, -EPERM (root's owner cannot be copied: needs root).
 */
typedef struct kiln_snap_writer kiln_snap_writer_t;

int kiln__snap_writer_new(const kiln_snap_view_t *base, const char *layer_dir,
                          kiln_error_t *err, kiln_snap_writer_t **out);
void kiln__snap_writer_free(kiln_snap_writer_t *w);
const kiln_snap_view_t *kiln__snap_writer_view(const kiln_snap_writer_t *w);

/*
 * Ownership, mode and times. Start from KILN_SNAP_ATTR_INIT (everything
 * unset). For created entries (mkdir, write_file, symlink): mode unset means
 * 0755 for directories and 0644 for files; uid/gid -1 leave the owner the
 * kernel gives (the caller: 0:0 when running as root); mtime -1 leaves the
 * current time. For copy overrides and setattr, unset fields keep what the
 * source (or the entry) has. `mode` holds permission bits including
 * setuid/setgid/sticky (07777); type bits are ignored, and symlinks have no
 * mode. A mtime sets atime too.
 *
 * Changing the owner needs root or CAP_CHOWN: when the kernel refuses, the
 * call fails with -EPERM and a message saying so (an owner equal to the
 * file's current one is never a change).
 */
#define KILN_SNAP_MODE_UNSET ((mode_t)-1)

typedef struct kiln_snap_attr {
    mode_t mode;      /* permission bits, or KILN_SNAP_MODE_UNSET */
    int64_t uid;      /* -1: unset */
    int64_t gid;      /* -1: unset */
    int64_t mtime_ns; /* nanoseconds since the epoch; -1: unset */
} kiln_snap_attr_t;

#define KILN_SNAP_ATTR_INIT                                                    \
    {                                                                          \
        KILN_SNAP_MODE_UNSET, -1, -1, -1                                       \
    }

/*
 * Mutations. Paths are resolved in the writer's current view (base + what
 * was written so far) with intermediate symlinks followed inside the root;
 * the last component is not followed (except by mkdir with `parents`), so
 * callers that want BuildKit's "follow the last symlink" resolve with
 * follow = true first and pass the canonical entry.path. Parent directories
 * present only in lower layers are copied up (metadata only: mode, owner,
 * times, xattrs) into the new layer; a copy-up leaves the times of the
 * directory it is made in unchanged, while a real change (creating or
 * removing an entry) gives its parent the current mtime, as in an overlay
 * mount. attr may be NULL (all unset). All return -EINVAL for names
 * beginning with ".wh." and after kiln__snap_writer_finish().
 */

/* Creates a directory. Without `parents`: -EEXIST if anything exists there,
 * KILN_ENOENT if the parent is missing. With `parents`: missing parents are
 * created too (each with attr), the last component is followed (a dangling
 * symlink creates its target), an existing directory is success (left
 * unchanged), a non-directory is -EEXIST (or -ENOTDIR as a parent). mtimes
 * of the created directories are applied after all are made. A directory
 * created where this writer removed one is marked opaque. */
int kiln__snap_mkdir(kiln_snap_writer_t *w, const char *path,
                     const kiln_snap_attr_t *attr, bool parents,
                     kiln_error_t *err);
/* Creates or replaces (a new inode: hard links elsewhere keep the old
 * content) a regular file with data[0..len). -EISDIR on a directory; an
 * existing symlink is replaced, not followed. */
int kiln__snap_write_file(kiln_snap_writer_t *w, const char *path,
                          const void *data, size_t len,
                          const kiln_snap_attr_t *attr, kiln_error_t *err);
/* Creates a symlink holding `target` verbatim; -EEXIST if anything exists
 * at path (the root included). */
int kiln__snap_symlink(kiln_snap_writer_t *w, const char *target,
                       const char *path, const kiln_snap_attr_t *attr,
                       kiln_error_t *err);
/* Makes `path` a hard link to the existing non-directory `oldpath` (copied
 * up first when a lower layer has it: links to lower layers are never
 * made). -EEXIST if path exists, -EPERM for a directory, KILN_ENOENT if
 * oldpath is absent. */
int kiln__snap_link(kiln_snap_writer_t *w, const char *oldpath,
                    const char *path, kiln_error_t *err);
/* Removes a file, symlink or (recursively) directory: a whiteout when it
 * exists in a lower layer. KILN_ENOENT if absent (callers decide);
 * KILN_EINVAL for the root. */
int kiln__snap_remove(kiln_snap_writer_t *w, const char *path,
                      kiln_error_t *err);

/* What a copy filter decides for one source entry. */
typedef enum kiln_snap_copy_decision {
    KILN_SNAP_COPY_INCLUDE = 0, /* copy it (a directory: and descend) */
    KILN_SNAP_COPY_EXCLUDE = 1, /* skip it; a directory is still walked and
                                   created (with its source metadata) only
                                   if something below it is included */
    KILN_SNAP_COPY_PRUNE = 2,   /* skip it and everything below */
} kiln_snap_copy_decision_t;

/* Called for every entry below the copied source (not the source itself):
 * `rel` is its path relative to the source ("a/b"). Returns a decision, or
 * a negative error code that aborts the copy and is returned. */
typedef int (*kiln_snap_copy_filter_fn)(const char *rel,
                                        const kiln_snap_entry_t *e, void *ud);

typedef struct kiln_snap_copy_opts {
    const kiln_snap_attr_t *override; /* NULL: keep the source's */
    kiln_snap_copy_filter_fn filter;  /* NULL: include everything */
    void *filter_ud;
    /* Replace existing destinations of another type instead of failing
     * (BuildKit's alwaysReplaceExistingDestPaths). */
    bool replace;
} kiln_snap_copy_opts_t;

/*
 * Copies the entry `src` of view `from` (any view, e.g. another input, or
 * the writer's own view) to `dest` in the writer (resolved like the
 * mutations: last component not followed; its parent must exist),
 * recursively for directories, keeping modes, owners, times, xattrs (where
 * allowed), symlinks (as symlinks) and hardlinks within the copy; file data
 * is copied with copy_file_range(). Semantics follow BuildKit's fsutil copy:
 * - a non-directory replaces an existing non-directory; onto a directory it
 *   is -EISDIR ("cannot replace directory with file");
 * - a directory onto an existing directory merges into it: the destination
 *   keeps its own metadata, existing subdirectories below it take the
 *   source's; onto a non-directory it is -ENOTDIR;
 * - with opts->replace, conflicting destinations are removed first;
 * - override fields, when set, apply to every copied entry (mode not to
 *   symlinks); directories get their times after their contents.
 * KILN_EINVAL when `from` reads the layer being written (the writer's own
 * view) and the copy would go onto itself or a directory into itself.
 * Owners need root as described for kiln_snap_attr_t. `src` must come from
 * resolve or readdir on `from` (it is checked again: KILN_EINVAL if stale).
 */
int kiln__snap_copy_ex(kiln_snap_writer_t *w, const kiln_snap_view_t *from,
                       const kiln_snap_entry_t *src, const char *dest,
                       const kiln_snap_copy_opts_t *opts, kiln_error_t *err);
/* kiln__snap_copy_ex() with only an override (may be NULL). */
int kiln__snap_copy(kiln_snap_writer_t *w, const kiln_snap_view_t *from,
                    const kiln_snap_entry_t *src, const char *dest,
                    const kiln_snap_attr_t *override, kiln_error_t *err);

/* Changes mode/owner/mtime of an existing entry (copying it up: a file's
 * data is copied, hard links to it in lower layers are not followed); unset
 * fields keep their value. KILN_ENOENT if absent. */
int kiln__snap_setattr(kiln_snap_writer_t *w, const char *path,
                       const kiln_snap_attr_t *attr, kiln_error_t *err);

/* Flushes the layer to disk (syncfs() of its file system) and sets *size
 * (may be NULL) to the layer's disk usage in bytes (st_blocks, each inode
 * counted once). Later mutations fail with KILN_EINVAL; the writer must
 * still be freed. */
int kiln__snap_writer_finish(kiln_snap_writer_t *w, uint64_t *size,
                             kiln_error_t *err);

/*
 * Writes the merged tree of `v` into the empty directory `dest` as plain
 * files (no whiteouts), dest itself taking the root's metadata: for
 * flattening a deep stack into one layer (`link` = true: regular files are
 * hard links to the immutable layer files, falling back to a copy across
 * file systems or past the link limit) and for exporting (`link` = false:
 * copies, hard links of the view kept as hard links). KILN_EINVAL if dest
 * is not empty. Hard links share the inode with the layer file, so only
 * link layers that no writer modifies any more (finished ones).
 */
int kiln__snap_materialize(const kiln_snap_view_t *v, const char *dest,
                           bool link, kiln_error_t *err);

/*
 * Writes into the empty directory `layer_dir` the layer that turns `lower`
 * into `upper` (added and changed entries, whiteouts for removed ones; the
 * layer root takes upper's root metadata): DiffOp when lower's stack is not
 * a prefix of upper's. Entries compare equal when type, mode, owner, size,
 * mtime, xattrs and content (same inode, or the same bytes; symlink
 * targets) match; a directory is written when its metadata differs or
 * something below it does. Regular files of the result are hard links to
 * upper's layer files where possible (as for materialize: upper's layers
 * must be finished), else copies. Nothing differs: layer_dir stays empty.
 */
int kiln__snap_diff(const kiln_snap_view_t *lower,
                    const kiln_snap_view_t *upper, const char *layer_dir,
                    kiln_error_t *err);

#endif
