/*
 * The cache state of a solve, and what the exporter and importer share:
 * the graph order, record digests, layer <-> blob mappings, reading a
 * cache from a layout or a registry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "solver/cachemap.h"

int kiln__cache_new(const kiln_solve_options_t *o, kiln__cache_t **out,
                    kiln_error_t *err)
{
    size_t n_exp = 0, n_imp = 0;
    kiln__cache_t *c;
    int rc = 0;

    *out = NULL;
    while (o->export_cache != NULL && o->export_cache[n_exp] != NULL) {
        n_exp++;
    }
    while (o->import_cache != NULL && o->import_cache[n_imp] != NULL) {
        n_imp++;
    }
    if (n_exp + n_imp == 0) {
        return 0;
    }
    c = calloc(1, sizeof(*c));
    if (c != NULL) {
        pthread_mutex_init(&c->mu, NULL);
    }
    if (c == NULL || (c->exp = calloc(n_exp + 1, sizeof(*c->exp))) == NULL ||
        (c->imp = calloc(n_imp + 1, sizeof(*c->imp))) == NULL) {
        kiln__cache_free(c);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n_exp && rc == 0; i++) {
        rc = kiln__cache_spec_parse(o->export_cache[i], true, &c->exp[i].spec,
                                    err);
        if (rc == 0) {
            pthread_mutex_init(&c->exp[i].mu, NULL);
            c->n_exp++;
        }
    }
    for (size_t i = 0; i < n_imp && rc == 0; i++) {
        rc = kiln__cache_spec_parse(o->import_cache[i], false,
                                    &c->imp[i].spec, err);
        c->n_imp += rc == 0;
    }
    for (size_t i = 0; i < c->n_exp && rc == 0; i++) {
        const kiln__cache_spec_t *sp = &c->exp[i].spec;
        if (sp->type == KILN__CACHE_LOCAL &&
            (rc = kiln__oci_layout_init(sp->dir, err)) < 0) {
            rc = kiln__fail_prefix(err, rc, "--export-cache %s", sp->dir);
        }
    }
    if (rc < 0) {
        kiln__cache_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void kiln__cache_free(kiln__cache_t *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_exp; i++) {
        kiln__cache_spec_clear(&c->exp[i].spec);
        free(c->exp[i].packed);
        pthread_mutex_destroy(&c->exp[i].mu);
    }
    for (size_t i = 0; i < c->n_imp; i++) {
        kiln__cache_spec_clear(&c->imp[i].spec);
        kiln__cc_free(c->imp[i].cc);
        kiln__cache_manifest_clear(&c->imp[i].m);
        kiln__oci_reg_free(c->imp[i].reg);
    }
    while (c->queue != NULL) {
        kiln__upload_t *u = c->queue;
        c->queue = u->next;
        free(u->snapshot);
        free(u);
    }
    for (size_t i = 0; c->match != NULL && i < c->n_nodes; i++) {
        free(c->match[i]);
        free(c->n_match[i]);
    }
    free(c->match);
    free(c->n_match);
    free(c->bad);
    pthread_mutex_destroy(&c->mu);
    free(c->exp);
    free(c->imp);
    free(c);
}

bool kiln__cache_exports(const kiln_solve_t *s)
{
    return s->cache != NULL && s->cache->n_exp > 0;
}

size_t kiln__cache_n_out(const kiln__node_t *n)
{
    return n->v->n_outputs ? n->v->n_outputs : 1;
}

void kiln__cache_record_digest(const kiln__node_t *n, size_t o,
                               char out[KILN_DIGEST_STRLEN + 1])
{
    out[0] = '\0';
    if (n->cm == NULL || kiln__cachemap_is_random(n->cm->digest) ||
        kiln__cachemap_record_digest(n->cm->digest, (int64_t)o,
                                     KILN_CM_CURRENT, out) < 0) {
        out[0] = '\0';
    }
}

int kiln__cache_order(const kiln_solve_t *s, size_t **out, size_t *n_out,
                      kiln_error_t *err)
{
    size_t n = s->def->n_vertices, sp = 0, k = 0;
    size_t *ord = malloc((n + 1) * sizeof(*ord));
    size_t *stack = malloc((n + 1) * sizeof(*stack));
    size_t *next = calloc(n + 1, sizeof(*next));
    bool *seen = calloc(n + 1, sizeof(*seen));

    if (!ord || !stack || !next || !seen) {
        free(ord), free(stack), free(next), free(seen);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (s->result != NULL) {
        stack[sp++] = s->result->v->pos;
        seen[s->result->v->pos] = true;
    }
    while (sp > 0) {
        const kiln__node_t *nd = &s->nodes[stack[sp - 1]];

        if (next[nd->v->pos] < nd->v->op->n_inputs) {
            size_t in = nd->v->inputs[next[nd->v->pos]++]->pos;
            if (!seen[in]) {
                seen[in] = true;
                stack[sp++] = in;
            }
        } else {
            ord[k++] = nd->v->pos;
            sp--;
        }
    }
    free(stack), free(next), free(seen);
    *out = ord;
    *n_out = k;
    return 0;
}

void kiln__cache_layer_kv(const char *layer_id, kiln_oci_comp_t comp,
                          int level, char *buf, size_t size)
{
    snprintf(buf, size, "layer/%s/%d/%d", layer_id, (int)comp, level);
}

int kiln__cache_blob_get(kiln__store_t *st, const char *key,
                         kiln__cache_blob_t *b)
{
    char val[512];
    size_t len = 0;
    long long size;

    if (kiln__store_kv_get(st, KILN__CACHE_KV, key, val, sizeof(val) - 1,
                           &len, NULL) < 0) {
        return KILN_ENOENT;
    }
    val[len] = '\0';
    memset(b, 0, sizeof(*b));
    if (sscanf(val, "%71s %71s %lld %63s", b->digest, b->diff_id, &size,
               b->media_type) != 4 ||
        !kiln__digest_valid(b->digest)) {
        return KILN_ENOENT;
    }
    b->size = size;
    return 0;
}

void kiln__cache_blob_put(kiln__store_t *st, const char *key,
                          const kiln__cache_blob_t *b)
{
    char val[512];
    int n = snprintf(val, sizeof(val), "%s %s %lld %s", b->digest,
                     b->diff_id[0] ? b->diff_id : "-", (long long)b->size,
                     b->media_type);

    /* A mapping only saves work later: failing to keep it is harmless. */
    kiln__store_kv_set(st, KILN__CACHE_KV, key, val, (size_t)n, NULL);
}

void kiln__cache_seen_at(kiln__store_t *st, const char *digest,
                         const kiln__oci_ref_t *where)
{
    char key[128], val[1024];
    int n;

    snprintf(key, sizeof(key), "seen/%s", digest);
    n = snprintf(val, sizeof(val), "%s %s", where->registry, where->repository);
    if (n > 0 && (size_t)n < sizeof(val)) {
        kiln__store_kv_set(st, KILN__CACHE_KV, key, val, (size_t)n, NULL);
    }
}

bool kiln__cache_where_seen(kiln__store_t *st, const char *digest,
                            char *registry, size_t rsize, char *repo,
                            size_t qsize)
{
    char key[128], val[1024];
    const char *sp;
    size_t len = 0;

    snprintf(key, sizeof(key), "seen/%s", digest);
    if (kiln__store_kv_get(st, KILN__CACHE_KV, key, val, sizeof(val) - 1, &len,
                           NULL) < 0) {
        return false;
    }
    val[len] = '\0';
    sp = strchr(val, ' ');
    if (sp == NULL) {
        return false;
    }
    snprintf(registry, rsize, "%.*s", (int)(sp - val), val);
    snprintf(repo, qsize, "%s", sp + 1);
    return true;
}

static int reg_cancelled(void *ud)
{
    const kiln_solve_t *s = ud;

    return atomic_load(&s->stop);
}

int kiln__cache_reg_new(const kiln__cache_spec_t *sp, kiln_solve_t *s,
                        kiln__oci_reg_t **out, kiln_error_t *err)
{
    /* Borrowed for the client's life: the spec outlives it. */
    const char *const *insecure = (const char *const *)&sp->reg.registry;
    kiln__oci_reg_opts_t o = {0};

    if (s != NULL) {
        o.cancelled = reg_cancelled;
        o.cancel_ud = s;
    }
    if (sp->insecure) {
        o.insecure = insecure;
        o.n_insecure = 1;
    }
    o.connect_timeout = 10;
    o.idle_timeout = 60;
    return kiln__oci_reg_new(&o, out, err);
}

int kiln__cache_local_index(const char *dir, kiln_oci_index_t *out,
                            kiln_error_t *err)
{
    char path[4200];
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "%s/index.json", dir);
    rc = kiln__read_file(path, KILN_OCI_JSON_MAX, &data, &len, err);
    if (rc == 0) {
        rc = kiln__oci_index_parse(data, len, out, err);
        if (rc < 0) {
            kiln__fail_prefix(err, rc, "%s", path);
        }
    }
    free(data);
    return rc;
}

int kiln__cache_local_blob(const char *dir, const char *digest, size_t limit,
                           uint8_t **data, size_t *len, kiln_error_t *err)
{
    char path[4200], got[KILN_DIGEST_STRLEN + 1];
    int rc;

    snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, digest + 7);
    rc = kiln__read_file(path, limit, data, len, err);
    if (rc == 0 && kiln__sha256_digest(*data, *len, got) < 0) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0 && strcmp(got, digest) != 0) {
        rc = kiln__fail(err, KILN_EBADMSG, "%s: its digest is %s", path, got);
    }
    if (rc < 0) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

/* A local layout's manifest for the spec's tag or digest. The layout may
 * lack its oci-layout file: BuildKit's local cache exporter writes only
 * index.json and the blobs. */
static int local_manifest(const kiln__cache_spec_t *sp, uint8_t **data,
                          size_t *len, char digest[KILN_DIGEST_STRLEN + 1],
                          kiln_error_t *err)
{
    kiln_oci_index_t ix;
    const kiln_oci_desc_t *d = NULL;
    int rc = kiln__cache_local_index(sp->dir, &ix, err);

    if (rc < 0) {
        return rc;
    }
    for (size_t i = 0; i < ix.n_manifests && d == NULL; i++) {
        const kiln_oci_desc_t *m = &ix.manifests[i];
        if (sp->digest != NULL ? strcmp(m->digest, sp->digest) == 0
                               : m->ref_name != NULL &&
                                     strcmp(m->ref_name, sp->tag) == 0) {
            d = m;
        }
    }
    if (d == NULL) {
        rc = kiln__fail(err, KILN_ENOENT, "%s: no cache tagged '%s'", sp->dir,
                        sp->digest ? sp->digest : sp->tag);
    } else {
        snprintf(digest, KILN_DIGEST_STRLEN + 1, "%s", d->digest);
        rc = kiln__cache_local_blob(sp->dir, d->digest, KILN_CC_MAX_BYTES,
                                    data, len, err);
    }
    kiln__oci_index_clear(&ix);
    return rc;
}

/* Collects a registry blob into memory (configs: 1 MiB at most). */
static int mem_sink(void *ud, const void *data, size_t len, kiln_error_t *err)
{
    kiln__buf_t *b = ud;

    if (b->len + len > KILN_CC_MAX_BYTES) {
        return kiln__fail(err, KILN_E2BIG, "cache config over %u bytes",
                          KILN_CC_MAX_BYTES);
    }
    kiln__buf_append(b, data, len);
    return kiln__buf_ok(b) ? 0 : KILN_ENOMEM;
}

int kiln__cache_read(const kiln__cache_spec_t *sp, kiln__oci_reg_t *reg,
                     kiln__cc_t **cc, kiln__cache_manifest_t *m,
                     char manifest_digest[KILN_DIGEST_STRLEN + 1],
                     kiln_error_t *err)
{
    kiln__oci_manifest_t rm = {0};
    uint8_t *data = NULL, *cfg = NULL;
    kiln__buf_t cb = KILN_BUF_INIT;
    size_t len = 0, cfg_len = 0;
    int rc;

    *cc = NULL;
    manifest_digest[0] = '\0';
    memset(m, 0, sizeof(*m));
    if (sp->type == KILN__CACHE_LOCAL) {
        rc = local_manifest(sp, &data, &len, manifest_digest, err);
    } else {
        rc = kiln__oci_manifest_get(reg, &sp->reg, &rm, err);
        if (rc == 0) {
            data = rm.body;
            len = rm.len;
            rm.body = NULL;
            snprintf(manifest_digest, KILN_DIGEST_STRLEN + 1, "%s", rm.digest);
        }
    }
    if (rc == 0) {
        rc = kiln__cache_manifest_parse(data, len, m, err);
    }
    if (rc == 0 && sp->type == KILN__CACHE_LOCAL) {
        rc = kiln__cache_local_blob(sp->dir, m->config_digest,
                                    KILN_CC_MAX_BYTES, &cfg, &cfg_len, err);
    } else if (rc == 0) {
        rc = kiln__oci_blob_get(reg, sp->reg.registry, sp->reg.repository,
                                m->config_digest, mem_sink, &cb, NULL, err);
        cfg = cb.data;
        cfg_len = cb.len;
        cb.data = NULL;
    }
    if (rc == 0) {
        rc = kiln__cc_parse(cfg, cfg_len, cc, err);
    }
    if (rc == 0) {
        rc = kiln__cache_manifest_attach(m, *cc, err);
    }
    free(data);
    free(cfg);
    kiln__buf_free(&cb);
    kiln__oci_manifest_clear(&rm);
    if (rc < 0) {
        kiln__cc_free(*cc);
        *cc = NULL;
        kiln__cache_manifest_clear(m);
    }
    return rc;
}
