/*
 * Layer unpacking (core/oci/unpack.c): plain, gzip and zstd blobs with
 * both digests reported and checked, whiteouts kept as markers, hard
 * links, and every hostile archive the header lists, each built here with
 * libarchive's writer: ".." escapes, absolute paths, writes through an
 * earlier symlink, hard links leaving the layer or crossing a symlink,
 * device nodes without root, and a decompression bomb.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "oci/unpack.h"

static kiln_error_t E;

#define OK(x)                                                                  \
    do {                                                                       \
        int rc_ = (x);                                                         \
        if (rc_ != 0) {                                                        \
            fail_msg("%s = %d: %s", #x, rc_, E.message);                       \
        }                                                                      \
    } while (0)

/* One tar entry: type 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c'
 * char device, 'p' fifo; `arg` is the content or the link target. */
typedef struct tent {
    char type;
    const char *path;
    const char *arg;
    int mode;
} tent_t;

static la_ssize_t buf_write(struct archive *a, void *ud, const void *p,
                            size_t n)
{
    (void)a;
    kiln__buf_append(ud, p, n);
    return (la_ssize_t)n;
}

/* A tar of `ents` (n of them), compressed with `filter` (0, 'g', 'z'). */
static kiln__buf_t make_tar(const tent_t *ents, size_t n, char filter)
{
    kiln__buf_t b = KILN_BUF_INIT;
    struct archive *a = archive_write_new();

    assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
    if (filter == 'g') {
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    } else if (filter == 'z') {
        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    }
    archive_write_set_bytes_in_last_block(a, 1);
    assert_int_equal(archive_write_open2(a, &b, NULL, buf_write, NULL, NULL),
                     ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        const tent_t *t = &ents[i];
        size_t len = t->type == 'f' && t->arg ? strlen(t->arg) : 0;
        archive_entry_set_pathname(e, t->path);
        archive_entry_set_perm(e, t->mode ? (mode_t)t->mode : 0644);
        archive_entry_set_mtime(e, 1600000000, 0);
        switch (t->type) {
        case 'f':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)len);
            break;
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, t->arg);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, t->arg);
            break;
        case 'c':
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdev(e, makedev(1, 3));
            break;
        default:
            archive_entry_set_filetype(e, AE_IFIFO);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (len > 0) {
            assert_int_equal(archive_write_data(a, t->arg, len),
                             (la_ssize_t)len);
        }
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    assert_true(kiln__buf_ok(&b));
    return b;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

typedef struct fx {
    char top[64];  /* holds out/ and canary/ */
    char out[96];  /* the layer directory */
    char side[96]; /* must stay empty */
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->top, sizeof(f->top), "/tmp/kiln-oci-unpack-XXXXXX");
    assert_non_null(mkdtemp(f->top));
    snprintf(f->out, sizeof(f->out), "%s/out", f->top);
    snprintf(f->side, sizeof(f->side), "%s/side", f->top);
    assert_int_equal(mkdir(f->out, 0755), 0);
    assert_int_equal(mkdir(f->side, 0755), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;

    nftw(f->top, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Unpacks the entries into the fixture's layer directory. */
static int unpack(fx_t *f, const tent_t *ents, size_t n)
{
    kiln__buf_t b = make_tar(ents, n, 0);
    int rc = kiln__oci_unpack_mem(b.data, b.len, f->out, NULL, NULL, &E);

    kiln__buf_free(&b);
    return rc;
}

static bool exists(const char *dir, const char *rel)
{
    char p[512];
    struct stat st;

    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return lstat(p, &st) == 0;
}

static void assert_side_empty(fx_t *f)
{
    assert_false(exists(f->side, "pwned"));
    assert_false(exists(f->top, "pwned"));
    assert_false(exists(f->top, "evil"));
}

static void test_digests(void **state)
{
    const tent_t ents[] = {{'d', "etc", NULL, 0755},
                           {'f', "etc/hosts", "127.0.0.1 localhost\n", 0644}};
    const char filters[] = {0, 'g', 'z'};
    const kiln_oci_comp_t comps[] = {KILN_OCI_COMP_NONE, KILN_OCI_COMP_GZIP,
                                     KILN_OCI_COMP_ZSTD};
    kiln__buf_t plain = make_tar(ents, 2, 0);
    char diff[KILN_DIGEST_STRLEN + 1];
    fx_t *f = *state;

    OK(kiln__sha256_digest(plain.data, plain.len, diff));
    for (size_t i = 0; i < 3; i++) {
        kiln__buf_t b = make_tar(ents, 2, filters[i]);
        char dig[KILN_DIGEST_STRLEN + 1], dir[128];
        kiln_oci_unpack_opts_t o = {0, dig, diff};
        kiln_oci_unpack_result_t r;
        OK(kiln__sha256_digest(b.data, b.len, dig));
        snprintf(dir, sizeof(dir), "%s/l%zu", f->top, i);
        assert_int_equal(mkdir(dir, 0755), 0);
        OK(kiln__oci_unpack_mem(b.data, b.len, dir, &o, &r, &E));
        assert_string_equal(r.digest, dig);
        assert_string_equal(r.diff_id, diff);
        assert_int_equal(r.comp, comps[i]);
        assert_int_equal(r.blob_bytes, b.len);
        assert_int_equal(r.tar_bytes, plain.len);
        assert_int_equal(r.entries, 2);
        assert_true(exists(dir, "etc/hosts"));
        /* A wrong expected diff_id: an error naming both. */
        o.expect_diff_id = "sha256:"
                           "0000000000000000000000000000000000000000000000000"
                           "000000000000000";
        snprintf(dir, sizeof(dir), "%s/m%zu", f->top, i);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(kiln__oci_unpack_mem(b.data, b.len, dir, &o, &r, &E),
                         KILN_EBADMSG);
        assert_non_null(strstr(E.message, "diff_id mismatch"));
        assert_non_null(strstr(E.message, o.expect_diff_id));
        assert_non_null(strstr(E.message, diff));
        kiln__buf_free(&b);
    }
    kiln__buf_free(&plain);
}

static void test_whiteouts_and_links(void **state)
{
    const tent_t ents[] = {
        {'d', "./", NULL, 0711},          {'f', ".wh.gone", "", 0644},
        {'d', "d", NULL, 0555},           {'f', "d/.wh..wh..opq", "", 0644},
        {'f', "d/f", "data", 0600},       {'h', "d/g", "d/f", 0},
        {'l', "d/s", "../etc/passwd", 0}, {'h', "d/hs", "d/s", 0},
        {'f', "/abs/file", "x", 0644},    {'f', "dup", "one", 0644},
        {'f', "dup", "two", 0644},
    };
    fx_t *f = *state;
    struct stat a, b;
    char p[256], q[256], t[64];

    OK(unpack(f, ents, KILN_ARRAY_SIZE(ents)));
    snprintf(p, sizeof(p), "%s/.wh.gone", f->out);
    assert_int_equal(lstat(p, &a), 0);
    assert_true(S_ISREG(a.st_mode) && a.st_size == 0);
    snprintf(p, sizeof(p), "%s/d/.wh..wh..opq", f->out);
    assert_int_equal(lstat(p, &a), 0);
    assert_true(S_ISREG(a.st_mode) && a.st_size == 0);
    snprintf(p, sizeof(p), "%s/d/f", f->out);
    snprintf(q, sizeof(q), "%s/d/g", f->out);
    assert_int_equal(lstat(p, &a), 0);
    assert_int_equal(lstat(q, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    assert_int_equal(a.st_mode & 07777, 0600);
    assert_int_equal(a.st_mtim.tv_sec, 1600000000);
    snprintf(p, sizeof(p), "%s/d/hs", f->out);
    assert_int_equal(lstat(p, &a), 0);
    assert_true(S_ISLNK(a.st_mode));
    assert_int_equal(readlink(p, t, sizeof(t)), 13);
    snprintf(p, sizeof(p), "%s/d", f->out);
    assert_int_equal(lstat(p, &a), 0);
    assert_int_equal(a.st_mode & 07777, 0555);
    assert_int_equal(a.st_mtim.tv_sec, 1600000000);
    assert_int_equal(lstat(f->out, &a), 0);
    assert_int_equal(a.st_mode & 07777, 0711);
    assert_true(exists(f->out, "abs/file"));
    assert_false(exists("/", "abs/file"));
    snprintf(p, sizeof(p), "%s/dup", f->out);
    assert_int_equal(lstat(p, &a), 0);
    assert_int_equal(a.st_size, 3);
    chmod(f->out, 0755);
    snprintf(p, sizeof(p), "%s/d", f->out);
    chmod(p, 0755);
}

/* Expects the entries to be rejected with a message naming `name`. */
static void reject(fx_t *f, const tent_t *ents, size_t n, int code,
                   const char *name)
{
    assert_int_equal(unpack(f, ents, n), code);
    if (strstr(E.message, name) == NULL) {
        fail_msg("message \"%s\" does not name %s", E.message, name);
    }
    assert_side_empty(f);
}

static void test_dotdot(void **state)
{
    const tent_t a[] = {{'f', "../evil", "x", 0}};
    const tent_t b[] = {{'d', "a", NULL, 0}, {'f', "a/../../evil", "x", 0}};
    const tent_t c[] = {{'f', "a/../b", "x", 0}};

    reject(*state, a, 1, KILN_EINVAL, "../evil");
    reject(*state, b, 2, KILN_EINVAL, "a/../../evil");
    reject(*state, c, 1, KILN_EINVAL, "a/../b");
}

static void test_write_through_symlink(void **state)
{
    fx_t *f = *state;
    const tent_t a[] = {{'l', "link", f->side, 0}, {'f', "link/pwned", "x", 0}};
    const tent_t b[] = {{'l', "up", "..", 0}, {'f', "up/pwned", "x", 0}};
    const tent_t c[] = {{'l', "s", f->side, 0}, {'d', "s/sub", NULL, 0}};
    const tent_t d[] = {{'l', "t", f->side, 0}, {'l', "t/pwned", "/", 0}};

    reject(f, a, 2, KILN_EINVAL, "link/pwned");
    reject(f, b, 2, KILN_EINVAL, "up/pwned");
    reject(f, c, 2, KILN_EINVAL, "s/sub");
    assert_false(exists(f->side, "sub"));
    reject(f, d, 2, KILN_EINVAL, "t/pwned");
}

static void test_hostile_hardlinks(void **state)
{
    fx_t *f = *state;
    char target[128];
    const tent_t a[] = {{'h', "h", "../side/x", 0}};
    const tent_t b[] = {{'h', "h", "/etc/passwd", 0}};
    const tent_t c[] = {{'l', "s", f->side, 0}, {'h', "h", "s/secret", 0}};
    const tent_t d[] = {{'d', "dir", NULL, 0}, {'h', "h", "dir", 0}};
    int fd;

    snprintf(target, sizeof(target), "%s/secret", f->side);
    fd = open(target, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    reject(f, a, 1, KILN_EINVAL, "h");
    assert_non_null(strstr(E.message, ".."));
    /* "/etc/passwd" is "etc/passwd" in the layer: not there. */
    reject(f, b, 1, KILN_EINVAL, "etc/passwd");
    reject(f, c, 2, KILN_EINVAL, "h");
    reject(f, d, 2, KILN_EINVAL, "directory");
    unlink(target);
}

/* As root, devices and fifos are made; as nobody (a child process), they
 * are refused. */
static void test_devices(void **state)
{
    fx_t *f = *state;
    const tent_t c[] = {{'c', "null", NULL, 0666}};
    const tent_t p[] = {{'p', "fifo", NULL, 0600}};
    kiln__buf_t tar = make_tar(c, 1, 0), tar2 = make_tar(p, 1, 0);
    struct stat st;
    char path[256];
    pid_t pid;
    int status;

    if (geteuid() != 0) {
        assert_int_equal(unpack(f, c, 1), -EPERM);
        assert_non_null(strstr(E.message, "null"));
        skip();
    }
    OK(unpack(f, c, 1));
    snprintf(path, sizeof(path), "%s/null", f->out);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    OK(unpack(f, p, 1));
    snprintf(path, sizeof(path), "%s/fifo", f->out);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    snprintf(path, sizeof(path), "%s/nobody", f->top);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(chown(path, 65534, 65534), 0);
    assert_int_equal(chmod(f->top, 0755), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kiln_error_t err;
        int r1, r2;
        if (setgid(65534) != 0 || setuid(65534) != 0) {
            _exit(3);
        }
        r1 = kiln__oci_unpack_mem(tar.data, tar.len, path, NULL, NULL, &err);
        r2 = kiln__oci_unpack_mem(tar2.data, tar2.len, path, NULL, NULL, &err);
        _exit(r1 == -EPERM && r2 == -EPERM && strstr(err.message, "fifo") ? 0
                                                                          : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    kiln__buf_free(&tar);
    kiln__buf_free(&tar2);
}

static void test_bomb(void **state)
{
    fx_t *f = *state;
    size_t big = 8u << 20;
    char *zeros = calloc(1, big + 1);
    tent_t e = {'f', "bomb", NULL, 0644};
    kiln__buf_t b;
    kiln_oci_unpack_opts_t o = {1u << 20, NULL, NULL};
    kiln_oci_unpack_result_t r;

    assert_non_null(zeros);
    memset(zeros, 'A', big);
    e.arg = zeros;
    b = make_tar(&e, 1, 'g');
    assert_true(b.len < big / 100);
    assert_int_equal(kiln__oci_unpack_mem(b.data, b.len, f->out, &o, &r, &E),
                     KILN_E2BIG);
    assert_non_null(strstr(E.message, "limit of 1048576 bytes"));
    assert_true(r.tar_bytes <= (1u << 20) + 65536);
    kiln__buf_free(&b);
    free(zeros);
}

static void test_garbage(void **state)
{
    fx_t *f = *state;
    static const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3};
    static const char junk[] = "this is not a tar archive at all, not even "
                               "close to one, but it is long enough";
    const tent_t w[] = {{'d', ".wh.x", NULL, 0}};

    assert_int_equal(
        kiln__oci_unpack_mem(gz, sizeof(gz), f->out, NULL, NULL, &E),
        KILN_EBADMSG);
    assert_int_equal(
        kiln__oci_unpack_mem(junk, sizeof(junk), f->out, NULL, NULL, &E),
        KILN_EBADMSG);
    OK(kiln__oci_unpack_mem("", 0, f->out, NULL, NULL, &E));
    reject(f, w, 1, KILN_EINVAL, ".wh.x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_digests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whiteouts_and_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dotdot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_through_symlink, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_hardlinks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
