/*
 * Helpers of test_store.c: temp roots, scratch layers, records, a direct
 * look into metadata.db, and the child processes and threads that share a
 * root with the test.
 */
#ifndef KILN_TEST_STORE_FIXTURE_H
#define KILN_TEST_STORE_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "testutil.h"

static char root[256];
static kiln_error_t E;

#define OK(expr)                                                               \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != 0) {                                                        \
            fail_msg("%s = %d: %s", #expr, rc_, E.message);                    \
        }                                                                      \
    } while (0)

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    snprintf(root, sizeof(root), "%s/kiln-store-XXXXXX",
             tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
    assert_non_null(mkdtemp(root));
    memset(&E, 0, sizeof(E));
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];

    (void)state;
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' && rm -rf '%s'", root,
             root);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static const char *P(const char *rel)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];

    snprintf(b, sizeof(bufs[0]), "%s/%s", root, rel);
    return b;
}

static kiln__store_t *open_store(void)
{
    kiln__store_t *s = NULL;

    OK(kiln__store_open(root, &E, &s));
    return s;
}

/* "sha256:" + SHA-256 of "<salt>-<i>": a well-formed cache key. */
static const char *key_of(const char *salt, int i)
{
    static _Thread_local char bufs[4][KILN_DIGEST_STRLEN + 1];
    static _Thread_local int n;
    char *b = bufs[n++ % 4];
    char text[64];

    snprintf(text, sizeof(text), "%s-%d", salt, i);
    kiln__sha256_digest(text, strlen(text), b);
    return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A directory in the store's tmp area holding file "f" = content. */
static char *scratch_layer(kiln__store_t *s, const char *content)
{
    char *dir = NULL, file[512];

    OK(kiln__store_mkdtemp(s, &dir, &E));
    snprintf(file, sizeof(file), "%s/f", dir);
    write_file(file, content, strlen(content));
    return dir;
}

static void commit_layer(kiln__store_t *s, const char *content, uint64_t size,
                         char id[KILN__STORE_ID_MAX])
{
    char *dir = scratch_layer(s, content);

    OK(kiln__store_commit_layer(s, dir, size, id, &E));
    free(dir);
}

static void put(kiln__store_t *s, const char *key, const char *snap,
                int64_t last_used, bool *inserted)
{
    kiln__store_record_t r = KILN__STORE_RECORD_INIT;
    bool ins;

    r.key = key;
    r.digest = "sha256:op";
    r.snapshot_id = snap;
    r.description = "test op";
    r.last_used_ns = last_used;
    r.created_ns = last_used;
    OK(kiln__store_put_record(s, &r, &ins, NULL, &E));
    if (inserted != NULL) {
        *inserted = ins;
    }
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    }
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static int64_t db_int(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;

    assert_int_equal(sqlite3_open(P("metadata.db"), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 30000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void db_exec(const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(P("metadata.db"), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 30000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* ---- processes and threads sharing a root ---- */

/* A child that opens a store, leaves a file in its area, writes its owner
 * name to out[1] (read back from out[0]) and then waits (reading `in`) or
 * dies at once. */
static pid_t spawn_owner(const int out[2], int in, bool die, char *owner,
                         size_t len)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        kiln__store_t *s = NULL;
        kiln_error_t err = {0};
        char *dir = NULL, c;

        if (kiln__store_open(root, &err, &s) < 0 ||
            kiln__store_mkdtemp(s, &dir, &err) < 0) {
            fprintf(stderr, "owner: %s\n", err.message);
            _exit(1);
        }
        if (write(out[1], kiln__store_owner(s),
                  strlen(kiln__store_owner(s)) + 1) < 0) {
            _exit(1);
        }
        if (!die) {
            while (read(in, &c, 1) < 0 && errno == EINTR) {
            }
        }
        _exit(0); /* never closes the store: a crash */
    }
    memset(owner, 0, len);
    assert_true(read(out[0], owner, len - 1) > 0);
    return pid;
}

/* A child that opens the store, leases the record's snapshot through a
 * lookup, says so and waits to be killed. */
static pid_t spawn_leaser(const char *key, int *ready)
{
    int p[2];
    pid_t pid;
    char c;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kiln__store_t *s = NULL;
        kiln__store_record_t r;

        if (kiln__store_open(root, NULL, &s) < 0 ||
            kiln__store_get_record(s, key, KILN__STORE_LEASE, &r, NULL) < 0 ||
            write(p[1], "!", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    close(p[1]);
    assert_int_equal(read(p[0], &c, 1), 1);
    *ready = p[0];
    return pid;
}

/* One writer: commits `n` (0: forever, pruning now and then) layer +
 * snapshot + record + log steps, the first `shared` of them on keys both
 * writers use; reports the inserts it won on `out` (a byte per step when
 * n is 0). */
static int writer(int id, int n, int shared, int out)
{
    kiln__store_t *s = NULL;
    char sn[KILN__STORE_ID_MAX], mine[KILN__STORE_ID_MAX], *dir = NULL;
    kiln__store_record_t r = KILN__STORE_RECORD_INIT;
    kiln_error_t err = {0};
    int wins = 0, rc = kiln__store_open(root, &err, &s);

    for (int i = 0; rc == 0 && (n == 0 || i < n); i++) {
        char file[512], salt[16];
        bool ins;

        snprintf(salt, sizeof(salt), i < shared ? "shared" : "w%d", id);
        rc = kiln__store_mkdtemp(s, &dir, &err);
        if (rc == 0) {
            snprintf(file, sizeof(file), "%s/f", dir);
            write_file(file, salt, strlen(salt));
            rc = kiln__store_commit_snapshot(s, NULL, dir, 4096, mine, &err);
        }
        free(dir);
        r.key = key_of(salt, i);
        r.digest = "sha256:op";
        r.snapshot_id = mine;
        rc = rc == 0 ? kiln__store_put_record(s, &r, &ins, sn, &err) : rc;
        wins += rc == 0 && ins;
        if (rc == 0 && ins) {
            rc = kiln__store_write_log(s, r.key, salt, strlen(salt), &err);
        }
        if (rc == 0 && !ins) {
            rc = kiln__store_release(s, KILN__STORE_SNAPSHOT, sn, &err);
        }
        rc = rc == 0 ? kiln__store_release(s, KILN__STORE_SNAPSHOT, mine, &err)
                     : rc;
        if (rc == 0 && n == 0 && i % 7 == 6) { /* deletions get killed too */
            kiln__store_prune_opts_t o = {false, 5 * 4096, 0};

            rc = kiln__store_prune(s, &o, NULL, NULL, &err);
        }
        if (rc == 0 && n == 0 && write(out, "+", 1) != 1) {
            rc = -EIO;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "writer %d: %s\n", id, err.message);
        _exit(1);
    }
    kiln__store_close(s);
    if (write(out, &wins, sizeof(wins)) != sizeof(wins)) {
        _exit(1);
    }
    _exit(0);
}

/* Threads of one process share one store (the engine's thread pool). */
typedef struct thread_arg {
    kiln__store_t *s;
    int id;
    int rc;
    kiln_error_t err;
} thread_arg_t;

static void *thread_main(void *p)
{
    thread_arg_t *a = p;
    char sn[KILN__STORE_ID_MAX], got[KILN__STORE_ID_MAX], *dir, file[512];
    kiln__store_record_t r = KILN__STORE_RECORD_INIT, back;
    bool ins;

    for (int i = 0; a->rc == 0 && i < 40; i++) {
        a->rc = kiln__store_mkdtemp(a->s, &dir, &a->err);
        if (a->rc < 0) {
            break;
        }
        snprintf(file, sizeof(file), "%s/f", dir);
        write_file(file, "t", 1);
        a->rc = kiln__store_commit_snapshot(a->s, NULL, dir, 10, sn, &a->err);
        free(dir);
        r.key = key_of(a->id % 2 ? "odd" : "even", i); /* pairs race */
        r.digest = "sha256:op";
        r.snapshot_id = sn;
        if (a->rc == 0) {
            a->rc = kiln__store_put_record(a->s, &r, &ins, got, &a->err);
        }
        if (a->rc == 0) {
            a->rc = kiln__store_get_record(a->s, r.key, KILN__STORE_LEASE,
                                           &back, &a->err);
        }
        if (a->rc == 0 && strcmp(back.snapshot_id, got) != 0) {
            a->rc = -EINVAL;
        }
        kiln__store_record_clear(&back);
        if (a->rc == 0) {
            a->rc =
                kiln__store_release(a->s, KILN__STORE_SNAPSHOT, got, &a->err);
        }
        if (a->rc == 0 && !ins) {
            a->rc =
                kiln__store_release(a->s, KILN__STORE_SNAPSHOT, got, &a->err);
        }
        if (a->rc == 0) {
            a->rc =
                kiln__store_release(a->s, KILN__STORE_SNAPSHOT, sn, &a->err);
        }
    }
    return NULL;
}

#endif
