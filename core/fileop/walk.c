/*
 * Walking the directories of a view: listings for the copy walk, and Go's
 * copy.ResolveWildcards (fsutil) for wildcard sources and rm paths.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileop/fileop_int.h"
#include "util/gopath.h"

static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

static int collect(const char *name, const kiln_snap_entry_t *e, void *ud)
{
    kiln__fo_children_t *ch = ud;

    if (ch->n == ch->cap) {
        size_t cap = ch->cap ? ch->cap * 2 : 16;
        kiln__fo_child_t *v = realloc(ch->v, cap * sizeof(*v));
        if (v == NULL) {
            return KILN_ENOMEM;
        }
        ch->v = v;
        ch->cap = cap;
    }
    ch->v[ch->n].name = strdup(name);
    if (ch->v[ch->n].name == NULL) {
        return KILN_ENOMEM;
    }
    ch->v[ch->n].layer = e->layer;
    ch->v[ch->n].st = e->st;
    ch->n++;
    return 0;
}

void kiln__fo_children_free(kiln__fo_children_t *ch)
{
    for (size_t i = 0; i < ch->n; i++) {
        free(ch->v[i].name);
    }
    free(ch->v);
    memset(ch, 0, sizeof(*ch));
}

int kiln__fo_list_dir(const kiln_snap_view_t *v, const char *dir,
                      kiln__fo_children_t *ch, kiln_error_t *err)
{
    int rc;

    memset(ch, 0, sizeof(*ch));
    rc = kiln__snap_readdir(v, dir, collect, ch, err);
    if (rc == KILN_ENOMEM) {
        oom(err);
    }
    if (rc < 0) {
        kiln__fo_children_free(ch);
        memset(ch, 0, sizeof(*ch));
    }
    return rc;
}

kiln_snap_entry_t *kiln__fo_child_entry(const char *dir,
                                        const kiln__fo_child_t *c)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    int n;

    if (e == NULL) {
        return NULL;
    }
    n = snprintf(e->path, sizeof(e->path), "%s%s%s", dir,
                 strcmp(dir, "/") == 0 ? "" : "/", c->name);
    if (n < 0 || (size_t)n >= sizeof(e->path)) {
        free(e);
        return NULL;
    }
    e->layer = c->layer;
    e->st = c->st;
    return e;
}

void kiln__fo_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

typedef struct wild {
    const kiln_snap_view_t *v;
    const char *pattern;
    const char *base; /* base directory, relative to the root */
    size_t max_depth; /* SIZE_MAX: unbounded */
    char **out;
    size_t n;
    size_t cap;
    kiln_error_t *err;
} wild_t;

static int wild_add(wild_t *w, const char *rel)
{
    char *s = *w->base ? kiln__fo_join(w->base, rel) : strdup(rel);

    if (s == NULL) {
        return oom(w->err);
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        char **v = realloc(w->out, cap * sizeof(*v));
        if (v == NULL) {
            free(s);
            return oom(w->err);
        }
        w->out = v;
        w->cap = cap;
    }
    w->out[w->n++] = s;
    return 0;
}

/* filepath.Walk below `dir`, matching relative paths against the pattern;
 * a matching directory is not descended (SkipDir). */
static int wild_walk(wild_t *w, const char *dir, const char *rel, size_t depth)
{
    kiln__fo_children_t ch;
    int rc = kiln__fo_list_dir(w->v, dir, &ch, w->err);

    for (size_t i = 0; rc == 0 && i < ch.n; i++) {
        char *r =
            *rel ? kiln__fo_join(rel, ch.v[i].name) : strdup(ch.v[i].name);
        char *d = kiln__fo_join(dir, ch.v[i].name);

        if (r == NULL || d == NULL) {
            rc = oom(w->err);
        } else if (kiln__fo_fnmatch(w->pattern, r) == 1) {
            rc = wild_add(w, r);
        } else if (S_ISDIR(ch.v[i].st.st_mode) && depth + 1 < w->max_depth) {
            rc = wild_walk(w, d, r, depth + 1);
        }
        free(r);
        free(d);
    }
    kiln__fo_children_free(&ch);
    return rc;
}

/* splitWildcards(): the components before the first with a wildcard, and
 * the rest. */
static int split_wildcards(const char *path, char **d1, char **d2)
{
    char *c = kiln__gopath_clean(path), *p, *cut = NULL;

    *d1 = *d2 = NULL;
    if (c == NULL) {
        return KILN_ENOMEM;
    }
    for (p = c; p != NULL && cut == NULL;) {
        char *slash = strchr(p, '/'), save = 0;
        if (slash != NULL) {
            save = *slash;
            *slash = '\0';
        }
        if (kiln__fo_has_wildcards(p)) {
            cut = p;
        }
        if (slash != NULL) {
            *slash = save;
        }
        p = slash != NULL ? slash + 1 : NULL;
    }
    *d2 = strdup(cut != NULL ? cut : "");
    if (cut != NULL) {
        cut[cut > c + 1 ? -1 : 0] = '\0';
    }
    *d1 = strdup(c);
    free(c);
    return (*d1 == NULL || *d2 == NULL) ? KILN_ENOMEM : 0;
}

/* Walks for the pattern below the resolved d1 (see fileop_int.h). */
static int wild_run(wild_t *w, const char *d1, bool follow)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    char *jr = kiln__gopath_join_root(d1);
    int rc;

    if (e == NULL || jr == NULL) {
        rc = oom(w->err);
    } else if ((rc = kiln__snap_resolve(w->v, jr, follow, e, w->err)) < 0) {
        kiln__fail(w->err, rc, "lstat %s: no such file or directory", jr);
    } else if (!kiln__fo_exists(e)) {
        rc = kiln__fail(w->err, KILN_ENOENT,
                        "lstat %s: no such file or directory", jr);
    } else if (kiln__fo_is_dir(e)) {
        w->base = e->path + 1;
        rc = wild_walk(w, e->path, "", 0);
    }
    free(jr);
    free(e);
    return rc;
}

int kiln__fo_resolve_wildcards(const kiln_snap_view_t *v, const char *path,
                               bool follow, char ***out, size_t *n,
                               kiln_error_t *err)
{
    wild_t w = {v, NULL, "", SIZE_MAX, NULL, 0, 0, err};
    char *d1, *d2;
    int rc;

    *out = NULL;
    *n = 0;
    if (split_wildcards(path, &d1, &d2) < 0) {
        free(d1);
        free(d2);
        return oom(err);
    }
    w.pattern = d2;
    if (*d2 == '\0') {
        rc = wild_add(&w, *d1 ? d1 : "/");
    } else {
        /* '*' and '?' never match '/', so nothing deeper than the
         * pattern's own depth can match (a class could). */
        if (strchr(d2, '[') == NULL) {
            w.max_depth = 1;
            for (const char *p = d2; *p; p++) {
                w.max_depth += *p == '/';
            }
        }
        rc = wild_run(&w, d1, follow);
    }
    free(d1);
    free(d2);
    if (rc < 0) {
        kiln__fo_strv_free(w.out, w.n);
        return rc;
    }
    *out = w.out;
    *n = w.n;
    return 0;
}

bool kiln__fo_dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    bool empty = true;

    if (d == NULL) {
        return false;
    }
    while (empty && (de = readdir(d)) != NULL) {
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    }
    closedir(d);
    return empty;
}

bool kiln__fo_same_root(const kiln_snap_view_t *base, const char *dir)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    struct stat st;
    bool same = false;

    if (e != NULL && stat(dir, &st) == 0 &&
        kiln__snap_resolve(base, "/", false, e, NULL) == 0) {
        same = e->st.st_mode == st.st_mode && e->st.st_uid == st.st_uid &&
               e->st.st_gid == st.st_gid &&
               kiln__fo_mtime_ns(&e->st) == kiln__fo_mtime_ns(&st);
    }
    free(e);
    return same;
}
