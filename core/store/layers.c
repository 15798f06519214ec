/*
 * Layers, snapshots and leases.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

static const char SQL_LEASE[] =
    "INSERT INTO leases (owner, kind, id, count) VALUES (?1, ?2, ?3, 1) "
    "ON CONFLICT (owner, kind, id) DO UPDATE SET count = count + 1";

int kiln__lease_locked(kiln__store_t *s, kiln__store_kind_t kind,
                       const char *id, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, SQL_LEASE, err);

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, s->owner);
    sqlite3_bind_int(st, 2, (int)kind);
    kiln__sdb_text(st, 3, id);
    return kiln__sdb_done(s, st, "leasing", err);
}

/* Syncs the directory `dir` of the tmp area and measures it if asked;
 * *name is its name in the area. Runs without the store's mutex. */
static int prepare_layer(kiln__store_t *s, const char *dir, uint64_t *size,
                         const char **name, kiln_error_t *err)
{
    struct stat st;
    int fd;

    if (!kiln__in_area(s, dir, name)) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: a layer must be a directory made by "
                          "kiln__store_mkdtemp()",
                          dir != NULL ? dir : "(null)");
    }
    fd = openat(s->area_fd, *name,
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;

        if (fd >= 0) {
            close(fd);
        }
        return kiln__fail(err, e == ENOENT ? KILN_ENOENT : KILN_EIO, "%s: %s",
                          dir, strerror(e));
    }
    /* One syncfs() covers every file and directory of the tree (and is
     * cheap when a snap writer already synced it). */
    if (syncfs(fd) < 0) {
        int e = errno;

        close(fd);
        return kiln__fail(err, KILN_EIO, "syncing %s: %s", dir, strerror(e));
    }
    close(fd);
    if (*size == KILN__STORE_SIZE_UNKNOWN) {
        return kiln__tree_size(dir, size, err);
    }
    return 0;
}

/* In a write transaction: moves the area's `name` to layers/<new id> and
 * inserts its row. *moved tells the caller to move it back on rollback. */
static int adopt_layer(kiln__store_t *s, const char *name, uint64_t size,
                       char id[KILN__STORE_ID_MAX], bool *moved,
                       kiln_error_t *err)
{
    static const char sql[] =
        "INSERT INTO layers (id, size, created) VALUES (?1, ?2, ?3)";
    sqlite3_stmt *st;
    int rc = -EEXIST;

    *moved = false;
    for (int i = 0; i < 8 && rc == -EEXIST; i++) {
        kiln__random_hex(id, LAYER_ID_HEX);
        rc = kiln__move_dir(s->area_fd, name, s->layers_fd, id);
        rc = rc == -ENOTEMPTY ? -EEXIST : rc;
    }
    if (rc < 0) {
        return kiln__fail(err, KILN_EIO, "moving %s/%s to %s/layers: %s",
                          s->tmp, name, s->root, strerror(-rc));
    }
    *moved = true;
    rc = kiln__fsync_fd(s->layers_fd, "layers/", err);
    if (rc < 0) {
        return rc;
    }
    st = kiln__sdb_stmt(s, sql, err);
    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    sqlite3_bind_int64(st, 3, kiln__now_ns());
    return kiln__sdb_done(s, st, "recording a layer", err);
}

/* After a rollback: the layer goes back where it was, so the caller still
 * owns it (and a failure here only leaves garbage without a row). */
static void unadopt_layer(kiln__store_t *s, const char *id, const char *name)
{
    kiln__move_dir(s->layers_fd, id, s->area_fd, name);
}

int kiln__store_commit_layer(kiln__store_t *s, const char *dir, uint64_t size,
                             char id[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    const char *name;
    bool moved = false;
    int rc;

    id[0] = '\0';
    rc = prepare_layer(s, dir, &size, &name, err);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = adopt_layer(s, name, size, id, &moved, err);
        if (rc == 0) {
            rc = kiln__lease_locked(s, KILN__STORE_LAYER, id, err);
        }
        if (rc == 0) {
            rc = kiln__sdb_commit(s, err);
        }
        if (rc < 0) {
            kiln__sdb_rollback(s);
            if (moved) {
                unadopt_layer(s, id, name);
            }
            id[0] = '\0';
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int kiln__store_layer_path(const kiln__store_t *s, const char *id, char *buf,
                           size_t size, kiln_error_t *err)
{
    if (!kiln__is_hex(id, LAYER_ID_HEX)) {
        return kiln__fail(err, KILN_EINVAL, "'%s' is not a layer id",
                          id != NULL ? id : "(null)");
    }
    if ((size_t)snprintf(buf, size, "%s/layers/%s", s->root, id) >= size) {
        return kiln__fail(err, -ENAMETOOLONG, "%s/layers/%s: too long", s->root,
                          id);
    }
    return 0;
}

/* The id of the stack ids[0..n): hex SHA-256 of the ids, one a line. */
static int snapshot_id(const char *const *ids, size_t n,
                       char id[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    char digest[KILN_DIGEST_STRLEN + 1];
    kiln__buf_t b = KILN_BUF_INIT;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (!kiln__is_hex(ids[i], LAYER_ID_HEX)) {
            kiln__buf_free(&b);
            return kiln__fail(err, KILN_EINVAL, "'%s' is not a layer id",
                              ids[i] != NULL ? ids[i] : "(null)");
        }
        kiln__buf_printf(&b, "%s\n", ids[i]);
    }
    rc = kiln__buf_ok(&b) ? kiln__sha256_digest(b.data, b.len, digest)
                          : KILN_ENOMEM;
    kiln__buf_free(&b);
    if (rc < 0) {
        return kiln__fail(err, rc, "out of memory");
    }
    memcpy(id, digest + 7, SNAPSHOT_ID_HEX + 1);
    return 0;
}

/* Sum of the layers' sizes; KILN_ENOENT names a missing layer. */
static int layers_size(kiln__store_t *s, const char *const *ids, size_t n,
                       uint64_t *size, kiln_error_t *err)
{
    sqlite3_stmt *st;
    int rc;

    *size = 0;
    for (size_t i = 0; i < n; i++) {
        st = kiln__sdb_stmt(s, "SELECT size FROM layers WHERE id = ?1", err);
        if (st == NULL) {
            return s->stmt_rc;
        }
        kiln__sdb_text(st, 1, ids[i]);
        rc = kiln__sdb_row(s, st, "reading a layer", err);
        if (rc == 0) {
            return kiln__fail(err, KILN_ENOENT,
                              "%s: layer %s is not in the "
                              "store",
                              s->root, ids[i]);
        }
        if (rc < 0) {
            return rc;
        }
        *size += (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return 0;
}

static int snapshot_rows(kiln__store_t *s, const char *id,
                         const char *const *ids, size_t n, kiln_error_t *err)
{
    sqlite3_stmt *st;
    uint64_t size;
    int64_t now = kiln__now_ns();
    int rc = layers_size(s, ids, n, &size, err);

    st = rc < 0 ? NULL
                : kiln__sdb_stmt(s,
                                 "INSERT INTO snapshots (id, size, created, "
                                 "last_used) VALUES (?1, ?2, ?3, ?3)",
                                 err);
    if (st == NULL) {
        return rc < 0 ? rc : s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
    sqlite3_bind_int64(st, 3, now);
    rc = kiln__sdb_done(s, st, "recording a snapshot", err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        st = kiln__sdb_stmt(s,
                            "INSERT INTO snapshot_layers (snapshot_id, pos, "
                            "layer_id) VALUES (?1, ?2, ?3)",
                            err);
        if (st == NULL) {
            return s->stmt_rc;
        }
        kiln__sdb_text(st, 1, id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        kiln__sdb_text(st, 3, ids[i]);
        rc = kiln__sdb_done(s, st, "recording a snapshot", err);
    }
    return rc;
}

/* In a write transaction: the snapshot of ids[0..n), created if new,
 * leased to this store. */
static int snapshot_insert(kiln__store_t *s, const char *const *ids, size_t n,
                           char id[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    sqlite3_stmt *st;
    int rc = snapshot_id(ids, n, id, err);

    st = rc < 0 ? NULL
                : kiln__sdb_stmt(s,
                                 "UPDATE snapshots SET last_used = ?2 "
                                 "WHERE id = ?1",
                                 err);
    if (st == NULL) {
        return rc < 0 ? rc : s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    sqlite3_bind_int64(st, 2, kiln__now_ns());
    rc = kiln__sdb_done(s, st, "touching a snapshot", err);
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        rc = snapshot_rows(s, id, ids, n, err);
    }
    if (rc == 0) {
        rc = kiln__lease_locked(s, KILN__STORE_SNAPSHOT, id, err);
    }
    return rc;
}

int kiln__store_create_snapshot(kiln__store_t *s, const char *const *layer_ids,
                                size_t n, char id[KILN__STORE_ID_MAX],
                                kiln_error_t *err)
{
    int rc;

    id[0] = '\0';
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = snapshot_insert(s, layer_ids, n, id, err);
        if (rc == 0) {
            rc = kiln__sdb_commit(s, err);
        }
        if (rc < 0) {
            kiln__sdb_rollback(s);
            id[0] = '\0';
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* The layer ids of snapshot `id`, appended to `out`. */
static int load_layer_ids(kiln__store_t *s, const char *id, str_list_t *out,
                          uint64_t *size, kiln_error_t *err)
{
    sqlite3_stmt *st;
    int rc;

    if (!kiln__is_hex(id, SNAPSHOT_ID_HEX)) {
        return kiln__fail(err, KILN_EINVAL, "'%s' is not a snapshot id",
                          id != NULL ? id : "(null)");
    }
    st = kiln__sdb_stmt(s, "SELECT size FROM snapshots WHERE id = ?1", err);
    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    rc = kiln__sdb_row(s, st, "reading a snapshot", err);
    if (rc == 0) {
        return kiln__fail(err, KILN_ENOENT,
                          "%s: snapshot %s is not in the "
                          "store",
                          s->root, id);
    }
    *size = rc > 0 ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    st = rc < 0 ? NULL
                : kiln__sdb_stmt(s,
                                 "SELECT layer_id FROM snapshot_layers WHERE "
                                 "snapshot_id = ?1 ORDER BY pos",
                                 err);
    if (st == NULL) {
        return rc < 0 ? rc : s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    while ((rc = kiln__sdb_row(s, st, "reading a snapshot", err)) > 0) {
        if (kiln__sl_push(out, (const char *)sqlite3_column_text(st, 0)) < 0) {
            sqlite3_reset(st);
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    sqlite3_reset(st);
    return rc;
}

static int commit_snapshot_locked(kiln__store_t *s, const char *base,
                                  const char *name, uint64_t size,
                                  char id[KILN__STORE_ID_MAX],
                                  kiln_error_t *err)
{
    char layer[KILN__STORE_ID_MAX];
    str_list_t ids = {0};
    bool moved = false;
    uint64_t base_size;
    int rc = kiln__sdb_begin(s, true, err);

    if (rc == 0 && base != NULL) {
        rc = load_layer_ids(s, base, &ids, &base_size, err);
    }
    if (rc == 0 && name != NULL) {
        rc = adopt_layer(s, name, size, layer, &moved, err);
        if (rc == 0 && kiln__sl_push(&ids, layer) < 0) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    if (rc == 0) {
        rc = snapshot_insert(s, (const char *const *)ids.v, ids.n, id, err);
    }
    if (rc == 0) {
        rc = kiln__sdb_commit(s, err);
    }
    if (rc < 0) {
        kiln__sdb_rollback(s);
        if (moved) {
            unadopt_layer(s, layer, name);
        }
        id[0] = '\0';
    }
    kiln__sl_free(&ids);
    return rc;
}

int kiln__store_commit_snapshot(kiln__store_t *s, const char *base,
                                const char *layer_dir, uint64_t size,
                                char id[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    const char *name = NULL;
    int rc = 0;

    id[0] = '\0';
    if (layer_dir != NULL) {
        rc = prepare_layer(s, layer_dir, &size, &name, err);
    }
    if (rc == 0) {
        pthread_mutex_lock(&s->mu);
        rc = commit_snapshot_locked(s, base, name, size, id, err);
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

static int fill_layers(kiln__store_t *s, str_list_t *ids,
                       kiln__store_layers_t *out, kiln_error_t *err)
{
    size_t len = strlen(s->root) + sizeof("/layers/") + LAYER_ID_HEX;

    out->paths = calloc(ids->n + 1, sizeof(char *));
    if (out->paths == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    out->n = ids->n;
    out->ids = ids->v; /* taken */
    ids->v = NULL;
    ids->n = ids->cap = 0;
    for (size_t i = 0; i < out->n; i++) {
        out->paths[i] = malloc(len);
        if (out->paths[i] == NULL) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        snprintf(out->paths[i], len, "%s/layers/%s", s->root, out->ids[i]);
    }
    return 0;
}

int kiln__store_snapshot_layers(kiln__store_t *s, const char *id,
                                kiln__store_layers_t *out, kiln_error_t *err)
{
    str_list_t ids = {0};
    int rc;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, false, err);
    if (rc == 0) {
        rc = load_layer_ids(s, id, &ids, &out->size, err);
        kiln__sdb_rollback(s); /* read only */
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == 0) {
        rc = fill_layers(s, &ids, out, err);
    }
    kiln__sl_free(&ids);
    if (rc < 0) {
        kiln__store_layers_free(out);
    }
    return rc;
}

void kiln__store_layers_free(kiln__store_layers_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->ids != NULL) {
            free(l->ids[i]);
        }
        if (l->paths != NULL) {
            free(l->paths[i]);
        }
    }
    free(l->ids);
    free(l->paths);
    memset(l, 0, sizeof(*l));
}

/* ---- leases ---- */

static int lease_exists(kiln__store_t *s, kiln__store_kind_t kind,
                        const char *id, kiln_error_t *err)
{
    static const char layer_sql[] = "SELECT 1 FROM layers WHERE id = ?1";
    static const char snap_sql[] = "SELECT 1 FROM snapshots WHERE id = ?1";
    sqlite3_stmt *st;
    int rc;

    st = kiln__sdb_stmt(s, kind == KILN__STORE_LAYER ? layer_sql : snap_sql,
                        err);
    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    rc = kiln__sdb_row(s, st, "leasing", err);
    sqlite3_reset(st);
    if (rc == 0) {
        return kiln__fail(err, KILN_ENOENT, "%s: %s %s is not in the store",
                          s->root,
                          kind == KILN__STORE_LAYER ? "layer" : "snapshot",
                          id != NULL ? id : "(null)");
    }
    return rc < 0 ? rc : 0;
}

int kiln__store_lease(kiln__store_t *s, kiln__store_kind_t kind, const char *id,
                      kiln_error_t *err)
{
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = lease_exists(s, kind, id, err);
        if (rc == 0) {
            rc = kiln__lease_locked(s, kind, id, err);
        }
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int release_locked(kiln__store_t *s, kiln__store_kind_t kind,
                          const char *id, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s,
                                      "UPDATE leases SET count = count - 1 "
                                      "WHERE owner = ?1 AND kind = ?2 AND "
                                      "id = ?3",
                                      err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, s->owner);
    sqlite3_bind_int(st, 2, (int)kind);
    kiln__sdb_text(st, 3, id);
    rc = kiln__sdb_done(s, st, "releasing", err);
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        return kiln__fail(err, KILN_EINVAL, "%s %s is not leased",
                          kind == KILN__STORE_LAYER ? "layer" : "snapshot",
                          id != NULL ? id : "(null)");
    }
    st = rc < 0 ? NULL
                : kiln__sdb_stmt(s,
                                 "DELETE FROM leases WHERE owner = ?1 AND "
                                 "kind = ?2 AND id = ?3 AND count <= 0",
                                 err);
    if (st == NULL) {
        return rc < 0 ? rc : s->stmt_rc;
    }
    kiln__sdb_text(st, 1, s->owner);
    sqlite3_bind_int(st, 2, (int)kind);
    kiln__sdb_text(st, 3, id);
    return kiln__sdb_done(s, st, "releasing", err);
}

/* Does anything but this store's released lease still hold kind/id? */
static int still_held(kiln__store_t *s, kiln__store_kind_t kind, const char *id,
                      bool *held, kiln_error_t *err)
{
    static const char snap_sql[] =
        "SELECT EXISTS (SELECT 1 FROM records WHERE snapshot_id = ?1) OR "
        "EXISTS (SELECT 1 FROM leases WHERE kind = 1 AND id = ?1)";
    static const char layer_sql[] =
        "SELECT EXISTS (SELECT 1 FROM snapshot_layers WHERE layer_id = ?1) "
        "OR EXISTS (SELECT 1 FROM leases WHERE kind = 0 AND id = ?1)";
    sqlite3_stmt *st = kiln__sdb_stmt(
        s, kind == KILN__STORE_SNAPSHOT ? snap_sql : layer_sql, err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    rc = kiln__sdb_row(s, st, "releasing", err);
    *held = rc <= 0 || sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

/* Removes kind/id if nothing holds it any more, in a transaction of its
 * own whose commit is synced before the directories go. */
static int drop_released(kiln__store_t *s, kiln__store_kind_t kind,
                         const char *id, kiln_error_t *err)
{
    str_list_t victims = {0};
    uint64_t freed = 0;
    int rc = kiln__sdb_begin_delete(s, err);

    if (rc == 0) {
        rc = kind == KILN__STORE_SNAPSHOT
                 ? kiln__drop_snapshot(s, id, &victims, &freed, err)
                 : kiln__drop_layer(s, id, &victims, &freed, err);
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    if (rc == 0) {
        kiln__remove_victims(s, &victims, NULL);
    }
    kiln__sl_free(&victims);
    return rc;
}

int kiln__store_release(kiln__store_t *s, kiln__store_kind_t kind,
                        const char *id, kiln_error_t *err)
{
    bool held = true;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin(s, true, err);
    if (rc == 0) {
        rc = release_locked(s, kind, id, err);
        if (rc == 0) {
            rc = still_held(s, kind, id, &held, err);
        }
        rc = rc == 0 ? kiln__sdb_commit(s, err) : rc;
        kiln__sdb_rollback(s);
    }
    /* What nothing holds any more goes at once (a race's loser, a
     * cancelled op), so a long-lived engine does not pile up garbage.
     * Only then is a synced commit paid for. */
    if (rc == 0 && !held) {
        rc = drop_released(s, kind, id, err);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int kiln__store_release_all(kiln__store_t *s, kiln_error_t *err)
{
    sqlite3_stmt *st;
    int rc;

    pthread_mutex_lock(&s->mu);
    st = kiln__sdb_stmt(s, "DELETE FROM leases WHERE owner = ?1", err);
    rc = st == NULL ? (s->stmt_rc) : 0;
    if (rc == 0) {
        kiln__sdb_text(st, 1, s->owner);
        rc = kiln__sdb_done(s, st, "releasing", err);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}
