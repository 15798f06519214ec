/*
 * core/fileop: nothing an action does reads or writes outside its
 * snapshot. The trees hold symlinks that point out of the snapshot: to a
 * real directory of the host (absolute and through "../.."), to
 * /etc/passwd, as intermediate components of sources and destinations, and
 * as the destination itself. Every test checks afterwards that the host
 * directory still holds exactly its one file.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>

#include "fileop_fixture.h"

#include "fileop/fileop_int.h"

static char *host;    /* a real directory outside every layer */
static char up[1024]; /* "../../../..../<host>" */
static char *base;    /* the hostile layer */
static kiln_snap_view_t *in[1];
static struct stat passwd_before;

static int setup(void **state)
{
    int rc = fx_setup(state);

    if (rc != 0) {
        return rc;
    }
    host = fx_dir("host");
    fx_file(host, "secret", "S", 0644);
    snprintf(up, sizeof(up), "../../../../../../../../../../..%s", host);
    base = fx_dir("hostile");
    fx_link(base, "abs", host);
    fx_link(base, "up", up);
    fx_link(base, "etc_link", "/etc");
    fx_link(base, "passwd_link", "/etc/passwd");
    fx_link(base, "dstlink", "/etc/passwd");
    fx_link(base, "dir/out", "/etc/passwd");
    fx_file(base, "dir/in", "I", 0644);
    fx_file(base, "file", "data", 0644);
    in[0] = fx_view1(base);
    stat("/etc/passwd", &passwd_before);
    return 0;
}

/* The host directory and /etc/passwd are as they were. */
static int check_host(void **state)
{
    DIR *d = opendir(host);
    struct dirent *de;
    struct stat st;
    size_t n = 0;
    int fd;
    char buf[8] = {0};

    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            assert_string_equal(de->d_name, "secret");
            n++;
        }
    }
    closedir(d);
    assert_int_equal(n, 1);
    fd = open(fx_path(host, "secret"), O_RDONLY);
    assert_int_equal(read(fd, buf, sizeof(buf)), 1);
    close(fd);
    assert_string_equal(buf, "S");
    assert_int_equal(stat("/etc/passwd", &st), 0);
    assert_int_equal(st.st_mtime, passwd_before.st_mtime);
    assert_int_equal(st.st_size, passwd_before.st_size);
    assert_int_equal(st.st_ino, passwd_before.st_ino);
    return fx_teardown(state);
}

/* The host path, as a path inside the snapshot. */
static char *inside(const char *rel)
{
    return fx_path(host, rel);
}

static void test_writes_through_absolute_link(void **state)
{
    (void)state;
    Pb__FileAction *acts[] = {
        fx_mkdir(0, "/abs", 0755, true), /* makes the link's target */
        fx_mkfile(1, "/abs/evil", 0644, "x"),
        fx_mkdir(2, "/abs/newdir/deep", 0755, true),
        fx_symlink(3, "/etc/shadow", "/abs/newlink"),
        fx_copy(4, 0, "/file", "/abs/copied"),
    };
    Pb__FileAction *nodir[] = {fx_mkfile(0, "/abs/evil", 0644, "x")};
    kiln_fileop_result_t *r;
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 5);

    fx_assert_file(v, inside("evil"), "x");
    assert_true(S_ISDIR(fx_mode(v, inside("newdir/deep"))));
    fx_assert_link(v, inside("newlink"), "/etc/shadow");
    fx_assert_file(v, inside("copied"), "data");
    fx_assert_missing(v, inside("secret")); /* the host's is not seen */
    /* Without it, the link's target directory does not exist. */
    assert_int_equal(fx_run(in, 1, nodir, 1, &r), KILN_ENOENT);
}

static void test_writes_through_relative_escape(void **state)
{
    (void)state;
    Pb__FileAction *acts[] = {
        fx_mkdir(0, "/up/made", 0755, true),
        fx_mkfile(1, "/up/made/f", 0644, "f"),
        fx_mkdir(2, "../../../../escape", 0755, true), /* cleaned: /escape */
    };
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 3);

    fx_assert_file(v, inside("made/f"), "f");
    assert_true(S_ISDIR(fx_mode(v, "/escape")));
}

/* The copy destination is itself a symlink to /etc/passwd: the snapshot's
 * /etc/passwd is written, never the host's. */
static void test_dest_is_symlink(void **state)
{
    (void)state;
    Pb__FileAction *a = fx_copy(0, 0, "/file", "/dstlink");
    Pb__FileAction *acts[] = {a};
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, acts, 1, &r), KILN_ENOENT);
    fx_assert_err("failed to stat /dstlink");
    a->copy->createdestpath = true;
    kiln_snap_view_t *v = fx_run_ok(in, 1, acts, 1);
    fx_assert_link(v, "/dstlink", "/etc/passwd");
    fx_assert_file(v, "/etc/passwd", "data");
    /* mkfile follows the last symlink too. */
    Pb__FileAction *m[] = {fx_mkdir(0, "/etc", 0755, false),
                           fx_mkfile(1, "/passwd_link", 0644, "pw")};
    v = fx_run_ok(in, 1, m, 2);
    fx_assert_link(v, "/passwd_link", "/etc/passwd");
    fx_assert_file(v, "/etc/passwd", "pw");
}

/* Sources through symlinks read the snapshot, not the host. */
static void test_sources_stay_inside(void **state)
{
    (void)state;
    Pb__FileAction *c = fx_copy(0, 0, "/passwd_link", "/got");
    Pb__FileAction *acts[] = {c};
    kiln_fileop_result_t *r;
    kiln_snap_view_t *v;

    c->copy->followsymlink = true;
    assert_int_equal(fx_run(in, 1, acts, 1, &r), KILN_ENOENT);
    fx_assert_err("/passwd_link: no such file or directory");
    c = fx_copy(0, 0, "/abs/secret", "/got");
    acts[0] = c;
    assert_int_equal(fx_run(in, 1, acts, 1, &r), KILN_ENOENT);
    c = fx_copy(0, 0, "/abs/*", "/got/");
    c->copy->allowwildcard = true;
    acts[0] = c;
    assert_true(fx_run(in, 1, acts, 1, &r) < 0);
    /* A symlink inside a copied tree is copied as a symlink. */
    acts[0] = fx_copy(0, 0, "/dir", "/copy");
    v = fx_run_ok(in, 1, acts, 1);
    fx_assert_link(v, "/copy/out", "/etc/passwd");
    fx_assert_file(v, "/copy/in", "I");
    fx_assert_missing(v, "/etc/passwd");
}

static void test_rm_stays_inside(void **state)
{
    (void)state;
    Pb__FileAction *acts[] = {fx_rm(0, "/abs/secret", false, false)};
    Pb__FileAction *link[] = {fx_rm(0, "/abs", false, false)};
    Pb__FileAction *ok[] = {fx_rm(0, "/abs/secret", true, false),
                            fx_rm(1, "/up/*", true, true),
                            fx_rm(2, "/etc_link/passwd", true, false),
                            fx_rm(3, "/abs", true, false)};
    kiln_fileop_result_t *r;

    assert_int_equal(fx_run(in, 1, acts, 1, &r), KILN_ENOENT);
    /* The existence check follows the link inside the snapshot, where its
     * target does not exist (BuildKit's os.Stat would look at the host). */
    assert_int_equal(fx_run(in, 1, link, 1, &r), KILN_ENOENT);
    kiln_snap_view_t *v = fx_run_ok(in, 1, ok, 4);
    fx_assert_missing(v, "/abs"); /* the link itself */
    fx_assert_file(v, "/file", "data");
}

/* A name looked up in an /etc/passwd that links to a host file. */
static void test_owner_lookup_stays_inside(void **state)
{
    (void)state;
    char *l = fx_dir("users"), *hostetc = fx_dir("hostetc");
    fx_file(hostetc, "passwd", "daemon:x:77:77::/:/bin/sh\n", 0644);
    fx_file(hostetc, "group", "daemon:x:77:\n", 0644);
    fx_link(l, "etc/passwd", fx_path(hostetc, "passwd"));
    fx_link(l, "etc/group", fx_path(hostetc, "group"));
    kiln_snap_view_t *ins[] = {fx_view1(l)};
    Pb__FileAction *acts[] = {fx_mkfile(0, "/f", 0644, "x")};
    struct stat st;

    if (geteuid() != 0) {
        skip();
    }
    acts[0]->mkfile->owner =
        fx_chown(fx_user("daemon", 0, 0), fx_user("daemon", 0, 0));
    kiln_snap_view_t *v = fx_run_ok(ins, 1, acts, 1);
    assert_int_equal(fx_stat(v, "/f", &st), 0);
    assert_int_equal(st.st_uid, 0); /* "daemon" is the host's: not found */
    assert_int_equal(st.st_gid, 0);
}

/* Archives whose entries try to leave the extraction directory. */
static void write_tar(const char *path, const char *const *names,
                      const char *const *links, size_t n)
{
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();

    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        archive_entry_clear(e);
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_filetype(e, links[i] ? AE_IFLNK : AE_IFREG);
        if (links[i] != NULL) {
            archive_entry_set_symlink(e, links[i]);
        } else {
            archive_entry_set_size(e, 1);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (links[i] == NULL) {
            archive_write_data(a, "z", 1);
        }
    }
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
}

static int unpack(const char *tar, kiln_snap_view_t **out)
{
    kiln_snap_view_t *ins[] = {in[0], fx_view1(fx_path(fx->root, "tars"))};
    Pb__FileAction *acts[] = {fx_copy(0, 1, tar, "/ex")};
    kiln_fileop_result_t *r;
    int rc;

    acts[0]->copy->attemptunpackdockercompatibility = true;
    rc = fx_run(ins, 2, acts, 1, &r);
    if (rc == 0) {
        *out = fx_out(ins, 2, r, 0);
    }
    return rc;
}

static void test_unpack_stays_inside(void **state)
{
    (void)state;
    char *t = fx_dir("tars");
    const char *dotdot[] = {"../evil"}, *nol[] = {NULL, NULL};
    const char *viaabs[] = {"l", "l/evilfile"}, *absl[] = {"/", NULL};
    const char *viarel[] = {"r", "r/x"}, *rell[] = {"../../..", NULL};
    const char *viahost[] = {"h", "h/secret"}, *hostl[] = {host, NULL};
    kiln_snap_view_t *v;

    write_tar(fx_path(t, "dotdot.tar"), dotdot, nol, 1);
    write_tar(fx_path(t, "abs.tar"), viaabs, absl, 2);
    write_tar(fx_path(t, "rel.tar"), viarel, rell, 2);
    write_tar(fx_path(t, "host.tar"), viahost, hostl, 2);
    assert_int_equal(unpack("/dotdot.tar", &v), KILN_EINVAL);
    fx_assert_err("outside extraction root");
    assert_int_equal(unpack("/abs.tar", &v), 0);
    fx_assert_file(v, "/ex/evilfile", "z"); /* "/" is the extraction dir */
    fx_assert_missing(v, "/evilfile");
    assert_int_equal(unpack("/rel.tar", &v), KILN_EINVAL);
    fx_assert_err("points outside extraction root");
    assert_int_equal(unpack("/host.tar", &v), 0);
    fx_assert_file(v, fx_path(fx_path("/ex", host + 1), "secret"), "z");
    fx_assert_link(v, "/ex/h", host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, check_host)
        T(test_writes_through_absolute_link),
        T(test_writes_through_relative_escape),
        T(test_dest_is_symlink),
        T(test_sources_stay_inside),
        T(test_rm_stays_inside),
        T(test_owner_lookup_stays_inside),
        T(test_unpack_stays_inside),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
