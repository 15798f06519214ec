/*
 * The store (core/store): layout and schema, migrations, tmp areas and
 * sweeping, layers/snapshots/records round trips, logs, du, prune and
 * leases, and processes sharing one root: concurrent writers, and writers
 * killed with SIGKILL in the middle of commits. Every test works in a
 * fresh temp root; child processes open stores of their own and leave
 * with _exit().
 */
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
#include <time.h>
#include <unistd.h>

#include "store_fixture.h"

/* ---- layout, schema, default root ---- */

static void test_layout_and_schema(void **state)
{
    kiln__store_t *s = open_store();
    char area[512];
    struct stat st;

    (void)state;
    assert_string_equal(kiln__store_root(s), root);
    assert_true(exists(P("metadata.db")));
    assert_int_equal(stat(P("layers"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_true(exists(P("logs")) && exists(P("tmp")));
    snprintf(area, sizeof(area), "%s/tmp/%s", root, kiln__store_owner(s));
    assert_string_equal(kiln__store_tmp_dir(s), area);
    assert_int_equal(stat(area, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(db_int("PRAGMA user_version"), KILN__STORE_SCHEMA_VERSION);
    assert_int_equal(db_int("PRAGMA application_id"), 0x4b494c4e);
    assert_int_equal(db_int("SELECT COUNT(*) FROM records"), 0);
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
    assert_false(exists(area));
    assert_int_equal(count_entries(P("tmp")), 0);
    /* Opening again keeps the data and the version. */
    s = open_store();
    assert_int_equal(db_int("PRAGMA user_version"), KILN__STORE_SCHEMA_VERSION);
    kiln__store_close(s);
}

static void test_default_root(void **state)
{
    char *old = getenv("KILN_ROOT") ? strdup(getenv("KILN_ROOT")) : NULL;
    char *r = NULL;

    (void)state;
    setenv("KILN_ROOT", "/some/where", 1);
    OK(kiln__store_default_root(&r, &E));
    assert_string_equal(r, "/some/where");
    free(r);
    unsetenv("KILN_ROOT");
    setenv("XDG_DATA_HOME", "/xdg", 1);
    OK(kiln__store_default_root(&r, &E));
    assert_string_equal(r, geteuid() == 0 ? "/var/lib/kiln" : "/xdg/kiln");
    free(r);
    if (old != NULL) {
        setenv("KILN_ROOT", old, 1);
        free(old);
    }
}

static void test_refuse_newer_and_corrupt(void **state)
{
    kiln__store_t *s = open_store();

    (void)state;
    kiln__store_close(s);
    db_exec("PRAGMA user_version = 99");
    assert_int_equal(kiln__store_open(root, &E, &s), KILN_EIO);
    assert_null(s);
    assert_non_null(strstr(E.message, "schema version 99 is newer"));
    /* Nothing was left behind by the failed open. */
    assert_int_equal(count_entries(P("tmp")), 0);
    db_exec("PRAGMA user_version = 1");
    s = open_store();
    kiln__store_close(s);
    /* Garbage where the database should be. */
    unlink(P("metadata.db-wal"));
    unlink(P("metadata.db-shm"));
    write_file(P("metadata.db"), "this is not a database, not at all. ", 36);
    assert_int_equal(kiln__store_open(root, &E, &s), KILN_EIO);
    assert_non_null(strstr(E.message, "corrupted"));
    assert_non_null(strstr(E.message, "move"));
}

/* ---- tmp areas ---- */

static void test_sweep_dead_not_live(void **state)
{
    int p1[2], p2[2], status;
    char live[64], dead[64], path[512];
    kiln__store_t *s;
    pid_t a, b;

    (void)state;
    assert_int_equal(pipe(p1), 0);
    assert_int_equal(pipe(p2), 0);
    a = spawn_owner(p1, p2[0], false, live, sizeof(live));
    b = spawn_owner(p1, p2[0], true, dead, sizeof(dead));
    assert_int_equal(waitpid(b, &status, 0), b);
    snprintf(path, sizeof(path), "%s/tmp/%s", root, dead);
    assert_true(exists(path));
    s = open_store();
    assert_false(exists(path)); /* the dead owner's area is gone */
    snprintf(path, sizeof(path), "%s/tmp/%s", root, live);
    assert_true(exists(path)); /* the live one is untouched */
    assert_int_equal(count_entries(path), 1);
    kiln__store_close(s);
    kill(a, SIGKILL);
    assert_int_equal(waitpid(a, &status, 0), a);
    s = open_store();
    assert_false(exists(path));
    assert_int_equal(count_entries(P("tmp")), 1); /* only our own */
    kiln__store_close(s);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
}

static void test_discard_hostile_tree(void **state)
{
    kiln__store_t *s = open_store();
    char *dir = NULL, *file = NULL;
    int fd, sub;

    (void)state;
    OK(kiln__store_mkdtemp(s, &dir, &E));
    /* Deeper than PATH_MAX, with directories nobody may enter. */
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 600; i++) {
        assert_int_equal(mkdirat(fd, "directory", 0755), 0);
        close(openat(fd, "file", O_CREAT | O_WRONLY, 0644));
        sub = openat(fd, "directory", O_RDONLY | O_DIRECTORY);
        assert_true(sub >= 0);
        if (i % 50 == 49) {
            fchmod(fd, 0); /* no rwx for anyone */
        }
        close(fd);
        fd = sub;
    }
    close(fd);
    OK(kiln__store_discard(s, dir, &E));
    assert_false(exists(dir));
    assert_int_equal(kiln__store_discard(s, "/etc/passwd", &E), KILN_EINVAL);
    OK(kiln__store_mkstemp(s, &fd, &file, &E));
    close(fd);
    OK(kiln__store_discard(s, file, &E));
    assert_false(exists(file));
    free(dir);
    free(file);
    kiln__store_close(s);
}

/* A layer whose root is read-only (as an image's may be) moves in and
 * out of layers/ even without root. */
static void test_readonly_layer(void **state)
{
    kiln__store_t *s = open_store();
    char *dir = scratch_layer(s, "ro"), id[KILN__STORE_ID_MAX], path[512];
    struct stat st;

    (void)state;
    assert_int_equal(chmod(dir, 0555), 0);
    OK(kiln__store_commit_layer(s, dir, KILN__STORE_SIZE_UNKNOWN, id, &E));
    OK(kiln__store_layer_path(s, id, path, sizeof(path), &E));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    OK(kiln__store_release(s, KILN__STORE_LAYER, id, &E));
    assert_false(exists(path));
    free(dir);
    kiln__store_close(s);
}

/* ---- round trips ---- */

/* l1; s2 = [l1, l2]; s3 = scratch. Layers and snapshots round trip. */
static void layers_and_snapshots(kiln__store_t *s, char s2[KILN__STORE_ID_MAX],
                                 char s3[KILN__STORE_ID_MAX])
{
    char l1[KILN__STORE_ID_MAX], s1[KILN__STORE_ID_MAX], path[512], *dir;
    kiln__store_layers_t layers;

    commit_layer(s, "one", KILN__STORE_SIZE_UNKNOWN, l1);
    OK(kiln__store_layer_path(s, l1, path, sizeof(path), &E));
    strcat(path, "/f");
    assert_true(exists(path));
    OK(kiln__store_create_snapshot(s, (const char *[]){l1}, 1, s1, &E));
    dir = scratch_layer(s, "two");
    OK(kiln__store_commit_snapshot(s, s1, dir, 123, s2, &E));
    assert_false(exists(dir)); /* moved into layers/ */
    free(dir);
    OK(kiln__store_snapshot_layers(s, s2, &layers, &E));
    assert_int_equal(layers.n, 2);
    assert_string_equal(layers.ids[0], l1);
    snprintf(path, sizeof(path), "%s/f", layers.paths[1]);
    assert_true(exists(path));
    assert_true(layers.size > 123);
    /* The same stack is the same snapshot. */
    OK(kiln__store_create_snapshot(s, (const char *const *)layers.ids, layers.n,
                                   s3, &E));
    assert_string_equal(s2, s3);
    kiln__store_layers_free(&layers);
    OK(kiln__store_commit_snapshot(s, NULL, NULL, 0, s3, &E)); /* scratch */
    OK(kiln__store_snapshot_layers(s, s3, &layers, &E));
    assert_int_equal(layers.n, 0);
    kiln__store_layers_free(&layers);
    assert_int_equal(
        kiln__store_create_snapshot(s,
                                    (const char *[]){"0123456789abcdef0123"
                                                     "456789abcdef"},
                                    1, s1, &E),
        KILN_ENOENT);
    assert_string_equal(s1, ""); /* no id on failure */
    assert_int_equal(kiln__store_commit_layer(s, "/tmp", 0, l1, &E),
                     KILN_EINVAL);
}

static void check_record(kiln__store_t *s, const char *key, const char *snap)
{
    kiln__store_record_t got;
    kiln__store_input_t *ins;
    size_t n;

    OK(kiln__store_get_record(s, key, KILN__STORE_TOUCH | KILN__STORE_LEASE,
                              &got, &E));
    assert_string_equal(got.digest, "sha256:digest");
    assert_string_equal(got.cachemap_digest, "sha256:cachemap");
    assert_string_equal(got.description, "mkfile /f");
    assert_string_equal(got.snapshot_id, snap);
    assert_int_equal(got.output, 2);
    assert_int_equal(got.log_size, -1);
    assert_true(got.last_used_ns >= got.created_ns);
    kiln__store_record_clear(&got);
    OK(kiln__store_record_inputs(s, key, &ins, &n, &E));
    assert_int_equal(n, 2);
    assert_string_equal(ins[0].key, key_of("in", 0));
    assert_string_equal(ins[0].selector, "/src");
    assert_int_equal(ins[1].index, 1);
    free(ins);
}

static void test_layer_snapshot_record(void **state)
{
    kiln__store_t *s = open_store();
    char s2[KILN__STORE_ID_MAX], s3[KILN__STORE_ID_MAX];
    char snap[KILN__STORE_ID_MAX];
    const kiln__store_input_t inputs[] = {{0, key_of("in", 0), "/src"},
                                          {1, key_of("in", 1), ""}};
    kiln__store_record_t r = KILN__STORE_RECORD_INIT, got;
    bool inserted;

    (void)state;
    layers_and_snapshots(s, s2, s3);
    r.key = key_of("rec", 1);
    r.digest = "sha256:digest";
    r.cachemap_digest = "sha256:cachemap";
    r.output = 2;
    r.snapshot_id = s2;
    r.description = "mkfile /f";
    r.inputs = inputs;
    r.n_inputs = 2;
    OK(kiln__store_put_record(s, &r, &inserted, snap, &E));
    assert_true(inserted);
    assert_string_equal(snap, s2);
    check_record(s, r.key, s2);
    /* A second put of the key loses to the first and gets its snapshot. */
    r.snapshot_id = s3;
    OK(kiln__store_put_record(s, &r, &inserted, snap, &E));
    assert_false(inserted);
    assert_string_equal(snap, s2);
    assert_int_equal(kiln__store_get_record(s, key_of("rec", 2), 0, &got, &E),
                     KILN_ENOENT);
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
    /* Everything a record holds survived the close; the rest is gone. */
    s = open_store();
    OK(kiln__store_get_record(s, r.key, 0, &got, &E));
    kiln__store_record_clear(&got);
    assert_int_equal(db_int("SELECT COUNT(*) FROM snapshots"), 1);
    assert_int_equal(db_int("SELECT COUNT(*) FROM layers"), 2);
    assert_int_equal(count_entries(P("layers")), 2);
    kiln__store_close(s);
}

static void test_batch_lookup(void **state)
{
    kiln__store_t *s = open_store();
    char l[KILN__STORE_ID_MAX], sn[KILN__STORE_ID_MAX];
    kiln__store_record_t out[3];
    const char *keys[3];

    (void)state;
    commit_layer(s, "x", 10, l);
    OK(kiln__store_create_snapshot(s, (const char *[]){l}, 1, sn, &E));
    put(s, key_of("b", 0), sn, 0, NULL);
    put(s, key_of("b", 2), sn, 0, NULL);
    keys[0] = key_of("b", 0);
    keys[1] = key_of("b", 1);
    keys[2] = key_of("b", 2);
    OK(kiln__store_get_records(s, keys, 3, KILN__STORE_TOUCH, out, &E));
    assert_non_null(out[0].key);
    assert_null(out[1].key);
    assert_non_null(out[2].key);
    for (int i = 0; i < 3; i++) {
        kiln__store_record_clear(&out[i]);
    }
    kiln__store_close(s);
}

/* ---- logs ---- */

static void test_logs(void **state)
{
    kiln__store_t *s = open_store();
    size_t big = 3u << 20, got = 0;
    uint8_t *data = malloc(big), *back = malloc(big);
    char l[KILN__STORE_ID_MAX], sn[KILN__STORE_ID_MAX], *path;
    const char *key = key_of("log", 0);
    kiln__store_record_t r;
    uint64_t size;
    ssize_t n;
    int fd;

    (void)state;
    for (size_t i = 0; i < big; i++) {
        data[i] = (uint8_t)(i * 7 + i / 4096);
    }
    assert_int_equal(kiln__store_write_log(s, key, "x", 1, &E), KILN_ENOENT);
    commit_layer(s, "x", 10, l);
    OK(kiln__store_create_snapshot(s, (const char *[]){l}, 1, sn, &E));
    put(s, key, sn, 0, NULL);
    assert_int_equal(kiln__store_open_log(s, key, &fd, NULL, &E), KILN_ENOENT);
    assert_non_null(strstr(E.message, "no log"));
    OK(kiln__store_write_log(s, key, data, big, &E));
    OK(kiln__store_open_log(s, key, &fd, &size, &E));
    assert_int_equal(size, big);
    while ((n = read(fd, back + got, big - got)) > 0) {
        got += (size_t)n;
    }
    close(fd);
    assert_int_equal(got, big); /* never clipped */
    assert_memory_equal(back, data, big);
    OK(kiln__store_get_record(s, key, 0, &r, &E));
    assert_int_equal(r.log_size, (int64_t)big);
    kiln__store_record_clear(&r);
    /* From a file outside the store (copied) and from the area (moved). */
    write_file(P("outside.log"), data, big / 2);
    OK(kiln__store_write_log_file(s, key, P("outside.log"), &E));
    assert_true(exists(P("outside.log")));
    OK(kiln__store_open_log(s, key, &fd, &size, &E));
    close(fd);
    assert_int_equal(size, big / 2);
    OK(kiln__store_mkstemp(s, &fd, &path, &E));
    assert_int_equal(write(fd, "hello\n", 6), 6);
    close(fd);
    OK(kiln__store_write_log_file(s, key, path, &E));
    assert_false(exists(path));
    OK(kiln__store_open_log(s, key, &fd, &size, &E));
    assert_int_equal(read(fd, back, 100), 6);
    close(fd);
    free(path);
    free(data);
    free(back);
    kiln__store_close(s);
}

/* ---- du, prune, leases ---- */

typedef struct du_seen {
    int n;
    uint64_t size[2], shared[2];
    bool in_use[2];
} du_seen_t;

static int du_record(const kiln__store_du_entry_t *e, void *ud)
{
    du_seen_t *seen = ud;

    if (seen->n < 2) {
        seen->size[seen->n] = e->size;
        seen->shared[seen->n] = e->shared_size;
        seen->in_use[seen->n] = e->in_use;
    }
    seen->n++;
    return 0;
}

static void test_du_shared_once(void **state)
{
    kiln__store_t *s = open_store();
    char a[KILN__STORE_ID_MAX], b[KILN__STORE_ID_MAX], c[KILN__STORE_ID_MAX];
    char s1[KILN__STORE_ID_MAX], s2[KILN__STORE_ID_MAX];
    kiln__store_usage_t u;
    du_seen_t seen = {0};

    (void)state;
    commit_layer(s, "a", 1000, a);
    commit_layer(s, "b", 2000, b);
    commit_layer(s, "c", 4000, c);
    OK(kiln__store_create_snapshot(s, (const char *[]){a, b}, 2, s1, &E));
    OK(kiln__store_create_snapshot(s, (const char *[]){a, c}, 2, s2, &E));
    put(s, key_of("du", 1), s1, 100, NULL);
    put(s, key_of("du", 2), s2, 200, NULL);
    OK(kiln__store_write_log(s, key_of("du", 1), "0123456789", 10, &E));
    OK(kiln__store_release_all(s, &E));
    OK(kiln__store_lease(s, KILN__STORE_SNAPSHOT, s2, &E));
    OK(kiln__store_du(s, du_record, &seen, &u, &E));
    assert_int_equal(seen.n, 2);
    /* Most recently used first: du-2, then du-1. */
    assert_int_equal(seen.size[0], 4000);
    assert_int_equal(seen.shared[0], 1000);
    assert_true(seen.in_use[0]);
    assert_int_equal(seen.size[1], 2000 + 10);
    assert_int_equal(seen.shared[1], 1000);
    assert_false(seen.in_use[1]);
    assert_int_equal(u.layers, 7000);
    assert_int_equal(u.logs, 10);
    assert_int_equal(u.total, 7010);
    assert_int_equal(u.in_use, 5000);
    assert_int_equal(u.n_records, 2);
    assert_int_equal(u.n_layers, 3);
    assert_int_equal(u.n_snapshots, 2);
    kiln__store_close(s);
}

static int count_layer(const kiln__store_layer_usage_t *l, void *ud)
{
    (void)l;
    (*(int *)ud)++;
    return 0;
}

/* Four records with their own 1000-byte layer, used at t = 1..4 s. */
static void four_records(kiln__store_t *s, char snaps[4][KILN__STORE_ID_MAX])
{
    char l[KILN__STORE_ID_MAX];

    for (int i = 0; i < 4; i++) {
        commit_layer(s, "lru", 1000, l);
        OK(kiln__store_create_snapshot(s, (const char *[]){l}, 1, snaps[i],
                                       &E));
        put(s, key_of("lru", i), snaps[i], (int64_t)(i + 1) * 1000000000, NULL);
    }
    OK(kiln__store_release_all(s, &E));
}

static bool has_record(kiln__store_t *s, const char *key)
{
    kiln__store_record_t r;
    int rc = kiln__store_get_record(s, key, 0, &r, &E);

    kiln__store_record_clear(&r);
    return rc == 0;
}

static void test_prune_lru(void **state)
{
    kiln__store_t *s = open_store();
    kiln__store_prune_opts_t o = {false, 2500, 0};
    char snaps[4][KILN__STORE_ID_MAX];
    kiln__store_record_t r;
    uint64_t freed;
    uint32_t removed;
    int n = 0;

    (void)state;
    four_records(s, snaps);
    OK(kiln__store_prune(s, &o, &freed, &removed, &E));
    assert_int_equal(removed, 2);
    assert_int_equal(freed, 2000);
    assert_false(has_record(s, key_of("lru", 0)));
    assert_false(has_record(s, key_of("lru", 1)));
    assert_true(has_record(s, key_of("lru", 2)));
    assert_int_equal(count_entries(P("layers")), 2);
    /* A hit makes a record recent: lru-2 now outlives lru-3. */
    OK(kiln__store_get_record(s, key_of("lru", 2), KILN__STORE_TOUCH, &r, &E));
    kiln__store_record_clear(&r);
    o = (kiln__store_prune_opts_t){false, 1500, 0};
    OK(kiln__store_prune(s, &o, &freed, &removed, &E));
    assert_int_equal(removed, 1);
    assert_false(has_record(s, key_of("lru", 3)));
    assert_true(has_record(s, key_of("lru", 2)));
    /* By age: lru-2 was used just now. */
    o = (kiln__store_prune_opts_t){false, 0, 3600LL * 1000000000};
    OK(kiln__store_prune(s, &o, &freed, &removed, &E));
    assert_int_equal(removed, 0);
    o = (kiln__store_prune_opts_t){true, 0, 0};
    OK(kiln__store_prune(s, &o, &freed, &removed, &E));
    assert_int_equal(removed, 1);
    assert_int_equal(freed, 1000);
    assert_int_equal(count_entries(P("layers")), 0);
    OK(kiln__store_du_layers(s, count_layer, &n, &E));
    assert_int_equal(n, 0);
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
}

static void test_prune_by_age(void **state)
{
    kiln__store_t *s = open_store();
    kiln__store_prune_opts_t o = {false, 0, 3600LL * 1000000000};
    char l[KILN__STORE_ID_MAX], sn[KILN__STORE_ID_MAX];
    int64_t now = (int64_t)time(NULL) * 1000000000;
    uint32_t removed;

    (void)state;
    for (int i = 0; i < 3; i++) {
        commit_layer(s, "age", 100, l);
        OK(kiln__store_create_snapshot(s, (const char *[]){l}, 1, sn, &E));
        put(s, key_of("age", i), sn, now - (int64_t)i * 3000 * 1000000000,
            NULL);
    }
    OK(kiln__store_release_all(s, &E));
    OK(kiln__store_prune(s, &o, NULL, &removed, &E));
    assert_int_equal(removed, 1); /* only the one unused for 100 minutes */
    assert_false(has_record(s, key_of("age", 2)));
    assert_true(has_record(s, key_of("age", 1)));
    kiln__store_close(s);
}

static void test_leases_protect(void **state)
{
    kiln__store_t *s = open_store();
    kiln__store_prune_opts_t all = {true, 0, 0};
    char snaps[4][KILN__STORE_ID_MAX], l[KILN__STORE_ID_MAX], path[512];
    kiln__store_record_t r;
    kiln__store_usage_t u;
    uint32_t removed;
    int fd, status;
    pid_t child;

    (void)state;
    four_records(s, snaps);
    /* Ours: a lookup with a lease, and a layer in flight. */
    OK(kiln__store_get_record(s, key_of("lru", 0), KILN__STORE_LEASE, &r, &E));
    kiln__store_record_clear(&r);
    commit_layer(s, "in flight", 50, l);
    /* Another live process holds lru-1. */
    child = spawn_leaser(key_of("lru", 1), &fd);
    OK(kiln__store_prune(s, &all, NULL, &removed, &E));
    assert_int_equal(removed, 2);
    assert_true(has_record(s, key_of("lru", 0)));
    assert_true(has_record(s, key_of("lru", 1)));
    OK(kiln__store_layer_path(s, l, path, sizeof(path), &E));
    assert_true(exists(path));
    OK(kiln__store_gc(s, NULL, &E));
    assert_true(exists(path));
    OK(kiln__store_du(s, NULL, NULL, &u, &E));
    assert_int_equal(u.in_use, 2050);
    /* Its owner dies: the lease is dead. Ours are released. */
    kill(child, SIGKILL);
    assert_int_equal(waitpid(child, &status, 0), child);
    close(fd);
    OK(kiln__store_prune(s, &all, NULL, &removed, &E));
    assert_int_equal(removed, 1);
    assert_false(has_record(s, key_of("lru", 1)));
    OK(kiln__store_release(s, KILN__STORE_SNAPSHOT, snaps[0], &E));
    OK(kiln__store_release(s, KILN__STORE_LAYER, l, &E));
    assert_false(exists(path)); /* nothing held it: removed at once */
    assert_int_equal(kiln__store_release(s, KILN__STORE_LAYER, l, &E),
                     KILN_EINVAL);
    OK(kiln__store_prune(s, &all, NULL, &removed, &E));
    assert_int_equal(removed, 1);
    assert_int_equal(count_entries(P("layers")), 0);
    kiln__store_close(s);
}

/* ---- crashes and garbage ---- */

static void test_orphans_and_cancel(void **state)
{
    kiln__store_t *s = open_store();
    char l[KILN__STORE_ID_MAX], sn[KILN__STORE_ID_MAX], path[512];
    char *dir;

    (void)state;
    /* A build cancelled half way: a layer, a snapshot, scratch, no record. */
    commit_layer(s, "half", 10, l);
    OK(kiln__store_create_snapshot(s, (const char *[]){l}, 1, sn, &E));
    dir = scratch_layer(s, "never committed");
    free(dir);
    kiln__store_close(s);
    assert_int_equal(db_int("SELECT COUNT(*) FROM layers"), 0);
    assert_int_equal(db_int("SELECT COUNT(*) FROM snapshots"), 0);
    assert_int_equal(count_entries(P("layers")), 0);
    assert_int_equal(count_entries(P("tmp")), 0);
    /* Leftovers of a crash between rename and commit; a foreign name. */
    snprintf(path, sizeof(path), "%s/layers/%032d", root, 7);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/logs/%s.log", root,
             key_of("orphan", 0) + 7);
    write_file(path, "log", 3);
    assert_int_equal(mkdir(P("layers/not-a-layer"), 0755), 0);
    s = open_store();
    assert_false(exists(path));
    assert_int_equal(count_entries(P("layers")), 1);
    assert_true(exists(P("layers/not-a-layer")));
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
}

static void test_concurrent_processes(void **state)
{
    enum { N = 60, SHARED = 20 };
    int p[2], status, wins, total = 0;
    kiln__store_t *s;
    pid_t pids[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            writer(i, N, SHARED, p[1]);
        }
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(read(p[0], &wins, sizeof(wins)), sizeof(wins));
        total += wins;
    }
    close(p[0]);
    close(p[1]);
    /* Each shared key was won exactly once. */
    assert_int_equal(total, 2 * (N - SHARED) + SHARED);
    assert_int_equal(db_int("SELECT COUNT(*) FROM records"),
                     2 * (N - SHARED) + SHARED);
    s = open_store();
    OK(kiln__store_check(s, &E));
    /* The losers' snapshots were dropped: one layer per record. */
    assert_int_equal(count_entries(P("layers")), 2 * (N - SHARED) + SHARED);
    assert_int_equal(count_entries(P("logs")), 2 * (N - SHARED) + SHARED);
    assert_int_equal(count_entries(P("tmp")), 1);
    kiln__store_close(s);
}

static void test_sigkill_mid_write(void **state)
{
    unsigned seed = (unsigned)time(NULL);
    kiln__store_t *s;
    int status;

    (void)state;
    for (int round = 0; round < 6; round++) {
        int p[2];
        pid_t pid;
        char buf[8];

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            writer(10 + round, 0, 0, p[1]);
        }
        close(p[1]);
        /* Let it get going, then kill it at a random point. */
        assert_int_equal(read(p[0], buf, 1), 1);
        usleep((useconds_t)(rand_r(&seed) % 20000));
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        close(p[0]);
        s = open_store();
        OK(kiln__store_check(s, &E));
        /* Swept: no other area, every layer dir has a row. */
        assert_int_equal(count_entries(P("tmp")), 1);
        assert_int_equal(count_entries(P("layers")),
                         db_int("SELECT COUNT(*) FROM layers"));
        assert_int_equal(db_int("SELECT COUNT(*) FROM leases"), 0);
        assert_int_equal(db_int("SELECT COUNT(*) FROM records r WHERE NOT "
                                "EXISTS (SELECT 1 FROM snapshots s WHERE "
                                "s.id = r.snapshot_id)"),
                         0);
        kiln__store_close(s);
    }
    assert_true(db_int("SELECT COUNT(*) FROM records") > 0);
}

static void test_threads(void **state)
{
    kiln__store_t *s = open_store();
    thread_arg_t args[4];
    pthread_t t[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg_t){s, i, 0, {0, ""}};
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (args[i].rc != 0) {
            fail_msg("thread %d: %d: %s", i, args[i].rc, args[i].err.message);
        }
    }
    assert_int_equal(db_int("SELECT COUNT(*) FROM records"), 80);
    assert_int_equal(db_int("SELECT COUNT(*) FROM leases"), 0);
    assert_int_equal(count_entries(P("layers")), 80);
    OK(kiln__store_check(s, &E));
    kiln__store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout_and_schema, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_default_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_newer_and_corrupt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sweep_dead_not_live, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_discard_hostile_tree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readonly_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_snapshot_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_du_shared_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases_protect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphans_and_cancel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_processes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_mid_write, setup,
                                        teardown),
    };

    if (getenv("KILN_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("KILN_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
