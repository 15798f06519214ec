/*
 * Lower directories for overlayfs (exec_int.h). A layer holds whiteouts as
 * `.wh.NAME` files and opaque directories as `.wh..wh..opq` markers, which
 * overlayfs would show as files; as root, such a layer gets a twin made
 * once per store that overlayfs reads natively: the same tree of hard
 * links to the layer's files, whiteouts as 0:0 character devices and
 * opaque directories marked with trusted.overlay.opaque. Layers never
 * change, so a twin stays right for as long as the store's tmp area (its
 * home) lives. Without root neither devices nor trusted xattrs can be
 * made, and the caller flattens the stack instead.
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

#define TWIN_CACHE 1024

static pthread_mutex_t twin_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *layer; /* layer directory */
    char *twin;  /* its twin, in a store's tmp area */
} twins[TWIN_CACHE];
static size_t n_twins;

/* A directory's metadata onto the twin's: owner, mode, xattrs, times. */
static int copy_dir_meta(int src, int dst, const struct stat *st)
{
    struct timespec ts[2] = {st->st_atim, st->st_mtim};

    if (fchown(dst, st->st_uid, st->st_gid) < 0 ||
        fchmod(dst, st->st_mode & 07777) < 0) {
        return -errno;
    }
    kiln__snap_copy_xattrs(src, dst);
    return futimens(dst, ts) < 0 ? -errno : 0;
}

static int twin_dir(int src, int dst, int depth);

static int twin_entry(int src, int dst, const char *name, int depth)
{
    struct stat st;

    if (strcmp(name, SNAP_WH_OPAQUE) == 0) {
        return fsetxattr(dst, "trusted.overlay.opaque", "y", 1, 0) < 0 ? -errno
                                                                       : 0;
    }
    if (strncmp(name, SNAP_WH_PREFIX, SNAP_WH_PREFIX_LEN) == 0) {
        return mknodat(dst, name + SNAP_WH_PREFIX_LEN, S_IFCHR | 0600,
                       makedev(0, 0)) < 0
                   ? -errno
                   : 0;
    }
    if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return -errno;
    }
    if (S_ISDIR(st.st_mode)) {
        int s, d, rc;

        if (depth > 4096 || mkdirat(dst, name, 0700) < 0) {
            return depth > 4096 ? -ELOOP : -errno;
        }
        s = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        d = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = s < 0 || d < 0 ? -errno : twin_dir(s, d, depth + 1);
        if (rc == 0) {
            rc = copy_dir_meta(s, d, &st);
        }
        if (s >= 0) {
            close(s);
        }
        if (d >= 0) {
            close(d);
        }
        return rc;
    }
    /* Files, symlinks, devices: the layer's own inode. */
    return linkat(src, name, dst, name, 0) < 0 ? -errno : 0;
}

static int twin_dir(int src, int dst, int depth)
{
    DIR *d = fdopendir(dup(src));
    struct dirent *e;
    int rc = 0;

    if (d == NULL) {
        return -errno;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            rc = twin_entry(src, dst, e->d_name, depth);
        }
    }
    closedir(d);
    return rc;
}

static int make_twin(const char *layer, const char *twin)
{
    int s = open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int d = open(twin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    int rc = s < 0 || d < 0 || fstat(s, &st) < 0 ? -errno : twin_dir(s, d, 0);

    if (rc == 0) {
        rc = copy_dir_meta(s, d, &st);
    }
    if (s >= 0) {
        close(s);
    }
    if (d >= 0) {
        close(d);
    }
    return rc;
}

/* The cached twin of `layer` made under `area` (a store's tmp area), if
 * it is still there. Caller holds twin_mu. */
static const char *cached(const char *layer, const char *area)
{
    size_t n = strlen(area);
    struct stat st;

    for (size_t i = 0; i < n_twins; i++) {
        if (strcmp(twins[i].layer, layer) == 0 &&
            strncmp(twins[i].twin, area, n) == 0 && twins[i].twin[n] == '/' &&
            stat(twins[i].twin, &st) == 0) {
            return twins[i].twin;
        }
    }
    return NULL;
}

int kiln__exec_lower_dir(kiln__store_t *store, const char *layer, char *out,
                         size_t size)
{
    const char *area = kiln__store_tmp_dir(store);
    const char *have;
    char *twin = NULL;
    kiln_error_t ignored;
    int rc = 0;

    if (!kiln__exec_layer_has_whiteouts(layer)) {
        snprintf(out, size, "%s", layer);
        return 0;
    }
    if (geteuid() != 0) {
        return KILN_ENOTSUP;
    }
    /* One maker at a time: a twin is made once, and quickly. */
    pthread_mutex_lock(&twin_mu);
    have = cached(layer, area);
    if (have != NULL) {
        snprintf(out, size, "%s", have);
        pthread_mutex_unlock(&twin_mu);
        return 0;
    }
    rc = kiln__store_mkdtemp(store, &twin, &ignored);
    if (rc == 0) {
        rc = make_twin(layer, twin);
    }
    if (rc == 0 && strlen(twin) + 1 > size) {
        rc = -ENAMETOOLONG;
    }
    if (rc == 0) {
        snprintf(out, size, "%s", twin);
        if (n_twins < TWIN_CACHE) {
            twins[n_twins].layer = strdup(layer);
            twins[n_twins].twin = strdup(twin);
            if (twins[n_twins].layer != NULL && twins[n_twins].twin != NULL) {
                n_twins++;
            } else {
                free(twins[n_twins].layer);
                free(twins[n_twins].twin);
            }
        }
    } else if (twin != NULL) {
        kiln__store_discard(store, twin, NULL);
    }
    free(twin);
    pthread_mutex_unlock(&twin_mu);
    return rc;
}
