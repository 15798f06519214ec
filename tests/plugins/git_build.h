/*
 * What the git plugin's tests share: repositories made in a temporary
 * directory and served by git_fixture.h's servers (group setup and
 * teardown: start_servers(), stop_servers()), a store root and output
 * directory per test (setup(), teardown()), definitions of git sources
 * from translate parameters, builds through the public API with every
 * message kept, and checks of what they exported.
 */
#ifndef KILN_TEST_GIT_BUILD_H
#define KILN_TEST_GIT_BUILD_H

#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

#include "git_fixture.h"

static struct git_fixture srv; /* the servers, for every test */
static char work[128]; /* the working trees the repositories come from */
static char zero[48];  /* main's root commit, which no ref names */
static char first[48]; /* main's next commit (tag v1) */

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

static inline void read_line(const char *path, char *buf, size_t size)
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

static inline int start_servers(void **state)
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
    return gitf_start(&srv) < 0 ? -1 : gitf_start_ssh(&srv);
}

static inline int stop_servers(void **state)
{
    (void)state;
    gitf_stop(&srv);
    return 0;
}

/* ---- builds ---- */

static inline int setup(void **state)
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

static inline int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(gitf_sh("rm -rf '%s' '%s'", f->root, f->out), 0);
    free(f);
    return 0;
}

static inline kiln_llb_state_t *git_source(kiln_llb_t *b,
                                           const char *const *params)
{
    kiln_llb_state_t *st = kiln_llb_plugin_source(b, "git", params);

    assert_non_null(st);
    return st;
}

static inline kiln_definition_t *marshal(kiln_llb_t *b, kiln_llb_state_t *st)
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
static inline kiln_definition_t *git_def(const char *first_param, ...)
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

static inline void remote_of(char *buf, size_t size, const char *repo)
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

static inline void on_event(const kiln_event_t *ev, void *ud)
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

static inline void run(struct fixture *f, kiln_definition_t *def,
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

static inline void build_ok(struct fixture *f, kiln_definition_t *def,
                            struct result *r)
{
    run(f, def, NULL, r);
    if (r->rc != 0) {
        fail_msg("build failed: %s\n%s", r->err.message, r->log);
    }
}

/* The build fails and its message holds every string given. */
static inline void build_fails(struct fixture *f, kiln_definition_t *def,
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
static inline void expect_text(const struct fixture *f, const char *rel,
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

static inline void expect_absent(const struct fixture *f, const char *rel)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", f->out, rel);
    if (lstat(path, &st) == 0) {
        fail_msg("%s should not be in the result", rel);
    }
}

/* The cache repository of the one remote fetched into f->root. */
static inline void cache_repo(const struct fixture *f, char *buf, size_t size)
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

#endif
