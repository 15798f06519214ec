/*
 * core/fileop: mkdir, mkfile, rm, symlink, owners, chains of actions and
 * their layers, errors, MergeOp, DiffOp, and the matchers (filepath.Match,
 * patternmatcher, mode strings). Copies are in test_fileop_copy.c, escape
 * attempts in test_fileop_hostile.c.
 */
#include "fileop_fixture.h"

#include "fileop/fileop_int.h"
#include "llb/graph.h"

static kiln_snap_view_t *scratch_in[1];

static void test_mkdir(void **state)
{
    (void)state;
    char *base = fx_dir("base");
    fx_file(base, "file", "x", 0644);
    kiln_snap_view_t *in[] = {fx_view1(base)};
    Pb__FileAction *acts[] = {
        fx_mkdir(0, "/a", 0700, false),
        fx_mkdir(1, "b/c/d", 0750, true),  /* relative: from "/" */
        fx_mkdir(2, "/open", 0777, false), /* umask 022 */
        fx_mkdir(3, "/a", 0755, false),    /* exists: fine */
        fx_mkdir(4, "/file", 0755, false), /* exists as a file: fine */
    };
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 5);

    assert_int_equal(fx_mode(v, "/a"), S_IFDIR | 0700);
    assert_int_equal(fx_mode(v, "/b"), S_IFDIR | 0750);
    assert_int_equal(fx_mode(v, "/b/c/d"), S_IFDIR | 0750);
    assert_int_equal(fx_mode(v, "/open"), S_IFDIR | 0755);
    fx_assert_file(v, "/file", "x");
}

static void test_mkdir_errors(void **state)
{
    (void)state;
    char *base = fx_dir("base");
    fx_file(base, "file", "x", 0644);
    kiln_snap_view_t *in[] = {fx_view1(base)};
    Pb__FileAction *a1[] = {fx_mkdir(0, "/missing/x", 0755, false)};
    Pb__FileAction *a2[] = {fx_mkdir(0, "/file/x", 0755, true)};
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, a1, 1, &r), KILN_ENOENT);
    fx_assert_err("action 0: mkdir /missing/x: ");
    fx_assert_err("no such file or directory");
    assert_true(fx_run(in, 1, a2, 1, &r) < 0);
    fx_assert_err("action 0: mkdir /file/x: ");
}

static void test_mkfile(void **state)
{
    (void)state;
    char *base = fx_dir("base");
    fx_file(base, "etc/conf", "old", 0644);
    fx_mkdir_in(base, "dir", 0755);
    kiln_snap_view_t *in[] = {fx_view1(base)};
    Pb__FileAction *acts[] = {
        fx_mkfile(0, "/etc/conf", 0600, "new"),
        fx_mkfile(1, "hello", 0755, "hi\n"),
        fx_mkfile(2, "/empty", 0, ""),
    };
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 3);
    Pb__FileAction *bad1[] = {fx_mkfile(0, "/dir", 0644, "x")};
    Pb__FileAction *bad2[] = {fx_mkfile(0, "/nodir/x", 0644, "x")};
    kiln_fileop_result_t *r;

    fx_assert_file(v, "/etc/conf", "new");
    assert_int_equal(fx_mode(v, "/etc/conf"), S_IFREG | 0600);
    fx_assert_file(v, "/hello", "hi\n");
    assert_int_equal(fx_mode(v, "/hello"), S_IFREG | 0755);
    assert_int_equal(fx_mode(v, "/empty"), S_IFREG | 0);
    assert_true(fx_run(in, 1, bad1, 1, &r) < 0);
    fx_assert_err("action 0: mkfile /dir: ");
    assert_int_equal(fx_run(in, 1, bad2, 1, &r), KILN_ENOENT);
    fx_assert_err("action 0: mkfile /nodir/x: ");
}

static void test_timestamps(void **state)
{
    (void)state;
    const int64_t ts = 1500000000LL * 1000000000 + 123456789;
    Pb__FileAction *acts[] = {
        fx_mkdir(-1, "/d", 0755, true),
        fx_mkfile(0, "/d/f", 0644, "x"),
        fx_symlink(1, "f", "/d/l"),
    };
    struct stat st;

    acts[0]->mkdir->timestamp = ts;
    acts[1]->mkfile->timestamp = ts;
    acts[2]->symlink->timestamp = ts;
    kiln_snap_view_t *v = fx_run_ok(scratch_in, 0, acts, 3);
    assert_int_equal(fx_stat(v, "/d/f", &st), 0);
    assert_int_equal(kiln__fo_mtime_ns(&st), ts);
    assert_int_equal(fx_stat(v, "/d/l", &st), 0);
    assert_int_equal(kiln__fo_mtime_ns(&st), ts);
    fx_assert_link(v, "/d/l", "f");
}

static void test_rm(void **state)
{
    (void)state;
    char *base = fx_dir("base");
    fx_file(base, "f", "x", 0644);
    fx_file(base, "d/sub/g", "y", 0644);
    fx_file(base, "w/a.txt", "a", 0644);
    fx_file(base, "w/b.txt", "b", 0644);
    fx_file(base, "w/c.log", "c", 0644);
    fx_link(base, "dangling", "/nowhere");
    kiln_snap_view_t *in[] = {fx_view1(base)};
    Pb__FileAction *acts[] = {
        fx_rm(0, "/f", false, false),       fx_rm(1, "d", false, false),
        fx_rm(2, "/missing", true, false),  fx_rm(3, "/w/*.txt", false, true),
        fx_rm(4, "/w/*.none", false, true), fx_rm(5, "/dangling", true, false),
    };
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 6);
    Pb__FileAction *bad[] = {fx_rm(0, "/missing", false, false)};
    Pb__FileAction *bad2[] = {fx_rm(0, "/dangling", false, false)};
    Pb__FileAction *root[] = {fx_rm(0, "/", true, false)};
    kiln_fileop_result_t *r;

    fx_assert_missing(v, "/f");
    fx_assert_missing(v, "/d");
    fx_assert_missing(v, "/w/a.txt");
    fx_assert_missing(v, "/w/b.txt");
    fx_assert_file(v, "/w/c.log", "c");
    fx_assert_missing(v, "/dangling");
    assert_int_equal(fx_run(in, 1, bad, 1, &r), KILN_ENOENT);
    fx_assert_err("action 0: rm /missing: /missing: no such file");
    /* BuildKit stats (follows) the path: a dangling link is "missing". */
    assert_int_equal(fx_run(in, 1, bad2, 1, &r), KILN_ENOENT);
    assert_true(fx_run(in, 1, root, 1, &r) < 0);
    fx_assert_err("invalid empty path");
}

static void test_symlink(void **state)
{
    (void)state;
    char *base = fx_dir("base");
    fx_file(base, "f", "x", 0644);
    kiln_snap_view_t *in[] = {fx_view1(base)};
    Pb__FileAction *acts[] = {fx_symlink(0, "../f", "/sub-link"),
                              fx_symlink(1, "/abs/target", "abs")};
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 2);
    Pb__FileAction *bad[] = {fx_symlink(0, "x", "/f")};
    kiln_fileop_result_t *r;

    fx_assert_link(v, "/sub-link", "../f");
    fx_assert_link(v, "/abs", "/abs/target");
    assert_true(fx_run(in, 1, bad, 1, &r) < 0);
    fx_assert_err("action 0: symlink /f -> x: ");
    fx_assert_err("file exists");
}

static void test_owner_by_id_and_name(void **state)
{
    (void)state;
    char *etc = fx_dir("etc");
    fx_file(etc, "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "  alice:x:1234:5678:Alice:/home/alice:/bin/sh  \n",
            0644);
    fx_file(etc, "etc/group", "root:x:0:\nstaff:x:4321:alice\n", 0644);
    kiln_snap_view_t *in[] = {fx_view1(etc)};
    Pb__FileAction *acts[] = {
        fx_mkfile(0, "/byid", 0644, "x"),
        fx_mkfile(1, "/byname", 0644, "x"),
        fx_mkdir(2, "/group", 0755, false),
        fx_symlink(3, "x", "/unknown"),
    };
    struct stat st;

    if (geteuid() != 0) {
        skip(); /* changing owners needs root */
    }
    acts[0]->mkfile->owner = fx_chown(fx_user(NULL, 0, 42), NULL);
    acts[1]->mkfile->owner = fx_chown(fx_user("alice", 0, 0), NULL);
    acts[2]->mkdir->owner =
        fx_chown(fx_user("alice", 0, 0), fx_user("staff", 0, 0));
    acts[3]->symlink->owner =
        fx_chown(fx_user("nobody", 0, 0), fx_user(NULL, 0, 7));
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 4);
    assert_int_equal(fx_stat(v, "/byid", &st), 0);
    assert_int_equal(st.st_uid, 42);
    assert_int_equal(st.st_gid, 42);
    assert_int_equal(fx_stat(v, "/byname", &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 5678);
    assert_int_equal(fx_stat(v, "/group", &st), 0);
    assert_int_equal(st.st_uid, 1234);
    assert_int_equal(st.st_gid, 4321);
    assert_int_equal(fx_stat(v, "/unknown", &st), 0);
    assert_int_equal(st.st_uid, 0); /* not found: 0, as BuildKit */
    assert_int_equal(st.st_gid, 7);
}

/* The lookup alone (no chown: runs as any user). */
static void test_owner_lookup(void **state)
{
    (void)state;
    char *etc = fx_dir("etc");
    fx_file(etc, "etc/passwd", "#c\nbob:x:12:34\nbob:x:99:99\nnum:x:x1:\n",
            0644);
    fx_file(etc, "etc/group", "grp:x:56:\n", 0644);
    kiln_snap_view_t *v = fx_view1(etc), *empty = fx_view1(fx_dir("e"));
    kiln__fo_owner_t o;

    assert_int_equal(kiln__fo_read_owner(NULL, NULL, NULL, &o, NULL), 0);
    assert_false(o.set);
    assert_int_equal(kiln__fo_read_owner(
                         fx_chown(fx_user("bob", 0, 0), fx_user("grp", 0, 0)),
                         v, v, &o, NULL),
                     0);
    assert_true(o.set);
    assert_int_equal(o.uid, 12); /* first match */
    assert_int_equal(o.gid, 56);
    assert_int_equal(kiln__fo_read_owner(fx_chown(fx_user("num", 0, 0), NULL),
                                         v, NULL, &o, NULL),
                     0);
    assert_int_equal(o.uid, 0); /* unparsable number: 0 */
    assert_int_equal(
        kiln__fo_read_owner(fx_chown(fx_user("bob", 0, 0), fx_user(NULL, 0, 8)),
                            empty, NULL, &o, NULL),
        0);
    assert_int_equal(o.uid, 0); /* no /etc/passwd: 0 */
    assert_int_equal(o.gid, 8);
    assert_int_equal(
        kiln__fo_read_owner(fx_chown(NULL, NULL), NULL, NULL, &o, NULL), 0);
    assert_true(o.set); /* an empty ChownOpt is 0:0 */
    assert_int_equal(o.uid, 0);
}

/* A chain of actions that each read only the previous one: one layer. */
static void test_chain_one_layer(void **state)
{
    (void)state;
    char *base = fx_dir("base");
    fx_file(base, "keep", "k", 0644);
    kiln_snap_view_t *in[] = {fx_view1(base)};
    Pb__FileAction *acts[] = {
        fx_mkdir(0, "/d", 0755, true),   fx_mkfile(1, "/d/f", 0644, "1"),
        fx_mkfile(2, "/d/g", 0644, "2"), fx_rm(3, "/d/g", false, false),
        fx_symlink(4, "f", "/d/l"),
    };
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, acts, 5, &r), 0);
    assert_int_equal(r->n_outputs, 1);
    assert_int_equal(r->outputs[0].base, 0);
    assert_int_equal(r->outputs[0].n_layers, 1);
    assert_true(r->outputs[0].layers[0].created);
    assert_int_equal(r->n_discard, 0);
    kiln_snap_view_t *v = fx_out(in, 1, r, 0);
    fx_assert_file(v, "/keep", "k");
    fx_assert_file(v, "/d/f", "1");
    fx_assert_missing(v, "/d/g");
    fx_assert_link(v, "/d/l", "f");
}

/* Action 0 is read twice (base of 1, source of 2): it ends its layer. */
static void test_chain_reuse(void **state)
{
    (void)state;
    kiln_snap_view_t *in[] = {fx_view1(fx_dir("base"))};
    Pb__FileAction *acts[] = {
        fx_mkdir(0, "/a", 0755, false),
        fx_mkfile(1, "/a/f", 0644, "f"),
        fx_copy(2, 1, "/a", "/b"),
    };
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, acts, 3, &r), 0);
    assert_int_equal(r->outputs[0].base, 0);
    assert_int_equal(r->outputs[0].n_layers, 2);
    kiln_snap_view_t *v = fx_out(in, 1, r, 0);
    fx_assert_file(v, "/a/f", "f");
    assert_true(S_ISDIR(fx_mode(v, "/b")));
    fx_assert_missing(v, "/b/f"); /* copied from action 0's state */
}

/* A state only read as a copy source has a layer in no output. */
static void test_chain_discard(void **state)
{
    (void)state;
    kiln_snap_view_t *in[] = {fx_view1(fx_dir("base"))};
    Pb__FileAction *acts[] = {
        fx_mkfile(-1, "/x", 0644, "from scratch"),
        fx_mkdir(0, "/d", 0755, false),
        fx_copy(2, 1, "/x", "/d/"),
    };
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, acts, 3, &r), 0);
    assert_int_equal(r->outputs[0].base, 0);
    assert_int_equal(r->outputs[0].n_layers, 1);
    assert_int_equal(r->n_discard, 1);
    kiln_snap_view_t *v = fx_out(in, 1, r, 0);
    fx_assert_file(v, "/d/x", "from scratch");
    fx_assert_missing(v, "/x");
}

/* One state as the base of two actions, and two outputs. */
static void test_two_outputs(void **state)
{
    (void)state;
    kiln_snap_view_t *in[] = {fx_view1(fx_dir("base"))};
    Pb__FileAction *acts[] = {
        fx_mkdir(0, "/a", 0755, false), fx_mkfile(1, "/a/1", 0644, "1"),
        fx_mkfile(1, "/a/2", 0644, "2"),
        fx_rm(0, "/nothing", true, false), /* not needed: not run */
    };
    kiln_fileop_result_t *r;

    acts[1]->output = 1;
    acts[2]->output = 0;
    assert_int_equal(fx_run(in, 1, acts, 4, &r), 0);
    assert_int_equal(r->n_outputs, 2);
    assert_int_equal(r->outputs[0].n_layers, 2);
    assert_int_equal(r->outputs[1].n_layers, 2);
    assert_string_equal(r->outputs[0].layers[0].dir,
                        r->outputs[1].layers[0].dir);
    kiln_snap_view_t *v0 = fx_out(in, 1, r, 0), *v1 = fx_out(in, 1, r, 1);
    fx_assert_file(v0, "/a/2", "2");
    fx_assert_missing(v0, "/a/1");
    fx_assert_file(v1, "/a/1", "1");
    fx_assert_missing(v1, "/a/2");
}

/* An action that changes nothing leaves no layer. */
static void test_empty_layer_dropped(void **state)
{
    (void)state;
    kiln_snap_view_t *in[] = {fx_view1(fx_dir("base"))};
    Pb__FileAction *acts[] = {fx_rm(0, "/nothing", true, false)};
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, acts, 1, &r), 0);
    assert_int_equal(r->outputs[0].base, 0);
    assert_int_equal(r->outputs[0].n_layers, 0);
    assert_int_equal(r->n_discard, 1);
}

/* A long chain (as the Go client writes one per Dockerfile step group)
 * runs without deep recursion, into a single layer. */
static void test_long_chain(void **state)
{
    (void)state;
    enum { N = 3000 };
    Pb__FileAction **acts = fx_alloc(N * sizeof(*acts));
    kiln_fileop_result_t *r;

    acts[0] = fx_mkdir(-1, "/d", 0755, false);
    for (size_t j = 1; j < N; j++) {
        char *name = fx_alloc(32);
        snprintf(name, 32, "/d/f%zu", j);
        acts[j] = fx_mkfile((int64_t)j - 1, name, 0644, "x");
    }
    assert_int_equal(fx_run(scratch_in, 0, acts, N, &r), 0);
    assert_int_equal(r->outputs[0].n_layers, 1);
    kiln_snap_view_t *v = fx_out(scratch_in, 0, r, 0);
    fx_assert_file(v, "/d/f2999", "x");
}

static void test_index_errors(void **state)
{
    (void)state;
    kiln_snap_view_t *in[] = {fx_view1(fx_dir("base"))};
    Pb__FileAction *a[] = {fx_mkdir(5, "/a", 0755, false)};
    Pb__FileAction *loop[] = {fx_mkdir(2, "/a", 0755, false),
                              fx_mkdir(1, "/b", 0755, false)};
    Pb__FileAction *dup[] = {fx_mkdir(0, "/a", 0755, false),
                             fx_mkdir(1, "/b", 0755, false)};
    Pb__FileAction *gap[] = {fx_mkdir(0, "/a", 0755, false)};
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, a, 1, &r), KILN_EINVAL);
    fx_assert_err("invalid input index 5");
    loop[1]->output = 0;
    assert_int_equal(fx_run(in, 1, loop, 2, &r), KILN_EINVAL);
    fx_assert_err("loop from index");
    dup[0]->output = 0;
    dup[1]->output = 0;
    assert_int_equal(fx_run(in, 1, dup, 2, &r), KILN_EINVAL);
    fx_assert_err("duplicate output 0");
    gap[0]->output = 1;
    assert_int_equal(fx_run(in, 1, gap, 1, &r), KILN_EINVAL);
    fx_assert_err("missing output index 0");
}

static void test_missing_source_message(void **state)
{
    (void)state;
    char *src = fx_dir("src");
    fx_file(src, "src/other", "o", 0644);
    kiln_snap_view_t *in[] = {fx_view1(fx_dir("base")), fx_view1(src)};
    Pb__FileAction *acts[] = {fx_mkdir(0, "/dst", 0755, false),
                              fx_copy(2, 1, "/src/missing", "/dst")};
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 2, acts, 2, &r), KILN_ENOENT);
    assert_string_equal(fx->err.message,
                        "action 1: copy /src/missing to /dst: /src/missing: "
                        "no such file or directory");
}

static void test_cancel(void **state)
{
    (void)state;
    Pb__FileAction *acts[] = {fx_mkdir(-1, "/a", 0755, false)};
    kiln_fileop_result_t *r;

    fx->cancel = true;
    assert_int_equal(fx_run(scratch_in, 0, acts, 1, &r), KILN_ECANCELED);
}

/* The FileOp BuildKit's Go client made for e_run_file: mkdir, mkfile,
 * copy from the image, mkfile, rm, in one layer. */
static void test_vector_e_run_file(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = kt_read_data("llb/e_run_file.pb", &len);
    kiln_definition_t *def = NULL;
    kiln_error_t err;
    const kiln__vertex_t *fv = NULL;
    char *image = fx_dir("image");
    kiln_fileop_result_t *r;

    fx_file(image, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
    kiln_snap_view_t *in[] = {fx_view1(fx_dir("out")), fx_view1(image)};
    assert_int_equal(kiln_definition_load(data, len, &err, &def), 0);
    free(data);
    for (size_t i = 0; i < def->n_vertices; i++) {
        if (def->vertices[i].kind == KILN_OP_FILE) {
            fv = &def->vertices[i];
        }
    }
    assert_non_null(fv);
    assert_int_equal(fv->op->n_inputs, 2);
    assert_int_equal(
        fx_run(in, 2, fv->op->file->actions, fv->op->file->n_actions, &r), 0);
    assert_int_equal(r->outputs[0].n_layers, 1);
    kiln_snap_view_t *v = fx_out(in, 2, r, 0);
    assert_int_equal(fx_mode(v, "/d"), S_IFDIR | 0755);
    fx_assert_file(v, "/d/f", "hello\n");
    assert_int_equal(fx_mode(v, "/d/f"), S_IFREG | 0644);
    fx_assert_file(v, "/d/passwd", "root:x:0:0::/root:/bin/sh\n");
    fx_assert_missing(v, "/tmpfile");
    kiln_definition_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
        T(test_mkdir),
        T(test_mkdir_errors),
        T(test_mkfile),
        T(test_timestamps),
        T(test_rm),
        T(test_symlink),
        T(test_owner_lookup),
        T(test_owner_by_id_and_name),
        T(test_chain_one_layer),
        T(test_chain_reuse),
        T(test_chain_discard),
        T(test_two_outputs),
        T(test_empty_layer_dropped),
        T(test_long_chain),
        T(test_index_errors),
        T(test_missing_source_message),
        T(test_cancel),
        T(test_vector_e_run_file),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
