/*
 * Registry v2 operations: manifests (GET, HEAD, PUT) and blobs (GET with
 * digest check and Range resume, HEAD, monolithic and chunked push,
 * cross-repository mount), on top of registry_http.c's exchanges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "oci/registry_internal.h"

/* Every manifest kind we understand, in order of preference. */
#define MANIFEST_ACCEPT                                                        \
    KILN_OCI_MT_INDEX ", " KILN_OCI_MT_MANIFEST ", " KILN_OCI_MT_DOCKER_LIST   \
                      ", " KILN_OCI_MT_DOCKER_V2

/* How many times a dropped blob download is resumed. */
#define RESUME_TRIES 3

#define OCTET_STREAM "application/octet-stream"

/* Longest "repository:NAME:pull,push repository:FROM:pull". */
#define SCOPE_MAX 600

/* The token scope for pulling (or pushing) `repository`, into buf
 * (SCOPE_MAX bytes). */
static void scope_of(char *buf, const char *repository, bool push)
{
    snprintf(buf, SCOPE_MAX, "repository:%s:%s", repository,
             push ? "pull,push" : "pull");
}

void kiln__oci_manifest_clear(kiln__oci_manifest_t *m)
{
    free(m->media_type);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

/* KILN_EINVAL unless `digest` is a valid sha256 digest. */
static int check_digest_arg(const char *digest, kiln_error_t *err)
{
    if (digest == NULL || !kiln__digest_valid(digest)) {
        return kiln__fail(err, KILN_EINVAL,
                          "invalid blob digest \"%s\": expected sha256: and "
                          "64 lowercase hex digits",
                          digest != NULL ? digest : "(null)");
    }
    return 0;
}

/* Hex SHA-256 of an EVP context, as "sha256:<hex>". */
static int md_final(EVP_MD_CTX *md, char out[KILN_DIGEST_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    if (!EVP_DigestFinal_ex(md, d, &n) || n != 32) {
        return KILN_ENOMEM;
    }
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[d[i] >> 4];
        out[8 + 2 * i] = hex[d[i] & 15];
    }
    out[KILN_DIGEST_STRLEN] = '\0';
    return 0;
}

/* The media type of a manifest whose response had no useful
 * Content-Type: its own mediaType member, if it has one. */
static char *sniff_media_type(const uint8_t *body, size_t len)
{
    json_t *root = json_loadb((const char *)body, len, 0, NULL);
    const char *mt = json_string_value(json_object_get(root, "mediaType"));
    char *out = mt != NULL ? strdup(mt) : NULL;

    json_decref(root);
    return out;
}

/* True if a Content-Type says nothing about the manifest's kind. */
static bool generic_type(const char *ct)
{
    return ct == NULL || strcmp(ct, "application/json") == 0 ||
           strcmp(ct, "text/plain") == 0 || strcmp(ct, OCTET_STREAM) == 0;
}

/* Sends a manifest request; `q` holds the response for the caller, who
 * resets it and frees *url. Maps 404 to "image not found". */
static int manifest_request(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                            const char *method, kiln__oci_req_t *q, char **url,
                            char *scope, kiln_error_t *err)
{
    char name[600];
    int rc;

    if (ref->tag == NULL && ref->digest == NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "image reference %s has neither tag nor digest",
                          kiln__oci_ref_format(ref, name, sizeof(name)));
    }
    rc = kiln__oci_reg_url(r, ref->registry, url, err, "%s/manifests/%s",
                           ref->repository,
                           ref->digest != NULL ? ref->digest : ref->tag);
    if (rc < 0) {
        return rc;
    }
    scope_of(scope, ref->repository, false);
    q->method = method;
    q->url = *url;
    q->registry = ref->registry;
    q->repository = ref->repository;
    q->scope = scope;
    q->accept = MANIFEST_ACCEPT;
    q->limit = KILN_OCI_MANIFEST_MAX;
    rc = kiln__oci_reg_do(r, q, err);
    if (rc == KILN_E2BIG) {
        return kiln__fail(err, rc, "manifest %s is larger than %u bytes",
                          kiln__oci_ref_format(ref, name, sizeof(name)),
                          KILN_OCI_MANIFEST_MAX);
    } else if (rc < 0) {
        return rc;
    }
    if (q->status == 404) {
        return kiln__fail(err, KILN_ENOENT, "image not found: %s",
                          kiln__oci_ref_format(ref, name, sizeof(name)));
    } else if (q->status != 200) {
        return kiln__oci_req_fail_status(q, KILN_EIO, err);
    }
    return 0;
}

int kiln__oci_manifest_get(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                           kiln__oci_manifest_t *out, kiln_error_t *err)
{
    kiln__oci_req_t q = {0};
    kiln__oci_manifest_t m = {0};
    char scope[SCOPE_MAX], name[600], *url = NULL;
    int rc = manifest_request(r, ref, "GET", &q, &url, scope, err);

    if (rc == 0) {
        rc = kiln__sha256_digest(q.data.data, q.data.len, m.digest);
        if (rc < 0) {
            rc = kiln__fail(err, rc, "out of memory");
        }
    }
    if (rc == 0 && ref->digest != NULL && strcmp(m.digest, ref->digest) != 0) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "manifest %s: digest mismatch: the registry sent %s, "
                        "expected %s",
                        kiln__oci_ref_format(ref, name, sizeof(name)), m.digest,
                        ref->digest);
    }
    if (rc == 0) {
        m.media_type = generic_type(q.content_type_out)
                           ? sniff_media_type(q.data.data, q.data.len)
                           : strdup(q.content_type_out);
        if (m.media_type == NULL) {
            m.media_type = strdup(
                q.content_type_out != NULL ? q.content_type_out : OCTET_STREAM);
        }
        m.len = q.data.len;
        m.size = q.data.len;
        /* An empty body still gets a buffer: callers may rely on it. */
        m.body = q.data.data != NULL ? q.data.data : calloc(1, 1);
        q.data.data = NULL;
        q.data.len = q.data.cap = 0;
        if (m.media_type == NULL || m.body == NULL) {
            kiln__oci_manifest_clear(&m);
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    if (rc == 0) {
        *out = m;
    }
    kiln__oci_req_reset(&q);
    free(url);
    return rc;
}

int kiln__oci_manifest_head(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                            kiln__oci_manifest_t *out, kiln_error_t *err)
{
    kiln__oci_req_t q = {0};
    kiln__oci_manifest_t m = {0};
    char scope[SCOPE_MAX], *url = NULL;
    const char *digest;
    int rc = manifest_request(r, ref, "HEAD", &q, &url, scope, err);

    if (rc == 0) {
        digest = q.digest != NULL ? q.digest : ref->digest;
        if (digest == NULL || !kiln__digest_valid(digest)) {
            rc = kiln__fail(err, KILN_EIO,
                            "HEAD %s: the registry sent no valid "
                            "Docker-Content-Digest",
                            url);
        } else if (ref->digest != NULL && strcmp(digest, ref->digest) != 0) {
            rc = kiln__fail(err, KILN_EBADMSG,
                            "HEAD %s: digest mismatch: the registry says %s",
                            url, digest);
        }
    }
    if (rc == 0) {
        memcpy(m.digest, digest, KILN_DIGEST_STRLEN + 1);
        m.size = q.has_length ? q.content_length : 0;
        m.media_type = strdup(q.content_type_out != NULL ? q.content_type_out
                                                         : OCTET_STREAM);
        if (m.media_type == NULL) {
            rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        } else {
            *out = m;
        }
    }
    kiln__oci_req_reset(&q);
    free(url);
    return rc;
}

int kiln__oci_manifest_put(kiln__oci_reg_t *r, const kiln__oci_ref_t *ref,
                           const char *media_type, const void *body, size_t len,
                           char digest[KILN_DIGEST_STRLEN + 1],
                           kiln_error_t *err)
{
    kiln__oci_req_t q = {0};
    char scope[SCOPE_MAX], d[KILN_DIGEST_STRLEN + 1], *url = NULL;
    int rc = kiln__sha256_digest(body, len, d);

    if (rc < 0) {
        return kiln__fail(err, rc, "out of memory");
    }
    if (ref->digest != NULL && strcmp(ref->digest, d) != 0) {
        return kiln__fail(err, KILN_EINVAL,
                          "manifest push: the body's digest is %s, the "
                          "reference names %s",
                          d, ref->digest);
    }
    rc = kiln__oci_reg_url(r, ref->registry, &url, err, "%s/manifests/%s",
                           ref->repository, ref->tag != NULL ? ref->tag : d);
    if (rc < 0) {
        return rc;
    }
    scope_of(scope, ref->repository, true);
    q = (kiln__oci_req_t){.method = "PUT",
                          .url = url,
                          .registry = ref->registry,
                          .repository = ref->repository,
                          .scope = scope,
                          .content_type = media_type,
                          .body = body,
                          .body_len = len,
                          .limit = 1u << 20};
    rc = kiln__oci_reg_do(r, &q, err);
    if (rc == 0 && q.status != 201 && q.status != 200) {
        rc = kiln__oci_req_fail_status(&q, KILN_EIO, err);
    }
    if (rc == 0 && digest != NULL) {
        memcpy(digest, d, sizeof(d));
    }
    kiln__oci_req_reset(&q);
    free(url);
    return rc;
}

/* Hashes a blob on its way to the caller's write callback. */
typedef struct hash_sink {
    EVP_MD_CTX *md;
    kiln__oci_write_fn write;
    void *ud;
    uint64_t n;
} hash_sink_t;

/* Hashes a piece, then passes it on; counts what the caller took. */
static int hash_write(void *ud, const void *data, size_t len, kiln_error_t *err)
{
    hash_sink_t *h = ud;
    int rc;

    if (!EVP_DigestUpdate(h->md, data, len)) {
        return kiln__fail(err, KILN_ENOMEM, "SHA-256 update failed");
    }
    rc = h->write(h->ud, data, len, err);
    if (rc == 0) {
        h->n += len;
    }
    return rc;
}

/* Transfer errors after which the rest of a blob is asked for again. */
static bool resumable(CURLcode cc)
{
    return cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR ||
           cc == CURLE_GOT_NOTHING || cc == CURLE_OPERATION_TIMEDOUT ||
           cc == CURLE_SEND_ERROR || cc == CURLE_HTTP2_STREAM ||
           cc == CURLE_HTTP2;
}

/* The download loop: GET, and after a dropped connection GET the rest. */
static int blob_transfer(kiln__oci_reg_t *r, kiln__oci_req_t *q, hash_sink_t *h,
                         const char *digest, kiln_error_t *err)
{
    int rc;

    for (int tries = 0;; tries++) {
        q->range_from = h->n;
        rc = kiln__oci_reg_do(r, q, err);
        if (rc < 0 && resumable(q->cc) && tries < RESUME_TRIES &&
            (q->status == 200 || q->status == 206)) {
            continue;
        }
        if (rc < 0) {
            return rc;
        }
        if (q->status == 404) {
            return kiln__fail(err, KILN_ENOENT, "blob %s not found in %s/%s",
                              digest, q->registry, q->repository);
        } else if (q->status != 200 && q->status != 206) {
            return kiln__oci_req_fail_status(q, KILN_EIO, err);
        }
        return 0;
    }
}

int kiln__oci_blob_get(kiln__oci_reg_t *r, const char *registry,
                       const char *repository, const char *digest,
                       kiln__oci_write_fn write, void *ud, uint64_t *size,
                       kiln_error_t *err)
{
    hash_sink_t h = {.write = write, .ud = ud};
    kiln__oci_req_t q = {0};
    char scope[SCOPE_MAX], got[KILN_DIGEST_STRLEN + 1], *url = NULL;
    int rc = check_digest_arg(digest, err);

    if (rc < 0) {
        return rc;
    }
    rc = kiln__oci_reg_url(r, registry, &url, err, "%s/blobs/%s", repository,
                           digest);
    if (rc < 0) {
        return rc;
    }
    h.md = EVP_MD_CTX_new();
    if (h.md == NULL || !EVP_DigestInit_ex(h.md, EVP_sha256(), NULL)) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        goto out;
    }
    scope_of(scope, repository, false);
    q = (kiln__oci_req_t){.method = "GET",
                          .url = url,
                          .registry = registry,
                          .repository = repository,
                          .scope = scope,
                          .follow = true,
                          .sink = hash_write,
                          .sink_ud = &h};
    rc = blob_transfer(r, &q, &h, digest, err);
    if (rc == 0 && md_final(h.md, got) < 0) {
        rc = kiln__fail(err, KILN_ENOMEM, "SHA-256 failed");
    }
    if (rc == 0 && strcmp(got, digest) != 0) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "blob %s from %s/%s: digest mismatch: the %llu bytes "
                        "received hash to %s",
                        digest, registry, repository, (unsigned long long)h.n,
                        got);
    }
    if (rc == 0 && size != NULL) {
        *size = h.n;
    }
out:
    kiln__oci_req_reset(&q);
    EVP_MD_CTX_free(h.md);
    free(url);
    return rc;
}

int kiln__oci_blob_head(kiln__oci_reg_t *r, const char *registry,
                        const char *repository, const char *digest,
                        bool *exists, uint64_t *size, kiln_error_t *err)
{
    kiln__oci_req_t q = {0};
    char scope[SCOPE_MAX], *url = NULL;
    int rc = check_digest_arg(digest, err);

    if (rc == 0) {
        rc = kiln__oci_reg_url(r, registry, &url, err, "%s/blobs/%s",
                               repository, digest);
    }
    if (rc < 0) {
        return rc;
    }
    scope_of(scope, repository, false);
    q = (kiln__oci_req_t){.method = "HEAD",
                          .url = url,
                          .registry = registry,
                          .repository = repository,
                          .scope = scope,
                          .follow = true};
    rc = kiln__oci_reg_do(r, &q, err);
    if (rc == 0 && q.status != 200 && q.status != 404) {
        rc = kiln__oci_req_fail_status(&q, KILN_EIO, err);
    }
    if (rc == 0) {
        *exists = q.status == 200;
        if (size != NULL) {
            *size = *exists && q.has_length ? q.content_length : 0;
        }
    }
    kiln__oci_req_reset(&q);
    free(url);
    return rc;
}
