/*
 * Layered snapshots (core/snap): union semantics, hostile symlinks, writers
 * and copy-up, copies between views, materialize, diff, deep stacks. Every
 * test works in a fresh temp dir, with an "outside" directory next to the
 * layers that no operation may touch.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snap_fixture.h"

/* ---- union semantics ---- */

static void test_union_table(void **state)
{
    static const struct {
        const char *path, *want;
    } table[] = {
        {"/a", "a1"},       {"/d/x", NULL},
        {"/d/y", "y2"},     {"/d/z", "z1"},
        {"/e", "e1"},       {"/e/f", NULL},
        {"/g/k", "k1"},     {"/o/p", NULL},
        {"/o/q", "q1"},     {"/h/i", NULL},
        {"/h/n", "n2"},     {"/l1", "linked"},
        {"/l2", "linked"},  {"/.wh.h", NULL},
        {"/d/.wh.x", NULL}, {"/deep/1/2/3", "deep0"},
        {"d/../a", "a1"},   {"/../../a", "a1"},
        {"./d/./z", "z1"},  {"/o/.wh..wh..opq", NULL},
    };
    kiln_snap_view_t *v = union_fixture();
    kiln_snap_entry_t e, e2;

    (void)state;
    /* Several rounds: the later ones answer from the view's listings. */
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < KILN_ARRAY_SIZE(table); i++) {
            assert_content(v, table[i].path, table[i].want);
        }
    }
    assert_int_equal(resolve_rc(v, "/e/f", false, &e), -ENOTDIR);
    assert_int_equal(resolve_rc(v, "/g", false, &e), 0);
    assert_true(S_ISDIR(e.st.st_mode));
    assert_int_equal(e.layer, 1);
    assert_int_equal(resolve_rc(v, "/x/y/z", false, &e), KILN_ENOENT);
    assert_string_equal(e.path, "/x"); /* the first missing directory */
    assert_int_equal(resolve_rc(v, "/d/x", false, &e), 0);
    assert_int_equal(e.layer, -1);
    assert_string_equal(e.path, "/d/x");
    /* Hard links inside a layer: one inode. */
    assert_int_equal(resolve_rc(v, "/l1", false, &e), 0);
    assert_int_equal(resolve_rc(v, "/l2", false, &e2), 0);
    assert_int_equal(e.st.st_ino, e2.st.st_ino);
    assert_int_equal(e.st.st_nlink, 2);
    /* Listings: merged, sorted, whiteouts applied and hidden. */
    assert_names(v, "/", "a d deep e g h l1 l2 o ");
    assert_names(v, "/d", "y z ");
    assert_names(v, "/o", "q ");
    assert_names(v, "/h", "n ");
    assert_names(v, "/g", "k ");
    assert_names(v, "/deep/1", "2 ");
    kiln__snap_view_free(v);
}

static void test_empty_view(void **state)
{
    kiln_snap_view_t *v = NULL;
    kiln_snap_entry_t e;

    (void)state;
    OK(kiln__snap_view_open(NULL, 0, &E, &v));
    assert_int_equal(kiln__snap_view_depth(v), 0);
    assert_int_equal(resolve_rc(v, "/", true, &e), 0);
    assert_int_equal(e.layer, -1);
    assert_true(S_ISDIR(e.st.st_mode));
    assert_int_equal(resolve_rc(v, "/a", true, &e), 0);
    assert_int_equal(e.layer, -1);
    assert_names(v, "/", "");
    kiln__snap_view_free(v);
    assert_int_equal(
        kiln__snap_view_open((const char *[]){"/nonexistent/x"}, 1, &E, &v),
        KILN_ENOENT);
    assert_null(v);
}

/* ---- hostile symlinks ---- */

static void test_hostile_resolution(void **state)
{
    kiln_snap_view_t *v = hostile_fixture();
    kiln_snap_entry_t e;
    kiln_error_t err;
    char path[700];

    (void)state;
    assert_content(v, "/abs", "inside");
    assert_content(v, "/rel", "inside");
    assert_content(v, "/up/etc/passwd", "inside");
    assert_content(v, "/up/up/up/etc/hosts", "hosts");
    assert_content(v, "/etcl/passwd", "inside");
    assert_content(v, "/sub/climb/passwd", "inside");
    assert_content(v, "/sub/outdir/etc/passwd", "inside");
    assert_content(v, "/outfile", NULL); /* the host path is not here */
    snprintf(path, sizeof(path), "/out/secret");
    assert_int_equal(resolve_rc(v, path, true, &e), KILN_ENOENT);
    assert_int_equal(resolve_rc(v, "/abs", true, &e), 0);
    assert_string_equal(e.path, "/etc/passwd");
    assert_int_equal(resolve_rc(v, "/abs", false, &e), 0);
    assert_true(S_ISLNK(e.st.st_mode));
    assert_string_equal(e.path, "/abs");
    assert_int_equal(resolve_rc(v, "/dangling", true, &e), KILN_ENOENT);
    assert_string_equal(e.path, "/new");
    /* Loops: a clear error. */
    assert_int_equal(kiln__snap_resolve(v, "/loop1", true, &e, &err),
                     KILN_ELOOP);
    assert_non_null(strstr(err.message, "too many levels of symbolic links"));
    assert_int_equal(kiln__snap_resolve(v, "/self/x", false, &e, &err),
                     KILN_ELOOP);
    /* Not followed as the last component: fine. */
    assert_int_equal(resolve_rc(v, "/loop1", false, &e), 0);
    /* The limit is exact: 255 links resolve, 256 do not. */
    put("h0", "end", "end");
    for (int i = 0; i < 256; i++) {
        char name[32], target[32];
        snprintf(name, sizeof(name), "c%d", i);
        snprintf(target, sizeof(target), i == 0 ? "end" : "c%d", i - 1);
        plnk("h0", name, target);
    }
    /* Layers are immutable under a view (it caches hot listings). */
    kiln__snap_view_free(v);
    v = vopen(2, (const char *const[]){"h0", "h1"});
    assert_content(v, "/c254", "end");
    assert_int_equal(resolve_rc(v, "/c255", true, &e), KILN_ELOOP);
    kiln__snap_view_free(v);
}

/* Hostile symlinks made by the writer itself, then used. */
static void hostile_same_layer(kiln_snap_writer_t *w,
                               const kiln_snap_view_t *wv)
{
    kiln_snap_attr_t a = attr_mode(0666);
    struct stat after;
    char target[600];

    snprintf(target, sizeof(target), "%s", outside);
    OK(kiln__snap_symlink(w, target, "/evil", NULL, &E));
    OK(kiln__snap_symlink(w, "../../../../..", "/evil2", NULL, &E));
    OK(kiln__snap_mkdir(w, "/evil/secret", NULL, true, &E));
    OK(kiln__snap_write_file(w, "/evil2/tmp/owned", "o", 1, NULL, &E));
    OK(kiln__snap_symlink(w, "/etc/passwd", "/evil3", NULL, &E));
    /* setattr on a symlink never reaches its target. */
    a.mtime_ns = 5000000000;
    OK(kiln__snap_setattr(w, "/evil3", &a, &E));
    assert_int_equal(lstat(LP("hw", "evil3"), &after), 0);
    assert_true(S_ISLNK(after.st_mode));
    assert_int_equal(after.st_mtim.tv_sec, 5);
    assert_int_equal(stat(LP("h0", "etc/passwd"), &after), 0);
    assert_int_equal(after.st_mode & 0777, 0644);
    OK(kiln__snap_remove(w, "/evil2", &E));
    assert_content(wv, "/tmp/owned", "o");
}

static void test_hostile_writes(void **state)
{
    kiln_snap_view_t *v = hostile_fixture();
    kiln_snap_writer_t *w = wnew(v, "hw");
    const kiln_snap_view_t *wv = kiln__snap_writer_view(w);
    kiln_snap_entry_t e;
    struct stat before, after;
    char target[600];

    (void)state;
    assert_int_equal(stat("/etc/passwd", &before), 0);
    /* Through an absolute directory symlink of a lower layer. */
    OK(kiln__snap_write_file(w, "/etcl/passwd", "pwned", 5, NULL, &E));
    assert_content(wv, "/etc/passwd", "pwned");
    assert_int_equal(lstat(LP("hw", "etc/passwd"), &after), 0);
    /* Through relative climbs. */
    OK(kiln__snap_write_file(w, "/sub/climb/shadow", "s", 1, NULL, &E));
    OK(kiln__snap_write_file(w, "/up/up/etc/group", "g", 1, NULL, &E));
    assert_content(wv, "/etc/shadow", "s");
    assert_content(wv, "/etc/group", "g");
    /* The last component is not followed: the symlink itself goes. */
    OK(kiln__snap_write_file(w, "/outfile", "x", 1, NULL, &E));
    assert_int_equal(lstat(LP("hw", "outfile"), &after), 0);
    assert_true(S_ISREG(after.st_mode));
    /* A host path below a symlink to it does not exist in here. */
    assert_int_equal(kiln__snap_write_file(w, "/out/secret", "x", 1, NULL, &E),
                     KILN_ENOENT);
    /* mkdir -p through it creates the host path inside the snapshot. */
    OK(kiln__snap_mkdir(w, "/out/made", NULL, true, &E));
    snprintf(target, sizeof(target), "%s/made", outside);
    assert_int_equal(resolve_rc(wv, target, false, &e), 0);
    assert_true(S_ISDIR(e.st.st_mode));
    hostile_same_layer(w, wv);
    /* A dangling symlink followed by mkdir -p makes its target. */
    OK(kiln__snap_mkdir(w, "/dangling", NULL, true, &E));
    assert_int_equal(resolve_rc(wv, "/new/place", false, &e), 0);
    /* Loops fail cleanly. */
    assert_int_equal(kiln__snap_write_file(w, "/loop1/x", "x", 1, NULL, &E),
                     KILN_ELOOP);
    OK(kiln__snap_writer_finish(w, NULL, &E));
    kiln__snap_writer_free(w);
    assert_int_equal(stat("/etc/passwd", &after), 0);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    assert_int_equal(before.st_size, after.st_size);
    kiln__snap_view_free(v);
}

/* ---- writers ---- */

/* Replacing, and what writers refuse. */
static void writer_errors(kiln_snap_writer_t *w, const kiln_snap_view_t *v,
                          const kiln_snap_view_t *wv)
{
    OK(kiln__snap_write_file(w, "/a/b/c", "c1", 2, NULL, &E));
    assert_content(wv, "/a/b/c", "c1");
    assert_content(v, "/a/b/c", "c0");
    assert_int_equal(kiln__snap_write_file(w, "/a", "x", 1, NULL, &E), -EISDIR);
    assert_int_equal(kiln__snap_write_file(w, "/", "x", 1, NULL, &E), -EISDIR);
    assert_int_equal(kiln__snap_mkdir(w, "/a", NULL, false, &E), -EEXIST);
    assert_int_equal(kiln__snap_mkdir(w, "/x/y", NULL, false, &E), KILN_ENOENT);
    assert_int_equal(kiln__snap_mkdir(w, "/top/y", NULL, true, &E), -ENOTDIR);
    assert_int_equal(kiln__snap_mkdir(w, "/top", NULL, true, &E), -EEXIST);
    OK(kiln__snap_mkdir(w, "/a/b", NULL, true, &E));
    assert_int_equal(kiln__snap_write_file(w, "/.wh.x", "x", 1, NULL, &E),
                     KILN_EINVAL);
    assert_int_equal(kiln__snap_mkdir(w, "/a/.wh..wh..opq", NULL, false, &E),
                     KILN_EINVAL);
    assert_int_equal(kiln__snap_symlink(w, "x", "/top", NULL, &E), -EEXIST);
    assert_int_equal(kiln__snap_symlink(w, "x", "/a", NULL, &E), -EEXIST);
    assert_int_equal(kiln__snap_symlink(w, "x", "/", NULL, &E), -EEXIST);
    assert_int_equal(kiln__snap_remove(w, "/", &E), KILN_EINVAL);
    assert_int_equal(kiln__snap_remove(w, "/nope", &E), KILN_ENOENT);
    assert_int_equal(kiln__snap_setattr(w, "/nope", NULL, &E), KILN_ENOENT);
}

static void test_writer_copy_up(void **state)
{
    static const char *const layers[] = {"b0"};
    kiln_snap_view_t *v;
    kiln_snap_writer_t *w;
    const kiln_snap_view_t *wv;
    struct stat st;
    kiln_snap_attr_t a = attr_mode(0640);

    (void)state;
    put("b0", "a/b/c", "c0");
    put("b0", "a/b/d", "d0");
    put("b0", "top", "t0");
    chmod(LP("b0", "a"), 0750);
    chmod(LP("b0", "a/b"), 0711);
    if (geteuid() == 0) {
        assert_int_equal(lchown(LP("b0", "a"), 1000, 1001), 0);
    }
    settime(LP("b0", "a/b"), 2000);
    settime(LP("b0", "a"), 1000);
    settime(LP("b0", ""), 500);
    v = vopen(1, layers);
    w = wnew(v, "w0");
    wv = kiln__snap_writer_view(w);
    /* The new layer's root took the base root's metadata. */
    assert_int_equal(stat(P("w0"), &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, 500);

    a.mtime_ns = 1234500000000LL;
    OK(kiln__snap_write_file(w, "/a/b/new", "new", 3, &a, &E));
    /* Parents copied up, metadata only. */
    assert_int_equal(lstat(LP("w0", "a"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(st.st_mtim.tv_sec, 1000); /* copy-up changes nothing */
    if (geteuid() == 0) {
        assert_int_equal(st.st_uid, 1000);
        assert_int_equal(st.st_gid, 1001);
    }
    assert_int_equal(lstat(LP("w0", "a/b"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);
    assert_true(st.st_mtim.tv_sec > 2000); /* a real change: now */
    assert_int_equal(lstat(LP("w0", "a/b/c"), &st), -1);
    assert_int_equal(lstat(LP("w0", "a/b/new"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_mtim.tv_sec, 1234);
    assert_int_equal(st.st_mtim.tv_nsec, 500000000);
    assert_int_equal(lstat(P("w0"), &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, 500);
    assert_names(wv, "/a/b", "c d new ");
    assert_content(wv, "/a/b/c", "c0");

    writer_errors(w, v, wv);
    kiln__snap_writer_free(w);
    kiln__snap_view_free(v);
}

static void test_writer_remove_opaque(void **state)
{
    static const char *const layers[] = {"r0"};
    kiln_snap_view_t *v;
    kiln_snap_writer_t *w;
    const kiln_snap_view_t *wv;
    kiln_snap_attr_t a = attr_mode(0700);
    uint64_t size = 0;

    (void)state;
    put("r0", "dir/old", "o");
    put("r0", "dir/sub/x", "x");
    put("r0", "file", "f");
    v = vopen(1, layers);
    w = wnew(v, "rw");
    wv = kiln__snap_writer_view(w);

    /* Removing a lower entry: a whiteout. */
    OK(kiln__snap_remove(w, "/file", &E));
    assert_true(exists(LP("rw", ".wh.file")));
    assert_content(wv, "/file", NULL);
    /* Made again: the whiteout goes. */
    OK(kiln__snap_write_file(w, "/file", "f2", 2, NULL, &E));
    assert_false(exists(LP("rw", ".wh.file")));
    assert_content(wv, "/file", "f2");
    /* Only in this layer: removed without a trace. */
    OK(kiln__snap_write_file(w, "/mine", "m", 1, NULL, &E));
    OK(kiln__snap_remove(w, "/mine", &E));
    assert_false(exists(LP("rw", "mine")));
    assert_false(exists(LP("rw", ".wh.mine")));
    /* A directory removed (recursively, copied-up parts too) and made
     * again: opaque, nothing of the lower one shows. */
    OK(kiln__snap_write_file(w, "/dir/sub/y", "y", 1, NULL, &E));
    OK(kiln__snap_remove(w, "/dir", &E));
    assert_true(exists(LP("rw", ".wh.dir")));
    assert_false(exists(LP("rw", "dir")));
    assert_int_equal(kiln__snap_remove(w, "/dir/old", &E), KILN_ENOENT);
    OK(kiln__snap_mkdir(w, "/dir", &a, false, &E));
    assert_true(exists(LP("rw", "dir/.wh..wh..opq")));
    assert_false(exists(LP("rw", ".wh.dir")));
    assert_names(wv, "/dir", "");
    OK(kiln__snap_write_file(w, "/dir/fresh", "n", 1, NULL, &E));
    assert_names(wv, "/dir", "fresh ");
    /* Removing what this layer replaced: gone, and hidden below. */
    OK(kiln__snap_remove(w, "/file", &E));
    assert_false(exists(LP("rw", "file")));
    assert_true(exists(LP("rw", ".wh.file")));
    OK(kiln__snap_writer_finish(w, &size, &E));
    assert_true(size > 0);
    assert_int_equal(kiln__snap_write_file(w, "/late", "x", 1, NULL, &E),
                     KILN_EINVAL);
    kiln__snap_writer_free(w);
    kiln__snap_view_free(v);
}

static void test_writer_setattr_mkdir_times(void **state)
{
    static const char *const layers[] = {"s0"};
    kiln_snap_view_t *v;
    kiln_snap_writer_t *w;
    const kiln_snap_view_t *wv;
    kiln_snap_attr_t a = attr_mode(0751);
    kiln_snap_entry_t e;
    struct stat st;

    (void)state;
    put("s0", "f", "data");
    put("s0", "d/x", "x");
    plnk("s0", "l", "f");
    v = vopen(1, layers);
    w = wnew(v, "sw");
    wv = kiln__snap_writer_view(w);
    a.mtime_ns = 7000000000LL;
    OK(kiln__snap_setattr(w, "/f", &a, &E));
    assert_int_equal(lstat(LP("sw", "f"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0751);
    assert_int_equal(st.st_mtim.tv_sec, 7);
    assert_content(wv, "/f", "data");
    OK(kiln__snap_setattr(w, "/d", &a, &E)); /* a directory: metadata only */
    assert_names(wv, "/d", "x ");
    assert_false(exists(LP("sw", "d/x")));
    assert_int_equal(lstat(LP("sw", "d"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0751);
    assert_int_equal(st.st_mtim.tv_sec, 7);
    OK(kiln__snap_setattr(w, "/l", &a, &E));
    /* Hard links in the new layer; a lower file is copied up first. */
    OK(kiln__snap_link(w, "/d/x", "/hl", &E));
    assert_int_equal(resolve_rc(wv, "/hl", false, &e), 0);
    assert_int_equal(lstat(LP("sw", "d/x"), &st), 0);
    assert_int_equal(e.st.st_ino, st.st_ino);
    assert_int_equal(st.st_nlink, 2);
    assert_content(wv, "/hl", "x");
    assert_int_equal(kiln__snap_link(w, "/d", "/hl2", &E), -EPERM);
    assert_int_equal(kiln__snap_link(w, "/f", "/hl", &E), -EEXIST);
    assert_int_equal(kiln__snap_link(w, "/nope", "/hl3", &E), KILN_ENOENT);
    assert_int_equal(lstat(LP("sw", "l"), &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* mkdir -p: every created directory gets the mode and the mtime, set
     * after its children were made. */
    a.mode = 0705;
    OK(kiln__snap_mkdir(w, "/p/q/r", &a, true, &E));
    for (const char *const *p =
             (const char *const[]){"/p", "/p/q", "/p/q/r", NULL};
         *p; p++) {
        assert_int_equal(resolve_rc(wv, *p, false, &e), 0);
        assert_int_equal(e.st.st_mode & 07777, 0705);
        assert_int_equal(e.st.st_mtim.tv_sec, 7);
    }
    /* Symlink attributes: owner and times, never the target's. */
    a.mtime_ns = 9000000000LL;
    OK(kiln__snap_symlink(w, "/f", "/sl", &a, &E));
    assert_int_equal(resolve_rc(wv, "/sl", false, &e), 0);
    assert_int_equal(e.st.st_mtim.tv_sec, 9);
    assert_int_equal(resolve_rc(wv, "/f", false, &e), 0);
    assert_int_equal(e.st.st_mtim.tv_sec, 7);
    kiln__snap_writer_free(w);
    kiln__snap_view_free(v);
}

/* ---- ownership ---- */

/* The checks of test_ownership for an unprivileged caller; returns a
 * failure description or NULL. */
static const char *ownership_unprivileged(const char *layer_base)
{
    kiln_snap_view_t *v = NULL;
    kiln_snap_writer_t *w = NULL;
    kiln_snap_attr_t a = KILN_SNAP_ATTR_INIT;
    static kiln_error_t err;
    char dir[600];
    struct stat st;
    int rc;

    snprintf(dir, sizeof(dir), "%s/layer", layer_base);
    if (mkdir(dir, 0755) != 0 || kiln__snap_view_open(NULL, 0, &err, &v) ||
        kiln__snap_writer_new(v, dir, &err, &w)) {
        return "setup";
    }
    /* Owner left unset: the caller's. */
    if (kiln__snap_write_file(w, "/mine", "m", 1, NULL, &err) != 0) {
        return err.message;
    }
    snprintf(dir, sizeof(dir), "%s/layer/mine", layer_base);
    if (lstat(dir, &st) != 0 || st.st_uid != geteuid()) {
        return "default owner";
    }
    /* Asking for the caller's own owner is fine. */
    a.uid = geteuid();
    a.gid = getegid();
    if (kiln__snap_write_file(w, "/same", "s", 1, &a, &err) != 0) {
        return err.message;
    }
    a.uid = 0;
    a.gid = 0;
    rc = kiln__snap_write_file(w, "/root", "r", 1, &a, &err);
    if (rc != -EPERM || strstr(err.message, "need root") == NULL) {
        return "chown to root did not fail clearly";
    }
    rc = kiln__snap_mkdir(w, "/rootdir", &a, false, &err);
    if (rc != -EPERM) {
        return "mkdir with owner";
    }
    kiln__snap_writer_free(w);
    kiln__snap_view_free(v);
    return NULL;
}

static void test_ownership(void **state)
{
    kiln_snap_view_t *v = NULL;
    kiln_snap_writer_t *w;
    kiln_snap_attr_t a = KILN_SNAP_ATTR_INIT;
    const char *msg;
    struct stat st;
    pid_t pid;
    int status;

    (void)state;
    if (geteuid() != 0) {
        msg = ownership_unprivileged(root);
        if (msg != NULL) {
            fail_msg("unprivileged: %s", msg);
        }
        return;
    }
    OK(kiln__snap_view_open(NULL, 0, &E, &v));
    w = wnew(v, "ow");
    a.uid = 1234;
    a.gid = 5678;
    OK(kiln__snap_write_file(w, "/f", "f", 1, &a, &E));
    OK(kiln__snap_symlink(w, "f", "/l", &a, &E));
    assert_int_equal(lstat(LP("ow", "f"), &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_equal(lstat(LP("ow", "l"), &st), 0);
    assert_int_equal(st.st_uid, 1234);
    kiln__snap_writer_free(w);
    kiln__snap_view_free(v);

    /* The same checks again as nobody, in a child. */
    mkdirs(P("nobody"));
    assert_int_equal(chown(P("nobody"), 65534, 65534), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0) {
            _exit(2);
        }
        msg = ownership_unprivileged(P("nobody"));
        if (msg != NULL) {
            fprintf(stderr, "# unprivileged: %s\n", msg);
        }
        _exit(msg == NULL ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- copies between views ---- */

/* Conflicting destinations, replace, and copies within one view. */
static void copy_conflicts(kiln_snap_writer_t *w, const kiln_snap_view_t *from,
                           const kiln_snap_entry_t *src)
{
    const kiln_snap_view_t *wv = kiln__snap_writer_view(w);
    kiln_snap_copy_opts_t o = {NULL, NULL, NULL, true};
    kiln_snap_entry_t e;

    /* A file onto a directory and the reverse: errors, unless replace. */
    assert_int_equal(resolve_rc(from, "/src/a.txt", false, &e), 0);
    assert_int_equal(kiln__snap_copy(w, from, &e, "/dst/sub", NULL, &E),
                     -EISDIR);
    assert_int_equal(kiln__snap_copy(w, from, src, "/dst/keep", NULL, &E),
                     -ENOTDIR);
    OK(kiln__snap_copy_ex(w, from, &e, "/dst/sub", &o, &E));
    assert_content(wv, "/dst/sub", "A");
    OK(kiln__snap_copy_ex(w, from, src, "/dst/keep", &o, &E));
    assert_names(wv, "/dst/keep", "a.txt abs b.log hard1 link skip sub ");
    /* A file onto a file replaces it; onto itself is refused. */
    OK(kiln__snap_copy(w, from, &e, "/dst/src/a.txt", NULL, &E));
    assert_content(wv, "/dst/src/a.txt", "A");
    assert_int_equal(resolve_rc(wv, "/new", false, &e), 0);
    assert_int_equal(kiln__snap_copy(w, wv, &e, "/new/inner", NULL, &E),
                     KILN_EINVAL);
    assert_int_equal(resolve_rc(wv, "/new/a.txt", false, &e), 0);
    assert_int_equal(kiln__snap_copy(w, wv, &e, "/new/a.txt", NULL, &E),
                     KILN_EINVAL);
    /* Within the same view, elsewhere: fine. */
    assert_int_equal(resolve_rc(wv, "/new", false, &e), 0);
    OK(kiln__snap_copy(w, wv, &e, "/again", NULL, &E));
    assert_names(wv, "/again/sub", "c.txt hard2 ");
}

static void test_copy_tree(void **state)
{
    kiln_snap_view_t *from = copy_source(), *base;
    kiln_snap_writer_t *w;
    const kiln_snap_view_t *wv;
    kiln_snap_entry_t src, e, e2;
    static const char *const layers[] = {"cb"};

    (void)state;
    put("cb", "dst/keep", "K");
    put("cb", "dst/src/a.txt", "old");
    chmod(LP("cb", "dst"), 0700);
    settime(LP("cb", "dst"), 555);
    base = vopen(1, layers);
    w = wnew(base, "cw");
    wv = kiln__snap_writer_view(w);
    assert_int_equal(resolve_rc(from, "/src", false, &src), 0);

    OK(kiln__snap_copy(w, from, &src, "/new", NULL, &E));
    assert_names(wv, "/new", "a.txt abs b.log hard1 link skip sub ");
    assert_names(wv, "/new/sub", "c.txt hard2 ");
    assert_content(wv, "/new/link", "C");
    assert_content(wv, "/new/abs", NULL);
    assert_int_equal(resolve_rc(wv, "/new/a.txt", false, &e), 0);
    assert_int_equal(e.st.st_mode & 07777, 0600);
    assert_int_equal(e.st.st_mtim.tv_sec, 111);
    assert_int_equal(resolve_rc(wv, "/new/link", false, &e), 0);
    assert_int_equal(e.st.st_mtim.tv_sec, 222);
    assert_int_equal(resolve_rc(wv, "/new/sub", false, &e), 0);
    assert_int_equal(e.st.st_mode & 07777, 0750);
    assert_int_equal(e.st.st_mtim.tv_sec, 333); /* after its contents */
    assert_int_equal(resolve_rc(wv, "/new", false, &e), 0);
    assert_int_equal(e.st.st_mtim.tv_sec, 444);
    assert_int_equal(resolve_rc(wv, "/new/hard1", false, &e), 0);
    assert_int_equal(resolve_rc(wv, "/new/sub/hard2", false, &e2), 0);
    assert_int_equal(e.st.st_ino, e2.st.st_ino); /* hard link kept */
    assert_int_equal(e.layer, 1);
    assert_int_equal(resolve_rc(from, "/src/hard1", false, &e2), 0);
    assert_int_not_equal(e.st.st_ino, e2.st.st_ino); /* a copy */

    /* Into an existing directory: merged; it keeps its own metadata. */
    OK(kiln__snap_copy(w, from, &src, "/dst", NULL, &E));
    assert_names(wv, "/dst", "a.txt abs b.log hard1 keep link skip src sub ");
    assert_content(wv, "/dst/src/a.txt", "old");
    assert_int_equal(resolve_rc(wv, "/dst", false, &e), 0);
    assert_int_equal(e.st.st_mode & 07777, 0700);
    copy_conflicts(w, from, &src);
    kiln__snap_writer_free(w);
    kiln__snap_view_free(base);
    kiln__snap_view_free(from);
}

static int filter_fn(const char *rel, const kiln_snap_entry_t *e, void *ud)
{
    size_t n = strlen(rel);

    (void)ud;
    if (strcmp(rel, "skip") == 0) {
        return KILN_SNAP_COPY_PRUNE;
    }
    if (S_ISDIR(e->st.st_mode)) {
        return KILN_SNAP_COPY_EXCLUDE; /* made only for what is included */
    }
    return n > 4 && strcmp(rel + n - 4, ".txt") == 0 ? KILN_SNAP_COPY_INCLUDE
                                                     : KILN_SNAP_COPY_EXCLUDE;
}

static int filter_err(const char *rel, const kiln_snap_entry_t *e, void *ud)
{
    (void)rel;
    (void)e;
    (void)ud;
    return -EIO;
}

static void test_copy_filter_override(void **state)
{
    kiln_snap_view_t *from = copy_source(), *base = NULL;
    kiln_snap_writer_t *w;
    const kiln_snap_view_t *wv;
    kiln_snap_attr_t ov = attr_mode(0705); /* dirs stay readable */
    kiln_snap_copy_opts_t o = {&ov, filter_fn, NULL, false};
    kiln_snap_entry_t src, e;

    (void)state;
    OK(kiln__snap_view_open(NULL, 0, &E, &base));
    w = wnew(base, "fw");
    wv = kiln__snap_writer_view(w);
    assert_int_equal(resolve_rc(from, "/src", false, &src), 0);
    ov.mtime_ns = 42000000000LL;
    if (geteuid() == 0) {
        ov.uid = 7;
    }
    OK(kiln__snap_copy_ex(w, from, &src, "/f", &o, &E));
    assert_names(wv, "/f", "a.txt sub ");
    assert_names(wv, "/f/sub", "c.txt ");
    assert_int_equal(resolve_rc(wv, "/f/sub/c.txt", false, &e), 0);
    assert_int_equal(e.st.st_mode & 07777, 0705);
    assert_int_equal(e.st.st_mtim.tv_sec, 42);
    if (geteuid() == 0) {
        assert_int_equal(e.st.st_uid, 7);
    }
    assert_int_equal(resolve_rc(wv, "/f/sub", false, &e), 0);
    assert_int_equal(e.st.st_mode & 07777, 0705);
    assert_int_equal(e.st.st_mtim.tv_sec, 42);
    /* A filter error aborts. */
    o.filter = filter_err;
    assert_int_equal(kiln__snap_copy_ex(w, from, &src, "/g", &o, &E), -EIO);
    kiln__snap_writer_free(w);
    kiln__snap_view_free(base);
    kiln__snap_view_free(from);
}

/* ---- materialize ---- */

static void test_materialize(void **state)
{
    kiln_snap_view_t *v = union_fixture();
    kiln_snap_entry_t e;
    struct stat st, st2;

    (void)state;
    settime(LP("l2", ""), 777);
    mkdirs(P("m1"));
    mkdirs(P("m2"));
    check_materialized(v, P("m1"), true);
    check_materialized(v, P("m2"), false);
    /* link: the layer's inode; copy: a new one, hard links kept. */
    assert_int_equal(resolve_rc(v, "/a", false, &e), 0);
    assert_int_equal(lstat(LP("m1", "a"), &st), 0);
    assert_int_equal(st.st_ino, e.st.st_ino);
    assert_int_equal(lstat(LP("m2", "a"), &st), 0);
    assert_int_not_equal(st.st_ino, e.st.st_ino);
    assert_int_equal(lstat(LP("m2", "l1"), &st), 0);
    assert_int_equal(lstat(LP("m2", "l2"), &st2), 0);
    assert_int_equal(st.st_ino, st2.st_ino);
    assert_int_equal(lstat(P("m2"), &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, 777);
    /* Not into a non-empty directory. */
    assert_int_equal(kiln__snap_materialize(v, P("m2"), true, &E), KILN_EINVAL);
    kiln__snap_view_free(v);
}

/* ---- diff ---- */

static void test_diff_round_trip(void **state)
{
    static const char *const lower_l[] = {"l0"};
    static const char *const upper_l[] = {"l0", "l1", "l2"};
    kiln_snap_view_t *u = union_fixture(), *lo = vopen(1, lower_l);
    kiln_snap_view_t *up2 = vopen(3, upper_l);

    (void)state;
    settime(LP("l0", "deep/1"), 100);
    settime(LP("l1", "deep/1"), 200); /* metadata-only change of a dir */
    check_round_trip(lo, u, "d1");
    assert_true(count_entries(P("d1")) > 0);
    /* The other way round: upper's additions become whiteouts. */
    check_round_trip(u, lo, "d2");
    /* Nothing differs: an empty layer. */
    check_round_trip(u, up2, "d3");
    assert_int_equal(count_entries(P("d3")), 0);
    kiln__snap_view_free(u);
    kiln__snap_view_free(lo);
    kiln__snap_view_free(up2);
}

static void test_diff_compares_bytes(void **state)
{
    static const char *const a_l[] = {"da"};
    static const char *const b_l[] = {"db"};
    kiln_snap_view_t *a, *b;

    (void)state;
    /* Same size, same mtime, same mode, separate layers. */
    put("da", "same", "1234");
    put("db", "same", "1234");
    put("da", "changed", "aaaa");
    put("db", "changed", "bbbb");
    put("da", "dir/x", "x");
    put("db", "dir/x", "x");
    plnk("da", "ln", "one");
    plnk("db", "ln", "two");
    put("da", "typ", "file");
    pdir("db", "typ");
    put("db", "typ/in", "in");
    put("da", "gone/deep", "g");
    for (const char *const *p =
             (const char *const[]){"same", "changed", "dir/x", "dir", "ln",
                                   "typ", "gone/deep", "gone", "", NULL};
         *p; p++) {
        settime(LP("da", *p), 1000);
        if (exists(LP("db", *p))) {
            settime(LP("db", *p), 1000);
        }
    }
    a = vopen(1, a_l);
    b = vopen(1, b_l);
    check_round_trip(a, b, "dd");
    assert_true(exists(LP("dd", "changed")));
    assert_false(exists(LP("dd", "same")));
    assert_false(exists(LP("dd", "dir")));
    assert_true(exists(LP("dd", "ln")));
    assert_true(exists(LP("dd", "typ/in")));
    assert_true(exists(LP("dd", ".wh.gone")));
    kiln__snap_view_free(a);
    kiln__snap_view_free(b);
}

/* ---- depth and speed ---- */

static void test_deep_stack(void **state)
{
    double per_write, t0;
    kiln_snap_view_t *v = build_chain(200, &per_write);
    size_t count = 0;
    char path[64], want[32];

    (void)state;
    assert_int_equal(kiln__snap_view_depth(v), 200);
    for (size_t i = 0; i < 200; i++) {
        snprintf(path, sizeof(path), "/files/f%zu", i);
        snprintf(want, sizeof(want), "%zu", i);
        assert_content(v, path, want);
    }
    assert_content(v, "/counter", "199");
    OK(kiln__snap_readdir(v, "/files", count_one, &count, &E));
    assert_int_equal(count, 200);
    print_message("# 200-layer chain: %.1f us per write\n", per_write * 1e6);
    /* Flattened at depth: the same tree in one layer. */
    mkdirs(P("flat"));
    t0 = now_s();
    check_materialized(v, P("flat"), true);
    print_message("# materialize + check of 200 layers: %.1f ms\n",
                  (now_s() - t0) * 1e3);
    kiln__snap_view_free(v);
}

static void test_speed(void **state)
{
    kiln_snap_view_t *v, *base = NULL;
    kiln_snap_writer_t *w;
    double per_write, t0, t;
    char path[64];

    (void)state;
    /* Small writes on a 32-layer view. */
    v = build_chain(KILN_SNAP_MAX_DEPTH, &per_write);
    w = wnew(v, "speed");
    t0 = now_s();
    for (int i = 0; i < 1000; i++) {
        snprintf(path, sizeof(path), "/files/n%d", i);
        OK(kiln__snap_write_file(w, path, "x", 1, NULL, &E));
    }
    t = (now_s() - t0) / 1000;
    print_message("# small write on a 32-layer view: %.1f us\n", t * 1e6);
    assert_true(t < 0.05); /* a sanity bound; the figure is printed */
    kiln__snap_writer_free(w);
    kiln__snap_view_free(v);

    /* 10,000 files flattened with links. */
    OK(kiln__snap_view_open(NULL, 0, &E, &base));
    w = wnew(base, "big");
    for (int i = 0; i < 10000; i++) {
        snprintf(path, sizeof(path), "/d%02d/f%d", i % 50, i);
        if (i < 50) {
            snprintf(path, sizeof(path), "/d%02d", i);
            OK(kiln__snap_mkdir(w, path, NULL, false, &E));
            snprintf(path, sizeof(path), "/d%02d/f%d", i % 50, i);
        }
        OK(kiln__snap_write_file(w, path, "y", 1, NULL, &E));
    }
    mkdirs(P("bigflat"));
    t0 = now_s();
    OK(kiln__snap_materialize(kiln__snap_writer_view(w), P("bigflat"), true,
                              &E));
    t = now_s() - t0;
    print_message("# materialize 10,000 files (link): %.1f ms\n", t * 1e3);
    assert_true(t < 3.0);
    assert_int_equal(count_entries(P("bigflat")), 10050);
    kiln__snap_writer_free(w);
    kiln__snap_view_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_union_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_resolution, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_copy_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_remove_opaque, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writer_setattr_mkdir_times, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ownership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_filter_override, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_materialize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_compares_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deep_stack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_speed, setup, teardown),
    };

    umask(022);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
