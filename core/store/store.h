/*
 * The store: one root directory shared by any number of kiln processes.
 * Private to core/. The on-disk format is described in docs/store-format.md.
 *
 * Layout of a root:
 *
 *   metadata.db        SQLite, WAL mode: layers, snapshots, cache records,
 *                      leases, blobs, plugins' key-value pairs (schema
 *                      version in PRAGMA user_version)
 *   layers/<id>/       immutable layer directories (core/snap/snap.h);
 *                      <id> is 32 random hex digits
 *   logs/<hex>.log     the complete output of the op that made the record
 *                      with key "sha256:<hex>" (never clipped)
 *   blobs/sha256/<hex> content-addressed files: <hex> is the SHA-256 of the
 *                      file's bytes (the blob "sha256:<hex>")
 *   tmp/<pid>-<rand>/  one area per open store, locked with flock() on the
 *                      area's directory for as long as the store is open
 *
 * Crash safety. Every write is made in the store's own tmp area, synced
 * (syncfs() for a layer tree, fsync() for a file), then moved into place
 * and recorded. A directory, log or blob enters layers/, logs/ or blobs/
 * only while its writer holds the database's write lock (BEGIN IMMEDIATE),
 * and the row that names it is committed before that lock is released; a
 * crash in between rolls the row back and leaves an entry without a row.
 * So anyone holding the write lock knows that an entry of layers/, logs/ or
 * blobs/sha256/ without a row is garbage, and removes it (on open, and in
 * prune): no grace period, and a concurrent writer is never hurt. Deletion
 * goes the other way: rows first (committed), directories after; a log or
 * a blob is moved out inside the deleting transaction, because its name
 * (the record's key, the blob's digest) can be reused at once. A row
 * therefore never names a missing or partial layer; a crash inside a
 * deleting transaction can leave a record without its log or a blob row
 * without its file, which read as absent (and the next open drops such a
 * blob row).
 *
 * synchronous=NORMAL, and FULL for transactions after which files are
 * removed. In WAL mode NORMAL loses nothing committed on a process crash
 * (SIGKILL), and after a power loss the database is still consistent, only
 * the last transactions may be lost. New data and its directory entry are
 * synced before their row is committed, so a row that survives always
 * names complete data, and losing the newest rows only loses cache entries
 * (their files become garbage, collected on the next open). Deletions go
 * the other way (rows, then files), so their commit must be durable before
 * a file goes: those transactions use FULL, which syncs the WAL. FULL for
 * every commit would add a sync per op for nothing the cache needs.
 *
 * Tmp areas and liveness. Opening a store creates tmp/<pid>-<rand>/ and
 * holds an flock() on it (the descriptor stays open, O_CLOEXEC) until
 * kiln__store_close(). An area whose lock can be taken belongs to a process
 * that is gone (crash, SIGKILL): it is swept when any store opens, and the
 * leases it held are dropped. An area held by a live process is never
 * touched.
 *
 * Leases. A running build pins what it uses: creating a snapshot or
 * committing a layer leases it to the store that did it, and looking a
 * record up with KILN__STORE_LEASE leases its snapshot in the same
 * transaction (so a concurrent prune either ran before, and the lookup
 * misses, or sees the lease). Leases are counted per owner and dropped by
 * kiln__store_release(), kiln__store_close(), or the owner's death. Nothing
 * leased by a live owner is ever removed.
 *
 * Garbage. A snapshot that no record references and nobody leases, and a
 * layer that no snapshot contains and nobody leases, are garbage: removed
 * on open, on close, by prune (kiln__store_gc()) and when the release of
 * the last lease leaves it unheld.
 *
 * An op, typically: kiln__store_get_records(keys, TOUCH | LEASE) for the
 * lookups; on a miss, kiln__store_mkdtemp() -> a snap writer over the
 * input's layers fills the directory -> kiln__store_commit_snapshot(base,
 * dir) -> kiln__store_put_record() (on a lost race: release the own
 * snapshot, use the winner's) -> kiln__store_write_log(); when the solve
 * ends, release the snapshots it leased (or close the store).
 *
 * Errors: 0 or a negative KILN_E* code, with a message in `err` (may be
 * NULL) naming the root and what failed. A corrupted metadata.db gives a
 * message saying so and how to recover (move the root aside). The busy
 * timeout is 30 s per lock wait, so "database is locked" only appears when
 * another process really holds the lock that long.
 *
 * Threads: every function may be called from any thread; calls on one store
 * are serialised by a mutex. Callbacks run with that mutex held and must
 * not call back into the store. Across fork(): a child must open its own
 * store, never use its parent's; a child forked without exec keeps the
 * parent's area locked while it lives (exec closes the descriptor).
 */
#ifndef KILN_STORE_STORE_H
#define KILN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Schema version of metadata.db this code writes (PRAGMA user_version). */
#define KILN__STORE_SCHEMA_VERSION 2

/* Layer and snapshot ids: lowercase hex (layers 32 digits, snapshots 64).
 * Buffers for them hold KILN__STORE_ID_MAX bytes. */
#define KILN__STORE_ID_MAX 65

/* kiln__store_commit_layer(): compute the layer's size by walking it. */
#define KILN__STORE_SIZE_UNKNOWN UINT64_MAX

typedef struct kiln__store kiln__store_t;

/*
 * The default root: $KILN_ROOT if set and not empty, else /var/lib/kiln
 * when running as root (euid 0), else $XDG_DATA_HOME/kiln, else
 * $HOME/.local/share/kiln. *out is malloc'ed (caller frees). Errors:
 * KILN_ENOENT (no HOME and no XDG_DATA_HOME), KILN_ENOMEM.
 */
int kiln__store_default_root(char **out, kiln_error_t *err);

/*
 * Opens (creating if needed) the store at `root` (NULL: the default root):
 * creates the layout, opens metadata.db and migrates its schema, creates and
 * locks this store's tmp area, sweeps the areas of dead processes, drops
 * their leases and collects garbage. *out is closed with
 * kiln__store_close(). Errors: KILN_EIO (cannot create or open, corrupted
 * database, schema newer than this kiln: the message says which), KILN_ENOMEM.
 */
int kiln__store_open(const char *root, kiln_error_t *err, kiln__store_t **out);

/* Releases this store's leases, collects the garbage they protected,
 * removes its tmp area and unlocks it. NULL is a no-op. */
void kiln__store_close(kiln__store_t *s);

/* The absolute root path; owned by the store. */
const char *kiln__store_root(const kiln__store_t *s);

/* The name of this store's tmp area ("<pid>-<rand>"), which is also the
 * owner of its leases; and the area's absolute path. Owned by the store. */
const char *kiln__store_owner(const kiln__store_t *s);
const char *kiln__store_tmp_dir(const kiln__store_t *s);

/*
 * Scratch space in the store's tmp area (same file system as layers/, so
 * results are renamed, never copied). kiln__store_mkdtemp() creates an empty
 * directory (mode 0700) and kiln__store_mkstemp() an empty file open for
 * writing (*fd, O_CLOEXEC, caller closes); *path is malloc'ed (caller
 * frees). Anything left there is removed by kiln__store_close() or, after a
 * crash, by the next open. kiln__store_discard() removes a path of the area
 * early (a directory recursively); KILN_EINVAL for paths outside it.
 */
int kiln__store_mkdtemp(kiln__store_t *s, char **path, kiln_error_t *err);
int kiln__store_mkstemp(kiln__store_t *s, int *fd, char **path,
                        kiln_error_t *err);
int kiln__store_discard(kiln__store_t *s, const char *path, kiln_error_t *err);

/*
 * Commits the directory `dir` (made by kiln__store_mkdtemp(), filled, e.g.
 * by a kiln_snap_writer_t, and no longer written) as a new immutable layer:
 * syncs it, renames it to layers/<id> and records it with `size` bytes
 * (KILN__STORE_SIZE_UNKNOWN: measured here, st_blocks of each inode once).
 * The layer is leased to this store (release it, or let a snapshot that
 * contains it hold it). `id` receives the new id. `dir` is gone on success
 * and left in place on failure. Errors: KILN_EINVAL (not a directory of the
 * store's tmp area), KILN_EIO.
 */
int kiln__store_commit_layer(kiln__store_t *s, const char *dir, uint64_t size,
                             char id[KILN__STORE_ID_MAX], kiln_error_t *err);

/* Writes root/layers/<id> into buf. KILN_EINVAL for a malformed id,
 * -ENAMETOOLONG if it does not fit. Does not check that the layer exists. */
int kiln__store_layer_path(const kiln__store_t *s, const char *id, char *buf,
                           size_t size, kiln_error_t *err);

/*
 * Creates the snapshot made of `layer_ids[0..n)` (bottom first; n may be 0:
 * scratch) and leases it to this store. Snapshot ids are the SHA-256 of the
 * layer list, so the same stack is one snapshot (an existing one is leased
 * again). Errors: KILN_ENOENT (a layer is not in the store), KILN_EINVAL.
 */
int kiln__store_create_snapshot(kiln__store_t *s, const char *const *layer_ids,
                                size_t n, char id[KILN__STORE_ID_MAX],
                                kiln_error_t *err);

/*
 * The usual step of an op, in one transaction: commits `layer_dir` (NULL:
 * no new layer) as in kiln__store_commit_layer() and creates the snapshot
 * of `base`'s layers (NULL: scratch) plus that layer, leased to this store.
 * The new layer itself is not leased: the snapshot holds it.
 */
int kiln__store_commit_snapshot(kiln__store_t *s, const char *base,
                                const char *layer_dir, uint64_t size,
                                char id[KILN__STORE_ID_MAX], kiln_error_t *err);

/* A snapshot's layers, bottom first. Free with kiln__store_layers_free(). */
typedef struct kiln__store_layers {
    size_t n;
    char **ids;    /* layer ids */
    char **paths;  /* absolute layer directories, for kiln__snap_view_open() */
    uint64_t size; /* sum of the layers' sizes */
} kiln__store_layers_t;

/* Fills *out with the layers of snapshot `id`; KILN_ENOENT if there is no
 * such snapshot. The caller must hold a lease on it for the paths to stay
 * valid. kiln__store_layers_free() releases *out (zeroed; twice is fine). */
int kiln__store_snapshot_layers(kiln__store_t *s, const char *id,
                                kiln__store_layers_t *out, kiln_error_t *err);
void kiln__store_layers_free(kiln__store_layers_t *l);

typedef enum kiln__store_kind {
    KILN__STORE_LAYER = 0,
    KILN__STORE_SNAPSHOT = 1,
} kiln__store_kind_t;

/* Leases (pins) a layer or snapshot for this store; counted, so each
 * acquire needs one release. KILN_ENOENT if it does not exist;
 * kiln__store_release() of something not leased is KILN_EINVAL. When the
 * last hold goes (no lease, no record, no snapshot containing it), the
 * release removes it at once, with the layers only it held.
 * kiln__store_release_all() drops every lease of this store (without
 * collecting: close or prune do). */
int kiln__store_lease(kiln__store_t *s, kiln__store_kind_t kind, const char *id,
                      kiln_error_t *err);
int kiln__store_release(kiln__store_t *s, kiln__store_kind_t kind,
                        const char *id, kiln_error_t *err);
int kiln__store_release_all(kiln__store_t *s, kiln_error_t *err);

/* One input edge of a record, enough to export BuildKit cache records:
 * input `index` of the op was satisfied by record `key`, read through
 * `selector` ("" for none). */
typedef struct kiln__store_input {
    uint32_t index;
    const char *key;
    const char *selector;
} kiln__store_input_t;

/*
 * A cache record: cache key -> snapshot of one output of one op. Strings of
 * a record filled by the store live in `mem_` and are released by
 * kiln__store_record_clear(); records passed in are borrowed.
 */
typedef struct kiln__store_record {
    const char *key;             /* "sha256:<hex>" cache key */
    const char *digest;          /* digest of the op that made it */
    const char *cachemap_digest; /* BuildKit cache-map digest; may be NULL */
    uint32_t output;             /* output index of the op */
    const char *snapshot_id;
    const char *description;           /* the op's display name; may be NULL */
    int64_t created_ns;                /* wall clock; 0 in a put: now */
    int64_t last_used_ns;              /* 0 in a put: now */
    int64_t log_size;                  /* bytes of the stored log, -1: none */
    const kiln__store_input_t *inputs; /* put only */
    size_t n_inputs;
    void *mem_;
} kiln__store_record_t;

#define KILN__STORE_RECORD_INIT                                                \
    {                                                                          \
        NULL, NULL, NULL, 0, NULL, NULL, 0, 0, -1, NULL, 0, NULL               \
    }

void kiln__store_record_clear(kiln__store_record_t *r);

/*
 * Records rec->key -> rec->snapshot_id (which must exist; the caller leases
 * it, usually from kiln__store_commit_snapshot()) with its inputs, in one
 * transaction. Two processes may race on one key: exactly one insert wins.
 * *inserted tells whether this call's record is the one stored; `snapshot`
 * (may be NULL) receives the stored record's snapshot: this call's, or the
 * winner's, which is then leased to this store and touched, so the loser
 * uses it and releases its own snapshot. Errors: KILN_EINVAL (malformed
 * key or ids), KILN_ENOENT (no such snapshot).
 */
int kiln__store_put_record(kiln__store_t *s, const kiln__store_record_t *rec,
                           bool *inserted, char snapshot[KILN__STORE_ID_MAX],
                           kiln_error_t *err);

/* Flags of kiln__store_get_record(s). */
#define KILN__STORE_TOUCH 1u /* set last_used to now (an LRU hit) */
#define KILN__STORE_LEASE 2u /* lease the record's snapshot to this store */

/*
 * Looks the record of `key` up into *out (clear it with
 * kiln__store_record_clear(); inputs are not filled). KILN_ENOENT on a miss.
 * kiln__store_get_records() looks up n keys in one transaction (cheaper):
 * a miss leaves out[i].key NULL, and only other failures are errors.
 */
int kiln__store_get_record(kiln__store_t *s, const char *key, unsigned flags,
                           kiln__store_record_t *out, kiln_error_t *err);
int kiln__store_get_records(kiln__store_t *s, const char *const *keys, size_t n,
                            unsigned flags, kiln__store_record_t *out,
                            kiln_error_t *err);

/* The inputs of record `key`, by index: *out is one malloc'ed block
 * (strings included; free()), *n its length. KILN_ENOENT: no record. */
int kiln__store_record_inputs(kiln__store_t *s, const char *key,
                              kiln__store_input_t **out, size_t *n,
                              kiln_error_t *err);

/* Calls cb for every record, most recently used first; strings are
 * borrowed for the call. A non-zero return of cb stops and is returned. */
typedef int (*kiln__store_record_cb)(const kiln__store_record_t *r, void *ud);
int kiln__store_each_record(kiln__store_t *s, kiln__store_record_cb cb,
                            void *ud, kiln_error_t *err);

/*
 * Logs. kiln__store_write_log() stores data[0..len) as the complete log of
 * record `key` (replacing one stored before); kiln__store_write_log_file()
 * stores the file at `path`: moved when it is in the store's tmp area
 * (kiln__store_mkstemp()), else copied. Both sync before committing.
 * KILN_ENOENT if there is no such record (write the log after the put).
 * kiln__store_open_log() opens the log for reading (*fd O_CLOEXEC, caller
 * closes; *size may be NULL): KILN_ENOENT with a message for no record or
 * no log.
 */
int kiln__store_write_log(kiln__store_t *s, const char *key, const void *data,
                          size_t len, kiln_error_t *err);
int kiln__store_write_log_file(kiln__store_t *s, const char *key,
                               const char *path, kiln_error_t *err);
int kiln__store_open_log(kiln__store_t *s, const char *key, int *fd,
                         uint64_t *size, kiln_error_t *err);

/*
 * Disk usage. Sizes are bytes on disk (st_blocks) as recorded when layers
 * were committed, plus log sizes. A record's `size` is its log plus every
 * layer of its snapshot that no other record's snapshot contains (what
 * removing only it would free); `shared_size` is its layers that other
 * records' snapshots contain too. Summing sizes therefore never counts a
 * layer twice: sum(size) + each shared layer once + layers of no record
 * (in flight, leased) = usage.total.
 */
typedef struct kiln__store_du_entry {
    kiln__store_record_t record; /* borrowed for the callback */
    uint64_t size;
    uint64_t shared_size;
    bool in_use; /* its snapshot is leased by a live owner */
} kiln__store_du_entry_t;

typedef struct kiln__store_usage {
    uint64_t layers; /* all layers, each once */
    uint64_t logs;   /* all logs */
    uint64_t blobs;  /* all blobs (their lengths) */
    uint64_t total;  /* layers + logs + blobs */
    uint64_t in_use; /* of total: layers leased or in leased snapshots */
    uint32_t n_records;
    uint32_t n_layers;
    uint32_t n_snapshots;
    uint32_t n_blobs;
} kiln__store_usage_t;

/* Calls cb (may be NULL) for every record, most recently used first, once
 * the rows are read and the database transaction has ended (so a slow cb
 * never blocks other processes; the store's mutex is still held). A
 * non-zero return of cb stops and is returned. *usage (may be NULL)
 * receives the totals. Leases of dead owners are dropped first, so
 * `in_use` means a live process holds it. */
typedef int (*kiln__store_du_cb)(const kiln__store_du_entry_t *e, void *ud);
int kiln__store_du(kiln__store_t *s, kiln__store_du_cb cb, void *ud,
                   kiln__store_usage_t *usage, kiln_error_t *err);

/* One layer in kiln__store_du_layers(). */
typedef struct kiln__store_layer_usage {
    const char *id;
    uint64_t size;
    int64_t created_ns;
    uint32_t snapshots; /* snapshots that contain it */
    uint32_t records;   /* records whose snapshot contains it */
    bool in_use;        /* leased, or in a leased snapshot */
} kiln__store_layer_usage_t;

typedef int (*kiln__store_layer_cb)(const kiln__store_layer_usage_t *l,
                                    void *ud);
int kiln__store_du_layers(kiln__store_t *s, kiln__store_layer_cb cb, void *ud,
                          kiln_error_t *err);

/*
 * Prune: removes records least recently used first, then the snapshots and
 * layers nothing references any more, and their logs. A record goes when
 * `all` is set, or it was last used longer than `keep_duration_ns` ago, or
 * the store (usage.total) is still above `keep_storage` bytes (0 turns
 * either off). Records whose snapshot a live owner leases are kept, and so
 * is everything leased. Blobs are not leased: with `all` every blob goes
 * and every plugin's key-value pairs are deleted; a blob last used longer
 * than `keep_duration_ns` ago goes; and once the records are done, blobs go
 * least recently used first while the total is above `keep_storage`. A blob
 * a process has open stays readable through its descriptor. *freed (may be
 * NULL) receives the bytes removed (garbage collected on the way and blobs
 * included), *removed (may be NULL) the records removed.
 */
typedef struct kiln__store_prune_opts {
    bool all;
    uint64_t keep_storage;
    int64_t keep_duration_ns;
} kiln__store_prune_opts_t;

int kiln__store_prune(kiln__store_t *s, const kiln__store_prune_opts_t *opts,
                      uint64_t *freed, uint32_t *removed, kiln_error_t *err);

/* Drops the leases of dead owners and removes garbage (see above),
 * including entries of layers/, logs/ and blobs/sha256/ that have no row,
 * and blob rows whose file is gone. *freed may be NULL. Called by open;
 * safe at any time. */
int kiln__store_gc(kiln__store_t *s, uint64_t *freed, kiln_error_t *err);

/* Verifies the store: PRAGMA integrity_check and foreign_key_check, every
 * layer row has its directory. KILN_EIO with the first problem. */
int kiln__store_check(kiln__store_t *s, kiln_error_t *err);

/*
 * Plugins' key-value store (host->kv_* of include/kiln/plugin.h), in
 * metadata.db: each plugin (named by `plugin`, a non-empty string) has its
 * own keys, which no other plugin sees. Keys are non-empty strings of at
 * most KILN__STORE_KV_KEY_MAX bytes, values any bytes (NUL included) up to
 * KILN__STORE_KV_VALUE_MAX. Every call is one transaction, so a set from
 * another thread or process is seen whole or not at all.
 *
 * kiln__store_kv_get() copies the value of `key` into buf (size bytes; buf
 * may be NULL when size is 0) and sets *len to its length: KILN_ENOENT
 * (*len = 0) if there is none, -ERANGE if it does not fit (*len is then the
 * length needed and buf is untouched). kiln__store_kv_set() inserts or
 * replaces (KILN_E2BIG for a value over the limit or a key too long);
 * kiln__store_kv_delete() of a missing key is 0. KILN_EINVAL for a NULL or
 * empty plugin or key.
 */
#define KILN__STORE_KV_KEY_MAX   4096
#define KILN__STORE_KV_VALUE_MAX (1u << 20)

int kiln__store_kv_get(kiln__store_t *s, const char *plugin, const char *key,
                       void *buf, size_t size, size_t *len, kiln_error_t *err);
int kiln__store_kv_set(kiln__store_t *s, const char *plugin, const char *key,
                       const void *value, size_t len, kiln_error_t *err);
int kiln__store_kv_delete(kiln__store_t *s, const char *plugin, const char *key,
                          kiln_error_t *err);

/*
 * The content-addressed blob store (host->blob_* of include/kiln/plugin.h):
 * files named by the SHA-256 of their bytes, shared by every plugin, kept
 * until prune, each with a row (size, created, last_used). Digests are
 * "sha256:<64 lowercase hex>"; anything else is KILN_EINVAL.
 *
 * kiln__store_blob_open() opens blob `digest` read-only (*fd, O_CLOEXEC,
 * the caller closes) and sets its last_used to now: KILN_ENOENT if it is
 * not stored. The descriptor stays readable even if a prune removes the
 * blob meanwhile.
 *
 * A new blob: kiln__store_blob_create() makes an empty file in the store's
 * tmp area, opened O_RDWR|O_CLOEXEC as *fd, and its writer *w. The caller
 * writes through *fd (from any offset; the whole file counts) but never
 * closes it, and ends the write with exactly one of:
 * - kiln__store_blob_commit(), which always consumes w (and closes the fd):
 *   it computes the file's SHA-256; if `expect` (may be NULL) is another
 *   digest, the file is discarded and the result is -EBADMSG with a message
 *   naming both digests (KILN_EINVAL for a malformed `expect`). Else the
 *   file is synced and renamed into blobs/sha256/ under the write lock and
 *   its row committed; if the blob is stored already, the stored file is
 *   kept, the new one discarded and the blob touched. `digest` receives
 *   "sha256:<hex>" on success, "" on failure.
 * - kiln__store_blob_abort(), which closes and discards it (NULL: no-op).
 *
 * kiln__store_blob_path() writes the absolute path of blob `digest` into
 * buf (for hard-linking or copying; never write to it) and, as an open
 * does, touches it: KILN_ENOENT if it is not stored, -ENAMETOOLONG if the
 * path does not fit in size bytes.
 *
 * Two processes (or threads) committing the same bytes at once both
 * succeed, and one file is kept.
 */
typedef struct kiln__store_blob_writer kiln__store_blob_writer_t;

int kiln__store_blob_open(kiln__store_t *s, const char *digest, int *fd,
                          kiln_error_t *err);
int kiln__store_blob_create(kiln__store_t *s, int *fd,
                            kiln__store_blob_writer_t **w, kiln_error_t *err);
int kiln__store_blob_commit(kiln__store_t *s, kiln__store_blob_writer_t *w,
                            const char *expect,
                            char digest[KILN_DIGEST_STRLEN + 1],
                            kiln_error_t *err);
void kiln__store_blob_abort(kiln__store_t *s, kiln__store_blob_writer_t *w);
int kiln__store_blob_path(kiln__store_t *s, const char *digest, char *buf,
                          size_t size, kiln_error_t *err);

/*
 * Cache mounts (ExecOp CacheOpt): mutable directories that persist
 * between builds, root/cachemounts/<hex>/ for the cache ID whose SHA-256
 * is <hex>, holding `id` (the ID) and instances <n>/ with their lock
 * files <n>.lock (core/exec decides who holds which). They are never part
 * of a record; du lists them and prune --all removes those no process
 * holds. kiln__store_cachemount_dir() makes the ID's directory if missing
 * and sets *dir (malloc'ed, caller frees).
 */
int kiln__store_cachemount_dir(kiln__store_t *s, const char *id, char **dir,
                               kiln_error_t *err);

typedef struct kiln__store_cachemount {
    const char *id;
    const char *hex;
    uint64_t size;       /* every instance */
    int64_t created_ns;  /* of the ID's directory */
    int64_t last_used_ns; /* the latest instance's mtime */
    bool in_use;         /* an instance's lock is held */
} kiln__store_cachemount_t;

/* Calls cb for every cache mount (borrowed entries); non-zero stops. */
int kiln__store_cachemounts(kiln__store_t *s,
                            int (*cb)(const kiln__store_cachemount_t *c,
                                      void *ud),
                            void *ud, kiln_error_t *err);

/* Removes every cache mount no process holds; *freed bytes, *removed. */
int kiln__store_cachemounts_prune(kiln__store_t *s, uint64_t *freed,
                                  uint32_t *removed, kiln_error_t *err);

#endif
