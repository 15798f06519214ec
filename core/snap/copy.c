/* Copying one entry of a view: files, symlinks, directories, devices. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

struct snap_ino {
    dev_t dev;
    ino_t ino;
    char *path; /* NULL: free slot */
};

static size_t ino_slot(const snap_inomap_t *m, dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;

    h ^= h >> 29;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const struct snap_ino *s = &m->slots[i];
        if (s->path == NULL || (s->dev == dev && s->ino == ino)) {
            return i;
        }
    }
}

const char *kiln__snap_inomap_get(const snap_inomap_t *m, dev_t dev, ino_t ino)
{
    return m->cap ? m->slots[ino_slot(m, dev, ino)].path : NULL;
}

static int inomap_grow(snap_inomap_t *m)
{
    snap_inomap_t n = {NULL, m->cap ? m->cap * 2 : 64, m->n};

    n.slots = calloc(n.cap, sizeof(*n.slots));
    if (n.slots == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].path != NULL) {
            n.slots[ino_slot(&n, m->slots[i].dev, m->slots[i].ino)] =
                m->slots[i];
        }
    }
    free(m->slots);
    *m = n;
    return 0;
}

int kiln__snap_inomap_put(snap_inomap_t *m, dev_t dev, ino_t ino, const char *p)
{
    struct snap_ino *s;

    if ((m->n + 1) * 2 > m->cap && inomap_grow(m) != 0) {
        return KILN_ENOMEM;
    }
    s = &m->slots[ino_slot(m, dev, ino)];
    if (s->path != NULL) {
        return 0;
    }
    s->path = strdup(p);
    if (s->path == NULL) {
        return KILN_ENOMEM;
    }
    s->dev = dev;
    s->ino = ino;
    m->n++;
    return 0;
}

int kiln__snap_copier_init(snap_copier_t *c, const kiln_snap_view_t *from,
                           int dst_root, const kiln_snap_view_t *dview,
                           kiln_error_t *err)
{
    memset(c, 0, sizeof(*c));
    c->from = from;
    c->dst_root = dst_root;
    c->dview = dview;
    c->err = err;
    c->fent = malloc(sizeof(*c->fent));
    if (dview != NULL) {
        c->scratch = malloc((dview->n ? dview->n : 1) * sizeof(int));
    }
    if (c->fent == NULL || (dview != NULL && c->scratch == NULL)) {
        kiln__snap_copier_free(c);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}

void kiln__snap_inomap_free(snap_inomap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].path);
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

void kiln__snap_copier_free(snap_copier_t *c)
{
    kiln__snap_inomap_free(&c->inodes);
    free(c->scratch);
    free(c->fent);
    c->scratch = NULL;
    c->fent = NULL;
}

size_t kiln__snap_push(char *buf, const char *name)
{
    size_t len = strlen(buf), nl = strlen(name);

    if (len + nl + 2 > PATH_MAX - 1) {
        return (size_t)-1;
    }
    if (len > 0) {
        buf[len] = '/';
        memcpy(buf + len + 1, name, nl + 1);
    } else {
        memcpy(buf, name, nl + 1);
    }
    return len;
}

static int remember(snap_copier_t *c, const struct stat *st)
{
    if (st->st_nlink > 1 && kiln__snap_inomap_put(&c->inodes, st->st_dev,
                                                  st->st_ino, c->dst) != 0) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}

/* Errors after which a hard link is replaced by a copy. */
static bool link_fallback(int e)
{
    return e == EXDEV || e == EMLINK || e == EPERM || e == EACCES;
}

static int copy_reg_data(snap_copier_t *c, int layer, const struct stat *st,
                         int dirfd, const char *name, const char *what)
{
    snap_meta_t m;
    int in, out, rc;

    in = kiln__snap_layer_open(c->from, layer, c->src, O_RDONLY);
    if (in < 0) {
        return kiln__snap_errno(c->err, errno, "cannot open", c->src);
    }
    out = openat(dirfd, name,
                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = kiln__fail(c->err, -errno, "%s: cannot create: %s", what,
                        strerror(errno));
        close(in);
        return rc;
    }
    rc = kiln__snap_copy_data(in, out, what, c->err);
    if (rc == 0) {
        kiln__snap_copy_xattrs(in, out);
        kiln__snap_meta_from_stat(&m, st, c->ov);
        rc = kiln__snap_meta_apply(-1, NULL, out, false, &m, what, c->err);
    }
    close(in);
    close(out);
    return rc;
}

static int copy_reg(snap_copier_t *c, int layer, const struct stat *st,
                    int dirfd, const char *name, const char *what)
{
    const char *prev = NULL;
    int rc;

    if (st->st_nlink > 1) {
        prev = kiln__snap_inomap_get(&c->inodes, st->st_dev, st->st_ino);
    }
    if (prev != NULL && linkat(c->dst_root, prev, dirfd, name, 0) == 0) {
        return 0;
    }
    if (c->link && c->ov == NULL) {
        /* Layer files never change: sharing the inode is safe. */
        if (linkat(c->from->fds[layer], c->src, dirfd, name, 0) == 0) {
            return remember(c, st);
        }
        if (!link_fallback(errno)) {
            return kiln__fail(c->err, -errno, "%s: cannot link: %s", what,
                              strerror(errno));
        }
    }
    rc = copy_reg_data(c, layer, st, dirfd, name, what);
    return rc == 0 ? remember(c, st) : rc;
}

static int copy_lnk(snap_copier_t *c, int layer, const struct stat *st,
                    int dirfd, const char *name, const char *what)
{
    char target[PATH_MAX];
    snap_meta_t m;
    ssize_t n;

    n = readlinkat(c->from->fds[layer], c->src, target, sizeof(target));
    if (n < 0 || (size_t)n >= sizeof(target)) {
        return kiln__snap_errno(c->err, n < 0 ? errno : ENAMETOOLONG,
                                "cannot read link", c->src);
    }
    target[n] = '\0';
    if (symlinkat(target, dirfd, name) != 0) {
        return kiln__fail(c->err, -errno, "%s: cannot create symlink: %s", what,
                          strerror(errno));
    }
    kiln__snap_meta_from_stat(&m, st, c->ov);
    return kiln__snap_meta_apply(dirfd, name, -1, true, &m, what, c->err);
}

static int copy_dir_start(snap_copier_t *c, int layer, const struct stat *st,
                          int dirfd, const char *name, const char *what,
                          int *dir_fd)
{
    snap_meta_t m;
    int fd, sfd, rc;

    if (mkdirat(dirfd, name, 0700) != 0) {
        return kiln__fail(c->err, -errno, "%s: cannot create directory: %s",
                          what, strerror(errno));
    }
    fd = kiln__snap_open_dir(dirfd, name, what, c->err);
    if (fd < 0) {
        return fd;
    }
    if (layer >= 0) {
        sfd = kiln__snap_layer_open(c->from, layer, c->src,
                                    O_RDONLY | O_DIRECTORY);
        if (sfd >= 0) {
            kiln__snap_copy_xattrs(sfd, fd);
            close(sfd);
        }
    }
    kiln__snap_meta_from_stat(&m, st, c->ov);
    m.mode = KILN_SNAP_MODE_UNSET; /* mode and times after the contents */
    m.times = false;
    rc = kiln__snap_meta_apply(-1, NULL, fd, false, &m, what, c->err);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *dir_fd = fd;
    return 0;
}

int kiln__snap_copy_dir_done(snap_copier_t *c, int fd, const struct stat *st)
{
    char what[PATH_MAX + 1];
    snap_meta_t m;

    snprintf(what, sizeof(what), "/%s", c->dst);
    kiln__snap_meta_from_stat(&m, st, c->ov);
    m.uid = -1;
    m.gid = -1;
    return kiln__snap_meta_apply(-1, NULL, fd, false, &m, what, c->err);
}

static int copy_special(snap_copier_t *c, const struct stat *st, int dirfd,
                        const char *name, const char *what)
{
    snap_meta_t m;

    if (mknodat(dirfd, name, (st->st_mode & S_IFMT) | 0600, st->st_rdev)) {
        if (errno == EPERM) {
            return kiln__fail(c->err, -EPERM,
                              "%s: creating device nodes needs root", what);
        }
        return kiln__fail(c->err, -errno, "%s: cannot create: %s", what,
                          strerror(errno));
    }
    kiln__snap_meta_from_stat(&m, st, c->ov);
    return kiln__snap_meta_apply(dirfd, name, -1, false, &m, what, c->err);
}

int kiln__snap_copy_node(snap_copier_t *c, int layer, const struct stat *st,
                         int dirfd, const char *name, int *dir_fd)
{
    char what[PATH_MAX + 1];

    snprintf(what, sizeof(what), "/%s", c->dst);
    if (dir_fd != NULL) {
        *dir_fd = -1;
    }
    switch (st->st_mode & S_IFMT) {
    case S_IFDIR:
        return copy_dir_start(c, layer, st, dirfd, name, what, dir_fd);
    case S_IFREG:
        return copy_reg(c, layer, st, dirfd, name, what);
    case S_IFLNK:
        return copy_lnk(c, layer, st, dirfd, name, what);
    default:
        return copy_special(c, st, dirfd, name, what);
    }
}
