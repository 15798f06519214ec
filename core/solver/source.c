/*
 * Source ops, through the plugin registry only: resolve() pins a source for
 * its cache key (as BuildKit, the key's cache-map digest is
 * sha256("buildkit.source.v0:" + pin)), fetch() fills a directory that
 * becomes the source's one layer. The solver never knows a scheme.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "plugin/registry.h"
#include "solver/cachemap.h"
#include "solver/source.h"

/* The source as the plugin sees it; strings borrowed from the op, except
 * the scheme and the attrs, released by source_clear(). */
struct source {
    kiln_source_t src;
    char *scheme;
    kiln_attrs_t *attrs;
};

static void source_clear(struct source *s)
{
    free(s->scheme);
    kiln__attrs_free(s->attrs);
}

static int plugin_of(kiln_solve_t *s, const kiln__node_t *n,
                     const kiln__plugin_t **out, size_t *scheme_len,
                     kiln_error_t *err)
{
    const char *id = n->v->op->source->identifier;
    size_t len;
    char *names;
    int rc;

    if (!kiln__source_scheme(id, &len)) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: source identifier '%s' has no scheme "
                          "(scheme://...)",
                          n->name, id);
    }
    *scheme_len = len;
    *out = kiln__registry_find(s->engine->plugins, id, len);
    if (*out != NULL) {
        return 0;
    }
    names = kiln__registry_names(s->engine->plugins);
    rc = kiln__fail(err, KILN_ENOTSUP,
                    "%s: no source plugin handles scheme '%.*s' (loaded: %s)",
                    n->name, (int)len, id, names != NULL ? names : "?");
    free(names);
    return rc;
}

static int source_init(kiln_solve_t *s, const kiln__node_t *n,
                       struct source *out, const kiln__plugin_t **p,
                       kiln_error_t *err)
{
    const Pb__SourceOp *op = n->v->op->source;
    const Pb__Platform *pf = n->v->op->platform;
    size_t len = 0;
    int rc = plugin_of(s, n, p, &len, err);

    memset(out, 0, sizeof(*out));
    if (rc < 0) {
        return rc;
    }
    out->scheme = strndup(op->identifier, len);
    out->attrs = kiln__attrs_new();
    if (out->scheme == NULL || out->attrs == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < op->n_attrs; i++) {
        if (kiln__attrs_set(out->attrs, op->attrs[i]->key,
                            op->attrs[i]->value) < 0) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    out->src.size = sizeof(out->src);
    out->src.identifier = op->identifier;
    out->src.scheme = out->scheme;
    out->src.locator = op->identifier + len + 3;
    out->src.attrs = out->attrs;
    if (pf != NULL) {
        out->src.os = pf->os[0] ? pf->os : NULL;
        out->src.arch = pf->architecture[0] ? pf->architecture : NULL;
        out->src.variant = pf->variant[0] ? pf->variant : NULL;
    }
    out->src.pin = n->pin;
    return 0;
}

int kiln__source_resolve(kiln_solve_t *s, kiln__node_t *n, kiln_error_t *err)
{
    kiln__job_ctx_t ctx = {s->engine->store, s, n, NULL, NULL, NULL, NULL};
    const kiln__plugin_t *p = NULL;
    struct source src;
    kiln_job_t *job = NULL;
    int rc = source_init(s, n, &src, &p, err);

    if (rc == 0 && (job = kiln__job_new(p, &ctx)) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = p->desc->resolve(p->state, job, &src.src);
        if (rc < 0) {
            rc = kiln__fail(err, rc, "%s: %s", n->name,
                            kiln__job_error(job, rc));
        } else if (kiln__job_pin(job) == NULL) {
            rc = kiln__fail(err, KILN_EINVAL,
                            "%s: plugin '%s' resolved the source but set no "
                            "pin",
                            n->name, p->desc->name);
        }
    }
    if (rc == 0 && (n->pin = strdup(kiln__job_pin(job))) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0 && (n->cm = calloc(1, sizeof(*n->cm))) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = kiln__cachemap_source_digest(n->pin, strlen(n->pin),
                                          n->cm->digest);
        if (rc < 0) {
            rc = kiln__fail(err, rc, "out of memory");
        }
    }
    kiln__solve_note(s, n, KILN_LOG_DEBUG, "%s pinned to %s",
                     p != NULL ? p->desc->name : "?", n->pin ? n->pin : "-");
    kiln__job_free(job);
    source_clear(&src);
    return rc;
}

int kiln__source_fetch(kiln_solve_t *s, kiln__node_t *n, const char *dest,
                       kiln__job_layer_fn new_layer,
                       kiln__job_keyed_layer_fn keyed_layer, void *ud,
                       kiln_error_t *err)
{
    kiln__job_ctx_t ctx = {s->engine->store, s,           n, new_layer,
                           ud,              keyed_layer, NULL};
    const kiln__plugin_t *p = NULL;
    struct source src;
    kiln_job_t *job = NULL;
    int rc = source_init(s, n, &src, &p, err);

    if (rc == 0 && (job = kiln__job_new(p, &ctx)) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        rc = p->desc->fetch(p->state, job, &src.src, dest);
        if (rc < 0) {
            rc = kiln__fail(err, rc, "%s", kiln__job_error(job, rc));
        }
    }
    kiln__job_free(job);
    source_clear(&src);
    return rc;
}
