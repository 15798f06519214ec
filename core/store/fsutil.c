/*
 * File system helpers of the store: random names, directory creation,
 * recursive removal at any depth and whatever the permissions, syncing,
 * sizes, copies.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

void kiln__random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[64];
    size_t nb = (n + 1) / 2, got = 0;

    if (nb > sizeof(bytes)) {
        nb = sizeof(bytes);
    }
    while (got < nb) {
        ssize_t r = getrandom(bytes + got, nb - got, 0);

        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            /* No entropy source: names only need to be unlikely to clash
             * (creation fails on a clash and is retried). */
            struct timespec ts;

            clock_gettime(CLOCK_MONOTONIC, &ts);
            for (; got < nb; got++) {
                bytes[got] = (unsigned char)(ts.tv_nsec >> (got % 4 * 8)) ^
                             (unsigned char)(getpid() + (int)got * 31);
            }
        }
    }
    for (size_t i = 0; i < n && i / 2 < nb; i++) {
        out[i] = hex[i % 2 ? bytes[i / 2] & 15 : bytes[i / 2] >> 4];
    }
    out[n] = '\0';
}

bool kiln__is_hex(const char *s, size_t n)
{
    if (s == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[n] == '\0';
}

int kiln__mkdirs(const char *path, mode_t mode, kiln_error_t *err)
{
    char buf[4096];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf)) {
        return kiln__fail(err, KILN_EINVAL, "store root '%s': bad path", path);
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char c = *p;

        *p = '\0';
        if (mkdir(buf, c == '\0' ? mode : 0755) < 0 && errno != EEXIST) {
            int e = errno;

            return kiln__fail(err, e == ENOENT ? KILN_ENOENT : -e,
                              "creating %s: %s", buf, strerror(e));
        }
        *p = c;
        if (c == '\0') {
            return 0;
        }
    }
}

/* ---- recursive removal ---- */

/* Opens directory `name` under dirfd so that its entries can be removed:
 * an owner without rwx on it gets them (a layer may hold 0555 or 0000
 * directories). */
static int open_dir_rw(int dirfd, const char *name, struct stat *st)
{
    int fd =
        openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == EACCES && fchmodat(dirfd, name, 0700, 0) == 0) {
        fd = openat(dirfd, name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, st) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    if ((st->st_mode & 0700) != 0700) {
        fchmod(fd, (st->st_mode & 07777) | 0700);
    }
    return fd;
}

/* Removes the entries of the directory fd that are not non-empty
 * directories; *sub is the first non-empty subdirectory found (malloc'ed),
 * or NULL when fd is now empty (as far as this pass saw). */
static int clear_some(int fd, char **sub)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    DIR *d;
    int rc = 0;

    *sub = NULL;
    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        rc = -errno;
        if (dfd >= 0) {
            close(dfd);
        }
        return rc;
    }
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;

        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) {
            continue;
        }
        if (de->d_type != DT_DIR && unlinkat(fd, n, 0) == 0) {
            continue;
        }
        if (de->d_type != DT_DIR && errno != EISDIR) {
            if (errno == ENOENT) {
                continue;
            }
            rc = -errno;
            break;
        }
        if (unlinkat(fd, n, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            continue;
        }
        if (errno != ENOTEMPTY && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *sub = strdup(n);
        rc = *sub != NULL ? 0 : KILN_ENOMEM;
        break;
    }
    closedir(d);
    return rc;
}

typedef struct rm_level {
    char *name;
    dev_t dev;
    ino_t ino;
} rm_level_t;

/* Descends into `sub` of the current level, or climbs back up (through
 * "..", checked against the inode recorded on the way down) removing the
 * directory just emptied. Holds one descriptor at any depth. */
static int rm_step(int *fd, rm_level_t **lv, size_t *depth, size_t *cap,
                   char *sub)
{
    struct stat st;
    int nfd;

    if (sub != NULL) {
        if (*depth == *cap) {
            rm_level_t *n = realloc(*lv, (*cap * 2) * sizeof(**lv));

            if (n == NULL) {
                free(sub);
                return KILN_ENOMEM;
            }
            *lv = n;
            *cap *= 2;
        }
        nfd = open_dir_rw(*fd, sub, &st);
        if (nfd < 0) {
            free(sub);
            return nfd;
        }
        (*lv)[(*depth)++] = (rm_level_t){sub, st.st_dev, st.st_ino};
    } else {
        nfd = openat(*fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (nfd < 0 || fstat(nfd, &st) < 0) {
            int e = errno;

            if (nfd >= 0) {
                close(nfd);
            }
            return -e;
        }
        if (st.st_dev != (*lv)[*depth - 2].dev ||
            st.st_ino != (*lv)[*depth - 2].ino) {
            close(nfd);
            return -ESTALE; /* moved while being removed */
        }
        (*depth)--;
        if (unlinkat(nfd, (*lv)[*depth].name, AT_REMOVEDIR) < 0 &&
            errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
            int e = errno;

            close(nfd);
            return -e;
        }
        free((*lv)[*depth].name);
    }
    close(*fd);
    *fd = nfd;
    return 0;
}

static int rm_dir(int dirfd, const char *name)
{
    size_t depth = 1, cap = 16;
    rm_level_t *lv;
    struct stat st;
    char *sub;
    int fd, rc;

    fd = open_dir_rw(dirfd, name, &st);
    if (fd < 0) {
        return fd == -ENOENT ? 0 : fd;
    }
    lv = malloc(cap * sizeof(*lv));
    if (lv == NULL) {
        close(fd);
        return KILN_ENOMEM;
    }
    lv[0] = (rm_level_t){NULL, st.st_dev, st.st_ino};
    for (;;) {
        rc = clear_some(fd, &sub);
        if (rc == 0 && (sub != NULL || depth > 1)) {
            rc = rm_step(&fd, &lv, &depth, &cap, sub);
            if (rc == 0) {
                continue; /* scan the directory we are now in */
            }
        }
        if (rc < 0) {
            break;
        }
        close(fd);
        fd = -1;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            break;
        }
        if (errno != ENOTEMPTY && errno != EEXIST) {
            rc = -errno;
            break;
        }
        fd = open_dir_rw(dirfd, name, &st); /* a pass missed entries */
        if (fd < 0) {
            rc = fd == -ENOENT ? 0 : fd;
            break;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    while (depth > 1) {
        free(lv[--depth].name);
    }
    free(lv);
    return rc;
}

int kiln__rm_tree_at(int dirfd, const char *name, kiln_error_t *err)
{
    int rc;

    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) {
        return 0;
    }
    if (errno != EISDIR) {
        rc = -errno;
    } else if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
        return 0;
    } else {
        rc = rm_dir(dirfd, name);
    }
    if (rc < 0) {
        return kiln__fail(err, rc == KILN_ENOMEM ? rc : KILN_EIO,
                          "removing %s: %s", name, strerror(-rc));
    }
    return 0;
}

static int rename_noreplace(int from_fd, const char *from, int to_fd,
                            const char *to)
{
    if (renameat2(from_fd, from, to_fd, to, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS) {
        return -errno;
    }
    /* No RENAME_NOREPLACE on this file system: names are random, and a
     * directory only replaces an empty one. */
    return renameat(from_fd, from, to_fd, to) == 0 ? 0 : -errno;
}

int kiln__move_dir(int from_fd, const char *from, int to_fd, const char *to)
{
    struct stat st;
    int rc = rename_noreplace(from_fd, from, to_fd, to);

    /* Moving a directory to another parent rewrites its "..": without
     * root, that needs write permission on it (a layer root may be 0555). */
    if (rc != -EACCES || fstatat(from_fd, from, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISDIR(st.st_mode) || (st.st_mode & 0200) != 0 ||
        fchmodat(from_fd, from, (st.st_mode & 07777) | 0200, 0) < 0) {
        return rc;
    }
    rc = rename_noreplace(from_fd, from, to_fd, to);
    fchmodat(rc == 0 ? to_fd : from_fd, rc == 0 ? to : from, st.st_mode & 07777,
             0);
    return rc;
}

int kiln__fsync_fd(int fd, const char *what, kiln_error_t *err)
{
    if (fsync(fd) < 0 && errno != EINVAL) {
        return kiln__fail(err, KILN_EIO, "syncing %s: %s", what,
                          strerror(errno));
    }
    return 0;
}

/* ---- sizes ---- */

typedef struct tree_ino {
    dev_t dev;
    ino_t ino;
    uint64_t bytes;
} tree_ino_t;

/* nftw() has no user data: the walk's state is per thread. */
static _Thread_local struct {
    uint64_t bytes;
    tree_ino_t *links;
    size_t n, cap;
    bool oom;
} tree_walk;

static int tree_entry(const char *path, const struct stat *st, int type,
                      struct FTW *ftw)
{
    uint64_t bytes = (uint64_t)st->st_blocks * 512;

    (void)path;
    (void)ftw;
    if (type == FTW_NS) {
        return 0;
    }
    if (S_ISDIR(st->st_mode) || st->st_nlink < 2) {
        tree_walk.bytes += bytes;
        return 0;
    }
    if (tree_walk.n == tree_walk.cap) {
        size_t cap = tree_walk.cap ? tree_walk.cap * 2 : 64;
        tree_ino_t *n = realloc(tree_walk.links, cap * sizeof(*n));

        if (n == NULL) {
            tree_walk.oom = true;
            return 1;
        }
        tree_walk.links = n;
        tree_walk.cap = cap;
    }
    tree_walk.links[tree_walk.n++] =
        (tree_ino_t){st->st_dev, st->st_ino, bytes};
    return 0;
}

static int cmp_ino(const void *a, const void *b)
{
    const tree_ino_t *x = a, *y = b;

    if (x->dev != y->dev) {
        return x->dev < y->dev ? -1 : 1;
    }
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

int kiln__tree_size(const char *path, uint64_t *size, kiln_error_t *err)
{
    int rc;

    memset(&tree_walk, 0, sizeof(tree_walk));
    rc = nftw(path, tree_entry, 32, FTW_PHYS | FTW_MOUNT);
    if (tree_walk.n > 0) {
        qsort(tree_walk.links, tree_walk.n, sizeof(tree_ino_t), cmp_ino);
    }
    for (size_t i = 0; i < tree_walk.n; i++) {
        if (i == 0 || cmp_ino(&tree_walk.links[i - 1], &tree_walk.links[i])) {
            tree_walk.bytes += tree_walk.links[i].bytes;
        }
    }
    *size = tree_walk.bytes;
    free(tree_walk.links);
    if (tree_walk.oom) {
        return kiln__fail(err, KILN_ENOMEM, "%s: out of memory", path);
    }
    if (rc < 0) {
        return kiln__fail(err, KILN_EIO, "measuring %s: %s", path,
                          strerror(errno));
    }
    return 0;
}

int kiln__copy_file(const char *from, int to, kiln_error_t *err)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (in < 0) {
        return kiln__fail(err, errno == ENOENT ? KILN_ENOENT : KILN_EIO,
                          "%s: %s", from, strerror(errno));
    }
    while ((n = copy_file_range(in, NULL, to, NULL, 1 << 30, 0)) > 0) {
    }
    if (n < 0) { /* another file system, or no support: plain copy */
        while ((n = read(in, buf, sizeof(buf))) > 0) {
            for (ssize_t off = 0, w; off < n; off += w) {
                w = write(to, buf + off, (size_t)(n - off));
                if (w < 0 && errno != EINTR) {
                    n = -1;
                    break;
                }
                w = w < 0 ? 0 : w;
            }
            if (n < 0) {
                break;
            }
        }
    }
    if (n < 0) {
        int e = errno;

        close(in);
        return kiln__fail(err, KILN_EIO, "copying %s: %s", from, strerror(e));
    }
    close(in);
    return 0;
}

/* ---- name lists ---- */

int kiln__list_dir(int fd, str_list_t *out)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    DIR *d;

    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        int e = errno;

        if (dfd >= 0) {
            close(dfd);
        }
        return -e;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            kiln__sl_push(out, de->d_name) < 0) {
            closedir(d);
            return KILN_ENOMEM;
        }
    }
    closedir(d);
    return 0;
}

int kiln__sl_push(str_list_t *l, const char *s)
{
    char *d;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL) {
            return KILN_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    d = strdup(s);
    if (d == NULL) {
        return KILN_ENOMEM;
    }
    l->v[l->n++] = d;
    return 0;
}

void kiln__sl_free(str_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
