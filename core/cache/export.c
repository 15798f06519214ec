/*
 * The exporter's background half: as soon as a vertex has its result, the
 * layers of its snapshot are packed as tar blobs (whiteouts are the .wh.
 * files the layer holds), compressed, and written into the destination
 * layout or pushed to the registry, a few at a time on libuv's thread
 * pool, so that at the end only the config and the manifest remain
 * (export_commit.c). Each store layer is packed once per export; a layer
 * packed by an earlier export (the store's kv maps it to its blob) is not
 * packed again when the destination has the blob already.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache_int.h"

/* Claims layer `id` for packing: NULL if it is claimed already. */
static kiln__packed_t *claim(kiln__exporter_t *e, const char *id, int *rc)
{
    kiln__packed_t *p = NULL;

    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_packed; i++) {
        if (strcmp(e->packed[i].id, id) == 0) {
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
    }
    if (e->n_packed == e->cap_packed) {
        size_t cap = e->cap_packed ? e->cap_packed * 2 : 32;
        kiln__packed_t *v = realloc(e->packed, cap * sizeof(*v));
        if (v == NULL) {
            pthread_mutex_unlock(&e->mu);
            *rc = KILN_ENOMEM;
            return NULL;
        }
        e->packed = v;
        e->cap_packed = cap;
    }
    p = &e->packed[e->n_packed++];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", id);
    pthread_mutex_unlock(&e->mu);
    /* The array may move: callers work on a copy and publish it. */
    return p;
}

static void publish(kiln__exporter_t *e, const char *id,
                    const kiln__cache_blob_t *b, uint64_t sent, bool skipped)
{
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_packed; i++) {
        if (strcmp(e->packed[i].id, id) == 0) {
            e->packed[i].blob = *b;
            e->packed[i].done = true;
        }
    }
    e->uploaded += sent;
    e->skipped += skipped;
    pthread_mutex_unlock(&e->mu);
}

/* Does the destination have blob `digest` already? */
static int dest_has(const kiln__exporter_t *e, kiln__oci_reg_t *reg,
                    const char *digest, bool *has, kiln_error_t *err)
{
    if (e->spec.type == KILN__CACHE_LOCAL) {
        char path[4200];
        struct stat st;

        snprintf(path, sizeof(path), "%s/blobs/sha256/%s", e->spec.dir,
                 digest + 7);
        *has = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        return 0;
    }
    return kiln__oci_blob_head(reg, e->spec.reg.registry,
                               e->spec.reg.repository, digest, has, NULL, err);
}

struct fd_src {
    int fd;
};

static int fd_read(void *ud, void *buf, size_t cap, size_t *got,
                   kiln_error_t *err)
{
    struct fd_src *f = ud;
    ssize_t r;

    do {
        r = read(f->fd, buf, cap);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return kiln__fail(err, KILN_EIO, "reading a layer blob: %s",
                          strerror(errno));
    }
    *got = (size_t)r;
    return 0;
}

/* Pushes the packed blob file of the staging layout. */
static int push_staged(const kiln__exporter_t *e, kiln__oci_reg_t *reg,
                       const char *staging, const char *digest,
                       kiln_error_t *err)
{
    char path[4200];
    struct fd_src f;
    int rc;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", staging, digest + 7);
    f.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) {
        return kiln__fail(err, KILN_EIO, "%s: %s", path, strerror(errno));
    }
    rc = kiln__oci_blob_push_chunked(reg, e->spec.reg.registry,
                                     e->spec.reg.repository, digest, fd_read,
                                     &f, 0, NULL, err);
    close(f.fd);
    return rc;
}

/* Another repository of the destination's registry had the blob: a
 * cross-repository mount instead of an upload. */
static int try_mount(kiln__store_t *st, const kiln__exporter_t *e,
                     kiln__oci_reg_t *reg, const char *digest, bool *has,
                     kiln_error_t *err)
{
    char registry[512], repo[512];

    *has = false;
    if (!kiln__cache_where_seen(st, digest, registry, sizeof(registry), repo,
                                sizeof(repo)) ||
        strcmp(registry, e->spec.reg.registry) != 0 ||
        strcmp(repo, e->spec.reg.repository) == 0) {
        return 0;
    }
    return kiln__oci_blob_mount(reg, e->spec.reg.registry,
                                e->spec.reg.repository, repo, digest, has,
                                err);
}

/* Packs store layer `id` at `path` for e (unless the destination has its
 * blob), and uploads it. */
static int pack_layer(kiln_solve_t *s, kiln__exporter_t *e,
                      kiln__oci_reg_t *reg, const char *staging,
                      const char *id, const char *path, kiln_error_t *err)
{
    kiln__store_t *st = s->engine->store;
    kiln__cache_blob_t b = {0};
    kiln_oci_desc_t desc = {0};
    char key[128];
    bool has = false;
    int rc = 0;

    kiln__cache_layer_kv(id, e->spec.comp, e->spec.level, key, sizeof(key));
    if (kiln__cache_blob_get(st, key, &b) == 0) {
        rc = dest_has(e, reg, b.digest, &has, err);
        if (rc == 0 && !has && e->spec.type == KILN__CACHE_REGISTRY) {
            rc = try_mount(st, e, reg, b.digest, &has, err);
        }
        if (rc == 0 && has) {
            publish(e, id, &b, 0, true);
            return 0;
        }
    }
    rc = kiln__oci_write_layer_level(
        e->spec.type == KILN__CACHE_LOCAL ? e->spec.dir : staging, path,
        e->spec.comp, e->spec.level, &desc, b.diff_id, err);
    if (rc < 0) {
        return kiln__fail_prefix(err, rc, "packing layer %s", id);
    }
    snprintf(b.digest, sizeof(b.digest), "%s", desc.digest);
    snprintf(b.media_type, sizeof(b.media_type), "%s", desc.media_type);
    b.size = desc.size;
    kiln__oci_desc_clear(&desc);
    kiln__cache_blob_put(st, key, &b);
    if (e->spec.type == KILN__CACHE_REGISTRY) {
        char staged[4200];

        /* docker-registry answers 5xx to concurrent pushes of one blob
         * (several builds sharing layers): those are tried again. */
        for (int t = 0; t < 4; t++) {
            if (t > 0) {
                usleep(100000u * (unsigned)t);
            }
            rc = kiln__oci_blob_head(reg, e->spec.reg.registry,
                                     e->spec.reg.repository, b.digest, &has,
                                     NULL, err);
            if (rc == 0 && !has) {
                rc = push_staged(e, reg, staging, b.digest, err);
            }
            if (rc != KILN_EIO) {
                break;
            }
        }
        snprintf(staged, sizeof(staged), "%s/blobs/sha256/%s", staging,
                 b.digest + 7);
        unlink(staged);
        if (rc < 0) {
            return kiln__fail_prefix(err, rc, "pushing %s to %s", b.digest,
                                     e->spec.ref);
        }
        kiln__cache_seen_at(st, b.digest, &e->spec.reg);
    }
    publish(e, id, &b, has ? 0 : (uint64_t)b.size, has);
    return 0;
}

static int cancelled(void *ud)
{
    const kiln_solve_t *s = ud;

    return atomic_load(&s->stop);
}

/* Worker: every layer of one snapshot, for one exporter. */
static int upload_snapshot(kiln_solve_t *s, kiln__exporter_t *e,
                           const char *snap, kiln_error_t *err)
{
    kiln__store_t *st = s->engine->store;
    kiln__store_layers_t layers = {0};
    kiln__oci_reg_t *reg = NULL;
    char *staging = NULL;
    int rc = kiln__store_snapshot_layers(st, snap, &layers, err);

    if (rc == 0 && e->spec.type == KILN__CACHE_REGISTRY) {
        rc = kiln__cache_reg_new(&e->spec, s, &reg, err);
        if (rc == 0) {
            rc = kiln__store_mkdtemp(st, &staging, err);
        }
        if (rc == 0) {
            rc = kiln__oci_layout_init(staging, err);
        }
    }
    for (size_t i = 0; rc == 0 && i < layers.n; i++) {
        if (cancelled(s)) {
            rc = kiln__fail(err, KILN_ECANCELED, "canceled");
            break;
        }
        if (claim(e, layers.ids[i], &rc) == NULL) {
            continue; /* another upload has it (or out of memory) */
        }
        rc = pack_layer(s, e, reg, staging, layers.ids[i], layers.paths[i],
                        err);
    }
    if (rc == KILN_ENOMEM && err != NULL && err->code != rc) {
        kiln__fail(err, rc, "out of memory");
    }
    if (staging != NULL) {
        kiln__store_discard(st, staging, NULL);
        free(staging);
    }
    kiln__oci_reg_free(reg);
    kiln__store_layers_free(&layers);
    return rc;
}

static void upload_work(uv_work_t *w)
{
    kiln__upload_t *u = w->data;
    kiln_error_t err = {0};
    int rc = upload_snapshot(u->s, u->e, u->snapshot, &err);

    if (rc < 0) {
        pthread_mutex_lock(&u->e->mu);
        if (u->e->status == 0) {
            u->e->status = rc;
            u->e->error = err;
        }
        pthread_mutex_unlock(&u->e->mu);
    }
}

static void start_uploads(kiln_solve_t *s);

static void upload_done(uv_work_t *w, int status)
{
    kiln__upload_t *u = w->data;
    kiln_solve_t *s = u->s;

    (void)status;
    free(u->snapshot);
    free(u);
    s->cache->active--;
    s->running--;
    start_uploads(s);
    kiln__solve_dispatch(s);
}

/* Loop: starts queued uploads up to the bound. A failing solve starts no
 * more; what is queued is dropped. */
static void start_uploads(kiln_solve_t *s)
{
    kiln__cache_t *c = s->cache;

    while (c->queue != NULL && c->active < KILN__CACHE_UPLOADS) {
        kiln__upload_t *u = c->queue;

        c->queue = u->next;
        if (c->queue == NULL) {
            c->queue_tail = NULL;
        }
        if (s->failing) {
            free(u->snapshot);
            free(u);
            continue;
        }
        c->active++;
        s->running++;
        u->work.data = u;
        if (uv_queue_work(s->engine->loop, &u->work, upload_work,
                          upload_done) < 0) {
            c->active--;
            s->running--;
            pthread_mutex_lock(&u->e->mu);
            if (u->e->status == 0) {
                u->e->status = kiln__fail(&u->e->error, KILN_ENOMEM,
                                          "cannot queue a cache upload");
            }
            pthread_mutex_unlock(&u->e->mu);
            free(u->snapshot);
            free(u);
        }
    }
}

static void queue_upload(kiln_solve_t *s, kiln__exporter_t *e,
                         const char *snap)
{
    kiln__upload_t *u = calloc(1, sizeof(*u));

    if (u == NULL || (u->snapshot = strdup(snap)) == NULL) {
        free(u);
        pthread_mutex_lock(&e->mu);
        if (e->status == 0) {
            e->status = kiln__fail(&e->error, KILN_ENOMEM, "out of memory");
        }
        pthread_mutex_unlock(&e->mu);
        return;
    }
    u->s = s;
    u->e = e;
    if (s->cache->queue_tail != NULL) {
        s->cache->queue_tail->next = u;
    } else {
        s->cache->queue = u;
    }
    s->cache->queue_tail = u;
}

void kiln__cache_export_node(kiln_solve_t *s, kiln__node_t *n)
{
    kiln__cache_t *c = s->cache;

    if (c == NULL || c->n_exp == 0 || n->snapshots == NULL ||
        n->v->kind == KILN_OP_SOURCE) {
        return; /* sources are roots: BuildKit never exports their layers */
    }
    for (size_t i = 0; i < c->n_exp; i++) {
        kiln__exporter_t *e = &c->exp[i];

        for (size_t o = 0; o < kiln__cache_n_out(n); o++) {
            bool wanted = e->spec.max ||
                          (n == s->result && (int64_t)o == s->result_index);
            if (wanted && n->snapshots[o] != NULL) {
                queue_upload(s, e, n->snapshots[o]);
            }
        }
    }
    start_uploads(s);
}
