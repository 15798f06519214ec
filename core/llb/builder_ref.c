/*
 * Reference parsing for sources: image references normalized as the
 * distribution/reference package does (ParseNormalizedNamed + TagNameOnly),
 * and git remotes parsed as BuildKit's gitutil.ParseURL.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llb/builder.h"

/* ---- image references ---- */

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
static bool ref_parse(kiln__arena_t *a, char *s, struct ref_parts *rp,
                      char *msg, size_t msg_size)
{
    size_t path_len;
    const char *derr;

    if (!ref_match(s, rp)) {
        char *low = kiln__arena_strdup(a, s);
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

char *kiln__image_ref_normalize(kiln__arena_t *a, const char *ref, char *msg,
                                size_t msg_size)
{
    const char *domain, *rest, *colon;
    size_t dlen, rlen, remote_len;
    bool library;
    struct ref_parts rp;
    char *s;

    if (is_hex64(ref)) {
        snprintf(msg, msg_size,
                 "invalid repository name (%s), cannot specify 64-byte "
                 "hexadecimal strings",
                 ref);
        return NULL;
    }
    split_domain(ref, &domain, &dlen, &rest, &library);
    rlen = strlen(rest);
    s = kiln__arena_alloc(a, dlen + rlen + 24);
    if (s == NULL) {
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    snprintf(s, dlen + rlen + 24, "%.*s/%s%s", (int)dlen, domain,
             library ? "library/" : "", rest);
    /* The remote name (up to any tag) must be lowercase. */
    colon = strchr(s + dlen + 1, ':');
    remote_len =
        colon ? (size_t)(colon - (s + dlen + 1)) : strlen(s) - dlen - 1;
    if (has_upper(s + dlen + 1, remote_len)) {
        snprintf(msg, msg_size,
                 "invalid reference format: repository name (%.*s) must be "
                 "lowercase",
                 (int)remote_len, s + dlen + 1);
        return NULL;
    }
    if (!ref_parse(a, s, &rp, msg, msg_size)) {
        return NULL;
    }
    if (rp.tag == NULL && rp.digest == NULL) {
        char *tagged = kiln__arena_alloc(a, strlen(s) + 8);
        if (tagged == NULL) {
            snprintf(msg, msg_size, "out of memory");
            return NULL;
        }
        sprintf(tagged, "%s:latest", s);
        s = tagged;
    }
    return s;
}

/* ---- git remotes ---- */

static bool supported_scheme(const char *s, size_t n)
{
    static const char *const schemes[] = {"http", "https", "ssh", "git"};

    for (size_t i = 0; i < KILN_ARRAY_SIZE(schemes); i++) {
        if (strlen(schemes[i]) == n && strncasecmp(s, schemes[i], n) == 0) {
            return true;
        }
    }
    return false;
}

/* Percent-decodes s[0..n) into arena memory; NULL if an escape is bad. */
static char *unescape(kiln__arena_t *a, const char *s, size_t n)
{
    char *out = kiln__arena_alloc(a, n + 1);
    size_t w = 0;

    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char hex[3];

        if (s[i] != '%') {
            out[w++] = s[i];
            continue;
        }
        if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
            !isxdigit((unsigned char)s[i + 2])) {
            return NULL;
        }
        hex[0] = s[i + 1];
        hex[1] = s[i + 2];
        hex[2] = 0;
        out[w++] = (char)strtol(hex, NULL, 16);
        i += 2;
    }
    out[w] = 0;
    return out;
}

/* Go's url.Parse for scheme://[userinfo@]host[:port][/path][?q][#f];
 * false where Go returns an error. */
static bool parse_std_url(kiln__arena_t *a, const char *url, size_t scheme_len,
                          kiln__git_url_t *out)
{
    const char *auth = url + scheme_len + 3;
    size_t end = strcspn(url, "?#");
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL, *host, *path = auth + alen;
    size_t hlen, plen = (size_t)(url + end - path);
    char *remote, *decoded;

    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return false; /* net/url: invalid control character */
        }
    }
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@') {
            at = auth + i; /* the last '@' ends the userinfo */
        }
    }
    host = at ? at + 1 : auth;
    hlen = (size_t)(auth + alen - host);
    if (hlen > 0 && host[0] != '[') {
        const char *colon = memrchr(host, ':', hlen);
        for (const char *p = colon ? colon + 1 : host + hlen; p < host + hlen;
             p++) {
            if (!isdigit((unsigned char)*p)) {
                return false; /* invalid port after host */
            }
        }
    }
    decoded = unescape(a, path, plen);
    if (decoded == NULL) {
        return false;
    }
    /* Remote: the URL without query and fragment, scheme lowercased. */
    remote = kiln__arena_alloc(a, end + 1);
    if (remote == NULL) {
        return false;
    }
    memcpy(remote, url, end);
    for (size_t i = 0; i < scheme_len; i++) {
        remote[i] = (char)tolower((unsigned char)remote[i]);
    }
    out->remote = remote;
    out->ssh = scheme_len == 3 && strncasecmp(url, "ssh", 3) == 0;
    out->id = kiln__arena_alloc(a, hlen + strlen(decoded) + 3);
    if (out->id != NULL) {
        char *joined = kiln__path_join(a, "/", decoded);
        if (joined == NULL) {
            return false;
        }
        sprintf((char *)out->id, "%.*s%s", (int)hlen, host, joined);
    }
    return out->id != NULL;
}

/* user@host:path[?query][#fragment], user [a-zA-Z0-9-_]+, host
 * [a-zA-Z0-9-.]+ (sshutil's scp-style pattern). */
static bool parse_scp_url(kiln__arena_t *a, const char *url,
                          kiln__git_url_t *out)
{
    static const char user_set[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    static const char host_set[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
    size_t ulen = strspn(url, user_set), hlen;
    const char *host, *path;
    size_t plen;
    char *remote, *joined;

    if (ulen == 0 || url[ulen] != '@') {
        return false;
    }
    host = url + ulen + 1;
    hlen = strspn(host, host_set);
    if (hlen == 0 || host[hlen] != ':') {
        return false;
    }
    path = host + hlen + 1;
    plen = strcspn(path, "?#");
    remote = kiln__arena_dup(a, url, (size_t)(path + plen - url) + 1);
    joined = kiln__arena_alloc(a, plen + 1);
    if (remote == NULL || joined == NULL) {
        return false;
    }
    remote[path + plen - url] = 0;
    memcpy(joined, path, plen);
    joined = kiln__path_join(a, "/", joined);
    out->id = joined ? kiln__arena_alloc(a, hlen + strlen(joined) + 1) : NULL;
    if (out->id == NULL) {
        return false;
    }
    sprintf((char *)out->id, "%.*s%s", (int)hlen, host, joined);
    out->remote = remote;
    out->ssh = true;
    return true;
}

/* gitutil.ParseURL: 1 parsed, 0 failed, -1 "unknown protocol". */
static int parse_git_url(kiln__arena_t *a, const char *url,
                         kiln__git_url_t *out)
{
    size_t n = 0;

    while (is_alnum(url[n])) {
        n++;
    }
    if (n > 0 && strncmp(url + n, "://", 3) == 0) {
        if (!supported_scheme(url, n)) {
            return 0; /* invalid protocol */
        }
        return parse_std_url(a, url, n, out) ? 1 : 0;
    }
    return parse_scp_url(a, url, out) ? 1 : -1;
}

void kiln__git_parse(kiln__arena_t *a, const char *url, kiln__git_url_t *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_git_url(a, url, out);
    if (rc < 0) {
        /* Neither a URL nor scp-style: Go assumes https. */
        char *https = kiln__arena_alloc(a, strlen(url) + 9);
        if (https == NULL) {
            return;
        }
        sprintf(https, "https://%s", url);
        url = https;
        memset(out, 0, sizeof(*out));
        rc = parse_git_url(a, url, out);
    }
    out->ok = rc > 0;
    if (!out->ok) {
        /* Unparsable: the url is both the id and the remote, and the
         * daemon reports the problem. */
        out->ssh = false;
        out->remote = url;
        out->id = url;
    }
}
