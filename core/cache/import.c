/*
 * The importer. At the plan, each --import-cache's manifest and config
 * are read (never a layer), and their records matched against the graph
 * bottom-up, as BuildKit's solver walks cache links: a record matches
 * output o of a vertex when its digest is sha256("<cache-map digest>@o")
 * and, for every input i, one of its links names a record matching input
 * i's vertex through the same selector. Keys match across hosts because
 * they only depend on the definition and the sources' content pins.
 *
 * When a vertex is about to run, the match is made again (content-key
 * links, sha256("D@-1") of what the op reads of an input, match now, and
 * inputs imported after the plan count), and a hit means it does not run.
 *
 * When the store misses a vertex the plan needs, its matching records are
 * tried, newest result first: the result's layer chain is fetched, checked
 * against its digests and unpacked into store layers (a blob unpacked
 * before is reused), and the snapshot recorded under the vertex's key. The
 * plan stops below a hit, so intermediate layers the build does not need
 * are never fetched. A blob that is missing or does not match its digest
 * makes that record a miss, with a warning: the vertex is built instead.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "oci/unpack.h"
#include "solver/cachemap.h"

#define PAIR(k, r) (((size_t)(k) << 32) | (size_t)(r))
#define PAIR_IMP(p) ((p) >> 32)
#define PAIR_REC(p) ((p) & 0xffffffffu)

static const char *where_of(const kiln__cache_spec_t *sp)
{
    return sp->type == KILN__CACHE_LOCAL ? sp->dir : sp->ref;
}

/* The matches of output o of node pos: [*b, *e) of c->match[pos]. */
static void range(const kiln__cache_t *c, size_t pos, size_t o, size_t *b,
                  size_t *e)
{
    *b = *e = 0;
    if (c->n_match[pos] == NULL) {
        return;
    }
    *b = o == 0 ? 0 : c->n_match[pos][o - 1];
    *e = c->n_match[pos][o];
}

static bool has_match(const kiln__cache_t *c, size_t pos, size_t o, size_t p)
{
    size_t b, e;

    range(c, pos, o, &b, &e);
    for (size_t i = b; i < e; i++) {
        if (c->match[pos][i] == p) {
            return true;
        }
    }
    return false;
}

/* A content-key link: once n's inputs are built, input i of a content dep
 * has the checksum D of what the op reads of it, and BuildKit links such
 * inputs, without a selector, to the root record sha256("D@-1"). */
static bool content_link(const kiln_solve_t *s, const kiln__node_t *n,
                         size_t k, size_t i, const kiln__cc_link_t *x)
{
    const kiln__cc_record_t *to = &s->cache->imp[k].cc->records[x->link];
    char want[KILN_DIGEST_STRLEN + 1];

    if (n->content == NULL || n->content[i][0] == '\0' ||
        x->selector[0] != '\0' || to->n_inputs != 0 ||
        kiln__cachemap_record_digest(n->content[i], -1, KILN_CM_CURRENT,
                                     want) < 0) {
        return false;
    }
    return strcmp(to->digest, want) == 0;
}

static bool rec_matches(const kiln_solve_t *s, const kiln__node_t *n,
                        size_t k, const kiln__cc_record_t *r)
{
    const kiln__cache_t *c = s->cache;
    const Pb__Op *op = n->v->op;

    if (r->n_inputs != op->n_inputs) {
        return false;
    }
    for (size_t i = 0; i < op->n_inputs; i++) {
        size_t in = n->v->inputs[i]->pos, out = op->inputs[i]->index;
        const char *sel = kiln__solve_selector(n, i);
        bool ok = false;

        for (size_t l = 0; l < r->inputs[i].n && !ok; l++) {
            const kiln__cc_link_t *x = &r->inputs[i].links[l];
            ok = (strcmp(x->selector, sel) == 0 &&
                  has_match(c, in, out, PAIR(k, x->link))) ||
                 content_link(s, n, k, i, x);
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int match_node(kiln_solve_t *s, kiln__node_t *n, kiln_error_t *err)
{
    kiln__cache_t *c = s->cache;
    size_t pos = n->v->pos, n_out = kiln__cache_n_out(n), len = 0, cap = 0;
    size_t *v = NULL;

    /* Again at run time, with content keys: replace the plan's. */
    free(c->match[pos]);
    free(c->n_match[pos]);
    c->match[pos] = NULL;
    c->n_match[pos] = calloc(n_out, sizeof(size_t));
    if (c->n_match[pos] == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t o = 0; o < n_out; o++) {
        char dg[KILN_DIGEST_STRLEN + 1];

        kiln__cache_record_digest(n, o, dg);
        for (size_t k = 0; dg[0] != '\0' && k < c->n_imp; k++) {
            const kiln__cc_t *cc = c->imp[k].cc;

            for (size_t r = 0; cc != NULL && r < cc->n_records; r++) {
                if (strcmp(cc->records[r].digest, dg) != 0 ||
                    !rec_matches(s, n, k, &cc->records[r])) {
                    continue;
                }
                if (len == cap) {
                    size_t *nv = realloc(v, (cap = cap ? cap * 2 : 4) *
                                                sizeof(*v));
                    if (nv == NULL) {
                        free(v);
                        return kiln__fail(err, KILN_ENOMEM, "out of memory");
                    }
                    v = nv;
                }
                v[len++] = PAIR(k, r);
            }
        }
        c->n_match[pos][o] = len;
    }
    c->match[pos] = v;
    return 0;
}

void kiln__cache_import_plan(kiln_solve_t *s)
{
    kiln__cache_t *c = s->cache;
    size_t *ord = NULL, n_ord = 0, n_read = 0;
    kiln_error_t err = {0};
    int rc;

    if (c == NULL || c->n_imp == 0) {
        return;
    }
    for (size_t k = 0; k < c->n_imp; k++) {
        kiln__import_t *im = &c->imp[k];
        char digest[KILN_DIGEST_STRLEN + 1];

        rc = im->spec.type == KILN__CACHE_REGISTRY
                 ? kiln__cache_reg_new(&im->spec, s, &im->reg, &err)
                 : 0;
        if (rc == 0) {
            rc = kiln__cache_read(&im->spec, im->reg, &im->cc, &im->m,
                                  digest, &err);
        }
        if (rc < 0) {
            kiln__solve_note(s, NULL, KILN_LOG_WARN,
                             "importing the build cache from %s: %s "
                             "(building without it)",
                             where_of(&im->spec), err.message);
            continue;
        }
        n_read++;
        kiln__solve_note(s, NULL, KILN_LOG_INFO,
                         "build cache %s: %zu records, %zu layers",
                         where_of(&im->spec), im->cc->n_records,
                         im->cc->n_layers);
    }
    if (n_read == 0) {
        return;
    }
    c->n_nodes = s->def->n_vertices;
    c->match = calloc(c->n_nodes + 1, sizeof(*c->match));
    c->n_match = calloc(c->n_nodes + 1, sizeof(*c->n_match));
    rc = c->match && c->n_match ? kiln__cache_order(s, &ord, &n_ord, &err)
                                : kiln__fail(&err, KILN_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n_ord; i++) {
        rc = match_node(s, &s->nodes[ord[i]], &err);
    }
    free(ord);
    if (rc < 0) {
        kiln__solve_note(s, NULL, KILN_LOG_WARN,
                         "matching the imported build cache: %s", err.message);
    }
}

/* ---- fetching a result ------------------------------------------------- */

static kiln_oci_comp_t comp_of(const char *mt)
{
    size_t n = mt != NULL ? strlen(mt) : 0;

    if (n >= 4 && strcmp(mt + n - 4, "gzip") == 0) {
        return KILN_OCI_COMP_GZIP;
    }
    if (n >= 4 && strcmp(mt + n - 4, "zstd") == 0) {
        return KILN_OCI_COMP_ZSTD;
    }
    return KILN_OCI_COMP_NONE;
}

static int fd_sink(void *ud, const void *data, size_t len, kiln_error_t *err)
{
    const int *fd = ud;
    const char *p = data;

    while (len > 0) {
        ssize_t w = write(*fd, p, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return kiln__fail(err, KILN_EIO, "writing a blob: %s",
                              strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Opens blob l of import im for reading (a registry blob is downloaded
 * into the store's tmp area first: *tmp names it). */
static int open_blob(kiln_solve_t *s, kiln__import_t *im,
                     kiln__oci_reg_t *reg, const kiln__cc_layer_t *l, int *fd,
                     char **tmp, kiln_error_t *err)
{
    kiln__store_t *st = s->engine->store;
    int rc;

    *tmp = NULL;
    if (im->spec.type == KILN__CACHE_LOCAL) {
        char path[4200];

        /* Checked against its digest while it is unpacked. */
        snprintf(path, sizeof(path), "%s/blobs/sha256/%s", im->spec.dir,
                 l->blob + 7);
        *fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        return *fd >= 0 ? 0
                        : kiln__fail(err, errno == ENOENT ? KILN_ENOENT
                                                          : KILN_EIO,
                                     "%s: %s", path, strerror(errno));
    }
    rc = kiln__store_mkstemp(st, fd, tmp, err);
    if (rc == 0) {
        rc = kiln__oci_blob_get(reg, im->spec.reg.registry,
                                im->spec.reg.repository, l->blob, fd_sink, fd,
                                NULL, err);
    }
    if (rc == 0 && lseek(*fd, 0, SEEK_SET) < 0) {
        rc = kiln__fail(err, KILN_EIO, "%s: %s", *tmp, strerror(errno));
    }
    if (rc < 0 && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* The store layer of blob l (unpacked now unless it was before), leased. */
static int layer_of(kiln_solve_t *s, kiln__import_t *im,
                    kiln__oci_reg_t *reg, const kiln__cc_layer_t *l,
                    char id[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    kiln__store_t *st = s->engine->store;
    kiln_oci_unpack_opts_t uo = {0};
    kiln_oci_unpack_result_t res = {0};
    kiln__cache_blob_t b = {0};
    char key[128], *dir = NULL, *tmp = NULL;
    size_t len = 0;
    int fd = -1, rc;

    snprintf(key, sizeof(key), "blob/%s", l->blob);
    if (kiln__store_kv_get(st, KILN__CACHE_KV, key, id, KILN__STORE_ID_MAX - 1,
                           &len, NULL) == 0) {
        id[len] = '\0';
        if (kiln__store_lease(st, KILN__STORE_LAYER, id, NULL) == 0) {
            return 0; /* unpacked before, still there */
        }
    }
    rc = open_blob(s, im, reg, l, &fd, &tmp, err);
    if (rc == 0) {
        rc = kiln__store_mkdtemp(st, &dir, err);
    }
    if (rc == 0) {
        uo.expect_digest = l->blob;
        uo.expect_diff_id = l->diff_id[0] ? l->diff_id : NULL;
        rc = kiln__oci_unpack_fd(fd, dir, &uo, &res, err);
    }
    if (rc == 0) {
        rc = kiln__store_commit_layer(st, dir, KILN__STORE_SIZE_UNKNOWN, id,
                                      err);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (tmp != NULL) {
        kiln__store_discard(st, tmp, NULL);
        free(tmp);
    }
    if (dir != NULL && rc < 0) {
        kiln__store_discard(st, dir, NULL);
    }
    free(dir);
    if (rc < 0) {
        return kiln__fail_prefix(err, rc, "blob %s", l->blob);
    }
    kiln__store_kv_set(st, KILN__CACHE_KV, key, id, strlen(id), NULL);
    if (im->spec.type == KILN__CACHE_REGISTRY) {
        kiln__cache_seen_at(st, l->blob, &im->spec.reg);
    }
    /* An export of this layer with the same compression finds the blob. */
    snprintf(b.digest, sizeof(b.digest), "%s", l->blob);
    snprintf(b.diff_id, sizeof(b.diff_id), "%s", res.diff_id);
    snprintf(b.media_type, sizeof(b.media_type), "%s",
             l->media_type != NULL ? l->media_type : KILN_OCI_MT_LAYER_GZ);
    b.size = (int64_t)res.blob_bytes;
    kiln__cache_layer_kv(id, comp_of(l->media_type), 0, key, sizeof(key));
    kiln__cache_blob_put(st, key, &b);
    return 0;
}

/* Layers of a chain fetched at once (a registry client each). */
#define FETCHERS 4

struct fetch {
    kiln_solve_t *s;
    kiln__import_t *im;
    const int64_t *chain;
    size_t n;
    char (*ids)[KILN__STORE_ID_MAX];
    bool *have; /* ids[i] holds a leased layer; each written by one thread */
    atomic_size_t next;
    atomic_bool failed;
    pthread_mutex_t mu; /* guards rc and err */
    int rc;
    kiln_error_t *err;
};

static void fetch_failed(struct fetch *f, int rc, const kiln_error_t *e)
{
    pthread_mutex_lock(&f->mu);
    if (f->rc == 0) {
        f->rc = rc;
        *f->err = *e;
    }
    pthread_mutex_unlock(&f->mu);
    atomic_store(&f->failed, true);
}

static void *fetch_main(void *arg)
{
    struct fetch *f = arg;
    kiln__oci_reg_t *reg = NULL;
    kiln_error_t e = {0};
    size_t i;
    int rc = f->im->spec.type == KILN__CACHE_REGISTRY
                 ? kiln__cache_reg_new(&f->im->spec, f->s, &reg, &e)
                 : 0;

    if (rc < 0) {
        fetch_failed(f, rc, &e);
    }
    while (!atomic_load(&f->failed) &&
           (i = atomic_fetch_add(&f->next, 1)) < f->n) {
        rc = layer_of(f->s, f->im, reg, &f->im->cc->layers[f->chain[i]],
                      f->ids[i], &e);
        if (rc < 0) {
            fetch_failed(f, rc, &e);
        } else {
            f->have[i] = true;
        }
    }
    kiln__oci_reg_free(reg);
    return NULL;
}

/* The snapshot of result `top` (a layer of import im), leased: its chain's
 * layers are fetched and unpacked FETCHERS at a time. */
static int fetch_result(kiln_solve_t *s, kiln__import_t *im, int64_t top,
                        char snap[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    kiln__store_t *st = s->engine->store;
    struct fetch f = {.s = s, .im = im, .err = err};
    int64_t *chain = NULL;
    const char **idp = NULL;
    pthread_t threads[FETCHERS];
    bool started[FETCHERS] = {false};
    size_t n = 0;
    int rc = kiln__cc_layer_chain(im->cc, top, &chain, &n, err);

    if (rc == 0) {
        f.ids = calloc(n + 1, sizeof(*f.ids));
        f.have = calloc(n + 1, sizeof(*f.have));
        idp = calloc(n + 1, sizeof(*idp));
        rc = f.ids && f.have && idp
                 ? 0
                 : kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        f.chain = chain;
        f.n = n;
        atomic_init(&f.next, 0);
        atomic_init(&f.failed, false);
        pthread_mutex_init(&f.mu, NULL);
        /* This thread is one of them; the others are extra. */
        for (size_t t = 1; t < FETCHERS && t < n; t++) {
            started[t] = pthread_create(&threads[t], NULL, fetch_main, &f) == 0;
        }
        fetch_main(&f);
        for (size_t t = 1; t < FETCHERS; t++) {
            if (started[t]) {
                pthread_join(threads[t], NULL);
            }
        }
        pthread_mutex_destroy(&f.mu);
        rc = f.rc;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        idp[i] = f.ids[i];
    }
    if (rc == 0) {
        rc = kiln__store_create_snapshot(st, idp, n, snap, err);
    }
    for (size_t i = 0; f.have != NULL && i < n; i++) {
        /* The snapshot holds them now (or they go with a failure). */
        if (f.have[i]) {
            kiln__store_release(st, KILN__STORE_LAYER, f.ids[i], NULL);
        }
    }
    free(chain);
    free(f.ids);
    free(f.have);
    free(idp);
    return rc;
}

/* Records snapshot `snap` under output o's key; *snap may become the
 * winner of a race (leased either way). */
static int record(kiln_solve_t *s, kiln__node_t *n, size_t o,
                  char snap[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    kiln__store_t *st = s->engine->store;
    kiln__store_record_t rec = KILN__STORE_RECORD_INIT;
    size_t n_in = n->v->op->n_inputs;
    kiln__store_input_t *in = calloc(n_in + 1, sizeof(*in));
    char winner[KILN__STORE_ID_MAX];
    bool inserted = false;
    int rc;

    if (in == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n_in; i++) {
        const kiln__node_t *x = &s->nodes[n->v->inputs[i]->pos];
        in[i].index = (uint32_t)i;
        in[i].key = x->keys[n->v->op->inputs[i]->index];
        in[i].selector = kiln__solve_selector(n, i);
    }
    rec.key = n->keys[o];
    rec.digest = n->v->digest;
    rec.cachemap_digest = n->cm != NULL ? n->cm->digest : NULL;
    rec.output = (uint32_t)o;
    rec.snapshot_id = snap;
    rec.description = n->name;
    rec.inputs = in;
    rec.n_inputs = n_in;
    rc = kiln__store_put_record(st, &rec, &inserted, winner, err);
    free(in);
    if (rc == 0 && !inserted) {
        kiln__store_release(st, KILN__STORE_SNAPSHOT, snap, NULL);
        memcpy(snap, winner, KILN__STORE_ID_MAX);
    }
    return rc;
}

static const char *newest(const kiln__cc_record_t *r, int64_t *top)
{
    const char *t = NULL;

    for (size_t k = 0; k < r->n_results; k++) {
        if (t == NULL || strcmp(r->results[k].created, t) > 0) {
            t = r->results[k].created;
            *top = r->results[k].layer;
        }
    }
    return t;
}

/* Records whose result could not be fetched: not tried again (the run
 * time lookup would otherwise warn about them twice). */
static bool is_bad(kiln__cache_t *c, size_t p)
{
    bool bad = false;

    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_bad && !bad; i++) {
        bad = c->bad[i] == p;
    }
    pthread_mutex_unlock(&c->mu);
    return bad;
}

static void mark_bad(kiln__cache_t *c, size_t p)
{
    size_t *v;

    pthread_mutex_lock(&c->mu);
    v = realloc(c->bad, (c->n_bad + 1) * sizeof(*v));
    if (v != NULL) {
        c->bad = v;
        c->bad[c->n_bad++] = p;
    }
    pthread_mutex_unlock(&c->mu);
}

/* Output o from its matching records, newest result first. */
static int import_output(kiln_solve_t *s, kiln__node_t *n, size_t o,
                         char snap[KILN__STORE_ID_MAX])
{
    kiln__cache_t *c = s->cache;
    size_t b, e;
    bool *tried;

    range(c, n->v->pos, o, &b, &e);
    tried = calloc(e - b + 1, sizeof(*tried));
    for (size_t round = b; tried != NULL && round < e; round++) {
        const char *best_t = NULL;
        int64_t best_top = -1;
        size_t best = e;

        for (size_t i = b; i < e; i++) {
            const kiln__import_t *im = &c->imp[PAIR_IMP(c->match[n->v->pos][i])];
            const kiln__cc_record_t *r =
                &im->cc->records[PAIR_REC(c->match[n->v->pos][i])];
            int64_t top = -1;
            const char *t = newest(r, &top);

            if (!tried[i - b] && t != NULL &&
                !is_bad(c, c->match[n->v->pos][i]) &&
                (best_t == NULL || strcmp(t, best_t) > 0)) {
                best_t = t;
                best_top = top;
                best = i;
            }
        }
        if (best == e) {
            break; /* no match with a result left */
        }
        tried[best - b] = true;
        {
            kiln__import_t *im = &c->imp[PAIR_IMP(c->match[n->v->pos][best])];
            kiln_error_t err = {0};

            if (fetch_result(s, im, best_top, snap, &err) == 0) {
                free(tried);
                return 1;
            }
            mark_bad(c, c->match[n->v->pos][best]);
            kiln__solve_note(s, n, KILN_LOG_WARN,
                             "cache record from %s is unusable, building "
                             "instead: %s",
                             where_of(&im->spec), err.message);
        }
    }
    free(tried);
    return 0;
}

/* ---- explaining misses -------------------------------------------------- */

static const char *short_hex(const char *digest)
{
    const char *c = strchr(digest, ':');

    return c != NULL ? c + 1 : digest;
}

/* Why input i of n matches no link of record r: into msg. */
static void explain_input(const kiln_solve_t *s, const kiln__node_t *n,
                          size_t k, const kiln__cc_record_t *r, size_t i,
                          char *msg, size_t size)
{
    const kiln__cache_t *c = s->cache;
    const kiln__node_t *in = &s->nodes[n->v->inputs[i]->pos];
    size_t out = n->v->op->inputs[i]->index, b, e;
    const char *sel = kiln__solve_selector(n, i);

    range(c, in->v->pos, out, &b, &e);
    if (b == e) {
        snprintf(msg, size,
                 "its input %zu (%s) has no record in the cache: look there",
                 i, in->name);
        return;
    }
    for (size_t l = 0; l < r->inputs[i].n; l++) {
        const kiln__cc_link_t *x = &r->inputs[i].links[l];
        if (has_match(c, in->v->pos, out, PAIR(k, x->link))) {
            snprintf(msg, size,
                     "input %zu (%s) is read through selector %s here but "
                     "%s in the cache: the paths the op reads differ",
                     i, in->name, sel[0] ? sel : "(none)",
                     x->selector[0] ? x->selector : "(none)");
            return;
        }
    }
    snprintf(msg, size,
             "input %zu (%s) differs: the cache's record was made over "
             "another result of it",
             i, in->name);
}

/* A MESSAGE (INFO) for a vertex that will run although caches were
 * imported: the nearest record and what differed. */
static void explain_miss(kiln_solve_t *s, kiln__node_t *n)
{
    const kiln__cache_t *c = s->cache;
    char dg[KILN_DIGEST_STRLEN + 1], msg[768] = "";
    size_t b, e;

    if (s->engine->log_level < KILN_LOG_INFO || s->opts.on_event == NULL) {
        return; /* nobody would read it */
    }
    kiln__cache_record_digest(n, 0, dg);
    range(c, n->v->pos, 0, &b, &e);
    if (dg[0] == '\0') {
        snprintf(msg, sizeof(msg),
                 "its key is bound to this session (random:), never "
                 "exported");
    } else if (b < e) {
        snprintf(msg, sizeof(msg),
                 "%zu imported record(s) match it but hold no usable result "
                 "(exported with mode=min, or its blobs are gone)",
                 e - b);
    }
    for (size_t k = 0; msg[0] == '\0' && k < c->n_imp; k++) {
        const kiln__cc_t *cc = c->imp[k].cc;

        for (size_t r = 0; cc != NULL && r < cc->n_records; r++) {
            const kiln__cc_record_t *rec = &cc->records[r];

            if (strcmp(rec->digest, dg) != 0 ||
                rec->n_inputs != n->v->op->n_inputs) {
                continue;
            }
            for (size_t i = 0; i < rec->n_inputs && msg[0] == '\0'; i++) {
                char why[600];
                bool ok = false;

                for (size_t l = 0; l < rec->inputs[i].n && !ok; l++) {
                    ok = strcmp(rec->inputs[i].links[l].selector,
                                kiln__solve_selector(n, i)) == 0 &&
                         has_match(c, n->v->inputs[i]->pos,
                                   n->v->op->inputs[i]->index,
                                   PAIR(k, rec->inputs[i].links[l].link));
                }
                if (!ok) {
                    explain_input(s, n, k, rec, i, why, sizeof(why));
                    snprintf(msg, sizeof(msg),
                             "record %.12s is this op, but %s",
                             short_hex(rec->digest), why);
                }
            }
        }
        /* The same inputs under another digest: the op itself changed. */
        for (size_t r = 0; cc != NULL && msg[0] == '\0' && r < cc->n_records;
             r++) {
            const kiln__cc_record_t *rec = &cc->records[r];

            if (n->v->op->n_inputs > 0 && rec->n_inputs == n->v->op->n_inputs &&
                rec_matches(s, n, k, rec)) {
                snprintf(msg, sizeof(msg),
                         "record %.12s%s%s%s has the same inputs but another "
                         "cache-map digest (%.12s here): the op's fields "
                         "differ",
                         short_hex(rec->digest),
                         rec->description ? " (" : "",
                         rec->description ? rec->description : "",
                         rec->description ? ")" : "", short_hex(dg));
            }
        }
    }
    if (msg[0] == '\0' && n->v->kind == KILN_OP_SOURCE) {
        snprintf(msg, sizeof(msg),
                 "no record of this source as pinned here (%s): its content "
                 "differs from the exporting build's",
                 n->pin != NULL ? n->pin : "?");
    } else if (msg[0] == '\0') {
        for (size_t i = 0; i < n->v->op->n_inputs && msg[0] == '\0'; i++) {
            const kiln__node_t *in = &s->nodes[n->v->inputs[i]->pos];
            size_t ib, ie;

            range(c, in->v->pos, n->v->op->inputs[i]->index, &ib, &ie);
            if (ib == ie) {
                snprintf(msg, sizeof(msg),
                         "no record of this op; its input %zu (%s) has none "
                         "either: look there",
                         i, in->name);
            }
        }
    }
    if (msg[0] == '\0') {
        snprintf(msg, sizeof(msg),
                 "no record of this op (cache-map digest %.12s) over these "
                 "inputs: the op differs, or it was not exported",
                 short_hex(dg));
    }
    kiln__solve_note(s, n, KILN_LOG_INFO, "cache miss: %s", msg);
}

/* The lookup of the plan (explain false) or of the run. */
static int lookup(kiln_solve_t *s, kiln__node_t *n, bool explain,
                  kiln_error_t *err)
{
    kiln__cache_t *c = s->cache;
    size_t n_out = kiln__cache_n_out(n), got = 0;
    char(*snaps)[KILN__STORE_ID_MAX];
    int rc = 0;

    if (c == NULL || c->match == NULL || c->n_match[n->v->pos] == NULL) {
        return 0;
    }
    if (c->n_match[n->v->pos][n_out - 1] == 0 || n->v->kind == KILN_OP_SOURCE) {
        if (explain) {
            explain_miss(s, n);
        }
        return 0;
    }
    snaps = calloc(n_out, sizeof(*snaps));
    if (snaps == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    while (got < n_out && import_output(s, n, got, snaps[got]) == 1) {
        got++;
    }
    for (size_t o = 0; got == n_out && rc == 0 && o < n_out; o++) {
        rc = record(s, n, o, snaps[o], err);
    }
    if (got == n_out && rc == 0) {
        for (size_t o = 0; o < n_out; o++) {
            if (n->snapshots[o] != NULL) {
                kiln__store_release(s->engine->store, KILN__STORE_SNAPSHOT,
                                    n->snapshots[o], NULL);
                free(n->snapshots[o]);
            }
            n->snapshots[o] = strdup(snaps[o]);
            if (n->snapshots[o] == NULL) {
                rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            }
        }
        kiln__solve_note(s, n, KILN_LOG_DEBUG, "cache key %s: imported",
                         n->keys[0]);
    } else {
        for (size_t o = 0; o < got; o++) {
            kiln__store_release(s->engine->store, KILN__STORE_SNAPSHOT,
                                snaps[o], NULL);
        }
        if (rc == 0 && explain) {
            explain_miss(s, n);
        }
    }
    free(snaps);
    return rc < 0 ? rc : got == n_out;
}

int kiln__cache_import_lookup(kiln_solve_t *s, kiln__node_t *n,
                              kiln_error_t *err)
{
    return lookup(s, n, false, err);
}

int kiln__cache_import_run(kiln_solve_t *s, kiln__node_t *n, kiln_error_t *err)
{
    kiln__cache_t *c = s->cache;
    int rc;

    if (c == NULL || c->match == NULL || n->ignore_cache || s->opts.no_cache) {
        return 0;
    }
    /* The inputs are built now: some may have come from the cache after
     * the plan (through content keys), and n's content deps have their
     * checksums. Only this run writes n's matches, and n's users read them
     * after it ends. */
    rc = match_node(s, n, err);
    return rc < 0 ? rc : lookup(s, n, true, err);
}
