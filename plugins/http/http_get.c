/*
 * One GET with libcurl: redirects followed (at most 10, http and https
 * only), a connect timeout and an inactivity timeout, gzip decoded as Go's
 * client does, the body streamed into a blob while its SHA-256 is computed,
 * progress reported and cancellation polled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "http.h"

#define USER_AGENT "kiln-http/1.0"

/* Secrets and header values read into fixed buffers. */
#define SECRET_MAX 8192

typedef struct get_ctx {
    const http_call_t *c;
    CURL *curl;
    http_resp_t *r;
    char reason[64];
    int fd; /* the blob being written */
    EVP_MD_CTX *md;
    int write_errno; /* a failed write(2) */
    bool cancelled;
    uint64_t reported; /* bytes in the last progress report */
} get_ctx_t;

static void replace(char **slot, const char *v, size_t n)
{
    free(*slot);
    *slot = strndup(v, n);
}

/* Header lines, one call each. A status line starts a new response (each
 * redirect hop has one), so the last response's headers are kept. */
static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    get_ctx_t *g = ud;
    size_t len = size * n, vlen;
    const char *colon, *v;

    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n')) {
        len--;
    }
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        const char *sp = memchr(buf, ' ', len), *sp2;
        g->reason[0] = '\0';
        free(g->r->etag);
        free(g->r->last_modified);
        free(g->r->content_disposition);
        g->r->etag = g->r->last_modified = g->r->content_disposition = NULL;
        if (sp != NULL &&
            (sp2 = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - buf))) != NULL) {
            size_t rl = len - (size_t)(sp2 + 1 - buf);
            if (rl >= sizeof(g->reason)) {
                rl = sizeof(g->reason) - 1;
            }
            memcpy(g->reason, sp2 + 1, rl);
            g->reason[rl] = '\0';
        }
        return size * n;
    }
    colon = memchr(buf, ':', len);
    if (colon == NULL) {
        return size * n;
    }
    for (v = colon + 1; v < buf + len && (*v == ' ' || *v == '\t'); v++) {
    }
    vlen = len - (size_t)(v - buf);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
        vlen--;
    }
#define IS(name)                                                               \
    ((size_t)(colon - buf) == strlen(name) &&                                  \
     strncasecmp(buf, name, strlen(name)) == 0)
    if (IS("ETag")) {
        replace(&g->r->etag, v, vlen);
    } else if (IS("Last-Modified")) {
        replace(&g->r->last_modified, v, vlen);
    } else if (IS("Content-Disposition")) {
        replace(&g->r->content_disposition, v, vlen);
    }
#undef IS
    return size * n;
}

static bool ok_status(long status)
{
    return status >= 200 && status < 400 && status != 304;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    get_ctx_t *g = ud;
    size_t len = size * n, off = 0;
    long status = 0;

    curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &status);
    if (!ok_status(status)) {
        /* An error page is not the download: stop reading it. */
        return 0;
    }
    while (off < len) {
        ssize_t w = write(g->fd, buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            g->write_errno = errno;
            return 0;
        }
        off += (size_t)w;
    }
    if (!EVP_DigestUpdate(g->md, buf, len)) {
        g->write_errno = ENOMEM;
        return 0;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    get_ctx_t *g = ud;
    const kiln_host_t *h = g->c->host;

    (void)ultotal;
    (void)ulnow;
    if (h->cancelled(g->c->job)) {
        g->cancelled = true;
        return 1;
    }
    if (dlnow > 0 && (uint64_t)dlnow != g->reported) {
        g->reported = (uint64_t)dlnow;
        h->progress(g->c->job, g->reported,
                    dltotal > 0 ? (uint64_t)dltotal : 0);
    }
    return 0;
}

/* The URL's host without IPv6 brackets (Go's URL.Hostname), malloc'ed. */
static char *url_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *out = NULL;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        size_t n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
            out = strndup(host + 1, n - 2);
        } else {
            out = strdup(host);
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

int http_check_url(const http_call_t *c, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    CURLUcode uc;
    int rc = 0;

    if (u == NULL) {
        return c->host->fail(c->job, -ENOMEM, "out of memory");
    }
    uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        rc = c->host->fail(c->job, -EINVAL, "invalid URL \"%s\": %s", url,
                           curl_url_strerror(uc));
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = c->host->fail(c->job, -EINVAL,
                           "invalid URL \"%s\": not an http or https URL", url);
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* Appends "Name: value" to *list; values with line breaks are refused so
 * that no header can smuggle another. */
static int add_header(const http_call_t *c, struct curl_slist **list,
                      const char *name, const char *v, size_t vlen)
{
    char *line;
    size_t nlen;
    struct curl_slist *l;

    if (memchr(v, '\r', vlen) != NULL || memchr(v, '\n', vlen) != NULL ||
        memchr(v, '\0', vlen) != NULL) {
        return c->host->fail(c->job, -EINVAL,
                             "GET %s: the %s header value has a line break",
                             c->src->identifier, name);
    }
    nlen = strlen(name);
    line = malloc(nlen + vlen + 3);
    if (line == NULL) {
        return c->host->fail(c->job, -ENOMEM, "out of memory");
    }
    memcpy(line, name, nlen);
    memcpy(line + nlen, ": ", 2);
    memcpy(line + nlen + 2, v, vlen);
    line[nlen + 2 + vlen] = '\0';
    l = curl_slist_append(*list, line);
    explicit_bzero(line, strlen(line));
    free(line);
    if (l == NULL) {
        return c->host->fail(c->job, -ENOMEM, "out of memory");
    }
    *list = l;
    return 0;
}

/* The Authorization header, as BuildKit: the http.authheadersecret secret
 * (required when named), else HTTP_AUTH_HEADER_<host> or, winning,
 * HTTP_AUTH_TOKEN_<host> as a bearer token, when the build has them. */
static int add_auth(const http_call_t *c, const http_src_t *s,
                    struct curl_slist **list)
{
    const kiln_host_t *h = c->host;
    char *buf, *host, name[512], *found = NULL;
    size_t len = 0, flen = 0;
    int rc = 0;

    if (h->secret_get == NULL) {
        return s->auth_secret == NULL
                   ? 0
                   : h->fail(c->job, -ENOTSUP,
                             "GET %s: this kiln provides no secrets", s->url);
    }
    buf = malloc(2 * SECRET_MAX + 8);
    if (buf == NULL) {
        return h->fail(c->job, -ENOMEM, "out of memory");
    }
    if (s->auth_secret != NULL) {
        rc = h->secret_get(c->job, s->auth_secret, buf, SECRET_MAX, &len);
        if (rc < 0) {
            rc = h->fail(c->job, rc,
                         "GET %s: failed to retrieve HTTP auth secret %s: %s",
                         s->url, s->auth_secret, strerror(-rc));
        } else {
            found = buf, flen = len;
        }
    } else if ((host = url_host(s->url)) != NULL) {
        snprintf(name, sizeof(name), "HTTP_AUTH_HEADER_%s", host);
        if (h->secret_get(c->job, name, buf, SECRET_MAX, &len) == 0) {
            found = buf, flen = len;
        }
        snprintf(name, sizeof(name), "HTTP_AUTH_TOKEN_%s", host);
        memcpy(buf + SECRET_MAX, "Bearer ", 7);
        if (h->secret_get(c->job, name, buf + SECRET_MAX + 7, SECRET_MAX,
                          &len) == 0) {
            found = buf + SECRET_MAX, flen = len + 7;
        }
        free(host);
    }
    if (rc == 0 && found != NULL) {
        rc = add_header(c, list, "Authorization", found, flen);
    }
    explicit_bzero(buf, 2 * SECRET_MAX + 8);
    free(buf);
    return rc;
}

static int build_headers(const http_call_t *c, const http_src_t *s,
                         const http_record_t *cond, struct curl_slist **list)
{
    int rc = 0;

    if (cond != NULL && cond->etag != NULL) {
        rc = add_header(c, list, "If-None-Match", cond->etag,
                        strlen(cond->etag));
    }
    if (rc == 0 && cond != NULL && cond->last_modified != NULL) {
        rc = add_header(c, list, "If-Modified-Since", cond->last_modified,
                        strlen(cond->last_modified));
    }
    for (size_t i = 0; rc == 0 && i < s->n_header; i++) {
        if (strcmp(s->header[i].name, "User-Agent") != 0) {
            rc = add_header(c, list, s->header[i].name, s->header[i].value,
                            strlen(s->header[i].value));
        }
    }
    return rc == 0 ? add_auth(c, s, list) : rc;
}

static const char *user_agent(const http_src_t *s)
{
    const char *ua = USER_AGENT;

    for (size_t i = 0; i < s->n_header; i++) {
        if (strcmp(s->header[i].name, "User-Agent") == 0) {
            ua = s->header[i].value;
        }
    }
    return ua;
}

/* Go's net/http never proxies loopback requests; curl would. */
static bool is_loopback(const char *url)
{
    char *host = url_host(url);
    bool lo = host != NULL &&
              (strcasecmp(host, "localhost") == 0 ||
               strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0);

    free(host);
    return lo;
}

static void set_options(get_ctx_t *g, const http_src_t *s,
                        struct curl_slist *hdrs, char *errbuf, long timeout)
{
    CURL *h = g->curl;

    curl_easy_setopt(h, CURLOPT_URL, s->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout < 60 ? timeout : 60L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, timeout);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Go's client asks for gzip and decodes it: so the digest is the same. */
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent(s));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, g);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, g);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (is_loopback(s->url)) {
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    }
}

static const char *reason_phrase(long status)
{
    static const struct {
        long code;
        const char *text;
    } t[] = {
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {410, "Gone"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (t[i].code == status) {
            return t[i].text;
        }
    }
    return "";
}

/* Turns the transfer's outcome into 0 or a recorded error. */
static int check_result(get_ctx_t *g, const http_src_t *s,
                        const http_record_t *cond, CURLcode cc,
                        const char *errbuf, long timeout)
{
    const kiln_host_t *h = g->c->host;
    kiln_job_t *job = g->c->job;
    long st = g->r->status;
    const char *detail = *errbuf != '\0' ? errbuf : curl_easy_strerror(cc);

    if (g->cancelled) {
        return h->fail(job, -ECANCELED, "GET %s: canceled", s->url);
    }
    if (st >= 400 || (cc == CURLE_OK && st < 200)) {
        const char *why = g->reason[0] != '\0' ? g->reason : reason_phrase(st);
        return h->fail(job, -EIO, "GET %s: %ld%s%s", s->url, st,
                       *why != '\0' ? " " : "", why);
    }
    switch (cc) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        return h->fail(job, -EIO, "GET %s: timed out (limit %ld s): %s", s->url,
                       timeout, detail);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return h->fail(job, -EINVAL, "GET %s: invalid URL: %s", s->url, detail);
    case CURLE_TOO_MANY_REDIRECTS:
        return h->fail(job, -ELOOP, "GET %s: %s", s->url, detail);
    case CURLE_COULDNT_CONNECT: {
        long os_errno = 0;
        curl_easy_getinfo(g->curl, CURLINFO_OS_ERRNO, &os_errno);
        return h->fail(job, -EIO, "GET %s: cannot connect: %s (%s)", s->url,
                       os_errno != 0 ? strerror((int)os_errno)
                                     : curl_easy_strerror(cc),
                       detail);
    }
    case CURLE_WRITE_ERROR:
        if (g->write_errno != 0) {
            return h->fail(job, -g->write_errno,
                           "GET %s: writing the download: %s", s->url,
                           strerror(g->write_errno));
        }
        return h->fail(job, -EIO, "GET %s: %s", s->url, detail);
    default:
        return h->fail(job, -EIO, "GET %s: %s", s->url, detail);
    }
    if (st == 304 && cond == NULL) {
        return h->fail(job, -EIO,
                       "GET %s: 304 Not Modified to an unconditional request",
                       s->url);
    }
    return 0;
}

/* Ends the blob write: the digest check, then the commit. */
static int finish_blob(get_ctx_t *g, const http_src_t *s, void **w,
                       const char *expect)
{
    const kiln_host_t *h = g->c->host;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char got[HTTP_DIGEST_SIZE];
    void *wr = *w;
    int rc;

    if (!EVP_DigestFinal_ex(g->md, md, &mdlen) || mdlen != 32) {
        return h->fail(g->c->job, -EIO, "GET %s: SHA-256 failed", s->url);
    }
    memcpy(got, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
    }
    if (expect != NULL && strcmp(got, expect) != 0) {
        return h->fail(g->c->job, -EBADMSG,
                       "GET %s: digest mismatch: downloaded %s, "
                       "http.checksum is %s",
                       s->url, got, expect);
    }
    *w = NULL;
    rc = h->blob_commit(g->c->job, wr, expect, g->r->digest);
    if (rc < 0) {
        return rc == -EBADMSG
                   ? rc
                   : h->fail(g->c->job, rc, "GET %s: storing the download: %s",
                             s->url, strerror(-rc));
    }
    if (strcmp(got, g->r->digest) != 0) {
        return h->fail(g->c->job, -EIO,
                       "GET %s: the blob store says %s, the download was %s",
                       s->url, g->r->digest, got);
    }
    return 0;
}

int http_get(const http_call_t *c, const http_src_t *s,
             const http_record_t *cond, const char *expect, http_resp_t *r)
{
    const kiln_host_t *h = c->host;
    get_ctx_t g = {.c = c, .r = r, .fd = -1};
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    long timeout = http_timeout();
    void *w = NULL;
    CURLcode cc;
    int rc;

    memset(r, 0, sizeof(*r));
    rc = build_headers(c, s, cond, &hdrs);
    if (rc < 0) {
        goto out;
    }
    g.curl = curl_easy_init();
    g.md = EVP_MD_CTX_new();
    if (g.curl == NULL || g.md == NULL ||
        !EVP_DigestInit_ex(g.md, EVP_sha256(), NULL)) {
        rc = h->fail(c->job, -ENOMEM, "GET %s: out of memory", s->url);
        goto out;
    }
    rc = h->blob_create(c->job, &g.fd, &w);
    if (rc < 0) {
        w = NULL;
        rc = h->fail(c->job, rc, "GET %s: cannot create a blob: %s", s->url,
                     strerror(-rc));
        goto out;
    }
    set_options(&g, s, hdrs, errbuf, timeout);
    h->log(c->job, KILN_PLUGIN_LOG_DEBUG, "GET %s%s", s->url,
           cond != NULL ? " (conditional)" : "");
    cc = curl_easy_perform(g.curl);
    curl_easy_getinfo(g.curl, CURLINFO_RESPONSE_CODE, &r->status);
    rc = check_result(&g, s, cond, cc, errbuf, timeout);
    if (rc == 0 && r->status != 304) {
        rc = finish_blob(&g, s, &w, expect);
    }
out:
    if (w != NULL) {
        h->blob_abort(c->job, w);
    }
    EVP_MD_CTX_free(g.md);
    if (g.curl != NULL) {
        curl_easy_cleanup(g.curl);
    }
    curl_slist_free_all(hdrs);
    if (rc < 0) {
        http_resp_clear(r);
    }
    return rc;
}

void http_resp_clear(http_resp_t *r)
{
    free(r->etag);
    free(r->last_modified);
    free(r->content_disposition);
    r->etag = r->last_modified = r->content_disposition = NULL;
}
