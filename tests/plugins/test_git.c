/*
 * The git source plugin through the public API: definitions made with
 * kiln_llb_plugin_source(b, "git", ...) (what `kiln source translate git`
 * prints), solved into temporary store roots and exported to directories,
 * against repositories made here and served on 127.0.0.1 by git daemon
 * and by git http-backend behind nginx (git_fixture.h).
 */
#include <errno.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
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

#include "git_fixture.h"

#include <kiln/kiln.h>
#include <kiln/llb.h>

static struct git_fixture srv;
static char work[128];  /* the working trees the repositories come from */
static char zero[48];   /* main's root commit, which no ref names */
static char first[48];  /* main's next commit (tag v1) */
static char pr_sha[48]; /* the commit only refs/pull/1/head has */

/* Per test: a store root and an output directory. */
struct fixture {
    char root[64];
    char out[64];
};

/* ---- repositories ---- */

static const char make_repos[] =
    "set -eu\n"
    "S=$1 W=$2\n"
    /* Commits of 2001: a checkout's mtimes are never theirs by chance. */
    "export GIT_COMMITTER_DATE='@1000000000 +0000' "
    "GIT_AUTHOR_DATE='@1000000000 +0000'\n"
    "mkdir -p \"$S\" \"$W\"\n"
    "git init -q -b main \"$W/main\" && cd \"$W/main\"\n"
    "echo zero >README && git add . && git commit -qm zero\n"
    "git rev-parse HEAD >\"$W/zero\"\n"
    "mkdir docs src && echo one >README && echo guide >docs/guide.txt\n"
    "echo 'int a;' >src/a.c && git add . && git commit -qm first\n"
    "git tag -a v1 -m 'version 1' && git rev-parse HEAD >\"$W/first\"\n"
    "echo two >README && git commit -qam second && git branch moving\n"
    "git checkout -q -b pr && echo pr >pr.txt && git add pr.txt\n"
    "git commit -qm pr && git rev-parse HEAD >\"$W/pr\" && git checkout -q "
    "main\n"
    "git clone -q --bare \"$W/main\" \"$S/main.git\"\n"
    "git -C \"$S/main.git\" update-ref refs/pull/1/head \"$(cat \"$W/pr\")\"\n"
    "git -C \"$S/main.git\" branch -q -D pr\n"
    /* deep.git inside sub.git inside withsub.git, by relative URLs */
    "git init -q -b main \"$W/deep\" && cd \"$W/deep\" && echo deep >deep.txt\n"
    "git add . && git commit -qm deep && git clone -q --bare . "
    "\"$S/deep.git\"\n"
    "git init -q -b main \"$W/sub\" && cd \"$W/sub\" && echo lib >lib.txt\n"
    "printf '[submodule \"deep\"]\\n\\tpath = deep\\n\\turl = ../deep.git\\n' "
    ">.gitmodules\n"
    "git update-index --add --cacheinfo \"160000,$(git -C \"$W/deep\" "
    "rev-parse HEAD),deep\"\n"
    "git add lib.txt .gitmodules && git commit -qm lib\n"
    "git clone -q --bare . \"$S/sub.git\"\n"
    "git init -q -b main \"$W/withsub\" && cd \"$W/withsub\" && echo top "
    ">top.txt\n"
    "printf '[submodule \"sub\"]\\n\\tpath = vendor/sub\\n\\turl = "
    "../sub.git\\n' >.gitmodules\n"
    "git update-index --add --cacheinfo \"160000,$(git -C \"$W/sub\" "
    "rev-parse HEAD),vendor/sub\"\n"
    "git add top.txt .gitmodules && git commit -qm withsub\n"
    "git clone -q --bare . \"$S/withsub.git\"\n";

static void read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");

    buf[0] = '\0';
    if (f != NULL) {
        if (fgets(buf, (int)size, f) == NULL) {
            buf[0] = '\0';
        }
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
}

static int start_servers(void **state)
{
    char script[256], path[256];
    FILE *f;

    (void)state;
    strcpy(srv.dir, "/tmp/kiln-git-XXXXXX");
    if (mkdtemp(srv.dir) == NULL || chmod(srv.dir, 0755) < 0) {
        return -1;
    }
    snprintf(srv.srv, sizeof(srv.srv), "%s/srv", srv.dir);
    snprintf(work, sizeof(work), "%s/work", srv.dir);
    gitf_env(srv.dir);
    setenv("KILN_GIT_TIMEOUT", "60", 1);
    snprintf(script, sizeof(script), "%s/make-repos.sh", srv.dir);
    f = fopen(script, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(make_repos, f);
    fclose(f);
    if (gitf_sh("bash '%s' '%s' '%s' >'%s/make-repos.log' 2>&1", script,
                srv.srv, work, srv.dir) != 0) {
        fprintf(stderr, "making the repositories failed; see %s\n", srv.dir);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/first", work);
    read_line(path, first, sizeof(first));
    snprintf(path, sizeof(path), "%s/zero", work);
    read_line(path, zero, sizeof(zero));
    snprintf(path, sizeof(path), "%s/pr", work);
    read_line(path, pr_sha, sizeof(pr_sha));
    return gitf_start(&srv) < 0 ? -1 : gitf_start_ssh(&srv);
}

static int stop_servers(void **state)
{
    (void)state;
    gitf_stop(&srv);
    return 0;
}

/* ---- builds ---- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    strcpy(f->root, "/tmp/kiln-git-root-XXXXXX");
    strcpy(f->out, "/tmp/kiln-git-out-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    assert_non_null(mkdtemp(f->out));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(gitf_sh("rm -rf '%s' '%s'", f->root, f->out), 0);
    free(f);
    return 0;
}

static kiln_llb_state_t *git_source(kiln_llb_t *b, const char *const *params)
{
    kiln_llb_state_t *st = kiln_llb_plugin_source(b, "git", params);

    assert_non_null(st);
    return st;
}

static kiln_definition_t *marshal(kiln_llb_t *b, kiln_llb_state_t *st)
{
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    uint8_t *bytes;
    size_t len;

    if (kiln_llb_marshal(b, st, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("%s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

/* A definition of one git source: translate parameters, NULL-ended. */
static kiln_definition_t *git_def(const char *first_param, ...)
{
    const char *params[16];
    kiln_llb_t *b;
    size_t n = 0;
    va_list ap;

    va_start(ap, first_param);
    for (const char *p = first_param; p != NULL && n < 15;
         p = va_arg(ap, const char *)) {
        params[n++] = p;
    }
    va_end(ap);
    params[n] = NULL;
    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    return marshal(b, git_source(b, params));
}

static void remote_of(char *buf, size_t size, const char *repo)
{
    snprintf(buf, size, "remote=git://127.0.0.1:%d/%s", srv.git_port, repo);
}

struct result {
    int rc;
    kiln_error_t err;
    kiln_solve_stats_t stats;
    char log[16384]; /* every message of the build */
    size_t log_len;
    pthread_mutex_t lock;
};

static void on_event(const kiln_event_t *ev, void *ud)
{
    struct result *r = ud;

    if ((ev->type == KILN_EVENT_MESSAGE || ev->type == KILN_EVENT_WARNING) &&
        ev->data != NULL) {
        pthread_mutex_lock(&r->lock);
        if (r->log_len + ev->len + 2 < sizeof(r->log)) {
            memcpy(r->log + r->log_len, ev->data, ev->len);
            r->log_len += ev->len;
            r->log[r->log_len++] = '\n';
            r->log[r->log_len] = '\0';
        }
        pthread_mutex_unlock(&r->lock);
    }
}

/* When positive, run() cancels the build after this many ms. */
static int cancel_after_ms;

static void run(struct fixture *f, kiln_definition_t *def,
                const char *const *secrets, struct result *r)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_solve_t *s;

    assert_int_equal(gitf_sh("rm -rf '%s' && mkdir '%s'", f->out, f->out), 0);
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    eo.root = f->root;
    eo.log_level = KILN_LOG_DEBUG;
    if (kiln_engine_new(&eo, &r->err, &e) < 0) {
        fail_msg("engine: %s", r->err.message);
    }
    so.definition = def;
    so.output = KILN_OUTPUT_LOCAL;
    so.output_dest = f->out;
    so.on_event = on_event;
    so.userdata = r;
    so.secrets = secrets;
    if (kiln_solve_start(e, &so, &r->err, &s) < 0) {
        fail_msg("solve: %s", r->err.message);
    }
    if (cancel_after_ms > 0) {
        usleep((useconds_t)cancel_after_ms * 1000);
        kiln_solve_cancel(s);
    }
    r->rc = kiln_solve_wait(s, &r->err);
    kiln_solve_stats(s, &r->stats);
    kiln_solve_free(s);
    kiln_engine_free(e);
    pthread_mutex_destroy(&r->lock);
}

static void build_ok(struct fixture *f, kiln_definition_t *def,
                     struct result *r)
{
    run(f, def, NULL, r);
    if (r->rc != 0) {
        fail_msg("build failed: %s\n%s", r->err.message, r->log);
    }
}

/* The build fails and its message holds every string given. */
static void build_fails(struct fixture *f, kiln_definition_t *def,
                        const char *const *secrets, ...)
{
    struct result r;
    const char *want;
    va_list ap;

    run(f, def, secrets, &r);
    if (r.rc == 0) {
        fail_msg("the build succeeded");
    }
    printf("# failed as expected: %s\n", r.err.message);
    va_start(ap, secrets);
    while ((want = va_arg(ap, const char *)) != NULL) {
        if (strstr(r.err.message, want) == NULL) {
            fail_msg("message \"%s\" lacks \"%s\"", r.err.message, want);
        }
    }
    va_end(ap);
}

/* The exported file `rel` holds `text` (one line). */
static void expect_text(const struct fixture *f, const char *rel,
                        const char *text)
{
    char path[512], buf[256];

    snprintf(path, sizeof(path), "%s/%s", f->out, rel);
    if (access(path, F_OK) != 0) {
        fail_msg("%s is missing from the result", rel);
    }
    read_line(path, buf, sizeof(buf));
    if (strcmp(buf, text) != 0) {
        fail_msg("%s: \"%s\", want \"%s\"", rel, buf, text);
    }
}

static void expect_absent(const struct fixture *f, const char *rel)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", f->out, rel);
    if (lstat(path, &st) == 0) {
        fail_msg("%s should not be in the result", rel);
    }
}

/* The cache repository of the one remote fetched into f->root. */
static void cache_repo(const struct fixture *f, char *buf, size_t size)
{
    char pattern[256];
    glob_t g;

    snprintf(pattern, sizeof(pattern), "%s/plugins/git/repos/*.git", f->root);
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, 1);
    snprintf(buf, size, "%s", g.gl_pathv[0]);
    globfree(&g);
}

#define NEED_HTTP()                                                            \
    do {                                                                       \
        if (srv.http_port == 0) {                                              \
            skip();                                                            \
        }                                                                      \
    } while (0)

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

/* A local repository named in git.fullurl: the file protocol, allowed for
 * it alone. */
static void test_local_remote(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    kiln_llb_state_t *st;
    kiln_llb_t *b;
    struct result r;
    char id[256], url[256];

    snprintf(id, sizeof(id), "git://file://%s/main.git#v1", srv.srv);
    snprintf(url, sizeof(url), "file://%s/main.git", srv.srv);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
        st = kiln_llb_source(b, id);
        st = kiln_llb_source_attr(st, "git.fullurl", i == 0 ? url : url + 7);
        def = marshal(b, st);
        build_ok(f, def, &r);
        expect_text(f, "README", "one");
        kiln_definition_free(def);
    }
}

/* ---- HTTP ---- */

static void test_http_token(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    char remote[128], secret[256], entry[300], wrong[300];
    const char *secrets[] = {entry, NULL};
    const char *bad[] = {wrong, NULL};
    struct result r;

    NEED_HTTP();
    snprintf(remote, sizeof(remote), "remote=http://127.0.0.1:%d/git/main.git",
             srv.http_port);
    snprintf(secret, sizeof(secret), "%s/token", srv.dir);
    assert_int_equal(gitf_sh("printf %s >'%s'", GITF_TOKEN, secret), 0);
    snprintf(entry, sizeof(entry), "GIT_AUTH_TOKEN=%s", secret);
    snprintf(wrong, sizeof(wrong), "GIT_AUTH_TOKEN=%s/make-repos.sh", srv.dir);

    def = git_def(remote, "ref=main", NULL);
    run(f, def, secrets, &r);
    if (r.rc != 0) {
        fail_msg("%s\n%s", r.err.message, r.log);
    }
    expect_text(f, "README", "two");
    if (strstr(r.log, GITF_TOKEN) != NULL) {
        fail_msg("the token is in the log:\n%s", r.log);
    }
    /* Without the token, or with a wrong one, the server refuses. */
    build_fails(f, def, NULL, "authentication failed", "http://127.0.0.1",
                (const char *)NULL);
    build_fails(f, def, bad, "authentication failed", (const char *)NULL);
    kiln_definition_free(def);
}

/* A server that serves no unadvertised commit (protocol v0): a commit no
 * ref points at comes with a full fetch. */
static void test_http_unadvertised(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[128], ref[96];

    NEED_HTTP();
    snprintf(remote, sizeof(remote), "remote=http://127.0.0.1:%d/pub/main.git",
             srv.http_port);
    snprintf(ref, sizeof(ref), "ref=%s", zero);
    def = git_def(remote, ref, NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "zero");
    if (strstr(r.log, "does not serve commit") == NULL) {
        fail_msg("no fallback to a full fetch:\n%s", r.log);
    }
    kiln_definition_free(def);
}

/* User and password of a URL never reach the identifier or a message. */
static void test_credentials_hidden(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    kiln_translated_t *t = NULL;
    kiln_error_t err = {0};
    struct result r;
    char remote[160];
    const char *params[] = {remote, "ref=nope", NULL};

    NEED_HTTP();
    snprintf(remote, sizeof(remote),
             "remote=http://x-access-token:%s@127.0.0.1:%d/git/main.git",
             GITF_TOKEN, srv.http_port);
    assert_int_equal(kiln_source_translate(NULL, "git", params, &t, &err), 0);
    assert_null(strstr(t->identifier, GITF_TOKEN));
    kiln_translated_free(t);

    def = git_def(remote, "ref=nope", NULL);
    run(f, def, NULL, &r);
    assert_int_not_equal(r.rc, 0);
    printf("# failed as expected: %s\n", r.err.message);
    assert_non_null(strstr(r.err.message, "ref 'nope' not found in "
                                          "http://xxxxx@127.0.0.1"));
    assert_null(strstr(r.err.message, GITF_TOKEN));
    assert_null(strstr(r.log, GITF_TOKEN));
    kiln_definition_free(def);

    /* A short password is hidden as well, and only it. */
    snprintf(remote, sizeof(remote),
             "remote=http://ab:cd@127.0.0.1:%d/git/main.git", srv.http_port);
    def = git_def(remote, "ref=main", NULL);
    run(f, def, NULL, &r);
    assert_int_not_equal(r.rc, 0);
    printf("# failed as expected: %s\n", r.err.message);
    assert_non_null(strstr(r.err.message, "authentication failed"));
    assert_null(strstr(r.err.message, "ab:cd@"));
    assert_null(strstr(r.log, "ab:cd@"));
    assert_non_null(strstr(r.log, "git ls-remote http://xxxxx@127.0.0.1"));
    kiln_definition_free(def);
    snprintf(remote, sizeof(remote),
             "remote=http://x-access-token:%s@127.0.0.1:%d/git/main.git",
             GITF_TOKEN, srv.http_port);

    /* The URL's credentials do authenticate. */
    def = git_def(remote, "ref=main", NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "two");
    assert_null(strstr(r.log, GITF_TOKEN));
    kiln_definition_free(def);
}

/* ---- SSH ---- */

/* ssh:// through sshd, the host checked against git.knownsshhosts, the
 * key from the agent of kiln's environment. */
static void test_ssh(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def;
    struct result r;
    char remote[256], known[600], wrong[600];

    if (srv.ssh_port == 0) {
        skip();
    }
    snprintf(remote, sizeof(remote), "remote=ssh://%s@127.0.0.1:%d%s/main.git",
             getpwuid(geteuid())->pw_name, srv.ssh_port, srv.srv);
    snprintf(known, sizeof(known), "knownsshhosts=%s", srv.known_host);
    def = git_def(remote, "ref=main", known, NULL);
    build_ok(f, def, &r);
    expect_text(f, "README", "two");
    kiln_definition_free(def);

    /* An unknown host, or one whose key is not the one listed. */
    def = git_def(remote, "ref=main", NULL);
    build_fails(f, def, NULL, "host key verification failed",
                "git.knownsshhosts", (const char *)NULL);
    kiln_definition_free(def);
    snprintf(wrong, sizeof(wrong),
             "knownsshhosts=[127.0.0.1]:%d ssh-ed25519 "
             "AAAAC3NzaC1lZDI1NTE5AAAAIA0SXsVJA3hZrdBc/qsOJg1dHjLfZRh1b3wMGtuo"
             "p3B5",
             srv.ssh_port);
    def = git_def(remote, "ref=main", wrong, NULL);
    build_fails(f, def, NULL, "git ls-remote ssh://",
                "host key verification failed", (const char *)NULL);
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
        cmocka_unit_test_setup_teardown(test_local_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_unadvertised, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_credentials_hidden, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ssh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };

    return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
