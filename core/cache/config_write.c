/*
 * Writing a cache config as BuildKit does (cache/remotecache/v1: sortConfig
 * then json.Marshal): layers sorted by (blob, parent), records by digest,
 * then input count, then per input (length, selector, linked record's
 * digest); indexes remapped; each input's links sorted by index. Fields in
 * Go struct order, omitempty where BuildKit has it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/config.h"

/* What the sort sees: the config, and for each record a key standing
 * for all it holds (its digest, its results' layer chains, its inputs'
 * selectors and linked records' keys), so that equal-looking records sort
 * the same way whatever order they came in: writing what was parsed from a
 * written config gives the same bytes. */
struct sort_ctx {
    const kiln__cc_t *cc;
    char (*keys)[KILN_DIGEST_STRLEN + 1];
    unsigned char *state; /* 0 not made, 1 being made, 2 made */
};

/* Compares two layers by blob, then their parents' blobs down the chain
 * (not by index: indexes change with the order being made). */
static int cmp_chain(const kiln__cc_t *cc, int64_t x, int64_t y)
{
    for (size_t guard = 0; guard <= cc->n_layers; guard++) {
        int c;

        if (x < 0 || y < 0) {
            return (x >= 0) - (y >= 0);
        }
        c = strcmp(cc->layers[x].blob, cc->layers[y].blob);
        if (c != 0) {
            return c;
        }
        x = cc->layers[x].parent;
        y = cc->layers[y].parent;
    }
    return 0; /* a cycle: the parser refuses them, so never here */
}

static int cmp_layer(const void *a, const void *b, void *ud)
{
    const struct sort_ctx *c = ud;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int r = cmp_chain(c->cc, (int64_t)x, (int64_t)y);

    return r != 0 ? r : x < y ? -1 : x > y;
}

static void put_chain(kiln__buf_t *b, const kiln__cc_t *cc, int64_t l)
{
    for (size_t guard = 0; l >= 0 && guard <= cc->n_layers; guard++) {
        kiln__buf_printf(b, "%s,", cc->layers[l].blob);
        l = cc->layers[l].parent;
    }
    kiln__buf_putc(b, ';');
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *record_key(struct sort_ctx *c, size_t i)
{
    const kiln__cc_record_t *r = &c->cc->records[i];
    kiln__buf_t b = KILN_BUF_INIT;

    if (c->state[i] == 2) {
        return c->keys[i];
    }
    if (c->state[i] == 1) {
        return r->digest; /* a cycle of links: refused when parsed */
    }
    c->state[i] = 1;
    kiln__buf_printf(&b, "%s|", r->digest);
    for (size_t k = 0; k < r->n_results; k++) {
        put_chain(&b, c->cc, r->results[k].layer);
    }
    kiln__buf_putc(&b, '|');
    for (size_t k = 0; k < r->n_chains; k++) {
        for (size_t j = 0; j < r->chains[k].n; j++) {
            kiln__buf_printf(&b, "%s,",
                             c->cc->layers[r->chains[k].layers[j]].blob);
        }
        kiln__buf_putc(&b, ';');
    }
    for (size_t k = 0; k < r->n_inputs; k++) {
        const kiln__cc_input_t *in = &r->inputs[k];
        char **parts = calloc(in->n + 1, sizeof(*parts));

        kiln__buf_putc(&b, '|');
        for (size_t j = 0; parts != NULL && j < in->n; j++) {
            if (asprintf(&parts[j], "%s:%s", in->links[j].selector,
                         record_key(c, (size_t)in->links[j].link)) < 0) {
                parts[j] = NULL;
            }
        }
        if (parts != NULL) {
            qsort(parts, in->n, sizeof(*parts), cmp_strp);
        }
        for (size_t j = 0; parts != NULL && j < in->n; j++) {
            kiln__buf_printf(&b, "%s,", parts[j] != NULL ? parts[j] : "");
            free(parts[j]);
        }
        free(parts);
    }
    if (kiln__sha256_digest(b.data != NULL ? (const char *)b.data : "", b.len,
                            c->keys[i]) != 0) {
        snprintf(c->keys[i], sizeof(c->keys[i]), "%s", r->digest);
    }
    kiln__buf_free(&b);
    c->state[i] = 2;
    return c->keys[i];
}

/* Links by selector, then by what they link to (not by index). */
static int cmp_link_key(const void *a, const void *b, void *ud)
{
    const kiln__cc_link_t *x = a, *y = b;
    int c = strcmp(x->selector, y->selector);

    if (c == 0) {
        c = strcmp(record_key(ud, (size_t)x->link),
                   record_key(ud, (size_t)y->link));
    }
    return c;
}

static int cmp_record(const void *a, const void *b, void *ud)
{
    struct sort_ctx *sc = ud;
    const kiln__cc_t *cc = sc->cc;
    const kiln__cc_record_t *x = &cc->records[*(const size_t *)a];
    const kiln__cc_record_t *y = &cc->records[*(const size_t *)b];
    int c = strcmp(x->digest, y->digest);

    if (c != 0) {
        return c;
    }
    if (x->n_inputs != y->n_inputs) {
        return x->n_inputs < y->n_inputs ? -1 : 1;
    }
    for (size_t i = 0; i < x->n_inputs; i++) {
        const kiln__cc_input_t *p = &x->inputs[i], *q = &y->inputs[i];

        if (p->n != q->n) {
            return p->n < q->n ? -1 : 1;
        }
        for (size_t k = 0; k < p->n; k++) {
            c = strcmp(p->links[k].selector, q->links[k].selector);
            if (c == 0) {
                c = strcmp(cc->records[p->links[k].link].digest,
                           cc->records[q->links[k].link].digest);
            }
            if (c != 0) {
                return c;
            }
        }
    }
    /* Equal for BuildKit: the whole records decide, then the old order. */
    c = strcmp(record_key(sc, *(const size_t *)a),
               record_key(sc, *(const size_t *)b));
    if (c != 0) {
        return c;
    }
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int cmp_link(const void *a, const void *b)
{
    const kiln__cc_link_t *x = a, *y = b;

    return x->link < y->link ? -1 : x->link > y->link;
}

/* Sorts `n` indexes with cmp, and makes the old -> new index map. */
static int order(size_t n, int (*cmp)(const void *, const void *, void *),
                 void *ud, size_t **sorted, size_t **newpos)
{
    size_t *s = malloc((n + 1) * sizeof(*s));
    size_t *p = malloc((n + 1) * sizeof(*p));

    if (s == NULL || p == NULL) {
        free(s);
        free(p);
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        s[i] = i;
    }
    qsort_r(s, n, sizeof(*s), cmp, ud);
    for (size_t i = 0; i < n; i++) {
        p[s[i]] = i;
    }
    *sorted = s;
    *newpos = p;
    return 0;
}

static int sort_config(kiln__cc_t *cc, kiln_error_t *err)
{
    size_t *ls = NULL, *lp = NULL, *rs = NULL, *rp = NULL;
    kiln__cc_layer_t *layers = NULL;
    kiln__cc_record_t *records = NULL;
    struct sort_ctx sc = {.cc = cc};
    int rc = 0;

    sc.keys = calloc(cc->n_records + 1, sizeof(*sc.keys));
    sc.state = calloc(cc->n_records + 1, 1);
    if (sc.keys == NULL || sc.state == NULL) {
        rc = KILN_ENOMEM;
    }
    if (rc == 0) {
        rc = order(cc->n_layers, cmp_layer, &sc, &ls, &lp);
    }
    /* Each input's links in an order of their own, so that comparing
     * records link by link does not depend on the order they came in. */
    for (size_t i = 0; rc == 0 && i < cc->n_records; i++) {
        for (size_t k = 0; k < cc->records[i].n_inputs; k++) {
            kiln__cc_input_t *in = &cc->records[i].inputs[k];
            qsort_r(in->links, in->n, sizeof(*in->links), cmp_link_key, &sc);
        }
    }
    if (rc == 0) {
        rc = order(cc->n_records, cmp_record, &sc, &rs, &rp);
    }
    free(sc.keys);
    free(sc.state);
    if (rc == 0) {
        layers = malloc((cc->n_layers + 1) * sizeof(*layers));
        records = malloc((cc->n_records + 1) * sizeof(*records));
        rc = layers && records ? 0 : KILN_ENOMEM;
    }
    if (rc < 0) {
        free(ls), free(lp), free(rs), free(rp), free(layers), free(records);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < cc->n_layers; i++) {
        layers[i] = cc->layers[ls[i]];
        if (layers[i].parent >= 0) {
            layers[i].parent = (int64_t)lp[layers[i].parent];
        }
    }
    for (size_t i = 0; i < cc->n_records; i++) {
        kiln__cc_record_t *r = &records[i];

        *r = cc->records[rs[i]];
        for (size_t k = 0; k < r->n_results; k++) {
            r->results[k].layer = (int64_t)lp[r->results[k].layer];
        }
        for (size_t k = 0; k < r->n_chains; k++) {
            for (size_t j = 0; j < r->chains[k].n; j++) {
                r->chains[k].layers[j] = (int64_t)lp[r->chains[k].layers[j]];
            }
        }
        for (size_t k = 0; k < r->n_inputs; k++) {
            for (size_t j = 0; j < r->inputs[k].n; j++) {
                r->inputs[k].links[j].link =
                    (int64_t)rp[r->inputs[k].links[j].link];
            }
            qsort(r->inputs[k].links, r->inputs[k].n,
                  sizeof(*r->inputs[k].links), cmp_link);
        }
    }
    free(cc->layers);
    free(cc->records);
    cc->layers = layers;
    cc->cap_layers = cc->n_layers + 1;
    cc->records = records;
    cc->cap_records = cc->n_records + 1;
    free(ls), free(lp), free(rs), free(rp);
    return 0;
}

/* A JSON string as Go writes it (<, > and & escaped). */
static void put_str(kiln__buf_t *b, const char *s)
{
    kiln__buf_putc(b, '"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            kiln__buf_putc(b, '\\');
            kiln__buf_putc(b, c);
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            kiln__buf_printf(b, "\\u%04x", c);
        } else {
            kiln__buf_putc(b, c);
        }
    }
    kiln__buf_putc(b, '"');
}

static const char *time_or_zero(const char *t)
{
    return t[0] != '\0' ? t : "0001-01-01T00:00:00Z";
}

static void put_layers(kiln__buf_t *b, const kiln__cc_t *cc)
{
    kiln__buf_puts(b, "\"layers\":[");
    for (size_t i = 0; i < cc->n_layers; i++) {
        const kiln__cc_layer_t *l = &cc->layers[i];

        kiln__buf_puts(b, i ? ",{\"blob\":" : "{\"blob\":");
        put_str(b, l->blob);
        if (l->parent != 0) {
            kiln__buf_printf(b, ",\"parent\":%lld", (long long)l->parent);
        }
        if (l->annotations != NULL) {
            kiln__buf_printf(b, ",\"annotations\":%s", l->annotations);
        }
        kiln__buf_putc(b, '}');
    }
    kiln__buf_putc(b, ']');
}

static void put_record(kiln__buf_t *b, const kiln__cc_record_t *r)
{
    kiln__buf_putc(b, '{');
    if (r->n_results > 0) {
        kiln__buf_puts(b, "\"layers\":[");
        for (size_t k = 0; k < r->n_results; k++) {
            kiln__buf_printf(b, "%s{\"layer\":%lld,\"createdAt\":", k ? "," : "",
                             (long long)r->results[k].layer);
            put_str(b, time_or_zero(r->results[k].created));
            kiln__buf_putc(b, '}');
        }
        kiln__buf_puts(b, "],");
    }
    if (r->n_chains > 0) {
        kiln__buf_puts(b, "\"chains\":[");
        for (size_t k = 0; k < r->n_chains; k++) {
            kiln__buf_puts(b, k ? ",{\"layers\":[" : "{\"layers\":[");
            for (size_t j = 0; j < r->chains[k].n; j++) {
                kiln__buf_printf(b, "%s%lld", j ? "," : "",
                                 (long long)r->chains[k].layers[j]);
            }
            kiln__buf_puts(b, "],\"createdAt\":");
            put_str(b, time_or_zero(r->chains[k].created));
            kiln__buf_putc(b, '}');
        }
        kiln__buf_puts(b, "],");
    }
    kiln__buf_puts(b, "\"digest\":");
    put_str(b, r->digest);
    if (r->n_inputs > 0) {
        kiln__buf_puts(b, ",\"inputs\":[");
        for (size_t i = 0; i < r->n_inputs; i++) {
            kiln__buf_puts(b, i ? ",[" : "[");
            for (size_t k = 0; k < r->inputs[i].n; k++) {
                const kiln__cc_link_t *l = &r->inputs[i].links[k];

                kiln__buf_puts(b, k ? ",{" : "{");
                if (l->selector[0] != '\0') {
                    kiln__buf_puts(b, "\"selector\":");
                    put_str(b, l->selector);
                    kiln__buf_putc(b, ',');
                }
                kiln__buf_printf(b, "\"link\":%lld}", (long long)l->link);
            }
            kiln__buf_putc(b, ']');
        }
        kiln__buf_putc(b, ']');
    }
    if (r->description != NULL) {
        kiln__buf_puts(b, ",\"kiln.description\":");
        put_str(b, r->description);
    }
    kiln__buf_putc(b, '}');
}

int kiln__cc_write(kiln__cc_t *cc, char **out, size_t *len, kiln_error_t *err)
{
    kiln__buf_t b = KILN_BUF_INIT;
    int rc = sort_config(cc, err);

    if (rc < 0) {
        return rc;
    }
    kiln__buf_putc(&b, '{');
    if (cc->n_layers > 0) {
        put_layers(&b, cc);
    }
    if (cc->n_records > 0) {
        kiln__buf_puts(&b, cc->n_layers > 0 ? ",\"records\":[" : "\"records\":[");
        for (size_t i = 0; i < cc->n_records; i++) {
            if (i > 0) {
                kiln__buf_putc(&b, ',');
            }
            put_record(&b, &cc->records[i]);
        }
        kiln__buf_putc(&b, ']');
    }
    kiln__buf_putc(&b, '}');
    kiln__buf_putc(&b, '\0');
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = (char *)b.data;
    *len = b.len - 1;
    return 0;
}
