/*
 * Git remotes as BuildKit's client reads them (util/gitutil.ParseURL and
 * sshutil's scp-style pattern), and the helpers that keep credentials out
 * of identifiers, messages and cache names. Pure: no I/O.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "git.h"

static bool supported_scheme(const char *s, size_t n)
{
    static const char *const schemes[] = {"http", "https", "ssh", "git"};

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strlen(schemes[i]) == n && strncasecmp(s, schemes[i], n) == 0) {
            return true;
        }
    }
    return false;
}

/* Length of a leading "<alnum>+://" scheme (without "://"), else 0. */
static size_t scheme_len(const char *s)
{
    size_t n = 0;

    while (isalnum((unsigned char)s[n])) {
        n++;
    }
    return n > 0 && strncmp(s + n, "://", 3) == 0 ? n : 0;
}

char *git_path_clean(const char *p)
{
    size_t n = strlen(p), w = 1, r = 0;
    char *out = malloc(n + 2);

    if (out == NULL) {
        return NULL;
    }
    out[0] = '/';
    /* Go's path.Clean of "/" + p: one element at a time. */
    while (r < n) {
        size_t e = r;
        while (e < n && p[e] != '/') {
            e++;
        }
        if (e == r || (e - r == 1 && p[r] == '.')) {
            /* empty or "." */
        } else if (e - r == 2 && p[r] == '.' && p[r + 1] == '.') {
            while (w > 1 && out[w - 1] != '/') {
                w--;
            }
            if (w > 1) {
                w--; /* the slash before the dropped element */
            }
        } else {
            if (w > 1) {
                out[w++] = '/';
            }
            memcpy(out + w, p + r, e - r);
            w += e - r;
        }
        r = e + 1;
    }
    out[w] = '\0';
    return out;
}

/* Percent-decodes s[0..n); NULL if an escape is bad or no memory. */
static char *unescape(const char *s, size_t n)
{
    char *out = malloc(n + 1);
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
            free(out);
            return NULL;
        }
        hex[0] = s[i + 1];
        hex[1] = s[i + 2];
        hex[2] = '\0';
        out[w++] = (char)strtol(hex, NULL, 16);
        i += 2;
    }
    out[w] = '\0';
    return out;
}

/* HOST + path.Join("/", PATH) into out->id. */
static int make_id(const char *host, size_t hlen, const char *path,
                   git_url_t *out)
{
    char *clean = git_path_clean(path);

    if (clean == NULL) {
        return -ENOMEM;
    }
    out->id = malloc(hlen + strlen(clean) + 1);
    if (out->id != NULL) {
        sprintf(out->id, "%.*s%s", (int)hlen, host, clean);
    }
    free(clean);
    return out->id != NULL ? 0 : -ENOMEM;
}

/*
 * Go's url.Parse for scheme://[userinfo@]host[:port][/path][?q][#f]:
 * 1 parsed, 0 where Go returns an error, -ENOMEM.
 */
static int parse_std(const char *url, size_t slen, git_url_t *out)
{
    const char *auth = url + slen + 3;
    size_t end = strcspn(url, "?#"), alen = strcspn(auth, "/?#"), hlen;
    const char *at = NULL, *host, *path = auth + alen;
    char *decoded;
    int rc;

    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return 0; /* net/url: invalid control character */
        }
    }
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@') {
            at = auth + i; /* the last '@' ends the user-info */
        }
    }
    host = at ? at + 1 : auth;
    hlen = (size_t)(auth + alen - host);
    if (hlen > 0 && host[0] != '[') {
        const char *colon = memrchr(host, ':', hlen);
        for (const char *p = colon ? colon + 1 : host + hlen; p < host + hlen;
             p++) {
            if (!isdigit((unsigned char)*p)) {
                return 0; /* invalid port after host */
            }
        }
    }
    decoded = unescape(path, (size_t)(url + end - path));
    if (decoded == NULL) {
        return 0; /* invalid URL escape (or no memory: Go has none) */
    }
    /* The remote: without query and fragment, the scheme lower case. */
    out->remote = malloc(end + 1);
    if (out->remote == NULL) {
        free(decoded);
        return -ENOMEM;
    }
    memcpy(out->remote, url, end);
    out->remote[end] = '\0';
    for (size_t i = 0; i < slen; i++) {
        out->remote[i] = (char)tolower((unsigned char)out->remote[i]);
    }
    out->ssh = slen == 3 && strncasecmp(url, "ssh", 3) == 0;
    rc = make_id(host, hlen, decoded, out);
    free(decoded);
    return rc < 0 ? rc : 1;
}

/* user@host:path[?query][#fragment] with user [a-zA-Z0-9-_]+ and host
 * [a-zA-Z0-9-.]+: 1, 0 (not this form), -ENOMEM. */
static int parse_scp(const char *url, git_url_t *out)
{
    static const char user_set[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    static const char host_set[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
    size_t ulen = strspn(url, user_set), hlen, plen;
    const char *host, *path;
    char *p;
    int rc;

    if (ulen == 0 || url[ulen] != '@') {
        return 0;
    }
    host = url + ulen + 1;
    hlen = strspn(host, host_set);
    if (hlen == 0 || host[hlen] != ':') {
        return 0;
    }
    path = host + hlen + 1;
    plen = strcspn(path, "?#");
    out->remote = strndup(url, (size_t)(path + plen - url));
    p = strndup(path, plen);
    if (out->remote == NULL || p == NULL) {
        free(p);
        return -ENOMEM;
    }
    rc = make_id(host, hlen, p, out);
    free(p);
    out->ssh = true;
    return rc < 0 ? rc : 1;
}

/* gitutil.ParseURL: 1 parsed, 0 failed, -1 "unknown protocol", -ENOMEM. */
static int parse_once(const char *url, git_url_t *out)
{
    size_t n = scheme_len(url);
    int rc;

    if (n > 0) {
        return supported_scheme(url, n) ? parse_std(url, n, out) : 0;
    }
    rc = parse_scp(url, out);
    return rc == 0 ? -1 : rc;
}

void git_url_free(git_url_t *u)
{
    free(u->remote);
    free(u->id);
    memset(u, 0, sizeof(*u));
}

int git_url_parse(const char *url, git_url_t *out)
{
    char *https = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_once(url, out);
    if (rc == -1) {
        /* Neither a URL nor scp-like: Go assumes https and tries again. */
        git_url_free(out);
        if ((https = malloc(strlen(url) + 9)) == NULL) {
            return -ENOMEM;
        }
        sprintf(https, "https://%s", url);
        url = https;
        rc = parse_once(url, out);
    }
    if (rc == -ENOMEM) {
        free(https);
        git_url_free(out);
        return rc;
    }
    out->ok = rc > 0;
    if (!out->ok) {
        /* Unparsable: the url is both the id and the remote, and the
         * fetch reports the problem. */
        git_url_free(out);
        out->remote = strdup(url);
        out->id = strdup(url);
    }
    free(https);
    if (out->remote == NULL || out->id == NULL) {
        git_url_free(out);
        return -ENOMEM;
    }
    return 0;
}

/* The span of the user-info of a scheme:// remote: [*start, *end). */
static bool userinfo_span(const char *remote, size_t *start, size_t *end)
{
    size_t n = scheme_len(remote), alen;
    const char *auth, *at = NULL;

    if (n == 0) {
        return false; /* scp-like "git@host:" names a user, no secret */
    }
    auth = remote + n + 3;
    alen = strcspn(auth, "/?#");
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@') {
            at = auth + i;
        }
    }
    if (at == NULL) {
        return false;
    }
    *start = (size_t)(auth - remote);
    *end = (size_t)(at - remote);
    return true;
}

char *git_url_redact(const char *remote)
{
    size_t s, e;
    char *out;

    if (!userinfo_span(remote, &s, &e) || e == s) {
        return strdup(remote); /* "ssh://@host": nothing to hide */
    }
    out = malloc(strlen(remote) + 8);
    if (out != NULL) {
        sprintf(out, "%.*sxxxxx%s", (int)s, remote, remote + e);
    }
    return out;
}

char *git_url_userinfo(const char *remote)
{
    size_t s, e;

    if (!userinfo_span(remote, &s, &e) || e == s) {
        return NULL;
    }
    return strndup(remote + s, e - s);
}

bool git_url_is_local(const char *remote)
{
    return remote[0] == '/' || strncmp(remote, "file://", 7) == 0;
}

char *git_url_http_origin(const char *remote)
{
    size_t n = scheme_len(remote), s, e, hlen;
    const char *host;
    char *out;

    if (!((n == 4 && strncasecmp(remote, "http", 4) == 0) ||
          (n == 5 && strncasecmp(remote, "https", 5) == 0))) {
        return NULL;
    }
    host = remote + n + 3;
    if (userinfo_span(remote, &s, &e)) {
        host = remote + e + 1;
    }
    hlen = strcspn(host, "/?#");
    out = malloc(n + 3 + hlen + 1);
    if (out != NULL) {
        sprintf(out, "%.*s://%.*s", (int)n, remote, (int)hlen, host);
        for (size_t i = 0; i < n; i++) {
            out[i] = (char)tolower((unsigned char)out[i]);
        }
    }
    return out;
}

bool git_is_full_sha(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");

    return s[n] == '\0' && (n == 40 || n == 64);
}
