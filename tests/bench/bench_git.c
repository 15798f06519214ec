/*
 * The git source plugin's fetch and re-resolve, through the engine API,
 * against a repository with a long history served by git daemon on
 * 127.0.0.1: 5,000 commits (KILN_BENCH_GIT_COMMITS) whose tip checks out
 * to about 20 MB (KILN_BENCH_GIT_MB), made with git fast-import.
 *
 *   clone      `git clone --depth 1` of the tip, the reference
 *   cold       a definition of git://.../big.git#main solved into a fresh
 *              store root (ls-remote, shallow fetch, checkout, store)
 *   unchanged  the same definition again: ls-remote, the same pin, a hit
 *
 * Each is run three times; the best is printed, with whether the targets
 * are met (cold within 1.2x of the clone, unchanged under 100 ms).
 * Asserts nothing. Run: meson test -C build --benchmark -v git
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

/* net_fixture.h checks with cmocka's macros: plain aborts here. */
#define assert_true(x)                                                         \
    do {                                                                       \
        if (!(x)) {                                                            \
            abort();                                                           \
        }                                                                      \
    } while (0)
#define assert_int_equal(a, b) assert_true((a) == (b))
#include "../unit/net_fixture.h"

#include "../plugins/git_fixture.h"

#define RUNS 3

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_git: %s\n", what);
    exit(1);
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);

    return v != NULL && atol(v) > 0 ? atol(v) : def;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* One blob of `n` bytes of hex text (poorly compressible, like code
 * that is not). */
static void put_blob(FILE *f, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    fprintf(f, "data %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        fputc((i % 64) == 63 ? '\n' : hex[next_rand() & 15], f);
    }
    fputc('\n', f);
}

/* big.git: `commits` commits on main; the first adds `mb` MB in 100 KB
 * files, each later one adds a small file and edits a line of the log. */
static void make_repo(const char *srv, long commits, long mb)
{
    char cmd[512];
    long files = mb * 10;
    FILE *f;

    snprintf(cmd, sizeof(cmd),
             "git init -q --bare -b main '%s/big.git' && cd '%s/big.git' && "
             "git fast-import --quiet",
             srv, srv);
    f = popen(cmd, "w");
    if (f == NULL) {
        die("cannot run git fast-import");
    }
    for (long c = 0; c < commits; c++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "commit %05ld\n", c);

        fprintf(f,
                "commit refs/heads/main\n"
                "committer kiln <kiln@example.com> %ld +0000\n"
                "data %d\n%s",
                1600000000L + c, n, msg);
        if (c == 0) {
            for (long i = 0; i < files; i++) {
                fprintf(f, "M 100644 inline data/%03ld/file%04ld.txt\n",
                        i / 100, i);
                put_blob(f, 100 * 1024);
            }
        } else {
            fprintf(f, "M 100644 inline history/%03ld/%05ld.txt\n", c / 500, c);
            put_blob(f, 512);
            fprintf(f, "M 100644 inline LOG\n");
            fprintf(f, "data 13\nlast: %06ld\n\n", c);
        }
    }
    if (pclose(f) != 0) {
        die("git fast-import failed");
    }
    if (gitf_sh("cd '%s/big.git' && git repack -q -a -d && "
                "git gc -q --prune=now",
                srv) != 0) {
        die("git repack failed");
    }
}

static double time_clone(const struct git_fixture *g, int i)
{
    double t0 = now();

    if (gitf_sh("git clone -q --depth 1 git://127.0.0.1:%d/big.git "
                "'%s/clone%d'",
                g->git_port, g->dir, i) != 0) {
        die("git clone failed");
    }
    return now() - t0;
}

static kiln_definition_t *definition(const struct git_fixture *g)
{
    char remote[128];
    const char *params[] = {remote, "ref=main", NULL};
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    kiln_llb_t *b;
    uint8_t *bytes;
    size_t len;

    snprintf(remote, sizeof(remote), "remote=git://127.0.0.1:%d/big.git",
             g->git_port);
    if (kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b) < 0 ||
        kiln_llb_marshal(b, kiln_llb_plugin_source(b, "git", params), &bytes,
                         &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        die(err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

/* One solve into `root`: seconds; *cached tells whether it was a hit. */
static double time_solve(const char *root, kiln_definition_t *def, bool *cached)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_solve_stats_t st;
    kiln_error_t err = {0};
    kiln_engine_t *e;
    kiln_solve_t *s;
    double t0;

    eo.root = root;
    if (kiln_engine_new(&eo, &err, &e) < 0) {
        die(err.message);
    }
    so.definition = def;
    t0 = now();
    if (kiln_solve_start(e, &so, &err, &s) < 0 ||
        kiln_solve_wait(s, &err) < 0) {
        die(err.message);
    }
    t0 = now() - t0;
    kiln_solve_stats(s, &st);
    *cached = st.cached == st.total;
    kiln_solve_free(s);
    kiln_engine_free(e);
    return t0;
}

static double best(const double *v)
{
    double b = v[0];

    for (int i = 1; i < RUNS; i++) {
        b = v[i] < b ? v[i] : b;
    }
    return b;
}

int main(void)
{
    struct git_fixture g = {0};
    long commits = env_long("KILN_BENCH_GIT_COMMITS", 5000);
    long mb = env_long("KILN_BENCH_GIT_MB", 20);
    double clone[RUNS], cold[RUNS], warm[RUNS], t0;
    kiln_definition_t *def;
    char du[64], cmd[256];
    bool hit;

    strcpy(g.dir, "/tmp/kiln-bench-git-XXXXXX");
    if (mkdtemp(g.dir) == NULL) {
        die("mkdtemp");
    }
    snprintf(g.srv, sizeof(g.srv), "%s/srv", g.dir);
    gitf_env(g.dir);
    if (gitf_sh("mkdir -p '%s'", g.srv) != 0) {
        die("mkdir");
    }
    t0 = now();
    make_repo(g.srv, commits, mb);
    snprintf(cmd, sizeof(cmd), "du -sh '%s/big.git' | cut -f1", g.srv);
    gitf_capture(du, sizeof(du), cmd);
    printf("repository: %ld commits, tip %ld MB, %s packed (made in %.1f s)\n",
           commits, mb, du, now() - t0);
    if (gitf_start(&g) < 0) {
        die("git daemon did not start");
    }
    def = definition(&g);
    for (int i = 0; i < RUNS; i++) {
        char root[256];

        clone[i] = time_clone(&g, i);
        snprintf(root, sizeof(root), "%s/root%d", g.dir, i);
        cold[i] = time_solve(root, def, &hit);
        if (hit) {
            die("the cold solve was a cache hit");
        }
        warm[i] = time_solve(root, def, &hit);
        if (!hit) {
            die("the unchanged solve was not a cache hit");
        }
        printf("run %d: clone %.3f s, cold %.3f s, unchanged %.1f ms\n", i + 1,
               clone[i], cold[i], warm[i] * 1000);
    }
    printf("git clone --depth 1:   %.3f s\n", best(clone));
    printf("kiln cold fetch:       %.3f s (%.2fx the clone; target <= 1.2x: "
           "%s)\n",
           best(cold), best(cold) / best(clone),
           best(cold) <= 1.2 * best(clone) ? "met" : "NOT met");
    printf("kiln unchanged solve:  %.1f ms (target < 100 ms: %s)\n",
           best(warm) * 1000, best(warm) < 0.1 ? "met" : "NOT met");
    kiln_definition_free(def);
    gitf_stop(&g);
    return 0;
}
