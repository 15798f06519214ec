/*
 * Merging cache configs (an export adds to what the destination holds,
 * never replaces it) and bounding their size.
 *
 * A record's identity is content addressed: sha256 over its digest and,
 * per input, the sorted set of (selector, identity of the linked record).
 * Two configs that both hold a record of the same step over the same
 * inputs therefore agree on it whatever their indexes, and the merge keeps
 * it once with the union of their results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/config.h"

typedef char ident_t[KILN_DIGEST_STRLEN + 1];

static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* Records in an order where every linked record comes before its user
 * (links form a DAG: parsing checked). */
static int topo(const kiln__cc_t *cc, size_t **out, kiln_error_t *err)
{
    size_t n = cc->n_records, k = 0, sp = 0;
    size_t *ord = malloc((n + 1) * sizeof(*ord));
    size_t *stack = malloc((n + 1) * sizeof(*stack));
    size_t *next = calloc(n + 1, sizeof(*next));
    bool *seen = calloc(n + 1, sizeof(*seen));

    if (!ord || !stack || !next || !seen) {
        free(ord), free(stack), free(next), free(seen);
        return oom(err);
    }
    for (size_t root = 0; root < n; root++) {
        if (seen[root]) {
            continue;
        }
        seen[root] = true;
        stack[sp++] = root;
        while (sp > 0) {
            size_t r = stack[sp - 1], pos = next[r], total = 0;
            const kiln__cc_record_t *rec = &cc->records[r];
            int64_t child = -1;

            for (size_t i = 0; i < rec->n_inputs && child < 0; i++) {
                if (pos < total + rec->inputs[i].n) {
                    child = rec->inputs[i].links[pos - total].link;
                }
                total += rec->inputs[i].n;
            }
            if (child < 0) {
                ord[k++] = r;
                sp--;
            } else {
                next[r]++;
                if (!seen[child]) {
                    seen[child] = true;
                    stack[sp++] = (size_t)child;
                }
            }
        }
    }
    free(stack), free(next), free(seen);
    *out = ord;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Identity of record r, its links' identities known. */
static int ident_of(const kiln__cc_t *cc, size_t r, ident_t *ids,
                    ident_t out, kiln_error_t *err)
{
    const kiln__cc_record_t *rec = &cc->records[r];
    kiln__buf_t b = KILN_BUF_INIT;
    int rc = 0;

    kiln__buf_printf(&b, "%s%c%zu%c", rec->digest, 0, rec->n_inputs, 0);
    for (size_t i = 0; i < rec->n_inputs && rc == 0; i++) {
        const kiln__cc_input_t *in = &rec->inputs[i];
        char **parts = calloc(in->n + 1, sizeof(*parts));

        rc = parts != NULL ? 0 : oom(err);
        for (size_t k = 0; k < in->n && rc == 0; k++) {
            if (asprintf(&parts[k], "%s@%s", in->links[k].selector,
                         ids[in->links[k].link]) < 0) {
                parts[k] = NULL;
                rc = oom(err);
            }
        }
        if (rc == 0) {
            qsort(parts, in->n, sizeof(*parts), cmp_str);
            for (size_t k = 0; k < in->n; k++) {
                /* Duplicates are one alternative. */
                if (k == 0 || strcmp(parts[k], parts[k - 1]) != 0) {
                    kiln__buf_printf(&b, "%s%c", parts[k], 0);
                }
            }
            kiln__buf_printf(&b, "|%c", 0);
        }
        for (size_t k = 0; parts != NULL && k < in->n; k++) {
            free(parts[k]);
        }
        free(parts);
    }
    if (rc == 0 && !kiln__buf_ok(&b)) {
        rc = oom(err);
    }
    if (rc == 0 && kiln__sha256_digest(b.data, b.len, out) < 0) {
        rc = oom(err);
    }
    kiln__buf_free(&b);
    return rc;
}

static int identities(const kiln__cc_t *cc, const size_t *ord, ident_t **out,
                      kiln_error_t *err)
{
    ident_t *ids = calloc(cc->n_records + 1, sizeof(*ids));
    int rc = ids != NULL ? 0 : oom(err);

    for (size_t k = 0; k < cc->n_records && rc == 0; k++) {
        rc = ident_of(cc, ord[k], ids, ids[ord[k]], err);
    }
    if (rc < 0) {
        free(ids);
        return rc;
    }
    *out = ids;
    return 0;
}

/* The dst layer of src layer l (its parents first), into lmap. */
static int map_layer(kiln__cc_t *dst, const kiln__cc_t *src, int64_t l,
                     int64_t *lmap, kiln_error_t *err)
{
    int64_t *chain = NULL;
    size_t n = 0;
    int rc = kiln__cc_layer_chain(src, l, &chain, &n, err);

    for (size_t i = 0; i < n && rc == 0; i++) {
        const kiln__cc_layer_t *sl = &src->layers[chain[i]];
        int64_t parent = i > 0 ? lmap[chain[i - 1]] : -1;
        kiln__cc_layer_t *dl;
        size_t idx;

        if (lmap[chain[i]] >= 0) {
            continue;
        }
        rc = kiln__cc_add_layer(dst, sl->blob, parent, &idx, err);
        if (rc < 0) {
            break;
        }
        lmap[chain[i]] = (int64_t)idx;
        dl = &dst->layers[idx];
        if (dl->media_type == NULL && sl->media_type != NULL &&
            (dl->media_type = strdup(sl->media_type)) == NULL) {
            rc = oom(err);
        }
        if (dl->annotations == NULL && sl->annotations != NULL &&
            (dl->annotations = strdup(sl->annotations)) == NULL) {
            rc = oom(err);
        }
        if (dl->size < 0) {
            dl->size = sl->size;
        }
        if (dl->diff_id[0] == '\0') {
            memcpy(dl->diff_id, sl->diff_id, sizeof(dl->diff_id));
        }
        if (dl->created[0] == '\0') {
            memcpy(dl->created, sl->created, sizeof(dl->created));
        }
    }
    free(chain);
    return rc;
}

static int add_chain(kiln__cc_t *dst, size_t rec, const kiln__cc_chain_t *c,
                     const int64_t *lmap, kiln_error_t *err)
{
    kiln__cc_record_t *r = &dst->records[rec];
    kiln__cc_chain_t *v = realloc(r->chains, (r->n_chains + 1) * sizeof(*v));

    if (v == NULL) {
        return oom(err);
    }
    r->chains = v;
    v = &r->chains[r->n_chains];
    v->layers = malloc((c->n + 1) * sizeof(*v->layers));
    if (v->layers == NULL) {
        return oom(err);
    }
    for (size_t j = 0; j < c->n; j++) {
        v->layers[j] = lmap[c->layers[j]];
    }
    v->n = c->n;
    memcpy(v->created, c->created, sizeof(v->created));
    for (size_t k = 0; k < r->n_chains; k++) {
        if (r->chains[k].n == v->n &&
            memcmp(r->chains[k].layers, v->layers,
                   v->n * sizeof(*v->layers)) == 0) {
            free(v->layers); /* had it */
            return 0;
        }
    }
    r->n_chains++;
    return 0;
}

/* Adds src record s (its links mapped already) to dst, or finds it. */
static int merge_record(kiln__cc_t *dst, const kiln__cc_t *src, size_t s,
                        const ident_t sid, ident_t **dids, size_t *rmap,
                        kiln_error_t *err)
{
    const kiln__cc_record_t *sr = &src->records[s];
    size_t d = dst->n_records;
    ident_t *ids;
    int rc;

    for (size_t k = 0; k < dst->n_records; k++) {
        if (strcmp((*dids)[k], sid) == 0) {
            rmap[s] = k;
            return kiln__cc_describe(dst, k, sr->description, err);
        }
    }
    rc = kiln__cc_add_record(dst, sr->digest, sr->n_inputs, &d, err);
    if (rc == 0) {
        rc = kiln__cc_describe(dst, d, sr->description, err);
    }
    for (size_t i = 0; i < sr->n_inputs && rc == 0; i++) {
        for (size_t k = 0; k < sr->inputs[i].n && rc == 0; k++) {
            rc = kiln__cc_add_link(dst, d, i, rmap[sr->inputs[i].links[k].link],
                                   sr->inputs[i].links[k].selector, err);
        }
    }
    if (rc < 0) {
        return rc;
    }
    ids = realloc(*dids, (dst->n_records + 1) * sizeof(*ids));
    if (ids == NULL) {
        return oom(err);
    }
    *dids = ids;
    memcpy(ids[d], sid, sizeof(ident_t));
    rmap[s] = d;
    return 0;
}

int kiln__cc_merge(kiln__cc_t *dst, const kiln__cc_t *src, kiln_error_t *err)
{
    size_t *dord = NULL, *sord = NULL, *rmap = NULL;
    ident_t *dids = NULL, *sids = NULL;
    int64_t *lmap = NULL;
    int rc = topo(dst, &dord, err);

    if (rc == 0) {
        rc = topo(src, &sord, err);
    }
    if (rc == 0) {
        rc = identities(dst, dord, &dids, err);
    }
    if (rc == 0) {
        rc = identities(src, sord, &sids, err);
    }
    if (rc == 0) {
        rmap = calloc(src->n_records + 1, sizeof(*rmap));
        lmap = malloc((src->n_layers + 1) * sizeof(*lmap));
        rc = rmap && lmap ? 0 : oom(err);
    }
    for (size_t i = 0; rc == 0 && i < src->n_layers; i++) {
        lmap[i] = -1;
    }
    for (size_t k = 0; rc == 0 && k < src->n_records; k++) {
        rc = merge_record(dst, src, sord[k], sids[sord[k]], &dids, rmap, err);
    }
    for (size_t s = 0; rc == 0 && s < src->n_records; s++) {
        const kiln__cc_record_t *sr = &src->records[s];

        for (size_t k = 0; k < sr->n_results && rc == 0; k++) {
            rc = map_layer(dst, src, sr->results[k].layer, lmap, err);
            if (rc == 0) {
                rc = kiln__cc_add_result(dst, rmap[s],
                                         (size_t)lmap[sr->results[k].layer],
                                         sr->results[k].created, err);
            }
        }
        for (size_t k = 0; k < sr->n_chains && rc == 0; k++) {
            for (size_t j = 0; j < sr->chains[k].n && rc == 0; j++) {
                rc = map_layer(dst, src, sr->chains[k].layers[j], lmap, err);
            }
            if (rc == 0) {
                rc = add_chain(dst, rmap[s], &sr->chains[k], lmap, err);
            }
        }
    }
    free(dord), free(sord), free(rmap), free(dids), free(sids), free(lmap);
    return rc;
}

/* ---- bounding ----------------------------------------------------------- */

/* The newest createdAt of a record's results ("" for none). RFC 3339 UTC
 * strings of one writer compare as their times do. */
static const char *newest(const kiln__cc_record_t *r)
{
    const char *t = "";

    for (size_t k = 0; k < r->n_results; k++) {
        if (strcmp(r->results[k].created, t) > 0) {
            t = r->results[k].created;
        }
    }
    for (size_t k = 0; k < r->n_chains; k++) {
        if (strcmp(r->chains[k].created, t) > 0) {
            t = r->chains[k].created;
        }
    }
    return t;
}

static int cmp_newest(const void *a, const void *b, void *ud)
{
    const kiln__cc_t *cc = ud;

    return -strcmp(newest(&cc->records[*(const size_t *)a]),
                   newest(&cc->records[*(const size_t *)b]));
}

static void drop_results(kiln__cc_record_t *r)
{
    r->n_results = 0;
    for (size_t k = 0; k < r->n_chains; k++) {
        free(r->chains[k].layers);
    }
    r->n_chains = 0;
}

/* Keeps the records marked in keep[] (and the layers they use): rebuilds
 * cc in place with remapped indexes. */
static int compact(kiln__cc_t *cc, bool *keep, kiln_error_t *err)
{
    kiln__cc_t *out = NULL;
    size_t *ord = NULL, *rmap = NULL;
    int64_t *lmap = NULL;
    int rc = kiln__cc_new(&out, err);

    if (rc == 0) {
        rc = topo(cc, &ord, err);
    }
    if (rc == 0) {
        rmap = calloc(cc->n_records + 1, sizeof(*rmap));
        lmap = malloc((cc->n_layers + 1) * sizeof(*lmap));
        rc = rmap && lmap ? 0 : oom(err);
    }
    for (size_t i = 0; rc == 0 && i < cc->n_layers; i++) {
        lmap[i] = -1;
    }
    for (size_t k = 0; rc == 0 && k < cc->n_records; k++) {
        const kiln__cc_record_t *r = &cc->records[ord[k]];
        size_t d;

        if (!keep[ord[k]]) {
            continue;
        }
        rc = kiln__cc_add_record(out, r->digest, r->n_inputs, &d, err);
        if (rc == 0) {
            rc = kiln__cc_describe(out, d, r->description, err);
        }
        for (size_t i = 0; i < r->n_inputs && rc == 0; i++) {
            for (size_t j = 0; j < r->inputs[i].n && rc == 0; j++) {
                rc = kiln__cc_add_link(out, d, i,
                                       rmap[r->inputs[i].links[j].link],
                                       r->inputs[i].links[j].selector, err);
            }
        }
        for (size_t j = 0; j < r->n_results && rc == 0; j++) {
            rc = map_layer(out, cc, r->results[j].layer, lmap, err);
            if (rc == 0) {
                rc = kiln__cc_add_result(out, d,
                                         (size_t)lmap[r->results[j].layer],
                                         r->results[j].created, err);
            }
        }
        for (size_t j = 0; j < r->n_chains && rc == 0; j++) {
            for (size_t x = 0; x < r->chains[j].n && rc == 0; x++) {
                rc = map_layer(out, cc, r->chains[j].layers[x], lmap, err);
            }
            if (rc == 0) {
                rc = add_chain(out, d, &r->chains[j], lmap, err);
            }
        }
        rmap[ord[k]] = d;
    }
    if (rc == 0) {
        /* Swap the rebuilt config in. */
        kiln__cc_t tmp = *cc;
        *cc = *out;
        *out = tmp;
    }
    kiln__cc_free(out);
    free(ord), free(rmap), free(lmap);
    return rc;
}

int kiln__cc_limit(kiln__cc_t *cc, size_t max_records, int64_t max_age_s,
                   size_t *dropped, kiln_error_t *err)
{
    size_t n = cc->n_records, n_with = 0, before = cc->n_records;
    size_t *with = malloc((n + 1) * sizeof(*with));
    bool *keep = calloc(n + 1, sizeof(*keep));
    size_t *stack = malloc((n + 1) * sizeof(*stack));
    char cutoff[KILN_CC_TIME_MAX] = "";
    size_t sp = 0;
    int rc;

    if (!with || !keep || !stack) {
        free(with), free(keep), free(stack);
        return oom(err);
    }
    if (max_age_s > 0) {
        time_t t = (time_t)(kiln__now_ns() / 1000000000) - (time_t)max_age_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(cutoff, sizeof(cutoff), "%Y-%m-%dT%H:%M:%S", &tm);
    }
    for (size_t r = 0; r < n; r++) {
        kiln__cc_record_t *rec = &cc->records[r];

        if (cutoff[0] != '\0' && (rec->n_results || rec->n_chains) &&
            strcmp(newest(rec), cutoff) < 0) {
            drop_results(rec);
        }
        if (rec->n_results || rec->n_chains) {
            with[n_with++] = r;
        }
    }
    qsort_r(with, n_with, sizeof(*with), cmp_newest, cc);
    for (size_t k = 0; k < n_with; k++) {
        if (max_records > 0 && k >= max_records) {
            drop_results(&cc->records[with[k]]);
        } else {
            keep[with[k]] = true;
            stack[sp++] = with[k];
        }
    }
    /* Whatever a kept result's record links to stays, so it can match. */
    while (sp > 0) {
        const kiln__cc_record_t *rec = &cc->records[stack[--sp]];

        for (size_t i = 0; i < rec->n_inputs; i++) {
            for (size_t k = 0; k < rec->inputs[i].n; k++) {
                size_t l = (size_t)rec->inputs[i].links[k].link;
                if (!keep[l]) {
                    keep[l] = true;
                    stack[sp++] = l;
                }
            }
        }
    }
    rc = compact(cc, keep, err);
    if (rc == 0 && dropped != NULL) {
        *dropped = before - cc->n_records;
    }
    free(with), free(keep), free(stack);
    return rc;
}
