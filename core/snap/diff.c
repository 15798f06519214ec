/*
 * The layer between two views: both trees are walked together in name
 * order; what only upper has is copied, what only lower has gets a
 * whiteout, what both have is compared and copied when it differs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

typedef struct differ {
    const kiln_snap_view_t *lower, *upper;
    snap_copier_t c; /* from upper; c.src == c.dst == the current path */
    kiln_error_t *err;
} differ_t;

static int diff_dir(differ_t *d, const snap_dir_t *ldir, const snap_dir_t *udir,
                    int out, bool *changed);

static bool same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool same_meta(const struct stat *a, const struct stat *b)
{
    return a->st_mode == b->st_mode && a->st_uid == b->st_uid &&
           a->st_gid == b->st_gid && same_time(&a->st_mtim, &b->st_mtim);
}

/* Compares xattrs and, for regular files, content. */
static int same_data(differ_t *d, const snap_ent_t *le, const snap_ent_t *ue,
                     bool *same)
{
    const char *rel = d->c.src;
    int flags = S_ISDIR(ue->st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY;
    int a, b, rc = 0;

    *same = true;
    if (!S_ISDIR(ue->st.st_mode) && !S_ISREG(ue->st.st_mode)) {
        return 0; /* xattrs of special files are not compared */
    }
    a = kiln__snap_layer_open(d->lower, le->layer, rel, flags);
    b = kiln__snap_layer_open(d->upper, ue->layer, rel, flags);
    if (a < 0 || b < 0) {
        rc = kiln__snap_errno(d->err, errno, "cannot open", rel);
    } else {
        *same = kiln__snap_xattrs_equal(a, b);
        if (*same && S_ISREG(ue->st.st_mode)) {
            rc = kiln__snap_same_content(a, b, same, rel, d->err);
        }
    }
    if (a >= 0) {
        close(a);
    }
    if (b >= 0) {
        close(b);
    }
    return rc;
}

static int same_link(differ_t *d, const snap_ent_t *le, const snap_ent_t *ue,
                     bool *same)
{
    char a[PATH_MAX], b[PATH_MAX];
    ssize_t na = readlinkat(d->lower->fds[le->layer], d->c.src, a, sizeof(a));
    ssize_t nb = readlinkat(d->upper->fds[ue->layer], d->c.src, b, sizeof(b));

    if (na < 0 || nb < 0) {
        return kiln__snap_errno(d->err, errno, "cannot read link", d->c.src);
    }
    *same = na == nb && memcmp(a, b, (size_t)na) == 0;
    return 0;
}

/* Whether two non-directories (or two directories' own metadata) are
 * equal. */
static int same_entry(differ_t *d, const snap_ent_t *le, const snap_ent_t *ue,
                      bool *same)
{
    const struct stat *a = &le->st, *b = &ue->st;

    *same = false;
    if (a->st_dev == b->st_dev && a->st_ino == b->st_ino) {
        *same = true; /* one layer file seen by both */
        return 0;
    }
    if (!same_meta(a, b)) {
        return 0;
    }
    if ((S_ISREG(a->st_mode) && a->st_size != b->st_size) ||
        ((S_ISCHR(a->st_mode) || S_ISBLK(a->st_mode)) &&
         a->st_rdev != b->st_rdev)) {
        return 0;
    }
    if (S_ISLNK(a->st_mode)) {
        return same_link(d, le, ue, same);
    }
    return same_data(d, le, ue, same);
}

/* The layers of directory `e` of v, looked up in `dir` at d->c.src (the
 * parent); empty for non-directories and absent entries. */
static int child_dir(differ_t *d, const kiln_snap_view_t *v,
                     const snap_dir_t *dir, const snap_ent_t *e, int *buf,
                     snap_dir_t *out)
{
    snap_child_t c = {-1, {0}, buf, 0};
    int rc = 0;

    if (e != NULL && S_ISDIR(e->st.st_mode)) {
        rc = kiln__snap_lookup(v, dir, d->c.src, e->name, &c, d->err);
    }
    out->layers = buf;
    out->n = c.n;
    return rc;
}

/* Copies upper's entry (at d->c.src, its layers uc) into out. */
static int add_entry(differ_t *d, const snap_dir_t *uc, int out,
                     const snap_ent_t *ue)
{
    snap_frame_t f;

    kiln__snap_frame_init(&f, &d->c, out);
    return kiln__snap_copy_entry(&d->c, &f, ue->name, ue->layer, &ue->st, uc,
                                 false);
}

/* Two directories: recurse; keep the result only if something differs. */
static int diff_dirs(differ_t *d, const snap_dir_t *lc, const snap_dir_t *uc,
                     int out, const snap_ent_t *le, const snap_ent_t *ue,
                     bool *changed)
{
    bool same = false, sub = false;
    int fd = -1, rc;

    rc = same_entry(d, le, ue, &same);
    if (rc == 0) {
        rc =
            kiln__snap_copy_node(&d->c, ue->layer, &ue->st, out, ue->name, &fd);
    }
    if (rc == 0) {
        rc = diff_dir(d, lc, uc, fd, &sub);
    }
    if (rc == 0 && (sub || !same)) {
        rc = kiln__snap_copy_dir_done(&d->c, fd, &ue->st);
        *changed = true;
    } else if (rc == 0) {
        close(fd);
        fd = -1;
        if (unlinkat(out, ue->name, AT_REMOVEDIR) != 0) {
            rc = kiln__snap_errno(d->err, errno, "cannot remove", d->c.dst);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

/* Compares or copies one name, at d->c.src (pushed). */
static int diff_pushed(differ_t *d, const snap_dir_t *lc, const snap_dir_t *uc,
                       int out, const snap_ent_t *le, const snap_ent_t *ue,
                       bool *changed)
{
    bool same = false;
    int rc = 0;

    if (ue == NULL) {
        *changed = true;
        return kiln__snap_whiteout(out, le->name, d->c.dst, d->err);
    }
    if (le != NULL && S_ISDIR(le->st.st_mode) && S_ISDIR(ue->st.st_mode)) {
        return diff_dirs(d, lc, uc, out, le, ue, changed);
    }
    if (le != NULL && (le->st.st_mode & S_IFMT) == (ue->st.st_mode & S_IFMT)) {
        rc = same_entry(d, le, ue, &same);
    }
    if (rc == 0 && !same) {
        *changed = true;
        rc = add_entry(d, uc, out, ue);
    }
    return rc;
}

/* One name: only in lower (le), only in upper (ue), or in both. */
static int diff_name(differ_t *d, const snap_dir_t *ldir,
                     const snap_dir_t *udir, int out, const snap_ent_t *le,
                     const snap_ent_t *ue, bool *changed)
{
    const char *name = ue != NULL ? ue->name : le->name;
    size_t len = strlen(d->c.src);
    int *buf = malloc((d->lower->n + d->upper->n + 1) * sizeof(int));
    snap_dir_t lc, uc;
    int rc;

    if (buf == NULL) {
        return kiln__fail(d->err, KILN_ENOMEM, "out of memory");
    }
    /* Child lookups first: they need the parent's path. */
    rc = child_dir(d, d->lower, ldir, le, buf, &lc);
    if (rc == 0) {
        rc = child_dir(d, d->upper, udir, ue, buf + d->lower->n, &uc);
    }
    if (rc == 0 && (kiln__snap_push(d->c.src, name) == (size_t)-1 ||
                    kiln__snap_push(d->c.dst, name) == (size_t)-1)) {
        rc = kiln__fail(d->err, -ENAMETOOLONG, "/%s/%s: path too long",
                        d->c.src, name);
    }
    if (rc == 0) {
        rc = diff_pushed(d, &lc, &uc, out, le, ue, changed);
    }
    d->c.src[len] = '\0';
    d->c.dst[len] = '\0';
    free(buf);
    return rc;
}

static int diff_dir(differ_t *d, const snap_dir_t *ldir, const snap_dir_t *udir,
                    int out, bool *changed)
{
    snap_list_t ll, ul;
    size_t i = 0, j = 0;
    int rc;

    rc = kiln__snap_list(d->lower, ldir, d->c.src, &ll, d->err);
    if (rc != 0) {
        return rc;
    }
    rc = kiln__snap_list(d->upper, udir, d->c.src, &ul, d->err);
    while (rc == 0 && (i < ll.n || j < ul.n)) {
        int cmp = i == ll.n   ? 1
                  : j == ul.n ? -1
                              : strcmp(ll.ents[i].name, ul.ents[j].name);
        const snap_ent_t *le = cmp <= 0 ? &ll.ents[i++] : NULL;
        const snap_ent_t *ue = cmp >= 0 ? &ul.ents[j++] : NULL;

        rc = diff_name(d, ldir, udir, out, le, ue, changed);
    }
    kiln__snap_list_free(&ll);
    kiln__snap_list_free(&ul);
    return rc;
}

int kiln__snap_diff(const kiln_snap_view_t *lower,
                    const kiln_snap_view_t *upper, const char *layer_dir,
                    kiln_error_t *err)
{
    snap_dir_t lroot = {lower->root, lower->nroot};
    snap_dir_t uroot = {upper->root, upper->nroot};
    differ_t d = {lower, upper, {0}, err};
    bool changed = false;
    int fd, rc;

    fd = kiln__snap_open_empty(layer_dir, err);
    if (fd < 0) {
        return fd;
    }
    rc = kiln__snap_copier_init(&d.c, upper, fd, NULL, err);
    if (rc == 0) {
        d.c.link = true;
        rc = diff_dir(&d, &lroot, &uroot, fd, &changed);
        kiln__snap_copier_free(&d.c);
    }
    if (rc == 0) {
        rc = kiln__snap_root_meta(upper, fd, err);
    }
    close(fd);
    if (rc != 0) {
        kiln__fail_prefix(err, rc, "diff into %s", layer_dir);
    }
    return rc;
}
