/*
 * The entries of a layer tar, created in the layer directory relative to
 * directory descriptors opened with O_NOFOLLOW, never through a symlink;
 * directory modes and times are applied after the last entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oci/unpack_int.h"

/* Records an allocation failure in `err` and returns KILN_ENOMEM. */
static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* Opens the directory `name` in `dfd` without following a symlink,
 * creating it (0755) if `create` and it is missing. */
static int open_dir(ux_t *x, int dfd, const char *name, bool create, int *out)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST) {
            return kiln__fail(x->err, KILN_EIO, "entry %s: mkdir %s: %s",
                              x->name, name, strerror(errno));
        }
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        int e = errno;
        return kiln__fail(x->err,
                          e == ELOOP || e == ENOTDIR ? KILN_EINVAL
                          : e == ENOENT              ? KILN_ENOENT
                                                     : KILN_EIO,
                          "entry %s: %s: %s", x->name, name,
                          e == ELOOP ? "is a symlink, not followed"
                                     : strerror(e));
    }
    *out = fd;
    return 0;
}

/*
 * Checks and splits the archive path `path` in place: a leading "/" is
 * dropped, empty and "." components skipped, ".." rejected. Sets *leaf to
 * the last component (NULL for the root) and returns the parent's
 * descriptor in *pfd (opened through no symlink; created if `create`).
 */
static int walk(ux_t *x, char *path, bool create, int *pfd, char **leaf)
{
    char *comp[PATH_MAX / 2];
    size_t n = 0;
    int fd, rc = 0;

    *leaf = NULL;
    *pfd = -1;
    if (strlen(path) >= PATH_MAX) {
        return kiln__fail(x->err, KILN_EINVAL, "entry %.200s...: path too long",
                          x->name);
    }
    for (char *save = NULL, *c = strtok_r(path, "/", &save); c != NULL;
         c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0) {
            continue;
        }
        if (strcmp(c, "..") == 0) {
            return kiln__fail(x->err, KILN_EINVAL,
                              "entry %s: \"..\" in the path is not allowed",
                              x->name);
        }
        if (strlen(c) > NAME_MAX) {
            return kiln__fail(x->err, KILN_EINVAL,
                              "entry %s: a name is longer than %d bytes",
                              x->name, NAME_MAX);
        }
        comp[n++] = c;
    }
    fd = dup(x->root_fd);
    if (fd < 0) {
        return kiln__fail(x->err, KILN_EIO, "dup: %s", strerror(errno));
    }
    for (size_t i = 0; n > 0 && i + 1 < n && rc == 0; i++) {
        int next;
        rc = open_dir(x, fd, comp[i], create, &next);
        close(fd);
        fd = rc == 0 ? next : -1;
    }
    if (rc < 0) {
        return rc;
    }
    *pfd = fd;
    *leaf = n > 0 ? comp[n - 1] : NULL;
    return 0;
}

/* Records directory `path` for its mode and times after the last entry. */
static int add_dir(ux_t *x, const char *path, struct archive_entry *ae)
{
    dirrec_t *d;

    if (x->n_dirs == x->cap_dirs) {
        size_t cap = x->cap_dirs ? x->cap_dirs * 2 : 64;
        dirrec_t *v = realloc(x->dirs, cap * sizeof(*v));
        if (v == NULL) {
            return oom(x->err);
        }
        x->dirs = v;
        x->cap_dirs = cap;
    }
    d = &x->dirs[x->n_dirs];
    d->path = strdup(path);
    if (d->path == NULL) {
        return oom(x->err);
    }
    d->seq = x->n_dirs++;
    d->mode = archive_entry_perm(ae);
    d->times[1].tv_sec = archive_entry_mtime(ae);
    d->times[1].tv_nsec = archive_entry_mtime_nsec(ae);
    if (!archive_entry_mtime_is_set(ae)) {
        d->times[1].tv_nsec = UTIME_OMIT;
    }
    d->times[0] = d->times[1];
    return 0;
}

/* Owner of the entry as root; -1 (unchanged) otherwise. */
static int entry_owner(ux_t *x, struct archive_entry *ae, uid_t *uid,
                       gid_t *gid)
{
    la_int64_t u = archive_entry_uid(ae), g = archive_entry_gid(ae);

    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (!x->is_root) {
        return 0;
    }
    if (u < 0 || u >= (la_int64_t)UINT32_MAX || g < 0 ||
        g >= (la_int64_t)UINT32_MAX) {
        return kiln__fail(x->err, KILN_EINVAL, "entry %s: owner out of range",
                          x->name);
    }
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return 0;
}

/* The entry's atime and mtime for utimensat (UTIME_OMIT when unset;
 * atime defaults to mtime). */
static void entry_times(struct archive_entry *ae, struct timespec ts[2])
{
    ts[1].tv_sec = archive_entry_mtime(ae);
    ts[1].tv_nsec = archive_entry_mtime_is_set(ae)
                        ? archive_entry_mtime_nsec(ae)
                        : UTIME_OMIT;
    ts[0].tv_sec = archive_entry_atime(ae);
    ts[0].tv_nsec = archive_entry_atime_is_set(ae)
                        ? archive_entry_atime_nsec(ae)
                    : ts[1].tv_nsec == UTIME_OMIT ? UTIME_OMIT
                                                  : 0;
    if (!archive_entry_atime_is_set(ae) && ts[1].tv_nsec != UTIME_OMIT) {
        ts[0] = ts[1];
    }
}

/* The entry's xattrs on `fd`: user.* always, others only as root. */
static int set_xattrs(ux_t *x, int fd, struct archive_entry *ae)
{
    const char *name;
    const void *val;
    size_t size;

    archive_entry_xattr_reset(ae);
    while (archive_entry_xattr_next(ae, &name, &val, &size) == ARCHIVE_OK) {
        if (strncmp(name, "user.", 5) != 0 && !x->is_root) {
            continue;
        }
        if (fsetxattr(fd, name, val, size, 0) < 0 && errno != ENOTSUP) {
            return kiln__fail(x->err, KILN_EIO, "entry %s: xattr %s: %s",
                              x->name, name, strerror(errno));
        }
    }
    return 0;
}

/* Owner, xattrs, mode and (unless a directory) times of the new `fd`. */
static int set_meta(ux_t *x, int fd, struct archive_entry *ae, bool is_dir)
{
    struct timespec ts[2];
    uid_t uid;
    gid_t gid;
    int rc = entry_owner(x, ae, &uid, &gid);

    if (rc == 0 && x->is_root && fchown(fd, uid, gid) < 0) {
        rc = kiln__fail(x->err, KILN_EIO, "entry %s: chown: %s", x->name,
                        strerror(errno));
    }
    if (rc == 0) {
        rc = set_xattrs(x, fd, ae);
    }
    if (rc == 0 && !is_dir && fchmod(fd, archive_entry_perm(ae)) < 0) {
        rc = kiln__fail(x->err, KILN_EIO, "entry %s: chmod: %s", x->name,
                        strerror(errno));
    }
    entry_times(ae, ts);
    if (rc == 0 && !is_dir && futimens(fd, ts) < 0) {
        rc = kiln__fail(x->err, KILN_EIO, "entry %s: set times: %s", x->name,
                        strerror(errno));
    }
    return rc;
}

/* A regular file (a whiteout stays empty) with its content and metadata. */
static int write_file(ux_t *x, int pfd, const char *leaf,
                      struct archive_entry *ae, bool whiteout)
{
    int fd = openat(pfd, leaf,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc = 0;
    la_ssize_t r;

    if (fd < 0) {
        return kiln__fail(x->err, KILN_EIO, "entry %s: create: %s", x->name,
                          strerror(errno));
    }
    /* A whiteout is an empty marker whatever the tar holds. */
    while (!whiteout && (r = archive_read_data(x->tar, x->dbuf, CHUNK)) != 0) {
        if (r < 0) {
            rc = kiln__oci_ux_stream_error(x, x->name);
            break;
        }
        if (kiln__oci_write_all(fd, x->dbuf, (size_t)r) < 0) {
            rc = kiln__fail(x->err, KILN_EIO, "entry %s: write: %s", x->name,
                            strerror(errno));
            break;
        }
    }
    if (rc == 0) {
        rc = set_meta(x, fd, ae, false);
    }
    close(fd);
    return rc;
}

/* Makes room for a new entry at `leaf`: an existing directory stays when
 * the new entry is one too (*keep), anything else is removed. */
static int make_room(ux_t *x, int pfd, const char *leaf, bool is_dir,
                     bool *keep)
{
    struct stat st;

    *keep = false;
    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return errno == ENOENT ? 0
                               : kiln__fail(x->err, KILN_EIO, "entry %s: %s",
                                            x->name, strerror(errno));
    }
    if (S_ISDIR(st.st_mode) && is_dir) {
        *keep = true;
        return 0;
    }
    if (unlinkat(pfd, leaf, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
        return kiln__fail(x->err, errno == ENOTEMPTY ? KILN_EINVAL : KILN_EIO,
                          "entry %s: cannot replace the earlier entry: %s",
                          x->name, strerror(errno));
    }
    return 0;
}

/* A hard link to `target`, an earlier non-directory of this layer. */
static int make_link(ux_t *x, int pfd, const char *leaf, const char *target)
{
    char *t = strdup(target), *tleaf;
    struct stat st;
    int tfd = -1, rc = t != NULL ? 0 : oom(x->err);

    if (rc == 0 && walk(x, t, false, &tfd, &tleaf) < 0) {
        rc = kiln__fail(x->err, KILN_EINVAL,
                        "entry %s: hardlink target %s is not an entry of this "
                        "layer reached through no symlink",
                        x->name, target);
    }
    if (rc == 0 && tleaf == NULL) {
        rc = kiln__fail(x->err, KILN_EINVAL,
                        "entry %s: hardlink to the layer root", x->name);
    }
    if (rc == 0 && fstatat(tfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = kiln__fail(x->err, KILN_EINVAL, "entry %s: hardlink target %s: %s",
                        x->name, target, strerror(errno));
    }
    if (rc == 0 && S_ISDIR(st.st_mode)) {
        rc = kiln__fail(x->err, KILN_EINVAL,
                        "entry %s: hardlink target %s is a directory", x->name,
                        target);
    }
    if (rc == 0 && linkat(tfd, tleaf, pfd, leaf, 0) < 0) {
        rc = kiln__fail(x->err, KILN_EIO, "entry %s: link to %s: %s", x->name,
                        target, strerror(errno));
    }
    if (tfd >= 0) {
        close(tfd);
    }
    free(t);
    return rc;
}

/* A directory (or the existing one, `keep`), recorded for finish. */
static int make_dir(ux_t *x, int pfd, const char *leaf, const char *path,
                    struct archive_entry *ae, bool keep)
{
    int fd, rc;

    if (!keep && mkdirat(pfd, leaf, 0700) < 0) {
        return kiln__fail(x->err, KILN_EIO, "entry %s: mkdir: %s", x->name,
                          strerror(errno));
    }
    rc = open_dir(x, pfd, leaf, false, &fd);
    if (rc == 0) {
        rc = set_meta(x, fd, ae, true);
        close(fd);
    }
    return rc == 0 ? add_dir(x, path, ae) : rc;
}

/* Symlinks, devices and fifos: metadata through the parent's fd. */
static int make_special(ux_t *x, int pfd, const char *leaf,
                        struct archive_entry *ae, mode_t type)
{
    struct timespec ts[2];
    uid_t uid;
    gid_t gid;
    int rc = entry_owner(x, ae, &uid, &gid);

    if (rc < 0) {
        return rc;
    }
    if (type == AE_IFLNK) {
        const char *t = archive_entry_symlink(ae);
        if (t == NULL || symlinkat(t, pfd, leaf) < 0) {
            return kiln__fail(x->err, KILN_EIO, "entry %s: symlink: %s",
                              x->name,
                              t == NULL ? "no target" : strerror(errno));
        }
    } else if (!x->is_root) {
        return kiln__fail(x->err, -EPERM,
                          "entry %s: device nodes and fifos need root",
                          x->name);
    } else if (mknodat(pfd, leaf, type | (archive_entry_perm(ae) & 0777),
                       type == AE_IFIFO ? 0 : archive_entry_rdev(ae)) < 0) {
        return kiln__fail(x->err, KILN_EIO, "entry %s: mknod: %s", x->name,
                          strerror(errno));
    }
    if (x->is_root && fchownat(pfd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
        return kiln__fail(x->err, KILN_EIO, "entry %s: chown: %s", x->name,
                          strerror(errno));
    }
    if (type != AE_IFLNK &&
        fchmodat(pfd, leaf, archive_entry_perm(ae), 0) < 0) {
        return kiln__fail(x->err, KILN_EIO, "entry %s: chmod: %s", x->name,
                          strerror(errno));
    }
    entry_times(ae, ts);
    if (utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0) {
        return kiln__fail(x->err, KILN_EIO, "entry %s: set times: %s", x->name,
                          strerror(errno));
    }
    return 0;
}

/* Creates the entry `ae` at `leaf` of `pfd`; `path` is its cleaned
 * path. */
static int make_entry(ux_t *x, int pfd, const char *leaf, const char *path,
                      struct archive_entry *ae)
{
    const char *hl = archive_entry_hardlink(ae);
    mode_t type = archive_entry_filetype(ae);
    bool is_dir = hl == NULL && type == AE_IFDIR, keep;
    bool whiteout = strncmp(leaf, ".wh.", 4) == 0;
    int rc;

    if (whiteout && (hl != NULL || type != AE_IFREG)) {
        return kiln__fail(x->err, KILN_EINVAL,
                          "entry %s: a whiteout must be a regular file",
                          x->name);
    }
    if (hl == NULL && type != AE_IFREG && type != AE_IFDIR &&
        type != AE_IFLNK && type != AE_IFCHR && type != AE_IFBLK &&
        type != AE_IFIFO) {
        return kiln__fail(x->err, KILN_EINVAL,
                          "entry %s: unsupported file type %o", x->name,
                          (unsigned)type);
    }
    rc = make_room(x, pfd, leaf, is_dir, &keep);
    if (rc < 0) {
        return rc;
    }
    if (hl != NULL) {
        return make_link(x, pfd, leaf, hl);
    }
    switch (type) {
    case AE_IFDIR:
        return make_dir(x, pfd, leaf, path, ae, keep);
    case AE_IFREG:
        return write_file(x, pfd, leaf, ae, whiteout);
    default:
        return make_special(x, pfd, leaf, ae, type);
    }
}

/* One entry: its path checked, its parents opened, then made. */
int kiln__oci_ux_apply_entry(ux_t *x, struct archive_entry *ae)
{
    const char *name = archive_entry_pathname(ae);
    char *path = name != NULL ? strdup(name) : NULL, *clean, *leaf;
    int pfd = -1, rc;

    if (name == NULL) {
        return kiln__fail(x->err, KILN_EBADMSG,
                          "layer tar: entry %llu has "
                          "no path",
                          (unsigned long long)x->entries);
    }
    x->name = name;
    if (path == NULL || (clean = strdup(name)) == NULL) {
        free(path);
        return oom(x->err);
    }
    rc = walk(x, path, true, &pfd, &leaf);
    if (rc == 0 && leaf == NULL) {
        /* The layer root: only its metadata, from a directory entry. */
        rc = archive_entry_filetype(ae) == AE_IFDIR &&
                     archive_entry_hardlink(ae) == NULL
                 ? add_dir(x, "", ae)
                 : kiln__fail(x->err, KILN_EINVAL,
                              "entry %s: the layer root must be a directory",
                              x->name);
    } else if (rc == 0) {
        /* `clean` becomes the joined components, to reopen directories. */
        char *p = clean;
        while (*p == '/') {
            p++;
        }
        memmove(clean, p, strlen(p) + 1);
        rc = make_entry(x, pfd, leaf, clean, ae);
    }
    if (pfd >= 0) {
        close(pfd);
    }
    free(path);
    free(clean);
    return rc;
}

/* qsort order of directory records: path, then latest entry first. */
static int cmp_dir_path(const void *a, const void *b)
{
    const dirrec_t *x = a, *y = b;
    int c = strcmp(x->path, y->path);

    return c != 0 ? c : x->seq < y->seq ? 1 : -1; /* latest first */
}

/* qsort order of directory records: last entry first. */
static int cmp_dir_seq(const void *a, const void *b)
{
    const dirrec_t *x = a, *y = b;

    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0; /* last first */
}

/* Modes and times of the directories: the latest entry of each path,
 * deepest (last in the tar) first. A directory a later entry replaced is
 * skipped. */
int kiln__oci_ux_finish_dirs(ux_t *x)
{
    size_t m = 0;
    int rc = 0;

    if (x->n_dirs == 0) {
        return 0;
    }
    qsort(x->dirs, x->n_dirs, sizeof(*x->dirs), cmp_dir_path);
    for (size_t i = 0; i < x->n_dirs; i++) {
        if (m > 0 && strcmp(x->dirs[m - 1].path, x->dirs[i].path) == 0) {
            free(x->dirs[i].path);
            continue;
        }
        x->dirs[m++] = x->dirs[i];
    }
    x->n_dirs = m;
    qsort(x->dirs, x->n_dirs, sizeof(*x->dirs), cmp_dir_seq);
    for (size_t i = 0; rc == 0 && i < x->n_dirs; i++) {
        char *p = strdup(x->dirs[i].path), *leaf;
        int pfd = -1, fd = -1;
        x->name = x->dirs[i].path;
        rc = p != NULL ? walk(x, p, false, &pfd, &leaf) : oom(x->err);
        if (rc == 0 && leaf != NULL) {
            fd = openat(pfd, leaf,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else if (rc == 0) {
            fd = dup(pfd);
        }
        if (rc == 0 && fd >= 0 &&
            (fchmod(fd, x->dirs[i].mode) < 0 ||
             futimens(fd, x->dirs[i].times) < 0)) {
            rc = kiln__fail(x->err, KILN_EIO, "entry %s: %s", x->name,
                            strerror(errno));
        }
        rc = rc == KILN_ENOENT || rc == KILN_EINVAL ? 0 : rc;
        if (fd >= 0) {
            close(fd);
        }
        if (pfd >= 0) {
            close(pfd);
        }
        free(p);
    }
    return rc;
}
