/*
 * The hash cache: one file per local directory and pattern set, in the
 * plugin's cache directory, shared by every kiln process on the store.
 *
 * Format (little-endian host order; the file never leaves the host):
 *   "KILNLC01", u64 count, then count records of
 *     u32 len, path (len bytes, NUL included), u64 size, i64 mtime_ns,
 *     i64 ctime_ns, u64 ino, u64 dev, u32 mode, 32-byte SHA-256,
 *   in strictly increasing strcmp order of path, then the SHA-256 of all
 *   the bytes before it.
 * A file that does not check out is ignored: everything is hashed again.
 * Writers hold an exclusive flock on "<file>.lock" and replace the file by
 * rename; readers hold a shared one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "local.h"

#define MAGIC     "KILNLC01"
#define MAGIC_LEN 8
#define HEAD_LEN  (MAGIC_LEN + 8)
#define FIXED_LEN (8 * 5 + 4 + LC_HASH_LEN) /* a record after its path */
#define MAX_FILE  (1ull << 32)

static int lock_file(const char *path, int op)
{
    char lock[4096];
    int fd;

    if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >= sizeof(lock)) {
        return -ENAMETOOLONG;
    }
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    while (flock(fd, op) < 0) {
        if (errno != EINTR) {
            int err = errno;
            close(fd);
            return -err;
        }
    }
    return fd;
}

static int read_all(int fd, unsigned char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = read(fd, buf + off, len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -EIO;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Parses a whole file image; 0 if it checks out. */
static int parse(unsigned char *buf, size_t len, lc_cache_t *out)
{
    unsigned char sum[LC_HASH_LEN];
    size_t off = HEAD_LEN, end, count;
    uint64_t n;

    if (len < HEAD_LEN + LC_HASH_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
        return -EINVAL;
    }
    end = len - LC_HASH_LEN;
    SHA256(buf, end, sum);
    if (memcmp(sum, buf + end, LC_HASH_LEN) != 0) {
        return -EINVAL;
    }
    memcpy(&n, buf + MAGIC_LEN, 8);
    if (n > end / (4 + 2 + FIXED_LEN)) {
        return -EINVAL;
    }
    count = (size_t)n;
    out->v = calloc(count + 1, sizeof(*out->v));
    if (out->v == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        lc_entry_t *e = &out->v[i];
        uint32_t plen;

        if (end - off < 4) {
            return -EINVAL;
        }
        memcpy(&plen, buf + off, 4);
        off += 4;
        if (plen < 2 || end - off < (size_t)plen + FIXED_LEN ||
            buf[off + plen - 1] != '\0' ||
            strlen((char *)buf + off) != plen - 1) {
            return -EINVAL;
        }
        e->rel = (char *)buf + off;
        if (i > 0 && strcmp(out->v[i - 1].rel, e->rel) >= 0) {
            return -EINVAL;
        }
        off += plen;
        memcpy(&e->size, buf + off, 8);
        memcpy(&e->mtime_ns, buf + off + 8, 8);
        memcpy(&e->ctime_ns, buf + off + 16, 8);
        memcpy(&e->ino, buf + off + 24, 8);
        memcpy(&e->dev, buf + off + 32, 8);
        memcpy(&e->mode, buf + off + 40, 4);
        memcpy(e->hash, buf + off + 44, LC_HASH_LEN);
        off += FIXED_LEN;
        out->n = i + 1;
    }
    return off == end ? 0 : -EINVAL;
}

void lc_cache_load(const char *path, lc_cache_t *out)
{
    struct stat st;
    int lock = lock_file(path, LOCK_SH);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    memset(out, 0, sizeof(*out));
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
        (uint64_t)st.st_size < MAX_FILE) {
        out->buf = malloc((size_t)st.st_size);
        if (out->buf == NULL ||
            read_all(fd, out->buf, (size_t)st.st_size) < 0 ||
            parse(out->buf, (size_t)st.st_size, out) < 0) {
            lc_cache_free(out);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    if (lock >= 0) {
        close(lock);
    }
}

static int cmp_rel(const void *key, const void *elt)
{
    return strcmp(key, ((const lc_entry_t *)elt)->rel);
}

const lc_entry_t *lc_cache_find(const lc_cache_t *c, const char *rel)
{
    if (c->n == 0) {
        return NULL;
    }
    return bsearch(rel, c->v, c->n, sizeof(*c->v), cmp_rel);
}

void lc_cache_free(lc_cache_t *c)
{
    free(c->v);
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    return strcmp((*(const lc_entry_t *const *)a)->rel,
                  (*(const lc_entry_t *const *)b)->rel);
}

static void put(unsigned char **p, const void *v, size_t n)
{
    memcpy(*p, v, n);
    *p += n;
}

/* The file image of the records of `t` worth keeping. */
static int image(const lc_tree_t *t, unsigned char **out, size_t *len)
{
    const lc_entry_t **v = malloc((t->n + 1) * sizeof(*v));
    size_t n = 0, size = HEAD_LEN + LC_HASH_LEN;
    unsigned char *buf, *p;
    uint64_t count;

    if (v == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (S_ISREG(t->v[i].mode) && !t->v[i].racy) {
            v[n++] = &t->v[i];
            size += 4 + strlen(t->v[i].rel) + 1 + FIXED_LEN;
        }
    }
    qsort(v, n, sizeof(*v), cmp_entry_ptr);
    buf = p = malloc(size);
    if (buf == NULL) {
        free(v);
        return -ENOMEM;
    }
    count = n;
    put(&p, MAGIC, MAGIC_LEN);
    put(&p, &count, 8);
    for (size_t i = 0; i < n; i++) {
        uint32_t plen = (uint32_t)strlen(v[i]->rel) + 1;

        put(&p, &plen, 4);
        put(&p, v[i]->rel, plen);
        put(&p, &v[i]->size, 8);
        put(&p, &v[i]->mtime_ns, 8);
        put(&p, &v[i]->ctime_ns, 8);
        put(&p, &v[i]->ino, 8);
        put(&p, &v[i]->dev, 8);
        put(&p, &v[i]->mode, 4);
        put(&p, v[i]->hash, LC_HASH_LEN);
    }
    SHA256(buf, (size_t)(p - buf), p);
    free(v);
    *out = buf;
    *len = size;
    return 0;
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int lc_cache_save(const char *path, const lc_tree_t *t)
{
    char tmp[4096];
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = image(t, &buf, &len), lock = -1, fd = -1;

    if (rc == 0 && (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
                       sizeof(tmp)) {
        rc = -ENAMETOOLONG;
    }
    if (rc == 0) {
        lock = lock_file(path, LOCK_EX);
        rc = lock < 0 ? lock : 0;
    }
    if (rc == 0) {
        fd = mkostemp(tmp, O_CLOEXEC);
        rc = fd < 0 ? -errno : 0;
    }
    if (rc == 0) {
        rc = write_all(fd, buf, len);
    }
    if (fd >= 0 && close(fd) < 0 && rc == 0) {
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -errno;
    }
    if (fd >= 0 && rc < 0) {
        unlink(tmp);
    }
    if (lock >= 0) {
        close(lock);
    }
    free(buf);
    return rc;
}
