/*
 * Shared by the core/fileop tests: a temporary directory of layers per test,
 * hand-built FileActions, and checks on views. Everything here is `static
 * inline` so that each test file uses what it needs.
 */
#ifndef KILN_TEST_FILEOP_FIXTURE_H
#define KILN_TEST_FILEOP_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "testutil.h"

#include "fileop/fileop.h"

#define FX_MAX 256

typedef struct fx {
    char root[512];
    int n_new;
    void *allocs[32768];
    size_t n_allocs;
    kiln_snap_view_t *views[FX_MAX];
    size_t n_views;
    kiln_fileop_result_t *results[FX_MAX];
    size_t n_results;
    kiln_error_t err;
    bool cancel;
} fx_t;

static fx_t *fx;

static inline void *fx_alloc(size_t n)
{
    void *p = calloc(1, n);

    if (p == NULL) {
        abort();
    }
    assert_true(fx->n_allocs < KILN_ARRAY_SIZE(fx->allocs));
    fx->allocs[fx->n_allocs++] = p;
    return p;
}

static inline char *fx_path(const char *a, const char *b)
{
    char *p = fx_alloc(strlen(a) + strlen(b) + 2);

    sprintf(p, "%s/%s", a, b);
    return p;
}

static inline int fx_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    fx = calloc(1, sizeof(*fx));
    snprintf(fx->root, sizeof(fx->root), "%s/kiln-fileop-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (fx == NULL || mkdtemp(fx->root) == NULL) {
        return -1;
    }
    *state = fx;
    return 0;
}

static inline int fx_rm_cb(const char *p, const struct stat *st, int flag,
                           struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP) {
        chmod(p, 0700);
        return rmdir(p);
    }
    return unlink(p);
}

static inline int fx_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < fx->n_views; i++) {
        kiln__snap_view_free(fx->views[i]);
    }
    for (size_t i = 0; i < fx->n_results; i++) {
        kiln__fileop_result_free(fx->results[i]);
    }
    for (size_t i = 0; i < fx->n_allocs; i++) {
        free(fx->allocs[i]);
    }
    nftw(fx->root, fx_rm_cb, 32, FTW_DEPTH | FTW_PHYS);
    free(fx);
    fx = NULL;
    return 0;
}

/* A directory of the test's tree: a layer to fill by hand, or a "host"
 * directory that must stay untouched. */
static inline char *fx_dir(const char *name)
{
    char *p = fx_path(fx->root, name);

    assert_int_equal(mkdir(p, 0755), 0);
    return p;
}

/* Files in a hand-made layer (parents created as needed, 0755). */
static inline void fx_parents(const char *layer, const char *rel)
{
    char buf[1024];

    snprintf(buf, sizeof(buf), "%s/%s", layer, rel);
    for (char *s = buf + strlen(layer) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        mkdir(buf, 0755);
        *s = '/';
    }
}

static inline void fx_file(const char *layer, const char *rel, const char *data,
                           mode_t mode)
{
    char *p = fx_path(layer, rel);
    int fd;

    fx_parents(layer, rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
    chmod(p, mode);
}

static inline void fx_mkdir_in(const char *layer, const char *rel, mode_t m)
{
    fx_parents(layer, rel);
    assert_int_equal(mkdir(fx_path(layer, rel), m), 0);
    chmod(fx_path(layer, rel), m);
}

static inline void fx_link(const char *layer, const char *rel,
                           const char *target)
{
    fx_parents(layer, rel);
    assert_int_equal(symlink(target, fx_path(layer, rel)), 0);
}

/* A whiteout: an empty file .wh.NAME next to NAME. */
static inline void fx_whiteout(const char *layer, const char *dir,
                               const char *name)
{
    char rel[512];

    snprintf(rel, sizeof(rel), "%s%s.wh.%s", dir, *dir ? "/" : "", name);
    fx_file(layer, rel, "", 0644);
}

static inline void fx_mtime(const char *layer, const char *rel, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};

    assert_int_equal(
        utimensat(AT_FDCWD, fx_path(layer, rel), ts, AT_SYMLINK_NOFOLLOW), 0);
}

static inline kiln_snap_view_t *fx_view(size_t n, const char *const *layers)
{
    kiln_snap_view_t *v = NULL;
    kiln_error_t err;

    if (kiln__snap_view_open(layers, n, &err, &v) != 0) {
        fail_msg("view: %s", err.message);
    }
    fx->views[fx->n_views++] = v;
    return v;
}

static inline kiln_snap_view_t *fx_view1(const char *layer)
{
    return fx_view(layer != NULL ? 1 : 0, &layer);
}

static inline int fx_new_layer(void *ud, char *path, size_t size,
                               kiln_error_t *err)
{
    (void)ud;
    (void)err;
    snprintf(path, size, "%s/new-%d", fx->root, fx->n_new++);
    return mkdir(path, 0755) == 0 ? 0 : -errno;
}

static inline bool fx_cancelled(void *ud)
{
    (void)ud;
    return fx->cancel;
}

/* FileActions. Strings are borrowed (never freed by the tests). */
static inline Pb__FileAction *fx_action(int64_t in, int64_t sec)
{
    Pb__FileAction *a = fx_alloc(sizeof(*a));

    pb__file_action__init(a);
    a->input = in;
    a->secondaryinput = sec;
    a->output = -1;
    return a;
}

static inline Pb__FileAction *fx_mkdir(int64_t in, const char *path, int mode,
                                       bool parents)
{
    Pb__FileAction *a = fx_action(in, -1);
    Pb__FileActionMkDir *m = fx_alloc(sizeof(*m));

    pb__file_action_mk_dir__init(m);
    m->path = (char *)path;
    m->mode = mode;
    m->makeparents = parents;
    m->timestamp = -1;
    a->action_case = PB__FILE_ACTION__ACTION_MKDIR;
    a->mkdir = m;
    return a;
}

static inline Pb__FileAction *fx_mkfile(int64_t in, const char *path, int mode,
                                        const char *data)
{
    Pb__FileAction *a = fx_action(in, -1);
    Pb__FileActionMkFile *m = fx_alloc(sizeof(*m));

    pb__file_action_mk_file__init(m);
    m->path = (char *)path;
    m->mode = mode;
    m->data.data = (uint8_t *)data;
    m->data.len = strlen(data);
    m->timestamp = -1;
    a->action_case = PB__FILE_ACTION__ACTION_MKFILE;
    a->mkfile = m;
    return a;
}

static inline Pb__FileAction *fx_rm(int64_t in, const char *path,
                                    bool allow_missing, bool wildcard)
{
    Pb__FileAction *a = fx_action(in, -1);
    Pb__FileActionRm *m = fx_alloc(sizeof(*m));

    pb__file_action_rm__init(m);
    m->path = (char *)path;
    m->allownotfound = allow_missing;
    m->allowwildcard = wildcard;
    a->action_case = PB__FILE_ACTION__ACTION_RM;
    a->rm = m;
    return a;
}

static inline Pb__FileAction *fx_symlink(int64_t in, const char *oldpath,
                                         const char *newpath)
{
    Pb__FileAction *a = fx_action(in, -1);
    Pb__FileActionSymlink *m = fx_alloc(sizeof(*m));

    pb__file_action_symlink__init(m);
    m->oldpath = (char *)oldpath;
    m->newpath = (char *)newpath;
    m->timestamp = -1;
    a->action_case = PB__FILE_ACTION__ACTION_SYMLINK;
    a->symlink = m;
    return a;
}

static inline Pb__FileActionCopy *fx_copy_of(Pb__FileAction *a)
{
    return a->copy;
}

static inline Pb__FileAction *fx_copy(int64_t in, int64_t sec, const char *src,
                                      const char *dest)
{
    Pb__FileAction *a = fx_action(in, sec);
    Pb__FileActionCopy *m = fx_alloc(sizeof(*m));

    pb__file_action_copy__init(m);
    m->src = (char *)src;
    m->dest = (char *)dest;
    m->mode = -1;
    m->timestamp = -1;
    a->action_case = PB__FILE_ACTION__ACTION_COPY;
    a->copy = m;
    return a;
}

/* A ChownOpt: by ID when the name is NULL, else by name from `input`. */
static inline Pb__UserOpt *fx_user(const char *name, int64_t input, uint32_t id)
{
    Pb__UserOpt *u = fx_alloc(sizeof(*u));

    pb__user_opt__init(u);
    if (name != NULL) {
        Pb__NamedUserOpt *n = fx_alloc(sizeof(*n));
        pb__named_user_opt__init(n);
        n->name = (char *)name;
        n->input = input;
        u->user_case = PB__USER_OPT__USER_BY_NAME;
        u->byname = n;
    } else {
        u->user_case = PB__USER_OPT__USER_BY_ID;
        u->byid = id;
    }
    return u;
}

static inline Pb__ChownOpt *fx_chown(Pb__UserOpt *user, Pb__UserOpt *group)
{
    Pb__ChownOpt *o = fx_alloc(sizeof(*o));

    pb__chown_opt__init(o);
    o->user = user;
    o->group = group;
    return o;
}

/* Runs actions (the last one is output 0 unless outputs were set). */
static inline int fx_run(kiln_snap_view_t **inputs, size_t n_inputs,
                         Pb__FileAction **acts, size_t n,
                         kiln_fileop_result_t **res)
{
    Pb__FileOp op;
    kiln_fileop_env_t env = {(const kiln_snap_view_t *const *)inputs, n_inputs,
                             fx_new_layer, fx_cancelled, NULL, NULL};
    bool any = false;
    int rc;

    pb__file_op__init(&op);
    op.actions = acts;
    op.n_actions = n;
    for (size_t i = 0; i < n; i++) {
        any = any || acts[i]->output != -1;
    }
    if (!any) {
        acts[n - 1]->output = 0;
    }
    memset(&fx->err, 0, sizeof(fx->err));
    *res = NULL;
    rc = kiln__fileop_run(&op, &env, &fx->err, res);
    if (*res != NULL) {
        fx->results[fx->n_results++] = *res;
    }
    return rc;
}

/* Output o of a result as a view. */
static inline kiln_snap_view_t *fx_out(kiln_snap_view_t **inputs,
                                       size_t n_inputs,
                                       const kiln_fileop_result_t *r, size_t o)
{
    kiln_fileop_env_t env = {(const kiln_snap_view_t *const *)inputs, n_inputs,
                             fx_new_layer, NULL, NULL, NULL};
    kiln_snap_view_t *v = NULL;
    kiln_error_t err;

    assert_true(o < r->n_outputs);
    if (kiln__fileop_output_view(&env, &r->outputs[o], &err, &v) != 0) {
        fail_msg("output view: %s", err.message);
    }
    fx->views[fx->n_views++] = v;
    return v;
}

/* Runs and returns output 0 as a view; fails the test on an error. */
static inline kiln_snap_view_t *fx_run_ok(kiln_snap_view_t **inputs,
                                          size_t n_inputs,
                                          Pb__FileAction **acts, size_t n)
{
    kiln_fileop_result_t *r;

    if (fx_run(inputs, n_inputs, acts, n, &r) != 0) {
        fail_msg("fileop: %s", fx->err.message);
    }
    return fx_out(inputs, n_inputs, r, 0);
}

/* Checks on a view. */
static inline int fx_stat(const kiln_snap_view_t *v, const char *path,
                          struct stat *st)
{
    kiln_snap_entry_t *e = fx_alloc(sizeof(*e));
    int rc = kiln__snap_resolve(v, path, false, e, NULL);

    if (rc == 0 && e->layer < 0 && strcmp(e->path, "/") != 0) {
        return KILN_ENOENT;
    }
    if (rc == 0 && st != NULL) {
        *st = e->st;
    }
    return rc;
}

static inline char *fx_read(const kiln_snap_view_t *v, const char *path)
{
    kiln_snap_entry_t *e = fx_alloc(sizeof(*e));
    char *buf = fx_alloc(65536);
    ssize_t n;
    int fd;

    if (kiln__snap_resolve(v, path, false, e, NULL) != 0 || e->layer < 0 ||
        kiln__snap_open_file(v, e, &fd, NULL) != 0) {
        return NULL;
    }
    n = read(fd, buf, 65535);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    return buf;
}

static inline void fx_assert_file(const kiln_snap_view_t *v, const char *path,
                                  const char *want)
{
    const char *got = fx_read(v, path);

    if (got == NULL) {
        fail_msg("%s: missing or not a file", path);
    }
    assert_string_equal(got, want);
}

static inline void fx_assert_missing(const kiln_snap_view_t *v,
                                     const char *path)
{
    int rc = fx_stat(v, path, NULL);

    if (rc == 0) {
        fail_msg("%s exists", path);
    }
}

static inline mode_t fx_mode(const kiln_snap_view_t *v, const char *path)
{
    struct stat st;

    if (fx_stat(v, path, &st) != 0) {
        fail_msg("%s: missing", path);
    }
    return st.st_mode;
}

static inline void fx_assert_link(const kiln_snap_view_t *v, const char *path,
                                  const char *target)
{
    kiln_snap_entry_t *e = fx_alloc(sizeof(*e));
    char buf[4096];

    assert_int_equal(kiln__snap_resolve(v, path, false, e, NULL), 0);
    assert_true(e->layer >= 0 && S_ISLNK(e->st.st_mode));
    assert_int_equal(kiln__snap_readlink(v, e, buf, sizeof(buf), NULL), 0);
    assert_string_equal(buf, target);
}

/* The error message contains `want`. */
static inline void fx_assert_err(const char *want)
{
    if (strstr(fx->err.message, want) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\"", fx->err.message, want);
    }
}

#endif
