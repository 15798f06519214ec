/*
 * Running one vertex on a worker thread: open views of its inputs'
 * snapshots, run the op (core/fileop), commit each output as a snapshot of
 * layers and record it under its cache key. Also the store lookups of the
 * plan and the export of the result.
 *
 * Snapshot depth. A chain of file ops adds a layer per op, and a merge
 * stacks its inputs' layers, so stacks would grow with the graph (BuildKit
 * fails a chain of ~500 file ops with "mount options is too long"). A new
 * snapshot deeper than KILN_SNAP_MAX_DEPTH is flattened instead: its merged
 * tree is written once into a single layer of hard links to the immutable
 * layer files, so no stack, mount or path ever grows with the ancestry.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"
#include "engine/engine.h"
#include "exec/exec.h"
#include "export/export.h"
#include "fileop/fileop.h"
#include "snap/snap_int.h"
#include "solver/cachemap.h"
#include "solver/run.h"
#include "solver/source.h"

int kiln__run_lookup(kiln_engine_t *e, const char *key, char **snapshot,
                     kiln_error_t *err)
{
    kiln__store_record_t rec = KILN__STORE_RECORD_INIT;
    int rc = kiln__store_get_record(e->store, key,
                                    KILN__STORE_TOUCH | KILN__STORE_LEASE, &rec,
                                    err);

    if (rc < 0) {
        return rc;
    }
    *snapshot = strdup(rec.snapshot_id);
    kiln__store_record_clear(&rec);
    return *snapshot != NULL ? 0 : kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* What one run holds: views of the inputs, and the layer directories it
 * handed out (all in the store's tmp area until committed). */
struct run {
    kiln_solve_t *s;
    kiln__node_t *n;
    kiln__store_t *store;
    size_t n_inputs;
    kiln__store_layers_t *layers; /* per input */
    kiln_snap_view_t **views;     /* per input */
    char **dirs;                  /* handed out by new_layer */
    size_t n_dirs;
    /* Layers this run committed (leased until it ends), and the directory
     * each was written in: an output may share a layer with another. */
    char (*committed)[KILN__STORE_ID_MAX];
    char **committed_dirs;
    size_t n_committed;
    /* A source's layers as its fetch stacked them, bottom first. */
    struct stacked *stack;
    size_t n_stack;
};

/* One layer of a source's stack: a directory of dirs (new) or a layer of
 * the store that add_layer_keyed found (reused), and its key. */
struct stacked {
    char *path;
    char *key;
    bool reused;
};

/* The store's key-value namespace naming layers by add_layer_keyed keys
 * (no plugin can have this name). */
#define LAYER_KEYS "kiln:layers"

static int new_layer(void *ud, char *path, size_t size, kiln_error_t *err)
{
    struct run *r = ud;
    char **dirs = realloc(r->dirs, (r->n_dirs + 1) * sizeof(*dirs));
    char *dir = NULL;
    int rc;

    if (dirs == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    r->dirs = dirs;
    rc = kiln__store_mkdtemp(r->store, &dir, err);
    if (rc < 0) {
        return rc;
    }
    r->dirs[r->n_dirs++] = dir;
    if (strlen(dir) + 1 > size) {
        return kiln__fail(err, -ENAMETOOLONG, "%s: path too long", dir);
    }
    memcpy(path, dir, strlen(dir) + 1);
    return 0;
}

static bool cancelled(void *ud)
{
    const struct run *r = ud;

    return atomic_load(&r->s->stop);
}

static void progress(void *ud, uint64_t bytes)
{
    struct run *r = ud;

    atomic_fetch_add(&r->n->done_bytes, bytes);
}

/* The snapshot id behind input i of the node. */
static const char *input_snapshot(const struct run *r, size_t i)
{
    const kiln__node_t *in = &r->s->nodes[r->n->v->inputs[i]->pos];

    return in->snapshots[r->n->v->op->inputs[i]->index];
}

static int open_inputs(struct run *r, kiln_error_t *err)
{
    r->n_inputs = r->n->v->op->n_inputs;
    r->layers = calloc(r->n_inputs + 1, sizeof(*r->layers));
    r->views = calloc(r->n_inputs + 1, sizeof(*r->views));
    if (r->layers == NULL || r->views == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->n_inputs; i++) {
        const char *id = input_snapshot(r, i);
        int rc;

        if (id == NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "input %zu has no result (internal error)", i);
        }
        rc = kiln__store_snapshot_layers(r->store, id, &r->layers[i], err);
        if (rc == 0) {
            rc = kiln__snap_view_open((const char *const *)r->layers[i].paths,
                                      r->layers[i].n, err, &r->views[i]);
        }
        if (rc < 0) {
            return kiln__fail_prefix(err, rc, "input %zu", i);
        }
    }
    return 0;
}

static void run_release(struct run *r)
{
    for (size_t i = 0; i < r->n_inputs; i++) {
        if (r->views != NULL) {
            kiln__snap_view_free(r->views[i]);
        }
        if (r->layers != NULL) {
            kiln__store_layers_free(&r->layers[i]);
        }
    }
    free(r->views);
    free(r->layers);
    for (size_t i = 0; i < r->n_dirs; i++) {
        if (r->dirs[i] != NULL) {
            kiln__store_discard(r->store, r->dirs[i], NULL);
            free(r->dirs[i]);
        }
    }
    free(r->dirs);
    for (size_t i = 0; i < r->n_committed; i++) {
        kiln__store_release(r->store, KILN__STORE_LAYER, r->committed[i], NULL);
        free(r->committed_dirs[i]);
    }
    free(r->committed);
    free(r->committed_dirs);
    for (size_t i = 0; i < r->n_stack; i++) {
        free(r->stack[i].path);
        free(r->stack[i].key);
    }
    free(r->stack);
}

/* Adds layer `id` (at `dir`) to what the run holds and releases at its
 * end. */
static int hold(struct run *r, const char *id, const char *dir,
                kiln_error_t *err)
{
    char(*ids)[KILN__STORE_ID_MAX];
    char **dirs;

    ids = realloc(r->committed, (r->n_committed + 1) * sizeof(*ids));
    if (ids != NULL) {
        r->committed = ids;
    }
    dirs = realloc(r->committed_dirs, (r->n_committed + 1) * sizeof(*dirs));
    if (dirs != NULL) {
        r->committed_dirs = dirs;
    }
    if (ids == NULL || dirs == NULL ||
        (r->committed_dirs[r->n_committed] = strdup(dir)) == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    snprintf(r->committed[r->n_committed++], KILN__STORE_ID_MAX, "%s", id);
    return 0;
}

/*
 * Commits a layer directory handed out by new_layer (once: a second call
 * for the same directory gives the same id). The layer stays leased to the
 * store until the run ends.
 */
static int commit_dir(struct run *r, const char *dir,
                      char id[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    int rc;

    for (size_t i = 0; i < r->n_committed; i++) {
        if (strcmp(r->committed_dirs[i], dir) == 0) {
            memcpy(id, r->committed[i], KILN__STORE_ID_MAX);
            return 0;
        }
    }
    rc = kiln__store_commit_layer(r->store, dir, KILN__STORE_SIZE_UNKNOWN, id,
                                  err);
    if (rc == 0) {
        rc = hold(r, id, dir, err);
    }
    if (rc < 0) {
        return rc;
    }
    for (size_t i = 0; i < r->n_dirs; i++) {
        if (r->dirs[i] != NULL && strcmp(r->dirs[i], dir) == 0) {
            /* Moved into layers/: nothing left to discard. */
            free(r->dirs[i]);
            r->dirs[i] = NULL;
            break;
        }
    }
    /* A keyed source layer: later fetches find it by its key. Losing the
     * name only costs a later fetch the reuse. */
    for (size_t i = 0; i < r->n_stack; i++) {
        if (r->stack[i].key != NULL && !r->stack[i].reused &&
            strcmp(r->stack[i].path, dir) == 0 &&
            kiln__store_kv_set(r->store, LAYER_KEYS, r->stack[i].key, id,
                               strlen(id), NULL) < 0) {
            kiln__solve_note(r->s, r->n, KILN_LOG_DEBUG,
                             "could not name layer %s %s", id,
                             r->stack[i].key);
        }
    }
    return 0;
}

/* A layer directory of the store is root/layers/<id>. */
static const char *layer_id_of(const char *dir)
{
    const char *slash = strrchr(dir, '/');

    return slash != NULL ? slash + 1 : dir;
}

/* Flattens the stack `paths[0..n)` into one new committed layer. */
static int flatten(struct run *r, const char *const *paths, size_t n,
                   char id[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    kiln_snap_view_t *v = NULL;
    char dir[4096];
    int rc = kiln__snap_view_open(paths, n, err, &v);

    if (rc == 0) {
        rc = new_layer(r, dir, sizeof(dir), err);
    }
    if (rc == 0) {
        rc = kiln__snap_materialize(v, dir, true, err);
    }
    kiln__snap_view_free(v);
    if (rc == 0) {
        rc = commit_dir(r, dir, id, err);
    }
    return rc < 0 ? kiln__fail_prefix(err, rc, "flattening %zu layers", n)
                  : 0;
}

/*
 * Turns output `o` of a fileop result into a snapshot (leased to this
 * store): commits the layers the op wrote, and flattens a stack past the
 * depth limit into one layer.
 */
static int commit_output(struct run *r, const kiln_fileop_env_t *env,
                         const kiln_fileop_output_t *o,
                         char snap[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    const char **paths = NULL;
    char(*ids)[KILN__STORE_ID_MAX] = NULL;
    char(*lp)[4096] = NULL;
    const char **idp = NULL, **lpp = NULL;
    size_t n = 0, base_n;
    int rc = kiln__fileop_output_stack(env, o, &paths, &n);

    if (rc < 0) {
        return kiln__fail(err, rc, "out of memory");
    }
    base_n = n - o->n_layers;
    ids = calloc(n + 1, sizeof(*ids));
    idp = calloc(n + 1, sizeof(*idp));
    if (ids == NULL || idp == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const kiln_fileop_layer_t *l =
            i >= base_n ? &o->layers[i - base_n] : NULL;

        if (l != NULL && l->created) {
            rc = commit_dir(r, l->dir, ids[i], err);
        } else {
            snprintf(ids[i], KILN__STORE_ID_MAX, "%s", layer_id_of(paths[i]));
        }
        idp[i] = ids[i];
    }
    if (rc == 0 && n > KILN_SNAP_MAX_DEPTH) {
        char flat[KILN__STORE_ID_MAX];

        lp = calloc(n, sizeof(*lp));
        lpp = calloc(n, sizeof(*lpp));
        if (lp == NULL || lpp == NULL) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = kiln__store_layer_path(r->store, ids[i], lp[i], sizeof(lp[i]),
                                        err);
            lpp[i] = lp[i];
        }
        if (rc == 0) {
            rc = flatten(r, lpp, n, flat, err);
        }
        if (rc == 0) {
            kiln__solve_note(r->s, r->n, KILN_LOG_INFO,
                             "flattened a snapshot of %zu layers into one", n);
        }
        if (rc == 0) {
            rc = kiln__store_create_snapshot(r->store, (const char *[]){flat},
                                             1, snap, err);
        }
    } else if (rc == 0) {
        rc = kiln__store_create_snapshot(r->store, idp, n, snap, err);
    }
    free(paths);
    free(ids);
    free(idp);
    free(lp);
    free(lpp);
    return rc;
}

/* Records `key` -> `snap` for output o, with the op's input links.
 * *inserted and `winner` as kiln__store_put_record() gives them. */
static int put_output(struct run *r, size_t o, const char *key,
                      const char *snap, bool *inserted,
                      char winner[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    kiln__node_t *n = r->n;
    kiln__store_record_t rec = KILN__STORE_RECORD_INIT;
    kiln__store_input_t *inputs = calloc(r->n_inputs + 1, sizeof(*inputs));
    int rc;

    if (inputs == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->n_inputs; i++) {
        const kiln__node_t *in = &r->s->nodes[n->v->inputs[i]->pos];

        inputs[i].index = (uint32_t)i;
        inputs[i].key = in->keys[n->v->op->inputs[i]->index];
        inputs[i].selector = kiln__solve_selector(n, i);
    }
    rec.key = key;
    rec.digest = n->v->digest;
    rec.cachemap_digest = n->cm != NULL ? n->cm->digest : NULL;
    rec.output = (uint32_t)o;
    rec.snapshot_id = snap;
    rec.description = n->name;
    rec.inputs = inputs;
    rec.n_inputs = r->n_inputs;
    rc = kiln__store_put_record(r->store, &rec, inserted, winner, err);
    free(inputs);
    return rc;
}

/* Records output o's snapshot under its fast key; on a lost race (another
 * process or an earlier run has the record) the recorded snapshot is used,
 * unless this run was asked to ignore the cache. */
static int record_output(struct run *r, size_t o,
                         char snap[KILN__STORE_ID_MAX], kiln_error_t *err)
{
    char winner[KILN__STORE_ID_MAX];
    bool inserted = false;
    bool fresh = r->n->ignore_cache || r->s->opts.no_cache;
    int rc = put_output(r, o, r->n->keys[o], snap, &inserted, winner, err);

    if (rc < 0 || inserted) {
        return rc;
    }
    if (fresh) {
        kiln__store_release(r->store, KILN__STORE_SNAPSHOT, winner, NULL);
        return 0;
    }
    kiln__store_release(r->store, KILN__STORE_SNAPSHOT, snap, NULL);
    memcpy(snap, winner, KILN__STORE_ID_MAX);
    return 0;
}

/* Also records `key` -> `snap` (a slow key beside the fast one, or the fast
 * key of a slow hit); a record already there is left as it is. */
static int record_also(struct run *r, size_t o, const char *key,
                       const char *snap, kiln_error_t *err)
{
    char winner[KILN__STORE_ID_MAX];
    bool inserted = false;
    int rc = put_output(r, o, key, snap, &inserted, winner, err);

    if (rc == 0 && !inserted) {
        kiln__store_release(r->store, KILN__STORE_SNAPSHOT, winner, NULL);
    }
    return rc;
}

/* D for content dep i: sha256 of its selectors' checksums joined by NUL,
 * or of the whole input's checksum when the op names no paths. */
static int input_checksum(struct run *r, size_t i,
                          char out[KILN_DIGEST_STRLEN + 1], kiln_error_t *err)
{
    const kiln__cm_dep_t *d = &r->n->cm->deps[i];
    kiln__buf_t b = KILN_BUF_INIT;
    char sum[KILN_DIGEST_STRLEN + 1];
    int rc = 0;

    if (d->n_content == 0) {
        rc = kiln__fileop_checksum(r->views[i], "/", false, true, sum, err);
        kiln__buf_puts(&b, sum);
    }
    for (size_t k = 0; rc == 0 && k < d->n_content; k++) {
        const kiln__cm_selector_t *sel = &d->content_sels[k];

        rc = kiln__fileop_checksum(r->views[i], sel->path, sel->wildcard,
                                   sel->follow_links, sum, err);
        if (k > 0) {
            kiln__buf_putc(&b, '\0');
        }
        kiln__buf_puts(&b, sum);
    }
    if (rc == 0 && !kiln__buf_ok(&b)) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = kiln__sha256_digest(b.data, b.len, out);
    }
    kiln__buf_free(&b);
    return rc < 0 ? kiln__fail_prefix(err, rc, "input %zu", i) : 0;
}

/*
 * The slow keys of the node, when it has content deps (*have set), into
 * slow[]; then, unless the cache is to be ignored, their lookups: on a hit
 * for every output, n->snapshots take those results (the fast keys are
 * recorded for them too) and 1 is returned; 0 means run the op.
 */
static int content_lookup(struct run *r, char (*slow)[KILN_DIGEST_STRLEN + 1],
                          bool *have, kiln_error_t *err)
{
    kiln__node_t *n = r->n;
    size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
    char(*sums)[KILN_DIGEST_STRLEN + 1] = calloc(r->n_inputs + 1,
                                                 sizeof(*sums));
    const char **content = calloc(r->n_inputs + 1, sizeof(*content));
    char **found = calloc(n_out, sizeof(*found));
    size_t hits = 0;
    int rc = sums && content && found
                 ? 0
                 : kiln__fail(err, KILN_ENOMEM, "out of memory");

    *have = false;
    for (size_t i = 0; rc == 0 && i < r->n_inputs; i++) {
        if (kiln__solve_content_dep(n, i)) {
            rc = input_checksum(r, i, sums[i], err);
            content[i] = sums[i];
            *have = true;
        }
    }
    if (rc == 0 && *have) {
        rc = kiln__solve_slow_keys(r->s, n, content, slow, err);
    }
    if (rc == 0 && *have && n->content == NULL) {
        n->content = sums; /* kept for the build cache (core/cache) */
        sums = NULL;
    }
    if (rc < 0 || !*have || n->ignore_cache || r->s->opts.no_cache) {
        goto out;
    }
    for (; hits < n_out; hits++) {
        int lr = kiln__run_lookup(r->s->engine, slow[hits], &found[hits], err);
        if (lr < 0) {
            rc = lr == KILN_ENOENT ? 0 : lr;
            break;
        }
    }
    kiln__solve_note(r->s, n, KILN_LOG_DEBUG, "content key %s: %s", slow[0],
                     hits == n_out ? "hit" : "miss");
    for (size_t o = 0; rc == 0 && hits == n_out && o < n_out; o++) {
        rc = record_also(r, o, n->keys[o], found[o], err);
    }
    if (rc == 0 && hits == n_out) {
        for (size_t o = 0; o < n_out; o++) {
            if (n->snapshots[o] != NULL) {
                kiln__store_release(r->store, KILN__STORE_SNAPSHOT,
                                    n->snapshots[o], NULL);
                free(n->snapshots[o]);
            }
            n->snapshots[o] = found[o];
            found[o] = NULL;
        }
        rc = 1;
    }
    for (size_t o = 0; o < hits && o < n_out; o++) {
        if (found[o] != NULL) {
            kiln__store_release(r->store, KILN__STORE_SNAPSHOT, found[o],
                                NULL);
            free(found[o]);
        }
    }
out:
    free(sums);
    free(content);
    free(found);
    return rc;
}

static int stack_push(struct run *r, const char *path, const char *key,
                      bool reused, kiln_error_t *err)
{
    struct stacked *v = realloc(r->stack, (r->n_stack + 1) * sizeof(*v));

    if (v == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    r->stack = v;
    v[r->n_stack].path = strdup(path);
    v[r->n_stack].key = key != NULL ? strdup(key) : NULL;
    v[r->n_stack].reused = reused;
    if (v[r->n_stack].path == NULL || (key != NULL && v[r->n_stack].key ==
                                                          NULL)) {
        free(v[r->n_stack].path);
        free(v[r->n_stack].key);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    r->n_stack++;
    return 0;
}

/* add_layer() of a source's fetch. */
static int source_layer(void *ud, char *path, size_t size, kiln_error_t *err)
{
    struct run *r = ud;
    int rc = new_layer(r, path, size, err);

    return rc == 0 ? stack_push(r, path, NULL, false, err) : rc;
}

/* add_layer_keyed() of a source's fetch: the layer the store keeps under
 * `key`, leased for the run, or a new directory. */
static int source_keyed_layer(void *ud, const char *key, char *path,
                              size_t size, bool *reused, kiln_error_t *err)
{
    struct run *r = ud;
    char id[KILN__STORE_ID_MAX], lp[4096];
    size_t len = 0;
    int rc;

    *reused = false;
    if (kiln__store_kv_get(r->store, LAYER_KEYS, key, id, sizeof(id) - 1,
                           &len, NULL) == 0) {
        id[len] = '\0';
        /* Gone since (pruned), or a value of no layer: make it anew. */
        if (kiln__store_layer_path(r->store, id, lp, sizeof(lp), NULL) == 0 &&
            kiln__store_lease(r->store, KILN__STORE_LAYER, id, NULL) == 0) {
            rc = hold(r, id, lp, err);
            if (rc == 0) {
                /* hold() took over the lease. */
                rc = stack_push(r, lp, key, true, err);
            } else {
                kiln__store_release(r->store, KILN__STORE_LAYER, id, NULL);
            }
            *reused = rc == 0;
            if (rc == 0) {
                kiln__solve_note(r->s, r->n, KILN_LOG_DEBUG,
                                 "layer %s reused for %s", id, key);
            }
            return rc;
        }
    }
    rc = new_layer(r, path, size, err);
    return rc == 0 ? stack_push(r, path, key, false, err) : rc;
}

/* A source: its plugin fills a new layer on scratch, and any it adds above
 * (new or reused: r->stack, in order). An empty base below other layers
 * (a fetch that stacked every layer itself) is dropped. */
static int run_source(struct run *r, kiln_fileop_result_t **res,
                      kiln_error_t *err)
{
    kiln_fileop_result_t *out = calloc(1, sizeof(*out));
    kiln_fileop_output_t *o = NULL;
    char dir[4096];
    size_t first = 0;
    int rc = out != NULL ? new_layer(r, dir, sizeof(dir), err)
                         : kiln__fail(err, KILN_ENOMEM, "out of memory");

    /* A source's root is 0755, as scratch's is, unless its plugin says
     * otherwise (new_layer's are private until committed). */
    if (rc == 0 && chmod(dir, 0755) < 0) {
        rc = kiln__fail(err, -errno, "%s: %s", dir, strerror(errno));
    }
    if (rc == 0) {
        rc = stack_push(r, dir, NULL, false, err);
    }
    if (rc == 0) {
        rc = kiln__source_fetch(r->s, r->n, dir, source_layer,
                                source_keyed_layer, r, err);
    }
    if (rc == 0 && r->n_stack > 1 && kiln__snap_path_empty(dir)) {
        first = 1;
    }
    if (rc == 0 && ((o = out->outputs = calloc(1, sizeof(*o))) == NULL ||
                    (o->layers = calloc(r->n_stack, sizeof(*o->layers))) ==
                        NULL)) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        out->n_outputs = 1;
        o->base = -1;
        for (size_t i = first; i < r->n_stack && rc == 0; i++) {
            kiln_fileop_layer_t *l = &o->layers[o->n_layers];

            l->created = !r->stack[i].reused;
            l->dir = strdup(r->stack[i].path);
            rc = l->dir != NULL
                     ? 0
                     : kiln__fail(err, KILN_ENOMEM, "out of memory");
            o->n_layers += rc == 0;
        }
    }
    if (rc < 0) {
        kiln__fileop_result_free(out);
        out = NULL;
    }
    *res = out;
    return rc;
}

/* The command's output: kept with the records (kiln logs) and shown as
 * it comes. Only this job's thread writes the vertex's output. */
static void exec_output(void *ud, int stream, const uint8_t *data, size_t len)
{
    struct run *r = ud;

    kiln__buf_append(&r->n->output, data, len);
    kiln__solve_log(r->s, r->n, stream, data, len);
}

static void exec_warn(void *ud, const char *msg)
{
    struct run *r = ud;

    kiln__solve_note(r->s, r->n, KILN_LOG_WARN, "%s", msg);
}

static int run_exec(struct run *r, const kiln_fileop_env_t *env,
                    kiln_fileop_result_t **res, kiln_error_t *err)
{
    kiln__exec_env_t x = {
        .op = r->n->v->op->exec,
        .fenv = env,
        .store = r->store,
        .secrets = r->s->opts.secrets,
        .secret_envs = r->s->opts.secret_envs,
        .ssh = r->s->opts.ssh,
        .output = exec_output,
        .warn = exec_warn,
        .ud = r,
    };

    return kiln__exec_run(&x, err, res);
}

static int run_op(struct run *r, const kiln_fileop_env_t *env,
                  kiln_fileop_result_t **res, kiln_error_t *err)
{
    const Pb__Op *op = r->n->v->op;

    switch (r->n->v->kind) {
    case KILN_OP_FILE:
        return kiln__fileop_run(op->file, env, err, res);
    case KILN_OP_MERGE:
        return kiln__mergeop_run(op->merge, env, err, res);
    case KILN_OP_DIFF:
        return kiln__diffop_run(op->diff, env, err, res);
    case KILN_OP_EXEC:
        return run_exec(r, env, res, err);
    case KILN_OP_SOURCE:
        return run_source(r, res, err);
    default:
        return kiln__fail(err, KILN_ENOTSUP, "kiln cannot run %s ops",
                          kiln__op_kind_name(r->n->v->kind));
    }
}

int kiln__run_node(kiln_solve_t *s, kiln__node_t *n, bool *cached,
                   kiln_error_t *err)
{
    struct run r = {.s = s, .n = n, .store = s->engine->store};
    kiln_fileop_env_t env = {0};
    kiln_fileop_result_t *res = NULL;
    size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
    char(*slow)[KILN_DIGEST_STRLEN + 1] = calloc(n_out, sizeof(*slow));
    bool have_slow = false;
    int rc = slow != NULL ? open_inputs(&r, err)
                          : kiln__fail(err, KILN_ENOMEM, "out of memory");

    *cached = false;
    if (rc == 0) {
        rc = content_lookup(&r, slow, &have_slow, err);
        if (rc == 0) {
            /* Not in the store: an imported build cache may have it. */
            rc = kiln__cache_import_run(s, n, err);
        }
        if (rc == 1) {
            *cached = true;
            rc = 0;
            goto out;
        }
    }
    if (rc == 0) {
        env.inputs = (const kiln_snap_view_t *const *)r.views;
        env.n_inputs = r.n_inputs;
        env.new_layer = new_layer;
        env.cancelled = cancelled;
        env.progress = progress;
        env.ud = &r;
        rc = run_op(&r, &env, &res, err);
    }
    if (rc == 0 && res->n_outputs < n_out) {
        rc = kiln__fail(err, KILN_EINVAL, "the op made %zu outputs, not %zu",
                        res->n_outputs, n_out);
    }
    for (size_t o = 0; rc == 0 && o < n_out; o++) {
        char snap[KILN__STORE_ID_MAX];

        if (atomic_load(&s->stop)) {
            rc = kiln__fail(err, KILN_ECANCELED, "canceled");
            break;
        }
        rc = commit_output(&r, &env, &res->outputs[o], snap, err);
        if (rc == 0) {
            rc = record_output(&r, o, snap, err);
        }
        if (rc == 0 && have_slow) {
            rc = record_also(&r, o, slow[o], snap, err);
        }
        if (rc == 0) {
            /* A snapshot looked up for an output that then missed. */
            if (n->snapshots[o] != NULL) {
                kiln__store_release(r.store, KILN__STORE_SNAPSHOT,
                                    n->snapshots[o], NULL);
                free(n->snapshots[o]);
            }
            n->snapshots[o] = strdup(snap);
            if (n->snapshots[o] == NULL) {
                rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
            }
        }
    }
    /* Everything the op said, complete, with each of its records. */
    for (size_t o = 0; rc == 0 && n->output.len > 0 && o < n_out; o++) {
        rc = kiln__store_write_log(r.store, n->keys[o], n->output.data,
                                   n->output.len, err);
    }
out:
    free(slow);
    kiln__fileop_result_free(res);
    run_release(&r);
    return rc;
}

int kiln__run_export(kiln_solve_t *s, kiln_error_t *err)
{
    kiln__store_t *store = s->engine->store;
    const char *id = s->result->snapshots[s->result_index];
    kiln__store_layers_t layers = {0};
    kiln_snap_view_t *v = NULL;
    char *scratch = NULL;
    int fd = -1, rc;

    rc = kiln__store_snapshot_layers(store, id, &layers, err);
    if (rc == 0) {
        rc = kiln__snap_view_open((const char *const *)layers.paths, layers.n,
                                  err, &v);
    }
    if (rc == 0 && s->opts.output == KILN_OUTPUT_LOCAL) {
        rc = kiln__export_local(v, s->opts.output_dest, err);
    } else if (rc == 0 && s->opts.output == KILN_OUTPUT_TAR) {
        fd = s->opts.output_fd;
        if (s->opts.output_dest != NULL) {
            fd = open(s->opts.output_dest,
                      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) {
                rc = kiln__fail(err, -errno, "%s: %s", s->opts.output_dest,
                                strerror(errno));
            }
        }
        if (rc == 0) {
            rc = kiln__store_mkdtemp(store, &scratch, err);
        }
        if (rc == 0) {
            rc = kiln__export_tar(v, fd, scratch, err);
        }
        if (scratch != NULL) {
            kiln__store_discard(store, scratch, NULL);
            free(scratch);
        }
        if (s->opts.output_dest != NULL && fd >= 0 && close(fd) < 0 &&
            rc == 0) {
            rc = kiln__fail(err, KILN_EIO, "%s: %s", s->opts.output_dest,
                            strerror(errno));
        }
    }
    kiln__snap_view_free(v);
    kiln__store_layers_free(&layers);
    return rc < 0 ? kiln__fail_prefix(err, rc, "exporting the result") : 0;
}

void kiln__run_release_all(kiln_solve_t *s)
{
    for (size_t i = 0; s->nodes != NULL && i < s->def->n_vertices; i++) {
        kiln__node_t *n = &s->nodes[i];
        size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;

        for (size_t o = 0; n->snapshots != NULL && o < n_out; o++) {
            if (n->snapshots[o] != NULL) {
                kiln__store_release(s->engine->store, KILN__STORE_SNAPSHOT,
                                    n->snapshots[o], NULL);
            }
        }
    }
}
