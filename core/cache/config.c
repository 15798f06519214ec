/*
 * The cache config model: parsing, checking and building it. Writing in
 * BuildKit's order is in config_write.c, merging in merge.c.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/config.h"

static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

static void layer_clear(kiln__cc_layer_t *l)
{
    free(l->annotations);
    free(l->media_type);
}

static void record_clear(kiln__cc_record_t *r)
{
    free(r->digest);
    free(r->description);
    free(r->results);
    for (size_t i = 0; i < r->n_chains; i++) {
        free(r->chains[i].layers);
    }
    free(r->chains);
    for (size_t i = 0; i < r->n_inputs; i++) {
        for (size_t k = 0; k < r->inputs[i].n; k++) {
            free(r->inputs[i].links[k].selector);
        }
        free(r->inputs[i].links);
    }
    free(r->inputs);
}

int kiln__cc_new(kiln__cc_t **out, kiln_error_t *err)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : oom(err);
}

void kiln__cc_free(kiln__cc_t *cc)
{
    if (cc == NULL) {
        return;
    }
    for (size_t i = 0; i < cc->n_layers; i++) {
        layer_clear(&cc->layers[i]);
    }
    for (size_t i = 0; i < cc->n_records; i++) {
        record_clear(&cc->records[i]);
    }
    free(cc->layers);
    free(cc->records);
    free(cc);
}

/* Grows an array of `size`-byte items to hold one more. */
static bool grow(void **items, size_t n, size_t *cap, size_t size)
{
    void *p;
    size_t c;

    if (n < *cap) {
        return true;
    }
    c = *cap ? *cap * 2 : 16;
    p = realloc(*items, c * size);
    if (p == NULL) {
        return false;
    }
    *items = p;
    *cap = c;
    return true;
}

int kiln__cc_add_layer(kiln__cc_t *cc, const char *blob, int64_t parent,
                       size_t *index, kiln_error_t *err)
{
    kiln__cc_layer_t *l;

    for (size_t i = 0; i < cc->n_layers; i++) {
        if (cc->layers[i].parent == parent &&
            strcmp(cc->layers[i].blob, blob) == 0) {
            *index = i;
            return 0;
        }
    }
    if (!grow((void **)&cc->layers, cc->n_layers, &cc->cap_layers,
              sizeof(*cc->layers))) {
        return oom(err);
    }
    l = &cc->layers[cc->n_layers];
    memset(l, 0, sizeof(*l));
    snprintf(l->blob, sizeof(l->blob), "%s", blob);
    l->parent = parent;
    l->size = -1;
    *index = cc->n_layers++;
    return 0;
}

int kiln__cc_add_record(kiln__cc_t *cc, const char *digest, size_t n_inputs,
                        size_t *index, kiln_error_t *err)
{
    kiln__cc_record_t *r;

    if (!grow((void **)&cc->records, cc->n_records, &cc->cap_records,
              sizeof(*cc->records))) {
        return oom(err);
    }
    r = &cc->records[cc->n_records];
    memset(r, 0, sizeof(*r));
    r->digest = strdup(digest);
    r->inputs = n_inputs ? calloc(n_inputs, sizeof(*r->inputs)) : NULL;
    if (r->digest == NULL || (n_inputs && r->inputs == NULL)) {
        free(r->digest);
        free(r->inputs);
        return oom(err);
    }
    r->n_inputs = n_inputs;
    *index = cc->n_records++;
    return 0;
}

int kiln__cc_add_link(kiln__cc_t *cc, size_t rec, size_t i, size_t link,
                      const char *selector, kiln_error_t *err)
{
    kiln__cc_input_t *in = &cc->records[rec].inputs[i];
    kiln__cc_link_t *l;

    for (size_t k = 0; k < in->n; k++) {
        if (in->links[k].link == (int64_t)link &&
            strcmp(in->links[k].selector, selector) == 0) {
            return 0;
        }
    }
    l = realloc(in->links, (in->n + 1) * sizeof(*l));
    if (l == NULL) {
        return oom(err);
    }
    in->links = l;
    l[in->n].link = (int64_t)link;
    l[in->n].selector = strdup(selector);
    if (l[in->n].selector == NULL) {
        return oom(err);
    }
    in->n++;
    return 0;
}

int kiln__cc_describe(kiln__cc_t *cc, size_t rec, const char *description,
                      kiln_error_t *err)
{
    kiln__cc_record_t *r = &cc->records[rec];

    if (r->description != NULL || description == NULL ||
        description[0] == '\0') {
        return 0;
    }
    r->description = strdup(description);
    return r->description != NULL ? 0 : oom(err);
}

int kiln__cc_add_result(kiln__cc_t *cc, size_t rec, size_t layer,
                        const char *created, kiln_error_t *err)
{
    kiln__cc_record_t *r = &cc->records[rec];
    kiln__cc_result_t *res;

    for (size_t k = 0; k < r->n_results; k++) {
        if (r->results[k].layer == (int64_t)layer) {
            return 0;
        }
    }
    res = realloc(r->results, (r->n_results + 1) * sizeof(*res));
    if (res == NULL) {
        return oom(err);
    }
    r->results = res;
    res[r->n_results].layer = (int64_t)layer;
    snprintf(res[r->n_results].created, KILN_CC_TIME_MAX, "%s", created);
    r->n_results++;
    return 0;
}

int kiln__cc_layer_chain(const kiln__cc_t *cc, int64_t top, int64_t **out,
                         size_t *n, kiln_error_t *err)
{
    size_t depth = 0;
    int64_t *v;

    /* Parsing ruled out loops, so the walk ends within n_layers steps. */
    for (int64_t l = top; l >= 0 && depth <= cc->n_layers;
         l = cc->layers[l].parent) {
        depth++;
    }
    if (depth > cc->n_layers) {
        return kiln__fail(err, KILN_EBADMSG, "layer %lld: parent loop",
                          (long long)top);
    }
    v = malloc((depth ? depth : 1) * sizeof(*v));
    if (v == NULL) {
        return oom(err);
    }
    *n = depth;
    for (int64_t l = top; l >= 0; l = cc->layers[l].parent) {
        v[--depth] = l;
    }
    *out = v;
    return 0;
}

void kiln__cc_time_now(char out[KILN_CC_TIME_MAX])
{
    int64_t ns = kiln__now_ns();
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    char base[32];

    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, KILN_CC_TIME_MAX, "%s.%09lldZ", base,
             (long long)(ns % 1000000000));
}

/* ---- parsing ------------------------------------------------------------ */

struct parse {
    kiln__cc_t *cc;
    kiln_error_t *err;
    char where[128];
};

static int bad(struct parse *p, const char *fmt, const char *what)
{
    return kiln__fail(p->err, KILN_EBADMSG, "cache config: %s: %s", p->where,
                      what != NULL ? what : fmt);
}

/* An integer field (absent: `dflt`). */
static int get_int(struct parse *p, json_t *obj, const char *key,
                   int64_t dflt, int64_t *out)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v)) {
        size_t n = strlen(p->where);
        snprintf(p->where + n, sizeof(p->where) - n, ".%s", key);
        return bad(p, NULL, "not an integer");
    }
    *out = json_integer_value(v);
    return 0;
}

/* An optional string field into buf ("" when absent). */
static int get_str(struct parse *p, json_t *obj, const char *key, char *buf,
                   size_t size)
{
    json_t *v = json_object_get(obj, key);

    buf[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= size) {
        size_t n = strlen(p->where);
        snprintf(p->where + n, sizeof(p->where) - n, ".%s", key);
        return bad(p, NULL, json_is_string(v) ? "too long" : "not a string");
    }
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static bool digest_ok(const char *s)
{
    /* Records of session-local sources are "random:<hex>". */
    if (strncmp(s, "random:", 7) == 0 && strlen(s) == 7 + 64) {
        return strspn(s + 7, "0123456789abcdef") == 64;
    }
    return kiln__digest_valid(s);
}

static int parse_layers(struct parse *p, json_t *arr)
{
    size_t i;
    json_t *l;

    if (arr != NULL && !json_is_array(arr)) {
        snprintf(p->where, sizeof(p->where), "layers");
        return bad(p, NULL, "not an array");
    }
    json_array_foreach(arr, i, l)
    {
        size_t idx;
        int64_t parent;
        char blob[KILN_DIGEST_STRLEN + 2];
        json_t *ann;
        int rc;

        snprintf(p->where, sizeof(p->where), "layers[%zu]", i);
        if (!json_is_object(l)) {
            return bad(p, NULL, "not an object");
        }
        rc = get_str(p, l, "blob", blob, sizeof(blob));
        if (rc == 0 && !kiln__digest_valid(blob)) {
            rc = bad(p, NULL, "blob is not a sha256 digest");
        }
        if (rc == 0) {
            rc = get_int(p, l, "parent", 0, &parent);
        }
        if (rc == 0 && (parent < -1 || parent >= (int64_t)json_array_size(arr) ||
                        parent == (int64_t)i)) {
            rc = bad(p, NULL, "parent is out of range");
        }
        if (rc < 0) {
            return rc;
        }
        /* Appended as is: duplicates are kept so indexes stay valid. */
        if (!grow((void **)&p->cc->layers, p->cc->n_layers,
                  &p->cc->cap_layers, sizeof(*p->cc->layers))) {
            return oom(p->err);
        }
        idx = p->cc->n_layers++;
        memset(&p->cc->layers[idx], 0, sizeof(p->cc->layers[idx]));
        memcpy(p->cc->layers[idx].blob, blob, sizeof(p->cc->layers[idx].blob));
        p->cc->layers[idx].parent = parent;
        p->cc->layers[idx].size = -1;
        ann = json_object_get(l, "annotations");
        if (json_is_object(ann) && json_object_size(ann) > 0) {
            p->cc->layers[idx].annotations =
                json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
            if (p->cc->layers[idx].annotations == NULL) {
                return oom(p->err);
            }
        }
    }
    /* Parent loops: each walk must end within n_layers steps. */
    for (size_t k = 0; k < p->cc->n_layers; k++) {
        size_t steps = 0;
        for (int64_t x = (int64_t)k; x >= 0 && steps <= p->cc->n_layers;
             x = p->cc->layers[x].parent) {
            steps++;
        }
        if (steps > p->cc->n_layers) {
            snprintf(p->where, sizeof(p->where), "layers[%zu]", k);
            return bad(p, NULL, "its parents form a loop");
        }
    }
    return 0;
}

static int parse_results(struct parse *p, kiln__cc_record_t *r, json_t *arr,
                         size_t ri)
{
    size_t i;
    json_t *x;

    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr)) {
        snprintf(p->where, sizeof(p->where), "records[%zu].layers", ri);
        return bad(p, NULL, "not an array");
    }
    r->results = calloc(json_array_size(arr) + 1, sizeof(*r->results));
    if (r->results == NULL) {
        return oom(p->err);
    }
    json_array_foreach(arr, i, x)
    {
        kiln__cc_result_t *res = &r->results[i];
        int rc;

        snprintf(p->where, sizeof(p->where), "records[%zu].layers[%zu]", ri,
                 i);
        rc = json_is_object(x) ? get_int(p, x, "layer", -2, &res->layer)
                               : bad(p, NULL, "not an object");
        if (rc == 0 && (res->layer < 0 ||
                        res->layer >= (int64_t)p->cc->n_layers)) {
            rc = bad(p, NULL, "layer is out of range");
        }
        if (rc == 0) {
            rc = get_str(p, x, "createdAt", res->created, KILN_CC_TIME_MAX);
        }
        if (rc < 0) {
            return rc;
        }
        r->n_results++;
    }
    return 0;
}

static int parse_chains(struct parse *p, kiln__cc_record_t *r, json_t *arr,
                        size_t ri)
{
    size_t i;
    json_t *x;

    if (arr == NULL) {
        return 0;
    }
    snprintf(p->where, sizeof(p->where), "records[%zu].chains", ri);
    if (!json_is_array(arr)) {
        return bad(p, NULL, "not an array");
    }
    r->chains = calloc(json_array_size(arr) + 1, sizeof(*r->chains));
    if (r->chains == NULL) {
        return oom(p->err);
    }
    json_array_foreach(arr, i, x)
    {
        kiln__cc_chain_t *c = &r->chains[i];
        json_t *ls = json_object_get(x, "layers"), *l;
        size_t k;

        snprintf(p->where, sizeof(p->where), "records[%zu].chains[%zu]", ri,
                 i);
        if (!json_is_object(x) || !json_is_array(ls)) {
            return bad(p, NULL, "not an object with a layers array");
        }
        r->n_chains++;
        c->layers = calloc(json_array_size(ls) + 1, sizeof(*c->layers));
        if (c->layers == NULL) {
            return oom(p->err);
        }
        json_array_foreach(ls, k, l)
        {
            if (!json_is_integer(l) || json_integer_value(l) < 0 ||
                json_integer_value(l) >= (json_int_t)p->cc->n_layers) {
                return bad(p, NULL, "a layer index is out of range");
            }
            c->layers[c->n++] = json_integer_value(l);
        }
        if (get_str(p, x, "createdAt", c->created, KILN_CC_TIME_MAX) < 0) {
            return p->err != NULL ? p->err->code : KILN_EBADMSG;
        }
    }
    return 0;
}

static int parse_inputs(struct parse *p, kiln__cc_record_t *r, json_t *arr,
                        size_t ri, size_t n_records)
{
    size_t i;
    json_t *alts;

    if (arr == NULL) {
        return 0;
    }
    if (!json_is_array(arr)) {
        snprintf(p->where, sizeof(p->where), "records[%zu].inputs", ri);
        return bad(p, NULL, "not an array");
    }
    r->inputs = calloc(json_array_size(arr) + 1, sizeof(*r->inputs));
    if (r->inputs == NULL) {
        return oom(p->err);
    }
    json_array_foreach(arr, i, alts)
    {
        kiln__cc_input_t *in = &r->inputs[i];
        size_t k;
        json_t *x;

        snprintf(p->where, sizeof(p->where), "records[%zu].inputs[%zu]", ri,
                 i);
        r->n_inputs++;
        if (!json_is_array(alts) || json_array_size(alts) == 0) {
            return bad(p, NULL, "not a non-empty array");
        }
        in->links = calloc(json_array_size(alts), sizeof(*in->links));
        if (in->links == NULL) {
            return oom(p->err);
        }
        json_array_foreach(alts, k, x)
        {
            kiln__cc_link_t *l = &in->links[k];
            char sel[KILN_DIGEST_STRLEN + 2];
            int rc;

            snprintf(p->where, sizeof(p->where),
                     "records[%zu].inputs[%zu][%zu]", ri, i, k);
            rc = json_is_object(x) ? get_int(p, x, "link", -1, &l->link)
                                   : bad(p, NULL, "not an object");
            if (rc == 0 && (l->link < 0 || l->link >= (int64_t)n_records)) {
                char msg[96];
                snprintf(msg, sizeof(msg),
                         "link %lld is out of range (%zu records)",
                         (long long)l->link, n_records);
                rc = bad(p, NULL, msg);
            }
            if (rc == 0) {
                rc = get_str(p, x, "selector", sel, sizeof(sel));
            }
            if (rc < 0) {
                return rc;
            }
            if ((l->selector = strdup(sel)) == NULL) {
                return oom(p->err);
            }
            in->n++;
        }
    }
    return 0;
}

/* Link loops: an iterative depth-first walk with colours. */
static int check_links(struct parse *p)
{
    kiln__cc_t *cc = p->cc;
    uint8_t *colour = calloc(cc->n_records + 1, 1);
    size_t *stack = malloc((cc->n_records + 1) * sizeof(*stack));
    size_t *next = calloc(cc->n_records + 1, sizeof(*next));
    int rc = colour && stack && next ? 0 : oom(p->err);

    for (size_t root = 0; rc == 0 && root < cc->n_records; root++) {
        size_t sp = 0;

        if (colour[root]) {
            continue;
        }
        stack[sp++] = root;
        colour[root] = 1;
        while (sp > 0 && rc == 0) {
            size_t r = stack[sp - 1], total = 0, pos = next[r];
            const kiln__cc_record_t *rec = &cc->records[r];
            int64_t child = -1;

            for (size_t i = 0; i < rec->n_inputs && child < 0; i++) {
                if (pos < total + rec->inputs[i].n) {
                    child = rec->inputs[i].links[pos - total].link;
                }
                total += rec->inputs[i].n;
            }
            if (child < 0) {
                colour[r] = 2;
                sp--;
                continue;
            }
            next[r]++;
            if (colour[child] == 1) {
                snprintf(p->where, sizeof(p->where), "records[%zu]", r);
                rc = bad(p, NULL, "its input links form a loop");
            } else if (colour[child] == 0) {
                colour[child] = 1;
                stack[sp++] = (size_t)child;
            }
        }
    }
    free(colour);
    free(stack);
    free(next);
    return rc;
}

static int parse_records(struct parse *p, json_t *arr)
{
    size_t i, n = json_array_size(arr);
    json_t *x;

    if (arr != NULL && !json_is_array(arr)) {
        snprintf(p->where, sizeof(p->where), "records");
        return bad(p, NULL, "not an array");
    }
    p->cc->records = calloc(n + 1, sizeof(*p->cc->records));
    if (p->cc->records == NULL) {
        return oom(p->err);
    }
    p->cc->cap_records = n + 1;
    json_array_foreach(arr, i, x)
    {
        kiln__cc_record_t *r = &p->cc->records[i];
        char digest[KILN_DIGEST_STRLEN + 2];
        int rc;

        snprintf(p->where, sizeof(p->where), "records[%zu]", i);
        if (!json_is_object(x)) {
            return bad(p, NULL, "not an object");
        }
        p->cc->n_records++;
        rc = get_str(p, x, "digest", digest, sizeof(digest));
        if (rc == 0 && !digest_ok(digest)) {
            rc = bad(p, NULL, "digest is not a sha256 digest");
        }
        if (rc == 0 && (r->digest = strdup(digest)) == NULL) {
            rc = oom(p->err);
        }
        if (rc == 0) {
            rc = parse_results(p, r, json_object_get(x, "layers"), i);
        }
        if (rc == 0) {
            rc = parse_chains(p, r, json_object_get(x, "chains"), i);
        }
        if (rc == 0) {
            rc = parse_inputs(p, r, json_object_get(x, "inputs"), i, n);
        }
        if (rc == 0 && json_is_string(json_object_get(x, "kiln.description")) &&
            (r->description = strdup(json_string_value(
                 json_object_get(x, "kiln.description")))) == NULL) {
            rc = oom(p->err);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return check_links(p);
}

int kiln__cc_parse(const void *data, size_t len, kiln__cc_t **out,
                   kiln_error_t *err)
{
    struct parse p = {.err = err};
    json_error_t je;
    json_t *root;
    int rc;

    *out = NULL;
    if (len > KILN_CC_MAX_BYTES) {
        return kiln__fail(err, KILN_E2BIG,
                          "cache config: %zu bytes, more than the %u allowed",
                          len, KILN_CC_MAX_BYTES);
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        return kiln__fail(err, KILN_EBADMSG, "cache config: %s (at byte %d)",
                          je.text, je.position);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return kiln__fail(err, KILN_EBADMSG,
                          "cache config: not a JSON object");
    }
    rc = kiln__cc_new(&p.cc, err);
    if (rc == 0) {
        rc = parse_layers(&p, json_object_get(root, "layers"));
    }
    if (rc == 0) {
        rc = parse_records(&p, json_object_get(root, "records"));
    }
    json_decref(root);
    if (rc < 0) {
        kiln__cc_free(p.cc);
        return rc;
    }
    *out = p.cc;
    return 0;
}
