/*
 * kiln_source_resolve(): one source's resolve() outside any build, for
 * clients that need what a resolve learns (an image's digest and config,
 * as BuildKit's ResolveImageConfig) before they write a definition. The
 * plugin runs on the caller's thread with the engine's store, as it would
 * in a solve; its metadata comes back with the pin.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "plugin/registry.h"

void kiln_resolved_free(kiln_resolved_t *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n_meta; i++) {
        free(r->keys[i]);
        free(r->values[i]);
    }
    free(r->keys);
    free(r->values);
    free(r->lens);
    free(r->pin);
    free(r);
}

/* "os/arch[/variant]" into three strings of buf (NULs in place of '/'). */
static int split_platform(const char *platform, char *buf, size_t size,
                          const char **os, const char **arch,
                          const char **variant, kiln_error_t *err)
{
    char *slash;

    *os = *arch = *variant = NULL;
    if (platform == NULL) {
        return 0;
    }
    if (strlen(platform) + 1 > size) {
        return kiln__fail(err, KILN_EINVAL, "platform '%.64s...': too long",
                          platform);
    }
    strcpy(buf, platform);
    slash = strchr(buf, '/');
    if (slash == NULL || slash == buf || slash[1] == '\0') {
        return kiln__fail(err, KILN_EINVAL,
                          "platform '%s': want OS/ARCH[/VARIANT], like "
                          "linux/arm64",
                          platform);
    }
    *slash = '\0';
    *os = buf;
    *arch = slash + 1;
    slash = strchr(slash + 1, '/');
    if (slash != NULL) {
        *slash = '\0';
        *variant = slash + 1;
        if (**variant == '\0' || strchr(*variant, '/') != NULL) {
            return kiln__fail(err, KILN_EINVAL,
                              "platform '%s': want OS/ARCH[/VARIANT], like "
                              "linux/arm64",
                              platform);
        }
    }
    return 0;
}

static int copy_result(kiln_job_t *job, kiln_resolved_t **out,
                       kiln_error_t *err)
{
    size_t n = kiln__job_meta_count(job);
    kiln_resolved_t *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->pin = strdup(kiln__job_pin(job))) == NULL ||
        (r->keys = calloc(n + 1, sizeof(*r->keys))) == NULL ||
        (r->values = calloc(n + 1, sizeof(*r->values))) == NULL ||
        (r->lens = calloc(n + 1, sizeof(*r->lens))) == NULL) {
        kiln_resolved_free(r);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t len;

        kiln__job_meta(job, i, &k, &v, &len);
        r->keys[i] = strdup(k);
        r->values[i] = malloc(len + 1);
        r->n_meta++;
        if (r->keys[i] == NULL || r->values[i] == NULL) {
            kiln_resolved_free(r);
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        memcpy(r->values[i], v, len);
        r->values[i][len] = '\0';
        r->lens[i] = len;
    }
    *out = r;
    return 0;
}

int kiln_source_resolve(kiln_engine_t *e, const char *identifier,
                        const char *const *attrs, const char *platform,
                        const kiln_solve_options_t *context,
                        kiln_resolved_t **out, kiln_error_t *err)
{
    kiln__job_ctx_t ctx = {0};
    const kiln__plugin_t *p = NULL;
    kiln_source_t src = {0};
    kiln_attrs_t *map = NULL;
    kiln_job_t *job = NULL;
    char plat[256], *scheme = NULL;
    size_t len = 0;
    int rc = 0;

    *out = NULL;
    if (e == NULL || identifier == NULL) {
        return kiln__fail(err, KILN_EINVAL, "no source to resolve");
    }
    if (!kiln__source_scheme(identifier, &len)) {
        return kiln__fail(err, KILN_EINVAL,
                          "source identifier '%s' has no scheme "
                          "(scheme://...)",
                          identifier);
    }
    p = kiln__registry_find(e->plugins, identifier, len);
    if (p == NULL) {
        char *names = kiln__registry_names(e->plugins);
        rc = kiln__fail(err, KILN_ENOENT,
                        "no source plugin handles scheme '%.*s' (loaded: %s)",
                        (int)len, identifier, names != NULL ? names : "?");
        free(names);
        return rc;
    }
    scheme = strndup(identifier, len);
    map = kiln__attrs_new();
    if (scheme == NULL || map == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (const char *const *a = attrs; rc == 0 && a != NULL && *a != NULL;
         a++) {
        const char *eq = strchr(*a, '=');
        char *key;

        if (eq == NULL || eq == *a) {
            rc = kiln__fail(err, KILN_EINVAL, "attr '%s': want KEY=VALUE", *a);
            break;
        }
        key = strndup(*a, (size_t)(eq - *a));
        rc = key != NULL && kiln__attrs_set(map, key, eq + 1) == 0
                 ? 0
                 : kiln__fail(err, KILN_ENOMEM, "out of memory");
        free(key);
    }
    if (rc == 0) {
        rc = split_platform(platform, plat, sizeof(plat), &src.os, &src.arch,
                            &src.variant, err);
    }
    ctx.store = e->store;
    ctx.opts = context;
    if (rc == 0 && (job = kiln__job_new(p, &ctx)) == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        src.size = sizeof(src);
        src.identifier = identifier;
        src.scheme = scheme;
        src.locator = identifier + len + 3;
        src.attrs = map;
        rc = p->desc->resolve(p->state, job, &src);
        if (rc < 0) {
            rc = kiln__fail(err, rc, "%s", kiln__job_error(job, rc));
        } else if (kiln__job_pin(job) == NULL) {
            rc = kiln__fail(err, KILN_EINVAL,
                            "plugin '%s' resolved %s but set no pin",
                            p->desc->name, identifier);
        }
    }
    if (rc == 0) {
        rc = copy_result(job, out, err);
    }
    kiln__job_free(job);
    kiln__attrs_free(map);
    free(scheme);
    return rc;
}
