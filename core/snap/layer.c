/*
 * Operations inside one layer directory, always relative to a directory
 * descriptor and never following a symlink.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

int kiln__snap_open_dir(int dirfd, const char *name, const char *what,
                        kiln_error_t *err)
{
    int fd =
        openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENOTDIR) {
            /* Only ever a planted symlink or a race: refuse. */
            return kiln__fail(err, -ENOTDIR,
                              "%s: not a directory in the "
                              "layer",
                              what);
        }
        return kiln__fail(err, e == ENOENT ? KILN_ENOENT : -e,
                          "%s: cannot open directory: %s", what, strerror(e));
    }
    return fd;
}

/* Empties the directory fd; one pass, *removed counts what went. */
static int empty_dir(int fd, const char *what, int *removed, kiln_error_t *err)
{
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    struct dirent *d;
    DIR *dir;
    int rc = 0;

    if (dfd < 0 || (dir = fdopendir(dfd)) == NULL) {
        if (dfd >= 0) {
            close(dfd);
        }
        return kiln__fail(err, KILN_EIO, "%s: cannot read: %s", what,
                          strerror(errno));
    }
    rewinddir(dir); /* the offset is shared with fd */
    while (rc == 0 && (d = readdir(dir)) != NULL) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) {
            continue;
        }
        rc = kiln__snap_rm_tree(fd, d->d_name, what, err);
        (*removed)++;
    }
    closedir(dir);
    return rc;
}

static int rm_dir(int dirfd, const char *name, const char *what,
                  kiln_error_t *err)
{
    int fd = kiln__snap_open_dir(dirfd, name, what, err);
    int rc = 0, removed = 1;

    if (fd < 0) {
        return fd;
    }
    /* A read-only directory of our own layer (non-root): make it ours. */
    if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        (void)fchmod(fd, 0700);
    }
    while (rc == 0 && removed > 0) {
        removed = 0;
        rc = empty_dir(fd, what, &removed, err);
    }
    close(fd);
    if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) != 0) {
        rc = kiln__fail(err, -errno, "%s: cannot remove: %s", what,
                        strerror(errno));
    }
    return rc;
}

int kiln__snap_rm_tree(int dirfd, const char *name, const char *what,
                       kiln_error_t *err)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return errno == ENOENT
                   ? 0
                   : kiln__fail(err, -errno, "%s: %s", what, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return rm_dir(dirfd, name, what, err);
    }
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
        return kiln__fail(err, -errno, "%s: cannot remove: %s", what,
                          strerror(errno));
    }
    return 0;
}

int kiln__snap_make_marker(int dirfd, const char *name, const char *what,
                           kiln_error_t *err)
{
    int fd = openat(dirfd, name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);

    if (fd < 0 && errno != EEXIST) {
        return kiln__fail(err, -errno, "%s: cannot create %s: %s", what, name,
                          strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
    return 0;
}

int kiln__snap_whiteout(int dirfd, const char *name, const char *what,
                        kiln_error_t *err)
{
    char wh[NAME_MAX + SNAP_WH_PREFIX_LEN + 2];

    if (strlen(name) + SNAP_WH_PREFIX_LEN > NAME_MAX) {
        return kiln__fail(err, -ENAMETOOLONG,
                          "%s: name too long for a whiteout", what);
    }
    snprintf(wh, sizeof(wh), "%s%s", SNAP_WH_PREFIX, name);
    return kiln__snap_make_marker(dirfd, wh, what, err);
}

int kiln__snap_unwhiteout(int dirfd, const char *name, bool *had,
                          const char *what, kiln_error_t *err)
{
    char wh[NAME_MAX + SNAP_WH_PREFIX_LEN + 2];
    struct stat st;

    *had = false;
    if (strlen(name) + SNAP_WH_PREFIX_LEN > NAME_MAX) {
        return 0; /* cannot exist */
    }
    snprintf(wh, sizeof(wh), "%s%s", SNAP_WH_PREFIX, name);
    /* Cheaper than a failing unlinkat() in the common case. */
    if (fstatat(dirfd, wh, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
        return 0;
    }
    if (unlinkat(dirfd, wh, 0) == 0) {
        *had = true;
        return 0;
    }
    if (errno == ENOENT) {
        return 0;
    }
    return kiln__fail(err, -errno, "%s: cannot remove whiteout: %s", what,
                      strerror(errno));
}

int kiln__snap_dir_empty(int fd, bool *empty)
{
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    struct dirent *d;
    DIR *dir;

    *empty = true;
    if (dfd < 0 || (dir = fdopendir(dfd)) == NULL) {
        if (dfd >= 0) {
            close(dfd);
        }
        return -errno;
    }
    rewinddir(dir);
    while ((d = readdir(dir)) != NULL) {
        if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0) {
            *empty = false;
            break;
        }
    }
    closedir(dir);
    return 0;
}

bool kiln__snap_path_empty(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool empty = false;

    if (fd >= 0) {
        if (kiln__snap_dir_empty(fd, &empty) < 0) {
            empty = false;
        }
        close(fd);
    }
    return empty;
}
