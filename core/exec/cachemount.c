/*
 * Cache mounts' sharing modes (exec_int.h), with flock() on the lock file
 * of each instance of root/cachemounts/<hex>/ (store.h): a shared lock for
 * SHARED users, an exclusive one for LOCKED and PRIVATE. Locks die with
 * their process, so a crashed build never leaves a cache held.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec_int.h"

/* PRIVATE makes at most this many instances of one cache. */
#define MAX_INSTANCES 64

static int open_instance(const char *base, int n, int *lock_fd, bool *fresh,
                         char **dir, kiln_error_t *err)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%d.lock", base, n);
    *lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*lock_fd < 0) {
        return kiln__fail(err, -errno, "%s: %s", path, strerror(errno));
    }
    snprintf(path, sizeof(path), "%s/%d", base, n);
    *fresh = false;
    if (mkdir(path, 0755) == 0) {
        *fresh = true;
    } else if (errno != EEXIST) {
        close(*lock_fd);
        return kiln__fail(err, -errno, "%s: %s", path, strerror(errno));
    }
    *dir = strdup(path);
    if (*dir == NULL) {
        close(*lock_fd);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}

/* Blocks for lock `op` on fd, polling so that a cancel is seen. */
static int wait_lock(int fd, int op, bool (*cancelled)(void *), void *ud,
                     const char *id, kiln_error_t *err)
{
    struct timespec ts = {0, 5 * 1000 * 1000};

    while (flock(fd, op | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return kiln__fail(err, -errno, "cache mount '%s': lock: %s", id,
                              strerror(errno));
        }
        if (cancelled != NULL && cancelled(ud)) {
            return kiln__fail(err, KILN_ECANCELED, "canceled");
        }
        nanosleep(&ts, NULL);
    }
    return 0;
}

int kiln__exec_cache_acquire(kiln__store_t *store, const char *id, int sharing,
                             bool (*cancelled)(void *), void *ud,
                             kiln__exec_cache_t *c, kiln_error_t *err)
{
    char *base = NULL;
    int rc = kiln__store_cachemount_dir(store, id, &base, err);

    memset(c, 0, sizeof(*c));
    c->lock_fd = -1;
    if (rc < 0) {
        return rc;
    }
    if (sharing != PB__CACHE_SHARING_OPT__PRIVATE) {
        rc = open_instance(base, 0, &c->lock_fd, &c->fresh, &c->dir, err);
        if (rc == 0) {
            rc = wait_lock(c->lock_fd,
                           sharing == PB__CACHE_SHARING_OPT__SHARED ? LOCK_SH
                                                                    : LOCK_EX,
                           cancelled, ud, id, err);
        }
    } else {
        rc = (-EAGAIN);
        for (int n = 0; rc == (-EAGAIN) && n < MAX_INSTANCES; n++) {
            int lr =
                open_instance(base, n, &c->lock_fd, &c->fresh, &c->dir, err);
            if (lr < 0) {
                rc = lr;
            } else if (flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0) {
                rc = 0;
            } else {
                close(c->lock_fd);
                free(c->dir);
                c->dir = NULL;
                c->lock_fd = -1;
            }
        }
        if (rc == (-EAGAIN)) {
            rc = kiln__fail(err, (-EAGAIN),
                            "cache mount '%s': %d private instances are all "
                            "in use",
                            id, MAX_INSTANCES);
        }
    }
    free(base);
    if (rc < 0) {
        kiln__exec_cache_release(store, id, c);
        return rc;
    }
    /* Last use, for du: the instance's mtime. */
    utimensat(AT_FDCWD, c->dir, NULL, 0);
    return 0;
}

void kiln__exec_cache_release(kiln__store_t *store, const char *id,
                              kiln__exec_cache_t *c)
{
    (void)store;
    (void)id;
    if (c->lock_fd >= 0) {
        close(c->lock_fd); /* drops the lock */
    }
    free(c->dir);
    c->dir = NULL;
    c->lock_fd = -1;
}
