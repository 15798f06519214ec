/*
 * metadata.db: opening, pragmas, schema migrations, statements,
 * transactions and error messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

/* PRAGMA application_id of a kiln metadata database: "KILN". */
#define APPLICATION_ID 0x4b494c4e

/*
 * Migrations: migrations[i] turns schema version i into i + 1. Append only;
 * never edit a released step. Each runs in the transaction that sets
 * user_version, so a crash leaves the old version or the new one.
 */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. Times are ns since the epoch. */
    "CREATE TABLE layers ("
    "  id TEXT PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE snapshots ("
    "  id TEXT PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL);"
    "CREATE TABLE snapshot_layers ("
    "  snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,"
    "  pos INTEGER NOT NULL,"
    "  layer_id TEXT NOT NULL REFERENCES layers(id),"
    "  PRIMARY KEY (snapshot_id, pos));"
    "CREATE INDEX snapshot_layers_layer ON snapshot_layers(layer_id);"
    "CREATE TABLE records ("
    "  key TEXT PRIMARY KEY,"
    "  digest TEXT NOT NULL,"
    "  cachemap_digest TEXT,"
    "  output INTEGER NOT NULL,"
    "  snapshot_id TEXT NOT NULL REFERENCES snapshots(id),"
    "  description TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL,"
    "  log_size INTEGER);"
    "CREATE INDEX records_snapshot ON records(snapshot_id);"
    "CREATE INDEX records_last_used ON records(last_used);"
    "CREATE INDEX records_digest ON records(digest);"
    "CREATE TABLE record_inputs ("
    "  key TEXT NOT NULL REFERENCES records(key) ON DELETE CASCADE,"
    "  input_index INTEGER NOT NULL,"
    "  input_key TEXT NOT NULL,"
    "  selector TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (key, input_index, input_key, selector));"
    "CREATE INDEX record_inputs_input ON record_inputs(input_key);"
    "CREATE TABLE leases ("
    "  owner TEXT NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  id TEXT NOT NULL,"
    "  count INTEGER NOT NULL,"
    "  PRIMARY KEY (owner, kind, id));"
    "CREATE INDEX leases_id ON leases(kind, id);",
    /* 1 -> 2: plugins' key-value pairs and the blob store. IF NOT EXISTS,
     * so that a version 2 database whose user_version was set back to 1
     * (by hand, to let an older kiln open it) migrates again. */
    "CREATE TABLE IF NOT EXISTS plugin_kv ("
    "  plugin TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value BLOB NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY (plugin, key));"
    "CREATE TABLE IF NOT EXISTS blobs ("
    "  digest TEXT PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS blobs_last_used ON blobs(last_used);",
};

_Static_assert(KILN_ARRAY_SIZE(migrations) == KILN__STORE_SCHEMA_VERSION,
               "one migration per schema version");

int kiln__sdb_fail(kiln__store_t *s, kiln_error_t *err, int rc,
                   const char *what)
{
    const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : "";
    const char *root = s->root;

    if (msg == NULL || *msg == '\0') {
        msg = sqlite3_errstr(rc);
    }
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return kiln__fail(err, KILN_EIO,
                          "%s/metadata.db: %s: %s: the store's database is "
                          "corrupted; move %s aside (or remove it) to start "
                          "over with an empty cache",
                          root, what, msg, root);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return kiln__fail(err, KILN_EIO,
                          "%s/metadata.db: %s: database is locked: another "
                          "process held it longer than the 30 s timeout",
                          root, what);
    case SQLITE_NOMEM:
        return kiln__fail(err, KILN_ENOMEM, "%s/metadata.db: %s: out of memory",
                          root, what);
    case SQLITE_FULL:
        return kiln__fail(err, -ENOSPC, "%s/metadata.db: %s: disk full", root,
                          what);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return kiln__fail(err, -EACCES, "%s/metadata.db: %s: %s", root, what,
                          msg);
    case SQLITE_CONSTRAINT:
        return kiln__fail(err, KILN_EINVAL, "%s/metadata.db: %s: %s", root,
                          what, msg);
    default:
        return kiln__fail(err, KILN_EIO,
                          "%s/metadata.db: %s: %s (SQLite code %d, errno %d)",
                          root, what, msg, rc,
                          s->db != NULL ? sqlite3_system_errno(s->db) : 0);
    }
}

/* Waits for a lock with short, growing, jittered sleeps (SQLite's own
 * handler sleeps a whole second when built without usleep), up to
 * BUSY_TIMEOUT_NS per wait. */
static int busy_handler(void *ud, int n)
{
    kiln__store_t *s = ud;
    struct timespec ts;
    int64_t now, us;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (n == 0) {
        s->busy_start_ns = now;
    }
    if (now - s->busy_start_ns > BUSY_TIMEOUT_NS) {
        return 0;
    }
    us = n < 8 ? 50LL << n : 10000; /* 50 us .. 6.4 ms, then 10 ms */
    us += rand_r(&s->busy_seed) % (us + 1);
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(us * 1000);
    nanosleep(&ts, NULL);
    return 1;
}

static int pragma_int(kiln__store_t *s, const char *sql, int *out,
                      kiln_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
        rc = kiln__sdb_fail(s, err, rc, sql);
    }
    sqlite3_finalize(st);
    return rc;
}

static int refuse_newer(kiln__store_t *s, int version, kiln_error_t *err)
{
    return kiln__fail(err, KILN_EIO,
                      "%s/metadata.db: schema version %d is newer than this "
                      "kiln supports (%d): use the kiln that wrote it, or "
                      "another --root",
                      s->root, version, KILN__STORE_SCHEMA_VERSION);
}

static int check_identity(kiln__store_t *s, kiln_error_t *err)
{
    int app = 0, rc = pragma_int(s, "PRAGMA application_id", &app, err);

    if (rc == 0 && app != 0 && app != APPLICATION_ID) {
        return kiln__fail(err, KILN_EIO,
                          "%s/metadata.db: not a kiln database "
                          "(application_id %#x)",
                          s->root, (unsigned)app);
    }
    return rc;
}

/* Applies the migrations the database lacks, in one write transaction
 * (another process may be migrating too: the version is read again under
 * the write lock). */
static int migrate(kiln__store_t *s, kiln_error_t *err)
{
    char sql[64];
    int version = 0, rc;

    rc = pragma_int(s, "PRAGMA user_version", &version, err);
    if (rc < 0 || version == KILN__STORE_SCHEMA_VERSION) {
        return rc;
    }
    if (version > KILN__STORE_SCHEMA_VERSION) {
        return refuse_newer(s, version, err);
    }
    rc = kiln__sdb_begin(s, true, err);
    if (rc < 0) {
        return rc;
    }
    rc = pragma_int(s, "PRAGMA user_version", &version, err);
    if (rc == 0 && version > KILN__STORE_SCHEMA_VERSION) {
        rc = refuse_newer(s, version, err);
    }
    for (int v = version; rc == 0 && v < KILN__STORE_SCHEMA_VERSION; v++) {
        rc = kiln__sdb_exec(s, migrations[v], err);
    }
    if (rc == 0 && version == 0) {
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d",
                 APPLICATION_ID);
        rc = kiln__sdb_exec(s, sql, err);
    }
    if (rc == 0) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
                 KILN__STORE_SCHEMA_VERSION);
        rc = kiln__sdb_exec(s, sql, err);
    }
    if (rc == 0) {
        return kiln__sdb_commit(s, err);
    }
    kiln__sdb_rollback(s);
    return rc;
}

/* Switching a new database to WAL needs an exclusive lock, and SQLite
 * reports a conflict there at once, without the busy handler: wait here
 * (up to the busy timeout) while another process is creating it too. */
static int exec_retry(kiln__store_t *s, const char *sql, kiln_error_t *err)
{
    struct timespec ts = {0, 0};
    int rc;

    for (int64_t waited_us = 0;; waited_us += ts.tv_nsec / 1000) {
        rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY || waited_us * 1000 > BUSY_TIMEOUT_NS) {
            break;
        }
        ts.tv_nsec = 1000000 + rand_r(&s->busy_seed) % 4000000;
        nanosleep(&ts, NULL);
    }
    return rc == SQLITE_OK ? 0 : kiln__sdb_fail(s, err, rc, "opening");
}

int kiln__sdb_open(kiln__store_t *s, kiln_error_t *err)
{
    char path[4200];
    int rc;

    snprintf(path, sizeof(path), "%s/metadata.db", s->root);
    rc = sqlite3_open_v2(
        path, &s->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        return kiln__sdb_fail(s, err, rc, "open");
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_handler(s->db, busy_handler, s);
    /* WAL: readers never block the writer and one writer at a time.
     * NORMAL: see store.h. */
    rc = exec_retry(s,
                    "PRAGMA journal_mode = WAL;"
                    "PRAGMA synchronous = NORMAL;"
                    "PRAGMA foreign_keys = ON;",
                    err);
    if (rc == 0) {
        rc = check_identity(s, err);
    }
    if (rc == 0) {
        rc = migrate(s, err);
    }
    return rc;
}

void kiln__sdb_close(kiln__store_t *s)
{
    for (size_t i = 0; i < s->n_stmts; i++) {
        sqlite3_finalize(s->stmts[i].st);
    }
    free(s->stmts);
    s->stmts = NULL;
    s->n_stmts = s->cap_stmts = 0;
    sqlite3_close(s->db);
    s->db = NULL;
}

sqlite3_stmt *kiln__sdb_stmt(kiln__store_t *s, const char *sql,
                             kiln_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc;

    for (size_t i = 0; i < s->n_stmts; i++) {
        if (s->stmts[i].sql == sql) {
            st = s->stmts[i].st;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    }
    rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                            NULL);
    if (rc != SQLITE_OK) {
        s->stmt_rc = kiln__sdb_fail(s, err, rc, "preparing a statement");
        return NULL;
    }
    if (s->n_stmts == s->cap_stmts) {
        size_t cap = s->cap_stmts ? s->cap_stmts * 2 : 32;
        struct store_stmt *v = realloc(s->stmts, cap * sizeof(*v));

        if (v == NULL) {
            sqlite3_finalize(st);
            s->stmt_rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            return NULL;
        }
        s->stmts = v;
        s->cap_stmts = cap;
    }
    s->stmts[s->n_stmts].sql = sql;
    s->stmts[s->n_stmts].st = st;
    s->n_stmts++;
    return st;
}

int kiln__sdb_row(kiln__store_t *s, sqlite3_stmt *st, const char *what,
                  kiln_error_t *err)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    rc = kiln__sdb_fail(s, err, rc, what);
    sqlite3_reset(st);
    return rc;
}

int kiln__sdb_done(kiln__store_t *s, sqlite3_stmt *st, const char *what,
                   kiln_error_t *err)
{
    int rc = kiln__sdb_row(s, st, what, err);

    if (rc == 1) {
        rc = 0; /* a row where none was expected: ignore the rest */
    }
    sqlite3_reset(st);
    return rc;
}

int kiln__sdb_exec(kiln__store_t *s, const char *sql, kiln_error_t *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        char what[64];

        snprintf(what, sizeof(what), "%.40s%s", sql,
                 strlen(sql) > 40 ? "..." : "");
        return kiln__sdb_fail(s, err, rc, what);
    }
    return 0;
}

static void end_delete(kiln__store_t *s)
{
    if (s->full_sync && sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        s->full_sync = false;
    }
}

int kiln__sdb_begin(kiln__store_t *s, bool write, kiln_error_t *err)
{
    return kiln__sdb_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
}

/* FULL syncs the WAL at the commit: the rows are gone for good before any
 * directory is removed, even across a power loss (with NORMAL the commit
 * could be lost while the removal survives, leaving rows that name
 * missing layers). Only deletions pay for it. */
int kiln__sdb_begin_delete(kiln__store_t *s, kiln_error_t *err)
{
    int rc = kiln__sdb_exec(s, "PRAGMA synchronous = FULL", err);

    s->full_sync = rc == 0;
    if (rc == 0) {
        rc = kiln__sdb_begin(s, true, err);
    }
    if (rc < 0) {
        end_delete(s);
    }
    return rc;
}

/* Statements left on a row would keep the transaction's read snapshot. */
static void reset_all(kiln__store_t *s)
{
    for (size_t i = 0; i < s->n_stmts; i++) {
        sqlite3_reset(s->stmts[i].st);
    }
}

int kiln__sdb_commit(kiln__store_t *s, kiln_error_t *err)
{
    int rc;

    reset_all(s);
    rc = kiln__sdb_exec(s, "COMMIT", err);
    if (rc < 0) {
        kiln__sdb_rollback(s);
    }
    end_delete(s);
    return rc;
}

void kiln__sdb_rollback(kiln__store_t *s)
{
    reset_all(s);
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    end_delete(s);
}

int kiln__sdb_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL) {
        return sqlite3_bind_null(st, i);
    }
    return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}
