/*
 * The registry client's transport: one libcurl exchange per request, the
 * scheme chosen per registry (plain HTTP for loopback and insecure
 * registries), timeouts, cancellation, and error messages naming the URL
 * and status. Auth is registry_auth.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "oci/registry_internal.h"

#define USER_AGENT "kiln-registry/1.0"

/* Bytes of an error response kept for the message. */
#define ERRBODY_MAX 4096

/* The host of host[:port] or [v6]:port, without brackets, into buf. */
static void registry_host(const char *registry, char *buf, size_t size)
{
    size_t n;

    if (registry[0] == '[') {
        n = strcspn(registry + 1, "]");
        registry++;
    } else {
        n = strcspn(registry, ":");
    }
    if (n >= size) {
        n = size - 1;
    }
    memcpy(buf, registry, n);
    buf[n] = '\0';
}

/* localhost, 127.0.0.0/8 and ::1 (without brackets). */
static bool is_loopback_host(const char *host)
{
    return strcasecmp(host, "localhost") == 0 ||
           strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

/* True if `registry` is spoken to over plain HTTP. */
static bool plain_http(const kiln__oci_reg_t *r, const char *registry)
{
    char host[256];

    registry_host(registry, host, sizeof(host));
    if (is_loopback_host(host)) {
        return true;
    }
    for (size_t i = 0; i < r->o.n_insecure; i++) {
        if (strcmp(r->o.insecure[i], registry) == 0 ||
            strcmp(r->o.insecure[i], host) == 0) {
            return true;
        }
    }
    return false;
}

int kiln__oci_reg_url(kiln__oci_reg_t *r, const char *registry, char **out,
                      kiln_error_t *err, const char *fmt, ...)
{
    kiln__buf_t b = KILN_BUF_INIT;
    va_list ap;
    char path[2048];

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    kiln__buf_printf(&b, "%s://%s/v2/%s",
                     plain_http(r, registry) ? "http" : "https",
                     kiln__oci_registry_endpoint(registry), path);
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = (char *)b.data;
    return 0;
}

char *kiln__oci_resolve_url(const char *base, const char *ref)
{
    CURLU *u = curl_url();
    char *s = NULL, *out = NULL;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
        out = strdup(s);
    }
    curl_free(s);
    curl_url_cleanup(u);
    return out;
}

int kiln__oci_reg_new(const kiln__oci_reg_opts_t *opts, kiln__oci_reg_t **out,
                      kiln_error_t *err)
{
    kiln__oci_reg_t *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (opts != NULL) {
        r->o = *opts;
    }
    if (r->o.connect_timeout <= 0) {
        r->o.connect_timeout = 30;
    }
    if (r->o.idle_timeout <= 0) {
        r->o.idle_timeout = 60;
    }
    r->curl = curl_easy_init();
    if (r->curl == NULL) {
        free(r);
        return kiln__fail(err, KILN_ENOMEM, "out of memory (curl)");
    }
    *out = r;
    return 0;
}

void kiln__oci_reg_free(kiln__oci_reg_t *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n_tokens; i++) {
        explicit_bzero(r->tokens[i].token, strlen(r->tokens[i].token));
        free(r->tokens[i].token);
        free(r->tokens[i].registry);
        free(r->tokens[i].scope);
    }
    free(r->tokens);
    for (size_t i = 0; i < r->n_basic; i++) {
        free(r->basic[i]);
    }
    free(r->basic);
    curl_easy_cleanup(r->curl);
    free(r);
}

void kiln__oci_req_reset(kiln__oci_req_t *q)
{
    free(q->location);
    free(q->digest);
    free(q->content_type_out);
    free(q->www_auth);
    kiln__buf_free(&q->data);
    kiln__buf_free(&q->errbody);
    q->location = q->digest = q->content_type_out = q->www_auth = NULL;
    q->status = 0;
    q->cc = CURLE_OK;
    q->content_length = 0;
    q->has_length = q->too_big = q->cancelled = false;
    q->received = 0;
    q->sink_rc = 0;
    q->errbuf[0] = '\0';
}

/* Replaces *slot with a copy of v[0..n) (NULL if out of memory). */
static void set_str(char **slot, const char *v, size_t n)
{
    free(*slot);
    *slot = strndup(v, n);
}

/* Header lines; a status line starts a new response (redirect hops). */
static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    kiln__oci_req_t *q = ud;
    size_t len = size * n, vlen;
    const char *colon, *v;

    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n')) {
        len--;
    }
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        free(q->digest);
        free(q->content_type_out);
        free(q->www_auth);
        free(q->location);
        q->digest = q->content_type_out = q->www_auth = q->location = NULL;
        q->has_length = false;
        return size * n;
    }
    colon = memchr(buf, ':', len);
    if (colon == NULL) {
        return size * n;
    }
    for (v = colon + 1; v < buf + len && (*v == ' ' || *v == '\t'); v++) {
    }
    vlen = len - (size_t)(v - buf);
#define IS(name)                                                               \
    ((size_t)(colon - buf) == strlen(name) &&                                  \
     strncasecmp(buf, name, strlen(name)) == 0)
    if (IS("Docker-Content-Digest")) {
        set_str(&q->digest, v, vlen);
    } else if (IS("Content-Type")) {
        /* Parameters (charset) are not part of a media type. */
        size_t m = 0;
        while (m < vlen && v[m] != ';' && v[m] != ' ') {
            m++;
        }
        set_str(&q->content_type_out, v, m);
    } else if (IS("Location")) {
        char *rel = strndup(v, vlen);
        free(q->location);
        q->location = rel != NULL ? kiln__oci_resolve_url(q->url, rel) : NULL;
        free(rel);
    } else if (IS("WWW-Authenticate") && q->www_auth == NULL) {
        set_str(&q->www_auth, v, vlen);
    } else if (IS("Content-Length")) {
        char *end;
        unsigned long long cl = strtoull(v, &end, 10);
        q->has_length = end != v;
        q->content_length = (uint64_t)cl;
    }
#undef IS
    return size * n;
}

/* What the curl callbacks see: the request and its client. */
typedef struct body_ctx {
    kiln__oci_req_t *q;
    kiln__oci_reg_t *r;
} body_ctx_t;

/* Body bytes: 2xx bodies to the sink or q->data (skipping what a
 * server that ignored our Range sends again), error bodies kept in part
 * for the message, redirect bodies dropped. */
static size_t on_body_ctx(char *buf, size_t size, size_t n, void *ud)
{
    body_ctx_t *b = ud;
    kiln__oci_req_t *q = b->q;
    size_t len = size * n;
    long st = 0;
    const char *p = buf;

    curl_easy_getinfo(b->r->curl, CURLINFO_RESPONSE_CODE, &st);
    if (st >= 400) {
        if (q->errbody.len < ERRBODY_MAX) {
            size_t k = ERRBODY_MAX - q->errbody.len;
            kiln__buf_append(&q->errbody, buf, len < k ? len : k);
        }
        return len;
    }
    if (st < 200 || st >= 300) {
        return len;
    }
    if (st == 200 && q->range_from > q->received) {
        /* The server ignored our Range: skip what we already have. */
        uint64_t skip = q->range_from - q->received;
        size_t s = skip < len ? (size_t)skip : len;
        q->received += s;
        p += s;
        len -= s;
        if (len == 0) {
            return size * n;
        }
    }
    q->received += len;
    if (q->sink != NULL) {
        q->sink_rc = q->sink(q->sink_ud, p, len, &q->sink_err);
        return q->sink_rc < 0 ? 0 : size * n;
    }
    if (q->data.len + len > q->limit) {
        q->too_big = true;
        return 0;
    }
    kiln__buf_append(&q->data, p, len);
    return kiln__buf_ok(&q->data) ? size * n : 0;
}

/* Polls the cancellation callback during transfers. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    body_ctx_t *b = ud;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (b->r->o.cancelled != NULL && b->r->o.cancelled(b->r->o.cancel_ud)) {
        b->q->cancelled = true;
        return 1;
    }
    return 0;
}

/* Appends "Name: value" to *list. */
static bool add_header(struct curl_slist **list, const char *name,
                       const char *v)
{
    char line[8192 + 64];
    struct curl_slist *l;

    if (strlen(name) + strlen(v) + 3 > sizeof(line)) {
        return false;
    }
    snprintf(line, sizeof(line), "%s: %s", name, v);
    l = curl_slist_append(*list, line);
    explicit_bzero(line, sizeof(line));
    if (l == NULL) {
        return false;
    }
    *list = l;
    return true;
}

/* Options common to every exchange: timeouts, protocols, callbacks. */
static void set_common(kiln__oci_reg_t *r, const char *url, char *errbuf,
                       body_ctx_t *b, kiln__oci_req_t *q)
{
    CURL *h = r->curl;
    char host[256] = "";
    CURLU *u = curl_url();
    char *uh = NULL;

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, r->o.connect_timeout);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, r->o.idle_timeout);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body_ctx);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, b);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    /* Loopback is never proxied (Go's net/http does the same). */
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &uh, 0) == CURLUE_OK) {
        registry_host(uh, host, sizeof(host));
    }
    if (is_loopback_host(host)) {
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    }
    curl_free(uh);
    curl_url_cleanup(u);
}

/* The method, its body, redirects and the Range of a request. */
static void set_method(CURL *h, const kiln__oci_req_t *q)
{
    if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(q->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                         q->body != NULL ? q->body : (const void *)"");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)q->body_len);
        if (strcmp(q->method, "POST") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
        }
    }
    if (q->follow) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    }
    if (q->range_from > 0) {
        char range[32];
        snprintf(range, sizeof(range), "%llu-",
                 (unsigned long long)q->range_from);
        curl_easy_setopt(h, CURLOPT_RANGE, range);
    }
}

/* Turns a finished transfer's curl code into 0 or an error. */
static int transfer_result(kiln__oci_reg_t *r, kiln__oci_req_t *q,
                           const char *url, kiln_error_t *err)
{
    const char *detail =
        q->errbuf[0] != '\0' ? q->errbuf : curl_easy_strerror(q->cc);
    long os_errno = 0;

    if (q->cancelled) {
        return kiln__fail(err, KILN_ECANCELED, "%s %s: canceled", q->method,
                          url);
    }
    switch (q->cc) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        curl_easy_getinfo(r->curl, CURLINFO_OS_ERRNO, &os_errno);
        return kiln__fail(
            err, KILN_EIO, "cannot reach registry %s: %s (%s)", q->registry,
            os_errno != 0 ? strerror((int)os_errno) : curl_easy_strerror(q->cc),
            detail);
    case CURLE_OPERATION_TIMEDOUT:
        return kiln__fail(err, KILN_EIO, "%s %s: timed out: %s", q->method, url,
                          detail);
    case CURLE_WRITE_ERROR:
        if (q->sink_rc < 0) {
            if (q->sink_err.code != 0) {
                return kiln__fail(err, q->sink_rc, "%s", q->sink_err.message);
            }
            return kiln__fail(err, q->sink_rc, "%s %s: writing the body: %s",
                              q->method, url, kiln_strerror(q->sink_rc));
        }
        if (q->too_big) {
            return kiln__fail(err, KILN_E2BIG,
                              "%s %s: response larger than %zu bytes",
                              q->method, url, q->limit);
        }
        return kiln__fail(err, KILN_ENOMEM, "%s %s: out of memory", q->method,
                          url);
    default:
        return kiln__fail(err, KILN_EIO, "%s %s: %s", q->method, url, detail);
    }
}

int kiln__oci_reg_perform(kiln__oci_reg_t *r, kiln__oci_req_t *q,
                          const char *auth, const char *user, const char *pass,
                          kiln_error_t *err)
{
    struct curl_slist *hdrs = NULL;
    body_ctx_t b = {q, r};
    bool ok;
    int rc;

    kiln__oci_req_reset(q);
    memset(&q->sink_err, 0, sizeof(q->sink_err));
    set_common(r, q->url, q->errbuf, &b, q);
    set_method(r->curl, q);
    /* No "Expect: 100-continue" wait before large bodies. */
    ok = add_header(&hdrs, "Expect", "");
    if (q->accept != NULL) {
        ok = ok && add_header(&hdrs, "Accept", q->accept);
    }
    if (q->content_type != NULL) {
        ok = ok && add_header(&hdrs, "Content-Type", q->content_type);
    }
    if (q->content_range != NULL) {
        ok = ok && add_header(&hdrs, "Content-Range", q->content_range);
    }
    if (auth != NULL) {
        ok = ok && add_header(&hdrs, "Authorization", auth);
    }
    if (!ok) {
        curl_slist_free_all(hdrs);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
    if (user != NULL) {
        curl_easy_setopt(r->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(r->curl, CURLOPT_USERNAME, user);
        curl_easy_setopt(r->curl, CURLOPT_PASSWORD, pass);
    }
    q->cc = curl_easy_perform(r->curl);
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &q->status);
    /* The handle keeps option pointers: drop those about to be freed. */
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    rc = transfer_result(r, q, q->url, err);
    if (rc == 0 && !kiln__buf_ok(&q->errbody)) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return rc;
}

/* The registry's own words: errors[0].message (and detail), if any. */
static void registry_message(const kiln__oci_req_t *q, char *buf, size_t size)
{
    json_t *root =
        q->errbody.len > 0
            ? json_loadb((const char *)q->errbody.data, q->errbody.len, 0, NULL)
            : NULL;
    json_t *e = json_array_get(json_object_get(root, "errors"), 0);
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));

    buf[0] = '\0';
    if (msg != NULL) {
        snprintf(buf, size, ": %s%s%s", code != NULL ? code : "",
                 code != NULL ? ": " : "", msg);
    }
    json_decref(root);
}

int kiln__oci_req_fail_status(const kiln__oci_req_t *q, int code,
                              kiln_error_t *err)
{
    char msg[512];

    registry_message(q, msg, sizeof(msg));
    return kiln__fail(err, code, "%s %s: status %ld%s", q->method, q->url,
                      q->status, msg);
}
