/*
 * Reference parsing for sources: git remotes parsed as BuildKit's
 * gitutil.ParseURL. (Image references are normalized by core/oci:
 * kiln__oci_ref_normalize().)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llb/builder.h"

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

    while (isalnum((unsigned char)url[n])) {
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
