/*
 * Garbage collection and prune: dead owners' leases, unreferenced
 * snapshots and layers, entries of layers/, logs/ and blobs/sha256/
 * without rows, and least-recently-used records and blobs.
 *
 * Every decision is taken in one write transaction (so no other process
 * can add a lease or a layer meanwhile); directories are removed after the
 * commit, first renamed into this store's tmp area so a half-removed
 * directory is never visible under layers/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

_Static_assert(KILN__STORE_LAYER == 0 && KILN__STORE_SNAPSHOT == 1,
               "lease kinds are spelled as 0 and 1 in SQL below");

/* Column 0 of every row of `sql` (with ?1 bound to `arg` if not NULL). */
static int collect(kiln__store_t *s, const char *sql, const char *arg,
                   str_list_t *out, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, sql, err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    if (arg != NULL) {
        kiln__sdb_text(st, 1, arg);
    }
    while ((rc = kiln__sdb_row(s, st, "collecting garbage", err)) > 0) {
        if (kiln__sl_push(out, (const char *)sqlite3_column_text(st, 0)) < 0) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            break;
        }
    }
    sqlite3_reset(st);
    return rc;
}

/* Runs `sql` with ?1 = arg, expecting no rows. */
static int run1(kiln__store_t *s, const char *sql, const char *arg,
                kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, sql, err);

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, arg);
    return kiln__sdb_done(s, st, "collecting garbage", err);
}

int kiln__drop_dead_leases(kiln__store_t *s, str_list_t *dead,
                           kiln_error_t *err)
{
    str_list_t owners = {0};
    int rc =
        collect(s, "SELECT DISTINCT owner FROM leases", NULL, &owners, err);

    for (size_t i = 0; rc == 0 && i < owners.n; i++) {
        if (kiln__area_alive(s, owners.v[i], false)) {
            continue;
        }
        rc = run1(s, "DELETE FROM leases WHERE owner = ?1", owners.v[i], err);
        if (rc == 0 && dead != NULL && kiln__sl_push(dead, owners.v[i]) < 0) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    kiln__sl_free(&owners);
    return rc;
}

int kiln__drop_layer(kiln__store_t *s, const char *id, str_list_t *victims,
                     uint64_t *freed, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(
        s,
        "SELECT size FROM layers WHERE id = ?1 AND NOT EXISTS (SELECT 1 "
        "FROM snapshot_layers WHERE layer_id = ?1) AND NOT EXISTS (SELECT 1 "
        "FROM leases WHERE kind = 0 AND id = ?1)",
        err);
    uint64_t size = 0;
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    rc = kiln__sdb_row(s, st, "collecting garbage", err);
    if (rc > 0) {
        size = (uint64_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (rc <= 0) {
        return rc;
    }
    rc = run1(s, "DELETE FROM layers WHERE id = ?1", id, err);
    if (rc == 0 && kiln__sl_push(victims, id) < 0) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *freed += rc == 0 ? size : 0;
    return rc;
}

int kiln__drop_snapshot(kiln__store_t *s, const char *id, str_list_t *victims,
                        uint64_t *freed, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(
        s,
        "SELECT EXISTS (SELECT 1 FROM records WHERE snapshot_id = ?1) OR "
        "EXISTS (SELECT 1 FROM leases WHERE kind = 1 AND id = ?1)",
        err);
    str_list_t layers = {0};
    int rc, held;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, id);
    rc = kiln__sdb_row(s, st, "collecting garbage", err);
    held = rc > 0 ? sqlite3_column_int(st, 0) : 1;
    sqlite3_reset(st);
    if (rc <= 0 || held) {
        return rc < 0 ? rc : 0;
    }
    rc = collect(s,
                 "SELECT layer_id FROM snapshot_layers WHERE snapshot_id = ?1",
                 id, &layers, err);
    if (rc == 0) { /* snapshot_layers rows go with it (ON DELETE CASCADE) */
        rc = run1(s, "DELETE FROM snapshots WHERE id = ?1", id, err);
    }
    for (size_t i = 0; rc == 0 && i < layers.n; i++) {
        rc = kiln__drop_layer(s, layers.v[i], victims, freed, err);
    }
    kiln__sl_free(&layers);
    return rc;
}

int kiln__gc_rows(kiln__store_t *s, str_list_t *victims, uint64_t *freed,
                  kiln_error_t *err)
{
    str_list_t ids = {0};
    int rc;

    rc = collect(s,
                 "SELECT id FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM "
                 "records r WHERE r.snapshot_id = s.id) AND NOT EXISTS "
                 "(SELECT 1 FROM leases l WHERE l.kind = 1 AND l.id = s.id)",
                 NULL, &ids, err);
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        rc = kiln__drop_snapshot(s, ids.v[i], victims, freed, err);
    }
    kiln__sl_free(&ids);
    if (rc == 0) {
        rc = collect(s,
                     "SELECT id FROM layers l WHERE NOT EXISTS (SELECT 1 "
                     "FROM snapshot_layers sl WHERE sl.layer_id = l.id) AND "
                     "NOT EXISTS (SELECT 1 FROM leases e WHERE e.kind = 0 "
                     "AND e.id = l.id)",
                     NULL, &ids, err);
    }
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        rc = kiln__drop_layer(s, ids.v[i], victims, freed, err);
    }
    kiln__sl_free(&ids);
    return rc;
}

/* ---- files ---- */

void kiln__remove_victims(kiln__store_t *s, const str_list_t *layers,
                          const str_list_t *dead)
{
    char name[LAYER_ID_HEX + 8];

    for (size_t i = 0; layers != NULL && i < layers->n; i++) {
        snprintf(name, sizeof(name), "gc-%s", layers->v[i]);
        if (kiln__move_dir(s->layers_fd, layers->v[i], s->area_fd, name) == 0) {
            kiln__rm_tree_at(s->area_fd, name, NULL);
        }
    }
    for (size_t i = 0; dead != NULL && i < dead->n; i++) {
        kiln__area_alive(s, dead->v[i], true);
    }
}

int kiln__log_move_out(kiln__store_t *s, const char *key, str_list_t *moved,
                       uint64_t *size, kiln_error_t *err)
{
    char name[80], dest[90];
    struct stat st;

    snprintf(name, sizeof(name), "%s.log", key + sizeof("sha256:") - 1);
    snprintf(dest, sizeof(dest), "gc-%s", name);
    *size = 0;
    if (fstatat(s->logs_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        *size = (uint64_t)st.st_size;
    }
    if (renameat(s->logs_fd, name, s->area_fd, dest) < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return kiln__fail(err, KILN_EIO, "moving %s/logs/%s: %s", s->root, name,
                          strerror(errno));
    }
    if (kiln__sl_push(moved, name) < 0) {
        renameat(s->area_fd, dest, s->logs_fd, name);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}

void kiln__logs_done(kiln__store_t *s, const str_list_t *moved, bool committed)
{
    char dest[90];

    for (size_t i = 0; i < moved->n; i++) {
        snprintf(dest, sizeof(dest), "gc-%s", moved->v[i]);
        if (committed) {
            unlinkat(s->area_fd, dest, 0);
        } else {
            renameat(s->area_fd, dest, s->logs_fd, moved->v[i]);
        }
    }
}

/* Is there a row for `name` of layers/ (or logs/)? 1 yes, 0 no. */
static int has_row(kiln__store_t *s, const char *sql, const char *arg,
                   kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(s, sql, err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    kiln__sdb_text(st, 1, arg);
    rc = kiln__sdb_row(s, st, "collecting garbage", err);
    sqlite3_reset(st);
    return rc;
}

static int list_fail(kiln__store_t *s, const char *dir, int rc,
                     kiln_error_t *err)
{
    return kiln__fail(err, rc == KILN_ENOMEM ? rc : KILN_EIO,
                      "%s: listing %s: %s", s->root, dir, strerror(-rc));
}

/* In a write transaction: entries of layers/ and logs/ without a row. Any
 * writer moves an entry in only while holding the write lock and commits
 * its row before letting go, so under the lock these are leftovers of a
 * crash, never a commit in progress. */
static int scan_layers(kiln__store_t *s, str_list_t *victims, kiln_error_t *err)
{
    str_list_t names = {0};
    int rc = kiln__list_dir(s->layers_fd, &names);

    if (rc < 0) {
        kiln__sl_free(&names);
        return list_fail(s, "layers/", rc, err);
    }
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        if (!kiln__is_hex(names.v[i], LAYER_ID_HEX)) {
            continue; /* not a name kiln makes: left alone */
        }
        rc = has_row(s, "SELECT 1 FROM layers WHERE id = ?1", names.v[i], err);
        if (rc == 0 && kiln__sl_push(victims, names.v[i]) < 0) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        rc = rc > 0 ? 0 : rc;
    }
    kiln__sl_free(&names);
    return rc;
}

static int scan_logs(kiln__store_t *s, str_list_t *logs, kiln_error_t *err)
{
    char key[KILN_DIGEST_STRLEN + 1];
    str_list_t names = {0};
    uint64_t size;
    int rc = kiln__list_dir(s->logs_fd, &names);

    if (rc < 0) {
        kiln__sl_free(&names);
        return list_fail(s, "logs/", rc, err);
    }
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        const char *n = names.v[i];

        if (strlen(n) != 68 || strcmp(n + 64, ".log") != 0) {
            continue;
        }
        snprintf(key, sizeof(key), "sha256:%.64s", n);
        if (!kiln__digest_valid(key)) {
            continue;
        }
        rc = has_row(s, "SELECT 1 FROM records WHERE key = ?1", key, err);
        if (rc == 0) {
            rc = kiln__log_move_out(s, key, logs, &size, err);
        }
        rc = rc > 0 ? 0 : rc;
    }
    kiln__sl_free(&names);
    return rc;
}

/* What a garbage-collecting transaction removes once it has committed:
 * layer ids, dead owners' areas, and the logs and blobs moved out. */
typedef struct gc_lists {
    str_list_t victims, dead, logs, blobs;
} gc_lists_t;

/* Ends a garbage-collecting transaction: commits (or rolls back after an
 * error) and removes what was collected (or puts the moved logs and blobs
 * back after a rollback); frees the lists. */
static int gc_finish(kiln__store_t *s, int rc, gc_lists_t *l, kiln_error_t *err)
{
    if (rc == 0) {
        rc = kiln__sdb_commit(s, err);
    }
    kiln__sdb_rollback(s);
    kiln__logs_done(s, &l->logs, rc == 0);
    kiln__blobs_done(s, &l->blobs, rc == 0);
    if (rc == 0) {
        kiln__remove_victims(s, &l->victims, &l->dead);
    }
    kiln__sl_free(&l->victims);
    kiln__sl_free(&l->dead);
    kiln__sl_free(&l->logs);
    kiln__sl_free(&l->blobs);
    return rc;
}

int kiln__store_gc(kiln__store_t *s, uint64_t *freed, kiln_error_t *err)
{
    gc_lists_t l = {{0}, {0}, {0}, {0}};
    uint64_t f = 0;
    int rc;

    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin_delete(s, err);
    if (rc == 0) {
        rc = kiln__drop_dead_leases(s, &l.dead, err);
        if (rc == 0) {
            rc = kiln__gc_rows(s, &l.victims, &f, err);
        }
        if (rc == 0) {
            rc = scan_layers(s, &l.victims, err);
        }
        if (rc == 0) {
            rc = scan_logs(s, &l.logs, err);
        }
        if (rc == 0) {
            rc = kiln__gc_blobs(s, &l.blobs, err);
        }
        rc = gc_finish(s, rc, &l, err);
    }
    pthread_mutex_unlock(&s->mu);
    if (freed != NULL) {
        *freed = rc == 0 ? f : 0;
    }
    return rc;
}

void kiln__close_cleanup(kiln__store_t *s)
{
    gc_lists_t l = {{0}, {0}, {0}, {0}};
    uint64_t f = 0;
    int rc;

    if (s->db == NULL || kiln__sdb_begin_delete(s, NULL) < 0) {
        return;
    }
    rc = run1(s, "DELETE FROM leases WHERE owner = ?1", s->owner, NULL);
    if (rc == 0) {
        rc = kiln__gc_rows(s, &l.victims, &f, NULL);
    }
    gc_finish(s, rc, &l, NULL);
}

/* ---- prune ---- */

typedef struct prune_cand {
    char key[KILN_DIGEST_STRLEN + 1];
    char snap[KILN__STORE_ID_MAX];
    int64_t used;
} prune_cand_t;

/* Records nobody leases the snapshot of, least recently used first. */
static int prune_candidates(kiln__store_t *s, prune_cand_t **out, size_t *n,
                            kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(
        s,
        "SELECT key, snapshot_id, last_used FROM records r WHERE NOT EXISTS "
        "(SELECT 1 FROM leases l WHERE l.kind = 1 AND l.id = r.snapshot_id) "
        "ORDER BY last_used, key",
        err);
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (st == NULL) {
        return s->stmt_rc;
    }
    while ((rc = kiln__sdb_row(s, st, "listing records", err)) > 0) {
        if (*n == cap) {
            prune_cand_t *v =
                realloc(*out, (cap = cap ? cap * 2 : 64) * sizeof(*v));

            if (v == NULL) {
                rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
                break;
            }
            *out = v;
        }
        snprintf((*out)[*n].key, sizeof((*out)[*n].key), "%s",
                 sqlite3_column_text(st, 0));
        snprintf((*out)[*n].snap, sizeof((*out)[*n].snap), "%s",
                 sqlite3_column_text(st, 1));
        (*out)[(*n)++].used = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    return rc;
}

static int store_total(kiln__store_t *s, uint64_t *total, kiln_error_t *err)
{
    sqlite3_stmt *st = kiln__sdb_stmt(
        s,
        "SELECT (SELECT COALESCE(SUM(size), 0) FROM layers) + (SELECT "
        "COALESCE(SUM(log_size), 0) FROM records) + (SELECT "
        "COALESCE(SUM(size), 0) FROM blobs)",
        err);
    int rc;

    if (st == NULL) {
        return s->stmt_rc;
    }
    rc = kiln__sdb_row(s, st, "measuring the store", err);
    *total = rc > 0 ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

typedef struct prune_state {
    const kiln__store_prune_opts_t *opts;
    int64_t cutoff; /* what was last used before this goes (keep_duration) */
    uint64_t total; /* what the store takes now */
    uint64_t freed;
    uint32_t removed;
    gc_lists_t l;
} prune_state_t;

static bool prune_wants(const prune_state_t *p, const prune_cand_t *c)
{
    const kiln__store_prune_opts_t *o = p->opts;

    return o->all || (o->keep_duration_ns > 0 && c->used < p->cutoff) ||
           (o->keep_storage > 0 && p->total > o->keep_storage);
}

static int prune_one(kiln__store_t *s, prune_state_t *p, const prune_cand_t *c,
                     kiln_error_t *err)
{
    uint64_t log = 0, layers = 0;
    int rc = run1(s, "DELETE FROM records WHERE key = ?1", c->key, err);

    if (rc == 0) {
        rc = kiln__log_move_out(s, c->key, &p->l.logs, &log, err);
    }
    if (rc == 0) {
        rc = kiln__drop_snapshot(s, c->snap, &p->l.victims, &layers, err);
    }
    if (rc == 0) {
        p->freed += log + layers;
        p->total -= log + layers > p->total ? p->total : log + layers;
        p->removed++;
    }
    return rc;
}

/* Candidates come oldest first: once neither age nor size wants one, no
 * later one is wanted either (younger, and the total only shrinks). Blobs
 * come after the records, the same way; with `all`, the plugins'
 * key-value pairs go too. */
static int prune_locked(kiln__store_t *s, prune_state_t *p, kiln_error_t *err)
{
    prune_cand_t *cands = NULL;
    size_t n = 0;
    int rc = kiln__drop_dead_leases(s, &p->l.dead, err);

    if (rc == 0) {
        rc = kiln__gc_rows(s, &p->l.victims, &p->freed, err);
    }
    if (rc == 0) {
        rc = store_total(s, &p->total, err);
    }
    if (rc == 0) {
        rc = prune_candidates(s, &cands, &n, err);
    }
    for (size_t i = 0; rc == 0 && i < n && prune_wants(p, &cands[i]); i++) {
        rc = prune_one(s, p, &cands[i], err);
    }
    free(cands);
    if (rc == 0) {
        rc = kiln__prune_blobs(s, p->opts, p->cutoff, &p->total, &p->l.blobs,
                               &p->freed, err);
    }
    if (rc == 0 && p->opts->all) {
        rc = kiln__kv_clear(s, err);
    }
    return rc;
}

int kiln__store_prune(kiln__store_t *s, const kiln__store_prune_opts_t *opts,
                      uint64_t *freed, uint32_t *removed, kiln_error_t *err)
{
    prune_state_t p = {opts, 0, 0, 0, 0, {{0}, {0}, {0}, {0}}};
    int rc;

    p.cutoff = kiln__now_ns() - opts->keep_duration_ns;
    pthread_mutex_lock(&s->mu);
    rc = kiln__sdb_begin_delete(s, err);
    if (rc == 0) {
        rc = prune_locked(s, &p, err);
        rc = gc_finish(s, rc, &p.l, err);
    }
    pthread_mutex_unlock(&s->mu);
    if (freed != NULL) {
        *freed = rc == 0 ? p.freed : 0;
    }
    if (removed != NULL) {
        *removed = rc == 0 ? p.removed : 0;
    }
    return rc;
}
