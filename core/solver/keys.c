/*
 * Cache keys of a solve's vertices.
 *
 * key(v, out) = sha256 over "kiln.key.v1", the op's cache-map digest (see
 * cachemap.h: BuildKit's digest of the normalized op), the output index,
 * and for each of the op's inputs the key of the output it takes plus the
 * selector the op applies to it. Same op over the same inputs gives the
 * same key on any host; a changed op changes its key and every key above.
 * The parts are kept with the record so that BuildKit-style cache records
 * (digest@output plus input links) can be exported from it.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "solver/cachemap.h"
#include "solver/solve.h"

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
static const char *selector_of(const kiln__node_t *n,
                               const kiln__cachemap_t *cm, size_t i)
{
    if (n->v->kind != KILN_OP_EXEC && n->v->kind != KILN_OP_FILE) {
        return "";
    }
    return i < cm->n_deps ? cm->deps[i].selector : "";
}

static int node_keys(kiln_solve_t *s, kiln__node_t *n, kiln_error_t *err)
{
    const Pb__Op *op = n->v->op;
    kiln__cachemap_t *cm = NULL;
    EVP_MD_CTX *ctx;
    size_t n_out = n->v->n_outputs ? n->v->n_outputs : 1;
    int rc;

    if (n->v->kind == KILN_OP_SOURCE) {
        /* A source's key needs its plugin's content pin. */
        const char *id = op->source->identifier;
        const char *colon = strstr(id, "://");
        int len = colon != NULL ? (int)(colon - id) : (int)strcspn(id, ":");

        return kiln__fail(err, KILN_ENOTSUP,
                          "%s: no source plugin handles scheme '%.*s' "
                          "(loaded: none)",
                          n->name, len, id);
    }
    rc = kiln__cachemap_vertex(n->v, NULL, KILN_CM_CURRENT, &cm, err);
    if (rc < 0) {
        return rc;
    }
    n->keys = calloc(n_out, sizeof(*n->keys));
    ctx = EVP_MD_CTX_new();
    if (n->keys == NULL || ctx == NULL) {
        EVP_MD_CTX_free(ctx);
        kiln__cachemap_free(cm);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t out = 0; out < n_out; out++) {
        char idx[32];

        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        update_str(ctx, KEY_DOMAIN);
        update_str(ctx, cm->digest);
        snprintf(idx, sizeof(idx), "%zu", out);
        update_str(ctx, idx);
        for (size_t i = 0; i < op->n_inputs; i++) {
            const kiln__node_t *in = &s->nodes[n->v->inputs[i]->pos];
            update_str(ctx, in->keys[op->inputs[i]->index]);
            update_str(ctx, selector_of(n, cm, i));
        }
        hex_digest(ctx, n->keys[out]);
    }
    EVP_MD_CTX_free(ctx);
    n->cm = cm;
    return 0;
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

int kiln__solve_compute_keys(kiln_solve_t *s, kiln_error_t *err)
{
    size_t *order = NULL, n_order = 0;
    int rc = topo_order(s, &order, &n_order, err);

    for (size_t i = 0; i < n_order && rc == 0; i++) {
        rc = node_keys(s, &s->nodes[order[i]], err);
    }
    free(order);
    return rc;
}
