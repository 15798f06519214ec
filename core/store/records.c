/*
 * Cache records and their logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

static int check_key(const char *key, const char *what, kiln_error_t *err)
{
    if (key == NULL || !kiln__digest_valid(key)) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: '%s' is not a cache key (sha256:<64 hex>)", what,
                          key != NULL ? key : "(null)");
    }
    return 0;
}

static int check_record(const kiln__store_record_t *r, kiln_error_t *err)
{
    int rc = check_key(r->key, "record", err);

    if (rc == 0 && (r->digest == NULL || r->digest[0] == '\0')) {
        rc = kiln__fail(err, KILN_EINVAL, "record %s: no op digest", r->key);
    }
    if (rc == 0 && !kiln__is_hex(r->snapshot_id, SNAPSHOT_ID_HEX)) {
        rc = kiln__fail(err, KILN_EINVAL,
                        "record %s: '%s' is not a "
                        "snapshot id",
                        r->key,
                        r->snapshot_id != NULL ? r->snapshot_id : "(null)");
    }
    for (size_t i = 0; rc == 0 && i < r->n_inputs; i++) {
        if (r->inputs[i].key == NULL) {
            rc = kiln__fail(err, KILN_EINVAL,
                            "record %s: input %zu has no "
                            "key",
                            r->key, i);
        }
    }
    return rc;
}

void kiln__store_record_clear(kiln__store_record_t *r)
{
    free(r->mem_);
    *r = (kiln__store_record_t)KILN__STORE_RECORD_INIT;
}

int kiln__record_from_row(sqlite3_stmt *st, kiln__store_record_t *r, bool copy)
{
    static const int text_cols[] = {0, 1, 2, 4, 5};
    const char **dst[] = {&r->key, &r->digest, &r->cachemap_digest,
                          &r->snapshot_id, &r->description};
    size_t total = 0;
    char *p = NULL;

    *r = (kiln__store_record_t)KILN__STORE_RECORD_INIT;
    for (size_t i = 0; copy && i < KILN_ARRAY_SIZE(text_cols); i++) {
        total += (size_t)sqlite3_column_bytes(st, text_cols[i]) + 1;
    }
    if (copy && (p = r->mem_ = malloc(total)) == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < KILN_ARRAY_SIZE(text_cols); i++) {
        const char *v = (const char *)sqlite3_column_text(st, text_cols[i]);
        size_t n = (size_t)sqlite3_column_bytes(st, text_cols[i]);

        if (v == NULL || !copy) {
            *dst[i] = v;
            continue;
        }
        memcpy(p, v, n + 1);
        *dst[i] = p;
        p += n + 1;
    }
    r->output = (uint32_t)sqlite3_column_int64(st, 3);
    r->created_ns = sqlite3_column_int64(st, 6);
    r->last_used_ns = sqlite3_column_int64(st, 7);
    r->log_size = sqlite3_column_type(st, 8) == SQLITE_NULL
                      ? -1
                      : sqlite3_column_int64(st, 8);
    return 0;
}

/* ---- put ---- */

static int insert_inputs(kiln__store_t *s, const kiln__store_record_t *r,
                         kiln_error_t *err)
{
    sqlite3_stmt *st;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < r->n_inputs; i++) {
        const kiln__store_input_t *in = &r->inputs[i];

        st = kiln__sdb_stmt(s,
                            "INSERT OR IGNORE INTO record_inputs (key, "
                            "input_index, input_key, selector) VALUES "
                            "(?1, ?2, ?3, ?4)",
                            err);
        if (st == NULL) {
            return s->stmt_rc;
        }
        kiln__sdb_text(st, 1, r->key);
        sqlite3_bind_int64(st, 2, in->index);
        kiln__sdb_text(st, 3, in->key);
        kiln__sdb_text(st, 4, in->selector != NULL ? in->selector : "");
        rc = kiln__sdb_done(s, st, "recording inputs", err);
    }
    return rc;
}

static int insert_record(kiln__store_t *s, const kiln__store_record_t *r,
                         int64_t now, kiln_error_t *err)
{
    sqlite3_stmt *st =
        kiln__sdb_stmt(s, "SELECT 1 FROM snapshots WHERE id = ?1", err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, r->snapshot_id);
    rc = kiln__sdb_row(s, st, "recording", err);
    sqlite3_reset(st);
    if (rc == 0) {
        return kiln__fail(err, KILN_ENOENT,
                          "record %s: snapshot %s is not in "
                          "the store",
                          r->key, r->snapshot_id);
    }
    st = rc < 0 ? NULL
                : kiln__sdb_stmt(s,
                                 "INSERT INTO records (" RECORD_COLUMNS ") "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                                 "NULL)",
                                 err);
    if (st == NULL) {
        return rc < 0 ? rc : s->stmt_rc;
    }
    kiln__sdb_text(st, 1, r->key);
    kiln__sdb_text(st, 2, r->digest);
    kiln__sdb_text(st, 3, r->cachemap_digest);
    sqlite3_bind_int64(st, 4, r->output);
    kiln__sdb_text(st, 5, r->snapshot_id);
    kiln__sdb_text(st, 6, r->description != NULL ? r->description : "");
    sqlite3_bind_int64(st, 7, r->created_ns > 0 ? r->created_ns : now);
    sqlite3_bind_int64(st, 8, r->last_used_ns > 0 ? r->last_used_ns : now);
    rc = kiln__sdb_done(s, st, "recording", err);
    return rc == 0 ? insert_inputs(s, r, err) : rc;
}

/* The record exists already: the caller takes its snapshot. */
static int adopt_winner(kiln__store_t *s, const char *key, const char *snap,
                        int64_t now, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s,
                                      "UPDATE records SET last_used = ?2 "
                                      "WHERE key = ?1",
                                      err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, key);
    sqlite3_bind_int64(st, 2, now);
    rc = kiln__sdb_done(s, st, "touching a record", err);
    return rc == 0 ? kiln__lease_locked(s, KILN__STORE_SNAPSHOT, snap, err)
                   : rc;
}

static int put_locked(kiln__store_t *s, const kiln__store_record_t *r,
                      bool *inserted, char snap[KILN__STORE_ID_MAX],
                      kiln_error_t *err)
{
    int64_t now = kiln__now_ns();
    sqlite3_stmt *st = kiln__sdb_stmt(s,
                                      "SELECT snapshot_id FROM records WHERE "
                                      "key = ?1",
                                      err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, r->key);
    rc = kiln__sdb_row(s, st, "looking a record up", err);
    if (rc > 0) {
        snprintf(snap, KILN__STORE_ID_MAX, "%s", sqlite3_column_text(st, 0));
    }
    sqlite3_reset(st);
    if (rc > 0) {
        *inserted = false;
        return adopt_winner(s, r->key, snap, now, err);
    }
    if (rc == 0) {
        rc = insert_record(s, r, now, err);
        snprintf(snap, KILN__STORE_ID_MAX, "%s", r->snapshot_id);
        *inserted = rc == 0;
    }
    return rc;
}

int kiln__store_put_record(kiln__store_t *s, const kiln__store_record_t *rec,
                           bool *inserted, char snapshot[KILN__STORE_ID_MAX],
                           kiln_error_t *err)
{
    char snap[KILN__STORE_ID_MAX] = "";
    bool ins = false;
    int rc = check_record(rec, err);

    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = put_locked(s, rec, &ins, snap, err);
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (inserted != NULL) {
        *inserted = rc == 0 && ins;
    }
    if (snapshot != NULL) {
        snprintf(snapshot, KILN__STORE_ID_MAX, "%s", rc == 0 ? snap : "");
    }
    return rc;
}

/* ---- get ---- */

static int touch_record(kiln__store_t *s, kiln__store_record_t *r, int64_t now,
                        kiln_error_t *err)
{
    static const char *const sqls[] = {
        "UPDATE records SET last_used = ?2 WHERE key = ?1",
        "UPDATE snapshots SET last_used = ?2 WHERE id = ?1",
    };
    const char *ids[] = {r->key, r->snapshot_id};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < KILN_ARRAY_SIZE(sqls); i++) {
        sqlite3_stmt *st = kiln__sdb_stmt(s, sqls[i], err);

        if (st == NULL) {
            return s->stmt_rc;
        }
        kiln__sdb_text(st, 1, ids[i]);
        sqlite3_bind_int64(st, 2, now);
        rc = kiln__sdb_done(s, st, "touching a record", err);
    }
    r->last_used_ns = now;
    return rc;
}

static int lookup_one(kiln__store_t *s, const char *key, unsigned flags,
                      int64_t now, kiln__store_record_t *out, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s,
                                      "SELECT " RECORD_COLUMNS " FROM "
                                      "records WHERE key = ?1",
                                      err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, key);
    rc = kiln__sdb_row(s, st, "looking a record up", err);
    if (rc > 0 && kiln__record_from_row(st, out, true) < 0) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    sqlite3_reset(st);
    if (rc <= 0) {
        return rc;
    }
    rc = 0;
    if (flags & KILN__STORE_TOUCH) {
        rc = touch_record(s, out, now, err);
    }
    if (rc == 0 && (flags & KILN__STORE_LEASE)) {
        rc = kiln__lease_locked(s, KILN__STORE_SNAPSHOT, out->snapshot_id, err);
    }
    return rc;
}

int kiln__store_get_records(kiln__store_t *s, const char *const *keys, size_t n,
                            unsigned flags, kiln__store_record_t *out,
                            kiln_error_t *err)
{
    int64_t now = kiln__now_ns();
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        out[i] = (kiln__store_record_t)KILN__STORE_RECORD_INIT;
        if (rc == 0) {
            rc = check_key(keys[i], "lookup", err);
        }
    }
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, flags != 0, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = lookup_one(s, keys[i], flags, now, &out[i], err);
    }
    if (rc == 0) {
        rc = kiln__sdb_commit(s, err);
    }
    kiln__sdb_rollback(s);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; rc < 0 && i < n; i++) {
        kiln__store_record_clear(&out[i]);
    }
    return rc;
}

int kiln__store_get_record(kiln__store_t *s, const char *key, unsigned flags,
                           kiln__store_record_t *out, kiln_error_t *err)
{
    int rc = kiln__store_get_records(s, &key, 1, flags, out, err);

    if (rc == 0 && out->key == NULL) {
        return kiln__fail(err, KILN_ENOENT, "no cache record for %s", key);
    }
    return rc;
}

int kiln__store_each_record(kiln__store_t *s, kiln__store_record_cb cb,
                            void *ud, kiln_error_t *err)
{
    kiln__store_record_t r;
    sqlite3_stmt *st;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, false, err);
    st = rc < 0 ? NULL
                : kiln__sdb_stmt(s,
                                 "SELECT " RECORD_COLUMNS " FROM records "
                                 "ORDER BY last_used DESC, key",
                                 err);
    if (st == NULL) {
        rc = rc < 0 ? rc : s->stmt_rc;
    }
    while (st != NULL && (rc = kiln__sdb_row(s, st, "listing", err)) > 0) {
        kiln__record_from_row(st, &r, false);
        rc = cb(&r, ud);
        if (rc != 0) {
            break;
        }
    }
    kiln__sdb_rollback(s); /* read only */
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- inputs ---- */

static const char SQL_INPUTS[] =
    "SELECT input_index, input_key, selector FROM record_inputs WHERE "
    "key = ?1 ORDER BY input_index, input_key, selector";

/* Two passes over the rows: sizes, then one block of structs + strings. */
static int inputs_locked(kiln__store_t *s, const char *key,
                         kiln__store_input_t **out, size_t *n,
                         kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, SQL_INPUTS, err);
    size_t count = 0, bytes = 0, i = 0;
    char *p;
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, key);
    while ((rc = kiln__sdb_row(s, st, "reading inputs", err)) > 0) {
        count++;
        bytes += (size_t)sqlite3_column_bytes(st, 1) +
                 (size_t)sqlite3_column_bytes(st, 2) + 2;
    }
    sqlite3_reset(st);
    *out = rc < 0 ? NULL : malloc(count * sizeof(**out) + bytes + 1);
    if (*out == NULL) {
        return rc < 0 ? rc : kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    p = (char *)(*out + count);
    while (i < count && kiln__sdb_row(s, st, "reading inputs", err) > 0) {
        (*out)[i].index = (uint32_t)sqlite3_column_int64(st, 0);
        for (int c = 1; c <= 2; c++) {
            size_t len = (size_t)sqlite3_column_bytes(st, c);

            memcpy(p, sqlite3_column_text(st, c), len + 1);
            *(c == 1 ? &(*out)[i].key : &(*out)[i].selector) = p;
            p += len + 1;
        }
        i++;
    }
    sqlite3_reset(st);
    *n = i; /* the read transaction keeps both passes equal */
    return 0;
}

int kiln__store_record_inputs(kiln__store_t *s, const char *key,
                              kiln__store_input_t **out, size_t *n,
                              kiln_error_t *err)
{
    kiln__store_record_t r;
    int rc;

    *out = NULL;
    *n = 0;
    rc = kiln__store_get_record(s, key, 0, &r, err);
    kiln__store_record_clear(&r);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, false, err);
    if (rc == 0) {
        rc = inputs_locked(s, key, out, n, err);
        kiln__sdb_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- logs ---- */

static void log_name(const char *key, char name[80])
{
    snprintf(name, 80, "%s.log", key + sizeof("sha256:") - 1);
}

/* In a write transaction: moves the area's file `name` to logs/ as the log
 * of `key` and records its size. */
static int adopt_log_locked(kiln__store_t *s, const char *key, const char *name,
                            kiln_error_t *err)
{
    char dest[80];
    struct stat st;
    sqlite3_stmt *q = kiln__sdb_stmt(s,
                                     "UPDATE records SET log_size = ?2 "
                                     "WHERE key = ?1",
                                     err);
    int rc;

    if (q == NULL) {
        return s->stmt_rc;
    }
    if (fstatat(s->area_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return kiln__fail(err, KILN_EIO, "%s/%s: %s", s->tmp, name,
                          strerror(errno));
    }
    kiln__sdb_text(q, 1, key);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)st.st_size);
    rc = kiln__sdb_done(s, q, "recording a log", err);
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        return kiln__fail(err, KILN_ENOENT,
                          "no cache record for %s: store "
                          "its log after the record",
                          key);
    }
    log_name(key, dest);
    if (rc == 0 && renameat(s->area_fd, name, s->logs_fd, dest) < 0) {
        return kiln__fail(err, KILN_EIO, "moving a log to %s/logs/%s: %s",
                          s->root, dest, strerror(errno));
    }
    return rc == 0 ? kiln__fsync_fd(s->logs_fd, "logs/", err) : rc;
}

static int adopt_log(kiln__store_t *s, const char *key, const char *name,
                     kiln_error_t *err)
{
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = adopt_log_locked(s, key, name, err);
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno != EINTR) {
            return -errno;
        }
        n = n < 0 ? 0 : n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Fills a new file of the area (from data, or a copy of `from`), syncs it
 * and makes it the log of `key`. */
static int store_log(kiln__store_t *s, const char *key, const void *data,
                     size_t len, const char *from, kiln_error_t *err)
{
    const char *name;
    char *path = NULL;
    int fd = -1, rc = check_key(key, "log", err);

    if (rc == 0) {
        rc = kiln__store_mkstemp(s, &fd, &path, err);
    }
    if (rc < 0 || path == NULL) {
        return rc;
    }
    rc = from != NULL ? kiln__copy_file(from, fd, err)
                      : write_all(fd, data, len);
    if (rc < 0 && from == NULL) {
        rc = kiln__fail(err, KILN_EIO, "writing %s: %s", path, strerror(-rc));
    }
    if (rc == 0 && fsync(fd) < 0) {
        rc = kiln__fail(err, KILN_EIO, "syncing %s: %s", path, strerror(errno));
    }
    close(fd);
    if (rc == 0 && kiln__in_area(s, path, &name)) {
        rc = adopt_log(s, key, name, err);
    }
    if (rc < 0) {
        unlink(path);
    }
    free(path);
    return rc;
}

int kiln__store_write_log(kiln__store_t *s, const char *key, const void *data,
                          size_t len, kiln_error_t *err)
{
    return store_log(s, key, data, len, NULL, err);
}

int kiln__store_write_log_file(kiln__store_t *s, const char *key,
                               const char *path, kiln_error_t *err)
{
    const char *name;
    int fd, rc;

    if (!kiln__in_area(s, path, &name)) {
        return store_log(s, key, NULL, 0, path, err);
    }
    rc = check_key(key, "log", err);
    fd = rc < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rc == 0 && (fd < 0 || fsync(fd) < 0)) {
        rc = kiln__fail(err, errno == ENOENT ? KILN_ENOENT : KILN_EIO, "%s: %s",
                        path, strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
    return rc == 0 ? adopt_log(s, key, name, err) : rc;
}

int kiln__store_open_log(kiln__store_t *s, const char *key, int *fd,
                         uint64_t *size, kiln_error_t *err)
{
    kiln__store_record_t r;
    char name[80];
    struct stat st;
    int rc;

    *fd = -1;
    /* The file, not log_size, is the truth: a crash between moving a log
     * in and committing its size leaves a log whose size is not recorded. */
    rc = kiln__store_get_record(s, key, 0, &r, err);
    kiln__store_record_clear(&r);
    if (rc < 0) {
        return rc;
    }
    log_name(key, name);
    *fd = openat(s->logs_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0 && errno == ENOENT) {
        return kiln__fail(err, KILN_ENOENT, "no log stored for %s", key);
    }
    if (*fd < 0 || fstat(*fd, &st) < 0) {
        rc = kiln__fail(err, KILN_EIO, "%s/logs/%s: %s", s->root, name,
                        strerror(errno));
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return rc;
    }
    if (size != NULL) {
        *size = (uint64_t)st.st_size;
    }
    return 0;
}
