/*
 * Private to core/fileop: the actions (actions.c, copy.c, unpack.c) and the
 * matchers they use (match.c, modestr.c).
 */
#ifndef KILN_FILEOP_INT_H
#define KILN_FILEOP_INT_H

#include <stdbool.h>
#include <sys/stat.h>

#include "fileop/fileop.h"

/* Resolved ChownOpt: BuildKit's readUser(). */
typedef struct kiln__fo_owner {
    bool set; /* false: no ChownOpt, keep owners / default */
    int64_t uid;
    int64_t gid;
} kiln__fo_owner_t;

/* What one action runs with. */
typedef struct kiln__fo_ctx {
    kiln_snap_writer_t *w;        /* the layer being written */
    const kiln_snap_view_t *src;  /* copy: the secondary input's view */
    kiln__fo_owner_t owner;       /* the action's ChownOpt, resolved */
    const kiln_fileop_env_t *env; /* for cancellation */
    kiln_error_t *err;
} kiln__fo_ctx_t;

/* Actions; the caller prefixes the message with the action. */
int kiln__fo_mkdir(kiln__fo_ctx_t *c, const Pb__FileActionMkDir *a);
int kiln__fo_mkfile(kiln__fo_ctx_t *c, const Pb__FileActionMkFile *a);
int kiln__fo_rm(kiln__fo_ctx_t *c, const Pb__FileActionRm *a);
int kiln__fo_symlink(kiln__fo_ctx_t *c, const Pb__FileActionSymlink *a);
int kiln__fo_copy(kiln__fo_ctx_t *c, const Pb__FileActionCopy *a);

/*
 * Reads a ChownOpt: IDs as given, names from /etc/passwd and /etc/group of
 * the views named by NamedUserOpt.input (user and group views; NULL when
 * that part is not by name). A name that is not found, or a missing file,
 * gives ID 0, as in BuildKit.
 */
int kiln__fo_read_owner(const Pb__ChownOpt *o, const kiln_snap_view_t *uview,
                        const kiln_snap_view_t *gview, kiln__fo_owner_t *out,
                        kiln_error_t *err);

/* True (and an error in c->err) when the caller asked to stop. */
bool kiln__fo_cancelled(kiln__fo_ctx_t *c);

/* Reports `bytes` more of file data written. */
void kiln__fo_progress(kiln__fo_ctx_t *c, uint64_t bytes);

/*
 * `mkdir -p` in the writer, as fsutil's MkdirAll over a RootPath-resolved
 * path (kiln__snap_mkdir() with parents): symlinks are followed inside the
 * root; each directory created gets `attr`; existing directories are left
 * alone; a non-directory on the way is an error.
 */
int kiln__fo_mkdir_all(kiln__fo_ctx_t *c, const char *path,
                       const kiln_snap_attr_t *attr);

/* Resolves `path` in the writer's current view. */
int kiln__fo_resolve(kiln__fo_ctx_t *c, const char *path, bool follow,
                     kiln_snap_entry_t *e);

/* True if the entry exists (the root always does). */
bool kiln__fo_exists(const kiln_snap_entry_t *e);
bool kiln__fo_is_dir(const kiln_snap_entry_t *e);

/* st_mtim in nanoseconds. */
int64_t kiln__fo_mtime_ns(const struct stat *st);

/* "a" + "/" + "b", with no doubled slash; NULL on ENOMEM. */
char *kiln__fo_join(const char *a, const char *b);

/* A directory listing (walk.c): names with their lstat, sorted by name. */
typedef struct kiln__fo_child {
    char *name;
    int layer;
    struct stat st;
} kiln__fo_child_t;

typedef struct kiln__fo_children {
    kiln__fo_child_t *v;
    size_t n;
    size_t cap;
} kiln__fo_children_t;

/* Lists the merged directory `dir` (canonical) of `v`; on failure *ch is
 * empty. Free with kiln__fo_children_free() (which leaves it empty). */
int kiln__fo_list_dir(const kiln_snap_view_t *v, const char *dir,
                      kiln__fo_children_t *ch, kiln_error_t *err);
void kiln__fo_children_free(kiln__fo_children_t *ch);

/* A child as an entry of its view: path `dir`/name, its layer and stat.
 * malloc'ed; NULL on ENOMEM or a path too long. */
kiln_snap_entry_t *kiln__fo_child_entry(const char *dir,
                                        const kiln__fo_child_t *c);

/*
 * Go's copy.ResolveWildcards: splits `path` at its first component with a
 * wildcard, resolves the part before it in `v` (the last component
 * followed only if `follow`), then walks below it as filepath.Walk does,
 * collecting paths whose relative path matches the rest (filepath.Match; a
 * matching directory is not descended). Without a wildcard, the one result
 * is the cleaned path. Results are relative to the root (no leading "/"),
 * in walk order; free with kiln__fo_strv_free().
 */
int kiln__fo_resolve_wildcards(const kiln_snap_view_t *v, const char *path,
                               bool follow, char ***out, size_t *n,
                               kiln_error_t *err);
void kiln__fo_strv_free(char **v, size_t n);

/* True if the directory (a layer just written) has no entries. */
bool kiln__fo_dir_is_empty(const char *path);

/* True if the layer directory `dir` (which holds the metadata of its
 * snapshot's root) has the mode, owner and mtime of `base`'s root: with no
 * entries, such a layer changes nothing. */
bool kiln__fo_same_root(const kiln_snap_view_t *base, const char *dir);

/* match.c: Go's filepath.Match: 1 match, 0 no match, KILN_EINVAL for a
 * malformed pattern. */
int kiln__fo_fnmatch(const char *pattern, const char *name);

/* Go's containsWildcards (fsutil): '*', '?' or '[' not escaped by '\'. */
bool kiln__fo_has_wildcards(const char *s);

/*
 * moby/patternmatcher: .dockerignore-style patterns ("**", "!" negation),
 * matched with MatchesUsingParentResults(). `parent` is NULL (no
 * information: parent directories are checked as MatchesOrParentMatches
 * does) or the `info` of the parent directory; `info` receives this path's
 * per-pattern results (kiln__fo_patterns_count() entries).
 */
typedef struct kiln__fo_patterns kiln__fo_patterns_t;

int kiln__fo_patterns_new(char *const *patterns, size_t n,
                          kiln__fo_patterns_t **out, kiln_error_t *err);
void kiln__fo_patterns_free(kiln__fo_patterns_t *p);
size_t kiln__fo_patterns_count(const kiln__fo_patterns_t *p);
/* True if some pattern is a "!" exclusion. */
bool kiln__fo_patterns_exclusions(const kiln__fo_patterns_t *p);
bool kiln__fo_patterns_match(const kiln__fo_patterns_t *p, const char *path,
                             const bool *parent, bool *info);

/* modestr.c: chmod(1) symbolic or octal modes, as tonistiigi/dchapes-mode
 * ParseWithUmask(s, 0) and Set.Apply(). */
typedef struct kiln__fo_modeset kiln__fo_modeset_t;

int kiln__fo_modeset_parse(const char *s, kiln__fo_modeset_t **out);
void kiln__fo_modeset_free(kiln__fo_modeset_t *m);
/* Applies to st_mode (type bits kept; permission, set-id and sticky bits
 * changed). */
mode_t kiln__fo_modeset_apply(const kiln__fo_modeset_t *m, mode_t st_mode);

/*
 * unpack.c: Docker ADD compatibility. If the source entry (resolved with
 * symlinks followed) is a tar archive, plain or gzip, bzip2, xz or zstd
 * compressed, creates the directory `dest` (mkdir -p with `dir_attr`) and
 * extracts it there, returning 1; returns 0 if it is not an archive.
 */
int kiln__fo_unpack(kiln__fo_ctx_t *c, const char *src, const char *dest,
                    const kiln_snap_attr_t *dir_attr);

#endif
