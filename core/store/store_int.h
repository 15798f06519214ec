/*
 * Internals of core/store shared by its files. Never included elsewhere.
 */
#ifndef KILN_STORE_STORE_INT_H
#define KILN_STORE_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <sys/types.h>

#include "store/store.h"

/* Hex digits of a layer id, and of a snapshot id (a SHA-256). */
#define LAYER_ID_HEX    32
#define SNAPSHOT_ID_HEX 64

/* How long one lock wait may last before SQLITE_BUSY surfaces. */
#define BUSY_TIMEOUT_NS (30 * 1000000000LL)

struct kiln__store {
    char *root;    /* absolute */
    char *owner;   /* "<pid>-<rand>": the tmp area's name */
    char *tmp;     /* root/tmp/<owner> */
    int root_fd;   /* root */
    int layers_fd; /* root/layers */
    int logs_fd;   /* root/logs */
    int blobs_fd;  /* root/blobs/sha256 */
    int tmp_fd;    /* root/tmp */
    int area_fd;   /* root/tmp/<owner>, flock()ed while open */
    sqlite3 *db;
    pthread_mutex_t mu;
    unsigned seq; /* names in the tmp area */
    int64_t busy_start_ns;
    unsigned busy_seed;
    struct store_stmt {
        const char *sql;
        sqlite3_stmt *st;
    } * stmts; /* prepared statements, found by their SQL's address */
    size_t n_stmts, cap_stmts;
    int stmt_rc;    /* the code of kiln__sdb_stmt()'s last failure */
    bool full_sync; /* synchronous = FULL for a deleting transaction */
};

/* A growable list of names (garbage to remove after a commit). */
typedef struct str_list {
    char **v;
    size_t n, cap;
} str_list_t;

int kiln__sl_push(str_list_t *l, const char *s);
void kiln__sl_free(str_list_t *l);

/* Appends the names in directory fd (without "." and "..") to `out`.
 * Returns 0, KILN_ENOMEM or -errno. */
int kiln__list_dir(int fd, str_list_t *out);

/* ---- db.c: SQLite ---- */

/* Opens root/metadata.db, sets the pragmas, applies migrations. */
int kiln__sdb_open(kiln__store_t *s, kiln_error_t *err);
void kiln__sdb_close(kiln__store_t *s);

/* Maps a SQLite result code to a KILN_E* code with a message naming the
 * database and `what`; corruption says how to recover. */
int kiln__sdb_fail(kiln__store_t *s, kiln_error_t *err, int rc,
                   const char *what);

/* A cached prepared statement for `sql` (a string literal: looked up by
 * address), reset and with bindings cleared; NULL with err set and the
 * code in s->stmt_rc. */
sqlite3_stmt *kiln__sdb_stmt(kiln__store_t *s, const char *sql,
                             kiln_error_t *err);

/* Runs a statement expecting no more rows (SQLITE_DONE). */
int kiln__sdb_done(kiln__store_t *s, sqlite3_stmt *st, const char *what,
                   kiln_error_t *err);

/* sqlite3_step() that maps errors: 1 for a row, 0 when done, <0 error. */
int kiln__sdb_row(kiln__store_t *s, sqlite3_stmt *st, const char *what,
                  kiln_error_t *err);

/* Runs SQL text without results. */
int kiln__sdb_exec(kiln__store_t *s, const char *sql, kiln_error_t *err);

/* Transactions: write ones take the write lock at once (BEGIN IMMEDIATE). */
int kiln__sdb_begin(kiln__store_t *s, bool write, kiln_error_t *err);
int kiln__sdb_commit(kiln__store_t *s, kiln_error_t *err);

/* A write transaction whose commit is synced (synchronous = FULL until it
 * ends): for transactions after which files are removed. */
int kiln__sdb_begin_delete(kiln__store_t *s, kiln_error_t *err);
void kiln__sdb_rollback(kiln__store_t *s);

/* Binds a text column (static storage: the string must outlive the step),
 * NULL as SQL NULL. */
int kiln__sdb_text(sqlite3_stmt *st, int i, const char *v);

/* ---- records.c ---- */

/* The columns of a record, in the order kiln__record_from_row() reads. */
#define RECORD_COLUMNS                                                         \
    "key, digest, cachemap_digest, output, snapshot_id, description, "         \
    "created, last_used, log_size"

/* Fills *r from a row whose first columns are RECORD_COLUMNS; with `copy`
 * its strings go into one block (r->mem_), else they borrow the row. */
int kiln__record_from_row(sqlite3_stmt *st, kiln__store_record_t *r, bool copy);

/* ---- fsutil.c: files ---- */

/* n random lowercase hex digits into out (n + 1 bytes). */
void kiln__random_hex(char *out, size_t n);

/* True if s is exactly n lowercase hex digits. */
bool kiln__is_hex(const char *s, size_t n);

/* mkdir -p: the last directory with `mode`, parents with 0755. */
int kiln__mkdirs(const char *path, mode_t mode, kiln_error_t *err);

/* Removes `name` under dirfd, recursively, whatever the permissions of the
 * directories inside (they are opened up as needed); uses a bounded number
 * of descriptors at any depth. Absent is success. */
int kiln__rm_tree_at(int dirfd, const char *name, kiln_error_t *err);

/* Renames a directory (never over an existing entry), giving it u+w for
 * the move when it lacks it. Returns 0 or -errno. */
int kiln__move_dir(int from_fd, const char *from, int to_fd, const char *to);

/* fsync() of a directory descriptor, with a message naming `what`. */
int kiln__fsync_fd(int fd, const char *what, kiln_error_t *err);

/* Disk usage of the tree at path: st_blocks * 512 of each inode once. */
int kiln__tree_size(const char *path, uint64_t *size, kiln_error_t *err);

/* Copies the file at `from` into the open descriptor `to`. */
int kiln__copy_file(const char *from, int to, kiln_error_t *err);

/* ---- open.c ---- */

/* Tries to lock the tmp area `name` of another owner: 1 if its owner is
 * alive (locked), 0 if it is dead or absent. With `sweep`, a dead owner's
 * area is removed. */
int kiln__area_alive(kiln__store_t *s, const char *name, bool sweep);

/* True if `path` is directly inside this store's tmp area; sets *name to
 * its last component. */
bool kiln__in_area(const kiln__store_t *s, const char *path, const char **name);

/* ---- layers.c ---- */

/* In a write transaction: lease kind/id to this store (count + 1). */
int kiln__lease_locked(kiln__store_t *s, kiln__store_kind_t kind,
                       const char *id, kiln_error_t *err);

/* ---- gc.c ---- */

/* At close: drops this store's leases and collects what they protected
 * (errors are ignored: the next open collects instead). */
void kiln__close_cleanup(kiln__store_t *s);

/* In a write transaction: deletes snapshot `id` if no record references it
 * and nobody leases it, then those of its layers no snapshot contains and
 * nobody leases (ids added to `victims`, sizes to *freed). */
int kiln__drop_snapshot(kiln__store_t *s, const char *id, str_list_t *victims,
                        uint64_t *freed, kiln_error_t *err);

/* In a write transaction: deletes layer `id` if no snapshot contains it
 * and nobody leases it. */
int kiln__drop_layer(kiln__store_t *s, const char *id, str_list_t *victims,
                     uint64_t *freed, kiln_error_t *err);

/* In a write transaction: drops leases of dead owners (their areas are
 * added to `dead`, to sweep after the commit). */
int kiln__drop_dead_leases(kiln__store_t *s, str_list_t *dead,
                           kiln_error_t *err);

/* In a write transaction: deletes garbage rows (unreferenced, unleased
 * snapshots and layers); layer ids to remove go to `victims`. */
int kiln__gc_rows(kiln__store_t *s, str_list_t *victims, uint64_t *freed,
                  kiln_error_t *err);

/* After the commit: removes layer directories (ignoring errors: anything
 * left is garbage found by the next gc) and sweeps dead areas. */
void kiln__remove_victims(kiln__store_t *s, const str_list_t *layers,
                          const str_list_t *dead);

/* In a write transaction: moves logs/<hex>.log of `key` into the tmp area
 * (its name is added to `moved`; *size receives its size). Absent is fine.
 * After the commit, kiln__logs_done() removes them, or after a rollback
 * puts them back. */
int kiln__log_move_out(kiln__store_t *s, const char *key, str_list_t *moved,
                       uint64_t *size, kiln_error_t *err);
void kiln__logs_done(kiln__store_t *s, const str_list_t *moved, bool committed);

/* ---- blobs.c ---- */

/* In a write transaction: moves blobs/sha256/<hex> of blob `digest` into
 * the tmp area (its hex is added to `moved`). Absent is fine. After the
 * commit, kiln__blobs_done() removes them, or after a rollback puts them
 * back. */
int kiln__blob_move_out(kiln__store_t *s, const char *digest, str_list_t *moved,
                        kiln_error_t *err);
void kiln__blobs_done(kiln__store_t *s, const str_list_t *moved,
                      bool committed);

/* In a write transaction: moves out the entries of blobs/sha256/ that
 * have no row (crash leftovers) and deletes the rows whose file is gone
 * (a crash inside a deleting transaction). */
int kiln__gc_blobs(kiln__store_t *s, str_list_t *moved, kiln_error_t *err);

/* In a write transaction, after the records of a prune: deletes the blobs
 * `o` wants gone (all; last used before `cutoff` with a keep duration;
 * least recently used while *total is above keep_storage), moving their
 * files out into `moved`; *total and *freed are updated. */
int kiln__prune_blobs(kiln__store_t *s, const kiln__store_prune_opts_t *o,
                      int64_t cutoff, uint64_t *total, str_list_t *moved,
                      uint64_t *freed, kiln_error_t *err);

/* ---- kv.c ---- */

/* In a write transaction: deletes every plugin's key-value pairs. */
int kiln__kv_clear(kiln__store_t *s, kiln_error_t *err);

#endif
