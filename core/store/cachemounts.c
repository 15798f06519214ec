/*
 * Cache mounts in the store (store.h): root/cachemounts/<hex>/ per cache
 * ID. Unlike layers they change in place, as the build's commands use
 * them; their lock files say who holds them (core/exec/cachemount.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define CM_DIR "cachemounts"

static int cm_root(kiln__store_t *s, int *fd, kiln_error_t *err)
{
    if (mkdirat(s->root_fd, CM_DIR, 0700) < 0 && errno != EEXIST) {
        return kiln__fail(err, -errno, "%s/%s: %s", s->root, CM_DIR,
                          strerror(errno));
    }
    *fd = openat(s->root_fd, CM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return *fd >= 0 ? 0
                    : kiln__fail(err, -errno, "%s/%s: %s", s->root, CM_DIR,
                                 strerror(errno));
}

int kiln__store_cachemount_dir(kiln__store_t *s, const char *id, char **dir,
                               kiln_error_t *err)
{
    char digest[KILN_DIGEST_STRLEN + 1], tmp[96];
    const char *hex = digest + 7;
    int fd, idfd, rc = kiln__sha256_digest(id, strlen(id), digest);

    if (rc < 0) {
        return kiln__fail(err, rc, "out of memory");
    }
    rc = cm_root(s, &fd, err);
    if (rc < 0) {
        return rc;
    }
    if (mkdirat(fd, hex, 0755) < 0 && errno != EEXIST) {
        rc = kiln__fail(err, -errno, "%s/%s/%s: %s", s->root, CM_DIR, hex,
                        strerror(errno));
    }
    /* The ID, for du: written aside and renamed, so it is whole. */
    snprintf(tmp, sizeof(tmp), "%s/id", hex);
    if (rc == 0 && faccessat(fd, tmp, F_OK, 0) < 0) {
        char part[128], rnd[17];

        kiln__random_hex(rnd, 16);
        snprintf(part, sizeof(part), "%s/.id-%s", hex, rnd);
        idfd = openat(fd, part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (idfd < 0 || write(idfd, id, strlen(id)) != (ssize_t)strlen(id) ||
            close(idfd) < 0 ||
            (renameat(fd, part, fd, tmp) < 0 && errno != ENOENT)) {
            rc = kiln__fail(err, -errno, "%s/%s/%s: %s", s->root, CM_DIR, tmp,
                            strerror(errno));
        }
    }
    close(fd);
    if (rc == 0 && asprintf(dir, "%s/%s/%s", s->root, CM_DIR, hex) < 0) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return rc;
}

/* Whether any <n>.lock of the ID's directory is held; sizes and times. */
static int scan_one(kiln__store_t *s, int fd, const char *hex,
                    kiln__store_cachemount_t *c, char *id, size_t id_size,
                    kiln_error_t *err)
{
    int d = openat(fd, hex, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    DIR *dir;
    struct dirent *e;
    ssize_t n;
    int idfd;

    memset(c, 0, sizeof(*c));
    if (d < 0) {
        return 0; /* removed meanwhile */
    }
    idfd = openat(d, "id", O_RDONLY | O_CLOEXEC);
    n = idfd >= 0 ? read(idfd, id, id_size - 1) : -1;
    id[n > 0 ? n : 0] = '\0';
    if (idfd >= 0) {
        close(idfd);
    }
    if (fstat(d, &st) == 0) {
        c->created_ns =
            (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    }
    dir = fdopendir(d);
    while (dir != NULL && (e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[8192];
        uint64_t size = 0;

        if (len > 5 && strcmp(e->d_name + len - 5, ".lock") == 0) {
            int lf = openat(dirfd(dir), e->d_name, O_RDONLY | O_CLOEXEC);
            if (lf >= 0 && flock(lf, LOCK_EX | LOCK_NB) < 0) {
                c->in_use = true;
            }
            if (lf >= 0) {
                close(lf);
            }
            continue;
        }
        if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
            fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode)) {
            continue;
        }
        int64_t m =
            (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (m > c->last_used_ns) {
            c->last_used_ns = m;
        }
        snprintf(path, sizeof(path), "%s/%s/%s/%s", s->root, CM_DIR, hex,
                 e->d_name);
        if (kiln__tree_size(path, &size, err) == 0) {
            c->size += size;
        }
    }
    if (dir != NULL) {
        closedir(dir);
    } else {
        close(d);
    }
    c->id = id;
    c->hex = hex;
    return 0;
}

int kiln__store_cachemounts(kiln__store_t *s,
                            int (*cb)(const kiln__store_cachemount_t *c,
                                      void *ud),
                            void *ud, kiln_error_t *err)
{
    str_list_t names = {0};
    int fd, rc = cm_root(s, &fd, err);

    if (rc < 0) {
        return rc;
    }
    rc = kiln__list_dir(fd, &names);
    if (rc < 0) {
        rc = kiln__fail(err, rc, "%s/%s: cannot list", s->root, CM_DIR);
    }
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        kiln__store_cachemount_t c;
        char id[4096];

        if (!kiln__is_hex(names.v[i], 64)) {
            continue;
        }
        rc = scan_one(s, fd, names.v[i], &c, id, sizeof(id), err);
        if (rc == 0 && c.id != NULL && cb != NULL) {
            rc = cb(&c, ud);
        }
    }
    kiln__sl_free(&names);
    close(fd);
    return rc;
}

struct prune_ctx {
    kiln__store_t *s;
    uint64_t freed;
    uint32_t removed;
    kiln_error_t *err;
};

/* Takes every instance's lock of the ID's directory `d` (no waiting):
 * false if one is held. The descriptors go into locks[] (-1 ends). */
static bool lock_all(int d, int *locks, size_t max)
{
    DIR *dir = fdopendir(dup(d));
    struct dirent *e;
    size_t n = 0;
    bool free_all = dir != NULL;

    while (free_all && (e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        int lf;

        if (len <= 5 || strcmp(e->d_name + len - 5, ".lock") != 0) {
            continue;
        }
        lf = openat(d, e->d_name, O_RDONLY | O_CLOEXEC);
        if (lf < 0 || n + 1 >= max || flock(lf, LOCK_EX | LOCK_NB) < 0) {
            free_all = false;
            if (lf >= 0) {
                close(lf);
            }
            break;
        }
        locks[n++] = lf;
    }
    locks[n] = -1;
    if (dir != NULL) {
        closedir(dir);
    }
    return free_all;
}

static int prune_one(const kiln__store_cachemount_t *c, void *ud)
{
    struct prune_ctx *p = ud;
    char from[128], to[160];
    int locks[130], fd, d, rc;
    bool free_all;

    if (c->in_use) {
        return 0;
    }
    /* Held while it moves, so that no exec takes it meanwhile. */
    snprintf(from, sizeof(from), "%s/%s", CM_DIR, c->hex);
    d = openat(p->s->root_fd, from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) {
        return 0;
    }
    free_all = lock_all(d, locks, KILN_ARRAY_SIZE(locks));
    close(d);
    if (!free_all) {
        for (size_t i = 0; locks[i] >= 0; i++) {
            close(locks[i]);
        }
        return 0;
    }
    /* Out of cachemounts/ in one rename (a user that comes later makes a
     * new one), then removed in the tmp area. */
    snprintf(to, sizeof(to), "%s/cm-%s", p->s->owner, c->hex);
    fd = p->s->root_fd;
    rc = renameat(fd, from, p->s->tmp_fd, to) < 0 && errno != ENOENT
             ? kiln__fail(p->err, -errno, "%s/%s: %s", p->s->root, from,
                          strerror(errno))
             : 0;
    for (size_t i = 0; locks[i] >= 0; i++) {
        close(locks[i]);
    }
    if (rc < 0 || faccessat(p->s->tmp_fd, to, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
        return rc;
    }
    rc = kiln__rm_tree_at(p->s->tmp_fd, to, p->err);
    if (rc == 0) {
        p->freed += c->size;
        p->removed++;
    }
    return rc;
}

int kiln__store_cachemounts_prune(kiln__store_t *s, uint64_t *freed,
                                  uint32_t *removed, kiln_error_t *err)
{
    struct prune_ctx p = {.s = s, .err = err};
    int rc = kiln__store_cachemounts(s, prune_one, &p, err);

    if (freed != NULL) {
        *freed = p.freed;
    }
    if (removed != NULL) {
        *removed = p.removed;
    }
    return rc;
}
