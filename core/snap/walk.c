/*
 * Path resolution inside a view. Every component is looked up by the view
 * (kiln__snap_lookup), symlinks are expanded here and re-rooted at the
 * snapshot root, ".." pops the directory stack and stops at the root. The
 * kernel only ever resolves paths inside one layer whose every component
 * was seen as a real directory of that layer.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "snap_int.h"

int kiln__snap_walk_init(snap_walk_t *w, const kiln_snap_view_t *v)
{
    memset(w, 0, sizeof(*w));
    w->v = v;
    w->child = malloc((v->n ? v->n : 1) * sizeof(int));
    return w->child != NULL ? 0 : KILN_ENOMEM;
}

void kiln__snap_walk_free(snap_walk_t *w)
{
    free(w->pool);
    free(w->lv);
    free(w->child);
    w->pool = NULL;
    w->lv = NULL;
    w->child = NULL;
}

static int walk_reserve(snap_walk_t *w)
{
    size_t need = w->pool_len + w->v->n + 1;

    if (need > w->pool_cap) {
        size_t cap = w->pool_cap ? w->pool_cap * 2 : 64;
        int *p;
        while (cap < need) {
            cap *= 2;
        }
        p = realloc(w->pool, cap * sizeof(*p));
        if (p == NULL) {
            return KILN_ENOMEM;
        }
        w->pool = p;
        w->pool_cap = cap;
    }
    if (w->nlv == w->lv_cap) {
        size_t cap = w->lv_cap ? w->lv_cap * 2 : 16;
        snap_level_t *l = realloc(w->lv, cap * sizeof(*l));
        if (l == NULL) {
            return KILN_ENOMEM;
        }
        w->lv = l;
        w->lv_cap = cap;
    }
    return 0;
}

static void walk_pop_to(snap_walk_t *w, size_t nlv)
{
    w->nlv = nlv;
    w->len = w->lv[nlv - 1].path_len;
    w->path[w->len] = '\0';
    w->pool_len = w->lv[nlv - 1].off + w->lv[nlv - 1].n;
}

static int walk_start(snap_walk_t *w)
{
    const kiln_snap_view_t *v = w->v;

    w->pool_len = 0;
    w->nlv = 0;
    if (walk_reserve(w) != 0) {
        return KILN_ENOMEM;
    }
    memcpy(w->pool, v->root, v->nroot * sizeof(int));
    w->lv[0].path_len = 0;
    w->lv[0].off = 0;
    w->lv[0].n = v->nroot;
    w->nlv = 1;
    walk_pop_to(w, 1);
    return 0;
}

/* The root as a result. */
static int walk_root_result(snap_walk_t *w, kiln_error_t *err)
{
    const kiln_snap_view_t *v = w->v;

    strcpy(w->e.path, "/");
    memcpy(w->child, v->root, v->nroot * sizeof(int));
    w->nchild = v->nroot;
    if (v->n == 0) {
        memset(&w->e.st, 0, sizeof(w->e.st));
        w->e.st.st_mode = S_IFDIR | 0755;
        w->e.st.st_nlink = 2;
        w->e.layer = -1;
        return 0;
    }
    w->e.layer = v->root[0];
    if (fstat(v->fds[w->e.layer], &w->e.st) != 0) {
        return kiln__snap_errno(err, errno, "cannot stat", "");
    }
    return 0;
}

/* e.path = "/" + current dir + "/" + name. */
static int walk_set_path(snap_walk_t *w, const char *name)
{
    char rel[PATH_MAX];

    if (kiln__snap_join(rel, sizeof(rel), w->path, name) != 0 ||
        strlen(rel) + 2 > sizeof(w->e.path)) {
        return -ENAMETOOLONG;
    }
    w->e.path[0] = '/';
    strcpy(w->e.path + 1, rel);
    return 0;
}

static int walk_push(snap_walk_t *w, const char *name, const snap_child_t *c)
{
    size_t nl = strlen(name);
    snap_level_t *l;

    if (w->len + nl + 2 >= sizeof(w->path) - 1) {
        return -ENAMETOOLONG;
    }
    if (w->len > 0) {
        w->path[w->len++] = '/';
    }
    memcpy(w->path + w->len, name, nl + 1);
    w->len += nl;
    l = &w->lv[w->nlv++];
    l->path_len = w->len;
    l->off = w->pool_len;
    l->n = c->n;
    w->pool_len += c->n;
    return 0;
}

/* Replaces the unread rest of the path by target + "/" + rest. */
static int walk_expand(char **rest, size_t *p, const char *target)
{
    size_t tl = strlen(target), rl = strlen(*rest + *p);
    char *n = malloc(tl + rl + 2);

    if (n == NULL) {
        return KILN_ENOMEM;
    }
    memcpy(n, target, tl);
    n[tl] = '/';
    memcpy(n + tl + 1, *rest + *p, rl + 1);
    free(*rest);
    *rest = n;
    *p = 0;
    return 0;
}

typedef struct walk_step {
    const char *orig; /* the path being resolved, for messages */
    char **rest;
    size_t *p;
    unsigned links;
    bool follow;
} walk_step_t;

static int walk_symlink(snap_walk_t *w, walk_step_t *s, const char *name,
                        int layer, kiln_error_t *err)
{
    char rel[PATH_MAX], target[PATH_MAX];
    ssize_t n;

    if (++s->links > KILN_SNAP_MAX_LINKS) {
        return kiln__fail(err, KILN_ELOOP,
                          "%s: too many levels of symbolic links (more "
                          "than %d)",
                          s->orig, KILN_SNAP_MAX_LINKS);
    }
    kiln__snap_join(rel, sizeof(rel), w->path, name);
    n = readlinkat(w->v->fds[layer], rel, target, sizeof(target));
    if (n < 0) {
        return kiln__snap_errno(err, errno, "cannot read link", rel);
    }
    if ((size_t)n >= sizeof(target)) {
        return kiln__fail(err, -ENAMETOOLONG, "/%s: link target too long", rel);
    }
    target[n] = '\0';
    if (n == 0) {
        return kiln__fail(err, KILN_ENOENT, "/%s: empty symlink", rel);
    }
    if (target[0] == '/') {
        walk_pop_to(w, 1); /* absolute: re-rooted at the snapshot root */
    }
    if (walk_expand(s->rest, s->p, target) != 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}

/* Resolves one component; 1 when it ended the walk with a result. */
static int walk_component(snap_walk_t *w, walk_step_t *s, const char *name,
                          bool last, kiln_error_t *err)
{
    snap_child_t c;
    snap_dir_t dir;
    int rc;

    if (walk_reserve(w) != 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    dir.layers = w->pool + w->lv[w->nlv - 1].off;
    dir.n = w->lv[w->nlv - 1].n;
    c.layers = last ? w->child : w->pool + w->pool_len;
    rc = kiln__snap_lookup(w->v, &dir, w->path, name, &c, err);
    if (rc != 0) {
        return rc;
    }
    if (walk_set_path(w, name) != 0) {
        return kiln__fail(err, -ENAMETOOLONG, "%s: path too long", s->orig);
    }
    w->e.layer = c.layer;
    w->nchild = 0;
    if (c.layer < 0) {
        if (last) {
            return 1;
        }
        return kiln__fail(err, KILN_ENOENT, "%s: %s: no such directory",
                          s->orig, w->e.path);
    }
    if (S_ISLNK(c.st.st_mode) && (!last || s->follow)) {
        return walk_symlink(w, s, name, c.layer, err);
    }
    w->e.st = c.st;
    if (last) {
        w->nchild = c.n;
        return 1;
    }
    if (!S_ISDIR(c.st.st_mode)) {
        return kiln__fail(err, -ENOTDIR, "%s: %s: not a directory", s->orig,
                          w->e.path);
    }
    if (walk_push(w, name, &c) != 0) {
        return kiln__fail(err, -ENAMETOOLONG, "%s: path too long", s->orig);
    }
    return 0;
}

/* The walk ended on the current directory ("a/b/", "a/.."). */
static int walk_dir_result(snap_walk_t *w, kiln_error_t *err)
{
    snap_level_t *l = &w->lv[w->nlv - 1];
    snap_child_t c;
    snap_dir_t up;
    char name[NAME_MAX + 1];
    const char *slash;

    if (w->nlv == 1) {
        return walk_root_result(w, err);
    }
    slash = strrchr(w->path, '/');
    snprintf(name, sizeof(name), "%s", slash ? slash + 1 : w->path);
    walk_pop_to(w, w->nlv - 1);
    /* Look it up again from its parent for its stat. */
    up.layers = w->pool + l[-1].off;
    up.n = l[-1].n;
    c.layers = w->child;
    if (kiln__snap_lookup(w->v, &up, w->path, name, &c, err) != 0) {
        return err ? err->code : KILN_EIO;
    }
    walk_set_path(w, name);
    w->e.layer = c.layer;
    w->e.st = c.st;
    w->nchild = c.n;
    return 0;
}

/* Reads the next component of *rest at *p into name; false at the end. */
static int next_component(const char *rest, size_t *p, char *name, bool *last)
{
    size_t q, len;

    while (rest[*p] == '/') {
        (*p)++;
    }
    if (rest[*p] == '\0') {
        return 0;
    }
    q = *p + strcspn(rest + *p, "/");
    len = q - *p;
    if (len > NAME_MAX) {
        return -ENAMETOOLONG;
    }
    memcpy(name, rest + *p, len);
    name[len] = '\0';
    *p = q;
    *last = rest[q + strspn(rest + q, "/")] == '\0';
    return 1;
}

int kiln__snap_walk(snap_walk_t *w, const char *path, bool follow,
                    kiln_error_t *err)
{
    char *rest = strdup(path);
    walk_step_t s = {path, &rest, NULL, 0, follow};
    char name[NAME_MAX + 1];
    size_t p = 0;
    int rc = 0;

    w->e.layer = -1;
    w->e.path[0] = '\0';
    w->nchild = 0;
    if (rest == NULL || walk_start(w) != 0) {
        free(rest);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    s.p = &p;
    for (;;) {
        bool last = false;
        int more = next_component(rest, &p, name, &last);

        if (more < 0) {
            rc = kiln__fail(err, more, "%s: name too long", path);
            break;
        }
        if (more == 0) {
            rc = walk_dir_result(w, err);
            break;
        }
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            if (name[1] == '.' && w->nlv > 1) {
                walk_pop_to(w, w->nlv - 1);
            }
            continue;
        }
        rc = walk_component(w, &s, name, last, err);
        if (rc != 0) {
            rc = rc > 0 ? 0 : rc;
            break;
        }
    }
    free(rest);
    return rc;
}

bool kiln__snap_walk_parent(const snap_walk_t *w, snap_dir_t *out)
{
    if (strcmp(w->e.path, "/") == 0) {
        return false;
    }
    out->layers = w->pool + w->lv[w->nlv - 1].off;
    out->n = w->lv[w->nlv - 1].n;
    return true;
}

void kiln__snap_walk_dir(const snap_walk_t *w, snap_dir_t *out)
{
    out->layers = w->child;
    out->n = w->nchild;
}

static atomic_int no_openat2;

int kiln__snap_layer_open(const kiln_snap_view_t *v, int layer, const char *rel,
                          int flags)
{
    struct open_how how;
    int fd;

    flags |= O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
    if (!atomic_load(&no_openat2)) {
        memset(&how, 0, sizeof(how));
        how.flags = (uint64_t)flags;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                      RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
        fd = (int)syscall(SYS_openat2, v->fds[layer], kiln__snap_rel(rel), &how,
                          sizeof(how));
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) {
            return fd;
        }
        atomic_store(&no_openat2, 1); /* old kernel or seccomp */
    }
    return openat(v->fds[layer], kiln__snap_rel(rel), flags);
}

/* Public read API. */

int kiln__snap_resolve(const kiln_snap_view_t *v, const char *path, bool follow,
                       kiln_snap_entry_t *out, kiln_error_t *err)
{
    snap_walk_t w;
    int rc;

    if (kiln__snap_walk_init(&w, v) != 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__snap_walk(&w, path, follow, err);
    memcpy(out, &w.e, sizeof(*out));
    kiln__snap_walk_free(&w);
    return rc;
}

static int readdir_emit(const snap_list_t *l, const char *dir,
                        kiln_snap_dir_fn fn, void *ud, kiln_error_t *err)
{
    kiln_snap_entry_t *e = malloc(sizeof(*e));
    int rc = 0;

    if (e == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        int n = snprintf(e->path, sizeof(e->path), "/%s%s%s", dir,
                         dir[0] ? "/" : "", l->ents[i].name);
        if (n < 0 || (size_t)n >= sizeof(e->path)) {
            rc = kiln__fail(err, -ENAMETOOLONG, "/%s/%s: path too long", dir,
                            l->ents[i].name);
            break;
        }
        e->layer = l->ents[i].layer;
        e->st = l->ents[i].st;
        rc = fn(l->ents[i].name, e, ud);
    }
    free(e);
    return rc;
}

int kiln__snap_readdir(const kiln_snap_view_t *v, const char *dir,
                       kiln_snap_dir_fn fn, void *ud, kiln_error_t *err)
{
    snap_list_t l;
    snap_walk_t w;
    snap_dir_t d;
    int rc;

    if (kiln__snap_walk_init(&w, v) != 0) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__snap_walk(&w, dir, false, err);
    if (rc == 0 && w.e.layer < 0 && strcmp(w.e.path, "/") != 0) {
        rc = kiln__fail(err, KILN_ENOENT, "%s: not found", w.e.path);
    } else if (rc == 0 && !S_ISDIR(w.e.st.st_mode)) {
        rc = kiln__fail(err, -ENOTDIR, "%s: not a directory", w.e.path);
    }
    if (rc == 0) {
        kiln__snap_walk_dir(&w, &d);
        rc = kiln__snap_list(v, &d, w.e.path + 1, &l, err);
        if (rc == 0) {
            rc = readdir_emit(&l, w.e.path + 1, fn, ud, err);
            kiln__snap_list_free(&l);
        }
    }
    kiln__snap_walk_free(&w);
    return rc;
}

/* An entry handed back by a caller: its layer and a clean path. */
static int check_entry(const kiln_snap_view_t *v, const kiln_snap_entry_t *e,
                       kiln_error_t *err)
{
    const char *p = e->path;

    if (e->layer < 0 || (size_t)e->layer >= v->n) {
        return kiln__fail(err, KILN_ENOENT, "%s: not found", e->path);
    }
    if (p[0] != '/') {
        return kiln__fail(err, KILN_EINVAL, "%s: not canonical", e->path);
    }
    while (*p == '/') {
        size_t n = strcspn(++p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            if (n == 0 && p[0] == '\0') {
                break;
            }
            return kiln__fail(err, KILN_EINVAL, "%s: not canonical", e->path);
        }
        p += n;
    }
    return 0;
}

int kiln__snap_open_file(const kiln_snap_view_t *v,
                         const kiln_snap_entry_t *entry, int *fd,
                         kiln_error_t *err)
{
    int rc = check_entry(v, entry, err);

    *fd = -1;
    if (rc != 0) {
        return rc;
    }
    if (!S_ISREG(entry->st.st_mode)) {
        return kiln__fail(err, KILN_EINVAL, "%s: not a regular file",
                          entry->path);
    }
    *fd = kiln__snap_layer_open(v, entry->layer, entry->path + 1, O_RDONLY);
    if (*fd < 0) {
        return kiln__snap_errno(err, errno, "cannot open", entry->path + 1);
    }
    return 0;
}

int kiln__snap_readlink(const kiln_snap_view_t *v,
                        const kiln_snap_entry_t *entry, char *buf, size_t size,
                        kiln_error_t *err)
{
    int rc = check_entry(v, entry, err);
    ssize_t n;

    if (rc != 0) {
        return rc;
    }
    if (!S_ISLNK(entry->st.st_mode)) {
        return kiln__fail(err, KILN_EINVAL, "%s: not a symlink", entry->path);
    }
    n = readlinkat(v->fds[entry->layer], entry->path + 1, buf, size);
    if (n < 0) {
        return kiln__snap_errno(err, errno, "cannot read link",
                                entry->path + 1);
    }
    if ((size_t)n >= size) {
        return kiln__fail(err, -ENAMETOOLONG, "%s: link target too long",
                          entry->path);
    }
    buf[n] = '\0';
    return 0;
}
