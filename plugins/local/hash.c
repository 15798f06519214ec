/*
 * Content hashes of the tree's regular files, and the pin.
 *
 * A file whose metadata (size, mtime, ctime, inode, device, mode) equals
 * the cache's record keeps the recorded hash without being read. That is
 * sound only if any later write would have changed the metadata: a write
 * sets ctime to the (coarse) clock, so a file whose ctime was within the
 * clock's granularity of the moment we looked at it could still be written
 * again unseen with the same ctime ("racily clean", as git calls it). Such
 * files are hashed but not recorded, so they are read again next time.
 *
 * Cold hashing runs on two threads (the caller's and one more), taking
 * files in tree order from a shared counter.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "local.h"

#define HASH_THREADS 2
/* Below this much work a second thread costs more than it gives. */
#define THREAD_MIN_BYTES (4u << 20)
#define THREAD_MIN_FILES 64
#define PROGRESS_STEP    (8u << 20)

int64_t lc_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool lc_is_racy(int64_t ctime_ns, int64_t mtime_ns, int64_t seen_ns)
{
    /* Whole-second timestamps mean a coarse file system (or one that
     * drops nanoseconds): allow it two seconds. Otherwise the kernel's
     * coarse clock lags by at most a tick (<= 10 ms); allow 50 ms. */
    int64_t slack = ctime_ns % 1000000000 == 0 && mtime_ns % 1000000000 == 0
                        ? 2000000000
                        : 50000000;

    return ctime_ns >= seen_ns - slack || mtime_ns >= seen_ns - slack;
}

static int hash_with(EVP_MD_CTX *ctx, const EVP_MD *md, int fd, void *buf,
                     unsigned char out[LC_HASH_LEN], uint64_t *bytes)
{
    unsigned int len = 0;

    if (EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        return -ENOMEM;
    }
    *bytes = 0;
    for (;;) {
        ssize_t n = read(fd, buf, LC_BUF_SIZE);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            break;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            return -ENOMEM;
        }
        *bytes += (uint64_t)n;
    }
    return EVP_DigestFinal_ex(ctx, out, &len) == 1 ? 0 : -ENOMEM;
}

int lc_hash_fd(int fd, void *buf, unsigned char out[LC_HASH_LEN],
               uint64_t *bytes)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx != NULL ? hash_with(ctx, EVP_sha256(), fd, buf, out, bytes)
                         : -ENOMEM;

    EVP_MD_CTX_free(ctx);
    return rc;
}

int lc_pin(const lc_tree_t *t, char pin[72])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[LC_HASH_LEN];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

    /* Per entry: path NUL, type and permission bits NUL, then the symlink
     * target NUL or the content's SHA-256. No times, no owners. */
    for (size_t i = 0; ok && i < t->n; i++) {
        const lc_entry_t *e = &t->v[i];
        char meta[16];
        int n = snprintf(meta, sizeof(meta), "%c%04o",
                         S_ISDIR(e->mode)   ? 'd'
                         : S_ISLNK(e->mode) ? 'l'
                                            : 'f',
                         (unsigned)(e->mode & 07777));

        ok = EVP_DigestUpdate(ctx, e->rel, strlen(e->rel) + 1) == 1 &&
             EVP_DigestUpdate(ctx, meta, (size_t)n + 1) == 1;
        if (ok && e->link != NULL) {
            ok = EVP_DigestUpdate(ctx, e->link, strlen(e->link) + 1) == 1;
        } else if (ok && S_ISREG(e->mode)) {
            ok = EVP_DigestUpdate(ctx, e->hash, LC_HASH_LEN) == 1;
        }
    }
    ok = ok && EVP_DigestFinal_ex(ctx, d, &len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -ENOMEM;
    }
    memcpy(pin, "sha256:", 7);
    for (size_t i = 0; i < LC_HASH_LEN; i++) {
        pin[7 + 2 * i] = hex[d[i] >> 4];
        pin[8 + 2 * i] = hex[d[i] & 0xf];
    }
    pin[71] = '\0';
    return 0;
}

/* The work of one hashing pass, shared by its threads. */
typedef struct job {
    const lc_ctx_t *c;
    lc_tree_t *t;
    const EVP_MD *md;
    int root_fd;
    size_t *todo;
    size_t n_todo;
    atomic_size_t next;
    atomic_uint_least64_t done;
    atomic_int stop;
    pthread_mutex_t lock;
    int err;          /* first failure: -errno or -ESTALE for a change */
    const char *what; /* what failed */
    size_t err_entry;
} job_t;

bool lc_same_meta(const lc_entry_t *e, const struct stat *st)
{
    lc_entry_t now = {0};

    now.size = (uint64_t)st->st_size;
    now.mtime_ns =
        (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    now.ctime_ns =
        (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    return e->size == now.size && e->mtime_ns == now.mtime_ns &&
           e->ctime_ns == now.ctime_ns && e->ino == st->st_ino &&
           e->dev == st->st_dev && e->mode == st->st_mode;
}

static void set_error(job_t *j, int err, const char *what, size_t entry)
{
    pthread_mutex_lock(&j->lock);
    if (j->err == 0) {
        j->err = err;
        j->what = what;
        j->err_entry = entry;
    }
    pthread_mutex_unlock(&j->lock);
    atomic_store(&j->stop, 1);
}

int lc_open_read(int root_fd, const char *rel)
{
    int fd = openat(root_fd, rel,
                    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NOATIME);

    if (fd < 0 && errno == EPERM) { /* O_NOATIME needs ownership */
        fd = openat(root_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    }
    return fd;
}

/* Hashes entry i, checking that it is the file the walk saw, unchanged. */
static void hash_one(job_t *j, EVP_MD_CTX *ctx, void *buf, size_t i)
{
    lc_entry_t *e = &j->t->v[i];
    struct stat st;
    uint64_t bytes = 0;
    int fd = lc_open_read(j->root_fd, e->rel), rc;

    if (fd < 0) {
        set_error(j, errno == ENOENT || errno == ELOOP ? -ESTALE : -errno,
                  "open", i);
        return;
    }
    if (fstat(fd, &st) < 0 || !lc_same_meta(e, &st)) {
        close(fd);
        set_error(j, -ESTALE, "stat", i);
        return;
    }
    if (e->size >= (1u << 20)) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    rc = hash_with(ctx, j->md, fd, buf, e->hash, &bytes);
    if (rc == 0 &&
        (fstat(fd, &st) < 0 || !lc_same_meta(e, &st) || bytes != e->size)) {
        rc = -ESTALE;
    }
    close(fd);
    if (rc < 0) {
        set_error(j, rc, "read", i);
        return;
    }
    e->racy = lc_is_racy(e->ctime_ns, e->mtime_ns, j->t->seen_ns);
    atomic_fetch_add(&j->done, bytes);
}

static void run(job_t *j, bool reporter, uint64_t total)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    void *buf = malloc(LC_BUF_SIZE);
    uint64_t reported = 0;

    if (ctx == NULL || buf == NULL) {
        set_error(j, -ENOMEM, "hash", 0);
    }
    while (!atomic_load(&j->stop)) {
        size_t k = atomic_fetch_add(&j->next, 1);

        if (k >= j->n_todo) {
            break;
        }
        hash_one(j, ctx, buf, j->todo[k]);
        if (!reporter) {
            continue;
        }
        if (j->c->host->cancelled(j->c->job)) {
            set_error(j, -ECANCELED, "hash", 0);
        }
        if (atomic_load(&j->done) - reported >= PROGRESS_STEP) {
            reported = atomic_load(&j->done);
            j->c->host->progress(j->c->job, reported, total);
        }
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
}

static void *worker(void *arg)
{
    run(arg, false, 0);
    return NULL;
}

static int report(const lc_ctx_t *c, const job_t *j)
{
    const lc_entry_t *e = &j->t->v[j->err_entry];

    switch (j->err) {
    case -ECANCELED:
        return c->host->fail(c->job, -ECANCELED, "local source '%s': canceled",
                             c->name);
    case -ENOMEM:
        return lc_oom(c);
    case -ESTALE:
        return lc_fail_changed(c, e->rel);
    default:
        return lc_fail_errno(c, -j->err, j->what, e->rel);
    }
}

/* Hashes the entries listed in todo[0..n). */
static int hash_files(const lc_ctx_t *c, lc_tree_t *t, size_t *todo, size_t n,
                      uint64_t total)
{
    job_t j = {.c = c, .t = t, .todo = todo, .n_todo = n};
    pthread_t th;
    bool threaded = n >= THREAD_MIN_FILES || total >= THREAD_MIN_BYTES;
    int rc = 0;

    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.stop, 0);
    pthread_mutex_init(&j.lock, NULL);
    j.md = EVP_MD_fetch(NULL, "SHA256", NULL);
    j.root_fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j.md == NULL || j.root_fd < 0) {
        rc = j.md == NULL ? lc_oom(c) : lc_fail_errno(c, errno, "open", ".");
    } else {
        threaded = threaded && HASH_THREADS > 1 &&
                   pthread_create(&th, NULL, worker, &j) == 0;
        run(&j, true, total);
        if (threaded) {
            pthread_join(th, NULL);
        }
        c->host->progress(c->job, atomic_load(&j.done), total);
        rc = j.err != 0 ? report(c, &j) : 0;
    }
    if (j.root_fd >= 0) {
        close(j.root_fd);
    }
    EVP_MD_free((EVP_MD *)j.md);
    pthread_mutex_destroy(&j.lock);
    return rc;
}

int lc_hash_tree(const lc_ctx_t *c, lc_tree_t *t, const char *cache_path)
{
    lc_cache_t cache = {NULL, 0, NULL};
    size_t *todo = malloc((t->n + 1) * sizeof(*todo)), n_todo = 0, files = 0;
    uint64_t total = 0;
    bool dirty;
    int rc = 0;

    if (todo == NULL) {
        return lc_oom(c);
    }
    if (cache_path != NULL) {
        lc_cache_load(cache_path, &cache);
    }
    for (size_t i = 0; i < t->n; i++) {
        lc_entry_t *e = &t->v[i];
        const lc_entry_t *r;

        if (!S_ISREG(e->mode)) {
            continue;
        }
        files++;
        r = lc_cache_find(&cache, e->rel);
        if (r != NULL && r->size == e->size && r->mtime_ns == e->mtime_ns &&
            r->ctime_ns == e->ctime_ns && r->ino == e->ino &&
            r->dev == e->dev && r->mode == e->mode) {
            memcpy(e->hash, r->hash, LC_HASH_LEN);
            continue;
        }
        todo[n_todo++] = i;
        total += e->size;
    }
    /* Rewrite the cache when it gained or lost records. */
    dirty = n_todo > 0 || cache.n != files;
    lc_cache_free(&cache);
    if (n_todo > 0) {
        rc = hash_files(c, t, todo, n_todo, total);
    }
    free(todo);
    if (rc < 0) {
        return rc;
    }
    c->host->log(c->job, KILN_PLUGIN_LOG_DEBUG,
                 "local source '%s': re-hashed %zu of %zu files (%llu bytes)",
                 c->name, n_todo, files, (unsigned long long)total);
    if (cache_path != NULL && dirty && lc_cache_save(cache_path, t) < 0) {
        c->host->log(c->job, KILN_PLUGIN_LOG_WARN,
                     "local source '%s': cannot write the hash cache %s",
                     c->name, cache_path);
    }
    return 0;
}
