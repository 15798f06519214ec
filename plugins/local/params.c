/*
 * translate(): `kiln source translate local name=context include=*.go ...`
 * into the identifier and attrs Go's llb.Local(name, opts...) writes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

#define ATTR_INCLUDE  "local.includepattern" /* singular, as BuildKit */
#define ATTR_EXCLUDE  "local.excludepatterns"
#define ATTR_FOLLOW   "local.followpaths"
#define ATTR_SHAREDKH "local.sharedkeyhint"
#define ATTR_UNIQUE   "local.unique"
#define ATTR_DIFFER   "local.differ"

static const char *const known_keys[] = {
    "name",          "include", "exclude", "followpaths",
    "sharedkeyhint", "unique",  "differ",  NULL,
};
#define KNOWN_LIST                                                             \
    "name, include, exclude, followpaths, sharedkeyhint, unique, differ"

int lc_strv_push(lc_strv_t *s, const char *str, size_t len)
{
    char *c;

    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **v = realloc(s->v, cap * sizeof(*v));

        if (v == NULL) {
            return -ENOMEM;
        }
        s->v = v;
        s->cap = cap;
    }
    c = malloc(len + 1);
    if (c == NULL) {
        return -ENOMEM;
    }
    memcpy(c, str, len);
    c[len] = '\0';
    s->v[s->n++] = c;
    return 0;
}

void lc_strv_free(lc_strv_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i]);
    }
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

void lc_spec_free(lc_spec_t *spec)
{
    lc_strv_free(&spec->include);
    lc_strv_free(&spec->exclude);
    lc_strv_free(&spec->follow);
}

/* A list parameter: a JSON array of strings, or comma-separated items
 * (empty items dropped). */
static int parse_list(const char *value, lc_strv_t *out)
{
    const char *s = value;

    if (*s == '[') {
        return lc_json_parse(s, out);
    }
    while (*s != '\0') {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        int rc = len > 0 ? lc_strv_push(out, s, len) : 0;

        if (rc < 0) {
            return rc;
        }
        s += len + (e != NULL);
    }
    return 0;
}

/* Sets `key` to the JSON of the list parameter `param`, unless empty. */
static int set_list(const kiln_host_t *h, kiln_job_t *job,
                    const kiln_attrs_t *params, const char *param,
                    kiln_attrs_t *attrs, const char *key)
{
    const char *value = h->attr_get(params, param);
    lc_strv_t v = {NULL, 0, 0};
    char *json = NULL;
    int rc;

    if (value == NULL) {
        return 0;
    }
    rc = parse_list(value, &v);
    if (rc == -EINVAL) {
        rc = h->fail(job, rc,
                     "local: parameter '%s': not a JSON array of strings: %s",
                     param, value);
    } else if (rc == 0 && v.n > 0) {
        rc = lc_json_marshal(&v, &json);
        rc = rc == 0 ? h->attr_set(attrs, key, json) : rc;
    }
    if (rc == -ENOMEM) {
        rc = h->fail(job, rc, "local: out of memory");
    }
    free(json);
    lc_strv_free(&v);
    return rc;
}

static int check_keys(const kiln_host_t *h, kiln_job_t *job,
                      const kiln_attrs_t *params)
{
    size_t n = h->attr_count(params);

    for (size_t i = 0; i < n; i++) {
        const char *k = h->attr_key(params, i);
        size_t j = 0;

        while (known_keys[j] != NULL && strcmp(known_keys[j], k) != 0) {
            j++;
        }
        if (known_keys[j] == NULL) {
            return h->fail(
                job, -EINVAL,
                "local: unknown parameter '%s' (known: " KNOWN_LIST ")", k);
        }
    }
    return 0;
}

static int set_plain(const kiln_host_t *h, kiln_job_t *job,
                     const kiln_attrs_t *params, const char *param,
                     kiln_attrs_t *attrs, const char *key)
{
    const char *value = h->attr_get(params, param);

    /* Go's options write nothing for an empty string. */
    if (value == NULL || *value == '\0') {
        return 0;
    }
    if (h->attr_set(attrs, key, value) < 0) {
        return h->fail(job, -ENOMEM, "local: out of memory");
    }
    return 0;
}

int lc_translate(void *state, kiln_job_t *job, const char *scheme,
                 const kiln_attrs_t *params, char *ident, size_t ident_size,
                 kiln_attrs_t *attrs)
{
    const kiln_host_t *h = lc_state_host(state);
    const char *name = h->attr_get(params, "name");
    const char *differ = h->attr_get(params, "differ");
    int rc = check_keys(h, job, params);

    if (rc < 0) {
        return rc;
    }
    if (name == NULL || *name == '\0') {
        return h->fail(job, -EINVAL,
                       "local: parameter 'name' is required (the local "
                       "directory's name, as in kiln build --local NAME=DIR)");
    }
    if (differ != NULL && *differ != '\0' && strcmp(differ, "none") != 0 &&
        strcmp(differ, "metadata") != 0) {
        return h->fail(job, -EINVAL,
                       "local: parameter 'differ': '%s' is not none or "
                       "metadata",
                       differ);
    }
    if ((size_t)snprintf(ident, ident_size, "local://%s", name) >= ident_size) {
        return h->fail(job, -ENAMETOOLONG,
                       "local: identifier local://%s is too long", name);
    }
    rc = set_list(h, job, params, "include", attrs, ATTR_INCLUDE);
    if (rc == 0) {
        rc = set_list(h, job, params, "exclude", attrs, ATTR_EXCLUDE);
    }
    if (rc == 0) {
        rc = set_list(h, job, params, "followpaths", attrs, ATTR_FOLLOW);
    }
    if (rc == 0) {
        rc = set_plain(h, job, params, "sharedkeyhint", attrs, ATTR_SHAREDKH);
    }
    if (rc == 0) {
        rc = set_plain(h, job, params, "unique", attrs, ATTR_UNIQUE);
    }
    if (rc == 0) {
        rc = set_plain(h, job, params, "differ", attrs, ATTR_DIFFER);
    }
    (void)scheme;
    return rc;
}

static int get_list(const lc_ctx_t *c, const kiln_attrs_t *attrs,
                    const char *key, lc_strv_t *out)
{
    const char *value = c->host->attr_get(attrs, key);
    int rc = value != NULL && *value != '\0' ? lc_json_parse(value, out) : 0;

    if (rc == -EINVAL) {
        return c->host->fail(c->job, rc,
                             "local source '%s': attr %s is not a JSON array "
                             "of strings: %s",
                             c->name, key, value);
    }
    return rc == -ENOMEM ? lc_oom(c) : rc;
}

int lc_spec_parse(const lc_ctx_t *c, const kiln_attrs_t *attrs, lc_spec_t *spec)
{
    int rc;

    memset(spec, 0, sizeof(*spec));
    rc = get_list(c, attrs, ATTR_INCLUDE, &spec->include);
    if (rc == 0) {
        rc = get_list(c, attrs, ATTR_EXCLUDE, &spec->exclude);
    }
    if (rc == 0) {
        rc = get_list(c, attrs, ATTR_FOLLOW, &spec->follow);
    }
    if (rc < 0) {
        lc_spec_free(spec);
    }
    return rc;
}
