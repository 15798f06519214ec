/*
 * Blob uploads: monolithic (POST, PUT ?digest=), chunked (POST, PATCH
 * with Content-Range, PUT ?digest=) and cross-repository mounts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "oci/registry_internal.h"

#define CHUNK_DEFAULT (8u << 20)
#define OCTET_STREAM  "application/octet-stream"
#define SCOPE_MAX     600

/* An upload session in progress: where to send the next request. */
typedef struct upload {
    kiln__oci_reg_t *r;
    const char *registry;
    const char *repository;
    char scope[SCOPE_MAX];
    char *location; /* absolute, owned */
} upload_t;

/* Moves the response's Location into the session: the next request
 * goes there. */
static int take_location(upload_t *u, kiln__oci_req_t *q, kiln_error_t *err)
{
    if (q->location == NULL) {
        return kiln__fail(err, KILN_EIO,
                          "%s %s: status %ld without a usable Location",
                          q->method, q->url, q->status);
    }
    free(u->location);
    u->location = q->location;
    q->location = NULL;
    return 0;
}

/* POSTs to the uploads endpoint, with `query` (or NULL). Sets *status to
 * 201 (a mount done: no session) or 202 (a session, whose URL goes to
 * u->location). Other statuses are errors. */
static int upload_start(upload_t *u, const char *query, long *status,
                        kiln_error_t *err)
{
    kiln__oci_req_t q = {0};
    char *url = NULL;
    int rc;

    rc = kiln__oci_reg_url(u->r, u->registry, &url, err, "%s/blobs/uploads/%s",
                           u->repository, query != NULL ? query : "");
    if (rc < 0) {
        return rc;
    }
    q = (kiln__oci_req_t){.method = "POST",
                          .url = url,
                          .registry = u->registry,
                          .repository = u->repository,
                          .scope = u->scope,
                          .limit = 1u << 20};
    rc = kiln__oci_reg_do(u->r, &q, err);
    if (rc == 0 && q.status != 202 && q.status != 201) {
        rc = kiln__oci_req_fail_status(&q, KILN_EIO, err);
    }
    if (rc == 0) {
        *status = q.status;
        if (q.status == 202) {
            rc = take_location(u, &q, err);
        }
    }
    kiln__oci_req_reset(&q);
    free(url);
    return rc;
}

/* u->location with "digest=D" added to its query, malloc'ed. */
static char *with_digest(const upload_t *u, const char *digest)
{
    const char *sep = strchr(u->location, '?') != NULL ? "&" : "?";
    size_t n = strlen(u->location) + strlen(digest) + 9;
    char *s = malloc(n);

    if (s != NULL) {
        snprintf(s, n, "%s%sdigest=%s", u->location, sep, digest);
    }
    return s;
}

/* Sends one request to the session: PATCH a chunk or PUT the end. */
static int upload_send(upload_t *u, const char *method, const char *url,
                       const void *data, size_t len, const char *range,
                       long want, kiln_error_t *err)
{
    kiln__oci_req_t q = {.method = method,
                         .url = url,
                         .registry = u->registry,
                         .repository = u->repository,
                         .scope = u->scope,
                         .content_type = OCTET_STREAM,
                         .content_range = range,
                         .body = data,
                         .body_len = len,
                         .limit = 1u << 20};
    int rc = kiln__oci_reg_do(u->r, &q, err);

    if (rc == 0 && q.status != want) {
        rc = kiln__oci_req_fail_status(&q, KILN_EIO, err);
    }
    if (rc == 0 && want == 202) {
        rc = take_location(u, &q, err);
    }
    kiln__oci_req_reset(&q);
    return rc;
}

/* Cancels an upload session, best effort: errors are not reported. */
static void upload_cancel(upload_t *u)
{
    kiln__oci_req_t q = {.method = "DELETE",
                         .url = u->location,
                         .registry = u->registry,
                         .repository = u->repository,
                         .scope = u->scope,
                         .limit = 1u << 20};

    if (u->location != NULL) {
        (void)kiln__oci_reg_do(u->r, &q, NULL);
        kiln__oci_req_reset(&q);
    }
}

/* Ends the session with PUT ?digest=, with data[0..len) as the last
 * (or only) piece. */
static int upload_finish(upload_t *u, const char *digest, const void *data,
                         size_t len, kiln_error_t *err)
{
    char *url = with_digest(u, digest);
    int rc;

    if (url == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = upload_send(u, "PUT", url, data, len, NULL, 201, err);
    free(url);
    return rc;
}

/* A session for pushing to registry/repository. */
static void upload_init(upload_t *u, kiln__oci_reg_t *r, const char *registry,
                        const char *repository)
{
    memset(u, 0, sizeof(*u));
    u->r = r;
    u->registry = registry;
    u->repository = repository;
    snprintf(u->scope, sizeof(u->scope), "repository:%s:pull,push", repository);
}

int kiln__oci_blob_push(kiln__oci_reg_t *r, const char *registry,
                        const char *repository, const char *digest,
                        const void *data, size_t len, kiln_error_t *err)
{
    char d[KILN_DIGEST_STRLEN + 1];
    upload_t u;
    long status = 0;
    int rc = kiln__sha256_digest(data, len, d);

    if (rc < 0) {
        return kiln__fail(err, rc, "out of memory");
    }
    if (digest != NULL && strcmp(digest, d) != 0) {
        return kiln__fail(err, KILN_EINVAL,
                          "blob push to %s/%s: the data's digest is %s, not "
                          "%s",
                          registry, repository, d, digest);
    }
    upload_init(&u, r, registry, repository);
    rc = upload_start(&u, NULL, &status, err);
    if (rc == 0 && status != 202) {
        rc = kiln__fail(err, KILN_EIO,
                        "blob push to %s/%s: the registry answered %ld to the "
                        "upload request",
                        registry, repository, status);
    }
    if (rc == 0) {
        rc = upload_finish(&u, d, data, len, err);
    }
    free(u.location);
    return rc;
}

/* Reads one chunk, looping over short reads; *got < cap only at the end. */
static int read_chunk(kiln__oci_read_fn read, void *ud, uint8_t *buf,
                      size_t cap, size_t *got, kiln_error_t *err)
{
    size_t n = 0;

    *got = 0;
    while (*got < cap) {
        int rc = read(ud, buf + *got, cap - *got, &n, err);
        if (rc < 0) {
            return rc;
        }
        if (n == 0) {
            break;
        }
        *got += n;
    }
    return 0;
}

/* The PATCH loop of a chunked push; the digest goes to `d`. */
static int push_chunks(upload_t *u, kiln__oci_read_fn read, void *ud,
                       size_t chunk, char d[KILN_DIGEST_STRLEN + 1],
                       kiln_error_t *err)
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(chunk);
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned rawlen = 0;
    uint64_t off = 0;
    size_t got = 0;
    char range[64];
    int rc = 0;

    if (md == NULL || buf == NULL ||
        !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    while (rc == 0) {
        rc = read_chunk(read, ud, buf, chunk, &got, err);
        if (rc < 0 || got == 0) {
            break;
        }
        if (!EVP_DigestUpdate(md, buf, got)) {
            rc = kiln__fail(err, KILN_ENOMEM, "SHA-256 update failed");
            break;
        }
        snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + got - 1));
        rc = upload_send(u, "PATCH", u->location, buf, got, range, 202, err);
        off += got;
    }
    if (rc == 0 && (!EVP_DigestFinal_ex(md, raw, &rawlen) || rawlen != 32)) {
        rc = kiln__fail(err, KILN_ENOMEM, "SHA-256 failed");
    }
    if (rc == 0) {
        memcpy(d, "sha256:", 7);
        for (unsigned i = 0; i < 32; i++) {
            d[7 + 2 * i] = hex[raw[i] >> 4];
            d[8 + 2 * i] = hex[raw[i] & 15];
        }
        d[KILN_DIGEST_STRLEN] = '\0';
    }
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

int kiln__oci_blob_push_chunked(kiln__oci_reg_t *r, const char *registry,
                                const char *repository, const char *digest,
                                kiln__oci_read_fn read, void *ud, size_t chunk,
                                char out_digest[KILN_DIGEST_STRLEN + 1],
                                kiln_error_t *err)
{
    char d[KILN_DIGEST_STRLEN + 1];
    upload_t u;
    long status = 0;
    int rc;

    if (digest != NULL && !kiln__digest_valid(digest)) {
        return kiln__fail(err, KILN_EINVAL, "invalid blob digest \"%s\"",
                          digest);
    }
    upload_init(&u, r, registry, repository);
    rc = upload_start(&u, NULL, &status, err);
    if (rc == 0 && status != 202) {
        rc = kiln__fail(err, KILN_EIO,
                        "blob push to %s/%s: the registry answered %ld to the "
                        "upload request",
                        registry, repository, status);
    }
    if (rc == 0) {
        rc = push_chunks(&u, read, ud, chunk > 0 ? chunk : CHUNK_DEFAULT, d,
                         err);
    }
    if (rc == 0 && digest != NULL && strcmp(digest, d) != 0) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "blob push to %s/%s: the data read hashes to %s, not "
                        "%s",
                        registry, repository, d, digest);
    }
    if (rc == 0) {
        rc = upload_finish(&u, d, NULL, 0, err);
    }
    if (rc < 0 && u.location != NULL) {
        upload_cancel(&u);
    }
    if (rc == 0 && out_digest != NULL) {
        memcpy(out_digest, d, sizeof(d));
    }
    free(u.location);
    return rc;
}

int kiln__oci_blob_mount(kiln__oci_reg_t *r, const char *registry,
                         const char *repository, const char *from_repository,
                         const char *digest, bool *mounted, kiln_error_t *err)
{
    char query[SCOPE_MAX];
    upload_t u;
    long status = 0;
    int rc;

    if (digest == NULL || !kiln__digest_valid(digest)) {
        return kiln__fail(err, KILN_EINVAL, "invalid blob digest \"%s\"",
                          digest != NULL ? digest : "(null)");
    }
    upload_init(&u, r, registry, repository);
    /* The token must allow pulling from the source repository too. */
    snprintf(u.scope, sizeof(u.scope),
             "repository:%s:pull,push repository:%s:pull", repository,
             from_repository);
    snprintf(query, sizeof(query), "?mount=%s&from=%s", digest,
             from_repository);
    rc = upload_start(&u, query, &status, err);
    if (rc == 0) {
        *mounted = status == 201;
        if (status == 202) {
            upload_cancel(&u);
        }
    }
    free(u.location);
    return rc;
}
