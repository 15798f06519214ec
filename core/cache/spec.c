/* --export-cache / --import-cache specs, BuildKit's CSV of key=value. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

void kiln__cache_spec_clear(kiln__cache_spec_t *sp)
{
    free(sp->dir);
    free(sp->tag);
    free(sp->digest);
    free(sp->ref);
    kiln__oci_ref_clear(&sp->reg);
    memset(sp, 0, sizeof(*sp));
}

static int bad(kiln_error_t *err, const char *what, const char *spec,
               const char *fmt, ...) KILN_PRINTF(4, 5);

static int bad(kiln_error_t *err, const char *what, const char *spec,
               const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kiln__fail(err, KILN_EINVAL, "%s '%s': %s", what, spec, msg);
}

static int parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
    } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
    } else {
        return -1;
    }
    return 0;
}

static int parse_num(const char *v, long long lo, long long hi,
                     long long *out)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
        return -1;
    }
    *out = n;
    return 0;
}

/* "90", "90s", "30m", "12h", "7d" -> seconds. */
static int parse_age(const char *v, int64_t *out)
{
    size_t n = strlen(v);
    long long x, mul = 1;
    char num[32];

    if (n == 0 || n >= sizeof(num)) {
        return -1;
    }
    memcpy(num, v, n + 1);
    switch (num[n - 1]) {
    case 's': mul = 1; num[n - 1] = '\0'; break;
    case 'm': mul = 60; num[n - 1] = '\0'; break;
    case 'h': mul = 3600; num[n - 1] = '\0'; break;
    case 'd': mul = 86400; num[n - 1] = '\0'; break;
    default: break;
    }
    if (parse_num(num, 1, 1000000000LL, &x) < 0) {
        return -1;
    }
    *out = x * mul;
    return 0;
}

static int set_str(char **dst, const char *v, size_t n, kiln_error_t *err)
{
    free(*dst);
    *dst = strndup(v, n);
    return *dst != NULL ? 0 : kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* One key=value of the spec. */
static int option(kiln__cache_spec_t *sp, const char *k, size_t kn,
                  const char *v, const char *spec, const char *what,
                  kiln_error_t *err)
{
    long long n;

#define IS(name) (kn == strlen(name) && strncmp(k, name, kn) == 0)
    if (IS("type")) {
        if (strcmp(v, "local") == 0) {
            sp->type = KILN__CACHE_LOCAL;
        } else if (strcmp(v, "registry") == 0) {
            sp->type = KILN__CACHE_REGISTRY;
        } else {
            return bad(err, what, spec,
                       "type '%s' is not supported (local or registry)", v);
        }
    } else if ((IS("dest") && sp->export) || (IS("src") && !sp->export)) {
        return set_str(&sp->dir, v, strlen(v), err);
    } else if (IS("tag")) {
        return set_str(&sp->tag, v, strlen(v), err);
    } else if (IS("digest") && !sp->export) {
        if (!kiln__digest_valid(v)) {
            return bad(err, what, spec, "digest '%s' is not sha256:<hex>", v);
        }
        return set_str(&sp->digest, v, strlen(v), err);
    } else if (IS("ref")) {
        return set_str(&sp->ref, v, strlen(v), err);
    } else if (IS("registry.insecure")) {
        if (parse_bool(v, &sp->insecure) < 0) {
            return bad(err, what, spec, "registry.insecure '%s' is not "
                                        "true or false", v);
        }
    } else if (IS("mode") && sp->export) {
        if (strcmp(v, "min") != 0 && strcmp(v, "max") != 0) {
            return bad(err, what, spec, "mode '%s' is not min or max", v);
        }
        sp->max = strcmp(v, "max") == 0;
    } else if (IS("compression") && sp->export) {
        if (strcmp(v, "gzip") == 0) {
            sp->comp = KILN_OCI_COMP_GZIP;
        } else if (strcmp(v, "zstd") == 0) {
            sp->comp = KILN_OCI_COMP_ZSTD;
        } else if (strcmp(v, "uncompressed") == 0) {
            sp->comp = KILN_OCI_COMP_NONE;
        } else {
            return bad(err, what, spec,
                       "compression '%s' is not gzip, zstd or uncompressed",
                       v);
        }
    } else if (IS("compression-level") && sp->export) {
        if (parse_num(v, 0, 22, &n) < 0) {
            return bad(err, what, spec,
                       "compression-level '%s' is not a number from 0 to 22",
                       v);
        }
        sp->level = (int)n;
    } else if (IS("ignore-error")) {
        if (parse_bool(v, &sp->ignore_error) < 0) {
            return bad(err, what, spec, "ignore-error '%s' is not true or "
                                        "false", v);
        }
    } else if (IS("oci-mediatypes") && sp->export) {
        if (parse_bool(v, &sp->oci) < 0) {
            return bad(err, what, spec, "oci-mediatypes '%s' is not true or "
                                        "false", v);
        }
    } else if (IS("image-manifest") && sp->export) {
        if (parse_bool(v, &sp->image_manifest) < 0) {
            return bad(err, what, spec, "image-manifest '%s' is not true or "
                                        "false", v);
        }
    } else if (IS("max-records") && sp->export) {
        if (parse_num(v, 1, 10000000, &n) < 0) {
            return bad(err, what, spec, "max-records '%s' is not a number "
                                        "from 1 up", v);
        }
        sp->max_records = (size_t)n;
    } else if (IS("max-age") && sp->export) {
        if (parse_age(v, &sp->max_age_s) < 0) {
            return bad(err, what, spec, "max-age '%s' is not a duration "
                                        "(90s, 30m, 12h, 7d)", v);
        }
    } else {
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(kn < 60 ? kn : 60), k);
        return bad(err, what, spec, "unknown option '%s'", key);
    }
    return 0;
#undef IS
}

/* Checks what the type needs, and parses the ref. */
static int finish(kiln__cache_spec_t *sp, const char *spec, const char *what,
                  kiln_error_t *err)
{
    char *full = NULL;
    const char *last;
    int rc;

    if (sp->type == 0) {
        return bad(err, what, spec, "%s", "no type= (local or registry)");
    }
    if (sp->type == KILN__CACHE_LOCAL) {
        if (sp->dir == NULL || sp->dir[0] == '\0') {
            return bad(err, what, spec, "%s",
                       sp->export ? "type=local needs dest=DIR"
                                  : "type=local needs src=DIR");
        }
        return sp->tag != NULL ? 0 : set_str(&sp->tag, "latest", 6, err);
    }
    if (sp->ref == NULL || sp->ref[0] == '\0') {
        return bad(err, what, spec, "%s",
                   "type=registry needs ref=HOST/REPO[:TAG]");
    }
    /* BuildKit adds :latest to a ref without tag or digest. */
    last = strrchr(sp->ref, '/');
    if (last == NULL) {
        return bad(err, what, spec, "ref '%s' has no registry host "
                                    "(HOST/REPO[:TAG])", sp->ref);
    }
    if (strchr(last, ':') == NULL && strchr(sp->ref, '@') == NULL) {
        if (asprintf(&full, "%s:latest", sp->ref) < 0) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        free(sp->ref);
        sp->ref = full;
    }
    rc = kiln__oci_ref_parse(sp->ref, &sp->reg, err);
    if (rc == 0 && sp->reg.tag == NULL) {
        rc = kiln__fail(err, KILN_EINVAL, "a cache ref needs a tag");
    }
    return rc < 0 ? kiln__fail_prefix(err, rc, "%s '%s'", what, spec) : 0;
}

int kiln__cache_spec_parse(const char *s, bool export, kiln__cache_spec_t *out,
                           kiln_error_t *err)
{
    const char *what = export ? "--export-cache" : "--import-cache";
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->export = export;
    out->comp = KILN_OCI_COMP_GZIP;
    out->oci = true;
    out->image_manifest = true;
    for (const char *p = s; rc == 0 && *p != '\0';) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        char *v;

        if (eq == NULL || eq == p) {
            char piece[128];
            snprintf(piece, sizeof(piece), "%.*s", (int)(n < 100 ? n : 100),
                     p);
            rc = bad(err, what, s, "'%s' is not KEY=VALUE", piece);
            break;
        }
        v = strndup(eq + 1, n - (size_t)(eq + 1 - p));
        rc = v != NULL ? option(out, p, (size_t)(eq - p), v, s, what, err)
                       : kiln__fail(err, KILN_ENOMEM, "out of memory");
        free(v);
        p += n + (p[n] == ',');
    }
    if (rc == 0) {
        rc = finish(out, s, what, err);
    }
    if (rc == 0 && out->image_manifest && !out->oci) {
        rc = bad(err, what, s, "%s",
                 "image-manifest=true needs oci-mediatypes=true");
    }
    if (rc < 0) {
        kiln__cache_spec_clear(out);
    }
    return rc;
}
