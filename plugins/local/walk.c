/*
 * The selected tree: tonistiigi/fsutil's filtered walk (filter.go) over the
 * local directory, matching with the host's patterns (moby/patternmatcher).
 *
 *   - With include patterns, an entry is selected when it or a parent
 *     matches; directories that do not match are still walked, and are
 *     kept (emitted before their first selected child) when something
 *     below is selected.
 *   - An entry matching the exclude patterns is left out; an excluded
 *     directory is not walked at all unless some exclude pattern is a "!"
 *     exception, which may bring entries below it back.
 *   - Follow paths (and the targets of the symlinks they pass through,
 *     recursively: fsutil's FollowLinks) are added to the include
 *     patterns. Symlinks are always sent as symlinks.
 *   - Directories are read in strcmp order of names, so the tree has the
 *     same order on every host.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

typedef struct frame {
    lc_entry_t e; /* the directory's entry, until emitted */
    bool emitted;
} frame_t;

typedef struct walk {
    const lc_ctx_t *c;
    kiln_patterns_t *inc;
    kiln_patterns_t *exc;
    bool exceptions;
    lc_tree_t *t;
    frame_t *fr;
    size_t n_fr;
    size_t cap_fr;
    unsigned polled;
    char rel[PATH_MAX];
} walk_t;

void lc_tree_free(lc_tree_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].rel);
        free(t->v[i].link);
    }
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

void lc_path_clean(char *p)
{
    char *out = p, *s = p;

    /* Rooted at the local directory: leading "/" and ".." stay inside. */
    while (*s != '\0') {
        char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);

        if (len == 2 && s[0] == '.' && s[1] == '.') {
            while (out > p && *--out != '/') {
            }
        } else if (len > 0 && !(len == 1 && s[0] == '.')) {
            if (out > p) {
                *out++ = '/';
            }
            memmove(out, s, len);
            out += len;
        }
        s += len + (e != NULL);
    }
    if (out == p) {
        *out++ = '.';
    }
    *out = '\0';
}

static int push_entry(walk_t *w, lc_entry_t *e)
{
    lc_tree_t *t = w->t;

    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        lc_entry_t *v = realloc(t->v, cap * sizeof(*v));

        if (v == NULL) {
            return lc_oom(w->c);
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = *e;
    memset(e, 0, sizeof(*e));
    return 0;
}

static void fill_entry(lc_entry_t *e, const struct stat *st)
{
    e->mode = st->st_mode;
    e->uid = st->st_uid;
    e->gid = st->st_gid;
    e->size = (uint64_t)st->st_size;
    e->mtime_ns =
        (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    e->ctime_ns =
        (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
    e->ino = st->st_ino;
    e->dev = st->st_dev;
}

/* Emits the directories on the current path not emitted yet: fsutil
 * sends a directory just before the first entry selected below it. */
static int emit_parents(walk_t *w)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < w->n_fr; i++) {
        if (!w->fr[i].emitted) {
            rc = push_entry(w, &w->fr[i].e);
            w->fr[i].emitted = rc == 0;
        }
    }
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory fd (borrowed), sorted. */
static int read_names(const lc_ctx_t *c, int fd, const char *rel,
                      lc_strv_t *out)
{
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
    struct dirent *de;
    int rc = 0;

    if (d == NULL) {
        rc = lc_fail_errno(c, errno, "open directory", rel);
        if (dup_fd >= 0) {
            close(dup_fd);
        }
        return rc;
    }
    errno = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            rc = lc_strv_push(out, de->d_name, strlen(de->d_name));
            rc = rc < 0 ? lc_oom(c) : 0;
        }
    }
    if (rc == 0 && errno != 0) {
        rc = lc_fail_errno(c, errno, "read directory", rel);
    }
    closedir(d);
    if (rc == 0 && out->n > 1) {
        qsort(out->v, out->n, sizeof(*out->v), cmp_names);
    }
    return rc;
}

static const char *kind_of(mode_t m)
{
    return S_ISFIFO(m)   ? "a fifo"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
                         : "of an unknown type";
}

static int walk_dir(walk_t *w, int fd, size_t rel_len);

/* One entry of a directory: dfd is the directory, w->rel its path. */
static int visit(walk_t *w, int dfd, const char *name, size_t rel_len)
{
    const lc_ctx_t *c = w->c;
    lc_entry_t e = {0};
    struct stat st;
    size_t len = rel_len + (rel_len > 0) + strlen(name);
    bool inc = true, exc = false, dir;
    int rc = 0;

    if (len >= sizeof(w->rel)) {
        return lc_fail_errno(c, ENAMETOOLONG, "walk", w->rel);
    }
    snprintf(w->rel + rel_len, sizeof(w->rel) - rel_len, "%s%s",
             rel_len > 0 ? "/" : "", name);
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return errno == ENOENT ? 0 : lc_fail_errno(c, errno, "stat", w->rel);
    }
    dir = S_ISDIR(st.st_mode);
    if (w->inc != NULL) {
        inc = c->host->patterns_match(w->inc, w->rel) == 1;
    }
    if (w->exc != NULL) {
        exc = c->host->patterns_match(w->exc, w->rel) == 1;
    }
    if (exc && dir && !w->exceptions) {
        return 0; /* nothing below can be brought back */
    }
    if (inc && !exc && !dir && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
        return c->host->fail(c->job, -EINVAL,
                             "local source '%s': %s/%s is %s: only regular "
                             "files, directories and symlinks can be sent",
                             c->name, c->root, w->rel, kind_of(st.st_mode));
    }
    fill_entry(&e, &st);
    e.rel = strdup(w->rel);
    if (e.rel == NULL) {
        return lc_oom(c);
    }
    if (S_ISLNK(st.st_mode) && inc && !exc) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);

        if (n < 0) {
            free(e.rel);
            return lc_fail_errno(c, errno, "read symlink", w->rel);
        }
        target[n] = '\0';
        e.link = strdup(target);
        if (e.link == NULL) {
            free(e.rel);
            return lc_oom(c);
        }
    }
    if (!dir) {
        rc = inc && !exc ? emit_parents(w) : 0;
        rc = rc == 0 && inc && !exc ? push_entry(w, &e) : rc;
        free(e.rel);
        free(e.link);
        return rc;
    }
    if (w->n_fr == w->cap_fr) {
        size_t cap = w->cap_fr ? w->cap_fr * 2 : 32;
        frame_t *v = realloc(w->fr, cap * sizeof(*v));

        if (v == NULL) {
            free(e.rel);
            return lc_oom(c);
        }
        w->fr = v;
        w->cap_fr = cap;
    }
    w->fr[w->n_fr].e = e;
    w->fr[w->n_fr++].emitted = false;
    if (inc && !exc) {
        rc = emit_parents(w);
    }
    if (rc == 0) {
        int sub =
            openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = sub < 0 ? lc_fail_errno(c, errno, "open directory", w->rel)
                     : walk_dir(w, sub, len);
    }
    w->n_fr--;
    if (!w->fr[w->n_fr].emitted) {
        free(w->fr[w->n_fr].e.rel);
    }
    return rc;
}

static int walk_dir(walk_t *w, int fd, size_t rel_len)
{
    lc_strv_t names = {NULL, 0, 0};
    int rc = read_names(w->c, fd, w->rel, &names);

    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        if (++w->polled % 256 == 0 && w->c->host->cancelled(w->c->job)) {
            rc = w->c->host->fail(w->c->job, -ECANCELED,
                                  "local source '%s': canceled", w->c->name);
            break;
        }
        rc = visit(w, fd, names.v[i], rel_len);
        w->rel[rel_len] = '\0';
    }
    lc_strv_free(&names);
    close(fd);
    return rc;
}

/* ---- follow paths (fsutil's FollowLinks) ---- */

typedef struct follow {
    const lc_ctx_t *c;
    int root_fd;
    lc_strv_t resolved;
    unsigned depth;
} follow_t;

static bool has_wildcards(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' && s[1] != '\0') {
            s++;
        } else if (*s == '*' || *s == '?' || *s == '[') {
            return true;
        }
    }
    return false;
}

static bool strv_has(const lc_strv_t *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->v[i], s) == 0) {
            return true;
        }
    }
    return false;
}

static int follow_append(follow_t *f, const char *path);

/* The symlink targets p resolves to (root-relative, leading "/"), into
 * out; with a wildcard base, those of every matching name. */
static int read_symlink(follow_t *f, const char *p, bool wildcard,
                        lc_strv_t *out)
{
    const char *slash = strrchr(p, '/'), *base = slash ? slash + 1 : p;
    char dir[PATH_MAX], target[PATH_MAX], joined[2 * PATH_MAX + 2];
    struct stat st;
    ssize_t n;

    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - p) : 1,
             slash ? p : ".");
    if (wildcard && has_wildcards(base)) {
        const kiln_host_t *h = f->c->host;
        lc_strv_t names = {NULL, 0, 0};
        kiln_patterns_t *pat = NULL;
        int fd = openat(f->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = fd < 0 ? 0 : read_names(f->c, fd, dir, &names);

        if (rc == 0 && names.n > 0) {
            rc = h->patterns_new(f->c->job, &base, 1, &pat);
        }
        for (size_t i = 0; rc == 0 && i < names.n; i++) {
            if (h->patterns_match(pat, names.v[i]) == 1) {
                snprintf(joined, sizeof(joined), "%s/%s", dir, names.v[i]);
                lc_path_clean(joined);
                rc = read_symlink(f, joined, false, out);
            }
        }
        if (pat != NULL) {
            h->patterns_free(pat);
        }
        if (fd >= 0) {
            close(fd);
        }
        lc_strv_free(&names);
        return rc;
    }
    if (fstatat(f->root_fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return errno == ENOENT || errno == ENOTDIR
                   ? 0
                   : lc_fail_errno(f->c, errno, "stat", p);
    }
    if (!S_ISLNK(st.st_mode)) {
        return 0;
    }
    n = readlinkat(f->root_fd, p, target, sizeof(target) - 1);
    if (n < 0) {
        return lc_fail_errno(f->c, errno, "read symlink", p);
    }
    target[n] = '\0';
    if (target[0] == '/') {
        snprintf(joined, sizeof(joined), "%s", target);
    } else {
        snprintf(joined, sizeof(joined), "%s/%s", dir, target);
    }
    lc_path_clean(joined);
    return lc_strv_push(out, joined, strlen(joined)) < 0 ? lc_oom(f->c) : 0;
}

static int add_resolved(follow_t *f, const char *p)
{
    if (strv_has(&f->resolved, p)) {
        return 0;
    }
    return lc_strv_push(&f->resolved, p, strlen(p)) < 0 ? lc_oom(f->c) : 0;
}

/* symlinkResolver.append: walks p component by component, following each
 * symlink it meets (recording it) into the rest of the path. */
static int follow_append(follow_t *f, const char *path)
{
    char p[PATH_MAX], current[PATH_MAX] = ".";
    int rc = 0;

    if (++f->depth > 255) {
        return f->c->host->fail(f->c->job, -ELOOP,
                                "local source '%s': follow path %s: too many "
                                "levels of symbolic links",
                                f->c->name, path);
    }
    snprintf(p, sizeof(p), "%s", path);
    lc_path_clean(p);
    for (;;) {
        char *rest = strchr(p, '/');
        lc_strv_t targets = {NULL, 0, 0};
        size_t cl = strlen(current);

        if (rest != NULL) {
            *rest++ = '\0';
        }
        snprintf(current + cl, sizeof(current) - cl, "/%s", p);
        lc_path_clean(current);
        rc = read_symlink(f, current, true, &targets);
        memmove(p, rest ? rest : "", rest ? strlen(rest) + 1 : 1);
        if (rc == 0 && targets.n > 0) {
            if (!strv_has(&f->resolved, current)) {
                rc = add_resolved(f, current);
                for (size_t i = 0; rc == 0 && i < targets.n; i++) {
                    char next[2 * PATH_MAX + 2];
                    snprintf(next, sizeof(next), "%s/%s", targets.v[i], p);
                    rc = follow_append(f, next);
                }
            }
            lc_strv_free(&targets);
            break;
        }
        lc_strv_free(&targets);
        if (rc < 0 || *p == '\0') {
            rc = rc < 0 ? rc : add_resolved(f, current);
            break;
        }
    }
    f->depth--;
    return rc;
}

/* fsutil's dedupePaths: drops paths below the previous one kept; "." means
 * no filter at all (*all set). fsutil applies it to the include patterns
 * as given plus the followed paths, unsorted, and so do we (a pattern
 * starting with "/" is dropped there, as in fsutil). */
static void dedupe(lc_strv_t *v, bool *all)
{
    size_t out = 0;
    const char *last = "";

    *all = strv_has(v, ".");
    if (*all) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        size_t ll = strlen(last);

        if (strncmp(v->v[i], last, ll) == 0 && v->v[i][ll] == '/') {
            free(v->v[i]);
            continue;
        }
        v->v[out++] = v->v[i];
        last = v->v[i];
    }
    v->n = out;
}

/* The include patterns with the follow paths added. */
static int include_patterns(const lc_ctx_t *c, const lc_spec_t *spec,
                            int root_fd, lc_strv_t *out, bool *all)
{
    follow_t f = {c, root_fd, {NULL, 0, 0}, 0};
    int rc = 0;

    *all = false;
    for (size_t i = 0; i < spec->include.n; i++) {
        const char *s = spec->include.v[i];
        if (lc_strv_push(out, s, strlen(s)) < 0) {
            return lc_oom(c);
        }
    }
    if (spec->follow.n == 0) {
        return 0;
    }
    for (size_t i = 0; rc == 0 && i < spec->follow.n; i++) {
        rc = follow_append(&f, spec->follow.v[i]);
    }
    if (rc == 0 && f.resolved.n > 1) {
        qsort(f.resolved.v, f.resolved.n, sizeof(char *), cmp_names);
    }
    if (rc == 0) {
        dedupe(&f.resolved, all);
    }
    for (size_t i = 0; rc == 0 && !*all && i < f.resolved.n; i++) {
        const char *s = f.resolved.v[i];
        rc = lc_strv_push(out, s, strlen(s)) < 0 ? lc_oom(c) : 0;
    }
    if (rc == 0 && *all) {
        *all = false; /* FollowLinks gave nil: the patterns stay as given */
    } else if (rc == 0) {
        dedupe(out, all);
    }
    if (*all) {
        lc_strv_free(out);
    }
    lc_strv_free(&f.resolved);
    return rc;
}

static int compile(const lc_ctx_t *c, const lc_strv_t *v, kiln_patterns_t **out)
{
    *out = NULL;
    if (v->n == 0) {
        return 0;
    }
    return c->host->patterns_new(c->job, (const char *const *)v->v, v->n, out);
}

int lc_walk(const lc_ctx_t *c, const lc_spec_t *spec, lc_tree_t *out)
{
    walk_t w = {.c = c, .t = out};
    lc_strv_t inc = {NULL, 0, 0};
    bool all = false;
    int fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    memset(out, 0, sizeof(*out));
    out->seen_ns = lc_now_ns();
    if (fd < 0) {
        int err = errno;
        return c->host->fail(c->job, -err, "local source '%s': %s: %s", c->name,
                             c->root, strerror(err));
    }
    rc = include_patterns(c, spec, fd, &inc, &all);
    if (rc == 0) {
        rc = compile(c, &inc, &w.inc);
    }
    if (rc == 0) {
        rc = compile(c, &spec->exclude, &w.exc);
    }
    if (rc == 0) {
        w.exceptions = w.exc != NULL && c->host->patterns_exclusions(w.exc);
        rc = walk_dir(&w, fd, 0);
    } else {
        close(fd);
    }
    while (w.n_fr > 0) {
        if (!w.fr[--w.n_fr].emitted) {
            free(w.fr[w.n_fr].e.rel);
        }
    }
    free(w.fr);
    if (w.inc != NULL) {
        c->host->patterns_free(w.inc);
    }
    if (w.exc != NULL) {
        c->host->patterns_free(w.exc);
    }
    lc_strv_free(&inc);
    if (rc < 0) {
        lc_tree_free(out);
    }
    return rc;
}
