/*
 * Normalized image references: "host[:port]/path[:tag][@sha256:hex]", as
 * core/llb writes them after Docker's normalization. Only that form is
 * read here; short names ("alpine") are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/registry.h"

/* The longest reference accepted, as Docker's NameTotalLengthMax. */
#define REF_MAX 255

/* [a-z0-9] */
static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [A-Za-z0-9] */
static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* host[:port] or [ipv6][:port], as Docker's domain grammar. */
static const char *check_registry(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0) {
        return "empty registry host";
    }
    if (s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++) {
            if (!((s[i] >= '0' && s[i] <= '9') ||
                  (s[i] >= 'a' && s[i] <= 'f') ||
                  (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.')) {
                return "bad character in the IPv6 registry address";
            }
        }
        if (i >= n || i == 1) {
            return "unterminated IPv6 registry address";
        }
        i++;
    } else {
        for (; i < n && s[i] != ':'; i++) {
            bool edge = i == 0 || i + 1 == n || s[i + 1] == ':' ||
                        s[i + 1] == '.' || s[i - 1] == '.';
            if (!(is_alnum(s[i]) || ((s[i] == '-' || s[i] == '.') && !edge))) {
                return "bad character in the registry host";
            }
        }
    }
    if (i < n) {
        size_t digits = 0;
        if (s[i] != ':') {
            return "bad character after the registry address";
        }
        for (i++; i < n; i++, digits++) {
            if (s[i] < '0' || s[i] > '9') {
                return "the registry port is not a number";
            }
        }
        if (digits == 0 || digits > 5) {
            return "bad registry port";
        }
    }
    return NULL;
}

/* path-component ("/" path-component)*, each lowercase alnum runs joined
 * by ".", "_", "__" or dashes. */
static const char *check_repository(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        if (!is_lower_alnum(s[i])) {
            return s[i] >= 'A' && s[i] <= 'Z'
                       ? "the repository must be lowercase"
                       : "a repository path component must start with a "
                         "lowercase letter or digit";
        }
        while (i < n && s[i] != '/') {
            if (is_lower_alnum(s[i])) {
                i++;
                continue;
            }
            size_t sep = i;
            while (i < n && s[i] == '-') {
                i++;
            }
            if (i == sep) {
                if (s[i] == '.') {
                    i++;
                } else if (s[i] == '_') {
                    i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
                } else {
                    return s[i] >= 'A' && s[i] <= 'Z'
                               ? "the repository must be lowercase"
                               : "bad character in the repository";
                }
            }
            if (i >= n || !is_lower_alnum(s[i])) {
                return "a separator in the repository must be followed by "
                       "a lowercase letter or digit";
            }
        }
        if (i < n) {
            i++;
            if (i == n) {
                return "the repository ends with '/'";
            }
        }
    }
    return n == 0 ? "empty repository" : NULL;
}

/* Docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static const char *check_tag(const char *s, size_t n)
{
    if (n == 0) {
        return "empty tag";
    }
    if (n > 128) {
        return "tag longer than 128 characters";
    }
    for (size_t i = 0; i < n; i++) {
        if (!(is_alnum(s[i]) || s[i] == '_' ||
              (i > 0 && (s[i] == '.' || s[i] == '-')))) {
            return "bad character in the tag";
        }
    }
    return NULL;
}

/* strndup() that records a failure in *oom. */
static char *dup_n(const char *s, size_t n, bool *oom)
{
    char *d = strndup(s, n);

    if (d == NULL) {
        *oom = true;
    }
    return d;
}

static bool has_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z') {
            return true;
        }
    }
    return false;
}

/* Where the parts of a reference end: registry before `slash`, the
 * repository up to `colon` (or `name_end`), the tag up to `name_end`, the
 * digest after `at`. */
typedef struct ref_parts {
    const char *slash;
    const char *colon; /* NULL: no tag */
    const char *at;    /* NULL: no digest */
    const char *name_end;
    const char *repo_end;
} ref_parts_t;

/* Splits and checks s; returns why it is not a normalized reference, or
 * NULL. */
static const char *split_ref(const char *s, ref_parts_t *p)
{
    const char *why;
    size_t hl;

    p->slash = strchr(s, '/');
    if (p->slash == NULL) {
        return "not normalized (no registry host)";
    }
    hl = (size_t)(p->slash - s);
    why = check_registry(s, hl);
    /* As Docker's splitDockerDomain: a '.', a ':', "localhost" or an
     * upper-case letter makes the first component a host. */
    if (why == NULL && memchr(s, '.', hl) == NULL &&
        memchr(s, ':', hl) == NULL && strncmp(s, "localhost/", 10) != 0 &&
        !has_upper(s, hl)) {
        why = "not normalized (the first component is not a registry host)";
    }
    p->at = strchr(p->slash, '@');
    p->name_end = p->at != NULL ? p->at : s + strlen(s);
    p->colon = NULL;
    for (const char *c = p->name_end; c > p->slash && *c != '/'; c--) {
        if (*c == ':') {
            p->colon = c;
            break;
        }
    }
    p->repo_end = p->colon != NULL ? p->colon : p->name_end;
    if (why == NULL) {
        why = check_repository(p->slash + 1,
                               (size_t)(p->repo_end - p->slash - 1));
    }
    if (why == NULL && p->colon != NULL) {
        why = check_tag(p->colon + 1, (size_t)(p->name_end - p->colon - 1));
    }
    if (why == NULL && p->at != NULL && !kiln__digest_valid(p->at + 1)) {
        why = "the digest is not sha256: and 64 lowercase hex digits";
    }
    if (why == NULL && p->at == NULL && p->colon == NULL) {
        why = "neither a tag nor a digest";
    }
    if (why == NULL && (size_t)(p->repo_end - s) > REF_MAX) {
        why = "the name is longer than 255 characters";
    }
    return why;
}

int kiln__oci_ref_parse(const char *s, kiln__oci_ref_t *out, kiln_error_t *err)
{
    kiln__oci_ref_t r = {0};
    size_t len = strlen(s);
    ref_parts_t p;
    const char *why;
    bool oom = false;

    if (len == 0 || len > REF_MAX + 72) {
        return kiln__fail(err, KILN_EINVAL,
                          "invalid image reference \"%.300s\": %s", s,
                          len == 0 ? "empty" : "too long");
    }
    why = split_ref(s, &p);
    if (why != NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "invalid image reference \"%s\": %s", s, why);
    }
    r.registry = dup_n(s, (size_t)(p.slash - s), &oom);
    r.repository = dup_n(p.slash + 1, (size_t)(p.repo_end - p.slash - 1), &oom);
    if (p.colon != NULL) {
        r.tag = dup_n(p.colon + 1, (size_t)(p.name_end - p.colon - 1), &oom);
    }
    if (p.at != NULL) {
        r.digest = dup_n(p.at + 1, strlen(p.at + 1), &oom);
    }
    if (oom) {
        kiln__oci_ref_clear(&r);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}

void kiln__oci_ref_clear(kiln__oci_ref_t *r)
{
    free(r->registry);
    free(r->repository);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof(*r));
}

const char *kiln__oci_ref_format(const kiln__oci_ref_t *r, char *buf,
                                 size_t size)
{
    if (size > 0) {
        snprintf(buf, size, "%s/%s%s%s%s%s", r->registry, r->repository,
                 r->tag != NULL ? ":" : "", r->tag != NULL ? r->tag : "",
                 r->digest != NULL ? "@" : "",
                 r->digest != NULL ? r->digest : "");
    }
    return buf;
}

const char *kiln__oci_registry_endpoint(const char *registry)
{
    if (strcmp(registry, "docker.io") == 0 ||
        strcmp(registry, "index.docker.io") == 0) {
        return "registry-1.docker.io";
    }
    return registry;
}
