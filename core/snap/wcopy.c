/* Writers: copies between views, attribute changes, finishing a layer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

/* Whether `from` reads the layer being written (copying within it). */
static bool reads_own_layer(const kiln_snap_writer_t *w,
                            const kiln_snap_view_t *from)
{
    struct stat a, b;

    if (from == w->view) {
        return true;
    }
    if (from->n == 0 || fstat(w->fd, &a) != 0 ||
        fstat(from->fds[from->n - 1], &b) != 0) {
        return false;
    }
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int check_overlap(const kiln_snap_writer_t *w,
                         const kiln_snap_view_t *from,
                         const kiln_snap_entry_t *src, const char *dest,
                         kiln_error_t *err)
{
    size_t n = strlen(src->path);

    if (!reads_own_layer(w, from)) {
        return 0;
    }
    if (strcmp(src->path, dest) == 0) {
        return kiln__fail(err, KILN_EINVAL, "%s: cannot copy onto itself",
                          dest);
    }
    if (S_ISDIR(src->st.st_mode) &&
        (n == 1 || (strncmp(src->path, dest, n) == 0 && dest[n] == '/'))) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: cannot copy a directory into itself (%s)",
                          src->path, dest);
    }
    return 0;
}

static void copier_opts(snap_copier_t *c, const kiln_snap_copy_opts_t *o)
{
    if (o == NULL) {
        return;
    }
    c->ov = o->override;
    c->filter = o->filter;
    c->filter_ud = o->filter_ud;
    c->replace = o->replace;
}

/* The copy itself, once source and destination are resolved. */
static int copy_resolved(kiln_snap_writer_t *w, snap_copier_t *c,
                         const kiln_snap_entry_t *src, const snap_dir_t *sdir,
                         snap_target_t *t, kiln_error_t *err)
{
    snap_frame_t up;
    snap_dir_t ddir;

    snprintf(c->src, sizeof(c->src), "%s", src->path + 1);
    c->src_base = c->src[0] ? strlen(c->src) + 1 : 0;
    if (t->name == NULL) {
        /* Into the root: merge, the root keeps its metadata. */
        if (!S_ISDIR(src->st.st_mode)) {
            return kiln__fail(err, -EISDIR,
                              "/: cannot replace the root with a file");
        }
        kiln__snap_walk_dir(&w->walk, &ddir);
        kiln__snap_frame_init(&up, c, w->fd);
        up.merge = true;
        up.dlayers = (int *)ddir.layers;
        up.dn = ddir.n;
        return kiln__snap_copy_contents(c, sdir, &up);
    }
    kiln__snap_walk_parent(&w->walk, &ddir);
    snprintf(c->dst, sizeof(c->dst), "%s", w->walk.path);
    kiln__snap_frame_init(&up, c, t->dirfd);
    up.merge = true;
    up.dlayers = (int *)ddir.layers;
    up.dn = ddir.n;
    kiln__snap_push(c->dst, t->name);
    return kiln__snap_copy_entry(c, &up, t->name, src->layer, &src->st, sdir,
                                 true);
}

int kiln__snap_copy_ex(kiln_snap_writer_t *w, const kiln_snap_view_t *from,
                       const kiln_snap_entry_t *src, const char *dest,
                       const kiln_snap_copy_opts_t *opts, kiln_error_t *err)
{
    snap_target_t t = {-1, NULL};
    snap_dir_t sdir = {NULL, 0};
    snap_copier_t c;
    snap_walk_t sw;
    bool empty_root = from->n == 0 && strcmp(src->path, "/") == 0;
    int rc;

    if (src->layer < 0 && !empty_root) {
        return kiln__fail(err, KILN_ENOENT, "%s: not found", src->path);
    }
    if (kiln__snap_walk_init(&sw, from) != 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__snap_walk(&sw, src->path, false, err);
    if (rc == 0 && (sw.e.layer != src->layer ||
                    (sw.e.st.st_mode & S_IFMT) != (src->st.st_mode & S_IFMT))) {
        rc = kiln__fail(err, KILN_EINVAL, "%s: stale entry", src->path);
    }
    kiln__snap_walk_dir(&sw, &sdir);
    if (rc == 0) {
        rc = kiln__snap_prepare(w, dest, false, &t, err);
    }
    if (rc == 0) {
        rc = check_overlap(w, from, &sw.e, w->walk.e.path, err);
    }
    if (rc == 0) {
        rc = kiln__snap_copier_init(&c, from, w->fd, w->view, err);
        if (rc == 0) {
            copier_opts(&c, opts);
            rc = copy_resolved(w, &c, &sw.e, &sdir, &t, err);
            kiln__snap_copier_free(&c);
        }
    }
    if (t.dirfd >= 0) {
        close(t.dirfd);
    }
    kiln__snap_walk_free(&sw);
    return rc;
}

int kiln__snap_copy(kiln_snap_writer_t *w, const kiln_snap_view_t *from,
                    const kiln_snap_entry_t *src, const char *dest,
                    const kiln_snap_attr_t *override, kiln_error_t *err)
{
    kiln_snap_copy_opts_t o = {override, NULL, NULL, false};

    return kiln__snap_copy_ex(w, from, src, dest, &o, err);
}

/* Copies the entry t->name up from a lower layer, keeping its parent's
 * times (a copy-up changes nothing). */
static int copy_up_entry(kiln_snap_writer_t *w, snap_target_t *t,
                         kiln_error_t *err)
{
    const kiln_snap_entry_t *e = &w->walk.e;
    snap_copier_t c;
    struct stat pst;
    int fd = -1, rc;

    if (fstat(t->dirfd, &pst) != 0) {
        return kiln__snap_errno(err, errno, "cannot stat", w->walk.path);
    }
    rc = kiln__snap_copier_init(&c, w->view, w->fd, NULL, err);
    if (rc != 0) {
        return rc;
    }
    snprintf(c.src, sizeof(c.src), "%s", e->path + 1);
    snprintf(c.dst, sizeof(c.dst), "%s", e->path + 1);
    rc = kiln__snap_copy_node(&c, e->layer, &e->st, t->dirfd, t->name, &fd);
    if (rc == 0 && fd >= 0) {
        rc = kiln__snap_copy_dir_done(&c, fd, &e->st);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (rc == 0) {
        struct timespec ts[2] = {pst.st_atim, pst.st_mtim};
        rc = kiln__snap_set_times(-1, NULL, t->dirfd, ts, e->path, err);
    }
    kiln__snap_copier_free(&c);
    return rc;
}

int kiln__snap_setattr(kiln_snap_writer_t *w, const char *path,
                       const kiln_snap_attr_t *attr, kiln_error_t *err)
{
    const kiln_snap_entry_t *e = &w->walk.e;
    snap_target_t t;
    snap_meta_t m;
    int rc;

    rc = kiln__snap_prepare(w, path, false, &t, err);
    if (rc == 0 && t.name != NULL && e->layer < 0) {
        rc = kiln__fail(err, KILN_ENOENT, "%s: not found", e->path);
    }
    if (rc == 0 && t.name != NULL && e->layer != w->top) {
        rc = copy_up_entry(w, &t, err);
    }
    kiln__snap_meta_from_attr(&m, attr, KILN_SNAP_MODE_UNSET);
    if (rc == 0 && t.name == NULL) {
        rc = kiln__snap_meta_apply(-1, NULL, w->fd, false, &m, "/", err);
    } else if (rc == 0) {
        rc = kiln__snap_meta_apply(t.dirfd, t.name, -1, S_ISLNK(e->st.st_mode),
                                   &m, e->path, err);
    }
    if (t.dirfd >= 0) {
        close(t.dirfd);
    }
    return rc;
}

/* The hard link's source: an existing non-directory, copied up. */
static int link_source(kiln_snap_writer_t *w, const char *oldpath,
                       snap_target_t *t, char *name, kiln_error_t *err)
{
    const kiln_snap_entry_t *e = &w->walk.e;
    int rc = kiln__snap_prepare(w, oldpath, false, t, err);

    if (rc == 0 && (t->name == NULL || e->layer < 0)) {
        rc = kiln__fail(err, KILN_ENOENT, "%s: not found", oldpath);
    } else if (rc == 0 && S_ISDIR(e->st.st_mode)) {
        rc = kiln__fail(err, -EPERM, "%s: cannot hard link a directory",
                        e->path);
    } else if (rc == 0 && e->layer != w->top) {
        rc = copy_up_entry(w, t, err);
    }
    if (rc == 0) {
        snprintf(name, NAME_MAX + 1, "%s", t->name);
    }
    return rc;
}

int kiln__snap_link(kiln_snap_writer_t *w, const char *oldpath,
                    const char *path, kiln_error_t *err)
{
    const kiln_snap_entry_t *e = &w->walk.e;
    snap_target_t from = {-1, NULL}, to = {-1, NULL};
    char name[NAME_MAX + 1];
    int rc;

    rc = link_source(w, oldpath, &from, name, err);
    if (rc == 0) {
        rc = kiln__snap_prepare(w, path, false, &to, err);
    }
    if (rc == 0 && (to.name == NULL || e->layer >= 0)) {
        rc = kiln__fail(err, -EEXIST, "%s: already exists", e->path);
    }
    if (rc == 0) {
        bool had;
        rc = kiln__snap_unwhiteout(to.dirfd, to.name, &had, e->path, err);
    }
    if (rc == 0 && linkat(from.dirfd, name, to.dirfd, to.name, 0) != 0) {
        rc = kiln__fail(err, -errno, "%s: cannot link: %s", e->path,
                        strerror(errno));
    }
    if (from.dirfd >= 0) {
        close(from.dirfd);
    }
    if (to.dirfd >= 0) {
        close(to.dirfd);
    }
    return rc;
}

/* Disk usage of the directory fd, each inode once. */
static int layer_usage(int fd, snap_inomap_t *seen, uint64_t *size)
{
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    struct dirent *d;
    DIR *dir;
    int rc = 0;

    if (dfd < 0 || (dir = fdopendir(dfd)) == NULL) {
        if (dfd >= 0) {
            close(dfd);
        }
        return -errno;
    }
    rewinddir(dir);
    while (rc == 0 && (d = readdir(dir)) != NULL) {
        struct stat st;

        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0 ||
            fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;
        }
        if (st.st_nlink > 1 && !S_ISDIR(st.st_mode)) {
            if (kiln__snap_inomap_get(seen, st.st_dev, st.st_ino) != NULL) {
                continue;
            }
            rc = kiln__snap_inomap_put(seen, st.st_dev, st.st_ino, "");
        }
        *size += (uint64_t)st.st_blocks * 512;
        if (rc == 0 && S_ISDIR(st.st_mode)) {
            int sub = openat(fd, d->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sub < 0 ? -errno : layer_usage(sub, seen, size);
            if (sub >= 0) {
                close(sub);
            }
        }
    }
    closedir(dir);
    return rc;
}

int kiln__snap_writer_finish(kiln_snap_writer_t *w, uint64_t *size,
                             kiln_error_t *err)
{
    snap_inomap_t seen = {NULL, 0, 0};
    uint64_t total = 0;
    struct stat st;
    int rc;

    if (w->finished) {
        return kiln__fail(err, KILN_EINVAL, "the layer is already finished");
    }
    if (syncfs(w->fd) != 0) {
        return kiln__fail(err, KILN_EIO, "%s: cannot sync: %s",
                          w->view->dirs[w->top], strerror(errno));
    }
    w->finished = true;
    if (size == NULL) {
        return 0;
    }
    if (fstat(w->fd, &st) == 0) {
        total = (uint64_t)st.st_blocks * 512;
    }
    rc = layer_usage(w->fd, &seen, &total);
    kiln__snap_inomap_free(&seen);
    if (rc != 0) {
        return kiln__fail(err, rc, "%s: cannot measure: %s",
                          w->view->dirs[w->top], strerror(-rc));
    }
    *size = total;
    return 0;
}
