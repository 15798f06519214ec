/*
 * The engine end to end through the public API: definitions made with the
 * C builder, solved into temporary store roots, results checked on disk.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

#include "testutil.h"

#include "engine/engine.h"

struct fixture {
    char root[64];
    char out[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    strcpy(f->root, "/tmp/kiln-solver-XXXXXX");
    strcpy(f->out, "/tmp/kiln-out-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    assert_non_null(mkdtemp(f->out));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->root, f->out);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static kiln_definition_t *marshal_def(kiln_llb_t *b, kiln_llb_state_t *st)
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

/* A chain of n mkfile ops on scratch; file i holds "i\n" plus `salt`. */
static kiln_definition_t *chain_def(size_t n, const char *salt)
{
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_definition_t *def = NULL;
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_scratch(b);
    for (size_t i = 0; i < n; i++) {
        char path[32], data[64];
        kiln_llb_file_t *fa = kiln_llb_actions(b);
        snprintf(path, sizeof(path), "/f%zu", i);
        snprintf(data, sizeof(data), "%zu\n%s", i, i == n - 1 ? salt : "");
        fa = kiln_llb_mkfile(fa, path, 0644, data, strlen(data), 0);
        st = kiln_llb_file(st, fa);
    }
    assert_int_equal(kiln_llb_marshal(b, st, &bytes, &len, NULL), 0);
    assert_int_equal(kiln_definition_load(bytes, len, NULL, &def), 0);
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

struct counts {
    int started, cached, completed, failed, canceled, progress;
    uint64_t progress_bytes;
    int max_running, running;
    int cancel_after;
    kiln_solve_t *solve;
};

static void count_event(const kiln_event_t *ev, void *ud)
{
    struct counts *c = ud;

    switch (ev->type) {
    case KILN_EVENT_VERTEX_STARTED:
        c->started++;
        if (++c->running > c->max_running) {
            c->max_running = c->running;
        }
        break;
    case KILN_EVENT_VERTEX_CACHED:
        c->cached++;
        break;
    case KILN_EVENT_VERTEX_COMPLETED:
        c->completed++;
        c->running--;
        if (c->cancel_after > 0 && c->completed == c->cancel_after) {
            kiln_solve_cancel(c->solve);
        }
        break;
    case KILN_EVENT_VERTEX_FAILED:
        c->failed++;
        c->running--;
        break;
    case KILN_EVENT_VERTEX_CANCELED:
        c->canceled++;
        c->running--;
        break;
    case KILN_EVENT_PROGRESS:
        c->progress++;
        c->progress_bytes = ev->current;
        break;
    default:
        break;
    }
}

static int solve(const char *root, kiln_definition_t *def, const char *out,
                 int no_cache, struct counts *c, kiln_solve_stats_t *stats,
                 kiln_error_t *err)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_solve_t *s;
    int rc;

    eo.root = root;
    eo.jobs = 2;
    assert_int_equal(kiln_engine_new(&eo, err, &e), 0);
    so.definition = def;
    so.no_cache = no_cache;
    so.on_event = count_event;
    so.userdata = c;
    if (out != NULL) {
        so.output = KILN_OUTPUT_LOCAL;
        so.output_dest = out;
    }
    assert_int_equal(kiln_solve_start(e, &so, err, &s), 0);
    c->solve = s;
    rc = kiln_solve_wait(s, err);
    if (stats != NULL) {
        kiln_solve_stats(s, stats);
    }
    kiln_solve_free(s);
    kiln_engine_free(e);
    return rc;
}

static void assert_file(const char *dir, const char *name, const char *want)
{
    char path[512], buf[256] = {0};
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        fail_msg("%s: missing", path);
    }
    assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
    close(fd);
    assert_string_equal(buf, want);
}

/* Build, export, rebuild fully cached. */
static void test_build_and_cache(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = chain_def(20, "");
    struct counts c = {0};
    kiln_solve_stats_t st;
    kiln_error_t err = {0};

    if (solve(f->root, def, f->out, 0, &c, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(st.total, 20);
    assert_int_equal(st.run, 20);
    assert_int_equal(c.completed, 20);
    assert_file(f->out, "f0", "0\n");
    assert_file(f->out, "f19", "19\n");

    memset(&c, 0, sizeof(c));
    assert_int_equal(solve(f->root, def, NULL, 0, &c, &st, &err), 0);
    assert_int_equal(st.total, 20);
    assert_int_equal(st.cached, 20);
    assert_int_equal(st.run, 0);
    assert_int_equal(c.started, 0);
    assert_int_equal(c.cached, 20);

    /* --no-cache runs everything again. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(solve(f->root, def, NULL, 1, &c, &st, &err), 0);
    assert_int_equal(st.run, 20);
    kiln_definition_free(def);
}

/* Changing the last op re-runs only it. */
static void test_partial_invalidation(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *a = chain_def(10, ""), *b = chain_def(10, "changed\n");
    struct counts c = {0};
    kiln_solve_stats_t st;
    kiln_error_t err = {0};

    assert_int_equal(solve(f->root, a, NULL, 0, &c, &st, &err), 0);
    memset(&c, 0, sizeof(c));
    if (solve(f->root, b, f->out, 0, &c, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(st.run, 1);
    assert_int_equal(st.cached, 9);
    assert_file(f->out, "f9", "9\nchanged\n");
    kiln_definition_free(a);
    kiln_definition_free(b);
}

/* Independent vertices run at the same time (jobs = 2). */
static void test_parallel(void **state)
{
    struct fixture *f = *state;
    kiln_llb_t *b;
    kiln_llb_state_t *in[4];
    kiln_definition_t *def = NULL;
    struct counts c = {0};
    kiln_error_t err = {0};
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    for (int i = 0; i < 4; i++) {
        char path[16];
        snprintf(path, sizeof(path), "/p%d", i);
        in[i] = kiln_llb_file(kiln_llb_scratch(b),
                              kiln_llb_mkfile(kiln_llb_actions(b), path, 0644,
                                              path, strlen(path), 0));
    }
    assert_int_equal(
        kiln_llb_marshal(b, kiln_llb_merge(b, in, 4), &bytes, &len, &err), 0);
    assert_int_equal(kiln_definition_load(bytes, len, &err, &def), 0);
    if (solve(f->root, def, f->out, 0, &c, NULL, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(c.max_running, 2);
    assert_file(f->out, "p3", "/p3");
    assert_file(f->out, "p0", "/p0");
    kiln_free(bytes);
    kiln_llb_free(b);
    kiln_definition_free(def);
}

/* A failing op fails the build with its name in the message. */
static void test_failure(void **state)
{
    struct fixture *f = *state;
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_definition_t *def = NULL;
    struct counts c = {0};
    kiln_error_t err = {0};
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_file(kiln_llb_scratch(b),
                       kiln_llb_rm(kiln_llb_actions(b), "/missing", 0));
    st = kiln_llb_custom_name(st, "remove the missing file");
    assert_int_equal(kiln_llb_marshal(b, st, &bytes, &len, &err), 0);
    assert_int_equal(kiln_definition_load(bytes, len, &err, &def), 0);
    assert_true(solve(f->root, def, NULL, 0, &c, NULL, &err) < 0);
    assert_non_null(strstr(err.message, "remove the missing file: "));
    assert_int_equal(c.failed, 1);
    kiln_free(bytes);
    kiln_llb_free(b);
    kiln_definition_free(def);
}

/* Cancel mid-build; the store stays usable and the rebuild is right. */
static void test_cancel(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = chain_def(200, "");
    struct counts c = {0};
    kiln_solve_stats_t st;
    kiln_error_t err = {0};

    c.cancel_after = 20;
    assert_int_equal(solve(f->root, def, NULL, 0, &c, &st, &err),
                     KILN_ECANCELED);
    assert_true(st.run < 200);
    memset(&c, 0, sizeof(c));
    if (solve(f->root, def, f->out, 0, &c, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_true(st.cached >= 20);
    assert_file(f->out, "f199", "199\n");
    kiln_definition_free(def);
}

/* Two processes on one root, and one killed mid-build. */
static void test_processes(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = chain_def(300, "");
    struct counts c = {0};
    kiln_error_t err = {0};
    pid_t pids[3];
    int status;

#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer cannot follow fork() of a threaded process; the
     * plain and ASan runs cover this test. */
    (void)f;
    (void)def;
    (void)c;
    (void)err;
    (void)pids;
    (void)status;
    printf("# test_processes: not run under ThreadSanitizer\n");
    kiln_definition_free(def);
    return;
#endif
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct counts cc = {0};
            _exit(solve(f->root, def, NULL, i == 2, &cc, NULL, &err) == 0
                      ? 0
                      : 1);
        }
    }
    usleep(200 * 1000);
    kill(pids[2], SIGKILL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (i < 2) {
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
    }
    if (solve(f->root, def, f->out, 0, &c, NULL, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_file(f->out, "f299", "299\n");
    kiln_definition_free(def);
}

/* An empty definition builds nothing and succeeds. */
static void test_empty(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = NULL;
    struct counts c = {0};
    kiln_solve_stats_t st;
    kiln_error_t err = {0};

    assert_int_equal(kiln_definition_load("", 0, &err, &def), 0);
    assert_int_equal(solve(f->root, def, NULL, 0, &c, &st, &err), 0);
    assert_int_equal(st.total, 0);
    kiln_definition_free(def);
}

/* A chain deeper than the snapshot depth limit, and a merge of many chains:
 * flattening keeps every file and its content. */
static void test_deep_and_wide(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *deep = chain_def(150, "");
    kiln_llb_t *b;
    kiln_llb_state_t *in[40];
    kiln_definition_t *wide;
    struct counts c = {0};
    kiln_solve_stats_t st;
    kiln_error_t err = {0};
    char name[32], want[32], out2[128];

    if (solve(f->root, deep, f->out, 0, &c, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    for (int i = 0; i < 150; i += 7) {
        snprintf(name, sizeof(name), "f%d", i);
        snprintf(want, sizeof(want), "%d\n", i);
        assert_file(f->out, name, want);
    }
    assert_file(f->out, "f149", "149\n");

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    for (int i = 0; i < 40; i++) {
        kiln_llb_state_t *s = kiln_llb_scratch(b);
        for (int j = 0; j < 5; j++) {
            snprintf(name, sizeof(name), "/w%d-%d", i, j);
            s = kiln_llb_file(s, kiln_llb_mkfile(kiln_llb_actions(b), name,
                                                 0644, name, strlen(name), 0));
        }
        in[i] = s;
    }
    wide = marshal_def(b, kiln_llb_merge(b, in, 40));
    memset(&c, 0, sizeof(c));
    snprintf(out2, sizeof(out2), "%s/wide", f->out);
    if (solve(f->root, wide, out2, 0, &c, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(st.run, 201);
    assert_file(out2, "w0-0", "/w0-0");
    assert_file(out2, "w39-4", "/w39-4");
    kiln_definition_free(deep);
    kiln_definition_free(wide);
}

/* OpMetadata.ignore_cache re-runs that op (and only it). */
static void test_ignore_cache(void **state)
{
    struct fixture *f = *state;
    kiln_llb_t *b;
    kiln_llb_state_t *st;
    kiln_definition_t *def;
    struct counts c = {0};
    kiln_solve_stats_t stats;
    kiln_error_t err = {0};

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_scratch(b);
    st = kiln_llb_file(st, kiln_llb_mkfile(kiln_llb_actions(b), "/a", 0644,
                                           "a", 1, 0));
    st = kiln_llb_ignore_cache(kiln_llb_file(
        st, kiln_llb_mkfile(kiln_llb_actions(b), "/b", 0644, "b", 1, 0)));
    st = kiln_llb_file(st, kiln_llb_mkfile(kiln_llb_actions(b), "/c", 0644,
                                           "c", 1, 0));
    def = marshal_def(b, st);
    assert_int_equal(solve(f->root, def, NULL, 0, &c, &stats, &err), 0);
    assert_int_equal(stats.run, 3);
    /* The top op is cached, so nothing below it is needed. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(solve(f->root, def, NULL, 0, &c, &stats, &err), 0);
    assert_int_equal(stats.run, 0);
    kiln_definition_free(def);

    /* With the ignored op on top, it runs again; its input is cached. */
    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_scratch(b);
    st = kiln_llb_file(st, kiln_llb_mkfile(kiln_llb_actions(b), "/a", 0644,
                                           "a", 1, 0));
    st = kiln_llb_ignore_cache(kiln_llb_file(
        st, kiln_llb_mkfile(kiln_llb_actions(b), "/b", 0644, "b", 1, 0)));
    def = marshal_def(b, st);
    memset(&c, 0, sizeof(c));
    if (solve(f->root, def, f->out, 0, &c, &stats, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(stats.run, 1);
    assert_int_equal(stats.cached, 1);
    assert_file(f->out, "b", "b");
    kiln_definition_free(def);
}

/* The first failure stops the rest of the build. */
static void test_failure_stops_the_rest(void **state)
{
    struct fixture *f = *state;
    kiln_llb_t *b;
    kiln_llb_state_t *in[2];
    kiln_definition_t *def;
    struct counts c = {0};
    kiln_solve_stats_t st;
    kiln_error_t err = {0};

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    in[0] = kiln_llb_file(kiln_llb_scratch(b),
                          kiln_llb_rm(kiln_llb_actions(b), "/nothing", 0));
    in[1] = kiln_llb_scratch(b);
    for (int i = 0; i < 300; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/g%d", i);
        in[1] = kiln_llb_file(in[1], kiln_llb_mkfile(kiln_llb_actions(b), path,
                                                     0644, "x", 1, 0));
    }
    def = marshal_def(b, kiln_llb_merge(b, in, 2));
    assert_true(solve(f->root, def, NULL, 0, &c, &st, &err) < 0);
    assert_non_null(strstr(err.message, "/nothing"));
    assert_int_equal(c.failed, 1);
    assert_true(st.run < 300);
    assert_int_equal(c.running, 0);
    kiln_definition_free(def);
}

struct loop_done {
    int calls;
    int status;
};

static void on_done(kiln_solve_t *s, int status, void *ud)
{
    struct loop_done *d = ud;

    (void)s;
    d->calls++;
    d->status = status;
}

/* An embedder's loop: the engine runs on it, on_done reports the end. */
static void test_embedder_loop(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = chain_def(30, "");
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    struct loop_done d = {0, 1};
    kiln_error_t err = {0};
    kiln_engine_t *e;
    kiln_solve_t *s;
    uv_loop_t loop;

    assert_int_equal(uv_loop_init(&loop), 0);
    eo.root = f->root;
    eo.loop = &loop;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    so.definition = def;
    so.output = KILN_OUTPUT_LOCAL;
    so.output_dest = f->out;
    /* on_done is required with an embedder's loop. */
    assert_int_equal(kiln_solve_start(e, &so, &err, &s), KILN_EINVAL);
    so.on_done = on_done;
    so.userdata = &d;
    assert_int_equal(kiln_solve_start(e, &so, &err, &s), 0);
    assert_int_equal(kiln_solve_wait(s, &err), KILN_EINVAL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_file(f->out, "f29", "29\n");
    kiln_solve_free(s);
    kiln_engine_free(e);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    kiln_definition_free(def);
}

/* Two solves of one engine that want the same vertices run them once. */
static void test_dedup(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *def = chain_def(40, "");
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln__store_usage_t usage = {0};
    kiln_error_t err = {0};
    kiln_solve_stats_t st[2];
    kiln_engine_t *e;
    kiln_solve_t *s[2];

    eo.root = f->root;
    eo.jobs = 2;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    so.definition = def;
    so.no_cache = 1; /* each solve would run every op without dedup */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kiln_solve_start(e, &so, &err, &s[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        if (kiln_solve_wait(s[i], &err) != 0) {
            fail_msg("%s", err.message);
        }
        kiln_solve_stats(s[i], &st[i]);
        assert_int_equal(st[i].total, 40);
    }
    /* Both solves still hold what they used: one layer per op, not two. */
    assert_int_equal(kiln__store_du(e->store, NULL, NULL, &usage, &err), 0);
    assert_int_equal(usage.n_layers, 40);
    assert_int_equal(usage.n_records, 40);
    kiln_solve_free(s[0]);
    kiln_solve_free(s[1]);
    kiln_engine_free(e);
    kiln_definition_free(def);
}

/* A source op with no plugin for its scheme fails with a clear message. */
static void test_unknown_source(void **state)
{
    struct fixture *f = *state;
    kiln_llb_t *b;
    kiln_definition_t *def;
    struct counts c = {0};
    kiln_error_t err = {0};

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    def = marshal_def(b, kiln_llb_source(b, "nosuch://thing"));
    assert_true(solve(f->root, def, NULL, 0, &c, NULL, &err) < 0);
    assert_non_null(
        strstr(err.message, "no source plugin handles scheme 'nosuch'"));
    kiln_definition_free(def);
}

/* /src/a and /src/b, then a copy of /src/a alone onto scratch. */
static kiln_definition_t *copy_def(const char *a, const char *b_data)
{
    kiln_llb_t *b;
    kiln_llb_state_t *src;
    kiln_llb_file_t *fa;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    fa = kiln_llb_mkdir(kiln_llb_actions(b), "/src", 0755, 0);
    fa = kiln_llb_mkfile(fa, "/src/a", 0644, a, strlen(a), 0);
    src = kiln_llb_file(kiln_llb_scratch(b), fa);
    src = kiln_llb_file(src, kiln_llb_mkfile(kiln_llb_actions(b), "/src/b",
                                             0644, b_data, strlen(b_data), 0));
    return marshal_def(
        b, kiln_llb_file(kiln_llb_scratch(b),
                         kiln_llb_copy(kiln_llb_actions(b), src, "/src/a",
                                       "/a", 0)));
}

/* A copy whose input changed elsewhere is a hit through its content key;
 * a change to what it copies is not. */
static void test_content_keys(void **state)
{
    struct fixture *f = *state;
    kiln_definition_t *d1 = copy_def("same", "1"), *d2 = copy_def("same", "2"),
                      *d3 = copy_def("other", "2");
    struct counts c = {0};
    kiln_solve_stats_t st;
    kiln_error_t err = {0};

    assert_int_equal(solve(f->root, d1, NULL, 0, &c, &st, &err), 0);
    assert_int_equal(st.run, 3);
    /* The copy reported the bytes it copied. */
    assert_true(c.progress >= 1);
    assert_int_equal(c.progress_bytes, 4);
    memset(&c, 0, sizeof(c));
    if (solve(f->root, d2, f->out, 0, &c, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(st.total, 3);
    assert_int_equal(st.run, 1);    /* mkfile /src/b */
    assert_int_equal(st.cached, 2); /* mkfile /src/a, and the copy */
    assert_file(f->out, "a", "same");
    /* Now the fast key hits too. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(solve(f->root, d2, NULL, 0, &c, &st, &err), 0);
    assert_int_equal(st.cached, 3);
    assert_int_equal(c.started, 0);
    memset(&c, 0, sizeof(c));
    if (solve(f->root, d3, f->out, 0, &c, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(st.run, 3);
    assert_file(f->out, "a", "other");
    kiln_definition_free(d1);
    kiln_definition_free(d2);
    kiln_definition_free(d3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_and_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_invalidation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_and_wide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_stops_the_rest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_embedder_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
