/*
 * Recursive copies: a source directory of a view into a destination that
 * is either new (materialize, diff, a fresh directory of a writer) or an
 * existing directory of a writer's view (merge mode), with an optional
 * filter that may skip entries and create their directories lazily.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

void kiln__snap_frame_init(snap_frame_t *f, const snap_copier_t *c, int fd)
{
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    f->layer = -1;
    f->src_len = strlen(c->src);
    f->dst_len = strlen(c->dst);
}

/* The destination layer (merge mode). */
static int top_layer(const snap_copier_t *c)
{
    return (int)c->dview->n - 1;
}

/* Looks `name` up in the merged destination directory `up`. */
static int dest_lookup(snap_copier_t *c, const snap_frame_t *up,
                       const char *name, snap_child_t *d)
{
    char parent[PATH_MAX];
    snap_dir_t dir = {up->dlayers, up->dn};

    memcpy(parent, c->dst, up->dst_len);
    parent[up->dst_len] = '\0';
    return kiln__snap_lookup(c->dview, &dir, parent, name, d, c->err);
}

/* Makes room for a non-directory at `name` in merge mode. */
static int prepare_leaf(snap_copier_t *c, snap_frame_t *up, const char *name)
{
    char what[PATH_MAX + 1];
    snap_child_t d;
    bool had;
    int rc;

    if (!up->merge) {
        return 0;
    }
    snprintf(what, sizeof(what), "/%s", c->dst);
    d.layers = c->scratch;
    rc = dest_lookup(c, up, name, &d);
    if (rc != 0) {
        return rc;
    }
    if (d.layer < 0) {
        return kiln__snap_unwhiteout(up->fd, name, &had, what, c->err);
    }
    if (S_ISDIR(d.st.st_mode) && !c->replace) {
        return kiln__fail(c->err, -EISDIR,
                          "%s: cannot replace directory with file", what);
    }
    /* Below the top layer, the new entry simply shadows the old one. */
    if (d.layer == top_layer(c)) {
        return kiln__snap_rm_tree(up->fd, name, what, c->err);
    }
    return 0;
}

/* Owner and xattrs of the source on an existing directory (its mode and
 * times follow after its contents). */
static int apply_src_owner(snap_copier_t *c, snap_frame_t *f, const char *what)
{
    snap_meta_t m;
    int sfd;

    if (f->layer >= 0) {
        sfd = kiln__snap_layer_open(c->from, f->layer, c->src,
                                    O_RDONLY | O_DIRECTORY);
        if (sfd >= 0) {
            kiln__snap_copy_xattrs(sfd, f->fd);
            close(sfd);
        }
    }
    kiln__snap_meta_from_stat(&m, f->st, c->ov);
    m.mode = KILN_SNAP_MODE_UNSET;
    m.times = false;
    return kiln__snap_meta_apply(-1, NULL, f->fd, false, &m, what, c->err);
}

/* Copies up an existing directory of the destination for merging. */
static int open_existing(snap_copier_t *c, snap_frame_t *f,
                         const snap_child_t *d, bool top, const char *what)
{
    snap_copier_t dc;
    int rc;

    if (d->layer == top_layer(c)) {
        f->fd = kiln__snap_open_dir(f->up->fd, f->name, what, c->err);
        if (f->fd < 0) {
            return f->fd;
        }
        if (top) {
            return 0;
        }
        /* An existing subdirectory takes the source's metadata. */
        return apply_src_owner(c, f, what);
    }
    if (!top) {
        return kiln__snap_copy_node(c, f->layer, f->st, f->up->fd, f->name,
                                    &f->fd);
    }
    /* The copy's destination itself keeps its metadata: a copy-up. */
    dc = *c;
    dc.from = c->dview;
    dc.ov = NULL;
    memcpy(dc.src, c->dst, sizeof(dc.src));
    rc =
        kiln__snap_copy_node(&dc, d->layer, &d->st, f->up->fd, f->name, &f->fd);
    if (rc == 0) {
        rc = kiln__snap_copy_dir_done(&dc, f->fd, &d->st);
    }
    return rc;
}

/* Creates or opens the destination directory of frame f (at c->dst). */
static int open_dest_dir(snap_copier_t *c, snap_frame_t *f, bool top)
{
    char what[PATH_MAX + 1];
    snap_child_t d = {-1, {0}, NULL, 0};
    bool opaque = false;
    int rc;

    snprintf(what, sizeof(what), "/%s", c->dst);
    f->finish = true;
    if (f->up->merge) {
        d.layers = malloc((c->dview->n ? c->dview->n : 1) * sizeof(int));
        if (d.layers == NULL) {
            return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
        }
        rc = dest_lookup(c, f->up, f->name, &d);
        if (rc == 0 && d.layer >= 0 && S_ISDIR(d.st.st_mode)) {
            f->merge = true;
            f->dlayers = d.layers;
            f->dn = d.n;
            f->finish = !top;
            return open_existing(c, f, &d, top, what);
        }
        free(d.layers);
        if (rc != 0) {
            return rc;
        }
        if (d.layer >= 0 && !c->replace) {
            return kiln__fail(c->err, -ENOTDIR,
                              "%s: cannot copy a directory onto a "
                              "non-directory",
                              what);
        }
        if (d.layer == top_layer(c)) {
            rc = kiln__snap_rm_tree(f->up->fd, f->name, what, c->err);
        } else if (d.layer < 0) {
            rc = kiln__snap_unwhiteout(f->up->fd, f->name, &opaque, what,
                                       c->err);
        }
        /* Whatever the name hid below must stay hidden. */
        opaque = opaque || d.layer >= 0;
        if (rc != 0) {
            return rc;
        }
    }
    rc = kiln__snap_copy_node(c, f->layer, f->st, f->up->fd, f->name, &f->fd);
    if (rc == 0 && opaque) {
        rc = kiln__snap_make_marker(f->fd, SNAP_WH_OPAQUE, what, c->err);
    }
    return rc;
}

/* Creates a directory that was skipped by the filter, now that something
 * below it is copied (and its own pending parents first). */
static int ensure_frame(snap_copier_t *c, snap_frame_t *f)
{
    char src_c, dst_c;
    int rc;

    if (f->fd >= 0) {
        return 0;
    }
    rc = ensure_frame(c, f->up);
    if (rc != 0) {
        return rc;
    }
    src_c = c->src[f->src_len];
    dst_c = c->dst[f->dst_len];
    c->src[f->src_len] = '\0';
    c->dst[f->dst_len] = '\0';
    rc = open_dest_dir(c, f, false);
    c->src[f->src_len] = src_c;
    c->dst[f->dst_len] = dst_c;
    return rc;
}

static int finish_frame(snap_copier_t *c, snap_frame_t *f, int rc)
{
    if (f->fd >= 0) {
        if (rc == 0 && f->finish) {
            rc = kiln__snap_copy_dir_done(c, f->fd, f->st);
        }
        close(f->fd);
        f->fd = -1;
    }
    free(f->dlayers);
    f->dlayers = NULL;
    return rc;
}

int kiln__snap_copy_entry(snap_copier_t *c, snap_frame_t *up, const char *name,
                          int layer, const struct stat *st,
                          const snap_dir_t *sdir, bool top)
{
    snap_frame_t f;
    int rc;

    rc = ensure_frame(c, up);
    if (rc == 0 && !S_ISDIR(st->st_mode)) {
        rc = prepare_leaf(c, up, name);
        return rc != 0 ? rc
                       : kiln__snap_copy_node(c, layer, st, up->fd, name, NULL);
    }
    if (rc != 0) {
        return rc;
    }
    kiln__snap_frame_init(&f, c, -1);
    f.up = up;
    f.name = name;
    f.layer = layer;
    f.st = st;
    rc = open_dest_dir(c, &f, top);
    if (rc == 0) {
        rc = kiln__snap_copy_contents(c, sdir, &f);
    }
    return finish_frame(c, &f, rc);
}

/* A directory the filter excluded: walked, created only if needed. */
static int copy_excluded(snap_copier_t *c, snap_frame_t *up, const char *name,
                         int layer, const struct stat *st,
                         const snap_dir_t *sdir)
{
    snap_frame_t f;

    if (!S_ISDIR(st->st_mode)) {
        return 0;
    }
    kiln__snap_frame_init(&f, c, -1);
    f.up = up;
    f.name = name;
    f.layer = layer;
    f.st = st;
    f.finish = true;
    return finish_frame(c, &f, kiln__snap_copy_contents(c, sdir, &f));
}

static int filter_decide(snap_copier_t *c, const snap_ent_t *e)
{
    if (c->filter == NULL) {
        return KILN_SNAP_COPY_INCLUDE;
    }
    snprintf(c->fent->path, sizeof(c->fent->path), "/%s", c->src);
    c->fent->layer = e->layer;
    c->fent->st = e->st;
    return c->filter(c->src + c->src_base, c->fent, c->filter_ud);
}

static int copy_child(snap_copier_t *c, const snap_dir_t *sdir, snap_frame_t *f,
                      const snap_ent_t *e, int *buf)
{
    snap_child_t ch = {-1, {0}, buf, 0};
    snap_dir_t child = {buf, 0};
    size_t sl, dl;
    int rc = 0, decision;

    if (S_ISDIR(e->st.st_mode)) {
        rc = kiln__snap_lookup(c->from, sdir, c->src, e->name, &ch, c->err);
        child.n = ch.n;
    }
    if (rc != 0) {
        return rc;
    }
    sl = kiln__snap_push(c->src, e->name);
    dl = kiln__snap_push(c->dst, e->name);
    if (sl == (size_t)-1 || dl == (size_t)-1) {
        rc = kiln__fail(c->err, -ENAMETOOLONG, "/%s/%s: path too long", c->dst,
                        e->name);
    } else if ((decision = filter_decide(c, e)) < 0) {
        rc = decision;
    } else if (decision == KILN_SNAP_COPY_EXCLUDE) {
        rc = copy_excluded(c, f, e->name, e->layer, &e->st, &child);
    } else if (decision != KILN_SNAP_COPY_PRUNE) {
        rc = kiln__snap_copy_entry(c, f, e->name, e->layer, &e->st, &child,
                                   false);
    }
    if (sl != (size_t)-1) {
        c->src[sl] = '\0';
    }
    if (dl != (size_t)-1) {
        c->dst[dl] = '\0';
    }
    return rc;
}

int kiln__snap_copy_contents(snap_copier_t *c, const snap_dir_t *sdir,
                             snap_frame_t *f)
{
    snap_list_t l;
    int *buf;
    int rc;

    if (sdir->n == 0) {
        return 0; /* the root of an empty view */
    }
    buf = malloc(c->from->n * sizeof(int));
    if (buf == NULL) {
        return kiln__fail(c->err, KILN_ENOMEM, "out of memory");
    }
    rc = kiln__snap_list(c->from, sdir, c->src, &l, c->err);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = copy_child(c, sdir, f, &l.ents[i], buf);
    }
    if (l.ents != NULL || l.names != NULL) {
        kiln__snap_list_free(&l);
    }
    free(buf);
    return rc;
}
