/*
 * Disk usage (per record, per layer, totals with logs and blobs) and the
 * consistency check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_int.h"

/*
 * Per record: the layers of its snapshot, split into those no other
 * record's snapshot contains (own) and the others (shared). `rl` pairs each
 * record with each distinct layer it uses; `lc` counts records per layer.
 */
static const char SQL_DU[] =
    "WITH rl AS MATERIALIZED (SELECT DISTINCT r.key AS key, sl.layer_id AS "
    "layer_id FROM records r JOIN snapshot_layers sl ON sl.snapshot_id = "
    "r.snapshot_id), "
    "lc AS (SELECT layer_id, COUNT(*) AS n FROM rl GROUP BY layer_id), "
    "sz AS (SELECT rl.key AS key, "
    "SUM(CASE WHEN lc.n = 1 THEN l.size ELSE 0 END) AS own, "
    "SUM(CASE WHEN lc.n > 1 THEN l.size ELSE 0 END) AS shared "
    "FROM rl JOIN lc ON lc.layer_id = rl.layer_id "
    "JOIN layers l ON l.id = rl.layer_id GROUP BY rl.key) "
    "SELECT r.key, r.digest, r.cachemap_digest, r.output, r.snapshot_id, "
    "r.description, r.created, r.last_used, r.log_size, "
    "COALESCE(sz.own, 0), COALESCE(sz.shared, 0), "
    "EXISTS (SELECT 1 FROM leases e WHERE e.kind = 1 AND "
    "e.id = r.snapshot_id) "
    "FROM records r LEFT JOIN sz ON sz.key = r.key "
    "ORDER BY r.last_used DESC, r.key";

/* A layer is in use when leased itself or through a leased snapshot. */
#define LAYER_IN_USE(l)                                                        \
    "(EXISTS (SELECT 1 FROM leases e WHERE e.kind = 0 AND e.id = " l ") OR "   \
    "EXISTS (SELECT 1 FROM snapshot_layers sl JOIN leases e ON e.kind = 1 "    \
    "AND e.id = sl.snapshot_id WHERE sl.layer_id = " l "))"

static const char SQL_USAGE[] =
    "SELECT (SELECT COALESCE(SUM(size), 0) FROM layers), "
    "(SELECT COUNT(*) FROM layers), "
    "(SELECT COALESCE(SUM(log_size), 0) FROM records), "
    "(SELECT COUNT(*) FROM records), "
    "(SELECT COUNT(*) FROM snapshots), "
    "(SELECT COALESCE(SUM(size), 0) FROM blobs), "
    "(SELECT COUNT(*) FROM blobs), "
    "(SELECT COALESCE(SUM(size), 0) FROM layers l WHERE " LAYER_IN_USE(
        "l.id") ")";

static const char SQL_LAYERS[] =
    "SELECT l.id, l.size, l.created, "
    "(SELECT COUNT(DISTINCT sl.snapshot_id) FROM snapshot_layers sl WHERE "
    "sl.layer_id = l.id), "
    "(SELECT COUNT(DISTINCT r.key) FROM snapshot_layers sl JOIN records r ON "
    "r.snapshot_id = sl.snapshot_id WHERE sl.layer_id = l.id), " LAYER_IN_USE(
        "l.id") " FROM layers l ORDER BY l.created, l.id";

typedef struct du_rows {
    kiln__store_du_entry_t *v;
    size_t n, cap;
} du_rows_t;

static void du_rows_free(du_rows_t *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        kiln__store_record_clear(&rows->v[i].record);
    }
    free(rows->v);
}

static int du_read(kiln__store_t *s, du_rows_t *rows, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, SQL_DU, err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    while ((rc = kiln__sdb_row(s, st, "measuring records", err)) > 0) {
        kiln__store_du_entry_t *e;

        if (rows->n == rows->cap) {
            size_t cap = rows->cap ? rows->cap * 2 : 64;
            kiln__store_du_entry_t *v = realloc(rows->v, cap * sizeof(*v));

            if (v == NULL) {
                rc = KILN_ENOMEM;
                break;
            }
            rows->v = v;
            rows->cap = cap;
        }
        e = &rows->v[rows->n];
        if (kiln__record_from_row(st, &e->record, true) < 0) {
            rc = KILN_ENOMEM;
            break;
        }
        rows->n++;
        e->size = (uint64_t)sqlite3_column_int64(st, 9) +
                  (uint64_t)(e->record.log_size > 0 ? e->record.log_size : 0);
        e->shared_size = (uint64_t)sqlite3_column_int64(st, 10);
        e->in_use = sqlite3_column_int(st, 11) != 0;
    }
    sqlite3_reset(st);
    if (rc == KILN_ENOMEM) {
        return kiln__fail(err, rc, "out of memory");
    }
    return rc;
}

static int usage_read(kiln__store_t *s, kiln__store_usage_t *u,
                      kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, SQL_USAGE, err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    rc = kiln__sdb_row(s, st, "measuring the store", err);
    if (rc > 0) {
        u->layers = (uint64_t)sqlite3_column_int64(st, 0);
        u->n_layers = (uint32_t)sqlite3_column_int64(st, 1);
        u->logs = (uint64_t)sqlite3_column_int64(st, 2);
        u->n_records = (uint32_t)sqlite3_column_int64(st, 3);
        u->n_snapshots = (uint32_t)sqlite3_column_int64(st, 4);
        u->blobs = (uint64_t)sqlite3_column_int64(st, 5);
        u->n_blobs = (uint32_t)sqlite3_column_int64(st, 6);
        u->in_use = (uint64_t)sqlite3_column_int64(st, 7);
        u->total = u->layers + u->logs + u->blobs;
    }
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

/* Drops dead owners' leases (so in_use means alive), in its own short
 * write transaction, and sweeps their areas. */
static int refresh_leases(kiln__store_t *s, kiln_error_t *err)
{
    str_list_t dead = {0};
    int rc = kiln__sdb_begin(s, true, err);

    if (rc == 0) {
        rc = kiln__drop_dead_leases(s, &dead, err);
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    if (rc == 0) {
        kiln__remove_victims(s, NULL, &dead);
    }
    kiln__sl_free(&dead);
    return rc;
}

int kiln__store_du(kiln__store_t *s, kiln__store_du_cb cb, void *ud,
                   kiln__store_usage_t *usage, kiln_error_t *err)
{
    kiln__store_usage_t u;
    du_rows_t rows = {0};
    int rc;

    memset(&u, 0, sizeof(u));
    pthread_mutex_lock(&s->mu);
    rc = refresh_leases(s, err);
    if (rc == 0) {
        rc = kiln__sdb_begin(s, false, err);
    }
    if (rc == 0) {
        rc = du_read(s, &rows, err);
        if (rc == 0) {
            rc = usage_read(s, &u, err);
        }
        kiln__sdb_rollback(s); /* read only */
    }
    for (size_t i = 0; rc == 0 && cb != NULL && i < rows.n; i++) {
        rc = cb(&rows.v[i], ud);
    }
    pthread_mutex_unlock(&s->mu);
    du_rows_free(&rows);
    if (usage != NULL) {
        *usage = u;
    }
    return rc;
}

typedef struct layer_rows {
    kiln__store_layer_usage_t *v;
    size_t n, cap;
} layer_rows_t;

static int layers_read(kiln__store_t *s, layer_rows_t *rows, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, SQL_LAYERS, err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    while ((rc = kiln__sdb_row(s, st, "measuring layers", err)) > 0) {
        kiln__store_layer_usage_t *l;

        if (rows->n == rows->cap) {
            size_t cap = rows->cap ? rows->cap * 2 : 64;
            kiln__store_layer_usage_t *v = realloc(rows->v, cap * sizeof(*v));

            if (v == NULL) {
                rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
                break;
            }
            rows->v = v;
            rows->cap = cap;
        }
        l = &rows->v[rows->n];
        l->id = strdup((const char *)sqlite3_column_text(st, 0));
        if (l->id == NULL) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            break;
        }
        rows->n++;
        l->size = (uint64_t)sqlite3_column_int64(st, 1);
        l->created_ns = sqlite3_column_int64(st, 2);
        l->snapshots = (uint32_t)sqlite3_column_int64(st, 3);
        l->records = (uint32_t)sqlite3_column_int64(st, 4);
        l->in_use = sqlite3_column_int(st, 5) != 0;
    }
    sqlite3_reset(st);
    return rc;
}

int kiln__store_du_layers(kiln__store_t *s, kiln__store_layer_cb cb, void *ud,
                          kiln_error_t *err)
{
    layer_rows_t rows = {0};
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = refresh_leases(s, err);
    if (rc == 0) {
        rc = kiln__sdb_begin(s, false, err);
    }
    if (rc == 0) {
        rc = layers_read(s, &rows, err);
        kiln__sdb_rollback(s);
    }
    for (size_t i = 0; rc == 0 && i < rows.n; i++) {
        rc = cb(&rows.v[i], ud);
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < rows.n; i++) {
        free((char *)rows.v[i].id);
    }
    free(rows.v);
    return rc;
}

/* ---- check ---- */

static int check_pragmas(kiln__store_t *s, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, "PRAGMA integrity_check", err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    rc = kiln__sdb_row(s, st, "checking integrity", err);
    if (rc > 0 && strcmp((const char *)sqlite3_column_text(st, 0), "ok")) {
        rc = kiln__fail(err, KILN_EIO,
                        "%s/metadata.db: integrity check failed: %s; move "
                        "%s aside to start over with an empty cache",
                        s->root, sqlite3_column_text(st, 0), s->root);
    }
    sqlite3_reset(st);
    st = rc < 0 ? NULL : kiln__sdb_stmt(s, "PRAGMA foreign_key_check", err);
    if (st == NULL) {
        return rc < 0 ? rc : s->stmt_rc;
    }
    rc = kiln__sdb_row(s, st, "checking foreign keys", err);
    if (rc > 0) {
        rc = kiln__fail(err, KILN_EIO,
                        "%s/metadata.db: a row of table %s refers to a "
                        "missing row of %s",
                        s->root, sqlite3_column_text(st, 0),
                        sqlite3_column_text(st, 2));
    }
    sqlite3_reset(st);
    return rc;
}

static int check_layer_dirs(kiln__store_t *s, kiln_error_t *err)
{
    str_list_t ids = {0};
    sqlite3_stmt *st = kiln__sdb_stmt(s, "SELECT id FROM layers", err);
    struct stat sb;
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    while ((rc = kiln__sdb_row(s, st, "listing layers", err)) > 0) {
        if (kiln__sl_push(&ids, (const char *)sqlite3_column_text(st, 0))) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            break;
        }
    }
    sqlite3_reset(st);
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        if (fstatat(s->layers_fd, ids.v[i], &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(sb.st_mode)) {
            rc = kiln__fail(err, KILN_EIO,
                            "%s: layer %s is recorded but layers/%s is "
                            "missing",
                            s->root, ids.v[i], ids.v[i]);
        }
    }
    kiln__sl_free(&ids);
    return rc;
}

int kiln__store_check(kiln__store_t *s, kiln_error_t *err)
{
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, false, err);
    if (rc == 0) {
        rc = check_pragmas(s, err);
        if (rc == 0) {
            rc = check_layer_dirs(s, err);
        }
        kiln__sdb_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}
