/*
 * The http source plugin: files downloaded over HTTP(S), as BuildKit's
 * source/http.
 *
 * resolve pins a source to BuildKit's cache key for it: from http.checksum
 * alone when it is given (no request), else from the content. A download
 * goes into the blob store, and the kv store remembers, under the URL, the
 * validators (ETag, Last-Modified) and the blob, so that the next resolve
 * sends a conditional request and a 304 gives the same pin without a
 * download; under "pin:<pin>" it remembers which blob, file name and mtime
 * the pin stands for, for fetch. fetch copies the blob into the fetch
 * directory (downloading it first when resolve made no request).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http.h"

#define PIN_PREFIX "pin:"

static const kiln_host_t *host;

static int http_init(const kiln_host_t *h, void **state)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -EIO;
    }
    host = h;
    *state = NULL;
    return 0;
}

static void http_teardown(void *state)
{
    (void)state;
    curl_global_cleanup();
}

/* ---- translate ---- */

static int translate_mode(kiln_job_t *job, const char *v, kiln_attrs_t *attrs)
{
    const char *d = v;
    char *end, buf[16];
    unsigned long m;

    if (d[0] == '0' && (d[1] == 'o' || d[1] == 'O')) {
        d += 2;
    }
    errno = 0;
    m = strtoul(d, &end, 8);
    if (*d < '0' || *d > '7' || *end != '\0' || errno != 0 || m > 07777) {
        return host->fail(job, -EINVAL,
                          "chmod=%s: not an octal mode (like 0644)", v);
    }
    /* llb.Chmod keeps the permission bits only. */
    m &= 0777;
    if (m == 0) {
        return 0;
    }
    snprintf(buf, sizeof(buf), "0%lo", m);
    return host->attr_set(attrs, "http.perm", buf);
}

static int translate_id(kiln_job_t *job, const char *key, const char *v,
                        kiln_attrs_t *attrs)
{
    char *end, buf[24];
    unsigned long long id;

    errno = 0;
    id = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 ||
        id > 0xffffffffULL) {
        return host->fail(job, -EINVAL, "%s=%s: not a numeric id", key, v);
    }
    if (id == 0) {
        return 0; /* llb.Chown writes only non-zero ids */
    }
    snprintf(buf, sizeof(buf), "%llu", id);
    return host->attr_set(
        attrs, strcmp(key, "uid") == 0 ? "http.uid" : "http.gid", buf);
}

static int translate_url(kiln_job_t *job, const char *scheme, const char *url,
                         char *ident, size_t ident_size)
{
    size_t n = strlen(scheme);

    if (strncmp(url, scheme, n) != 0 || strncmp(url + n, "://", 3) != 0 ||
        url[n + 3] == '\0') {
        return host->fail(job, -EINVAL, "url=%s: not an %s:// URL", url,
                          scheme);
    }
    if (strlen(url) >= ident_size) {
        return host->fail(job, -ENAMETOOLONG, "url=%s: too long", url);
    }
    memcpy(ident, url, strlen(url) + 1);
    return 0;
}

/* llb.HTTP(url, llb.Checksum, llb.Filename, llb.Chmod, llb.Chown,
 * llb.AuthHeaderSecret): the URL as the identifier, the options as attrs. */
static int http_translate(void *state, kiln_job_t *job, const char *scheme,
                          const kiln_attrs_t *params, char *ident,
                          size_t ident_size, kiln_attrs_t *attrs)
{
    const char *url = host->attr_get(params, "url");
    size_t n = host->attr_count(params);
    int rc;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        const char *k = host->attr_key(params, i);
        if (strcmp(k, "url") != 0 && strcmp(k, "checksum") != 0 &&
            strcmp(k, "filename") != 0 && strcmp(k, "chmod") != 0 &&
            strcmp(k, "uid") != 0 && strcmp(k, "gid") != 0 &&
            strcmp(k, "authheadersecret") != 0) {
            return host->fail(job, -EINVAL,
                              "unknown parameter \"%s\" (known: url, "
                              "checksum, filename, chmod, uid, gid, "
                              "authheadersecret)",
                              k);
        }
    }
    if (url == NULL) {
        return host->fail(job, -EINVAL, "missing parameter url=URL");
    }
    rc = translate_url(job, scheme, url, ident, ident_size);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *k = host->attr_key(params, i);
        const char *v = host->attr_value(params, i);
        if (strcmp(k, "checksum") == 0) {
            rc = http_check_checksum(host, job, v);
            if (rc == 0) {
                rc = host->attr_set(attrs, "http.checksum", v);
            }
        } else if (strcmp(k, "filename") == 0 && *v != '\0') {
            rc = http_bad_file_name(v)
                     ? host->fail(job, -EINVAL,
                                  "filename=%s: must be one path element, "
                                  "not \".\" or \"..\"",
                                  v)
                     : host->attr_set(attrs, "http.filename", v);
        } else if (strcmp(k, "chmod") == 0) {
            rc = translate_mode(job, v, attrs);
        } else if (strcmp(k, "uid") == 0 || strcmp(k, "gid") == 0) {
            rc = translate_id(job, k, v, attrs);
        } else if (strcmp(k, "authheadersecret") == 0 && *v != '\0') {
            rc = host->attr_set(attrs, "http.authheadersecret", v);
        }
    }
    return rc;
}

/* ---- resolve ---- */

static const char *etag_value(const char *etag)
{
    return strncmp(etag, "W/", 2) == 0 ? etag + 2 : etag;
}

static int record_pin(const http_call_t *c, const char *pin, const char *digest,
                      const char *name, const char *last_modified)
{
    char key[sizeof(PIN_PREFIX) + HTTP_DIGEST_SIZE];
    http_record_t rec = {.digest = (char *)digest,
                         .filename = (char *)name,
                         .last_modified = (char *)last_modified};

    snprintf(key, sizeof(key), PIN_PREFIX "%s", pin);
    return http_record_set(c, key, &rec);
}

/*
 * The kv key of the URL's validators: the URL, plus the request headers
 * and auth secret that can change what it serves (BuildKit's urlHash keys
 * them the same way). Malloc'ed; NULL when out of memory.
 */
static char *url_key(const http_src_t *s)
{
    size_t n = strlen(s->url) + 1, off;
    char *key;

    for (size_t i = 0; i < s->n_header; i++) {
        n += strlen(s->header[i].name) + strlen(s->header[i].value) + 3;
    }
    if (s->auth_secret != NULL) {
        n += strlen(s->auth_secret) + 16;
    }
    if ((key = malloc(n)) == NULL) {
        return NULL;
    }
    off = (size_t)sprintf(key, "%s", s->url);
    for (size_t i = 0; i < s->n_header; i++) {
        off += (size_t)sprintf(key + off, "\n%s: %s", s->header[i].name,
                               s->header[i].value);
    }
    if (s->auth_secret != NULL) {
        sprintf(key + off, "\nauth secret: %s", s->auth_secret);
    }
    return key;
}

/* After a 200: the URL's validators for next time, or none. */
static int record_url(const http_call_t *c, const http_src_t *s,
                      const http_resp_t *r)
{
    http_record_t rec = {.digest = (char *)r->digest,
                         .etag = r->etag,
                         .last_modified = r->last_modified,
                         .disposition = r->content_disposition};
    char *key = url_key(s);
    int rc;

    if (key == NULL) {
        return c->host->fail(c->job, -ENOMEM, "out of memory");
    }
    if (r->etag != NULL || r->last_modified != NULL) {
        rc = http_record_set(c, key, &rec);
    } else {
        /* Old validators would make the server confirm a stale download. */
        rc = c->host->kv_delete(c->job, key);
        if (rc < 0) {
            rc = c->host->fail(c->job, rc, "forgetting %s: %s", s->url,
                               strerror(-rc));
        }
    }
    free(key);
    return rc;
}

/* A 304: the stored download is current, if the server means it. */
static int use_previous(const http_call_t *c, const http_src_t *s,
                        const http_record_t *prev, const http_resp_t *r,
                        char **name)
{
    if (r->etag != NULL && prev->etag != NULL &&
        strcmp(etag_value(r->etag), etag_value(prev->etag)) != 0) {
        return c->host->fail(c->job, -EIO,
                             "GET %s: 304 Not Modified for ETag %s, but "
                             "the stored download has %s",
                             s->url, r->etag, prev->etag);
    }
    c->host->log(c->job, KILN_PLUGIN_LOG_INFO,
                 "GET %s: 304 Not Modified, reusing %s", s->url, prev->digest);
    *name = http_file_name(s, r->content_disposition != NULL
                                  ? r->content_disposition
                                  : prev->disposition);
    return *name == NULL ? c->host->fail(c->job, -ENOMEM, "out of memory") : 0;
}

static int resolve_download(const http_call_t *c, const http_src_t *s)
{
    http_record_t prev;
    http_resp_t r = {0};
    const char *digest, *last_modified;
    char pin[HTTP_DIGEST_SIZE], *name = NULL, *key = url_key(s);
    bool cond;
    int rc;

    if (key == NULL) {
        return c->host->fail(c->job, -ENOMEM, "out of memory");
    }
    rc = http_record_get(c, key, &prev);
    free(key);
    if (rc < 0 && rc != -ENOENT) {
        return rc;
    }
    cond = rc == 0 && (prev.etag != NULL || prev.last_modified != NULL) &&
           http_blob_exists(c, prev.digest);
    rc = http_get(c, s, cond ? &prev : NULL, NULL, &r);
    if (rc < 0) {
        goto out;
    }
    if (r.status == 304) {
        rc = use_previous(c, s, &prev, &r, &name);
        digest = prev.digest;
        last_modified = prev.last_modified;
    } else {
        name = http_file_name(s, r.content_disposition);
        rc = name == NULL ? c->host->fail(c->job, -ENOMEM, "out of memory")
                          : record_url(c, s, &r);
        digest = r.digest;
        last_modified = r.last_modified;
    }
    if (rc == 0) {
        rc = http_cache_key(s, name, digest, last_modified, pin);
        if (rc < 0) {
            rc = c->host->fail(c->job, rc, "%s: computing the cache key",
                               s->url);
        }
    }
    if (rc == 0) {
        rc = record_pin(c, pin, digest, name, last_modified);
    }
    if (rc == 0) {
        rc = c->host->set_pin(c->job, pin);
    }
out:
    free(name);
    http_resp_clear(&r);
    http_record_clear(&prev);
    return rc;
}

static int http_resolve(void *state, kiln_job_t *job, const kiln_source_t *src)
{
    http_call_t c = {.host = host, .job = job, .src = src};
    http_src_t s;
    char pin[HTTP_DIGEST_SIZE], *name;
    int rc;

    (void)state;
    rc = http_src_parse(&c, &s);
    if (rc == 0) {
        rc = http_check_url(&c, s.url);
    }
    if (rc < 0) {
        return rc;
    }
    if (s.checksum == NULL) {
        return resolve_download(&c, &s);
    }
    /* The digest is known: BuildKit's key needs no request. */
    name = http_file_name(&s, NULL);
    if (name == NULL) {
        return host->fail(job, -ENOMEM, "out of memory");
    }
    rc = http_cache_key(&s, name, s.checksum, NULL, pin);
    free(name);
    if (rc < 0) {
        return host->fail(job, rc, "%s: computing the cache key", s.url);
    }
    return host->set_pin(job, pin);
}

/* ---- fetch ---- */

/* No usable record of the pin: download it now. With http.checksum the
 * body must have that digest; without, it must still give the pin. */
static int fetch_download(const http_call_t *c, const http_src_t *s,
                          const char *dest_dir)
{
    http_resp_t r = {0};
    char pin[HTTP_DIGEST_SIZE], *name;
    int rc;

    rc = http_check_url(c, s->url);
    if (rc == 0) {
        rc = http_get(c, s, NULL, s->checksum, &r);
    }
    if (rc < 0) {
        return rc;
    }
    /* With a checksum the pin was made without a response: so is the
     * name, so that the pin always stands for the same file. */
    name =
        http_file_name(s, s->checksum != NULL ? NULL : r.content_disposition);
    if (name == NULL) {
        rc = host->fail(c->job, -ENOMEM, "out of memory");
    } else if (s->checksum != NULL) {
        rc = http_cache_key(s, name, s->checksum, NULL, pin);
    } else {
        rc = http_cache_key(s, name, r.digest, r.last_modified, pin);
        if (rc == 0 && strcmp(pin, c->src->pin) != 0) {
            rc = host->fail(c->job, -EIO,
                            "GET %s: the content changed since it was "
                            "resolved (now %s, cache key %s instead of %s)",
                            s->url, r.digest, pin, c->src->pin);
        } else if (rc == 0) {
            rc = record_url(c, s, &r);
        }
    }
    if (rc == 0) {
        rc = record_pin(c, pin, r.digest, name, r.last_modified);
    }
    if (rc == 0) {
        rc = http_materialize(c, s, r.digest, name, r.last_modified, dest_dir);
    }
    free(name);
    http_resp_clear(&r);
    return rc;
}

static int http_fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                      const char *dest_dir)
{
    http_call_t c = {.host = host, .job = job, .src = src};
    http_record_t rec;
    http_src_t s;
    char key[sizeof(PIN_PREFIX) + HTTP_DIGEST_SIZE];
    int rc;

    (void)state;
    rc = http_src_parse(&c, &s);
    if (rc < 0) {
        return rc;
    }
    if (src->pin == NULL || strlen(src->pin) >= HTTP_DIGEST_SIZE) {
        return host->fail(job, -EINVAL, "%s: fetch without a valid pin", s.url);
    }
    snprintf(key, sizeof(key), PIN_PREFIX "%s", src->pin);
    rc = http_record_get(&c, key, &rec);
    if (rc < 0 && rc != -ENOENT) {
        return rc;
    }
    if (rc == 0 && rec.filename != NULL && http_blob_exists(&c, rec.digest)) {
        rc = http_materialize(&c, &s, rec.digest, rec.filename,
                              rec.last_modified, dest_dir);
        http_record_clear(&rec);
        return rc;
    }
    if (rc == 0) {
        http_record_clear(&rec);
    }
    if (s.checksum != NULL && http_blob_exists(&c, s.checksum)) {
        /* The same bytes came from elsewhere (the store is shared). */
        char *name = http_file_name(&s, NULL);
        if (name == NULL) {
            return host->fail(job, -ENOMEM, "out of memory");
        }
        rc = http_materialize(&c, &s, s.checksum, name, NULL, dest_dir);
        free(name);
        return rc;
    }
    return fetch_download(&c, &s, dest_dir);
}

static const char *const http_schemes[] = {"https", "http", NULL};

static const kiln_plugin_t http_plugin = {
    KILN_PLUGIN_HEADER,
    .name = "http",
    .version = "1.0.0",
    .description = "files downloaded over HTTP(S), as BuildKit's llb.HTTP",
    .schemes = http_schemes,
    .init = http_init,
    .teardown = http_teardown,
    .translate = http_translate,
    .resolve = http_resolve,
    .fetch = http_fetch,
};

KILN_PLUGIN_DEFINE(http_plugin)
