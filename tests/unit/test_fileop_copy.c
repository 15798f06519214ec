/*
 * core/fileop: the copy action, with BuildKit's path semantics and every
 * option of FileActionCopy.
 */
#include <archive.h>
#include <archive_entry.h>

#include "fileop_fixture.h"

#include "fileop/fileop_int.h"

/* Source (input 1) and destination (input 0) trees shared by the tests. */
static kiln_snap_view_t *in[2];

static int setup(void **state)
{
    int rc = fx_setup(state);
    char *s, *d;

    if (rc != 0) {
        return rc;
    }
    s = fx_dir("src-layer");
    fx_file(s, "src/file.txt", "F", 0640);
    fx_mtime(s, "src/file.txt", 1000000);
    fx_file(s, "src/dir/a.txt", "A", 0644);
    fx_file(s, "src/dir/sub/b.txt", "B", 0644);
    fx_link(s, "src/dir/link", "a.txt");
    fx_link(s, "src/flink", "file.txt");
    fx_link(s, "src/dlink", "dir");
    fx_file(s, "src/plain.tar.gz", "not an archive", 0644);
    d = fx_dir("dst-layer");
    fx_file(d, "dst/existing", "E", 0644);
    fx_file(d, "dst/sub/old", "O", 0644);
    fx_mkdir_in(d, "rep/a.txt", 0755);
    in[0] = fx_view1(d);
    in[1] = fx_view1(s);
    return 0;
}

static kiln_snap_view_t *copy1(Pb__FileAction *a)
{
    Pb__FileAction *acts[] = {a};
    return fx_run_ok(in, 2, acts, 1);
}

static int copy_err(Pb__FileAction *a)
{
    Pb__FileAction *acts[] = {a};
    kiln_fileop_result_t *r;
    int rc = fx_run(in, 2, acts, 1, &r);

    assert_true(rc < 0);
    return rc;
}

static void test_file_paths(void **state)
{
    (void)state;
    kiln_snap_view_t *v = copy1(fx_copy(0, 1, "/src/file.txt", "/dst/new"));
    struct stat st;

    fx_assert_file(v, "/dst/new", "F");
    assert_int_equal(fx_stat(v, "/dst/new", &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0640);
    assert_int_equal(st.st_mtime, 1000000);
    v = copy1(fx_copy(0, 1, "src/file.txt", "/dst")); /* into the dir */
    fx_assert_file(v, "/dst/file.txt", "F");
    v = copy1(fx_copy(0, 1, "/src/file.txt", "/dst/existing")); /* replace */
    fx_assert_file(v, "/dst/existing", "F");
    v = copy1(fx_copy(0, 1, "/src/file.txt", "/newdir/")); /* trailing / */
    fx_assert_file(v, "/newdir/file.txt", "F");
    assert_int_equal(fx_mode(v, "/newdir"), S_IFDIR | 0755);
}

static void test_dir_paths(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir", "/dst");
    kiln_snap_view_t *v = copy1(fx_copy(0, 1, "/src/dir", "/dst/copy"));

    fx_assert_file(v, "/dst/copy/a.txt", "A");
    fx_assert_file(v, "/dst/copy/sub/b.txt", "B");
    fx_assert_link(v, "/dst/copy/link", "a.txt");
    v = copy1(fx_copy(0, 1, "/src/dir", "/dst")); /* existing: nested */
    fx_assert_file(v, "/dst/dir/a.txt", "A");
    fx_assert_missing(v, "/dst/a.txt");
    c->copy->dircopycontents = true; /* merged into /dst */
    v = copy1(c);
    fx_assert_file(v, "/dst/a.txt", "A");
    fx_assert_file(v, "/dst/sub/b.txt", "B");
    fx_assert_file(v, "/dst/sub/old", "O");
    fx_assert_file(v, "/dst/existing", "E");
    v = copy1(fx_copy(0, 1, "/src/dir/.", "/dst")); /* "dir/." */
    fx_assert_file(v, "/dst/a.txt", "A");
    fx_assert_missing(v, "/dst/dir");
    c = fx_copy(0, 1, "/src/dir", "/fresh");
    c->copy->dircopycontents = true;
    v = copy1(c);
    fx_assert_file(v, "/fresh/a.txt", "A");
}

static void test_create_dest_path(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/file.txt", "/no/such/x");
    kiln_snap_view_t *v;

    copy_err(c);
    fx_assert_err("action 0: copy /src/file.txt to /no/such/x: failed to "
                  "stat /no/such/x");
    c->copy->createdestpath = true;
    v = copy1(c);
    fx_assert_file(v, "/no/such/x", "F");
    assert_int_equal(fx_mode(v, "/no/such"), S_IFDIR | 0755);
}

static void test_follow_symlink(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/flink", "/dst/f");
    kiln_snap_view_t *v = copy1(c);

    fx_assert_link(v, "/dst/f", "file.txt");
    c->copy->followsymlink = true;
    v = copy1(c);
    fx_assert_file(v, "/dst/f", "F");
    c = fx_copy(0, 1, "/src/dlink", "/dd");
    c->copy->followsymlink = true;
    v = copy1(c);
    fx_assert_file(v, "/dd/sub/b.txt", "B");
}

static void test_wildcards(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir/*.txt", "/w/");
    kiln_snap_view_t *v;

    c->copy->allowwildcard = true;
    v = copy1(c);
    fx_assert_file(v, "/w/a.txt", "A");
    fx_assert_missing(v, "/w/b.txt");
    c = fx_copy(0, 1, "/src/*/sub", "/w2/");
    c->copy->allowwildcard = true;
    c->copy->createdestpath = true;
    v = copy1(c);
    fx_assert_file(v, "/w2/sub/b.txt", "B");
    c = fx_copy(0, 1, "/src/*.none", "/w3/");
    c->copy->allowwildcard = true;
    copy_err(c);
    fx_assert_err("/src/*.none not found");
    c->copy->allowemptywildcard = true;
    v = copy1(c);
    fx_assert_missing(v, "/w3");
}

static void test_patterns(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir", "/out");
    static char *inc[] = {"**/*.txt"}, *exc[] = {"sub"};
    static char *exc2[] = {"sub", "!sub/b.txt", "link"};
    kiln_snap_view_t *v;

    c->copy->include_patterns = inc;
    c->copy->n_include_patterns = 1;
    c->copy->exclude_patterns = exc;
    c->copy->n_exclude_patterns = 1;
    v = copy1(c);
    fx_assert_file(v, "/out/a.txt", "A");
    fx_assert_missing(v, "/out/sub");
    fx_assert_missing(v, "/out/link");
    c = fx_copy(0, 1, "/src/dir", "/out");
    c->copy->exclude_patterns = exc2;
    c->copy->n_exclude_patterns = 3;
    v = copy1(c);
    fx_assert_file(v, "/out/a.txt", "A");
    fx_assert_file(v, "/out/sub/b.txt", "B");
    fx_assert_missing(v, "/out/link");
}

/* Include patterns create the directories leading to what they match,
 * with the source's metadata; the top directory merged into keeps its own
 * mode; a copy may read the state it writes over. */
static void test_include_parents_and_merge(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir", "/out");
    static char *inc[] = {"sub/b.txt"};
    kiln_snap_view_t *v;

    c->copy->include_patterns = inc;
    c->copy->n_include_patterns = 1;
    v = copy1(c);
    fx_assert_file(v, "/out/sub/b.txt", "B");
    fx_assert_missing(v, "/out/a.txt");
    fx_assert_missing(v, "/out/link");
    c = fx_copy(0, 1, "/src/dir", "/dst");
    c->copy->dircopycontents = true;
    c->copy->mode = 0700; /* (0600 dirs could not be read as non-root) */
    v = copy1(c);
    assert_int_equal(fx_mode(v, "/dst"), S_IFDIR | 0755);
    assert_int_equal(fx_mode(v, "/dst/sub"), S_IFDIR | 0700);
    assert_int_equal(fx_mode(v, "/dst/a.txt"), S_IFREG | 0700);
    v = copy1(fx_copy(0, 0, "/dst/existing", "/dst/again"));
    fx_assert_file(v, "/dst/again", "E");
}

static void test_modes(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir", "/m");
    kiln_snap_view_t *v;

    c->copy->mode = 0701;
    v = copy1(c);
    assert_int_equal(fx_mode(v, "/m/a.txt"), S_IFREG | 0701);
    assert_int_equal(fx_mode(v, "/m/sub"), S_IFDIR | 0701);
    assert_true(S_ISLNK(fx_mode(v, "/m/link")));
    c = fx_copy(0, 1, "/src/dir", "/m");
    c->copy->modestr = "+x";
    v = copy1(c);
    assert_int_equal(fx_mode(v, "/m/a.txt"), S_IFREG | 0755);
    assert_int_equal(fx_mode(v, "/m/sub/b.txt"), S_IFREG | 0755);
    assert_int_equal(fx_mode(v, "/m"), S_IFDIR | 0755);
    c = fx_copy(0, 1, "/src/file.txt", "/f");
    c->copy->modestr = "u+x,g-r";
    v = copy1(c);
    assert_int_equal(fx_mode(v, "/f"), S_IFREG | 0700);
    c->copy->modestr = "bogus";
    copy_err(c);
    fx_assert_err("invalid mode string");
}

static void test_owner_and_time(void **state)
{
    (void)state;
    const int64_t ts = 1600000000LL * 1000000000;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir", "/new/parent/o");
    bool root = geteuid() == 0; /* changing owners needs root */
    struct stat st;
    kiln_snap_view_t *v;

    if (root) {
        c->copy->owner =
            fx_chown(fx_user(NULL, 0, 1000), fx_user(NULL, 0, 1001));
    }
    c->copy->timestamp = ts;
    c->copy->createdestpath = true;
    v = copy1(c);
    const char *paths[] = {"/new/parent", "/new/parent/o",
                           "/new/parent/o/a.txt", "/new/parent/o/sub/b.txt",
                           "/new/parent/o/link"};
    for (size_t i = 0; i < KILN_ARRAY_SIZE(paths); i++) {
        assert_int_equal(fx_stat(v, paths[i], &st), 0);
        assert_int_equal(st.st_uid, root ? 1000 : geteuid());
        assert_int_equal(st.st_gid, root ? 1001 : getegid());
        if (i > 0) {
            assert_int_equal(kiln__fo_mtime_ns(&st), ts);
        }
    }
}

static void test_replace(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir", "/rep");
    kiln_snap_view_t *v;

    c->copy->dircopycontents = true;
    copy_err(c); /* /rep/a.txt is a directory */
    fx_assert_err("action 0: copy /src/dir to /rep: ");
    c->copy->alwaysreplaceexistingdestpaths = true;
    v = copy1(c);
    fx_assert_file(v, "/rep/a.txt", "A");
}

static void test_required_paths(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 1, "/src/dir", "/req");
    static char *ok[] = {"a.txt", "sub/b.txt"}, *bad[] = {"a.txt", "nope"};
    kiln_snap_view_t *v;

    c->copy->required_paths = ok;
    c->copy->n_required_paths = 2;
    v = copy1(c);
    fx_assert_file(v, "/req/a.txt", "A");
    c->copy->required_paths = bad;
    copy_err(c);
    fx_assert_err("\"/src/dir/nope\": not found");
}

/* Writes a tar (gzip-compressed if gz) into a hand-made layer. */
static void make_tar(const char *path, bool gz)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    const struct {
        const char *name;
        mode_t type;
        const char *data;
    } ents[] = {{"top/", AE_IFDIR, NULL},
                {"top/x", AE_IFREG, "X"},
                {"top/ln", AE_IFLNK, "x"},
                {"./rel", AE_IFREG, "R"},
                {"hard", 0, "top/x"}}; /* type 0: a hard link */

    if (gz) {
        archive_write_add_filter_gzip(a);
    }
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < KILN_ARRAY_SIZE(ents); i++) {
        archive_entry_clear(e);
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_filetype(e, ents[i].type ? ents[i].type : AE_IFREG);
        if (ents[i].type == 0) {
            archive_entry_set_hardlink(e, ents[i].data);
        }
        archive_entry_set_perm(e, ents[i].type == AE_IFDIR ? 0750 : 0640);
        archive_entry_set_mtime(e, 1234567, 0);
        if (ents[i].type == AE_IFLNK) {
            archive_entry_set_symlink(e, ents[i].data);
        } else if (ents[i].type == AE_IFREG) {
            archive_entry_set_size(e, (la_int64_t)strlen(ents[i].data));
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (ents[i].type == AE_IFREG) {
            archive_write_data(a, ents[i].data, strlen(ents[i].data));
        }
    }
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
}

static void test_unpack(void **state)
{
    (void)state;
    char *s = fx_dir("archives");
    struct stat st;

    make_tar(fx_path(s, "a.tar.gz"), true);
    make_tar(fx_path(s, "b.tar"), false);
    kiln_snap_view_t *src = fx_view1(s), *v;
    kiln_snap_view_t *ins[] = {in[0], src};
    Pb__FileAction *acts[] = {fx_copy(0, 1, "/a.tar.gz", "/ex"),
                              fx_copy(2, 1, "b.tar", "/ex2/")};

    acts[0]->copy->attemptunpackdockercompatibility = true;
    acts[1]->copy->attemptunpackdockercompatibility = true;
    v = fx_run_ok(ins, 2, acts, 2);
    fx_assert_file(v, "/ex/top/x", "X");
    fx_assert_link(v, "/ex/top/ln", "x");
    fx_assert_file(v, "/ex/rel", "R");
    fx_assert_file(v, "/ex/hard", "X"); /* a hard link: copied */
    assert_int_equal(fx_mode(v, "/ex/top"), S_IFDIR | 0750);
    assert_int_equal(fx_stat(v, "/ex/top/x", &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0640);
    assert_int_equal(st.st_mtime, 1234567);
    assert_int_equal(fx_stat(v, "/ex/top", &st), 0);
    assert_int_equal(st.st_mtime, 1234567);
    fx_assert_file(v, "/ex2/top/x", "X");
    /* Not an archive: copied as a file. */
    Pb__FileAction *c = fx_copy(0, 1, "/src/plain.tar.gz", "/p");
    c->copy->attemptunpackdockercompatibility = true;
    v = copy1(c);
    fx_assert_file(v, "/p", "not an archive");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, fx_teardown)
        T(test_file_paths),
        T(test_dir_paths),
        T(test_create_dest_path),
        T(test_follow_symlink),
        T(test_wildcards),
        T(test_patterns),
        T(test_include_parents_and_merge),
        T(test_modes),
        T(test_owner_and_time),
        T(test_replace),
        T(test_required_paths),
        T(test_unpack),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
