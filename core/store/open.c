/*
 * Opening and closing a store: the default root, the layout, this store's
 * locked tmp area, sweeping the areas of dead processes, scratch paths.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

int kiln__store_default_root(char **out, kiln_error_t *err)
{
    const char *env = getenv("KILN_ROOT");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    kiln__buf_t b = KILN_BUF_INIT;

    *out = NULL;
    if (env != NULL && *env != '\0') {
        kiln__buf_puts(&b, env);
    } else if (geteuid() == 0) {
        kiln__buf_puts(&b, "/var/lib/kiln");
    } else if (xdg != NULL && xdg[0] == '/') {
        /* The XDG spec: a relative path there is invalid and ignored. */
        kiln__buf_printf(&b, "%s/kiln", xdg);
    } else if (home != NULL && *home != '\0') {
        kiln__buf_printf(&b, "%s/.local/share/kiln", home);
    } else {
        return kiln__fail(err, KILN_ENOENT,
                          "no store root: set KILN_ROOT, XDG_DATA_HOME or "
                          "HOME, or pass --root");
    }
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = (char *)b.data;
    return 0;
}

static int open_sub(kiln__store_t *s, const char *name, int *fd,
                    kiln_error_t *err)
{
    if (mkdirat(s->root_fd, name, 0700) < 0 && errno != EEXIST) {
        return kiln__fail(err, KILN_EIO, "creating %s/%s: %s", s->root, name,
                          strerror(errno));
    }
    *fd = openat(s->root_fd, name,
                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0) {
        return kiln__fail(err, KILN_EIO, "opening %s/%s: %s", s->root, name,
                          strerror(errno));
    }
    return 0;
}

static int make_layout(kiln__store_t *s, const char *root, kiln_error_t *err)
{
    char real[PATH_MAX];
    int rc = kiln__mkdirs(root, 0700, err);

    if (rc < 0) {
        return kiln__fail_prefix(err, rc, "store root");
    }
    if (realpath(root, real) == NULL) {
        return kiln__fail(err, KILN_EIO, "store root %s: %s", root,
                          strerror(errno));
    }
    s->root = strdup(real);
    if (s->root == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    s->root_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        return kiln__fail(err, KILN_EIO, "store root %s: %s", real,
                          strerror(errno));
    }
    rc = open_sub(s, "layers", &s->layers_fd, err);
    if (rc == 0) {
        rc = open_sub(s, "logs", &s->logs_fd, err);
    }
    if (rc == 0) {
        rc = open_sub(s, "tmp", &s->tmp_fd, err);
    }
    if (rc == 0 && mkdirat(s->root_fd, "blobs", 0700) < 0 && errno != EEXIST) {
        rc = kiln__fail(err, KILN_EIO, "creating %s/blobs: %s", s->root,
                        strerror(errno));
    }
    if (rc == 0) {
        rc = open_sub(s, "blobs/sha256", &s->blobs_fd, err);
    }
    return rc;
}

/* Locks the freshly made area `name`: 1 if this store now owns it, 0 if a
 * sweeper got there first (try another name), <0 on error. */
static int claim_area(kiln__store_t *s, const char *name, kiln_error_t *err)
{
    struct stat a, b;
    int fd = openat(s->tmp_fd, name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        return errno == ENOENT ? 0
                               : kiln__fail(err, KILN_EIO, "%s/tmp/%s: %s",
                                            s->root, name, strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;

        close(fd);
        if (e == EWOULDBLOCK || e == EINTR) {
            return 0;
        }
        return kiln__fail(err, KILN_EIO,
                          "%s/tmp: cannot lock (the store needs flock() to "
                          "share a root between processes): %s",
                          s->root, strerror(e));
    }
    /* A sweeper may have taken the lock between mkdir and flock, removed
     * the area and let go: then the name is gone or another inode. */
    if (fstat(fd, &a) < 0 ||
        fstatat(s->tmp_fd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
        a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        close(fd);
        return 0;
    }
    s->area_fd = fd;
    return 1;
}

static int create_area(kiln__store_t *s, kiln_error_t *err)
{
    char name[64], hex[17];
    size_t len;
    int rc;

    for (int attempt = 0; attempt < 64; attempt++) {
        kiln__random_hex(hex, 16);
        snprintf(name, sizeof(name), "%ld-%s", (long)getpid(), hex);
        if (mkdirat(s->tmp_fd, name, 0700) < 0) {
            if (errno == EEXIST) {
                continue;
            }
            return kiln__fail(err, KILN_EIO, "creating %s/tmp/%s: %s", s->root,
                              name, strerror(errno));
        }
        rc = claim_area(s, name, err);
        if (rc < 0) {
            return rc;
        }
        if (rc == 0) {
            continue;
        }
        len = strlen(s->root) + strlen(name) + 8;
        s->owner = strdup(name);
        s->tmp = malloc(len);
        if (s->owner == NULL || s->tmp == NULL) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        snprintf(s->tmp, len, "%s/tmp/%s", s->root, name);
        return 0;
    }
    return kiln__fail(err, KILN_EIO, "%s/tmp: could not create a tmp area",
                      s->root);
}

int kiln__area_alive(kiln__store_t *s, const char *name, bool sweep)
{
    int fd;

    if (s->owner != NULL && strcmp(name, s->owner) == 0) {
        return 1;
    }
    fd = openat(s->tmp_fd, name,
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;

        if ((e == ENOTDIR || e == ELOOP) && sweep) {
            unlinkat(s->tmp_fd, name, 0); /* a stray file */
        }
        /* Unknown trouble counts as alive: never hurt a live owner. */
        return e == ENOENT || e == ENOTDIR || e == ELOOP ? 0 : 1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return 1;
    }
    if (sweep) {
        kiln__rm_tree_at(s->tmp_fd, name, NULL);
    }
    close(fd);
    return 0;
}

/* Removes the areas of dead owners (never one whose lock is held). */
static void sweep_areas(kiln__store_t *s)
{
    int dfd = openat(s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    str_list_t names = {0};
    struct dirent *de;
    DIR *d;

    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        if (dfd >= 0) {
            close(dfd);
        }
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            strcmp(de->d_name, s->owner) != 0) {
            kiln__sl_push(&names, de->d_name);
        }
    }
    closedir(d);
    for (size_t i = 0; i < names.n; i++) {
        kiln__area_alive(s, names.v[i], true);
    }
    kiln__sl_free(&names);
}

static void free_store(kiln__store_t *s)
{
    if (s->db != NULL) {
        kiln__sdb_close(s);
    }
    if (s->area_fd >= 0) {
        /* Still locked while it goes, so no sweeper races with us. */
        if (s->owner != NULL) {
            kiln__rm_tree_at(s->tmp_fd, s->owner, NULL);
        }
        close(s->area_fd);
    }
    int fds[] = {s->tmp_fd, s->blobs_fd, s->logs_fd, s->layers_fd, s->root_fd};

    for (size_t i = 0; i < KILN_ARRAY_SIZE(fds); i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    free(s->tmp);
    free(s->owner);
    free(s->root);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int kiln__store_open(const char *root, kiln_error_t *err, kiln__store_t **out)
{
    kiln__store_t *s;
    char *def = NULL;
    int rc;

    *out = NULL;
    if (root == NULL) {
        rc = kiln__store_default_root(&def, err);
        if (rc < 0) {
            return rc;
        }
        root = def;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        free(def);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    s->root_fd = s->layers_fd = s->logs_fd = s->blobs_fd = s->tmp_fd = -1;
    s->area_fd = -1;
    s->busy_seed = (unsigned)getpid() ^ (unsigned)kiln__now_ns();
    rc = make_layout(s, root, err);
    if (rc == 0) {
        rc = create_area(s, err);
    }
    if (rc == 0) {
        rc = kiln__sdb_open(s, err);
    }
    if (rc == 0) {
        sweep_areas(s);
        rc = kiln__store_gc(s, NULL, err);
    }
    free(def);
    if (rc < 0) {
        free_store(s);
        return rc;
    }
    *out = s;
    return 0;
}

void kiln__store_close(kiln__store_t *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    kiln__close_cleanup(s);
    pthread_mutex_unlock(&s->mu);
    free_store(s);
}

const char *kiln__store_root(const kiln__store_t *s)
{
    return s->root;
}

const char *kiln__store_owner(const kiln__store_t *s)
{
    return s->owner;
}

const char *kiln__store_tmp_dir(const kiln__store_t *s)
{
    return s->tmp;
}

bool kiln__in_area(const kiln__store_t *s, const char *path, const char **name)
{
    size_t n = strlen(s->tmp);
    const char *rest;

    if (path == NULL || strncmp(path, s->tmp, n) != 0 || path[n] != '/') {
        return false;
    }
    rest = path + n + 1;
    if (*rest == '\0' || strchr(rest, '/') != NULL || strcmp(rest, ".") == 0 ||
        strcmp(rest, "..") == 0) {
        return false;
    }
    *name = rest;
    return true;
}

/* A fresh template "<area>/<prefix><seq>-XXXXXX"; *path is malloc'ed. */
static int area_template(kiln__store_t *s, char prefix, char **path,
                         kiln_error_t *err)
{
    size_t len = strlen(s->tmp) + 40;
    unsigned seq;

    pthread_mutex_lock(&s->mu);
    seq = ++s->seq;
    pthread_mutex_unlock(&s->mu);
    *path = malloc(len);
    if (*path == NULL) {
        kiln__fail(err, KILN_ENOMEM, "out of memory");
        return KILN_ENOMEM;
    }
    snprintf(*path, len, "%s/%c%u-XXXXXX", s->tmp, prefix, seq);
    return 0;
}

int kiln__store_mkdtemp(kiln__store_t *s, char **path, kiln_error_t *err)
{
    int rc = area_template(s, 'd', path, err);

    if (rc == 0 && mkdtemp(*path) == NULL) {
        kiln__fail(err, KILN_EIO, "creating a directory in %s: %s", s->tmp,
                   strerror(errno));
        rc = KILN_EIO;
        free(*path);
        *path = NULL;
    }
    return rc;
}

int kiln__store_mkstemp(kiln__store_t *s, int *fd, char **path,
                        kiln_error_t *err)
{
    int rc = area_template(s, 'f', path, err);

    *fd = -1;
    if (rc == 0 && (*fd = mkostemp(*path, O_CLOEXEC)) < 0) {
        kiln__fail(err, KILN_EIO, "creating a file in %s: %s", s->tmp,
                   strerror(errno));
        rc = KILN_EIO;
        free(*path);
        *path = NULL;
    }
    return rc;
}

int kiln__store_discard(kiln__store_t *s, const char *path, kiln_error_t *err)
{
    const char *name;

    if (!kiln__in_area(s, path, &name)) {
        return kiln__fail(err, KILN_EINVAL, "%s: not in the store's tmp area",
                          path != NULL ? path : "(null)");
    }
    return kiln__rm_tree_at(s->area_fd, name, err);
}
