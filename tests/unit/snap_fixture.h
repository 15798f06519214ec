/*
 * Helpers of test_snap.c: hand-made layers in a temp dir, views, tree
 * dumps, and a directory "outside" that no operation may touch.
 */
#ifndef KILN_TEST_SNAP_FIXTURE_H
#define KILN_TEST_SNAP_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snap/snap.h"
#include "testutil.h"

static char root[256];    /* the test's temp dir */
static char outside[300]; /* must never change */

/* ---- fixture helpers ---- */

/* root/<name>; rotating static buffers. */
static const char *P(const char *name)
{
    static char bufs[8][600];
    static int i;
    char *b = bufs[i++ % 8];

    snprintf(b, sizeof(bufs[0]), "%s/%s", root, name);
    return b;
}

static void mkdirs(const char *path)
{
    char tmp[1024];

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *s = tmp + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(tmp, 0755);
            *s = '/';
        }
    }
    mkdir(tmp, 0755);
}

static const char *LP(const char *layer, const char *rel)
{
    static char bufs[8][1024];
    static int i;
    char *b = bufs[i++ % 8];

    snprintf(b, sizeof(bufs[0]), "%s/%s/%s", root, layer, rel);
    return b;
}

/* Writes a file into a hand-made layer (parents created). */
static void put(const char *layer, const char *rel, const char *data)
{
    char dir[1024];
    const char *path = LP(layer, rel);
    FILE *f;

    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static void pdir(const char *layer, const char *rel)
{
    mkdirs(LP(layer, rel));
}

static void plnk(const char *layer, const char *rel, const char *target)
{
    assert_int_equal(symlink(target, LP(layer, rel)), 0);
}

static void settime(const char *path, time_t sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};

    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static kiln_snap_view_t *vopen(size_t n, const char *const *names)
{
    const char *paths[256];
    kiln_snap_view_t *v = NULL;
    kiln_error_t err;

    for (size_t i = 0; i < n; i++) {
        char *p = malloc(600);
        snprintf(p, 600, "%s/%s", root, names[i]);
        mkdirs(p);
        paths[i] = p;
    }
    assert_int_equal(kiln__snap_view_open(paths, n, &err, &v), 0);
    for (size_t i = 0; i < n; i++) {
        free((void *)paths[i]);
    }
    return v;
}

/* Content of a file of the view (following symlinks), or NULL if absent. */
static char *vread(const kiln_snap_view_t *v, const char *path)
{
    kiln_snap_entry_t e;
    kiln_error_t err;
    char *buf;
    ssize_t n;
    int fd;

    if (kiln__snap_resolve(v, path, true, &e, &err) != 0 || e.layer < 0) {
        return NULL;
    }
    assert_int_equal(kiln__snap_open_file(v, &e, &fd, &err), 0);
    buf = calloc(1, 4096);
    n = read(fd, buf, 4095);
    assert_true(n >= 0);
    close(fd);
    return buf;
}

static void assert_content(const kiln_snap_view_t *v, const char *path,
                           const char *want)
{
    char *got = vread(v, path);

    if (want == NULL) {
        if (got != NULL) {
            fail_msg("%s: expected absent, has \"%s\"", path, got);
        }
        return;
    }
    if (got == NULL) {
        fail_msg("%s: expected \"%s\", absent", path, want);
    }
    assert_string_equal(got, want);
    free(got);
}

static int resolve_rc(const kiln_snap_view_t *v, const char *path, bool follow,
                      kiln_snap_entry_t *e)
{
    kiln_error_t err;

    return kiln__snap_resolve(v, path, follow, e, &err);
}

/* The whole tree as text: one line per entry with type, mode, owner,
 * mtime (directories too), content or target. */
typedef struct dumper {
    const kiln_snap_view_t *v;
    kiln__buf_t out;
    bool times;
} dumper_t;

static int dump_one(const char *name, const kiln_snap_entry_t *e, void *ud)
{
    dumper_t *d = ud;
    const struct stat *st = &e->st;
    char tgt[4096] = "";
    kiln_error_t err;

    (void)name;
    assert_false(strncmp(name, ".wh.", 4) == 0);
    kiln__buf_printf(&d->out, "%s %o %u:%u", e->path, (unsigned)st->st_mode,
                     (unsigned)st->st_uid, (unsigned)st->st_gid);
    if (d->times) {
        kiln__buf_printf(&d->out, " %lld.%09ld", (long long)st->st_mtim.tv_sec,
                         st->st_mtim.tv_nsec);
    }
    if (S_ISLNK(st->st_mode)) {
        assert_int_equal(kiln__snap_readlink(d->v, e, tgt, sizeof(tgt), &err),
                         0);
        kiln__buf_printf(&d->out, " -> %s", tgt);
    } else if (S_ISREG(st->st_mode)) {
        char *c = vread(d->v, e->path);
        kiln__buf_printf(&d->out, " [%s]", c);
        free(c);
    }
    kiln__buf_putc(&d->out, '\n');
    if (S_ISDIR(st->st_mode)) {
        assert_int_equal(kiln__snap_readdir(d->v, e->path, dump_one, d, &err),
                         0);
    }
    return 0;
}

static char *dump(const kiln_snap_view_t *v, bool times)
{
    dumper_t d = {v, KILN_BUF_INIT, times};
    kiln_snap_entry_t e;

    assert_int_equal(resolve_rc(v, "/", false, &e), 0);
    dump_one("", &e, &d);
    kiln__buf_putc(&d.out, '\0');
    return (char *)d.out.data;
}

/* Names in a directory of the view, space separated. */
static int names_one(const char *name, const kiln_snap_entry_t *e, void *ud)
{
    (void)e;
    kiln__buf_printf(ud, "%s ", name);
    return 0;
}

static void assert_names(const kiln_snap_view_t *v, const char *dir,
                         const char *want)
{
    kiln__buf_t b = KILN_BUF_INIT;
    kiln_error_t err;

    assert_int_equal(kiln__snap_readdir(v, dir, names_one, &b, &err), 0);
    kiln__buf_putc(&b, '\0');
    assert_string_equal((char *)b.data, want);
    kiln__buf_free(&b);
}

static kiln_snap_writer_t *wnew(const kiln_snap_view_t *base, const char *l)
{
    kiln_snap_writer_t *w = NULL;
    kiln_error_t err;

    mkdirs(P(l));
    if (kiln__snap_writer_new(base, P(l), &err, &w) != 0) {
        fail_msg("writer_new: %s", err.message);
    }
    return w;
}

static kiln_error_t E; /* the error of the last call */

#define OK(call)                                                               \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != 0) {                                                        \
            fail_msg("%s: %d %s", #call, rc_, E.message);                      \
        }                                                                      \
    } while (0)

static kiln_snap_attr_t attr_mode(mode_t mode)
{
    kiln_snap_attr_t a = KILN_SNAP_ATTR_INIT;

    a.mode = mode;
    return a;
}

/* Nothing under `outside` changed: one file, fixed content and mtime. */
static void check_outside(void)
{
    char path[400];
    struct stat st;
    FILE *f;
    char buf[64] = "";
    int n = 0;

    snprintf(path, sizeof(path), "%s/secret", outside);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, 1000000000);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "secret");
    /* No new entries. */
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", outside);
        n = system(cmd);
    }
    assert_int_equal(n, 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D) {
        chmod(path, 0700);
        return rmdir(path) == 0 ? 0 : 0;
    }
    return unlink(path) == 0 ? 0 : 0;
}

static int chmod_entry(const char *path, const struct stat *st, int flag,
                       struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D && (st->st_mode & 0700) != 0700) {
        chmod(path, 0700);
    }
    return 0;
}

static int setup(void **state)
{
    char path[400];
    FILE *f;

    (void)state;
    snprintf(root, sizeof(root), "/tmp/kiln-snap-XXXXXX");
    assert_non_null(mkdtemp(root));
    chmod(root, 0755);
    snprintf(outside, sizeof(outside), "%s/outside", root);
    mkdir(outside, 0755);
    snprintf(path, sizeof(path), "%s/secret", outside);
    f = fopen(path, "w");
    fputs("secret", f);
    fclose(f);
    settime(path, 1000000000);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    check_outside();
    nftw(root, chmod_entry, 64, FTW_PHYS);
    nftw(root, rm_entry, 64, FTW_PHYS | FTW_DEPTH);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static int find_wh(const char *path, const struct stat *st, int flag,
                   struct FTW *ftw)
{
    (void)st;
    (void)flag;
    return strncmp(path + ftw->base, ".wh.", 4) == 0;
}

static void check_materialized(const kiln_snap_view_t *v, const char *dir,
                               bool link)
{
    const char *paths[] = {dir};
    kiln_snap_view_t *m = NULL;
    char *want, *got;

    OK(kiln__snap_materialize(v, dir, link, &E));
    assert_int_equal(nftw(dir, find_wh, 16, FTW_PHYS), 0);
    OK(kiln__snap_view_open(paths, 1, &E, &m));
    want = dump(v, true);
    got = dump(m, true);
    assert_string_equal(got, want);
    free(want);
    free(got);
    kiln__snap_view_free(m);
}

static void check_round_trip(const kiln_snap_view_t *lower,
                             const kiln_snap_view_t *upper, const char *name)
{
    const char *paths[KILN_SNAP_MAX_DEPTH * 8];
    kiln_snap_view_t *applied = NULL;
    size_t n = kiln__snap_view_depth(lower);
    char *want, *got;

    mkdirs(P(name));
    OK(kiln__snap_diff(lower, upper, P(name), &E));
    for (size_t i = 0; i < n; i++) {
        paths[i] = kiln__snap_view_layer(lower, i);
    }
    paths[n] = P(name);
    OK(kiln__snap_view_open(paths, n + 1, &E, &applied));
    want = dump(upper, true);
    got = dump(applied, true);
    assert_string_equal(got, want);
    free(want);
    free(got);
    kiln__snap_view_free(applied);
}

static size_t count_entries(const char *dir)
{
    char cmd[700];
    FILE *p;
    size_t n = 0;

    snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 | wc -l", dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%zu", &n), 1);
    pclose(p);
    return n;
}

/* A chain of n writers, each adding /files/f<i> and rewriting /counter. */
static kiln_snap_view_t *build_chain(size_t n, double *per_write)
{
    char **names = calloc(n, sizeof(*names));
    kiln_snap_view_t *v = NULL;
    double t = 0;

    OK(kiln__snap_view_open(NULL, 0, &E, &v));
    for (size_t i = 0; i < n; i++) {
        kiln_snap_writer_t *w;
        kiln_snap_view_t *next = NULL;
        char path[64], data[32];
        double t0;

        names[i] = malloc(600);
        snprintf(names[i], 600, "%s/chain/%zu", root, i);
        w = wnew(v, names[i] + strlen(root) + 1);
        snprintf(path, sizeof(path), "/files/f%zu", i);
        snprintf(data, sizeof(data), "%zu", i);
        t0 = now_s();
        if (i == 0) {
            OK(kiln__snap_mkdir(w, "/files", NULL, false, &E));
        }
        OK(kiln__snap_write_file(w, path, data, strlen(data), NULL, &E));
        OK(kiln__snap_write_file(w, "/counter", data, strlen(data), NULL, &E));
        t += now_s() - t0;
        OK(kiln__snap_writer_finish(w, NULL, &E));
        kiln__snap_writer_free(w);
        OK(kiln__snap_view_open((const char *const *)names, i + 1, &E, &next));
        kiln__snap_view_free(v);
        v = next;
    }
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    *per_write = t / (double)(2 * n);
    return v;
}

static int count_one(const char *name, const kiln_snap_entry_t *e, void *ud)
{
    (void)name;
    (void)e;
    (*(size_t *)ud)++;
    return 0;
}

/* ---- layer stacks used by several tests ---- */

static kiln_snap_view_t *union_fixture(void)
{
    static const char *const layers[] = {"l0", "l1", "l2"};

    put("l0", "a", "a0");
    put("l0", "d/x", "x0");
    put("l0", "d/y", "y0");
    put("l0", "e/f", "f0");
    put("l0", "g", "g0");
    put("l0", "h/i", "i0");
    put("l0", "o/p", "p0");
    put("l0", "deep/1/2/3", "deep0");
    put("l1", "a", "a1");
    put("l1", "d/.wh.x", "");
    put("l1", "d/z", "z1");
    put("l1", "e", "e1");   /* a file replacing a directory */
    put("l1", "g/k", "k1"); /* a directory replacing a file */
    put("l1", "o/.wh..wh..opq", "");
    put("l1", "o/q", "q1");
    put("l1", ".wh.h", "");
    put("l1", ".wh.nothing", "");
    pdir("l1", "deep/1");
    put("l2", "h/n", "n2"); /* made again above the whiteout */
    put("l2", "l1", "linked");
    assert_int_equal(link(LP("l2", "l1"), LP("l2", "l2")), 0);
    put("l2", "d/.wh.y", "");
    put("l2", "d/y", "y2"); /* an entry beats its own layer's whiteout */
    return vopen(3, layers);
}

static kiln_snap_view_t *hostile_fixture(void)
{
    static const char *const layers[] = {"h0", "h1"};
    char target[600];

    put("h0", "etc/passwd", "inside");
    put("h0", "etc/hosts", "hosts");
    plnk("h0", "abs", "/etc/passwd");
    plnk("h0", "rel", "../../../../../../etc/passwd");
    plnk("h0", "up", "../../..");
    plnk("h0", "loop1", "loop2");
    plnk("h0", "loop2", "loop1");
    plnk("h0", "self", "self");
    snprintf(target, sizeof(target), "%s", outside);
    plnk("h0", "out", target); /* a host directory */
    snprintf(target, sizeof(target), "%s/secret", outside);
    plnk("h0", "outfile", target);
    plnk("h0", "dangling", "/new/place");
    /* In the upper layer: an absolute directory symlink used as an
     * intermediate component, and a relative climb through a lower dir. */
    pdir("h1", "sub");
    plnk("h1", "etcl", "/etc");
    plnk("h1", "sub/climb", "../../../../etc");
    plnk("h1", "sub/outdir", "../../../../../../../../../..");
    return vopen(2, layers);
}

static kiln_snap_view_t *copy_source(void)
{
    static const char *const layers[] = {"c0", "c1"};

    put("c0", "src/a.txt", "A");
    put("c0", "src/b.log", "B");
    put("c0", "src/sub/c.txt", "C");
    put("c0", "src/sub/gone", "G");
    put("c0", "src/skip/d.txt", "D");
    put("c1", "src/sub/.wh.gone", "");
    put("c1", "src/hard1", "H");
    assert_int_equal(link(LP("c1", "src/hard1"), LP("c1", "src/sub/hard2")), 0);
    plnk("c1", "src/link", "sub/c.txt");
    plnk("c1", "src/abs", "/etc/passwd");
    chmod(LP("c0", "src/a.txt"), 0600);
    chmod(LP("c1", "src/sub"), 0750); /* c1 provides src/sub */
    settime(LP("c0", "src/a.txt"), 111);
    settime(LP("c1", "src/link"), 222);
    settime(LP("c1", "src/sub"), 333);
    settime(LP("c1", "src"), 444);
    return vopen(2, layers);
}

#endif
