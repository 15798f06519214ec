/*
 * From overlayfs back to the snapshot format (exec_int.h). overlayfs
 * records a deletion as a 0:0 character device and an opaque directory as
 * the xattr trusted.overlay.opaque (user.overlay.opaque without root);
 * layers (core/snap) use `.wh.NAME` files and `.wh..wh..opq` markers
 * instead, so that a layer is the OCI layer it exports as.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "exec/exec_int.h"
#include "snap/snap_int.h"

/* ---- whiteouts in lower layers ---- */

#define SCAN_CACHE 1024

static pthread_mutex_t scan_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *dir;
    bool wh;
} scanned[SCAN_CACHE];
static size_t n_scanned;

static bool scan_dir(int fd, int depth)
{
    DIR *d = fdopendir(fd);
    struct dirent *e;
    bool found = false;

    if (d == NULL) {
        close(fd);
        return true;
    }
    while (!found && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (strncmp(e->d_name, SNAP_WH_PREFIX, SNAP_WH_PREFIX_LEN) == 0) {
            found = true;
        } else if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
            int sub = openat(dirfd(d), e->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                found = depth > 256 || scan_dir(sub, depth + 1);
            } else if (errno != ENOTDIR && errno != ELOOP) {
                found = true;
            }
        }
    }
    closedir(d);
    return found;
}

bool kiln__exec_layer_has_whiteouts(const char *dir)
{
    bool wh;
    int fd;

    pthread_mutex_lock(&scan_mu);
    for (size_t i = 0; i < n_scanned; i++) {
        if (strcmp(scanned[i].dir, dir) == 0) {
            wh = scanned[i].wh;
            pthread_mutex_unlock(&scan_mu);
            return wh;
        }
    }
    pthread_mutex_unlock(&scan_mu);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    wh = fd < 0 || scan_dir(fd, 0);
    pthread_mutex_lock(&scan_mu);
    if (n_scanned < SCAN_CACHE && (scanned[n_scanned].dir = strdup(dir))) {
        scanned[n_scanned++].wh = wh;
    }
    pthread_mutex_unlock(&scan_mu);
    return wh;
}

/* ---- root metadata ---- */

int kiln__exec_copy_root_meta(const kiln_snap_view_t *lower, const char *dir,
                              kiln_error_t *err)
{
    kiln_snap_entry_t e;
    int rc = kiln__snap_resolve(lower, "/", true, &e, err);

    if (rc < 0) {
        return rc;
    }
    if (chown(dir, e.st.st_uid, e.st.st_gid) < 0 && errno != EPERM) {
        return kiln__fail(err, -errno, "%s: chown: %s", dir, strerror(errno));
    }
    if (chmod(dir, e.st.st_mode & 07777) < 0) {
        return kiln__fail(err, -errno, "%s: chmod: %s", dir, strerror(errno));
    }
    if (e.layer >= 0) {
        struct timespec ts[2] = {e.st.st_atim, e.st.st_mtim};
        if (utimensat(AT_FDCWD, dir, ts, AT_SYMLINK_NOFOLLOW) < 0) {
            return kiln__fail(err, -errno, "%s: times: %s", dir,
                              strerror(errno));
        }
    }
    return 0;
}

/* ---- stubs ---- */

/* The path of stub s relative to the mount at prefix, or NULL if the stub
 * is not below it. */
static const char *below(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);

    if (strcmp(prefix, "/") == 0) {
        return path;
    }
    if (strncmp(path, prefix, n) == 0 && path[n] == '/') {
        return path + n;
    }
    return NULL;
}

static int by_depth(const void *a, const void *b)
{
    const kiln__exec_stub_t *x = *(const kiln__exec_stub_t *const *)a;
    const kiln__exec_stub_t *y = *(const kiln__exec_stub_t *const *)b;
    size_t lx = strlen(x->path), ly = strlen(y->path);

    return lx < ly ? 1 : lx > ly ? -1 : strcmp(x->path, y->path);
}

/* Removes the stubs (deepest first) and, where a stub's parent is left
 * empty and exists below, gives the parent its times back. */
static int remove_stubs(const char *dir, const kiln_snap_view_t *lower,
                        const kiln__exec_stub_t *stubs, size_t n,
                        const char *prefix, kiln_error_t *err)
{
    const kiln__exec_stub_t **v = calloc(n + 1, sizeof(*v));
    size_t k = 0;

    if (v == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (below(stubs[i].path, prefix) != NULL) {
            v[k++] = &stubs[i];
        }
    }
    qsort(v, k, sizeof(*v), by_depth);
    for (size_t i = 0; i < k; i++) {
        const char *rel = below(v[i]->path, prefix);
        char path[8192], parent[8192];
        struct stat st;
        char *slash;

        snprintf(path, sizeof(path), "%s%s", dir, rel);
        if (lstat(path, &st) < 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode) ? rmdir(path) < 0
                                : (st.st_size != 0 || unlink(path) < 0)) {
            continue; /* something was put there: it stays */
        }
        snprintf(parent, sizeof(parent), "%s", rel);
        slash = strrchr(parent, '/');
        *(slash == parent ? slash + 1 : slash) = '\0';
        snprintf(path, sizeof(path), "%s%s", dir, parent);
        if (lower != NULL && kiln__snap_path_empty(path)) {
            kiln_snap_entry_t e;
            kiln_error_t ignored;

            if (kiln__snap_resolve(lower, parent, false, &e, &ignored) == 0 &&
                e.layer >= 0) {
                struct timespec ts[2] = {e.st.st_atim, e.st.st_mtim};
                utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
            }
        }
    }
    free(v);
    return 0;
}

int kiln__exec_remove_stubs(const char *dir, const kiln__exec_stub_t *stubs,
                            size_t n_stubs, const char *prefix,
                            kiln_error_t *err)
{
    return remove_stubs(dir, NULL, stubs, n_stubs, prefix, err);
}

/* ---- the upper directory ---- */

struct walk {
    const kiln_snap_view_t *lower;
    char path[4096]; /* of the directory being walked, "" for the root */
    kiln_error_t *err;
};

static bool is_ovl_xattr(const char *name)
{
    return strncmp(name, "trusted.overlay.", 16) == 0 ||
           strncmp(name, "user.overlay.", 13) == 0;
}

/* Removes overlayfs' own xattrs from fd; *opaque if it was marked so. */
static int strip_xattrs(int fd, bool *opaque, const char *what,
                        kiln_error_t *err)
{
    char names[65536];
    ssize_t n = flistxattr(fd, names, sizeof(names));

    *opaque = false;
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        const char *x = names + i;
        char v[8];

        if (!is_ovl_xattr(x)) {
            continue;
        }
        if (strcmp(strchr(x, '.') + 1, "overlay.opaque") == 0 &&
            fgetxattr(fd, x, v, sizeof(v)) >= 1 && v[0] == 'y') {
            *opaque = true;
        }
        if (fremovexattr(fd, x) < 0 && errno != ENODATA) {
            return kiln__fail(err, -errno, "%s: removing %s: %s", what, x,
                              strerror(errno));
        }
    }
    return 0;
}

/* A copied-up directory nothing changed: same type, mode, owner and
 * mtime as the directory below. */
static bool unchanged_dir(const struct walk *w, const char *path,
                          const struct stat *st)
{
    kiln_snap_entry_t e;
    kiln_error_t ignored;

    if (kiln__snap_resolve(w->lower, path, false, &e, &ignored) < 0 ||
        (e.layer < 0 && path[0] != '\0')) {
        return false;
    }
    return S_ISDIR(e.st.st_mode) && e.st.st_mode == st->st_mode &&
           e.st.st_uid == st->st_uid && e.st.st_gid == st->st_gid &&
           e.st.st_mtim.tv_sec == st->st_mtim.tv_sec &&
           e.st.st_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

static int list_names(int fd, char ***names, size_t *n)
{
    DIR *d = fdopendir(dup(fd));
    struct dirent *e;

    *names = NULL;
    *n = 0;
    if (d == NULL) {
        return -errno;
    }
    while ((e = readdir(d)) != NULL) {
        char **v;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        v = realloc(*names, (*n + 1) * sizeof(*v));
        if (v == NULL || (v[*n] = strdup(e->d_name)) == NULL) {
            if (v != NULL) {
                *names = v;
            }
            closedir(d);
            return KILN_ENOMEM;
        }
        *names = v;
        (*n)++;
    }
    closedir(d);
    return 0;
}

static int walk_dir(struct walk *w, int fd, bool *empty);

static int walk_entry(struct walk *w, int fd, const char *name, bool *kept)
{
    size_t plen = strlen(w->path);
    struct stat st;
    int rc = 0;

    *kept = true;
    if (strncmp(name, SNAP_WH_PREFIX, SNAP_WH_PREFIX_LEN) == 0) {
        return kiln__fail(w->err, KILN_EINVAL,
                          "%s/%s: the command made a name beginning with "
                          "'.wh.', which a layer cannot hold",
                          w->path, name);
    }
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return kiln__fail(w->err, -errno, "%s/%s: %s", w->path, name,
                          strerror(errno));
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
        if (unlinkat(fd, name, 0) < 0) {
            return kiln__fail(w->err, -errno, "%s/%s: %s", w->path, name,
                              strerror(errno));
        }
        return kiln__snap_whiteout(fd, name, name, w->err);
    }
    if (S_ISDIR(st.st_mode)) {
        int sub =
            openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        bool opaque = false, empty = false;

        if (sub < 0) {
            return kiln__fail(w->err, -errno, "%s/%s: %s", w->path, name,
                              strerror(errno));
        }
        if (plen + strlen(name) + 2 > sizeof(w->path)) {
            close(sub);
            return kiln__fail(w->err, -ENAMETOOLONG, "%s/%s: too long", w->path,
                              name);
        }
        snprintf(w->path + plen, sizeof(w->path) - plen, "/%s", name);
        rc = strip_xattrs(sub, &opaque, w->path, w->err);
        if (rc == 0) {
            rc = walk_dir(w, sub, &empty);
        }
        if (rc == 0 && opaque) {
            rc = kiln__snap_make_marker(sub, SNAP_WH_OPAQUE, w->path, w->err);
        } else if (rc == 0 && empty && fstat(sub, &st) == 0 &&
                   unchanged_dir(w, w->path, &st)) {
            *kept = unlinkat(fd, name, AT_REMOVEDIR) < 0;
        }
        close(sub);
        w->path[plen] = '\0';
        return rc;
    }
    if (S_ISREG(st.st_mode)) {
        int f = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        bool opaque;

        if (f >= 0) {
            rc = strip_xattrs(f, &opaque, name, w->err);
            close(f);
        }
    }
    return rc;
}

static int walk_dir(struct walk *w, int fd, bool *empty)
{
    char **names;
    size_t n, kept = 0;
    int rc = list_names(fd, &names, &n);

    if (rc < 0) {
        return kiln__fail(w->err, rc, "%s: cannot list: %s", w->path,
                          strerror(-rc));
    }
    for (size_t i = 0; i < n; i++) {
        bool k = true;

        if (rc == 0) {
            rc = walk_entry(w, fd, names[i], &k);
        }
        kept += k;
        free(names[i]);
    }
    free(names);
    *empty = kept == 0;
    return rc;
}

int kiln__exec_upper_to_layer(const char *upper, const kiln_snap_view_t *lower,
                              const kiln__exec_stub_t *stubs, size_t n_stubs,
                              const char *prefix, bool *empty,
                              kiln_error_t *err)
{
    struct walk w = {.lower = lower, .err = err};
    struct stat st;
    bool opaque = false;
    int fd, rc = remove_stubs(upper, lower, stubs, n_stubs, prefix, err);

    *empty = false;
    if (rc < 0) {
        return rc;
    }
    fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return kiln__fail(err, -errno, "%s: %s", upper, strerror(errno));
    }
    rc = strip_xattrs(fd, &opaque, "/", err);
    if (rc == 0) {
        rc = walk_dir(&w, fd, empty);
    }
    if (rc == 0 && opaque) {
        rc = kiln__snap_make_marker(fd, SNAP_WH_OPAQUE, "/", err);
        *empty = false;
    }
    if (rc == 0 && *empty) {
        *empty = fstat(fd, &st) == 0 && unchanged_dir(&w, "", &st);
    }
    close(fd);
    return rc;
}
