/*
 * The git source plugin through the public API: definitions made with
 * kiln_llb_plugin_source(b, "git", ...) (what `kiln source translate git`
 * prints), solved into temporary store roots and exported to directories,
 * against repositories made here and served by git daemon on 127.0.0.1
 * (git_build.h): translate, refs and pins, what a checkout holds, errors,
 * the cache repositories and builds that share them. test_git_remote.c has
 * the other transports (file, HTTP, SSH) and authentication.
 */
#include <errno.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net_fixture.h"

#include "git_build.h"

/* ---- translate ---- */

/*
 * Every remote form, with what BuildKit's llb.Git() makes of it, and the
 * same through kiln's own C builder (kiln_llb_git), which must agree.
 */
static void test_translate_table(void **state)
{
    static const struct {
        const char *remote, *frag, *subdir, *id, *fullurl;
        bool ssh;
    } rows[] = {
        {"https://github.com/moby/buildkit.git", "v0.11.6", NULL,
         "git://github.com/moby/buildkit.git#v0.11.6",
         "https://github.com/moby/buildkit.git", false},
        {"http://example.com/r.git", "main", NULL,
         "git://example.com/r.git#main", "http://example.com/r.git", false},
        {"github.com/foo/bar.git", "ref:subdir", NULL,
         "git://github.com/foo/bar.git#ref:subdir",
         "https://github.com/foo/bar.git", false},
        {"git@github.com:moby/buildkit.git", "main", NULL,
         "git://github.com/moby/buildkit.git#main",
         "git@github.com:moby/buildkit.git", true},
        {"ssh://git@host:2222/x/y.git", "", NULL, "git://host:2222/x/y.git",
         "ssh://git@host:2222/x/y.git", true},
        {"git://host/repo", "ref:/sub/../dir/", NULL, "git://host/repo#ref:dir",
         "git://host/repo", false},
        {"https://user:tok@host/x.git?a=b#dev", "", NULL, "git://host/x.git",
         "https://user:tok@host/x.git", false},
        {"github.com/foo/bar.git", "", "d", "git://github.com/foo/bar.git#:d",
         "https://github.com/foo/bar.git", false},
        {"HTTPS://Example.com/a/../b.git/", "", NULL, "git://Example.com/b.git",
         "https://Example.com/a/../b.git/", false},
        {"https://h/x.git", ":", NULL, "git://h/x.git", "https://h/x.git",
         false},
        {"https://h/x.git", "refs/pull/1/head", NULL,
         "git://h/x.git#refs/pull/1/head", "https://h/x.git", false},
        /* Not gitutil's protocols: used raw, ref and all dropped. */
        {"file:///tmp/repo", "main", NULL, "git://file:///tmp/repo",
         "file:///tmp/repo", false},
        {"ftp://x/y", "ref", NULL, "git://ftp://x/y", "ftp://x/y", false},
        {"https://h:port/x", "", NULL, "git://https://h:port/x",
         "https://h:port/x", false},
        /* A local path is neither: https:// is assumed, as Go does. */
        {"/srv/repo.git", "main", NULL, "git:///srv/repo.git#main",
         "https:///srv/repo.git", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char remote[256], frag[256], sub[64];
        const char *params[] = {remote, frag, rows[i].subdir ? sub : NULL,
                                NULL};
        kiln_translated_t *t = NULL;
        kiln_error_t err = {0};
        kiln_llb_t *b;
        kiln_definition_t *a, *c;
        kiln_llb_state_t *st;

        snprintf(remote, sizeof(remote), "remote=%s", rows[i].remote);
        snprintf(frag, sizeof(frag), "fragment=%s", rows[i].frag);
        snprintf(sub, sizeof(sub), "subdir=%s",
                 rows[i].subdir ? rows[i].subdir : "");
        if (kiln_source_translate(NULL, "git", params, &t, &err) < 0) {
            fail_msg("%s: %s", rows[i].remote, err.message);
        }
        assert_string_equal(t->identifier, rows[i].id);
        assert_string_equal(t->keys[0], "git.authheadersecret");
        assert_string_equal(t->values[0], "GIT_AUTH_HEADER");
        assert_string_equal(t->keys[1], "git.authtokensecret");
        assert_string_equal(t->values[1], "GIT_AUTH_TOKEN");
        assert_string_equal(t->keys[2], "git.fullurl");
        assert_string_equal(t->values[2], rows[i].fullurl);
        assert_int_equal(t->n_attrs, rows[i].ssh ? 4 : 3);
        if (rows[i].ssh) {
            assert_string_equal(t->keys[3], "git.mountsshsock");
            assert_string_equal(t->values[3], "default");
        }
        kiln_translated_free(t);

        /* The same op digest as kiln_llb_git(remote, fragment). */
        assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
        a = marshal(b, git_source(b, params));
        assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
        st = kiln_llb_git(b, rows[i].remote, rows[i].frag);
        if (rows[i].subdir != NULL) {
            st = kiln_llb_git_subdir(st, rows[i].subdir);
        }
        c = marshal(b, st);
        assert_string_equal(kiln_definition_result(a, NULL),
                            kiln_definition_result(c, NULL));
        kiln_definition_free(a);
        kiln_definition_free(c);
    }
}

static void test_translate_options(void **state)
{
    const char *params[] = {"remote=git@host:r.git",
                            "fragment=x:y",
                            "ref=main",
                            "keepgitdir=true",
                            "knownsshhosts=host ssh-ed25519 AAAA",
                            "mountsshsock=agent",
                            "checksum=abc123",
                            "skipsubmodules=true",
                            "authtokensecret=TOK",
                            "authheadersecret=",
                            "mtime=commit",
                            NULL};
    const char *bad[] = {"remote=https://h/x", "branch=main", NULL};
    const char *nobool[] = {"remote=https://h/x", "keepgitdir=yes", NULL};
    const char *none[] = {"ref=main", NULL};
    static const char *const want[][2] = {
        {"git.authtokensecret", "TOK"},
        {"git.checksum", "abc123"},
        {"git.fullurl", "git@host:r.git"},
        {"git.keepgitdir", "true"},
        {"git.knownsshhosts", "host ssh-ed25519 AAAA\n"},
        {"git.mountsshsock", "agent"},
        {"git.mtime", "commit"},
        {"git.skipsubmodules", "true"},
    };
    kiln_translated_t *t = NULL;
    kiln_error_t err = {0};

    (void)state;
    if (kiln_source_translate(NULL, "git", params, &t, &err) < 0) {
        fail_msg("%s", err.message);
    }
    /* Options win over the fragment; an empty secret name is no attr. */
    assert_string_equal(t->identifier, "git://host/r.git#main:y");
    assert_int_equal(t->n_attrs, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < t->n_attrs; i++) {
        assert_string_equal(t->keys[i], want[i][0]);
        assert_string_equal(t->values[i], want[i][1]);
    }
    kiln_translated_free(t);
    t = NULL;

    assert_int_equal(kiln_source_translate(NULL, "git", bad, &t, &err),
                     KILN_EINVAL);
    assert_non_null(strstr(err.message, "\"branch\""));
    assert_int_equal(kiln_source_translate(NULL, "git", nobool, &t, &err),
                     KILN_EINVAL);
    assert_non_null(strstr(err.message, "keepgitdir=yes"));
    assert_int_equal(kiln_source_translate(NULL, "git", none, &t, &err),
                     KILN_EINVAL);
    assert_non_null(strstr(err.message, "remote"));
    assert_null(t);
}

/* ---- refs ---- */

static void test_refs(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128], ref[96], shortref[32];

    remote_of(remote, sizeof(remote), "main.git");
    /* A branch, and the default branch (HEAD). */
    def = git_def(remote, "ref=main", NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "two");
    expect_text(f, "docs/guide.txt", "guide");
    expect_absent(f, ".git");
    kiln_definition_free(def);
    def = git_def(remote, NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "two");
    kiln_definition_free(def);

    /* An annotated tag: its commit. */
    def = git_def(remote, "ref=v1", NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "one");
    if (strstr(r.log, first) == NULL) {
        fail_msg("v1 should resolve to %s:\n%s", first, r.log);
    }
    kiln_definition_free(def);

    /* A full commit: pinned without asking the server. */
    snprintf(ref, sizeof(ref), "ref=%s", first);
    def = git_def(remote, ref, "subdir=src", NULL);
    {
        int before = gitf_daemon_requests(&srv, "main.git");
        build_ok(f, def, &r);
        /* No ls-remote, and the commit was already in the cache. */
        assert_int_equal(gitf_daemon_requests(&srv, "main.git"), before);
    }
    expect_text(f, "a.c", "int a;");
    expect_absent(f, "README");
    kiln_definition_free(def);

    /* A short commit name, and a pull request's ref. */
    snprintf(shortref, sizeof(shortref), "ref=%.9s", first);
    def = git_def(remote, shortref, NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "one");
    kiln_definition_free(def);
    def = git_def(remote, "ref=refs/pull/1/head", NULL);
    build_ok(f, def, &r);
    expect_text(f, "pr.txt", "pr");
    kiln_definition_free(def);
}

/* A rebuild is a cache hit until the branch moves. */
static void test_moved_branch(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128];

    remote_of(remote, sizeof(remote), "main.git");
    def = git_def(remote, "ref=moving", NULL);
    build_ok(f, def, &r);
    assert_int_equal(r.stats.cached, 0);
    expect_text(f, "README", "two");
    build_ok(f, def, &r);
    assert_int_equal(r.stats.run, 0);
    assert_int_equal(r.stats.cached, r.stats.total);

    assert_int_equal(gitf_sh("cd '%s/main' && git checkout -q moving && "
                             "echo moved >README && git commit -qam moved && "
                             "git push -q '%s/main.git' moving && "
                             "git checkout -q main",
                             work, srv.srv),
                     0);
    build_ok(f, def, &r);
    assert_int_equal(r.stats.cached, 0);
    expect_text(f, "README", "moved");
    kiln_definition_free(def);
}

/* ---- results ---- */

static void test_subdir(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128];

    remote_of(remote, sizeof(remote), "main.git");
    def = git_def(remote, "fragment=main:docs", NULL);
    build_ok(f, def, &r);
    expect_text(f, "guide.txt", "guide");
    expect_absent(f, "README");
    expect_absent(f, "docs");
    kiln_definition_free(def);

    def = git_def(remote, "ref=main", "subdir=nope", NULL);
    build_fails(f, def, NULL, "subdir 'nope' not found in git://127.0.0.1",
                (const char *)NULL);
    kiln_definition_free(def);
    def = git_def(remote, "ref=main", "subdir=README", NULL);
    build_fails(f, def, NULL, "subdir 'README' not found", "not a directory",
                (const char *)NULL);
    kiln_definition_free(def);
}

static void test_keepgitdir(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128], out[256], cmd[512];

    remote_of(remote, sizeof(remote), "main.git");
    def = git_def(remote, "ref=main", "keepgitdir=true", NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "two");
    snprintf(cmd, sizeof(cmd), "git -C '%s' log -1 --format=%%s", f->out);
    gitf_capture(out, sizeof(out), cmd);
    assert_string_equal(out, "second");
    snprintf(cmd, sizeof(cmd), "git -C '%s' remote get-url origin", f->out);
    gitf_capture(out, sizeof(out), cmd);
    assert_string_equal(out, remote + strlen("remote="));
    expect_absent(f, ".git/hooks"); /* no templates of anyone's */
    snprintf(cmd, sizeof(cmd), "git -C '%s' status --porcelain | wc -l",
             f->out);
    gitf_capture(out, sizeof(out), cmd);
    assert_string_equal(out, "0");
    kiln_definition_free(def);
}

/* git.mtime=commit: every file and directory has the commit's time. */
static void test_mtime(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128], path[256];
    struct stat st;

    remote_of(remote, sizeof(remote), "main.git");
    def = git_def(remote, "ref=v1", "mtime=commit", NULL);
    build_ok(f, def, &r);
    kiln_definition_free(def);
    expect_text(f, "README", "one");
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", f->out,
                 (const char *[]){"README", "docs", "docs/guide.txt"}[i]);
        assert_int_equal(lstat(path, &st), 0);
        if (st.st_mtim.tv_sec != 1000000000) {
            fail_msg("%s: mtime %lld, want the commit's", path,
                     (long long)st.st_mtim.tv_sec);
        }
    }
    /* The default: the checkout's time. */
    def = git_def(remote, "ref=v1", NULL);
    build_ok(f, def, &r);
    kiln_definition_free(def);
    snprintf(path, sizeof(path), "%s/README", f->out);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(st.st_mtim.tv_sec > 1000000000);
}

static void test_submodules(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128];

    remote_of(remote, sizeof(remote), "withsub.git");
    def = git_def(remote, "ref=main", NULL);
    build_ok(f, def, &r);
    expect_text(f, "top.txt", "top");
    expect_text(f, "vendor/sub/lib.txt", "lib");
    expect_text(f, "vendor/sub/deep/deep.txt", "deep"); /* recursive */
    expect_absent(f, ".git");
    expect_absent(f, "vendor/sub/.git");
    expect_absent(f, "vendor/sub/deep/.git");
    kiln_definition_free(def);

    def = git_def(remote, "ref=main", "subdir=vendor", NULL);
    build_ok(f, def, &r);
    expect_text(f, "sub/lib.txt", "lib");
    expect_absent(f, "top.txt");
    kiln_definition_free(def);

    def = git_def(remote, "ref=main", "skipsubmodules=true", NULL);
    build_ok(f, def, &r);
    expect_text(f, "top.txt", "top");
    expect_absent(f, "vendor/sub/lib.txt");
    kiln_definition_free(def);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    char remote[128], want[160];

    remote_of(remote, sizeof(remote), "main.git");
    def = git_def(remote, "ref=nope", NULL);
    snprintf(want, sizeof(want), "ref 'nope' not found in %s",
             remote + strlen("remote="));
    build_fails(f, def, NULL, want, (const char *)NULL);
    kiln_definition_free(def);

    def = git_def(remote, "ref=0000000000000000000000000000000000000000", NULL);
    build_fails(f, def, NULL, "0000000000000000000000000000000000000000",
                "git://127.0.0.1", (const char *)NULL);
    kiln_definition_free(def);

    /* A signature check is refused, not skipped. */
    {
        kiln_llb_t *b;
        kiln_llb_state_t *st;
        char id[128];

        snprintf(id, sizeof(id), "git://127.0.0.1:%d/main.git#main",
                 srv.git_port);
        assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
        st = kiln_llb_source(b, id);
        st = kiln_llb_source_attr(st, "git.sig.pubkey", "ssh-ed25519 AAAA");
        def = marshal(b, st);
        build_fails(f, def, NULL, "git.sig.pubkey is not supported",
                    (const char *)NULL);
        kiln_definition_free(def);
    }

    remote_of(remote, sizeof(remote), "missing.git");
    def = git_def(remote, "ref=main", NULL);
    build_fails(f, def, NULL, "git ls-remote git://127.0.0.1", "missing.git",
                (const char *)NULL);
    kiln_definition_free(def);

    snprintf(remote, sizeof(remote), "remote=git://127.0.0.1:%d/main.git",
             free_port());
    def = git_def(remote, "ref=main", NULL);
    build_fails(f, def, NULL, "unable to connect", "Connection refused",
                (const char *)NULL);
    kiln_definition_free(def);

    remote_of(remote, sizeof(remote), "main.git");
    def = git_def(remote, "ref=main", "checksum=ffff", NULL);
    build_fails(f, def, NULL, "does not match git.checksum ffff",
                (const char *)NULL);
    kiln_definition_free(def);
}

/* A listener that accepts and never answers. */
static int silent_fd;
static atomic_bool silent_stop;

static void *silent_main(void *arg)
{
    int conns[16], n = 0;

    (void)arg;
    while (!atomic_load(&silent_stop)) {
        struct pollfd p = {.fd = silent_fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0 && n < 16) {
            int c = accept(silent_fd, NULL, NULL);
            if (c >= 0) {
                conns[n++] = c;
            }
        }
    }
    while (n > 0) {
        close(conns[--n]);
    }
    return NULL;
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    kiln_definition_t *def;
    pthread_t th;
    char remote[128];
    time_t t0;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(silent_fd >= 0);
    assert_int_equal(bind(silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(silent_fd, 16), 0);
    assert_int_equal(getsockname(silent_fd, (struct sockaddr *)&a, &len), 0);
    atomic_store(&silent_stop, false);
    assert_int_equal(pthread_create(&th, NULL, silent_main, NULL), 0);

    snprintf(remote, sizeof(remote), "remote=git://127.0.0.1:%d/r.git",
             ntohs(a.sin_port));
    def = git_def(remote, "ref=main", NULL);
    setenv("KILN_GIT_TIMEOUT", "2", 1);
    t0 = time(NULL);
    build_fails(f, def, NULL, "timed out after 2 s", (const char *)NULL);
    setenv("KILN_GIT_TIMEOUT", "60", 1);
    atomic_store(&silent_stop, true);
    pthread_join(th, NULL);
    close(silent_fd);
    kiln_definition_free(def);
    if (time(NULL) - t0 > 20) {
        fail_msg("the timeout took %lld s", (long long)(time(NULL) - t0));
    }
}

/* A cancel kills git at once (the timeout here is a minute). */
static void test_cancel(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    kiln_definition_t *def;
    struct result r;
    pthread_t th;
    char remote[128];
    time_t t0;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(silent_fd >= 0);
    assert_int_equal(bind(silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(silent_fd, 16), 0);
    assert_int_equal(getsockname(silent_fd, (struct sockaddr *)&a, &len), 0);
    atomic_store(&silent_stop, false);
    assert_int_equal(pthread_create(&th, NULL, silent_main, NULL), 0);

    snprintf(remote, sizeof(remote), "remote=git://127.0.0.1:%d/r.git",
             ntohs(a.sin_port));
    def = git_def(remote, "ref=main", NULL);
    t0 = time(NULL);
    cancel_after_ms = 1000;
    run(f, def, NULL, &r);
    cancel_after_ms = 0;
    atomic_store(&silent_stop, true);
    pthread_join(th, NULL);
    close(silent_fd);
    kiln_definition_free(def);
    assert_int_equal(r.rc, KILN_ECANCELED);
    if (time(NULL) - t0 > 10) {
        fail_msg("the cancel took %lld s", (long long)(time(NULL) - t0));
    }
}

/* A broken cache repository is detected, discarded and fetched again. */
static void test_corrupt_cache(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128], repo[512];
    int before;

    remote_of(remote, sizeof(remote), "main.git");
    def = git_def(remote, "ref=main", NULL);
    build_ok(f, def, &r);
    kiln_definition_free(def);
    cache_repo(f, repo, sizeof(repo));

    /* Its configuration garbled: git refuses the repository. */
    assert_int_equal(gitf_sh("echo '[[garbage' >'%s/config'", repo), 0);
    def = git_def(remote, "ref=main", "subdir=docs", NULL);
    build_ok(f, def, &r);
    expect_text(f, "guide.txt", "guide");
    if (strstr(r.log, "is corrupt") == NULL) {
        fail_msg("no word of the corrupt cache:\n%s", r.log);
    }
    kiln_definition_free(def);

    /* Its objects damaged (loose or packed): reading them fails, and the
     * cache is made again. */
    assert_int_equal(gitf_sh("find '%s/objects' -type f ! -path '*/info/*' "
                             "! -name '*.idx' -exec chmod u+w {} + -exec "
                             "sh -c 'for o; do printf garbage >\"$o\"; "
                             "done' sh {} +",
                             repo),
                     0);
    before = gitf_daemon_requests(&srv, "main.git");
    def = git_def(remote, "ref=main", "subdir=src", NULL);
    build_ok(f, def, &r);
    expect_text(f, "a.c", "int a;");
    if (strstr(r.log, "corrupt") == NULL) {
        fail_msg("no word of the corrupt cache:\n%s", r.log);
    }
    /* ls-remote, then the fetch again. */
    assert_true(gitf_daemon_requests(&srv, "main.git") >= before + 2);
    kiln_definition_free(def);
}

/* Two sources of one remote in one build: one fetch, shared. */
static void test_concurrent(void **state)
{
    struct fixture *f = *state;
    char remote[128], ref[96];
    const char *a[] = {remote, ref, "subdir=docs", NULL};
    const char *b2[] = {remote, ref, "subdir=src", NULL};
    kiln_llb_state_t *in[2];
    kiln_definition_t *def;
    kiln_llb_t *b;
    struct result r;
    int before;

    remote_of(remote, sizeof(remote), "main.git");
    snprintf(ref, sizeof(ref), "ref=%s", first);
    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    in[0] = git_source(b, a);
    in[1] = git_source(b, b2);
    def = marshal(b, kiln_llb_merge(b, in, 2));
    before = gitf_daemon_requests(&srv, "main.git");
    build_ok(f, def, &r);
    expect_text(f, "guide.txt", "guide");
    expect_text(f, "a.c", "int a;");
    /* Full commits: no ls-remote; one shallow fetch for both. */
    assert_int_equal(gitf_daemon_requests(&srv, "main.git"), before + 1);
    kiln_definition_free(def);
}

/*
 * Two builds at once on one store, of one remote: one fetch. The engines
 * are made one after the other (every plugin's init() runs in each), the
 * builds run at once.
 */
struct concurrent_build {
    kiln_engine_t *e;
    kiln_definition_t *def;
    char out[128];
    int rc;
    kiln_error_t err;
};

static void *build_main(void *arg)
{
    struct concurrent_build *c = arg;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_solve_t *s;

    so.definition = c->def;
    so.output = KILN_OUTPUT_LOCAL;
    so.output_dest = c->out;
    c->rc = kiln_solve_start(c->e, &so, &c->err, &s);
    if (c->rc == 0) {
        c->rc = kiln_solve_wait(s, &c->err);
        kiln_solve_free(s);
    }
    return NULL;
}

static void test_two_builds(void **state)
{
    struct fixture *f = *state;
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    struct concurrent_build c[2];
    struct fixture out[2];
    pthread_t th[2];
    char remote[128], ref[96];
    int before;

    remote_of(remote, sizeof(remote), "main.git");
    snprintf(ref, sizeof(ref), "ref=%s", first);
    eo.root = f->root;
    for (int i = 0; i < 2; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        snprintf(c[i].out, sizeof(c[i].out), "%s/%d", f->out, i);
        snprintf(out[i].out, sizeof(out[i].out), "%s", c[i].out);
        c[i].def =
            git_def(remote, ref, i == 0 ? "subdir=docs" : "subdir=src", NULL);
        if (kiln_engine_new(&eo, &c[i].err, &c[i].e) < 0) {
            fail_msg("engine: %s", c[i].err.message);
        }
    }
    before = gitf_daemon_requests(&srv, "main.git");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, build_main, &c[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        if (c[i].rc != 0) {
            fail_msg("build %d: %s", i, c[i].err.message);
        }
        kiln_definition_free(c[i].def);
        kiln_engine_free(c[i].e);
    }
    expect_text(&out[0], "guide.txt", "guide");
    expect_text(&out[1], "a.c", "int a;");
    assert_int_equal(gitf_daemon_requests(&srv, "main.git"), before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate_table),
        cmocka_unit_test(test_translate_options),
        cmocka_unit_test_setup_teardown(test_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_branch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepgitdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submodules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };

    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
