/*
 * Cache keys of a solve's vertices.
 *
 * key(v, out) = sha256 over "kiln.key.v1", the op's cache-map digest (see
 * cachemap.h: BuildKit's digest of the normalized op), the output index,
 * and for each of the op's inputs the key of the output it takes plus the
 * selector the op applies to it. A slow key (computed once the inputs are
 * built) replaces each input the op only reads (BuildKit's content deps)
 * by the content checksum of what it reads, so that an input which changed
 * elsewhere still gives a hit. Same op over the same inputs gives the
 * same key on any host; a changed op changes its key and every key above.
 * The parts are kept with the record so that BuildKit-style cache records
 * (digest@output plus input links) can be exported from it.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"
#include "solver/cachemap.h"
#include "solver/solve.h"
#include "solver/source.h"

#define KEY_DOMAIN "kiln.key.v1"

static void hex_digest(EVP_MD_CTX *ctx, char out[KILN_DIGEST_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    EVP_DigestFinal_ex(ctx, md, &len);
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < len && i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 0xf];
    }
    out[KILN_DIGEST_STRLEN] = 0;
}

static void update_str(EVP_MD_CTX *ctx, const char *s)
{
    /* NUL-separated: no two different part lists hash alike. */
    EVP_DigestUpdate(ctx, s, strlen(s) + 1);
}

/* The selector input i gets from the op, "" if none. Merge and diff ops
 * number their deps differently from Op.inputs; their inputs are read
 * whole, so no selector applies. */
const char *kiln__solve_selector(const kiln__node_t *n, size_t i)
{
    const kiln__cachemap_t *cm = n->cm;

    if (n->v->kind != KILN_OP_EXEC && n->v->kind != KILN_OP_FILE) {
        return "";
    }
    return i < cm->n_deps ? cm->deps[i].selector : "";
}

bool kiln__solve_content_dep(const kiln__node_t *n, size_t i)
{
    return (n->v->kind == KILN_OP_EXEC || n->v->kind == KILN_OP_FILE) &&
           n->cm != NULL && i < n->cm->n_deps && n->cm->deps[i].content;
}

/*
 * The keys of every output of n. Input i contributes the key of the output
 * it takes and its selector, or, when content[i] is set (a slow key), the
 * content checksum alone, as BuildKit links content keys without one.
 */
static int hash_keys(const kiln_solve_t *s, const kiln__node_t *n,
                     const char *const *content,
                     char (*out)[KILN_DIGEST_STRLEN + 1], kiln_error_t *err)
{
    const Pb__Op *op = n->v->op;
    size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t o = 0; o < n_out; o++) {
        char idx[32];

        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        update_str(ctx, KEY_DOMAIN);
        update_str(ctx, n->cm->digest);
        snprintf(idx, sizeof(idx), "%zu", o);
        update_str(ctx, idx);
        for (size_t i = 0; i < op->n_inputs; i++) {
            const kiln__node_t *in = &s->nodes[n->v->inputs[i]->pos];

            if (content != NULL && content[i] != NULL) {
                update_str(ctx, "content");
                update_str(ctx, content[i]);
            } else {
                update_str(ctx, in->keys[op->inputs[i]->index]);
                update_str(ctx, kiln__solve_selector(n, i));
            }
        }
        hex_digest(ctx, out[o]);
    }
    EVP_MD_CTX_free(ctx);
    return 0;
}

int kiln__solve_slow_keys(const kiln_solve_t *s, const kiln__node_t *n,
                          const char *const *content,
                          char (*out)[KILN_DIGEST_STRLEN + 1],
                          kiln_error_t *err)
{
    return hash_keys(s, n, content, out, err);
}

static int node_keys(kiln_solve_t *s, kiln__node_t *n, kiln_error_t *err)
{
    size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
    int rc;

    if (n->v->kind == KILN_OP_SOURCE) {
        /* A source's key is its plugin's content pin (resolve_sources). */
        rc = n->cm != NULL ? 0
                           : kiln__fail(err, KILN_EINVAL,
                                        "%s: source was not resolved",
                                        n->name);
    } else {
        rc = kiln__cachemap_vertex(n->v, NULL, KILN_CM_CURRENT, &n->cm, err);
    }
    if (rc < 0) {
        return rc;
    }
    n->keys = calloc(n_out, sizeof(*n->keys));
    if (n->keys == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return hash_keys(s, n, NULL, n->keys, err);
}

/* Reachable vertices in an order where inputs come first (iterative DFS
 * from the result, so a 100,000-op chain cannot exhaust the stack). */
static int topo_order(kiln_solve_t *s, size_t **order, size_t *n_order,
                      kiln_error_t *err)
{
    size_t n = s->def->n_vertices;
    size_t *out = malloc((n ? n : 1) * sizeof(*out));
    size_t *stack = malloc((n ? n : 1) * sizeof(*stack));
    size_t *next = calloc(n ? n : 1, sizeof(*next));
    size_t sp = 0, k = 0;

    if (out == NULL || stack == NULL || next == NULL) {
        free(out);
        free(stack);
        free(next);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    stack[sp++] = s->result->v->pos;
    s->result->reachable = true;
    while (sp > 0) {
        kiln__node_t *nd = &s->nodes[stack[sp - 1]];
        if (next[nd->v->pos] < nd->v->op->n_inputs) {
            kiln__vertex_t *in = nd->v->inputs[next[nd->v->pos]++];
            if (!s->nodes[in->pos].reachable) {
                s->nodes[in->pos].reachable = true;
                stack[sp++] = in->pos;
            }
        } else {
            out[k++] = nd->v->pos;
            sp--;
        }
    }
    free(stack);
    free(next);
    *order = out;
    *n_order = k;
    return 0;
}

/*
 * Sources are pinned first, all at once: a resolve may hash a tree or make
 * a request, so they run on threads of their own (up to the process
 * pool's limit), and the first failure stops the others from starting.
 */
struct resolver {
    kiln_solve_t *s;
    const size_t *order;
    size_t n_order;
    atomic_size_t next;
    atomic_bool failed;
    pthread_mutex_t mu; /* guards rc and err */
    int rc;
    kiln_error_t *err;
};

static void *resolve_main(void *arg)
{
    struct resolver *r = arg;
    size_t i;

    while (!atomic_load(&r->failed) &&
           (i = atomic_fetch_add(&r->next, 1)) < r->n_order) {
        kiln__node_t *n = &r->s->nodes[r->order[i]];
        kiln_error_t err = {0};
        int rc;

        if (n->v->kind != KILN_OP_SOURCE) {
            continue;
        }
        atomic_store(&n->resolving, true);
        rc = kiln__source_resolve(r->s, n, &err);
        atomic_store(&n->resolving, false);
        if (rc < 0) {
            pthread_mutex_lock(&r->mu);
            if (r->rc == 0) {
                r->rc = rc;
                *r->err = err;
            }
            pthread_mutex_unlock(&r->mu);
            atomic_store(&r->failed, true);
        }
    }
    return NULL;
}

static int resolve_sources(kiln_solve_t *s, const size_t *order,
                           size_t n_order, kiln_error_t *err)
{
    struct resolver r = {.s = s, .order = order, .n_order = n_order,
                         .err = err};
    size_t n_src = 0, n_threads;
    pthread_t *threads;

    for (size_t i = 0; i < n_order; i++) {
        n_src += s->nodes[order[i]].v->kind == KILN_OP_SOURCE;
    }
    if (n_src == 0) {
        return 0;
    }
    n_threads = n_src < s->engine->limit[KILN__POOL_PROCESS]
                    ? n_src
                    : s->engine->limit[KILN__POOL_PROCESS];
    threads = calloc(n_threads, sizeof(*threads));
    pthread_mutex_init(&r.mu, NULL);
    atomic_init(&r.next, 0);
    atomic_init(&r.failed, false);
    /* This thread is one of them; the others are extra. */
    for (size_t t = 1; threads != NULL && t < n_threads; t++) {
        if (pthread_create(&threads[t], NULL, resolve_main, &r) != 0) {
            threads[t] = 0;
            break;
        }
    }
    resolve_main(&r);
    for (size_t t = 1; threads != NULL && t < n_threads; t++) {
        if (threads[t] != 0) {
            pthread_join(threads[t], NULL);
        }
    }
    free(threads);
    pthread_mutex_destroy(&r.mu);
    return r.rc;
}

int kiln__solve_compute_keys(kiln_solve_t *s, kiln_error_t *err)
{
    size_t *order = NULL, n_order = 0;
    int rc = topo_order(s, &order, &n_order, err);

    if (rc == 0) {
        rc = resolve_sources(s, order, n_order, err);
    }
    for (size_t i = 0; i < n_order && rc == 0; i++) {
        rc = node_keys(s, &s->nodes[order[i]], err);
    }
    free(order);
    return rc;
}
