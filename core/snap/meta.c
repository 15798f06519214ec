/* Metadata (owner, mode, times, xattrs) and file data. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "snap_int.h"

void kiln__snap_meta_from_stat(snap_meta_t *m, const struct stat *st,
                               const kiln_snap_attr_t *ov)
{
    m->uid = st->st_uid;
    m->gid = st->st_gid;
    m->mode = st->st_mode & 07777;
    m->times = true;
    m->ts[0] = st->st_atim;
    m->ts[1] = st->st_mtim;
    if (ov == NULL) {
        return;
    }
    if (ov->uid >= 0) {
        m->uid = ov->uid;
    }
    if (ov->gid >= 0) {
        m->gid = ov->gid;
    }
    if (ov->mode != KILN_SNAP_MODE_UNSET) {
        m->mode = ov->mode & 07777;
    }
    if (ov->mtime_ns >= 0) {
        m->ts[1].tv_sec = (time_t)(ov->mtime_ns / 1000000000);
        m->ts[1].tv_nsec = (long)(ov->mtime_ns % 1000000000);
        m->ts[0] = m->ts[1];
    }
}

void kiln__snap_meta_from_attr(snap_meta_t *m, const kiln_snap_attr_t *a,
                               mode_t default_mode)
{
    m->uid = a ? a->uid : -1;
    m->gid = a ? a->gid : -1;
    m->mode =
        a && a->mode != KILN_SNAP_MODE_UNSET ? a->mode & 07777 : default_mode;
    m->times = a && a->mtime_ns >= 0;
    if (m->times) {
        m->ts[1].tv_sec = (time_t)(a->mtime_ns / 1000000000);
        m->ts[1].tv_nsec = (long)(a->mtime_ns % 1000000000);
        m->ts[0] = m->ts[1];
    }
}

static int node_stat(int dirfd, const char *name, int fd, struct stat *st)
{
    return fd >= 0 ? fstat(fd, st)
                   : fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW);
}

static int apply_owner(int dirfd, const char *name, int fd,
                       const snap_meta_t *m, const char *what,
                       kiln_error_t *err)
{
    uid_t uid = m->uid >= 0 ? (uid_t)m->uid : (uid_t)-1;
    gid_t gid = m->gid >= 0 ? (gid_t)m->gid : (gid_t)-1;
    struct stat st;
    int r, e;

    r = fd >= 0 ? fchown(fd, uid, gid)
                : fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r == 0) {
        return 0;
    }
    e = errno;
    if (e != EPERM && e != EINVAL) {
        return kiln__fail(err, -e, "%s: cannot change owner: %s", what,
                          strerror(e));
    }
    /* Asking for the owner it already has is not a change. */
    if (node_stat(dirfd, name, fd, &st) == 0 &&
        (m->uid < 0 || st.st_uid == (uid_t)m->uid) &&
        (m->gid < 0 || st.st_gid == (gid_t)m->gid)) {
        return 0;
    }
    return kiln__fail(err, -EPERM,
                      "%s: cannot change owner to %lld:%lld: ownership "
                      "changes need root (or CAP_CHOWN); running as uid %u",
                      what, (long long)m->uid, (long long)m->gid,
                      (unsigned)geteuid());
}

static int apply_mode(int dirfd, const char *name, int fd, mode_t mode,
                      const char *what, kiln_error_t *err)
{
    int r;

    if (fd >= 0) {
        r = fchmod(fd, mode);
    } else {
        r = fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW);
        if (r != 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)) {
            struct stat st;
            /* No fchmodat2 and no /proc: chmod only if not a symlink. */
            if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                !S_ISLNK(st.st_mode)) {
                r = fchmodat(dirfd, name, mode, 0);
            }
        }
    }
    if (r != 0) {
        return kiln__fail(err, -errno, "%s: cannot change mode: %s", what,
                          strerror(errno));
    }
    return 0;
}

int kiln__snap_set_times(int dirfd, const char *name, int fd,
                         const struct timespec ts[2], const char *what,
                         kiln_error_t *err)
{
    int r = fd >= 0 ? futimens(fd, ts)
                    : utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);

    if (r != 0) {
        return kiln__fail(err, -errno, "%s: cannot set times: %s", what,
                          strerror(errno));
    }
    return 0;
}

int kiln__snap_meta_apply(int dirfd, const char *name, int fd, bool is_link,
                          const snap_meta_t *m, const char *what,
                          kiln_error_t *err)
{
    int rc = 0;

    /* Owner first: chown clears the setuid and setgid bits. */
    if (m->uid >= 0 || m->gid >= 0) {
        rc = apply_owner(dirfd, name, fd, m, what, err);
    }
    if (rc == 0 && !is_link && m->mode != KILN_SNAP_MODE_UNSET) {
        rc = apply_mode(dirfd, name, fd, m->mode, what, err);
    }
    if (rc == 0 && m->times) {
        rc = kiln__snap_set_times(dirfd, name, fd, m->ts, what, err);
    }
    return rc;
}

/* The xattr names of fd, or NULL (none, unsupported, or out of memory). */
static char *list_xattrs(int fd, ssize_t *len)
{
    char *buf = NULL;

    for (int tries = 0; tries < 4; tries++) {
        ssize_t n = flistxattr(fd, NULL, 0);
        if (n <= 0) {
            break;
        }
        buf = malloc((size_t)n);
        if (buf == NULL) {
            break;
        }
        *len = flistxattr(fd, buf, (size_t)n);
        if (*len >= 0) {
            return buf;
        }
        free(buf);
        buf = NULL;
        if (errno != ERANGE) {
            break;
        }
    }
    *len = 0;
    return NULL;
}

/* Overlayfs keeps its own state in trusted.overlay.*; never carry it. */
static bool skip_xattr(const char *name)
{
    return strncmp(name, "trusted.overlay.", 16) == 0;
}

static ssize_t get_xattr(int fd, const char *name, char **val)
{
    ssize_t n = fgetxattr(fd, name, NULL, 0);

    *val = NULL;
    if (n < 0) {
        return -1;
    }
    *val = malloc(n > 0 ? (size_t)n : 1);
    if (*val == NULL) {
        return -1;
    }
    n = fgetxattr(fd, name, *val, (size_t)n);
    if (n < 0) {
        free(*val);
        *val = NULL;
    }
    return n;
}

/* Copies what the kernel allows: errors are ignored on purpose (no user.*
 * on some file systems, security.* and trusted.* need privileges). */
void kiln__snap_copy_xattrs(int src_fd, int dst_fd)
{
    ssize_t len;
    char *names = list_xattrs(src_fd, &len);

    for (ssize_t i = 0; names != NULL && i < len;) {
        const char *name = names + i;
        char *val;
        ssize_t n;

        i += (ssize_t)strlen(name) + 1;
        if (skip_xattr(name)) {
            continue;
        }
        n = get_xattr(src_fd, name, &val);
        if (n >= 0) {
            (void)fsetxattr(dst_fd, name, val, (size_t)n, 0);
        }
        free(val);
    }
    free(names);
}

/* Number of xattrs of `names` that `other` has with the same value; -1 if
 * one differs. */
static ssize_t xattrs_match(int fd, const char *names, ssize_t len, int other)
{
    ssize_t count = 0;

    for (ssize_t i = 0; i < len;) {
        const char *name = names + i;
        char *a, *b;
        ssize_t na, nb;
        bool same;

        i += (ssize_t)strlen(name) + 1;
        if (skip_xattr(name)) {
            continue;
        }
        na = get_xattr(fd, name, &a);
        nb = get_xattr(other, name, &b);
        same = na == nb && (na <= 0 || memcmp(a, b, (size_t)na) == 0);
        free(a);
        free(b);
        if (!same) {
            return -1;
        }
        count++;
    }
    return count;
}

int kiln__snap_xattrs_equal(int a, int b)
{
    ssize_t la, lb, ca, cb;
    char *na = list_xattrs(a, &la);
    char *nb = list_xattrs(b, &lb);

    ca = xattrs_match(a, na, la, b);
    cb = ca < 0 ? -1 : xattrs_match(b, nb, lb, a);
    free(na);
    free(nb);
    return ca >= 0 && cb >= 0 && ca == cb;
}

static int copy_rw(int in, int out, const char *what, kiln_error_t *err)
{
    size_t size = 128 * 1024;
    char *buf = malloc(size);
    int rc = 0;

    if (buf == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (;;) {
        ssize_t n = read(in, buf, size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = n < 0 ? kiln__fail(err, KILN_EIO, "%s: read error: %s", what,
                                    strerror(errno))
                       : 0;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t m = write(out, buf + off, (size_t)(n - off));
            if (m < 0 && errno != EINTR) {
                rc = kiln__fail(err, -errno, "%s: write error: %s", what,
                                strerror(errno));
                goto out;
            }
            off += m > 0 ? m : 0;
        }
    }
out:
    free(buf);
    return rc;
}

int kiln__snap_copy_data(int in, int out, const char *what, kiln_error_t *err)
{
    bool first = true;

    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0) {
            return 0;
        }
        if (n > 0) {
            first = false;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (first && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                      errno == EOPNOTSUPP || errno == EBADF)) {
            return copy_rw(in, out, what, err);
        }
        return kiln__fail(err, -errno, "%s: cannot copy data: %s", what,
                          strerror(errno));
    }
}

static ssize_t read_full(int fd, char *buf, size_t size, off_t off)
{
    size_t got = 0;

    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, off + (off_t)got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int kiln__snap_same_content(int a, int b, bool *same, const char *what,
                            kiln_error_t *err)
{
    size_t size = 64 * 1024;
    char *ba = malloc(size), *bb = malloc(size);
    int rc = 0;

    *same = true;
    if (ba == NULL || bb == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (off_t off = 0; rc == 0;) {
        ssize_t na = read_full(a, ba, size, off);
        ssize_t nb = read_full(b, bb, size, off);
        if (na < 0 || nb < 0) {
            rc = kiln__fail(err, KILN_EIO, "%s: read error: %s", what,
                            strerror(errno));
        } else if (na != nb || memcmp(ba, bb, (size_t)na) != 0) {
            *same = false;
            break;
        } else if (na == 0) {
            break;
        }
        off += na;
    }
    free(ba);
    free(bb);
    return rc;
}
