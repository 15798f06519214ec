/* The public side of plugins: listing them, and translate() on demand. */
#include <stdlib.h>
#include <string.h>

#include "plugin/registry.h"

int kiln_plugins_list(const char *plugin_path, kiln_plugin_cb cb,
                      void *userdata, kiln_error_t *err)
{
    kiln__registry_t *r;
    int rc = kiln__registry_load(plugin_path, err, &r);

    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        const kiln_plugin_t *d = r->v[i].desc;
        kiln_plugin_info_t info = {d->name, d->version, d->description,
                                   r->v[i].path, d->schemes};

        rc = cb != NULL ? cb(&info, userdata) : 0;
    }
    if (rc >= 0) {
        kiln__registry_free(r);
    }
    return rc;
}

void kiln_translated_free(kiln_translated_t *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n_attrs; i++) {
        free(t->keys[i]);
        free(t->values[i]);
    }
    free(t->keys);
    free(t->values);
    free(t->identifier);
    free(t);
}

/* "KEY=VALUE" strings into a map; a pair without '=' is an error. */
static int parse_params(const char *const *params, kiln_attrs_t *a,
                        kiln_error_t *err)
{
    for (; params != NULL && *params != NULL; params++) {
        const char *eq = strchr(*params, '=');
        char *key;
        int rc;

        if (eq == NULL || eq == *params) {
            return kiln__fail(err, KILN_EINVAL,
                              "parameter '%s' is not KEY=VALUE", *params);
        }
        if ((key = strndup(*params, (size_t)(eq - *params))) == NULL) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        if (kiln__attrs_get(a, key) != NULL) {
            rc = kiln__fail(err, KILN_EINVAL,
                            "parameter '%s' is given twice (lists are "
                            "comma-separated or a JSON array)",
                            key);
        } else {
            rc = kiln__attrs_set(a, key, eq + 1) < 0
                     ? kiln__fail(err, KILN_ENOMEM, "out of memory")
                     : 0;
        }
        free(key);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static int copy_out(const char *ident, const kiln_attrs_t *a,
                    kiln_translated_t **out, kiln_error_t *err)
{
    kiln_translated_t *t = calloc(1, sizeof(*t));
    size_t n = kiln__attrs_count(a);

    if (t == NULL || (t->identifier = strdup(ident)) == NULL ||
        (t->keys = calloc(n + 1, sizeof(*t->keys))) == NULL ||
        (t->values = calloc(n + 1, sizeof(*t->values))) == NULL) {
        kiln_translated_free(t);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        t->keys[i] = strdup(kiln__attrs_key(a, i));
        t->values[i] = strdup(kiln__attrs_value(a, i));
        t->n_attrs++;
        if (t->keys[i] == NULL || t->values[i] == NULL) {
            kiln_translated_free(t);
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    *out = t;
    return 0;
}

static int translate(const kiln__registry_t *r, const char *scheme,
                     const char *const *params, kiln_translated_t **out,
                     kiln_error_t *err)
{
    const kiln__plugin_t *p = kiln__registry_find(r, scheme, strlen(scheme));
    kiln_attrs_t *in = kiln__attrs_new(), *attrs = kiln__attrs_new();
    kiln_job_t *job = NULL;
    char ident[8192];
    int rc = in != NULL && attrs != NULL
                 ? 0
                 : kiln__fail(err, KILN_ENOMEM, "out of memory");

    if (rc == 0 && p == NULL) {
        char *names = kiln__registry_names(r);
        rc = kiln__fail(err, KILN_ENOENT,
                        "no source plugin handles scheme '%s' (loaded: %s)",
                        scheme, names != NULL ? names : "?");
        free(names);
    } else if (rc == 0 && p->desc->translate == NULL) {
        rc = kiln__fail(err, KILN_ENOTSUP,
                        "plugin '%s' (%s) takes no parameters: write its "
                        "identifier and attrs by hand",
                        p->desc->name, p->path);
    }
    if (rc == 0) {
        rc = parse_params(params, in, err);
    }
    if (rc == 0 && (job = kiln__job_new(p, NULL)) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        ident[0] = '\0';
        rc = p->desc->translate(p->state, job, scheme, in, ident,
                                sizeof(ident), attrs);
        if (rc < 0) {
            rc = kiln__fail(err, rc, "%s: %s", p->desc->name,
                            kiln__job_error(job, rc));
        } else if (ident[0] == '\0' || memchr(ident, '\0', sizeof(ident)) ==
                                           NULL) {
            rc = kiln__fail(err, KILN_EINVAL,
                            "%s: translate() gave no identifier",
                            p->desc->name);
        }
    }
    if (rc == 0) {
        rc = copy_out(ident, attrs, out, err);
    }
    kiln__job_free(job);
    kiln__attrs_free(in);
    kiln__attrs_free(attrs);
    return rc;
}

int kiln_source_translate(const char *plugin_path, const char *scheme,
                          const char *const *params, kiln_translated_t **out,
                          kiln_error_t *err)
{
    kiln__registry_t *r;
    int rc;

    *out = NULL;
    if (scheme == NULL || scheme[0] == '\0') {
        return kiln__fail(err, KILN_EINVAL, "no scheme given");
    }
    rc = kiln__registry_load(plugin_path, err, &r);
    if (rc == 0) {
        rc = translate(r, scheme, params, out, err);
        kiln__registry_free(r);
    }
    return rc;
}
