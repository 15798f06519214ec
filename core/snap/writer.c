/*
 * Writers: one new layer over a view. Every change is made through
 * descriptors of directories of the new layer, each opened with
 * O_NOFOLLOW|O_DIRECTORY from the layer root, after the path was resolved
 * by the view.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

static int init_root(kiln_snap_writer_t *w, kiln_error_t *err)
{
    const kiln_snap_view_t *b = w->base;
    struct stat st;
    snap_meta_t m;
    int sfd;

    if (b->n == 0) {
        if (fchmod(w->fd, 0755) != 0) {
            return kiln__snap_errno(err, errno, "cannot chmod", "");
        }
        return 0;
    }
    if (fstat(b->fds[b->root[0]], &st) != 0) {
        return kiln__snap_errno(err, errno, "cannot stat", "");
    }
    sfd = openat(b->fds[b->root[0]], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd >= 0) {
        kiln__snap_copy_xattrs(sfd, w->fd);
        close(sfd);
    }
    kiln__snap_meta_from_stat(&m, &st, NULL);
    return kiln__snap_meta_apply(-1, NULL, w->fd, false, &m, "/", err);
}

static int writer_open(kiln_snap_writer_t *w, const char *layer_dir,
                       kiln_error_t *err)
{
    bool empty;
    int rc;

    w->fd = open(layer_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->fd < 0) {
        return kiln__fail(err, errno == ENOENT ? KILN_ENOENT : KILN_EIO,
                          "%s: cannot open: %s", layer_dir, strerror(errno));
    }
    rc = kiln__snap_dir_empty(w->fd, &empty);
    if (rc != 0 || !empty) {
        return kiln__fail(err, rc != 0 ? KILN_EIO : KILN_EINVAL,
                          "%s: a new layer must be an empty directory",
                          layer_dir);
    }
    rc = kiln__snap_view_extend(w->base, layer_dir, err, &w->view);
    if (rc != 0) {
        return rc;
    }
    w->top = (int)w->view->n - 1;
    w->scratch = malloc(w->view->n * sizeof(int));
    if (w->scratch == NULL || kiln__snap_walk_init(&w->walk, w->view) != 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return init_root(w, err);
}

int kiln__snap_writer_new(const kiln_snap_view_t *base, const char *layer_dir,
                          kiln_error_t *err, kiln_snap_writer_t **out)
{
    kiln_snap_writer_t *w = calloc(1, sizeof(*w));
    int rc;

    *out = NULL;
    if (w == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    w->base = base;
    w->fd = -1;
    rc = writer_open(w, layer_dir, err);
    if (rc != 0) {
        kiln__snap_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void kiln__snap_writer_free(kiln_snap_writer_t *w)
{
    if (w == NULL) {
        return;
    }
    if (w->fd >= 0) {
        close(w->fd);
    }
    kiln__snap_walk_free(&w->walk);
    kiln__snap_view_free(w->view);
    free(w->scratch);
    free(w);
}

const kiln_snap_view_t *kiln__snap_writer_view(const kiln_snap_writer_t *w)
{
    return w->view;
}

/* Copies up the directory `name` (at rel, provided by `layer`) into
 * parent; the parent's times are kept: a copy-up changes nothing. */
static int copy_up_dir(kiln_snap_writer_t *w, int parent, const char *name,
                       const char *rel, int layer, kiln_error_t *err)
{
    snap_copier_t c;
    struct stat pst, st;
    int fd = -1, rc;

    if (fstat(parent, &pst) != 0 ||
        fstatat(w->view->fds[layer], rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return kiln__snap_errno(err, errno, "cannot stat", rel);
    }
    rc = kiln__snap_copier_init(&c, w->view, w->fd, NULL, err);
    if (rc != 0) {
        return rc;
    }
    snprintf(c.src, sizeof(c.src), "%s", rel);
    snprintf(c.dst, sizeof(c.dst), "%s", rel);
    rc = kiln__snap_copy_node(&c, layer, &st, parent, name, &fd);
    if (rc == 0) {
        rc = kiln__snap_copy_dir_done(&c, fd, &st);
    }
    if (rc == 0) {
        struct timespec ts[2] = {pst.st_atim, pst.st_mtim};
        rc = kiln__snap_set_times(-1, NULL, parent, ts, rel, err);
    }
    kiln__snap_copier_free(&c);
    if (rc != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    return fd;
}

/* Opens the directory holding the walk's result in the new layer,
 * copying up each level that only lower layers have. */
static int ensure_parent(kiln_snap_writer_t *w, int *out, kiln_error_t *err)
{
    const snap_walk_t *k = &w->walk;
    char rel[PATH_MAX], name[NAME_MAX + 1];
    int fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 3);

    if (fd < 0) {
        return kiln__snap_errno(err, errno, "cannot open layer", "");
    }
    for (size_t i = 1; i < k->nlv; i++) {
        size_t start = k->lv[i - 1].path_len + (i > 1 ? 1 : 0);
        size_t end = k->lv[i].path_len;
        int layer = k->pool[k->lv[i].off];
        int next;

        memcpy(name, k->path + start, end - start);
        name[end - start] = '\0';
        memcpy(rel, k->path, end);
        rel[end] = '\0';
        if (layer == w->top) {
            next = kiln__snap_open_dir(fd, name, k->path, err);
        } else {
            next = copy_up_dir(w, fd, name, rel, layer, err);
        }
        close(fd);
        if (next < 0) {
            return next; /* an error code */
        }
        fd = next;
    }
    *out = fd;
    return 0;
}

int kiln__snap_prepare(kiln_snap_writer_t *w, const char *path, bool follow,
                       snap_target_t *t, kiln_error_t *err)
{
    const char *e = w->walk.e.path;
    int rc;

    t->dirfd = -1;
    t->name = NULL;
    if (w->finished) {
        return kiln__fail(err, KILN_EINVAL, "%s: the layer is finished", path);
    }
    rc = kiln__snap_walk(&w->walk, path, follow, err);
    if (rc != 0 || strcmp(e, "/") == 0) {
        return rc;
    }
    t->name = strrchr(e, '/') + 1;
    if (kiln__snap_is_wh(t->name)) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: names beginning with \".wh.\" are reserved "
                          "for whiteouts",
                          e);
    }
    return ensure_parent(w, &t->dirfd, err);
}

static void target_close(snap_target_t *t)
{
    if (t->dirfd >= 0) {
        close(t->dirfd);
        t->dirfd = -1;
    }
}

/* Whether layers below the new one show t->name. */
static int exists_below(kiln_snap_writer_t *w, bool *below, kiln_error_t *err)
{
    snap_child_t c = {-1, {0}, w->scratch, 0};
    snap_dir_t dir;
    const char *e = w->walk.e.path;
    int rc;

    *below = false;
    if (!kiln__snap_walk_parent(&w->walk, &dir)) {
        return 0;
    }
    if (dir.n > 0 && dir.layers[0] == w->top) {
        dir.layers++;
        dir.n--;
    }
    rc = kiln__snap_lookup(w->view, &dir, w->walk.path, strrchr(e, '/') + 1, &c,
                           err);
    *below = c.layer >= 0;
    return rc;
}

/* Creates the directory t->name; its fd in *out. */
static int make_dir(kiln_snap_writer_t *w, snap_target_t *t,
                    const kiln_snap_attr_t *attr, int *out, kiln_error_t *err)
{
    const char *what = w->walk.e.path;
    snap_meta_t m;
    bool had;
    int fd, rc;

    rc = kiln__snap_unwhiteout(t->dirfd, t->name, &had, what, err);
    if (rc != 0) {
        return rc;
    }
    if (mkdirat(t->dirfd, t->name, 0700) != 0) {
        return kiln__fail(err, -errno, "%s: cannot create directory: %s", what,
                          strerror(errno));
    }
    fd = kiln__snap_open_dir(t->dirfd, t->name, what, err);
    if (fd < 0) {
        return fd;
    }
    /* Removed and made again by this writer: hide what was below. */
    rc = had ? kiln__snap_make_marker(fd, SNAP_WH_OPAQUE, what, err) : 0;
    kiln__snap_meta_from_attr(&m, attr, 0755);
    m.times = false;
    if (rc == 0) {
        rc = kiln__snap_meta_apply(-1, NULL, fd, false, &m, what, err);
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* Creates the directory at canonical `path`, adding its fd to fds. */
static int mkdir_one(kiln_snap_writer_t *w, const char *path,
                     const kiln_snap_attr_t *attr, int *fds, size_t *nfds,
                     kiln_error_t *err)
{
    snap_target_t t;
    int rc = kiln__snap_prepare(w, path, false, &t, err);

    if (rc == 0 && (t.name == NULL || w->walk.e.layer >= 0)) {
        rc = kiln__fail(err, -EEXIST, "%s: already exists", w->walk.e.path);
    }
    if (rc == 0) {
        rc = make_dir(w, &t, attr, &fds[*nfds], err);
        *nfds += rc == 0;
    }
    target_close(&t);
    return rc;
}

#define MKDIR_MAX 512

/* mkdir -p: resolve, create the first missing directory, again. */
static int mkdir_parents(kiln_snap_writer_t *w, const char *path,
                         const kiln_snap_attr_t *attr, int *fds, size_t *nfds,
                         kiln_error_t *err)
{
    char missing[sizeof(w->walk.e.path)];
    kiln_error_t probe;

    while (*nfds < MKDIR_MAX) {
        const kiln_snap_entry_t *e = &w->walk.e;
        int rc = kiln__snap_walk(&w->walk, path, true, &probe);

        if (rc == KILN_ENOENT && e->layer < 0 && e->path[0] == '/') {
            memcpy(missing, e->path, sizeof(missing));
            rc = mkdir_one(w, missing, attr, fds, nfds, err);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (rc != 0) {
            if (err != NULL) {
                *err = probe;
            }
            return rc;
        }
        if (e->layer >= 0 || strcmp(e->path, "/") == 0) {
            return S_ISDIR(e->st.st_mode) || e->layer < 0
                       ? 0
                       : kiln__fail(err, -EEXIST,
                                    "%s: exists and is not a directory",
                                    e->path);
        }
        memcpy(missing, e->path, sizeof(missing));
        return mkdir_one(w, missing, attr, fds, nfds, err);
    }
    return kiln__fail(err, KILN_EINVAL, "%s: too many directories to create",
                      path);
}

int kiln__snap_mkdir(kiln_snap_writer_t *w, const char *path,
                     const kiln_snap_attr_t *attr, bool parents,
                     kiln_error_t *err)
{
    int fds[MKDIR_MAX];
    size_t nfds = 0;
    snap_meta_t m;
    int rc;

    if (w->finished) {
        return kiln__fail(err, KILN_EINVAL, "%s: the layer is finished", path);
    }
    if (parents) {
        rc = mkdir_parents(w, path, attr, fds, &nfds, err);
    } else {
        rc = mkdir_one(w, path, attr, fds, &nfds, err);
    }
    /* Times last: making a child changes its parent's mtime. */
    kiln__snap_meta_from_attr(&m, attr, 0755);
    for (size_t i = 0; i < nfds; i++) {
        if (rc == 0 && m.times) {
            rc = kiln__snap_set_times(-1, NULL, fds[i], m.ts, path, err);
        }
        close(fds[i]);
    }
    return rc;
}

/* Makes room for a new non-directory at t->name. */
static int clear_for_leaf(kiln_snap_writer_t *w, snap_target_t *t,
                          bool replace_ok, kiln_error_t *err)
{
    const kiln_snap_entry_t *e = &w->walk.e;
    bool had;

    if (!replace_ok && (t->name == NULL || e->layer >= 0)) {
        return kiln__fail(err, -EEXIST, "%s: already exists", e->path);
    }
    if (t->name == NULL || (e->layer >= 0 && S_ISDIR(e->st.st_mode))) {
        return kiln__fail(err, -EISDIR, "%s: is a directory", e->path);
    }
    if (e->layer < 0) {
        return kiln__snap_unwhiteout(t->dirfd, t->name, &had, e->path, err);
    }
    if (e->layer == w->top && unlinkat(t->dirfd, t->name, 0) != 0) {
        return kiln__fail(err, -errno, "%s: cannot remove: %s", e->path,
                          strerror(errno));
    }
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int kiln__snap_write_file(kiln_snap_writer_t *w, const char *path,
                          const void *data, size_t len,
                          const kiln_snap_attr_t *attr, kiln_error_t *err)
{
    const char *what = w->walk.e.path;
    snap_target_t t;
    snap_meta_t m;
    int fd, rc;

    rc = kiln__snap_prepare(w, path, false, &t, err);
    if (rc == 0) {
        rc = clear_for_leaf(w, &t, true, err);
    }
    if (rc == 0) {
        fd = openat(t.dirfd, t.name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        rc = fd < 0 ? -errno : write_all(fd, data, len);
        if (rc != 0) {
            rc = kiln__fail(err, rc, "%s: cannot write: %s", what,
                            strerror(-rc));
        }
        kiln__snap_meta_from_attr(&m, attr, 0644);
        if (rc == 0) {
            rc = kiln__snap_meta_apply(-1, NULL, fd, false, &m, what, err);
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    target_close(&t);
    return rc;
}

int kiln__snap_symlink(kiln_snap_writer_t *w, const char *target,
                       const char *path, const kiln_snap_attr_t *attr,
                       kiln_error_t *err)
{
    const char *what = w->walk.e.path;
    snap_target_t t;
    snap_meta_t m;
    int rc;

    rc = kiln__snap_prepare(w, path, false, &t, err);
    if (rc == 0) {
        rc = clear_for_leaf(w, &t, false, err);
    }
    if (rc == 0 && symlinkat(target, t.dirfd, t.name) != 0) {
        rc = kiln__fail(err, -errno, "%s: cannot create symlink: %s", what,
                        strerror(errno));
    }
    if (rc == 0) {
        kiln__snap_meta_from_attr(&m, attr, KILN_SNAP_MODE_UNSET);
        rc = kiln__snap_meta_apply(t.dirfd, t.name, -1, true, &m, what, err);
    }
    target_close(&t);
    return rc;
}

int kiln__snap_remove(kiln_snap_writer_t *w, const char *path,
                      kiln_error_t *err)
{
    const kiln_snap_entry_t *e = &w->walk.e;
    snap_target_t t;
    bool below = false;
    int rc;

    rc = kiln__snap_prepare(w, path, false, &t, err);
    if (rc == 0 && t.name == NULL) {
        rc = kiln__fail(err, KILN_EINVAL, "%s: cannot remove the root", path);
    } else if (rc == 0 && e->layer < 0) {
        rc = kiln__fail(err, KILN_ENOENT, "%s: not found", e->path);
    }
    if (rc == 0) {
        rc = exists_below(w, &below, err);
    }
    if (rc == 0 && e->layer == w->top) {
        rc = kiln__snap_rm_tree(t.dirfd, t.name, e->path, err);
    }
    if (rc == 0 && below) {
        rc = kiln__snap_whiteout(t.dirfd, t.name, e->path, err);
    }
    target_close(&t);
    return rc;
}
