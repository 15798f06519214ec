/* Views: opening a stack of layers, looking names up, merged listings. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

const char *kiln__snap_rel(const char *rel)
{
    return rel[0] != '\0' ? rel : ".";
}

bool kiln__snap_is_wh(const char *name)
{
    return strncmp(name, SNAP_WH_PREFIX, SNAP_WH_PREFIX_LEN) == 0;
}

/* buf = dir + "/" + name (or just name when dir is ""). */
int kiln__snap_join(char *buf, size_t size, const char *dir, const char *name)
{
    int n = dir[0] != '\0' ? snprintf(buf, size, "%s/%s", dir, name)
                           : snprintf(buf, size, "%s", name);

    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int kiln__snap_errno(kiln_error_t *err, int e, const char *what,
                     const char *path)
{
    int code = e == ENOMEM ? KILN_ENOMEM : -e;

    if (e == 0) {
        code = KILN_EIO;
    }
    return kiln__fail(err, code, "/%s: %s: %s", path, what, strerror(e));
}

/* Whether layer L holds `rel` (any type). -1 with errno on real errors. */
static int layer_has(const kiln_snap_view_t *v, int layer, const char *rel)
{
    struct stat st;

    if (fstatat(v->fds[layer], rel, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return 1;
    }
    return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
}

/* Whether directory rel of layer is opaque. */
static int layer_opaque(const kiln_snap_view_t *v, int layer, const char *rel)
{
    const snap_listing_t *l = kiln__snap_cache_get(v, layer, rel);
    char buf[PATH_MAX];

    if (l != NULL) {
        return kiln__snap_listing_find(l, SNAP_WH_OPAQUE) >= 0;
    }
    if (kiln__snap_join(buf, sizeof(buf), rel, SNAP_WH_OPAQUE) != 0) {
        return 0;
    }
    return layer_has(v, layer, buf);
}

static int layer_whiteout(const kiln_snap_view_t *v, int layer,
                          const snap_listing_t *l, const char *dir_rel,
                          const char *name)
{
    char wh[NAME_MAX + SNAP_WH_PREFIX_LEN + 2];
    char buf[PATH_MAX];

    snprintf(wh, sizeof(wh), "%s%s", SNAP_WH_PREFIX, name);
    if (l != NULL) {
        return kiln__snap_listing_find(l, wh) >= 0;
    }
    if (kiln__snap_join(buf, sizeof(buf), dir_rel, wh) != 0) {
        return 0;
    }
    return layer_has(v, layer, buf);
}

/* One layer's part of a lookup: 1 when the merge stops here. */
static int lookup_layer(const kiln_snap_view_t *v, int layer, bool more,
                        const char *dir_rel, const char *name, const char *rel,
                        snap_child_t *out)
{
    const snap_listing_t *l = kiln__snap_cache_get(v, layer, dir_rel);
    int type = l != NULL ? kiln__snap_listing_find(l, name) : DT_UNKNOWN;
    struct stat st;

    if (type < 0 || (type == DT_UNKNOWN && fstatat(v->fds[layer], rel, &st,
                                                   AT_SYMLINK_NOFOLLOW) != 0)) {
        if (type == DT_UNKNOWN && errno != ENOENT && errno != ENOTDIR) {
            return -1;
        }
        /* A whiteout only matters for the layers below. */
        return more ? layer_whiteout(v, layer, l, dir_rel, name) : 0;
    }
    if (out->layer < 0) {
        /* The provider: its stat is needed. */
        if (type != DT_UNKNOWN &&
            fstatat(v->fds[layer], rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            return -1;
        }
        out->layer = layer;
        out->st = st;
        if (!S_ISDIR(st.st_mode)) {
            return 1;
        }
    } else if (type != DT_UNKNOWN ? type != DT_DIR : !S_ISDIR(st.st_mode)) {
        return 1; /* a non-directory below a directory ends the merge */
    }
    out->layers[out->n++] = layer;
    return more ? layer_opaque(v, layer, rel) : 0;
}

int kiln__snap_lookup(const kiln_snap_view_t *v, const snap_dir_t *dir,
                      const char *dir_rel, const char *name, snap_child_t *out,
                      kiln_error_t *err)
{
    char rel[PATH_MAX];

    out->layer = -1;
    out->n = 0;
    if (kiln__snap_is_wh(name)) {
        return 0;
    }
    if (kiln__snap_join(rel, sizeof(rel), dir_rel, name) != 0) {
        return kiln__fail(err, -ENAMETOOLONG, "/%s/%s: path too long", dir_rel,
                          name);
    }
    for (size_t k = 0; k < dir->n; k++) {
        int r = lookup_layer(v, dir->layers[k], k + 1 < dir->n, dir_rel, name,
                             rel, out);
        if (r < 0) {
            return kiln__snap_errno(err, errno, "cannot look up", rel);
        }
        if (r > 0) {
            break;
        }
    }
    return 0;
}

/* Listing: the raw names of every layer, then merged. */
typedef struct raw_ent {
    size_t name;   /* offset in the names buffer */
    unsigned rank; /* position in the directory's layer list */
    bool wh;       /* a whiteout of `name` */
} raw_ent_t;

typedef struct raw_list {
    raw_ent_t *v;
    size_t n, cap;
    kiln__buf_t names;
} raw_list_t;

static int raw_add(raw_list_t *r, const char *name, unsigned rank, bool wh)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        raw_ent_t *nv = realloc(r->v, cap * sizeof(*nv));
        if (nv == NULL) {
            return KILN_ENOMEM;
        }
        r->v = nv;
        r->cap = cap;
    }
    r->v[r->n].name = r->names.len;
    r->v[r->n].rank = rank;
    r->v[r->n].wh = wh;
    r->n++;
    kiln__buf_append(&r->names, name, strlen(name) + 1);
    return kiln__buf_ok(&r->names) ? 0 : KILN_ENOMEM;
}

static int read_layer_dir(const kiln_snap_view_t *v, int layer, unsigned rank,
                          const char *rel, raw_list_t *r, kiln_error_t *err)
{
    struct dirent *d;
    DIR *dir;
    int fd, rc = 0;

    fd = openat(v->fds[layer], kiln__snap_rel(rel),
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return kiln__snap_errno(err, e, "cannot read directory", rel);
    }
    while (rc == 0 && (errno = 0, d = readdir(dir)) != NULL) {
        const char *name = d->d_name;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            continue;
        }
        if (!kiln__snap_is_wh(name)) {
            rc = raw_add(r, name, rank, false);
        } else if (name[SNAP_WH_PREFIX_LEN] != '\0' &&
                   !kiln__snap_is_wh(name + SNAP_WH_PREFIX_LEN)) {
            rc = raw_add(r, name + SNAP_WH_PREFIX_LEN, rank, true);
        }
    }
    if (rc == 0 && errno != 0) {
        rc = kiln__snap_errno(err, errno, "cannot read directory", rel);
    }
    closedir(dir);
    return rc == KILN_ENOMEM ? kiln__fail(err, rc, "out of memory") : rc;
}

static int raw_cmp(const void *a, const void *b, void *names)
{
    const raw_ent_t *x = a, *y = b;
    int c =
        strcmp((const char *)names + x->name, (const char *)names + y->name);

    if (c != 0) {
        return c;
    }
    if (x->rank != y->rank) {
        return x->rank < y->rank ? -1 : 1;
    }
    return (int)x->wh - (int)y->wh; /* an entry beats its own whiteout */
}

/* Keeps the first entry of each name (the topmost) unless it is a
 * whiteout, and stats it. */
static int merge_raw(const kiln_snap_view_t *v, const snap_dir_t *dir,
                     const char *rel, raw_list_t *r, snap_list_t *out,
                     kiln_error_t *err)
{
    const char *names = (const char *)r->names.data;
    char path[PATH_MAX];

    out->ents = malloc((r->n ? r->n : 1) * sizeof(*out->ents));
    if (out->ents == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->n; i++) {
        const raw_ent_t *e = &r->v[i];
        snap_ent_t *o;

        if (i > 0 && strcmp(names + r->v[i - 1].name, names + e->name) == 0) {
            continue;
        }
        if (e->wh) {
            continue;
        }
        o = &out->ents[out->n];
        o->name = names + e->name;
        o->layer = dir->layers[e->rank];
        if (kiln__snap_join(path, sizeof(path), rel, o->name) != 0) {
            return kiln__fail(err, -ENAMETOOLONG, "/%s/%s: path too long", rel,
                              o->name);
        }
        if (fstatat(v->fds[o->layer], path, &o->st, AT_SYMLINK_NOFOLLOW)) {
            return kiln__snap_errno(err, errno, "cannot stat", path);
        }
        out->n++;
    }
    return 0;
}

int kiln__snap_list(const kiln_snap_view_t *v, const snap_dir_t *dir,
                    const char *rel, snap_list_t *out, kiln_error_t *err)
{
    raw_list_t r = {NULL, 0, 0, KILN_BUF_INIT};
    int rc = 0;

    memset(out, 0, sizeof(*out));
    for (size_t k = 0; k < dir->n && rc == 0; k++) {
        rc = read_layer_dir(v, dir->layers[k], (unsigned)k, rel, &r, err);
    }
    if (rc == 0 && r.n > 0) {
        qsort_r(r.v, r.n, sizeof(*r.v), raw_cmp, r.names.data);
        rc = merge_raw(v, dir, rel, &r, out, err);
    }
    out->names = (char *)r.names.data;
    free(r.v);
    if (rc != 0) {
        kiln__snap_list_free(out);
    }
    return rc;
}

void kiln__snap_list_free(snap_list_t *l)
{
    free(l->ents);
    free(l->names);
    memset(l, 0, sizeof(*l));
}

/* The layers making up "/": top down to the first opaque root. */
static void compute_root(kiln_snap_view_t *v)
{
    v->nroot = 0;
    for (size_t i = v->n; i-- > 0;) {
        v->root[v->nroot++] = (int)i;
        if (layer_has(v, (int)i, SNAP_WH_OPAQUE) > 0) {
            break;
        }
    }
}

static kiln_snap_view_t *view_alloc(size_t n)
{
    kiln_snap_view_t *v = calloc(1, sizeof(*v));
    size_t m = n ? n : 1;

    if (v == NULL) {
        return NULL;
    }
    v->dirs = calloc(m, sizeof(*v->dirs));
    v->fds = malloc(m * sizeof(*v->fds));
    v->root = malloc(m * sizeof(*v->root));
    if (v->dirs == NULL || v->fds == NULL || v->root == NULL) {
        free(v->dirs);
        free(v->fds);
        free(v->root);
        free(v);
        return NULL;
    }
    for (size_t i = 0; i < m; i++) {
        v->fds[i] = -1;
    }
    return v;
}

static int view_add(kiln_snap_view_t *v, const char *dir, int fd,
                    kiln_error_t *err)
{
    int e;

    v->dirs[v->n] = strdup(dir);
    if (v->dirs[v->n] == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    v->fds[v->n] = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3)
                           : open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    e = errno;
    v->n++;
    if (v->fds[v->n - 1] < 0) {
        return kiln__fail(err, e == ENOENT ? KILN_ENOENT : KILN_EIO,
                          "%s: cannot open layer: %s", dir, strerror(e));
    }
    return 0;
}

int kiln__snap_view_open(const char *const *layers, size_t n, kiln_error_t *err,
                         kiln_snap_view_t **out)
{
    kiln_snap_view_t *v = view_alloc(n);
    int rc = 0;

    *out = NULL;
    if (v == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = view_add(v, layers[i], -1, err);
    }
    if (rc != 0) {
        kiln__snap_view_free(v);
        return rc;
    }
    compute_root(v);
    if (kiln__snap_cache_new((int)n, &v->cache) != 0) {
        kiln__snap_view_free(v);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = v;
    return 0;
}

int kiln__snap_view_extend(const kiln_snap_view_t *base, const char *dir,
                           kiln_error_t *err, kiln_snap_view_t **out)
{
    kiln_snap_view_t *v = view_alloc(base->n + 1);
    int rc = 0;

    *out = NULL;
    if (v == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < base->n && rc == 0; i++) {
        rc = view_add(v, base->dirs[i], base->fds[i], err);
    }
    if (rc == 0) {
        rc = view_add(v, dir, -1, err);
    }
    if (rc != 0) {
        kiln__snap_view_free(v);
        return rc;
    }
    compute_root(v);
    /* The new layer is being written: never cached. */
    if (kiln__snap_cache_new((int)base->n, &v->cache) != 0) {
        kiln__snap_view_free(v);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = v;
    return 0;
}

void kiln__snap_view_free(kiln_snap_view_t *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        free(v->dirs[i]);
        if (v->fds[i] >= 0) {
            close(v->fds[i]);
        }
    }
    kiln__snap_cache_free(v->cache);
    free(v->dirs);
    free(v->fds);
    free(v->root);
    free(v);
}

size_t kiln__snap_view_depth(const kiln_snap_view_t *v)
{
    return v->n;
}

const char *kiln__snap_view_layer(const kiln_snap_view_t *v, size_t i)
{
    return i < v->n ? v->dirs[i] : NULL;
}
