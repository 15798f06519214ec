/*
 * The content-addressed blob store: blobs/sha256/<hex>, one row of table
 * blobs each. A new blob is written in the store's tmp area, hashed,
 * synced, and renamed into place under the write lock before its row is
 * committed (the rules of store.h). A deletion moves the file out into the
 * deleter's tmp area inside the deleting transaction, as logs are, because
 * the same digest may be committed again as soon as the lock is released.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/store_int.h"

/* Hex digits of a SHA-256, and the length of "sha256:" before them. */
#define BLOB_HEX    64
#define BLOB_PREFIX (sizeof("sha256:") - 1)

/* Name of a blob moved out into the tmp area: "gc-blob-<hex>". */
#define GC_NAME_MAX (sizeof("gc-blob-") + BLOB_HEX)

struct kiln__store_blob_writer {
    int fd;     /* the caller writes through it; closed by commit/abort */
    char *path; /* the file in the store's tmp area */
};

static const char SQL_BLOB_ROW[] = "SELECT 1 FROM blobs WHERE digest = ?1";
static const char SQL_BLOB_TOUCH[] =
    "UPDATE blobs SET last_used = ?2 WHERE digest = ?1";
static const char SQL_BLOB_DELETE[] = "DELETE FROM blobs WHERE digest = ?1";
static const char SQL_BLOB_INSERT[] =
    "INSERT INTO blobs (digest, size, created, last_used) "
    "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (digest) DO UPDATE SET "
    "size = excluded.size, last_used = excluded.last_used";

/* KILN_EINVAL with a message unless `digest` is "sha256:<64 hex>". */
static int check_digest(const char *digest, kiln_error_t *err)
{
    if (digest == NULL || !kiln__digest_valid(digest)) {
        return kiln__fail(err, KILN_EINVAL,
                          "'%s' is not a blob digest (sha256:<64 hex>)",
                          digest != NULL ? digest : "(null)");
    }
    return 0;
}

/* The file name of a blob in blobs/sha256/: its digest's hex part. */
static const char *blob_hex(const char *digest)
{
    return digest + BLOB_PREFIX;
}

/* Runs `sql` with ?1 = digest (and ?2 = now for SQL_BLOB_TOUCH). */
static int blob_stmt(kiln__store_t *s, const char *sql, const char *digest,
                     const char *what, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, sql, err);

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, digest);
    if (sql == SQL_BLOB_TOUCH) {
        sqlite3_bind_int64(st, 2, kiln__now_ns());
    }
    return kiln__sdb_done(s, st, what, err);
}

/* 1 if blob `digest` has a row, 0 if not, <0 on error. */
static int has_blob_row(kiln__store_t *s, const char *digest, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, SQL_BLOB_ROW, err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, digest);
    rc = kiln__sdb_row(s, st, "looking a blob up", err);
    sqlite3_reset(st);
    return rc;
}

/* ---- reading ---- */

/*
 * In a write transaction: finds blob `digest` and touches it. With fd, the
 * file is opened read-only into *fd, else only checked. *found is false
 * when there is no row, or the row's file is gone (a crash in a deleting
 * transaction, or a hand-made removal): that row is then deleted.
 */
static int use_locked(kiln__store_t *s, const char *digest, int *fd,
                      bool *found, kiln_error_t *err)
{
    const char *hex = blob_hex(digest);
    struct stat st;
    int rc = has_blob_row(s, digest, err), e = 0;

    *found = false;
    if (rc <= 0) {
        return rc;
    }
    if (fd != NULL) {
        *fd = openat(s->blobs_fd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        e = *fd < 0 || fstat(*fd, &st) < 0 ? errno : 0;
    } else {
        e = fstatat(s->blobs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
    }
    if (e == 0 && !S_ISREG(st.st_mode)) {
        e = EISDIR;
    }
    if (e != 0 && fd != NULL && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    if (e == ENOENT) {
        return blob_stmt(s, SQL_BLOB_DELETE, digest, "forgetting a blob", err);
    }
    if (e != 0) {
        return kiln__fail(err, KILN_EIO, "%s/blobs/sha256/%s: %s", s->root, hex,
                          e == EISDIR ? "not a regular file" : strerror(e));
    }
    *found = true;
    return blob_stmt(s, SQL_BLOB_TOUCH, digest, "touching a blob", err);
}

/* use_locked() in its own write transaction, under the mutex; KILN_ENOENT
 * with a message when the blob is not stored. *fd is closed on failure. */
static int use_blob(kiln__store_t *s, const char *digest, int *fd,
                    kiln_error_t *err)
{
    bool found = false;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = use_locked(s, digest, fd, &found, err);
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == 0 && !found) {
        rc = kiln__fail(err, KILN_ENOENT, "blob %s is not stored", digest);
    }
    if (rc < 0 && fd != NULL && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int kiln__store_blob_open(kiln__store_t *s, const char *digest, int *fd,
                          kiln_error_t *err)
{
    int rc = check_digest(digest, err);

    *fd = -1;
    return rc < 0 ? rc : use_blob(s, digest, fd, err);
}

int kiln__store_blob_path(kiln__store_t *s, const char *digest, char *buf,
                          size_t size, kiln_error_t *err)
{
    int rc = check_digest(digest, err);

    if (size > 0) {
        buf[0] = '\0';
    }
    if (rc == 0) {
        rc = use_blob(s, digest, NULL, err);
    }
    if (rc == 0 && (size_t)snprintf(buf, size, "%s/blobs/sha256/%s", s->root,
                                    blob_hex(digest)) >= size) {
        if (size > 0) {
            buf[0] = '\0';
        }
        rc = kiln__fail(err, -ENAMETOOLONG,
                        "%s/blobs/sha256/%s: longer than the %zu bytes given",
                        s->root, blob_hex(digest), size);
    }
    return rc;
}

/* ---- writing ---- */

int kiln__store_blob_create(kiln__store_t *s, int *fd,
                            kiln__store_blob_writer_t **w, kiln_error_t *err)
{
    kiln__store_blob_writer_t *b = calloc(1, sizeof(*b));
    int rc;

    *fd = -1;
    *w = NULL;
    if (b == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    /* mkostemp() opens O_RDWR; the area's files are O_CLOEXEC. */
    rc = kiln__store_mkstemp(s, &b->fd, &b->path, err);
    if (rc < 0) {
        free(b);
        return rc;
    }
    *fd = b->fd;
    *w = b;
    return 0;
}

/* Closes the writer's file, removes it (if it is still there) and frees
 * the writer. */
static void writer_free(kiln__store_blob_writer_t *w)
{
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (w->path != NULL) {
        unlink(w->path);
    }
    free(w->path);
    free(w);
}

void kiln__store_blob_abort(kiln__store_t *s, kiln__store_blob_writer_t *w)
{
    (void)s;
    if (w != NULL) {
        writer_free(w);
    }
}

/* The SHA-256 of everything in the file `fd` (from offset 0, whatever the
 * caller's offset), as "sha256:<hex>", and its length. */
static int hash_file(int fd, const char *path, char out[KILN_DIGEST_STRLEN + 1],
                     uint64_t *size, kiln_error_t *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen = 0;
    off_t off = 0;
    ssize_t n;
    int rc = 0;

    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    while ((n = pread(fd, buf, sizeof(buf), off)) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = kiln__fail(err, KILN_EIO, "reading %s: %s", path,
                            strerror(errno));
            break;
        }
        if (!EVP_DigestUpdate(ctx, buf, (size_t)n)) {
            rc =
                kiln__fail(err, KILN_ENOMEM, "hashing %s: out of memory", path);
            break;
        }
        off += n;
    }
    if (rc == 0 && (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32)) {
        rc = kiln__fail(err, KILN_ENOMEM, "hashing %s: out of memory", path);
    }
    EVP_MD_CTX_free(ctx);
    if (rc < 0) {
        return rc;
    }
    memcpy(out, "sha256:", BLOB_PREFIX);
    for (unsigned int i = 0; i < mdlen; i++) {
        out[BLOB_PREFIX + 2 * i] = hex[md[i] >> 4];
        out[BLOB_PREFIX + 2 * i + 1] = hex[md[i] & 0xf];
    }
    out[KILN_DIGEST_STRLEN] = '\0';
    *size = (uint64_t)off;
    return 0;
}

/* Makes the finished file read-only (a blob never changes; the mode also
 * guards a hard link of it in a fetch directory) and syncs it. */
static int seal_file(int fd, const char *path, kiln_error_t *err)
{
    if (fchmod(fd, 0444) < 0 || fsync(fd) < 0) {
        return kiln__fail(err, KILN_EIO, "syncing %s: %s", path,
                          strerror(errno));
    }
    return 0;
}

/*
 * In a write transaction: makes the area's file `name` (synced, `size`
 * bytes) blob `digest`. When the blob is stored already (row and file), the
 * stored file is kept, `name` removed and the row touched. Else `name` is
 * renamed into blobs/sha256/ (over a file without a row: crash garbage, or
 * the complete file a lost row named), the directory synced and the row
 * inserted or updated. *moved tells that the file is now in blobs/.
 */
static int adopt_locked(kiln__store_t *s, const char *name, const char *digest,
                        uint64_t size, bool *moved, kiln_error_t *err)
{
    const char *hex = blob_hex(digest);
    sqlite3_stmt *st;
    struct stat sb;
    int rc = has_blob_row(s, digest, err);

    *moved = false;
    if (rc < 0) {
        return rc;
    }
    if (rc > 0 && fstatat(s->blobs_fd, hex, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(sb.st_mode)) {
        unlinkat(s->area_fd, name, 0);
        return blob_stmt(s, SQL_BLOB_TOUCH, digest, "touching a blob", err);
    }
    if (renameat(s->area_fd, name, s->blobs_fd, hex) < 0) {
        return kiln__fail(err, KILN_EIO,
                          "moving %s/%s to %s/blobs/sha256/%s: %s", s->tmp,
                          name, s->root, hex, strerror(errno));
    }
    *moved = true;
    rc = kiln__fsync_fd(s->blobs_fd, "blobs/sha256/", err);
    if (rc < 0) {
        return rc;
    }
    st = kiln__sdb_stmt(s, SQL_BLOB_INSERT, err);
    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, digest);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    sqlite3_bind_int64(st, 3, kiln__now_ns());
    return kiln__sdb_done(s, st, "recording a blob", err);
}

/* adopt_locked() in its own write transaction, under the mutex. A failure
 * before the commit removes the moved file while the lock is still held
 * (after that, the same name may be another writer's blob). */
static int adopt_blob(kiln__store_t *s, const char *name, const char *digest,
                      uint64_t size, kiln_error_t *err)
{
    bool moved = false;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = adopt_locked(s, name, digest, size, &moved, err);
        if (rc < 0 && moved) {
            unlinkat(s->blobs_fd, blob_hex(digest), 0);
        }
        /* A failed commit rolls back: the moved file is then garbage
         * without a row, which the next open removes. */
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int kiln__store_blob_commit(kiln__store_t *s, kiln__store_blob_writer_t *w,
                            const char *expect,
                            char digest[KILN_DIGEST_STRLEN + 1],
                            kiln_error_t *err)
{
    char got[KILN_DIGEST_STRLEN + 1];
    const char *name = NULL;
    uint64_t size = 0;
    int rc = 0;

    digest[0] = '\0';
    if (w == NULL) {
        return kiln__fail(err, KILN_EINVAL, "committing a blob: no writer");
    }
    if (expect != NULL) {
        rc = check_digest(expect, err);
    }
    if (rc == 0) {
        rc = hash_file(w->fd, w->path, got, &size, err);
    }
    if (rc == 0 && expect != NULL && strcmp(expect, got) != 0) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "checksum mismatch: expected %s, got %s", expect, got);
    }
    if (rc == 0) {
        rc = seal_file(w->fd, w->path, err);
    }
    close(w->fd);
    w->fd = -1;
    if (rc == 0 && !kiln__in_area(s, w->path, &name)) {
        rc = kiln__fail(err, KILN_EINVAL, "%s: a blob writer of another store",
                        w->path);
    }
    if (rc == 0) {
        rc = adopt_blob(s, name, got, size, err);
    }
    if (rc == 0) {
        memcpy(digest, got, sizeof(got));
    }
    writer_free(w); /* removes the file if it was not moved */
    return rc;
}

/* ---- garbage and prune ---- */

int kiln__blob_move_out(kiln__store_t *s, const char *digest, str_list_t *moved,
                        kiln_error_t *err)
{
    const char *hex = blob_hex(digest);
    char dest[GC_NAME_MAX];

    snprintf(dest, sizeof(dest), "gc-blob-%s", hex);
    if (renameat(s->blobs_fd, hex, s->area_fd, dest) < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return kiln__fail(err, KILN_EIO, "moving %s/blobs/sha256/%s: %s",
                          s->root, hex, strerror(errno));
    }
    if (kiln__sl_push(moved, hex) < 0) {
        renameat(s->area_fd, dest, s->blobs_fd, hex);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}

void kiln__blobs_done(kiln__store_t *s, const str_list_t *moved, bool committed)
{
    char dest[GC_NAME_MAX];

    for (size_t i = 0; i < moved->n; i++) {
        snprintf(dest, sizeof(dest), "gc-blob-%s", moved->v[i]);
        if (committed) {
            unlinkat(s->area_fd, dest, 0);
        } else {
            renameat(s->area_fd, dest, s->blobs_fd, moved->v[i]);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes the rows whose file is not among `names` (sorted). */
static int drop_fileless_rows(kiln__store_t *s, const str_list_t *names,
                              kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, "SELECT digest FROM blobs", err);
    str_list_t gone = {0};
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    while ((rc = kiln__sdb_row(s, st, "listing blobs", err)) > 0) {
        const char *d = (const char *)sqlite3_column_text(st, 0);
        const char *hex = d != NULL && kiln__digest_valid(d) ? blob_hex(d) : d;

        if (hex != NULL && names->n > 0 &&
            bsearch(&hex, names->v, names->n, sizeof(char *), cmp_str)) {
            continue;
        }
        if (d != NULL && kiln__sl_push(&gone, d) < 0) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            break;
        }
    }
    sqlite3_reset(st);
    for (size_t i = 0; rc == 0 && i < gone.n; i++) {
        rc = blob_stmt(s, SQL_BLOB_DELETE, gone.v[i], "forgetting a blob", err);
    }
    kiln__sl_free(&gone);
    return rc;
}

int kiln__gc_blobs(kiln__store_t *s, str_list_t *moved, kiln_error_t *err)
{
    char digest[KILN_DIGEST_STRLEN + 1];
    str_list_t names = {0};
    int rc = kiln__list_dir(s->blobs_fd, &names);

    if (rc < 0) {
        kiln__sl_free(&names);
        return kiln__fail(err, rc == KILN_ENOMEM ? rc : KILN_EIO,
                          "%s: listing blobs/sha256/: %s", s->root,
                          strerror(-rc));
    }
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        if (!kiln__is_hex(names.v[i], BLOB_HEX)) {
            continue; /* not a name kiln makes: left alone */
        }
        snprintf(digest, sizeof(digest), "sha256:%s", names.v[i]);
        rc = has_blob_row(s, digest, err);
        if (rc == 0) {
            rc = kiln__blob_move_out(s, digest, moved, err);
        }
        rc = rc > 0 ? 0 : rc;
    }
    if (rc == 0) {
        if (names.n > 0) {
            qsort(names.v, names.n, sizeof(char *), cmp_str);
        }
        rc = drop_fileless_rows(s, &names, err);
    }
    kiln__sl_free(&names);
    return rc;
}

typedef struct blob_cand {
    char digest[KILN_DIGEST_STRLEN + 1];
    uint64_t size;
    int64_t used;
} blob_cand_t;

/* Every blob, least recently used first. */
static int blob_candidates(kiln__store_t *s, blob_cand_t **out, size_t *n,
                           kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(
        s,
        "SELECT digest, size, last_used FROM blobs ORDER BY last_used, digest",
        err);
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (st == NULL) {
        return s->stmt_rc;
    }
    while ((rc = kiln__sdb_row(s, st, "listing blobs", err)) > 0) {
        const char *d = (const char *)sqlite3_column_text(st, 0);

        if (d == NULL || !kiln__digest_valid(d)) {
            continue; /* not a row kiln writes */
        }
        if (*n == cap) {
            blob_cand_t *v =
                realloc(*out, (cap = cap ? cap * 2 : 64) * sizeof(*v));

            if (v == NULL) {
                rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
                break;
            }
            *out = v;
        }
        snprintf((*out)[*n].digest, sizeof((*out)[*n].digest), "%s", d);
        (*out)[*n].size = (uint64_t)sqlite3_column_int64(st, 1);
        (*out)[(*n)++].used = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    return rc;
}

/* Candidates come oldest first: once neither age nor size wants one, no
 * later one is wanted either (younger, and the total only shrinks). */
int kiln__prune_blobs(kiln__store_t *s, const kiln__store_prune_opts_t *o,
                      int64_t cutoff, uint64_t *total, str_list_t *moved,
                      uint64_t *freed, kiln_error_t *err)
{
    blob_cand_t *cands = NULL;
    size_t n = 0;
    int rc = blob_candidates(s, &cands, &n, err);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        const blob_cand_t *c = &cands[i];

        if (!(o->all || (o->keep_duration_ns > 0 && c->used < cutoff) ||
              (o->keep_storage > 0 && *total > o->keep_storage))) {
            break;
        }
        rc = blob_stmt(s, SQL_BLOB_DELETE, c->digest, "removing a blob", err);
        if (rc == 0) {
            rc = kiln__blob_move_out(s, c->digest, moved, err);
        }
        if (rc == 0) {
            *freed += c->size;
            *total -= c->size > *total ? *total : c->size;
        }
    }
    free(cands);
    return rc;
}
