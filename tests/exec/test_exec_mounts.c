/*
 * Exec ops' mounts through the public API: input mounts and their
 * outputs, selectors, tmpfs and stubs, cache mounts across builds and
 * their sharing modes, secrets, SSH sockets; and the copy fallback.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec_fixture.h"

static char skip_reason[256];

static int group_setup(void **state)
{
    (void)state;
    if (!ex_namespaces_ok(skip_reason, sizeof(skip_reason))) {
        fprintf(stderr, "# skipping exec tests: %s\n", skip_reason);
    }
    return 0;
}

static int setup(void **state)
{
    ex_fixture_t *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    ex_setup(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    ex_fixture_t *f = *state;

    unsetenv("KILN_EXEC_COPY");
    ex_teardown(f);
    free(f);
    return 0;
}

#define NEED_NAMESPACES()                                                      \
    do {                                                                       \
        if (skip_reason[0] != '\0') {                                          \
            print_message("skipped: %s\n", skip_reason);                       \
            skip();                                                            \
        }                                                                      \
    } while (0)

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void assert_ok(const ex_result_t *r)
{
    if (r->rc != 0) {
        fail_msg("solve failed (%d): %s\nlogs: %s", r->rc, r->err.message,
                 r->logs);
    }
}

static kiln_definition_t *finish(kiln_llb_t *b, kiln_llb_state_t *st)
{
    kiln_definition_t *def = ex_def(b, st);

    kiln_llb_free(b);
    return def;
}

/* ---- inputs and outputs ---- */

/* e_run_file's shape: a scratch mount at /out is output 1. */
static void test_scratch_output(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[64];
    struct stat st;

    NEED_NAMESPACES();
    ex = kiln_llb_exec(rootfs, ARGV("sh", "-c", "echo hi > /out/x"));
    kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
    def = finish(b, kiln_llb_exec_output(ex, "/out"));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "x", buf, sizeof(buf)));
    assert_string_equal(buf, "hi\n");
    assert_false(ex_out_exists(f, "bin"));
    assert_int_equal(stat(f->out, &st), 0);
    kiln_definition_free(def);
}

/* A read-only input at a path that does not exist (a stub), with a
 * selector; the root's output has no trace of the stub. */
static void test_input_selector(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[64];

    NEED_NAMESPACES();
    ex = kiln_llb_exec(rootfs,
                       ARGV("sh", "-c",
                            "cat /mnt/in/b > /copied && ls /mnt/in > /ls && "
                            "! touch /mnt/in/w 2>/dev/null && "
                            "head -n 1 /mnt/file > /first"));
    kiln_llb_exec_mount(ex, "/mnt/in", rootfs, "/data/sub",
                        KILN_LLB_MOUNT_READONLY);
    /* A selector naming a file: its mount point is a file. */
    kiln_llb_exec_mount(ex, "/mnt/file", rootfs, "/etc/passwd",
                        KILN_LLB_MOUNT_READONLY);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "copied", buf, sizeof(buf)));
    assert_string_equal(buf, "two\n");
    assert_true(ex_read_out(f, "ls", buf, sizeof(buf)));
    assert_string_equal(buf, "b\n");
    assert_true(ex_read_out(f, "first", buf, sizeof(buf)));
    assert_string_equal(buf, "root:x:0:0:root:/root:/bin/sh\n");
    /* The builder sets Meta.removeMountStubsRecursive, as Go's does: the
     * stub and the parents made for it go. */
    assert_false(ex_out_exists(f, "mnt"));
    kiln_definition_free(def);
}

/* A writable input mount: its own output, the root's output without it. */
static void test_writable_input(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[64];

    NEED_NAMESPACES();
    ex = kiln_llb_exec(rootfs, ARGV("sh", "-c",
                                    "echo added > /w/data/added && "
                                    "rm /w/etc/gone"));
    kiln_llb_exec_mount(ex, "/w", rootfs, NULL, 0);
    def = finish(b, kiln_llb_exec_output(ex, "/w"));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "data/added", buf, sizeof(buf)));
    assert_string_equal(buf, "added\n");
    assert_false(ex_out_exists(f, "etc/gone"));
    assert_true(ex_out_exists(f, "bin/busybox"));
    kiln_definition_free(def);
}

static void test_tmpfs_and_stubs(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[256];

    NEED_NAMESPACES();
    ex = kiln_llb_exec(rootfs, ARGV("sh", "-c",
                                    "echo t > /new/deep/tmp/f && "
                                    "grep ' /new/deep/tmp ' /proc/mounts | "
                                    "cut -d' ' -f3 > /fstype && touch /kept"));
    kiln_llb_exec_tmpfs(ex, "/new/deep/tmp", 1 << 20);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "fstype", buf, sizeof(buf)));
    assert_string_equal(buf, "tmpfs\n");
    assert_true(ex_out_exists(f, "kept"));
    /* removeMountStubsRecursive: the parents made for the mount go too. */
    assert_false(ex_out_exists(f, "new"));
    kiln_definition_free(def);
}

static void test_readonly_root(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};

    NEED_NAMESPACES();
    /* The root's state is then the input itself: take the result from a
     * scratch mount, so that the exec runs. */
    ex = kiln_llb_exec(rootfs, ARGV("sh", "-c", "touch /out/ok && touch /x"));
    kiln_llb_exec_readonly_root(ex);
    kiln_llb_exec_tmpfs(ex, "/scratchpad", 0);
    kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
    def = finish(b, kiln_llb_exec_output(ex, "/out"));
    ex_solve(f, def, NULL, &r);
    assert_int_equal(r.rc, KILN_EIO);
    assert_non_null(strstr(r.err.message, "Read-only file system"));
    kiln_definition_free(def);
}

static void test_hosts(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[512];

    NEED_NAMESPACES();
    ex = kiln_llb_exec(rootfs, ARGV("sh", "-c",
                                    "hostname > /tmp/h; cat /etc/hosts >> "
                                    "/tmp/h; ulimit -n >> /tmp/h"));
    kiln_llb_exec_hostname(ex, "kilnbox");
    kiln_llb_exec_extra_host(ex, "db.internal", "10.1.2.3");
    kiln_llb_exec_ulimit(ex, "nofile", 321, 321);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "tmp/h", buf, sizeof(buf)));
    assert_non_null(strstr(buf, "kilnbox\n"));
    assert_non_null(strstr(buf, "127.0.0.1\tlocalhost kilnbox\n"));
    assert_non_null(strstr(buf, "10.1.2.3\tdb.internal\n"));
    assert_non_null(strstr(buf, "\n321\n"));
    kiln_definition_free(def);
}

/* ---- cache mounts ---- */

static kiln_definition_t *cache_def(const char *script, const char *id,
                                    kiln_llb_cache_sharing_t sharing)
{
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex = kiln_llb_exec(rootfs, ARGV("sh", "-c", script));

    kiln_llb_exec_cache(ex, "/cache", kiln_llb_scratch(b), id, sharing, 0);
    return finish(b, kiln_llb_exec_root(ex));
}

struct du_find {
    const char *want;
    int found;
    uint64_t size;
};

static int du_cb(const kiln_du_entry_t *e, void *ud)
{
    struct du_find *d = ud;

    if (e->description != NULL && strstr(e->description, d->want) != NULL) {
        d->found++;
        d->size = e->size;
    }
    return 0;
}

static void test_cache_persists(void **state)
{
    ex_fixture_t *f = *state;
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_engine_t *e = NULL;
    kiln_error_t err = {0};
    kiln_definition_t *d1, *d2;
    ex_result_t r = {0};
    struct du_find d = {"cache mount 'c1'", 0, 0};
    char buf[64];

    NEED_NAMESPACES();
    d1 = cache_def("echo run >> /cache/log; wc -l < /cache/log > /count", "c1",
                   KILN_LLB_CACHE_SHARED);
    d2 = cache_def("echo run >> /cache/log; wc -l < /cache/log > /count #2",
                   "c1", KILN_LLB_CACHE_SHARED);
    ex_solve(f, d1, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "count", buf, sizeof(buf)));
    assert_string_equal(buf, "1\n");
    /* The cache is no part of the output. */
    assert_false(ex_out_exists(f, "cache"));
    ex_solve(f, d2, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "count", buf, sizeof(buf)));
    assert_string_equal(buf, "2\n");

    /* kiln du shows it. */
    eo.root = f->root;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    assert_int_equal(kiln_engine_du(e, du_cb, &d, NULL, &err), 0);
    kiln_engine_free(e);
    assert_int_equal(d.found, 1);
    assert_true(d.size > 0);
    kiln_definition_free(d1);
    kiln_definition_free(d2);
}

/* Two execs of one build on one cache: each marks the cache busy for a
 * while and notes when it finds the mark of the other. */
static void sharing_run(ex_fixture_t *f, kiln_llb_cache_sharing_t sharing,
                        bool *overlapped)
{
    kiln_llb_state_t *rootfs, *outs[2];
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_definition_t *def;
    ex_result_t r = {0};
    char path[256];
    struct stat st;

    for (int i = 0; i < 2; i++) {
        char script[256];
        kiln_llb_exec_t *ex;

        /* Each holds a mark for a second; one that sees the other's
         * mark while it holds its own ran at the same time. */
        snprintf(script, sizeof(script),
                 "touch /cache/busy%d; sleep 1; "
                 "if [ -e /cache/busy%d ]; then echo %d >> /cache/overlap; "
                 "fi; rm /cache/busy%d; echo %d > /out/done",
                 i, 1 - i, i, i, i);
        ex = kiln_llb_exec(rootfs, ARGV("sh", "-c", script));
        kiln_llb_exec_cache(ex, "/cache", kiln_llb_scratch(b), "shared-id",
                            sharing, 0);
        kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
        outs[i] = kiln_llb_exec_output(ex, "/out");
    }
    def = finish(b, kiln_llb_merge(b, outs, 2));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    /* The cache's one instance, in the store. */
    ex_sh("cat %s/cachemounts/*/0/overlap > %s/overlap 2>/dev/null || true",
          f->root, f->base);
    snprintf(path, sizeof(path), "%s/overlap", f->base);
    *overlapped = stat(path, &st) == 0 && st.st_size > 0;
    kiln_definition_free(def);
}

static void test_cache_locked(void **state)
{
    ex_fixture_t *f = *state;
    bool overlapped = true;

    NEED_NAMESPACES();
    sharing_run(f, KILN_LLB_CACHE_LOCKED, &overlapped);
    assert_false(overlapped);
    /* The same steps on a SHARED cache do run at once: the check above
     * can see an overlap. */
    ex_rm_tree(f->root);
    sharing_run(f, KILN_LLB_CACHE_SHARED, &overlapped);
    assert_true(overlapped);
}

static void test_cache_private(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs, *outs[2];
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_definition_t *def;
    ex_result_t r = {0};
    char path[256];
    struct stat st;

    NEED_NAMESPACES();
    for (int i = 0; i < 2; i++) {
        char script[128];
        kiln_llb_exec_t *ex;

        snprintf(script, sizeof(script),
                 "touch /cache/%d; sleep 1; ls /cache > /out/ls%d", i, i);
        ex = kiln_llb_exec(rootfs, ARGV("sh", "-c", script));
        kiln_llb_exec_cache(ex, "/cache", kiln_llb_scratch(b), "priv",
                            KILN_LLB_CACHE_PRIVATE, 0);
        kiln_llb_exec_mount(ex, "/out", kiln_llb_scratch(b), NULL, 0);
        outs[i] = kiln_llb_exec_output(ex, "/out");
    }
    def = finish(b, kiln_llb_merge(b, outs, 2));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    /* Two instances, each seen by one exec only. */
    ex_sh("test $(ls -d %s/cachemounts/*/[0-9] | wc -l) = 2", f->root);
    snprintf(path, sizeof(path), "%s/ls0", f->out);
    assert_int_equal(stat(path, &st), 0);
    {
        char a[32], c[32];

        assert_true(ex_read_out(f, "ls0", a, sizeof(a)));
        assert_true(ex_read_out(f, "ls1", c, sizeof(c)));
        assert_string_equal(a, "0\n");
        assert_string_equal(c, "1\n");
    }
    kiln_definition_free(def);
}

/* ---- secrets ---- */

#define SECRET "kiln-s3cr3t-7f1e9a"

/* Fails if any file under dir holds SECRET. */
static const char *found_in;
static char found_buf[4096];
static int grep_entry(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    char buf[65536];
    FILE *fp;
    size_t n;

    (void)ftw;
    if (flag != FTW_F || !S_ISREG(st->st_mode)) {
        return 0;
    }
    fp = fopen(path, "rb");
    if (fp == NULL) {
        return 0;
    }
    while ((n = fread(buf, 1, sizeof(buf) - 1, fp)) > 0) {
        buf[n] = '\0';
        if (memmem(buf, n, SECRET, strlen(SECRET)) != NULL) {
            snprintf(found_buf, sizeof(found_buf), "%s", path);
            found_in = found_buf;
            fclose(fp);
            return 1;
        }
    }
    fclose(fp);
    return 0;
}

static void test_secrets(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char file[160], pair[200], envpair[64];
    const char *secrets[] = {pair, NULL};
    const char *envs[] = {envpair, NULL};
    ex_opts_t o = {.secrets = secrets, .secret_envs = envs};
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_error_t err;
    int fd;

    NEED_NAMESPACES();
    snprintf(file, sizeof(file), "%s/secret.txt", f->base);
    ex_sh("printf '%%s' %s > %s", SECRET, file);
    snprintf(pair, sizeof(pair), "tok=%s", file);
    snprintf(envpair, sizeof(envpair), "tok2=KILN_TEST_SECRET_VAR");
    setenv("KILN_TEST_SECRET_VAR", SECRET "-env", 1);
    /* The command compares digests: the secret itself is nowhere in the
     * definition. */
    ex = kiln_llb_exec(rootfs, ARGV("sh", "-c",
                                    "md5sum < /run/secrets/tok > /sums; "
                                    "printf %s \"$TOK2\" | md5sum >> /sums; "
                                    "stat -c %a:%u /run/secrets/tok >> /sums"));
    kiln_llb_exec_secret(ex, "tok", "/run/secrets/tok", 1000, 1000, 0440, 0);
    kiln_llb_exec_secret_env(ex, "tok2", "TOK2", 0);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, &o, &r);
    assert_ok(&r);
    {
        char want[512], got[512], sums[160];

        snprintf(sums, sizeof(sums), "%s/want", f->base);
        ex_sh("(printf %%s %s | md5sum; printf %%s %s-env | md5sum; "
              "echo 440:1000) > %s",
              SECRET, SECRET, sums);
        assert_true(ex_read_out(f, "sums", got, sizeof(got)));
        FILE *fp = fopen(sums, "r");
        assert_non_null(fp);
        want[fread(want, 1, sizeof(want) - 1, fp)] = '\0';
        fclose(fp);
        assert_string_equal(got, want);
        unlink(sums);
    }
    assert_false(ex_out_exists(f, "run/secrets/tok"));
    assert_null(strstr(r.logs, SECRET));
    /* Nowhere in the store: layers, records, logs, the database. */
    found_in = NULL;
    nftw(f->root, grep_entry, 16, FTW_PHYS);
    if (found_in != NULL) {
        fail_msg("the secret is in %s", found_in);
    }
    nftw(f->out, grep_entry, 16, FTW_PHYS);
    if (found_in != NULL) {
        fail_msg("the secret is in %s", found_in);
    }
    /* The op's stored log has no trace of it either. */
    eo.root = f->root;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    snprintf(file, sizeof(file), "%s/log.txt", f->base);
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    kiln_engine_logs(e, "sh -c", fd, &err);
    close(fd);
    kiln_engine_free(e);
    nftw(file, grep_entry, 4, FTW_PHYS);
    assert_null(found_in);
    kiln_definition_free(def);

    /* Not given: a clear error; optional: skipped. */
    b = ex_builder(&rootfs);
    ex = kiln_llb_exec(rootfs, ARGV("true"));
    kiln_llb_exec_secret(ex, "missing", "/run/secrets/m", 0, 0, -1, 0);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_int_equal(r.rc, KILN_EINVAL);
    assert_non_null(strstr(r.err.message, "secret 'missing' was not given"));
    kiln_definition_free(def);
    b = ex_builder(&rootfs);
    ex = kiln_llb_exec(rootfs, ARGV("sh", "-c", "test ! -e /run/secrets/m"));
    kiln_llb_exec_secret(ex, "missing", "/run/secrets/m", 0, 0, -1,
                         KILN_LLB_OPTIONAL);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    kiln_definition_free(def);
    unsetenv("KILN_TEST_SECRET_VAR");
}

/* ---- SSH ---- */

struct agent {
    int fd;
    char path[128];
    char got[64];
};

/* A unix socket server standing in for ssh-agent: answers one client. */
static void *agent_main(void *arg)
{
    struct agent *a = arg;
    int c = accept(a->fd, NULL, NULL);
    ssize_t n;

    if (c >= 0) {
        n = read(c, a->got, sizeof(a->got) - 1);
        a->got[n > 0 ? n : 0] = '\0';
        (void)!send(c, "agent-reply\n", 12, MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

static void test_ssh(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *ex;
    kiln_definition_t *def;
    ex_result_t r = {0};
    struct agent a = {0};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char pair[200], buf[64];
    const char *ssh[] = {pair, NULL};
    ex_opts_t o = {.ssh = ssh};
    pthread_t t;

    NEED_NAMESPACES();
    snprintf(a.path, sizeof(a.path), "%s/agent.sock", f->base);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a.path);
    a.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(a.fd >= 0);
    assert_int_equal(bind(a.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(a.fd, 4), 0);
    assert_int_equal(pthread_create(&t, NULL, agent_main, &a), 0);
    snprintf(pair, sizeof(pair), "default=%s", a.path);
    assert_non_null(getenv("KILN_TEST_UNIX_CLIENT"));
    ex_sh("cp %s %s/bin/unix_client", getenv("KILN_TEST_UNIX_CLIENT"),
          f->rootfs);
    /* As a user, on a socket made for it: the agent's own (root's, 0755
     * here) is never shown. */
    ex = kiln_llb_exec(rootfs,
                       ARGV("sh", "-c",
                            "test -S \"$SSH_AUTH_SOCK\" && "
                            "stat -c %a:%u \"$SSH_AUTH_SOCK\" > /tmp/sock && "
                            "echo hello-agent | "
                            "unix_client $SSH_AUTH_SOCK > /tmp/reply"));
    kiln_llb_exec_user(ex, "builder");
    kiln_llb_exec_ssh(ex, NULL, NULL, 1000, 1000, 0600, 0);
    def = finish(b, kiln_llb_exec_root(ex));
    ex_solve(f, def, &o, &r);
    if (r.rc != 0) {
        /* Let the agent thread end before failing. */
        shutdown(a.fd, SHUT_RDWR);
    }
    pthread_join(t, NULL);
    close(a.fd);
    assert_ok(&r);
    assert_string_equal(a.got, "hello-agent\n");
    assert_true(ex_read_out(f, "tmp/reply", buf, sizeof(buf)));
    assert_string_equal(buf, "agent-reply\n");
    assert_true(ex_read_out(f, "tmp/sock", buf, sizeof(buf)));
    assert_string_equal(buf, "600:1000\n");
    assert_false(ex_out_exists(f, "run/buildkit/ssh_agent.0"));
    kiln_definition_free(def);
}

/* ---- the copy fallback ---- */

static void test_copy_fallback(void **state)
{
    ex_fixture_t *f = *state;
    kiln_llb_state_t *rootfs;
    kiln_llb_t *b = ex_builder(&rootfs);
    kiln_llb_exec_t *e1, *e2;
    kiln_definition_t *def;
    ex_result_t r = {0};
    char buf[64];

    NEED_NAMESPACES();
    setenv("KILN_EXEC_COPY", "1", 1);
    e1 = kiln_llb_exec(rootfs, ARGV("sh", "-c",
                                    "rm /etc/gone && echo c > /made && "
                                    "rm -r /data && mkdir /data"));
    e2 = kiln_llb_exec(kiln_llb_exec_root(e1),
                       ARGV("sh", "-c",
                            "test ! -e /etc/gone && test ! -e /data/a && "
                            "cat /made > /seen"));
    def = finish(b, kiln_llb_exec_root(e2));
    ex_solve(f, def, NULL, &r);
    assert_ok(&r);
    assert_true(ex_read_out(f, "seen", buf, sizeof(buf)));
    assert_string_equal(buf, "c\n");
    assert_false(ex_out_exists(f, "etc/gone"));
    assert_true(ex_out_exists(f, "data"));
    assert_false(ex_out_exists(f, "data/a"));
    assert_true(ex_out_exists(f, "bin/busybox"));
    kiln_definition_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scratch_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_selector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writable_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmpfs_and_stubs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_fallback, setup, teardown),
    };

    /* Where the kernel forbids what an exec needs, the whole file is
     * skipped (TAP "1..0 # SKIP"), saying why. */
    if (!ex_namespaces_ok(skip_reason, sizeof(skip_reason))) {
        printf("1..0 # SKIP the kernel forbids namespaces exec needs: %s\n",
               skip_reason);
        return 0;
    }
    skip_reason[0] = '\0';
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
