/*
 * Image references normalized exactly as Docker and BuildKit's Go client do
 * (distribution/reference ParseNormalizedNamed, then TagNameOnly), with
 * their error messages; and digests checked as go-digest does. One copy,
 * used by the definition builder (kiln_llb_image) and by the image plugin's
 * translate(), which builds core/oci in.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/registry.h"

/* ---- digests ---- */

static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0 || strchr(set, s[i]) == NULL) {
            return false;
        }
    }
    return true;
}

/* go-digest's DigestRegexp, anchored. */
static bool digest_shaped(const char *s)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    const char *colon = strchr(s, ':');
    const char *p = s;

    if (colon == NULL || colon == s) {
        return false;
    }
    while (p < colon) {
        size_t run = strspn(p, alnum);
        if (run == 0 || p + run > colon) {
            return false;
        }
        p += run;
        if (p < colon) {
            if (strchr(".+_-", *p) == NULL) {
                return false;
            }
            p++;
            if (p == colon) {
                return false;
            }
        }
    }
    p = colon + 1;
    return *p != 0 &&
           strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789=_-") == strlen(p);
}

const char *kiln__digest_check(const char *d)
{
    static const struct {
        const char *name;
        size_t hexlen;
    } algs[] = {{"sha256", 64}, {"sha384", 96}, {"sha512", 128}};
    const char *colon = strchr(d, ':');
    size_t alen;

    if (colon == NULL || colon == d || colon[1] == 0) {
        return "invalid checksum digest format";
    }
    alen = (size_t)(colon - d);
    for (size_t i = 0; i < KILN_ARRAY_SIZE(algs); i++) {
        if (strlen(algs[i].name) == alen &&
            memcmp(algs[i].name, d, alen) == 0) {
            if (strlen(colon + 1) != algs[i].hexlen) {
                return "invalid checksum digest length";
            }
            return all_of(colon + 1, algs[i].hexlen, "0123456789abcdef")
                       ? NULL
                       : "invalid checksum digest format";
        }
    }
    return digest_shaped(d) ? "unsupported digest algorithm"
                            : "invalid checksum digest format";
}

/* ---- references ---- */

#define NAME_MAX_LEN 255

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return isalnum((unsigned char)c) != 0;
}

static bool is_word(char c)
{
    return is_alnum(c) || c == '_';
}

/* pathComponent: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* over s[0..n). */
static bool path_component(const char *s, size_t n)
{
    size_t i = 0;

    for (;;) {
        size_t start = i;
        while (i < n && is_lower_alnum(s[i])) {
            i++;
        }
        if (i == start) {
            return false;
        }
        if (i == n) {
            return true;
        }
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-') {
                i++;
            }
        } else {
            return false;
        }
    }
}

/* remoteName: pathComponent ('/' pathComponent)*. */
static bool remote_name(const char *s, size_t n)
{
    size_t start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (!path_component(s + start, i - start)) {
                return false;
            }
            start = i + 1;
        }
    }
    return true;
}

/* domainNameComponent ('.' domainNameComponent)*, or "[hex:...]". */
static bool host_part(const char *s, size_t n)
{
    size_t start = 0;

    if (n > 0 && s[0] == '[') {
        if (n < 3 || s[n - 1] != ']') {
            return false;
        }
        for (size_t i = 1; i + 1 < n; i++) {
            if (!isxdigit((unsigned char)s[i]) && s[i] != ':') {
                return false;
            }
        }
        return true;
    }
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0 || !is_alnum(s[start]) || !is_alnum(s[i - 1])) {
                return false;
            }
            for (size_t j = start; j < i; j++) {
                if (!is_alnum(s[j]) && s[j] != '-') {
                    return false;
                }
            }
            start = i + 1;
        }
    }
    return true;
}

/* domainAndPort: host (':' [0-9]+)?. */
static bool domain_and_port(const char *s, size_t n)
{
    size_t host_end = n;
    const char *colon;

    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL) {
            return false;
        }
        host_end = (size_t)(close - s) + 1;
    } else if ((colon = memchr(s, ':', n)) != NULL) {
        host_end = (size_t)(colon - s);
    }
    if (!host_part(s, host_end)) {
        return false;
    }
    if (host_end == n) {
        return true;
    }
    if (s[host_end] != ':' || host_end + 1 == n) {
        return false;
    }
    for (size_t i = host_end + 1; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static bool tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !is_word(s[0])) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!is_word(s[i]) && s[i] != '.' && s[i] != '-') {
            return false;
        }
    }
    return true;
}

/* The reference grammar's digest: alg(sep alg)* ':' xdigit{32,}. */
static bool digest_pat(const char *s)
{
    const char *colon = strchr(s, ':');
    const char *p = s;

    if (colon == NULL) {
        return false;
    }
    for (;;) {
        if (!isalpha((unsigned char)*p)) {
            return false;
        }
        while (p < colon && is_alnum(*p)) {
            p++;
        }
        if (p == colon) {
            break;
        }
        if (strchr("-_+.", *p) == NULL) {
            return false;
        }
        p++;
    }
    p = colon + 1;
    return strlen(p) >= 32 && strspn(p, "0123456789abcdefABCDEF") == strlen(p);
}

/* Splits a normalized "name[:tag][@digest]" as the anchored reference
 * regexp would; false if it does not match. */
struct ref_parts {
    size_t name_len, domain_len; /* domain_len 0: no domain */
    const char *tag;             /* NULL: none */
    size_t tag_len;
    const char *digest; /* NULL: none */
};

static bool ref_match(const char *s, struct ref_parts *rp)
{
    const char *at = strchr(s, '@');
    size_t n = at ? (size_t)(at - s) : strlen(s);
    const char *slash, *colon;

    memset(rp, 0, sizeof(*rp));
    if (at != NULL) {
        if (strchr(at + 1, '@') != NULL || !digest_pat(at + 1)) {
            return false;
        }
        rp->digest = at + 1;
    }
    /* A colon after the last slash starts the tag: names have none. */
    slash = memrchr(s, '/', n);
    colon = memrchr(s, ':', n);
    if (colon != NULL && (slash == NULL || colon > slash)) {
        rp->tag = colon + 1;
        rp->tag_len = n - (size_t)(colon + 1 - s);
        if (!tag_ok(rp->tag, rp->tag_len)) {
            return false;
        }
        n = (size_t)(colon - s);
    }
    rp->name_len = n;
    slash = memchr(s, '/', n);
    if (slash != NULL && domain_and_port(s, (size_t)(slash - s)) &&
        remote_name(slash + 1, n - (size_t)(slash + 1 - s))) {
        rp->domain_len = (size_t)(slash - s);
        return true;
    }
    return remote_name(s, n);
}

static bool has_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (isupper((unsigned char)s[i])) {
            return true;
        }
    }
    return false;
}

/* distribution's Parse() on the normalized string. */
static bool ref_parse(const char *s, struct ref_parts *rp, char *msg,
                      size_t msg_size)
{
    size_t path_len;
    const char *derr;

    if (!ref_match(s, rp)) {
        char *low = strdup(s);
        struct ref_parts tmp;
        bool upper = low != NULL && has_upper(s, strlen(s));
        if (upper) {
            for (char *p = low; *p; p++) {
                *p = (char)tolower((unsigned char)*p);
            }
        }
        snprintf(msg, msg_size, "%s",
                 upper && ref_match(low, &tmp)
                     ? "invalid reference format: repository name must be "
                       "lowercase"
                     : "invalid reference format");
        free(low);
        return false;
    }
    path_len =
        rp->domain_len ? rp->name_len - rp->domain_len - 1 : rp->name_len;
    if (path_len > NAME_MAX_LEN) {
        snprintf(msg, msg_size,
                 "repository name must not be more than %d characters",
                 NAME_MAX_LEN);
        return false;
    }
    if (rp->digest != NULL && (derr = kiln__digest_check(rp->digest))) {
        snprintf(msg, msg_size, "%s", derr);
        return false;
    }
    return true;
}

static bool is_hex64(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* splitDockerDomain: the registry and the rest (path, tag, digest). */
static void split_domain(const char *ref, const char **domain, size_t *dlen,
                         const char **rest, bool *library)
{
    const char *slash = strchr(ref, '/');
    size_t n = slash ? (size_t)(slash - ref) : 0;

    *domain = "docker.io";
    *dlen = 9;
    *rest = ref;
    if (slash != NULL) {
        if (n == 15 && memcmp(ref, "index.docker.io", 15) == 0) {
            *rest = slash + 1;
        } else if ((n == 9 && memcmp(ref, "localhost", 9) == 0) ||
                   memchr(ref, '.', n) != NULL || memchr(ref, ':', n) != NULL ||
                   has_upper(ref, n)) {
            *domain = ref;
            *dlen = n;
            *rest = slash + 1;
        }
    }
    /* Official images live under library/ on Docker Hub only. */
    *library = *dlen == 9 && memcmp(*domain, "docker.io", 9) == 0 &&
               strchr(*rest, '/') == NULL;
}

int kiln__oci_ref_normalize(const char *ref, char **out, kiln_error_t *err)
{
    const char *domain, *rest, *colon;
    size_t dlen, rlen, remote_len;
    bool library;
    struct ref_parts rp;
    char msg[512], *s;

    *out = NULL;
    if (is_hex64(ref)) {
        return kiln__fail(err, KILN_EINVAL,
                          "invalid repository name (%s), cannot specify "
                          "64-byte hexadecimal strings",
                          ref);
    }
    split_domain(ref, &domain, &dlen, &rest, &library);
    rlen = strlen(rest);
    s = malloc(dlen + rlen + 24);
    if (s == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    snprintf(s, dlen + rlen + 24, "%.*s/%s%s", (int)dlen, domain,
             library ? "library/" : "", rest);
    /* The remote name (up to any tag) must be lowercase. */
    colon = strchr(s + dlen + 1, ':');
    remote_len =
        colon ? (size_t)(colon - (s + dlen + 1)) : strlen(s) - dlen - 1;
    if (has_upper(s + dlen + 1, remote_len)) {
        kiln__fail(err, KILN_EINVAL,
                   "invalid reference format: repository name (%.*s) must "
                   "be lowercase",
                   (int)remote_len, s + dlen + 1);
        free(s);
        return KILN_EINVAL;
    }
    if (!ref_parse(s, &rp, msg, sizeof(msg))) {
        free(s);
        return kiln__fail(err, KILN_EINVAL, "%s", msg);
    }
    if (rp.tag == NULL && rp.digest == NULL) {
        /* rlen + 24 leaves room for ":latest". */
        strcat(s, ":latest");
    }
    *out = s;
    return 0;
}
