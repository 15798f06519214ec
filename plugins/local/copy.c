/*
 * fetch(): the selected tree into the (empty) fetch directory.
 *
 * Everything is created relative to directory file descriptors, with
 * O_NOFOLLOW and O_EXCL, so nothing is ever written through a symlink,
 * and the source is read the same way, so a directory swapped for a
 * symlink after resolve() is seen as a change. Regular files are cloned
 * (FICLONE) where the file system can, else copied with copy_file_range,
 * else read and written. A file whose metadata differs from what resolve()
 * hashed, or that was racily clean then, is hashed again from the copy:
 * a different content fails the fetch.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

#define PROGRESS_STEP (8u << 20)

typedef struct level {
    int src;
    int dst;
    size_t entry;   /* the directory's entry; SIZE_MAX for the root */
    size_t rel_len; /* strlen of its rel; 0 for the root */
} level_t;

typedef struct cp {
    const lc_ctx_t *c;
    const lc_tree_t *t;
    level_t *lv;
    size_t depth;
    bool root_user; /* preserve owners */
    bool no_clone;  /* FICLONE failed: the file systems cannot share data */
    void *buf;      /* LC_BUF_SIZE, for read/write copies and checks */
    uint64_t done;
    uint64_t total;
    uint64_t reported;
} cp_t;

static void times_of(const lc_entry_t *e, struct timespec ts[2])
{
    ts[0].tv_sec = ts[1].tv_sec = e->mtime_ns / 1000000000;
    ts[0].tv_nsec = ts[1].tv_nsec = e->mtime_ns % 1000000000;
    if (ts[0].tv_nsec < 0) {
        ts[0].tv_nsec = ts[1].tv_nsec += 1000000000;
        ts[0].tv_sec = --ts[1].tv_sec;
    }
}

/* Owner, permission bits (after chown, which clears set-id bits) and
 * times of a created file or directory. */
static int set_attrs(cp_t *p, int fd, const lc_entry_t *e)
{
    struct timespec ts[2];

    times_of(e, ts);
    if (p->root_user && fchown(fd, e->uid, e->gid) < 0) {
        return lc_fail_errno(p->c, errno, "chown copy of", e->rel);
    }
    if (fchmod(fd, e->mode & 07777) < 0 || futimens(fd, ts) < 0) {
        return lc_fail_errno(p->c, errno, "set attributes of copy of", e->rel);
    }
    return 0;
}

/* Leaves the directory on top: its attributes (when `apply`: not after a
 * failure, whose message must stay), then its descriptors. */
static int pop_level(cp_t *p, bool apply)
{
    level_t *l = &p->lv[--p->depth];
    int rc = l->entry == SIZE_MAX || !apply
                 ? 0
                 : set_attrs(p, l->dst, &p->t->v[l->entry]);

    close(l->src);
    close(l->dst);
    return rc;
}

static int buf_of(cp_t *p)
{
    if (p->buf == NULL) {
        p->buf = malloc(LC_BUF_SIZE);
    }
    return p->buf == NULL ? lc_oom(p->c) : 0;
}

static int read_write(cp_t *p, int in, int out, const char *rel)
{
    int rc = buf_of(p);

    while (rc == 0) {
        ssize_t n = read(in, p->buf, LC_BUF_SIZE), w = 0;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? lc_fail_errno(p->c, errno, "read", rel) : 0;
        }
        while (w < n) {
            ssize_t k = write(out, (char *)p->buf + w, (size_t)(n - w));
            if (k < 0 && errno != EINTR) {
                return lc_fail_errno(p->c, errno, "write copy of", rel);
            }
            w += k < 0 ? 0 : k;
        }
    }
    return rc;
}

/* The content of in into out (both at offset 0). */
static int copy_data(cp_t *p, int in, int out, const lc_entry_t *e)
{
    bool first = true;

    if (!p->no_clone && ioctl(out, FICLONE, in) == 0) {
        return 0;
    }
    p->no_clone = p->no_clone || errno == EOPNOTSUPP || errno == EXDEV ||
                  errno == EINVAL || errno == ENOTTY || errno == ENOSYS;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && first &&
            (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
             errno == EOPNOTSUPP || errno == EBADF || errno == EPERM)) {
            return read_write(p, in, out, e->rel);
        }
        if (n < 0) {
            return lc_fail_errno(p->c, errno, "copy", e->rel);
        }
        if (n == 0) {
            return 0;
        }
        first = false;
    }
}

/* Hashes the copy and compares it with the hash resolve() pinned. */
static int verify(cp_t *p, int out, const lc_entry_t *e)
{
    unsigned char h[LC_HASH_LEN];
    uint64_t bytes = 0;
    int rc = buf_of(p);

    if (rc == 0 && lseek(out, 0, SEEK_SET) < 0) {
        rc = lc_fail_errno(p->c, errno, "read copy of", e->rel);
    }
    if (rc == 0) {
        rc = lc_hash_fd(out, p->buf, h, &bytes);
        rc = rc < 0 ? lc_fail_errno(p->c, -rc, "read copy of", e->rel) : 0;
    }
    if (rc == 0 && memcmp(h, e->hash, LC_HASH_LEN) != 0) {
        rc = lc_fail_changed(p->c, e->rel);
    }
    return rc;
}

static int copy_file(cp_t *p, const level_t *l, const char *name,
                     const lc_entry_t *e)
{
    struct stat before, after;
    int in = lc_open_read(l->src, name), out = -1, rc = 0;
    bool same;

    if (in < 0) {
        return errno == ENOENT || errno == ELOOP
                   ? lc_fail_changed(p->c, e->rel)
                   : lc_fail_errno(p->c, errno, "open", e->rel);
    }
    if (fstat(in, &before) < 0 || !S_ISREG(before.st_mode)) {
        rc = lc_fail_changed(p->c, e->rel);
    }
    if (rc == 0) {
        out = openat(l->dst, name,
                     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        rc = out < 0 ? lc_fail_errno(p->c, errno, "create copy of", e->rel) : 0;
    }
    if (rc == 0) {
        rc = copy_data(p, in, out, e);
    }
    if (rc == 0 && fstat(in, &after) < 0) {
        rc = lc_fail_errno(p->c, errno, "stat", e->rel);
    }
    if (rc == 0) {
        same = lc_same_meta(e, &before) && lc_same_meta(e, &after);
        rc = !same || e->racy ? verify(p, out, e) : 0;
    }
    if (rc == 0) {
        rc = set_attrs(p, out, e);
    }
    if (out >= 0 && close(out) < 0 && rc == 0) {
        rc = lc_fail_errno(p->c, errno, "write copy of", e->rel);
    }
    close(in);
    p->done += e->size;
    if (rc == 0 && p->done - p->reported >= PROGRESS_STEP) {
        p->reported = p->done;
        p->c->host->progress(p->c->job, p->done, p->total);
    }
    return rc;
}

static int copy_link(cp_t *p, const level_t *l, const char *name,
                     const lc_entry_t *e)
{
    char target[4096];
    struct timespec ts[2];
    ssize_t n = readlinkat(l->src, name, target, sizeof(target) - 1);

    if (n < 0 || (target[n] = '\0', strcmp(target, e->link) != 0)) {
        return lc_fail_changed(p->c, e->rel);
    }
    if (symlinkat(e->link, l->dst, name) < 0) {
        return lc_fail_errno(p->c, errno, "create copy of", e->rel);
    }
    if (p->root_user &&
        fchownat(l->dst, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0) {
        return lc_fail_errno(p->c, errno, "chown copy of", e->rel);
    }
    times_of(e, ts);
    if (utimensat(l->dst, name, ts, AT_SYMLINK_NOFOLLOW) < 0) {
        return lc_fail_errno(p->c, errno, "set times of copy of", e->rel);
    }
    return 0;
}

static int copy_dir(cp_t *p, const level_t *l, const char *name, size_t i)
{
    const lc_entry_t *e = &p->t->v[i];
    level_t *next = &p->lv[p->depth];
    struct stat st;

    if (mkdirat(l->dst, name, 0700) < 0) {
        return lc_fail_errno(p->c, errno, "create copy of", e->rel);
    }
    next->src =
        openat(l->src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next->src < 0 || fstat(next->src, &st) < 0 || st.st_ino != e->ino ||
        st.st_dev != e->dev || st.st_mode != e->mode) {
        if (next->src >= 0) {
            close(next->src);
        }
        return lc_fail_changed(p->c, e->rel);
    }
    next->dst =
        openat(l->dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next->dst < 0) {
        close(next->src);
        return lc_fail_errno(p->c, errno, "open copy of", e->rel);
    }
    next->entry = i;
    next->rel_len = strlen(e->rel);
    p->depth++;
    return 0;
}

/* Pops the levels that are not a parent of rel (whose parent path is
 * rel[0..plen)). */
static int unwind(cp_t *p, const char *rel, size_t plen)
{
    int rc = 0;

    while (rc == 0 && p->depth > 1) {
        const level_t *l = &p->lv[p->depth - 1];

        if (l->rel_len == plen &&
            strncmp(p->t->v[l->entry].rel, rel, plen) == 0) {
            break;
        }
        rc = pop_level(p, true);
    }
    if (rc == 0 && p->depth == 1 && plen != 0) {
        rc = p->c->host->fail(p->c->job, -EINVAL,
                              "local source '%s': %s has no parent in the "
                              "tree",
                              p->c->name, rel);
    }
    return rc;
}

static int copy_entries(cp_t *p)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < p->t->n; i++) {
        const lc_entry_t *e = &p->t->v[i];
        const char *slash = strrchr(e->rel, '/');
        const char *name = slash ? slash + 1 : e->rel;
        const level_t *l;

        if (i % 256 == 0 && p->c->host->cancelled(p->c->job)) {
            return p->c->host->fail(p->c->job, -ECANCELED,
                                    "local source '%s': canceled", p->c->name);
        }
        rc = unwind(p, e->rel, slash ? (size_t)(slash - e->rel) : 0);
        l = &p->lv[p->depth - 1];
        if (rc < 0) {
            break;
        } else if (S_ISDIR(e->mode)) {
            rc = copy_dir(p, l, name, i);
        } else if (S_ISLNK(e->mode)) {
            rc = copy_link(p, l, name, e);
        } else {
            rc = copy_file(p, l, name, e);
        }
    }
    return rc;
}

int lc_copy_tree(const lc_ctx_t *c, const lc_tree_t *t, const char *dest_dir)
{
    cp_t p = {.c = c, .t = t, .root_user = geteuid() == 0};
    size_t max_depth = 1;
    int rc = 0;

    for (size_t i = 0; i < t->n; i++) {
        size_t d = 1;

        for (const char *s = t->v[i].rel; *s != '\0'; s++) {
            d += *s == '/';
        }
        max_depth = d > max_depth ? d : max_depth;
        p.total += S_ISREG(t->v[i].mode) ? t->v[i].size : 0;
    }
    p.lv = calloc(max_depth + 2, sizeof(*p.lv));
    if (p.lv == NULL) {
        return lc_oom(c);
    }
    p.lv[0].entry = SIZE_MAX;
    p.lv[0].src = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    p.lv[0].dst = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p.lv[0].src < 0 || p.lv[0].dst < 0) {
        int err = errno;
        rc = c->host->fail(c->job, -err, "local source '%s': open %s: %s",
                           c->name, p.lv[0].src < 0 ? c->root : dest_dir,
                           strerror(err));
        if (p.lv[0].src >= 0) {
            close(p.lv[0].src);
        }
        if (p.lv[0].dst >= 0) {
            close(p.lv[0].dst);
        }
    } else {
        p.depth = 1;
        rc = copy_entries(&p);
    }
    while (p.depth > 0) {
        int r = pop_level(&p, rc == 0);
        rc = rc == 0 ? r : rc;
    }
    if (rc == 0) {
        c->host->progress(c->job, p.done, p.total);
    }
    free(p.lv);
    free(p.buf);
    return rc;
}
