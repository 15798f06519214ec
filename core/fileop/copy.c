/*
 * The copy action: BuildKit's docopy() (solver/llbsolver/file/backend.go)
 * over tonistiigi/fsutil's copy.Copy(), reading the secondary input's view
 * and writing the action's layer. Paths keep Go's semantics: a trailing "/"
 * on dest makes it a directory, "src/." copies a directory's contents, a
 * file copied onto an existing directory goes into it, and so on. The tree
 * copy itself is kiln__snap_copy_ex(), with include/exclude patterns as its
 * filter.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fileop/fileop_int.h"
#include "util/gopath.h"

/* Match results of a directory the filter has seen, for its children
 * (patternmatcher's MatchInfo). */
typedef struct fframe {
    char *rel;
    bool *inc;
    bool *exc;
} fframe_t;

typedef struct cp {
    kiln__fo_ctx_t *c;
    const Pb__FileActionCopy *a;
    kiln__fo_patterns_t *inc;
    kiln__fo_patterns_t *exc;
    kiln__fo_modeset_t *modeset;
    kiln_snap_attr_t override; /* mode, owner and time for every entry */
    kiln_snap_attr_t dir_attr; /* directories MkdirAll creates */
    fframe_t *fr;
    size_t n_fr;
    size_t cap_fr;
} cp_t;

static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

static void pop_frame(cp_t *p)
{
    fframe_t *f = &p->fr[--p->n_fr];

    free(f->rel);
    free(f->inc);
    free(f->exc);
}

static void reset_frames(cp_t *p)
{
    while (p->n_fr > 0) {
        pop_frame(p);
    }
}

/* The frame of rel's parent directory, dropping frames of directories the
 * walk has left; NULL when there is none (a top-level entry). */
static const fframe_t *parent_frame(cp_t *p, const char *rel)
{
    while (p->n_fr > 0) {
        const char *pr = p->fr[p->n_fr - 1].rel;
        size_t n = strlen(pr);

        if (strncmp(rel, pr, n) == 0 && rel[n] == '/') {
            return strchr(rel + n + 1, '/') == NULL ? &p->fr[p->n_fr - 1]
                                                    : NULL;
        }
        pop_frame(p);
    }
    return NULL;
}

static int push_frame(cp_t *p, const char *rel, bool *inc, bool *exc)
{
    if (p->n_fr == p->cap_fr) {
        size_t cap = p->cap_fr ? p->cap_fr * 2 : 16;
        fframe_t *v = realloc(p->fr, cap * sizeof(*v));
        if (v == NULL) {
            return KILN_ENOMEM;
        }
        p->fr = v;
        p->cap_fr = cap;
    }
    p->fr[p->n_fr].rel = strdup(rel);
    if (p->fr[p->n_fr].rel == NULL) {
        return KILN_ENOMEM;
    }
    p->fr[p->n_fr].inc = inc;
    p->fr[p->n_fr++].exc = exc;
    return 0;
}

/*
 * fsutil's include/exclude decision for one entry below the source: in if
 * it matches an include pattern (or there are none) and no exclude pattern.
 * A directory left out is still walked (something below may be included);
 * one excluded when no "!" pattern can bring anything back is pruned.
 */
static int match(cp_t *p, const char *rel, const kiln_snap_entry_t *e)
{
    const fframe_t *parent = parent_frame(p, rel);
    size_t ni = p->inc ? kiln__fo_patterns_count(p->inc) : 0;
    size_t ne = p->exc ? kiln__fo_patterns_count(p->exc) : 0;
    bool *inc = calloc(ni + 1, sizeof(bool)), *exc = calloc(ne + 1, 1);
    bool include = true, excluded = false;

    if (inc == NULL || exc == NULL) {
        free(inc);
        free(exc);
        return oom(p->c->err);
    }
    if (p->inc != NULL) {
        include = kiln__fo_patterns_match(p->inc, rel,
                                          parent ? parent->inc : NULL, inc);
    }
    if (p->exc != NULL) {
        excluded = kiln__fo_patterns_match(p->exc, rel,
                                           parent ? parent->exc : NULL, exc);
    }
    if (S_ISDIR(e->st.st_mode) && push_frame(p, rel, inc, exc) == 0) {
        inc = exc = NULL;
    } else if (S_ISDIR(e->st.st_mode)) {
        free(inc);
        free(exc);
        return oom(p->c->err);
    }
    free(inc);
    free(exc);
    if (excluded && !kiln__fo_patterns_exclusions(p->exc)) {
        return KILN_SNAP_COPY_PRUNE;
    }
    return include && !excluded ? KILN_SNAP_COPY_INCLUDE
                                : KILN_SNAP_COPY_EXCLUDE;
}

/* The copy's filter: cancellation, then the patterns. */
static int filter(const char *rel, const kiln_snap_entry_t *e, void *ud)
{
    cp_t *p = ud;

    int dec;

    if (kiln__fo_cancelled(p->c)) {
        return KILN_ECANCELED;
    }
    dec = p->inc == NULL && p->exc == NULL ? KILN_SNAP_COPY_INCLUDE
                                           : match(p, rel, e);
    if (dec == KILN_SNAP_COPY_INCLUDE && S_ISREG(e->st.st_mode)) {
        kiln__fo_progress(p->c, (uint64_t)e->st.st_size);
    }
    return dec;
}

/* modeStr: each copied entry's mode from its source mode (after the copy,
 * children first). */
static int mode_walk(cp_t *p, const char *src, const char *dst, const char *rel)
{
    kiln__fo_children_t ch;
    int rc = kiln__fo_list_dir(p->c->src, src, &ch, p->c->err);

    for (size_t i = 0; rc == 0 && i < ch.n; i++) {
        const kiln__fo_child_t *c = &ch.v[i];
        kiln_snap_entry_t *e = kiln__fo_child_entry(src, c);
        char *r = *rel ? kiln__fo_join(rel, c->name) : strdup(c->name);
        char *d = kiln__fo_join(dst, c->name);
        int dec = KILN_SNAP_COPY_INCLUDE;

        if (e == NULL || r == NULL || d == NULL) {
            rc = oom(p->c->err);
        } else if (p->inc != NULL || p->exc != NULL) {
            dec = match(p, r, e);
            rc = dec < 0 ? dec : 0;
        }
        if (rc == 0 && dec != KILN_SNAP_COPY_PRUNE && S_ISDIR(c->st.st_mode)) {
            rc = mode_walk(p, e->path, d, r);
        }
        if (rc == 0 && dec == KILN_SNAP_COPY_INCLUDE &&
            !S_ISLNK(c->st.st_mode)) {
            kiln_snap_attr_t a = KILN_SNAP_ATTR_INIT;
            a.mode = kiln__fo_modeset_apply(p->modeset, c->st.st_mode) & 07777;
            rc = kiln__snap_setattr(p->c->w, d, &a, p->c->err);
        }
        free(e);
        free(r);
        free(d);
    }
    kiln__fo_children_free(&ch);
    return rc;
}

/* copy.Copy()'s copier on one resolved source: the tree, then what fsutil
 * does besides (modes from a mode string; the times of a directory merged
 * into at the top). */
static int copy_tree(cp_t *p, const kiln_snap_entry_t *S, const char *target)
{
    kiln_snap_copy_opts_t o = {&p->override, NULL, p, false};
    kiln_snap_entry_t *t = malloc(sizeof(*t));
    bool srcdir = kiln__fo_is_dir(S), merged;
    int rc =
        t != NULL ? kiln__fo_resolve(p->c, target, false, t) : oom(p->c->err);

    merged = rc == 0 && srcdir && kiln__fo_is_dir(t);
    o.filter = filter;
    o.replace = p->a->alwaysreplaceexistingdestpaths;
    if (rc == 0) {
        reset_frames(p);
        rc = kiln__snap_copy_ex(p->c->w, p->c->src, S, target, &o, p->c->err);
    }
    if (rc == 0 && p->modeset != NULL && srcdir) {
        reset_frames(p);
        rc = mode_walk(p, S->path, target, "");
    }
    if (rc == 0 && p->modeset != NULL && !merged && !S_ISLNK(S->st.st_mode)) {
        kiln_snap_attr_t a = KILN_SNAP_ATTR_INIT;
        a.mode = kiln__fo_modeset_apply(p->modeset, S->st.st_mode) & 07777;
        rc = kiln__snap_setattr(p->c->w, target, &a, p->c->err);
    }
    if (rc == 0 && merged) {
        kiln_snap_attr_t a = KILN_SNAP_ATTR_INIT;
        a.mtime_ns = p->override.mtime_ns != -1 ? p->override.mtime_ns
                                                : kiln__fo_mtime_ns(&S->st);
        rc = kiln__snap_setattr(p->c->w, target, &a, p->c->err);
    }
    free(t);
    return rc;
}

/* BuildKit's cleanPath(): path.Join("/", s), keeping a trailing "/" or
 * "/." that says "a directory" or "its contents". */
static char *clean_path(const char *s)
{
    char *c = kiln__gopath_join_root(s), *r;
    size_t n = strlen(s), cn;
    const char *suffix = "";

    if (c == NULL) {
        return NULL;
    }
    cn = strlen(c);
    if (n >= 2 && strcmp(s + n - 2, "/.") == 0) {
        suffix = cn > 1 ? "/." : ".";
    } else if (n >= 1 && s[n - 1] == '/' && cn > 1) {
        suffix = "/";
    }
    r = malloc(cn + 3);
    if (r != NULL) {
        strcpy(r, c);
        strcat(r, suffix);
    }
    free(c);
    return r;
}

/* What Copy() makes sure exists before anything: dest's parent, or dest
 * itself when it ends in "/" or "/." (filepath.Split). */
static int ensure_dest(cp_t *p, const char *dest)
{
    const char *slash = strrchr(dest, '/');
    const char *f = slash != NULL ? slash + 1 : dest;
    char *d;
    int rc;

    if (*f == '\0' || strcmp(f, ".") == 0) {
        return kiln__fo_mkdir_all(p->c, dest, &p->dir_attr);
    }
    d = strndup(dest, (size_t)(f - dest));
    if (d == NULL) {
        return oom(p->c->err);
    }
    rc = kiln__fo_mkdir_all(p->c, d, &p->dir_attr);
    free(d);
    return rc;
}

/* prepareTargetDir(): where the source goes, creating what leads there. */
static int prepare_target(cp_t *p, const char *s, const kiln_snap_entry_t *S,
                          const kiln_snap_entry_t *D, char **target)
{
    bool srcdir = kiln__fo_is_dir(S), dexists = kiln__fo_exists(D);
    bool contents = p->a->dircopycontents;
    char *base = kiln__gopath_base(s), *mk;
    int rc;

    if (base == NULL) {
        return oom(p->c->err);
    }
    if (((!contents && srcdir && dexists) ||
         (!srcdir && dexists && kiln__fo_is_dir(D))) &&
        strcmp(base, ".") != 0 && strcmp(base, "/") != 0) {
        *target = kiln__fo_join(D->path, base);
    } else {
        *target = strdup(D->path);
    }
    free(base);
    if (*target == NULL) {
        return oom(p->c->err);
    }
    if (contents && srcdir && !dexists) {
        return kiln__fo_mkdir_all(p->c, *target, &p->dir_attr);
    }
    mk = strdup(*target);
    if (mk == NULL) {
        return oom(p->c->err);
    }
    *strrchr(mk, '/') = '\0';
    rc = kiln__fo_mkdir_all(p->c, *mk ? mk : "/", &p->dir_attr);
    free(mk);
    return rc;
}

/* The destination with its symlinks followed; the directories missing on
 * the way to where it points are created (RootPath, then MkdirAll in
 * prepareTargetDir: a dangling symlink's target gets its parents). */
static int resolve_dest(cp_t *p, const char *dest, kiln_snap_entry_t *D)
{
    int rc = kiln__fo_resolve(p->c, dest, true, D);

    for (int i = 0; rc == KILN_ENOENT && i < 4096; i++) {
        rc = kiln__snap_mkdir(p->c->w, D->path, &p->dir_attr, false, p->c->err);
        if (rc == 0) {
            rc = kiln__fo_resolve(p->c, dest, true, D);
        }
    }
    return rc;
}

/* Copy() for one source path. */
static int copy_one(cp_t *p, const char *s, const char *dest)
{
    kiln_snap_entry_t *S = malloc(sizeof(*S)), *D = malloc(sizeof(*D));
    char *sj = kiln__gopath_join_root(s), *dj = kiln__gopath_clean(dest);
    char *target = NULL;
    int rc = (S && D && sj && dj) ? ensure_dest(p, dest) : oom(p->c->err);

    if (rc == 0) {
        rc = kiln__snap_resolve(p->c->src, sj, p->a->followsymlink, S,
                                p->c->err);
        if (rc == KILN_ENOENT || rc == -ENOTDIR ||
            (rc == 0 && !kiln__fo_exists(S))) {
            rc = kiln__fail(p->c->err, KILN_ENOENT,
                            "%s: no such file or directory", sj);
        }
    }
    if (rc == 0) {
        rc = resolve_dest(p, dj, D);
    }
    if (rc == 0) {
        rc = prepare_target(p, s, S, D, &target);
    }
    if (rc == 0) {
        rc = copy_tree(p, S, target);
    }
    if (rc == 0 && S_ISREG(S->st.st_mode)) {
        kiln__fo_progress(p->c, (uint64_t)S->st.st_size);
    }
    free(target);
    free(sj);
    free(dj);
    free(S);
    free(D);
    return rc;
}

/* Without createDestPath, dest's parent must exist (BuildKit's Lstat of
 * filepath.Dir of the resolved dest). */
static int check_dest_parent(cp_t *p)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    char *d = kiln__gopath_join_root(p->a->dest), *slash;
    int rc = (e && d) ? kiln__fo_resolve(p->c, d, true, e) : oom(p->c->err);

    if (rc == KILN_ENOENT || rc == -ENOTDIR) {
        slash = strrchr(d, '/');
        rc = kiln__fail(p->c->err, KILN_ENOENT,
                        "failed to stat %s: lstat %.*s: no such file or "
                        "directory",
                        d, slash == d ? 1 : (int)(slash - d), d);
    }
    free(d);
    free(e);
    return rc;
}

/* required_paths: each must exist below every source. */
static int check_required(cp_t *p, char *const *srcs, size_t n)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    int rc = e != NULL ? 0 : oom(p->c->err);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        for (size_t j = 0; rc == 0 && j < p->a->n_required_paths; j++) {
            char *r = kiln__fo_join(srcs[i], p->a->required_paths[j]);
            char *jr = r != NULL ? kiln__gopath_join_root(r) : NULL;

            rc = jr != NULL
                     ? kiln__snap_resolve(p->c->src, jr, false, e, p->c->err)
                     : oom(p->c->err);
            if (rc == KILN_ENOENT || rc == -ENOTDIR ||
                (rc == 0 && !kiln__fo_exists(e))) {
                rc =
                    kiln__fail(p->c->err, KILN_ENOENT, "\"%s\": not found", jr);
            }
            free(r);
            free(jr);
        }
    }
    free(e);
    return rc;
}

/* Options of the copier: patterns, mode, owner and times. */
static int cp_init(cp_t *p, kiln__fo_ctx_t *c, const Pb__FileActionCopy *a)
{
    int rc = 0;

    memset(p, 0, sizeof(*p));
    p->c = c;
    p->a = a;
    if (a->n_include_patterns > 0) {
        rc = kiln__fo_patterns_new(a->include_patterns, a->n_include_patterns,
                                   &p->inc, c->err);
    }
    if (rc == 0 && a->n_exclude_patterns > 0) {
        rc = kiln__fo_patterns_new(a->exclude_patterns, a->n_exclude_patterns,
                                   &p->exc, c->err);
    }
    if (rc == 0 && a->modestr != NULL && *a->modestr != '\0' &&
        kiln__fo_modeset_parse(a->modestr, &p->modeset) < 0) {
        rc = kiln__fail(c->err, KILN_EINVAL, "invalid mode string \"%s\"",
                        a->modestr);
    }
    p->override = (kiln_snap_attr_t)KILN_SNAP_ATTR_INIT;
    if (p->modeset == NULL && a->mode != -1) {
        p->override.mode = (mode_t)a->mode & 07777;
    }
    p->override.uid = c->owner.set ? c->owner.uid : -1;
    p->override.gid = c->owner.set ? c->owner.gid : -1;
    p->override.mtime_ns = a->timestamp;
    p->dir_attr = p->override;
    p->dir_attr.mode = 0755;
    return rc;
}

static void cp_free(cp_t *p)
{
    kiln__fo_patterns_free(p->inc);
    kiln__fo_patterns_free(p->exc);
    kiln__fo_modeset_free(p->modeset);
    reset_frames(p);
    free(p->fr);
}

/* Each source in turn: unpacked when it is an archive and asked to be. */
static int copy_all(cp_t *p, char *const *srcs, size_t n, const char *dest)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (kiln__fo_cancelled(p->c)) {
            return KILN_ECANCELED;
        }
        if (p->a->attemptunpackdockercompatibility) {
            rc = kiln__fo_unpack(p->c, srcs[i], dest, &p->dir_attr);
            if (rc != 0) {
                rc = rc > 0 ? 0 : rc;
                continue;
            }
        }
        rc = copy_one(p, srcs[i], dest);
    }
    return rc;
}

int kiln__fo_copy(kiln__fo_ctx_t *c, const Pb__FileActionCopy *a)
{
    char *src = clean_path(a->src), *dest = clean_path(a->dest);
    char **srcs = NULL;
    size_t n = 0;
    cp_t p;
    int rc = cp_init(&p, c, a);

    if (rc == 0 && (src == NULL || dest == NULL)) {
        rc = oom(c->err);
    }
    if (rc == 0 && !a->createdestpath) {
        rc = check_dest_parent(&p);
    }
    if (rc == 0 && !a->allowwildcard) {
        srcs = malloc(sizeof(*srcs));
        rc = srcs != NULL ? 0 : oom(c->err);
        if (rc == 0) {
            srcs[n++] = src;
            src = NULL;
        }
    } else if (rc == 0) {
        rc = kiln__fo_resolve_wildcards(c->src, src, a->followsymlink, &srcs,
                                        &n, c->err);
        if (rc == 0 && n == 0 && !a->allowemptywildcard) {
            rc = kiln__fail(c->err, KILN_ENOENT, "%s not found", src);
        }
    }
    if (rc == 0) {
        rc = check_required(&p, srcs, n);
    }
    if (rc == 0) {
        rc = copy_all(&p, srcs, n, dest);
    }
    kiln__fo_strv_free(srcs, n);
    cp_free(&p);
    free(src);
    free(dest);
    return rc;
}
