/*
 * The store's services for source plugins (core/store/kv.c, blobs.c): the
 * per-plugin key-value store and the content-addressed blob store, the
 * schema 1 -> 2 migration that adds them, their garbage (orphans swept on
 * open), du and prune, and processes and threads committing the same blob
 * at once. Every test works in a fresh temp root; child processes open
 * stores of their own and leave with _exit().
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

/* The fixture is shared with test_store.c; this file uses only part of
 * its helpers. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "store_fixture.h"
#pragma GCC diagnostic pop

/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
#define ABC_DIGEST                                                             \
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* The digest of data[0..len) computed here with OpenSSL. */
static void openssl_digest(const void *data, size_t len,
                           char out[KILN_DIGEST_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    assert_true(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL));
    assert_int_equal(n, 32);
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < n; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[7 + 2 * i + 1] = hex[md[i] & 15];
    }
    out[KILN_DIGEST_STRLEN] = '\0';
}

static void write_fd(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Stores data[0..len) as a blob (checked against `expect` when not NULL);
 * returns the commit's result, the digest in `digest`. */
static int put_blob(kiln__store_t *s, const void *data, size_t len,
                    const char *expect, char digest[KILN_DIGEST_STRLEN + 1])
{
    kiln__store_blob_writer_t *w = NULL;
    int fd = -1;

    OK(kiln__store_blob_create(s, &fd, &w, &E));
    assert_true(fd >= 0);
    assert_non_null(w);
    write_fd(fd, data, len);
    return kiln__store_blob_commit(s, w, expect, digest, &E);
}

/* The whole content of blob `digest`, malloc'ed, through blob_open. */
static char *read_blob(kiln__store_t *s, const char *digest, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    int fd = -1;

    assert_non_null(buf);
    OK(kiln__store_blob_open(s, digest, &fd, &E));
    while ((r = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n == cap) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    assert_int_equal(r, 0);
    close(fd);
    *len = n;
    return buf;
}

/* root/blobs/sha256/<hex of digest>, in one of P()'s buffers. */
static const char *blob_file(const char *digest)
{
    char rel[128];

    snprintf(rel, sizeof(rel), "blobs/sha256/%s", digest + 7);
    return P(rel);
}

/* ---- the key-value store ---- */

static void test_kv(void **state)
{
    kiln__store_t *s = open_store();
    static const char bin[] = {'a', '\0', 'b', '\0', '\0', 'c'};
    size_t big = 1u << 20, len = 99;
    char *data = malloc(big + 1), *back = malloc(big + 1), small[4];

    (void)state;
    assert_non_null(data);
    assert_non_null(back);
    assert_int_equal(kiln__store_kv_get(s, "http", "etag", back, 10, &len, &E),
                     KILN_ENOENT);
    assert_int_equal(len, 0);
    OK(kiln__store_kv_set(s, "http", "etag", "\"v1\"", 4, &E));
    OK(kiln__store_kv_get(s, "http", "etag", back, 10, &len, &E));
    assert_int_equal(len, 4);
    assert_memory_equal(back, "\"v1\"", 4);
    /* Replaced, longer and then shorter. */
    OK(kiln__store_kv_set(s, "http", "etag", "\"version-2\"", 11, &E));
    OK(kiln__store_kv_get(s, "http", "etag", back, 64, &len, &E));
    assert_int_equal(len, 11);
    assert_memory_equal(back, "\"version-2\"", 11);
    /* A buffer too small: -ERANGE, the length needed, buf untouched. */
    memcpy(small, "xyzw", 4);
    assert_int_equal(
        kiln__store_kv_get(s, "http", "etag", small, sizeof(small), &len, &E),
        -ERANGE);
    assert_int_equal(len, 11);
    assert_memory_equal(small, "xyzw", 4);
    assert_int_equal(kiln__store_kv_get(s, "http", "etag", NULL, 0, &len, &E),
                     -ERANGE);
    assert_int_equal(len, 11);
    /* Bytes with NULs round trip; an empty value is a value. */
    OK(kiln__store_kv_set(s, "http", "bin", bin, sizeof(bin), &E));
    OK(kiln__store_kv_get(s, "http", "bin", back, 64, &len, &E));
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(back, bin, sizeof(bin));
    OK(kiln__store_kv_set(s, "http", "empty", NULL, 0, &E));
    OK(kiln__store_kv_get(s, "http", "empty", NULL, 0, &len, &E));
    assert_int_equal(len, 0);
    /* Two plugins never see each other's keys. */
    assert_int_equal(kiln__store_kv_get(s, "git", "etag", back, 64, &len, &E),
                     KILN_ENOENT);
    OK(kiln__store_kv_set(s, "git", "etag", "g", 1, &E));
    OK(kiln__store_kv_get(s, "http", "etag", back, 64, &len, &E));
    assert_int_equal(len, 11);
    OK(kiln__store_kv_delete(s, "git", "etag", &E));
    OK(kiln__store_kv_get(s, "http", "etag", back, 64, &len, &E));
    /* Delete; a missing key is fine. */
    OK(kiln__store_kv_delete(s, "http", "etag", &E));
    assert_int_equal(kiln__store_kv_get(s, "http", "etag", back, 64, &len, &E),
                     KILN_ENOENT);
    OK(kiln__store_kv_delete(s, "http", "etag", &E));
    OK(kiln__store_kv_delete(s, "nobody", "nothing", &E));
    /* 1 MiB is the limit, inclusive. */
    for (size_t i = 0; i <= big; i++) {
        data[i] = (char)(i * 13 + i / 1000);
    }
    OK(kiln__store_kv_set(s, "http", "big", data, big, &E));
    OK(kiln__store_kv_get(s, "http", "big", back, big + 1, &len, &E));
    assert_int_equal(len, big);
    assert_memory_equal(back, data, big);
    assert_int_equal(kiln__store_kv_set(s, "http", "big", data, big + 1, &E),
                     KILN_E2BIG);
    OK(kiln__store_kv_get(s, "http", "big", back, big + 1, &len, &E));
    assert_int_equal(len, big); /* the old value stays */
    /* Bad names. */
    assert_int_equal(kiln__store_kv_set(s, "", "k", "v", 1, &E), KILN_EINVAL);
    assert_int_equal(kiln__store_kv_set(s, "http", NULL, "v", 1, &E),
                     KILN_EINVAL);
    assert_int_equal(kiln__store_kv_delete(s, NULL, "k", &E), KILN_EINVAL);
    kiln__store_close(s);
    /* Persistent. */
    s = open_store();
    OK(kiln__store_kv_get(s, "http", "bin", back, 64, &len, &E));
    assert_memory_equal(back, bin, sizeof(bin));
    assert_int_equal(db_int("SELECT COUNT(*) FROM plugin_kv"), 3);
    kiln__store_close(s);
    free(data);
    free(back);
}

/* ---- blobs ---- */

static void test_blob_round_trip(void **state)
{
    kiln__store_t *s = open_store();
    char digest[KILN_DIGEST_STRLEN + 1], want[KILN_DIGEST_STRLEN + 1];
    char path[512], *back;
    kiln__store_blob_writer_t *w;
    size_t big = (3u << 20) + 12345, len;
    char *data = malloc(big);
    struct stat st;
    int fd;

    (void)state;
    assert_non_null(data);
    /* Written in pieces, the offset moved around: the whole file counts. */
    OK(kiln__store_blob_create(s, &fd, &w, &E));
    write_fd(fd, "xbc", 3);
    assert_int_equal(pwrite(fd, "a", 1, 0), 1);
    OK(kiln__store_blob_commit(s, w, NULL, digest, &E));
    assert_string_equal(digest, ABC_DIGEST);
    back = read_blob(s, ABC_DIGEST, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(back, "abc", 3);
    free(back);
    OK(kiln__store_blob_path(s, ABC_DIGEST, path, sizeof(path), &E));
    assert_string_equal(path, blob_file(ABC_DIGEST));
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0222, 0); /* blobs are read-only */
    assert_int_equal(db_int("SELECT size FROM blobs"), 3);
    /* A bigger one, checked against OpenSSL and an expected digest. */
    for (size_t i = 0; i < big; i++) {
        data[i] = (char)(i * 7 + i / 4096);
    }
    openssl_digest(data, big, want);
    OK(put_blob(s, data, big, want, digest));
    assert_string_equal(digest, want);
    back = read_blob(s, want, &len);
    assert_int_equal(len, big);
    assert_memory_equal(back, data, big);
    free(back);
    assert_int_equal(count_entries(P("blobs/sha256")), 2);
    /* Opening touches last_used. */
    db_exec("UPDATE blobs SET last_used = 5");
    OK(kiln__store_blob_open(s, ABC_DIGEST, &fd, &E));
    close(fd);
    assert_true(db_int("SELECT last_used FROM blobs WHERE digest = '" ABC_DIGEST
                       "'") > 5);
    /* Absent, malformed, too long. */
    want[10] = want[10] == '0' ? '1' : '0';
    assert_int_equal(kiln__store_blob_open(s, want, &fd, &E), KILN_ENOENT);
    assert_int_equal(fd, -1);
    assert_int_equal(kiln__store_blob_path(s, want, path, sizeof(path), &E),
                     KILN_ENOENT);
    assert_int_equal(kiln__store_blob_open(s, "sha256:abc", &fd, &E),
                     KILN_EINVAL);
    assert_int_equal(kiln__store_blob_open(s, "md5:00", &fd, &E), KILN_EINVAL);
    assert_int_equal(kiln__store_blob_path(s, ABC_DIGEST, path, 20, &E),
                     -ENAMETOOLONG);
    /* A file removed by hand reads as absent, and its row goes. */
    assert_int_equal(unlink(blob_file(ABC_DIGEST)), 0);
    assert_int_equal(kiln__store_blob_open(s, ABC_DIGEST, &fd, &E),
                     KILN_ENOENT);
    assert_int_equal(db_int("SELECT COUNT(*) FROM blobs"), 1);
    OK(put_blob(s, "abc", 3, ABC_DIGEST, digest));
    OK(kiln__store_blob_path(s, ABC_DIGEST, path, sizeof(path), &E));
    OK(kiln__store_check(s, &E));
    free(data);
    kiln__store_close(s);
}

static void test_blob_mismatch_and_abort(void **state)
{
    kiln__store_t *s = open_store();
    char digest[KILN_DIGEST_STRLEN + 1] = "x", msg[300];
    const char *wrong = key_of("not abc", 0);
    kiln__store_blob_writer_t *w;
    int fd;

    (void)state;
    assert_int_equal(put_blob(s, "abc", 3, wrong, digest), KILN_EBADMSG);
    assert_string_equal(digest, "");
    snprintf(msg, sizeof(msg), "checksum mismatch: expected %s, got %s", wrong,
             ABC_DIGEST);
    assert_non_null(strstr(E.message, msg));
    assert_int_equal(count_entries(P("blobs/sha256")), 0);
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 0);
    assert_int_equal(db_int("SELECT COUNT(*) FROM blobs"), 0);
    /* A malformed expectation: the write is consumed all the same. */
    assert_int_equal(put_blob(s, "abc", 3, "sha256:nope", digest), KILN_EINVAL);
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 0);
    /* Abort leaves nothing; NULL is a no-op. */
    OK(kiln__store_blob_create(s, &fd, &w, &E));
    write_fd(fd, "partial", 7);
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 1);
    kiln__store_blob_abort(s, w);
    kiln__store_blob_abort(s, NULL);
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 0);
    assert_int_equal(count_entries(P("blobs/sha256")), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */
    /* An empty blob is a blob. */
    OK(put_blob(s, "", 0, NULL, digest));
    assert_string_equal(digest, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae4"
                                "1e4649b934ca495991b7852b855");
    kiln__store_close(s);
}

static void test_blob_duplicate(void **state)
{
    kiln__store_t *s = open_store();
    char d1[KILN_DIGEST_STRLEN + 1], d2[KILN_DIGEST_STRLEN + 1], path[512];
    struct stat a, b;

    (void)state;
    OK(put_blob(s, "same bytes", 10, NULL, d1));
    OK(kiln__store_blob_path(s, d1, path, sizeof(path), &E));
    assert_int_equal(stat(path, &a), 0);
    db_exec("UPDATE blobs SET last_used = 5");
    OK(put_blob(s, "same bytes", 10, d1, d2));
    assert_string_equal(d1, d2);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino); /* the stored file was kept */
    assert_int_equal(count_entries(P("blobs/sha256")), 1);
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 0);
    assert_int_equal(db_int("SELECT COUNT(*) FROM blobs"), 1);
    assert_true(db_int("SELECT last_used FROM blobs") > 5); /* touched */
    kiln__store_close(s);
}

/* ---- migration and garbage ---- */

/* Schema version 1 as the first migration of core/store/db.c made it. */
static const char V1_SCHEMA[] =
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
    "CREATE INDEX leases_id ON leases(kind, id);"
    "PRAGMA application_id = 1263094862;" /* 0x4b494c4e, "KILN" */
    "PRAGMA user_version = 1;";

static void test_migrate_v1(void **state)
{
    const char *layer = "0123456789abcdef0123456789abcdef";
    char sql[1024], digest[KILN_DIGEST_STRLEN + 1], back[8];
    char snap[KILN__STORE_ID_MAX];
    kiln__store_record_t r;
    kiln__store_t *s;
    sqlite3 *db;
    size_t len;

    (void)state;
    snprintf(snap, sizeof(snap), "%s", key_of("snap", 0) + 7);
    /* A v1 root with one record, as the previous kiln left it. */
    assert_int_equal(sqlite3_open(P("metadata.db"), &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, V1_SCHEMA, NULL, NULL, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "INSERT INTO layers VALUES ('%s', 100, 1);"
             "INSERT INTO snapshots VALUES ('%s', 100, 1, 1);"
             "INSERT INTO snapshot_layers VALUES ('%s', 0, '%s');"
             "INSERT INTO records (key, digest, output, snapshot_id, created, "
             "last_used) VALUES ('%s', 'sha256:op', 0, '%s', 1, 1);",
             layer, snap, snap, layer, key_of("v1", 0), snap);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(mkdir(P("layers"), 0700), 0);
    snprintf(sql, sizeof(sql), "layers/%s", layer);
    assert_int_equal(mkdir(P(sql), 0755), 0);
    assert_int_equal(db_int("PRAGMA user_version"), 1);
    s = open_store();
    assert_int_equal(db_int("PRAGMA user_version"), 2);
    assert_int_equal(KILN__STORE_SCHEMA_VERSION, 2);
    /* The old data is intact, the new tables work. */
    OK(kiln__store_get_record(s, key_of("v1", 0), 0, &r, &E));
    assert_string_equal(r.snapshot_id, snap);
    kiln__store_record_clear(&r);
    assert_true(exists(P(sql)));
    OK(kiln__store_kv_set(s, "p", "k", "v", 1, &E));
    OK(kiln__store_kv_get(s, "p", "k", back, sizeof(back), &len, &E));
    OK(put_blob(s, "abc", 3, ABC_DIGEST, digest));
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
    /* A v2 database set back to 1 migrates again. */
    db_exec("PRAGMA user_version = 1");
    s = open_store();
    assert_int_equal(db_int("PRAGMA user_version"), 2);
    assert_int_equal(db_int("SELECT COUNT(*) FROM plugin_kv"), 1);
    kiln__store_close(s);
}

static void test_blob_orphans_swept(void **state)
{
    kiln__store_t *s = open_store();
    char digest[KILN_DIGEST_STRLEN + 1], path[512];
    const char *orphan = key_of("orphan", 0), *lost = key_of("lost", 0);
    int fd;

    (void)state;
    OK(put_blob(s, "kept", 4, NULL, digest));
    kiln__store_close(s);
    /* A crash between the rename and the commit; a row whose file went
     * (a crash inside a deleting transaction); a name kiln never makes. */
    write_file(blob_file(orphan), "orphan", 6);
    snprintf(path, sizeof(path), "INSERT INTO blobs VALUES ('%s', 10, 1, 1)",
             lost);
    db_exec(path);
    write_file(P("blobs/sha256/not-a-blob"), "x", 1);
    s = open_store();
    assert_false(exists(blob_file(orphan)));
    assert_true(exists(blob_file(digest)));
    assert_true(exists(P("blobs/sha256/not-a-blob")));
    assert_int_equal(db_int("SELECT COUNT(*) FROM blobs"), 1);
    assert_int_equal(kiln__store_blob_open(s, lost, &fd, &E), KILN_ENOENT);
    OK(kiln__store_blob_open(s, digest, &fd, &E));
    close(fd);
    /* kiln__store_gc() sweeps the same way at any time. */
    write_file(blob_file(orphan), "orphan", 6);
    OK(kiln__store_gc(s, NULL, &E));
    assert_false(exists(blob_file(orphan)));
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 0);
    kiln__store_close(s);
}

/* ---- du and prune ---- */

static void test_du_and_prune(void **state)
{
    kiln__store_t *s = open_store();
    kiln__store_prune_opts_t o = {false, 0, 3600LL * 1000000000};
    char d[4][KILN_DIGEST_STRLEN + 1], l[KILN__STORE_ID_MAX], buf[8];
    char sn[KILN__STORE_ID_MAX], sql[200];
    kiln__store_usage_t u;
    uint64_t freed;
    uint32_t removed;
    size_t len;
    int fd;

    (void)state;
    for (int i = 0; i < 4; i++) {
        char data[1000];

        memset(data, 'a' + i, sizeof(data));
        OK(put_blob(s, data, (size_t)(i + 1) * 100, NULL, d[i]));
        /* Used at t = 1..4 s (long ago), except the last: now. */
        if (i < 3) {
            snprintf(sql, sizeof(sql),
                     "UPDATE blobs SET last_used = %d000000000 WHERE digest = "
                     "'%s'",
                     i + 1, d[i]);
            db_exec(sql);
        }
    }
    commit_layer(s, "layer", 1000, l);
    OK(kiln__store_create_snapshot(s, (const char *[]){l}, 1, sn, &E));
    put(s, key_of("rec", 0), sn, 0, NULL);
    OK(kiln__store_release_all(s, &E));
    OK(kiln__store_kv_set(s, "p", "k", "v", 1, &E));
    OK(kiln__store_du(s, NULL, NULL, &u, &E));
    assert_int_equal(u.blobs, 100 + 200 + 300 + 400);
    assert_int_equal(u.n_blobs, 4);
    assert_int_equal(u.layers, 1000);
    assert_int_equal(u.total, 2000);
    /* By size: the record goes first, then blobs least recently used. */
    o = (kiln__store_prune_opts_t){false, 750, 0};
    OK(kiln__store_prune(s, &o, &freed, &removed, &E));
    assert_int_equal(removed, 1);
    assert_int_equal(freed, 1000 + 100 + 200);
    assert_false(exists(blob_file(d[0])));
    assert_false(exists(blob_file(d[1])));
    assert_true(exists(blob_file(d[2])));
    /* By age: d[2] was used long ago, d[3] just now. An open descriptor
     * stays readable after its blob goes. */
    OK(kiln__store_blob_open(s, d[2], &fd, &E));
    db_exec("UPDATE blobs SET last_used = 3000000000 WHERE size = 300");
    o = (kiln__store_prune_opts_t){false, 0, 3600LL * 1000000000};
    OK(kiln__store_prune(s, &o, &freed, &removed, &E));
    assert_int_equal(freed, 300);
    assert_false(exists(blob_file(d[2])));
    assert_true(exists(blob_file(d[3])));
    assert_int_equal(read(fd, buf, sizeof(buf)), sizeof(buf));
    assert_int_equal(buf[0], 'c');
    close(fd);
    assert_int_equal(kiln__store_blob_open(s, d[2], &fd, &E), KILN_ENOENT);
    OK(kiln__store_kv_get(s, "p", "k", buf, sizeof(buf), &len, &E));
    /* All: every blob and every key goes. */
    o = (kiln__store_prune_opts_t){true, 0, 0};
    OK(kiln__store_prune(s, &o, &freed, &removed, &E));
    assert_int_equal(freed, 400);
    assert_int_equal(count_entries(P("blobs/sha256")), 0);
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 0);
    assert_int_equal(
        kiln__store_kv_get(s, "p", "k", buf, sizeof(buf), &len, &E),
        KILN_ENOENT);
    OK(kiln__store_du(s, NULL, NULL, &u, &E));
    assert_int_equal(u.blobs, 0);
    assert_int_equal(u.n_blobs, 0);
    assert_int_equal(u.total, 0);
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
}

/* ---- processes and threads ---- */

/* A child: opens its own store and, each round, writes the round's bytes
 * (the same in both children), waits for the go byte on `go`, commits and
 * reports its digest on `out`. */
static void blob_racer(int go, int out, int rounds)
{
    char digest[KILN_DIGEST_STRLEN + 1], data[64], c;
    kiln__store_blob_writer_t *w = NULL;
    kiln__store_t *s = NULL;
    kiln_error_t err = {0};
    int fd, rc = kiln__store_open(root, &err, &s);

    for (int i = 0; rc == 0 && i < rounds; i++) {
        snprintf(data, sizeof(data), "round %d of the race", i);
        rc = kiln__store_blob_create(s, &fd, &w, &err);
        if (rc == 0 && write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
            rc = -EIO;
        }
        if (rc == 0 && read(go, &c, 1) != 1) {
            rc = -EIO;
        }
        if (rc == 0) {
            rc = kiln__store_blob_commit(s, w, NULL, digest, &err);
        } else {
            kiln__store_blob_abort(s, w);
        }
        w = NULL;
        if (rc == 0 && write(out, digest, sizeof(digest)) != sizeof(digest)) {
            rc = -EIO;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "racer: %d: %s\n", rc, err.message);
        _exit(1);
    }
    kiln__store_close(s);
    _exit(0);
}

static void test_blob_processes_race(void **state)
{
    enum { ROUNDS = 30 };
    char got[KILN_DIGEST_STRLEN + 1], want[KILN_DIGEST_STRLEN + 1];
    char data[64];
    int go[2][2], out[2][2], status;
    kiln__store_t *s;
    pid_t pids[2];

    (void)state;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(go[i]), 0);
        assert_int_equal(pipe(out[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            blob_racer(go[i][0], out[i][1], ROUNDS);
        }
    }
    for (int i = 0; i < 2; i++) {
        close(go[i][0]);
        close(out[i][1]);
    }
    for (int r = 0; r < ROUNDS; r++) {
        snprintf(data, sizeof(data), "round %d of the race", r);
        openssl_digest(data, strlen(data), want);
        /* Both are ready to commit the same bytes: let them go at once. */
        assert_int_equal(write(go[0][1], "!", 1), 1);
        assert_int_equal(write(go[1][1], "!", 1), 1);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(read(out[i][0], got, sizeof(got)), sizeof(got));
            assert_string_equal(got, want);
        }
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        close(go[i][1]);
        close(out[i][0]);
    }
    /* One file and one row per blob, nothing left over. */
    assert_int_equal(count_entries(P("blobs/sha256")), ROUNDS);
    assert_int_equal(db_int("SELECT COUNT(*) FROM blobs"), ROUNDS);
    assert_int_equal(count_entries(P("tmp")), 0);
    s = open_store();
    assert_int_equal(count_entries(P("blobs/sha256")), ROUNDS);
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
}

typedef struct blob_thread {
    kiln__store_t *s;
    int id;
    int rc;
    kiln_error_t err;
} blob_thread_t;

/* Commits blobs the other threads commit too, and sets, reads and
 * deletes keys of its own plugin. */
static void *blob_thread_main(void *p)
{
    blob_thread_t *a = p;
    char digest[KILN_DIGEST_STRLEN + 1], data[32], plugin[16], back[32];
    kiln__store_blob_writer_t *w;
    size_t len;
    int fd;

    snprintf(plugin, sizeof(plugin), "plugin-%d", a->id);
    for (int i = 0; a->rc == 0 && i < 40; i++) {
        snprintf(data, sizeof(data), "shared %d", i % 10);
        a->rc = kiln__store_blob_create(a->s, &fd, &w, &a->err);
        if (a->rc < 0) {
            break;
        }
        if (write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
            kiln__store_blob_abort(a->s, w);
            a->rc = -EIO;
            break;
        }
        a->rc = kiln__store_blob_commit(a->s, w, NULL, digest, &a->err);
        if (a->rc == 0) {
            a->rc = kiln__store_blob_open(a->s, digest, &fd, &a->err);
        }
        if (a->rc == 0) {
            close(fd);
            a->rc = kiln__store_kv_set(a->s, plugin, "k", data, strlen(data),
                                       &a->err);
        }
        if (a->rc == 0) {
            a->rc = kiln__store_kv_get(a->s, plugin, "k", back, sizeof(back),
                                       &len, &a->err);
        }
        if (a->rc == 0 && (len != strlen(data) || memcmp(back, data, len))) {
            a->rc = -EINVAL; /* another thread's value leaked in */
        }
    }
    return NULL;
}

static void test_blob_threads(void **state)
{
    kiln__store_t *s = open_store();
    blob_thread_t args[4];
    pthread_t t[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        args[i] = (blob_thread_t){s, i, 0, {0, ""}};
        assert_int_equal(
            pthread_create(&t[i], NULL, blob_thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (args[i].rc != 0) {
            fail_msg("thread %d: %d: %s", i, args[i].rc, args[i].err.message);
        }
    }
    assert_int_equal(count_entries(P("blobs/sha256")), 10);
    assert_int_equal(db_int("SELECT COUNT(*) FROM blobs"), 10);
    assert_int_equal(db_int("SELECT COUNT(*) FROM plugin_kv"), 4);
    assert_int_equal(count_entries(kiln__store_tmp_dir(s)), 0);
    kiln__store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_mismatch_and_abort, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_blob_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_orphans_swept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_du_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_processes_race, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_blob_threads, setup, teardown),
    };

    if (getenv("KILN_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("KILN_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
