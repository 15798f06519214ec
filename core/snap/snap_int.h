/*
 * Internals shared by the files of core/snap. Paths here are relative to a
 * layer root, without a leading slash ("" is the root); kiln__snap_rel()
 * turns "" into "." for the *at() calls.
 */
#ifndef KILN_SNAP_SNAP_INT_H
#define KILN_SNAP_SNAP_INT_H

#include <limits.h>
#include <time.h>

#include "snap.h"

#define SNAP_WH_PREFIX     ".wh."
#define SNAP_WH_PREFIX_LEN 4
#define SNAP_WH_OPAQUE     ".wh..wh..opq"

typedef struct snap_cache snap_cache_t;
typedef struct snap_listing snap_listing_t;

struct kiln_snap_view {
    size_t n;
    char **dirs; /* layer directories, bottom first */
    int *fds;    /* O_PATH|O_DIRECTORY descriptors of dirs */
    int *root;   /* layers that make up "/", top first */
    size_t nroot;
    snap_cache_t *cache; /* listings of hot directories, or NULL */
};

/* A directory of a view: the layers holding it as a real directory that
 * contribute to the merge, top first. */
typedef struct snap_dir {
    const int *layers;
    size_t n;
} snap_dir_t;

/* A name looked up in a directory. `layers` is a caller buffer of view->n
 * ints, filled when the child is a directory. */
typedef struct snap_child {
    int layer; /* -1: absent */
    struct stat st;
    int *layers;
    size_t n;
} snap_child_t;

/* Directory entries merged across layers, sorted by name. */
typedef struct snap_ent {
    const char *name;
    int layer;
    struct stat st;
} snap_ent_t;

typedef struct snap_list {
    snap_ent_t *ents;
    size_t n;
    char *names;
} snap_list_t;

/* A path resolution with its directory stack (internal resolve). */
typedef struct snap_level {
    size_t path_len; /* length of `path` at this directory */
    size_t off;      /* its layers: pool[off .. off + n) */
    size_t n;
} snap_level_t;

typedef struct snap_walk {
    const kiln_snap_view_t *v;
    int *pool;
    size_t pool_len, pool_cap;
    snap_level_t *lv;
    size_t nlv, lv_cap;
    char path[PATH_MAX]; /* relative path of the current directory */
    size_t len;
    /* The result: entry, and its layers when it is a directory. */
    kiln_snap_entry_t e;
    int *child;
    size_t nchild;
} snap_walk_t;

/* view.c */
const char *kiln__snap_rel(const char *rel);
bool kiln__snap_is_wh(const char *name);
int kiln__snap_join(char *buf, size_t size, const char *dir, const char *name);
int kiln__snap_errno(kiln_error_t *err, int e, const char *what,
                     const char *path);
int kiln__snap_lookup(const kiln_snap_view_t *v, const snap_dir_t *dir,
                      const char *dir_rel, const char *name, snap_child_t *out,
                      kiln_error_t *err);
int kiln__snap_list(const kiln_snap_view_t *v, const snap_dir_t *dir,
                    const char *rel, snap_list_t *out, kiln_error_t *err);
void kiln__snap_list_free(snap_list_t *l);
int kiln__snap_view_extend(const kiln_snap_view_t *base, const char *dir,
                           kiln_error_t *err, kiln_snap_view_t **out);

/* cache.c: layers from mutable_from up are never cached. */
int kiln__snap_cache_new(int mutable_from, snap_cache_t **out);
void kiln__snap_cache_free(snap_cache_t *c);
/* The listing of `dir` of `layer` once it is hot, else NULL. */
const snap_listing_t *kiln__snap_cache_get(const kiln_snap_view_t *v, int layer,
                                           const char *dir);
/* The DT_* type of `name` in a listing (DT_UNKNOWN is 0), -1 if absent. */
int kiln__snap_listing_find(const snap_listing_t *l, const char *name);

/* walk.c */
int kiln__snap_walk_init(snap_walk_t *w, const kiln_snap_view_t *v);
void kiln__snap_walk_free(snap_walk_t *w);
int kiln__snap_walk(snap_walk_t *w, const char *path, bool follow,
                    kiln_error_t *err);
/* The directory holding the result (false for the root). */
bool kiln__snap_walk_parent(const snap_walk_t *w, snap_dir_t *out);
/* The result as a directory (only if it is one). */
void kiln__snap_walk_dir(const snap_walk_t *w, snap_dir_t *out);
/* Opens `rel` of layer `layer` (never following symlinks). */
int kiln__snap_layer_open(const kiln_snap_view_t *v, int layer, const char *rel,
                          int flags);

/* meta.c: metadata, xattrs, data. */
typedef struct snap_meta {
    int64_t uid, gid; /* -1: leave */
    mode_t mode;      /* KILN_SNAP_MODE_UNSET: leave */
    bool times;
    struct timespec ts[2]; /* atime, mtime */
} snap_meta_t;

void kiln__snap_meta_from_stat(snap_meta_t *m, const struct stat *st,
                               const kiln_snap_attr_t *ov);
void kiln__snap_meta_from_attr(snap_meta_t *m, const kiln_snap_attr_t *a,
                               mode_t default_mode);
/* Applies owner, then mode, then times to fd (if >= 0) or dirfd/name
 * (symlinks, devices: never followed). `what` names it in errors. */
int kiln__snap_meta_apply(int dirfd, const char *name, int fd, bool is_link,
                          const snap_meta_t *m, const char *what,
                          kiln_error_t *err);
int kiln__snap_set_times(int dirfd, const char *name, int fd,
                         const struct timespec ts[2], const char *what,
                         kiln_error_t *err);
void kiln__snap_copy_xattrs(int src_fd, int dst_fd);
int kiln__snap_xattrs_equal(int a, int b);
int kiln__snap_copy_data(int in, int out, const char *what, kiln_error_t *err);
int kiln__snap_same_content(int a, int b, bool *same, const char *what,
                            kiln_error_t *err);

/* layer.c: operations inside one layer directory. */
int kiln__snap_open_dir(int dirfd, const char *name, const char *what,
                        kiln_error_t *err);
int kiln__snap_rm_tree(int dirfd, const char *name, const char *what,
                       kiln_error_t *err);
int kiln__snap_make_marker(int dirfd, const char *name, const char *what,
                           kiln_error_t *err);
int kiln__snap_whiteout(int dirfd, const char *name, const char *what,
                        kiln_error_t *err);
/* Removes `.wh.name` from dirfd; sets *had if it was there. */
int kiln__snap_unwhiteout(int dirfd, const char *name, bool *had,
                          const char *what, kiln_error_t *err);
int kiln__snap_dir_empty(int fd, bool *empty);
/* True if `path` is a directory that can be read and holds nothing. */
bool kiln__snap_path_empty(const char *path);

/* writer.c */
struct kiln_snap_writer {
    const kiln_snap_view_t *base;
    kiln_snap_view_t *view; /* base + the new layer */
    int fd;                 /* the new layer's directory */
    int top;                /* its index in view */
    bool finished;
    snap_walk_t walk; /* resolutions in view */
    int *scratch;     /* view->n ints */
};

/* Where a mutation happens: the parent directory in the new layer (copied
 * up), and the name (in w->walk.e.path). dirfd -1 and name NULL for the
 * root. The caller closes dirfd. */
typedef struct snap_target {
    int dirfd;
    const char *name;
} snap_target_t;

int kiln__snap_prepare(kiln_snap_writer_t *w, const char *path, bool follow,
                       snap_target_t *t, kiln_error_t *err);

/* copy.c: copying entries of a view into a directory. */
typedef struct snap_inomap {
    struct snap_ino *slots;
    size_t cap, n;
} snap_inomap_t;

const char *kiln__snap_inomap_get(const snap_inomap_t *m, dev_t dev, ino_t ino);
int kiln__snap_inomap_put(snap_inomap_t *m, dev_t dev, ino_t ino,
                          const char *path);
void kiln__snap_inomap_free(snap_inomap_t *m);

typedef struct snap_copier {
    const kiln_snap_view_t *from;
    bool link;                  /* hard link regular files if possible */
    const kiln_snap_attr_t *ov; /* override, or NULL */
    kiln_snap_copy_filter_fn filter;
    void *filter_ud;
    bool replace;
    int dst_root;         /* what dst (and hard link) paths are relative to */
    char src[PATH_MAX];   /* current source path in `from` */
    char dst[PATH_MAX];   /* current destination path */
    size_t src_base;      /* length of the copy source's path + '/' */
    snap_inomap_t inodes; /* (dev, ino) -> dst path, for nlink > 1 */
    /* Merge mode (writer copies): the destination's view, whose top layer
     * is the one being written under dst_root. NULL otherwise. */
    const kiln_snap_view_t *dview;
    int *scratch;            /* dview->n ints */
    kiln_snap_entry_t *fent; /* for the filter */
    kiln_error_t *err;
} snap_copier_t;

/* A destination directory during a copy. */
typedef struct snap_frame {
    struct snap_frame *up;
    int fd;           /* the directory; -1 while not created yet */
    const char *name; /* its name in up */
    int layer;        /* its source's layer and stat */
    const struct stat *st;
    size_t src_len, dst_len; /* lengths of c->src and c->dst for it */
    bool merge;              /* it existed: look children up in dview */
    int *dlayers;            /* merge: its layers in dview (owned) */
    size_t dn;
    bool finish; /* apply st's mode and times when done */
} snap_frame_t;

/* Initialises a frame for an open directory at the current c->src/dst. */
void kiln__snap_frame_init(snap_frame_t *f, const snap_copier_t *c, int fd);
int kiln__snap_copier_init(snap_copier_t *c, const kiln_snap_view_t *from,
                           int dst_root, const kiln_snap_view_t *dview,
                           kiln_error_t *err);
void kiln__snap_copier_free(snap_copier_t *c);
/* Creates `name` in dirfd (c->dst) as a copy of c->src, provided by
 * `layer` (-1: the root of an empty view) with stat st. Directories are
 * created empty and returned open in *dir_fd with owner and xattrs
 * applied: finish them with kiln__snap_copy_dir_done() after their
 * contents. */
int kiln__snap_copy_node(snap_copier_t *c, int layer, const struct stat *st,
                         int dirfd, const char *name, int *dir_fd);
int kiln__snap_copy_dir_done(snap_copier_t *c, int fd, const struct stat *st);
/* Copies the entry at c->src (its layers sdir when a directory) to `name`
 * in `up` (c->dst already ends with name). `top`: an existing destination
 * directory keeps its metadata. */
int kiln__snap_copy_entry(snap_copier_t *c, snap_frame_t *up, const char *name,
                          int layer, const struct stat *st,
                          const snap_dir_t *sdir, bool top);
/* Copies the children of the directory at c->src into frame f. */
int kiln__snap_copy_contents(snap_copier_t *c, const snap_dir_t *sdir,
                             snap_frame_t *f);
/* materialize.c: an empty directory to fill (fd or error code), and
 * the root metadata of a view onto a directory. */
int kiln__snap_open_empty(const char *dir, kiln_error_t *err);
int kiln__snap_root_meta(const kiln_snap_view_t *v, int fd, kiln_error_t *err);

/* Appends "/name" to a path buffer; returns the old length, or
 * (size_t)-1 when too long. */
size_t kiln__snap_push(char *buf, const char *name);

#endif
