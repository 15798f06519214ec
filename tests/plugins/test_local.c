/*
 * The local source plugin through the public API: definitions made with
 * the C builder (a local source "ctx" copied onto scratch), solved into
 * temporary store roots with --local ctx=DIR and exported to directories.
 * What was selected, cached, re-hashed or refused is read back from the
 * exported files, the solve's stats, its error and its DEBUG messages (the
 * plugin logs "re-hashed N of M files" on every resolve).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

#define MTIME 1500000000

/* Per test: a source directory, a store root and an output directory. */
struct fixture {
    char base[64];
    char src[96];
    char root[96];
    char out[96];
};

/* What one solve gave. */
typedef struct result {
    int rc;
    kiln_error_t err;
    kiln_solve_stats_t stats;
    long rehashed; /* from the last "re-hashed N of M files"; -1: none */
    long files;
} result_t;

/* ---- helpers ---- */

static void path_of(char *buf, size_t size, const char *dir, const char *rel)
{
    snprintf(buf, size, "%s/%s", dir, rel);
}

/* Writes src/rel (creating parents), with a fixed mtime. */
static void put(const struct fixture *f, const char *rel, const char *text)
{
    char path[512];
    struct timespec ts[2] = {{MTIME, 0}, {MTIME, 0}};
    int fd;

    path_of(path, sizeof(path), f->src, rel);
    for (char *s = strchr(path + strlen(f->src) + 1, '/'); s != NULL;
         s = strchr(s + 1, '/')) {
        *s = '\0';
        assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
        *s = '/';
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(futimens(fd, ts), 0);
    assert_int_equal(close(fd), 0);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (fp == NULL) {
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return buf;
}

static void assert_out_file(const struct fixture *f, const char *rel,
                            const char *text)
{
    char path[512];
    char *got;

    path_of(path, sizeof(path), f->out, rel);
    got = slurp(path);
    if (got == NULL) {
        fail_msg("%s was not exported", rel);
    }
    assert_string_equal(got, text);
    free(got);
}

/* The tree below dir as "a,b/,b/c" (directories with a trailing '/'),
 * sorted. */
static void list_tree(const char *dir, const char *rel, char *buf, size_t size)
{
    char path[512];
    struct dirent **names;
    int n;

    snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
    n = scandir(path, &names, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        char sub[512], full[600];
        struct stat st;
        const char *name = names[i]->d_name;

        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", name);
            snprintf(full, sizeof(full), "%s/%s", dir, sub);
            assert_int_equal(lstat(full, &st), 0);
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s%s",
                     *buf ? "," : "", sub, S_ISDIR(st.st_mode) ? "/" : "");
            if (S_ISDIR(st.st_mode)) {
                list_tree(dir, sub, buf, size);
            }
        }
        free(names[i]);
    }
    free(names);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->base, sizeof(f->base), "/tmp/kiln-test-local-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->src, sizeof(f->src), "%s/src", f->base);
    snprintf(f->root, sizeof(f->root), "%s/root", f->base);
    snprintf(f->out, sizeof(f->out), "%s/out", f->base);
    assert_int_equal(mkdir(f->src, 0755), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    rm_tree(f->base);
    free(f);
    return 0;
}

/* Lets the clock move past the files just written, so that their
 * metadata is trustworthy (not "racily clean") at the next resolve. */
static void settle(void)
{
    struct timespec ts = {0, 120 * 1000 * 1000};

    nanosleep(&ts, NULL);
}

/* Patterns of a local source; NULL-terminated lists, each may be NULL. */
typedef struct spec {
    const char *const *include;
    const char *const *exclude;
    const char *const *follow;
} spec_t;

/* local://ctx with `s`, copied onto scratch. */
static kiln_definition_t *make_def(const spec_t *s)
{
    kiln_llb_t *b;
    kiln_llb_state_t *st, *res;
    kiln_error_t err = {0};
    kiln_definition_t *def = NULL;
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    assert_int_equal(kiln_llb_set_local_unique_id(b, "kilntestlocal"), 0);
    st = kiln_llb_local(b, "ctx");
    for (size_t i = 0; s->include && s->include[i]; i++) {
        st = kiln_llb_local_include(st, s->include[i]);
    }
    for (size_t i = 0; s->exclude && s->exclude[i]; i++) {
        st = kiln_llb_local_exclude(st, s->exclude[i]);
    }
    for (size_t i = 0; s->follow && s->follow[i]; i++) {
        st = kiln_llb_local_follow_path(st, s->follow[i]);
    }
    res = kiln_llb_file(kiln_llb_scratch(b),
                        kiln_llb_copy(kiln_llb_actions(b), st, "/", "/", 0));
    if (kiln_llb_marshal(b, res, &bytes, &len, &err) < 0) {
        fail_msg("marshal: %s", err.message);
    }
    if (kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("load: %s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;

/* Keeps the counts of the plugin's last "re-hashed N of M files". */
static void on_event(const kiln_event_t *ev, void *ud)
{
    result_t *r = ud;
    char msg[1024];
    const char *p;

    if (ev->type != KILN_EVENT_MESSAGE) {
        return;
    }
    snprintf(msg, sizeof(msg), "%.*s", (int)ev->len, (const char *)ev->data);
    p = strstr(msg, "re-hashed ");
    pthread_mutex_lock(&ev_lock);
    if (p != NULL &&
        sscanf(p, "re-hashed %ld of %ld", &r->rehashed, &r->files) != 2) {
        r->rehashed = -2;
    }
    pthread_mutex_unlock(&ev_lock);
}

/* Solves `def` with ctx mapped to f->src (or nothing when !map), output
 * to f->out (emptied first). */
static result_t solve(const struct fixture *f, const kiln_definition_t *def,
                      bool map)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e = NULL;
    kiln_solve_t *s = NULL;
    result_t r = {.rehashed = -1, .files = -1};
    char local[128];
    const char *locals[] = {local, NULL};

    snprintf(local, sizeof(local), "ctx=%s", f->src);
    rm_tree(f->out);
    eo.root = f->root;
    eo.log_level = KILN_LOG_DEBUG;
    if (kiln_engine_new(&eo, &r.err, &e) < 0) {
        fail_msg("engine: %s", r.err.message);
    }
    so.definition = def;
    so.output = KILN_OUTPUT_LOCAL;
    so.output_dest = f->out;
    so.locals = map ? locals : NULL;
    so.on_event = on_event;
    so.userdata = &r;
    if (kiln_solve_start(e, &so, &r.err, &s) < 0) {
        fail_msg("solve start: %s", r.err.message);
    }
    r.rc = kiln_solve_wait(s, &r.err);
    kiln_solve_stats(s, &r.stats);
    kiln_solve_free(s);
    kiln_engine_free(e);
    return r;
}

static void assert_ok(const result_t *r)
{
    if (r->rc != 0) {
        fail_msg("solve failed (%d): %s", r->rc, r->err.message);
    }
}

/* ---- pattern cases ---- */

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *const tree_files[] = {
    "a.go",
    "b.txt",
    "README.md",
    "Dockerfile",
    "x1.c",
    "x22.c",
    "src/main.go",
    "src/util/x.go",
    "src/util/x.tmp",
    "src/util/y.txt",
    "docs/guide.md",
    "docs/img/logo.png",
    "node_modules/pkg/index.js",
    "node_modules/keep/k.js",
    "build/out.o",
    "build/keep.txt",
    NULL,
};

#define ALL                                                                    \
    "Dockerfile,README.md,a.go,b.txt,build/,build/keep.txt,build/out.o,"       \
    "docs/,docs/guide.md,docs/img/,docs/img/logo.png,node_modules/,"           \
    "node_modules/keep/,node_modules/keep/k.js,node_modules/pkg/,"             \
    "node_modules/pkg/index.js,src/,src/main.go,src/util/,src/util/x.go,"      \
    "src/util/x.tmp,src/util/y.txt,x1.c,x22.c"

static const struct pattern_case {
    const char *what;
    spec_t spec;
    const char *want;
} pattern_cases[] = {
    {"no patterns", {NULL, NULL, NULL}, ALL},
    {"include *", {L("*"), NULL, NULL}, ALL},
    {"include *.go: top level only", {L("*.go"), NULL, NULL}, "a.go"},
    {"include ?", {L("x?.c"), NULL, NULL}, "x1.c"},
    {"include [ab].*", {L("[ab].*"), NULL, NULL}, "a.go,b.txt"},
    {"include a directory",
     {L("src"), NULL, NULL},
     "src/,src/main.go,src/util/,src/util/x.go,src/util/x.tmp,"
     "src/util/y.txt"},
    {"include src/**/*.go",
     {L("src/**/*.go"), NULL, NULL},
     "src/,src/main.go,src/util/,src/util/x.go"},
    {"include **/*.md",
     {L("**/*.md"), NULL, NULL},
     "README.md,docs/,docs/guide.md"},
    {"include a file deep: parents kept",
     {L("build/keep.txt"), NULL, NULL},
     "build/,build/keep.txt"},
    /* A leading "/" is kept by patternmatcher.New (only .dockerignore
     * parsing strips it), so it matches no relative path. */
    {"include with leading /", {L("/docs/img"), NULL, NULL}, ""},
    {"exclude *.txt: top level only",
     {NULL, L("*.txt"), NULL},
     "Dockerfile,README.md,a.go,build/,build/keep.txt,build/out.o,"
     "docs/,docs/guide.md,docs/img/,docs/img/logo.png,node_modules/,"
     "node_modules/keep/,node_modules/keep/k.js,node_modules/pkg/,"
     "node_modules/pkg/index.js,src/,src/main.go,src/util/,src/util/x.go,"
     "src/util/x.tmp,src/util/y.txt,x1.c,x22.c"},
    {"exclude **/*.txt",
     {NULL, L("**/*.txt"), NULL},
     "Dockerfile,README.md,a.go,build/,build/out.o,"
     "docs/,docs/guide.md,docs/img/,docs/img/logo.png,node_modules/,"
     "node_modules/keep/,node_modules/keep/k.js,node_modules/pkg/,"
     "node_modules/pkg/index.js,src/,src/main.go,src/util/,src/util/x.go,"
     "src/util/x.tmp,x1.c,x22.c"},
    {"exclude a directory",
     {L("node_modules", "src"), L("node_modules"), NULL},
     "src/,src/main.go,src/util/,src/util/x.go,src/util/x.tmp,"
     "src/util/y.txt"},
    {"exclude with ! re-include",
     {L("node_modules"), L("node_modules", "!node_modules/keep"), NULL},
     "node_modules/,node_modules/keep/,node_modules/keep/k.js"},
    {"exclude with leading /",
     {L("build", "x1.c"), L("/build"), NULL},
     "build/,build/keep.txt,build/out.o,x1.c"},
    {"exclude a nested directory",
     {L("docs"), L("docs/img"), NULL},
     "docs/,docs/guide.md"},
    {"exclude nested files",
     {L("src"), L("src/util/*.tmp"), NULL},
     "src/,src/main.go,src/util/,src/util/x.go,src/util/y.txt"},
    {"include and exclude",
     {L("src", "docs"), L("**/*.tmp", "docs/img", "src/util/y.txt"), NULL},
     "docs/,docs/guide.md,src/,src/main.go,src/util/,src/util/x.go"},
    {"exclude everything but one",
     {NULL, L("*", "!Dockerfile"), NULL},
     "Dockerfile"},
    {"exclude below a directory, one back",
     {L("build"), L("build/*", "!build/keep.txt"), NULL},
     "build/,build/keep.txt"},
    {"exclude ** then re-include a deep file",
     {NULL, L("**", "!src/util/x.go"), NULL},
     "src/,src/util/,src/util/x.go"},
    {"include with .. cleaned",
     {L("src/../docs"), NULL, NULL},
     "docs/,docs/guide.md,docs/img/,docs/img/logo.png"},
};

static void test_patterns(void **state)
{
    struct fixture *f = *state;
    size_t n = sizeof(pattern_cases) / sizeof(pattern_cases[0]);
    int failed = 0;

    for (size_t i = 0; tree_files[i] != NULL; i++) {
        put(f, tree_files[i], tree_files[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const struct pattern_case *c = &pattern_cases[i];
        kiln_definition_t *def = make_def(&c->spec);
        result_t r = solve(f, def, true);
        char got[4096] = "";

        assert_ok(&r);
        list_tree(f->out, "", got, sizeof(got));
        if (strcmp(got, c->want) != 0) {
            print_error("case '%s':\n  want %s\n  got  %s\n", c->what, c->want,
                        got);
            failed++;
        }
        if (i == 0) {
            assert_out_file(f, "src/util/x.go", "src/util/x.go");
        }
        kiln_definition_free(def);
    }
    assert_int_equal(failed, 0);
}

/* ---- caching and incremental hashing ---- */

static void test_unchanged_is_cached(void **state)
{
    struct fixture *f = *state;
    spec_t s = {NULL, L("*.log"), NULL};
    kiln_definition_t *def = make_def(&s);
    result_t r;

    for (size_t i = 0; tree_files[i] != NULL; i++) {
        put(f, tree_files[i], tree_files[i]);
    }
    put(f, "run.log", "one");
    settle();
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 16);
    assert_int_equal(r.files, 16);
    assert_true(r.stats.run >= 1);

    /* Same tree: resolved by stat() alone, everything cached. */
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 0);
    assert_int_equal(r.files, 16);
    assert_int_equal(r.stats.cached, r.stats.total);
    assert_out_file(f, "src/main.go", "src/main.go");

    /* A change outside the patterns changes nothing. */
    put(f, "run.log", "two, longer");
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 0);
    assert_int_equal(r.stats.cached, r.stats.total);

    /* One changed file: only it is read again, and the build re-runs. */
    put(f, "src/main.go", "package main // v2");
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 1);
    assert_int_equal(r.files, 16);
    assert_true(r.stats.cached < r.stats.total);
    assert_out_file(f, "src/main.go", "package main // v2");
    kiln_definition_free(def);
}

/* The metadata that decides whether a file is read again includes the
 * inode and ctime, not just size and mtime; and a file hashed while its
 * timestamps could still hide a write (written in the same clock tick) is
 * never trusted from the cache. */
static void test_replaced_file(void **state)
{
    struct fixture *f = *state;
    spec_t s = {NULL, NULL, NULL};
    kiln_definition_t *def = make_def(&s);
    char path[512];
    result_t r;

    put(f, "a", "alpha");
    put(f, "b", "beta");
    settle();
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 2);

    /* A new file of the same name, size and mtime: a new inode. */
    path_of(path, sizeof(path), f->src, "b");
    assert_int_equal(unlink(path), 0);
    put(f, "b", "BETA");
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 1);
    assert_out_file(f, "b", "BETA");

    /* Rewritten in place right after it was hashed, same size and mtime:
     * it was racily clean, so it is read again. */
    put(f, "b", "Beta");
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 1);
    assert_out_file(f, "b", "Beta");

    /* Once settled it is trusted again; then an in-place rewrite of the
     * same size and mtime is told by its ctime alone. */
    settle();
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 1);
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 0);
    put(f, "b", "bETA");
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 1);
    assert_out_file(f, "b", "bETA");
    kiln_definition_free(def);
}

/* ---- failures ---- */

static void test_no_mapping(void **state)
{
    struct fixture *f = *state;
    spec_t s = {NULL, NULL, NULL};
    kiln_definition_t *def = make_def(&s);
    result_t r;

    put(f, "a", "alpha");
    r = solve(f, def, false);
    assert_int_not_equal(r.rc, 0);
    if (strstr(r.err.message, "local source 'ctx': no directory given (kiln "
                              "build --local ctx=DIR)") == NULL) {
        fail_msg("unexpected message: %s", r.err.message);
    }
    kiln_definition_free(def);
}

static void test_fifo(void **state)
{
    struct fixture *f = *state;
    spec_t s = {NULL, NULL, NULL}, skip = {NULL, L("sub/pipe"), NULL};
    kiln_definition_t *def = make_def(&s), *def2 = make_def(&skip);
    char path[512], want[600];
    result_t r;

    put(f, "sub/a", "alpha");
    path_of(path, sizeof(path), f->src, "sub/pipe");
    assert_int_equal(mkfifo(path, 0644), 0);
    r = solve(f, def, true);
    assert_int_not_equal(r.rc, 0);
    snprintf(want, sizeof(want), "%s is a fifo", path);
    if (strstr(r.err.message, want) == NULL) {
        fail_msg("unexpected message: %s", r.err.message);
    }

    /* Excluded, it is not a problem. */
    r = solve(f, def2, true);
    assert_ok(&r);
    assert_out_file(f, "sub/a", "alpha");
    kiln_definition_free(def);
    kiln_definition_free(def2);
}

/* ---- what is copied ---- */

static void assert_link(const struct fixture *f, const char *rel,
                        const char *target)
{
    char path[512], got[512];
    struct stat st;
    ssize_t n;

    path_of(path, sizeof(path), f->out, rel);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    n = readlink(path, got, sizeof(got) - 1);
    assert_true(n >= 0);
    got[n] = '\0';
    assert_string_equal(got, target);
}

static void test_symlinks(void **state)
{
    struct fixture *f = *state;
    spec_t s = {NULL, NULL, NULL};
    kiln_definition_t *def = make_def(&s);
    char path[512];
    result_t r;

    put(f, "dir/file", "data");
    path_of(path, sizeof(path), f->src, "rel");
    assert_int_equal(symlink("dir/file", path), 0);
    path_of(path, sizeof(path), f->src, "abs");
    assert_int_equal(symlink("/etc/passwd", path), 0);
    path_of(path, sizeof(path), f->src, "dangling");
    assert_int_equal(symlink("no/such/thing", path), 0);
    path_of(path, sizeof(path), f->src, "dirlink");
    assert_int_equal(symlink("dir", path), 0);
    settle();
    r = solve(f, def, true);
    assert_ok(&r);
    assert_link(f, "rel", "dir/file");
    assert_link(f, "abs", "/etc/passwd");
    assert_link(f, "dangling", "no/such/thing");
    assert_link(f, "dirlink", "dir");
    assert_out_file(f, "dir/file", "data");

    /* Retargeting a link changes the pin. */
    path_of(path, sizeof(path), f->src, "rel");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("dir/../dir/file", path), 0);
    r = solve(f, def, true);
    assert_ok(&r);
    assert_true(r.stats.cached < r.stats.total);
    assert_link(f, "rel", "dir/../dir/file");
    kiln_definition_free(def);
}

/* Follow paths bring the targets of the symlinks they name (fsutil's
 * FollowLinks), which stay symlinks. */
static void test_follow_paths(void **state)
{
    struct fixture *f = *state;
    spec_t s = {L("Dockerfile"), NULL, L("Dockerfile")};
    kiln_definition_t *def = make_def(&s);
    char path[512], got[1024] = "";
    result_t r;

    put(f, "build/Dockerfile.real", "FROM scratch\n");
    put(f, "other", "x");
    path_of(path, sizeof(path), f->src, "Dockerfile");
    assert_int_equal(symlink("build/Dockerfile.real", path), 0);
    r = solve(f, def, true);
    assert_ok(&r);
    list_tree(f->out, "", got, sizeof(got));
    assert_string_equal(got, "Dockerfile,build/,build/Dockerfile.real");
    assert_link(f, "Dockerfile", "build/Dockerfile.real");
    assert_out_file(f, "build/Dockerfile.real", "FROM scratch\n");
    kiln_definition_free(def);
}

static void test_modes_and_times(void **state)
{
    struct fixture *f = *state;
    spec_t s = {NULL, NULL, NULL};
    kiln_definition_t *def = make_def(&s);
    char path[512];
    struct timespec ts[2] = {{1234567890, 500}, {1234567890, 500}};
    struct stat st;
    result_t r;

    put(f, "tool", "#!/bin/sh\n");
    put(f, "secret/key", "k");
    path_of(path, sizeof(path), f->src, "tool");
    assert_int_equal(chmod(path, 0751), 0);
    path_of(path, sizeof(path), f->src, "secret");
    assert_int_equal(chmod(path, 0700), 0);
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    r = solve(f, def, true);
    assert_ok(&r);
    path_of(path, sizeof(path), f->out, "tool");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0751);
    assert_int_equal(st.st_mtim.tv_sec, MTIME);
    path_of(path, sizeof(path), f->out, "secret");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_mtim.tv_sec, 1234567890);
    assert_out_file(f, "secret/key", "k");

    /* A mode change alone changes the pin. */
    path_of(path, sizeof(path), f->src, "tool");
    assert_int_equal(chmod(path, 0755), 0);
    r = solve(f, def, true);
    assert_ok(&r);
    assert_true(r.stats.cached < r.stats.total);
    path_of(path, sizeof(path), f->out, "tool");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    kiln_definition_free(def);
}

/* A truncated or garbage cache file is ignored, not trusted. */
static void test_corrupt_cache(void **state)
{
    struct fixture *f = *state;
    spec_t s = {NULL, NULL, NULL};
    kiln_definition_t *def = make_def(&s);
    char cmd[1024];
    result_t r;

    put(f, "a", "alpha");
    put(f, "b", "beta");
    settle();
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 2);
    snprintf(cmd, sizeof(cmd),
             "n=0; for c in $(find '%s' -name '*.idx'); do "
             "head -c 40 \"$c\" > \"$c.t\" && mv \"$c.t\" \"$c\"; n=$((n+1)); "
             "done; test $n -ge 1",
             f->root);
    assert_int_equal(system(cmd), 0);
    r = solve(f, def, true);
    assert_ok(&r);
    assert_int_equal(r.rehashed, 2);
    assert_int_equal(r.stats.cached, r.stats.total);
    kiln_definition_free(def);
}

/* ---- translate, against BuildKit's dump of llb.Local ---- */

static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    char *buf = calloc(1, 8192);
    size_t n;

    assert_non_null(p);
    assert_non_null(buf);
    n = fread(buf, 1, 8191, p);
    buf[n] = '\0';
    *status = pclose(p);
    return buf;
}

/* "key":"value" as Go's json writes it in a dump (value JSON-escaped). */
static void json_pair(char *buf, size_t size, const char *k, const char *v)
{
    size_t n = (size_t)snprintf(buf, size, "\"%s\":\"", k);

    for (; *v != '\0' && n + 8 < size; v++) {
        if (*v == '"' || *v == '\\') {
            buf[n++] = '\\';
        }
        buf[n++] = *v;
    }
    snprintf(buf + n, size - n, "\"");
}

static void test_translate_vector(void **state)
{
    const char *bin = getenv("KILN_BIN"), *data = getenv("KILN_TEST_DATA");
    char cmd[2048], path[512], pair[1024];
    char *out, *vec, *line, *save = NULL;
    int status, attrs = 0;

    (void)state;
    if (bin == NULL || data == NULL) {
        fail_msg("KILN_BIN and KILN_TEST_DATA must be set");
    }
    snprintf(cmd, sizeof(cmd),
             "'%s' source translate local name=context "
             "'include=src/**,*.go,Dockerfile' "
             "'exclude=[\"**/*.tmp\",\"node_modules\",\"!node_modules/keep\"]' "
             "sharedkeyhint=context-shared-key "
             "unique=llbgenfixeduniqueid000000",
             bin);
    out = run(cmd, &status);
    assert_int_equal(status, 0);
    snprintf(path, sizeof(path), "%s/llb/c_local.json", data);
    vec = slurp(path);
    assert_non_null(vec);
    for (line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *sep = strstr(line, ": ");

        assert_non_null(sep);
        *sep = '\0';
        if (strcmp(line, "identifier") == 0) {
            json_pair(pair, sizeof(pair), "identifier", sep + 2);
        } else {
            json_pair(pair, sizeof(pair), line, sep + 2);
            attrs++;
        }
        if (strstr(vec, pair) == NULL) {
            fail_msg("%s is not in c_local.json", pair);
        }
    }
    /* The vector's four attrs, no more, no less. */
    assert_int_equal(attrs, 4);
    free(out);
    free(vec);
}

static void test_translate_rules(void **state)
{
    const char *bin = getenv("KILN_BIN");
    char cmd[2048];
    char *out;
    int status;

    (void)state;
    assert_non_null(bin);
    /* Go's HTML-safe escapes; empty lists are omitted; followpaths and
     * differ are written. */
    snprintf(cmd, sizeof(cmd),
             "'%s' source translate local name=ctx "
             "'include=[\"a<b\",\"c&d>\",\"q\\\"\"]' exclude= "
             "followpaths=Dockerfile,x differ=none 2>&1",
             bin);
    out = run(cmd, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "identifier: local://ctx\n"));
    assert_non_null(strstr(out, "local.includepattern: "
                                "[\"a\\u003cb\",\"c\\u0026d\\u003e\","
                                "\"q\\\"\"]\n"));
    assert_non_null(strstr(out, "local.followpaths: [\"Dockerfile\",\"x\"]\n"));
    assert_non_null(strstr(out, "local.differ: none\n"));
    assert_null(strstr(out, "local.excludepatterns"));
    free(out);

    snprintf(cmd, sizeof(cmd),
             "'%s' source translate local name=ctx bogus=1 2>&1", bin);
    out = run(cmd, &status);
    assert_int_not_equal(status, 0);
    assert_non_null(strstr(out, "unknown parameter 'bogus'"));
    assert_non_null(strstr(out, "followpaths"));
    free(out);

    snprintf(cmd, sizeof(cmd),
             "'%s' source translate local name=ctx differ=all 2>&1", bin);
    out = run(cmd, &status);
    assert_int_not_equal(status, 0);
    free(out);

    snprintf(cmd, sizeof(cmd), "'%s' source translate local include=a 2>&1",
             bin);
    out = run(cmd, &status);
    assert_int_not_equal(status, 0);
    assert_non_null(strstr(out, "'name' is required"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_is_cached, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replaced_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes_and_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_cache, setup, teardown),
        cmocka_unit_test(test_translate_vector),
        cmocka_unit_test(test_translate_rules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
