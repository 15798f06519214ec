/*
 * Private to the registry client: the client struct and one HTTP exchange
 * (registry_http.c) with auth (registry_auth.c), used by the operations in
 * registry.c and registry_push.c.
 */
#ifndef KILN_OCI_REGISTRY_INTERNAL_H
#define KILN_OCI_REGISTRY_INTERNAL_H

#include <curl/curl.h>

#include "oci/registry.h"

/* A cached bearer token for (registry, scope). */
typedef struct reg_token {
    char *registry;
    char *scope;
    char *token;
    int64_t expires; /* kiln__mono_ns() deadline */
} reg_token_t;

struct kiln__oci_reg {
    kiln__oci_reg_opts_t o;
    CURL *curl;
    reg_token_t *tokens;
    size_t n_tokens;
    /* Registries that asked for Basic auth: credentials go with every
     * request to them. */
    char **basic;
    size_t n_basic;
};

/*
 * One request. The caller fills the inputs, runs kiln__oci_reg_do() and
 * reads the outputs, then releases them with kiln__oci_req_clear().
 */
typedef struct kiln__oci_req {
    /* Inputs. */
    const char *method; /* GET, HEAD, PUT, POST, PATCH, DELETE */
    const char *url;
    const char *registry;   /* as in the reference: auth and messages */
    const char *repository; /* for messages */
    const char *scope;      /* space-separated token scopes */
    const char *accept;
    const char *content_type;
    const char *content_range;
    const void *body;
    size_t body_len;
    bool follow; /* follow redirects (blob GETs) */
    /* 2xx bodies go to sink; without one they are kept in `data`, up to
     * `limit` bytes. */
    kiln__oci_write_fn sink;
    void *sink_ud;
    size_t limit;
    /* Ask for bytes from range_from on (Range: bytes=N-). */
    uint64_t range_from;

    /* Outputs. */
    long status;
    CURLcode cc;
    char *location; /* resolved against url */
    char *digest;   /* Docker-Content-Digest */
    char *content_type_out;
    uint64_t content_length;
    bool has_length;
    char *www_auth;
    kiln__buf_t data;    /* kept 2xx body */
    kiln__buf_t errbody; /* first bytes of a >= 400 body */
    uint64_t received;   /* 2xx body bytes seen, this attempt */
    bool too_big;
    bool cancelled;
    int sink_rc;
    kiln_error_t sink_err;
    char errbuf[CURL_ERROR_SIZE];
} kiln__oci_req_t;

/*
 * Builds "http[s]://ENDPOINT/v2/" + the formatted path into a malloc'ed
 * string (*out). Errors: KILN_ENOMEM.
 */
int kiln__oci_reg_url(kiln__oci_reg_t *r, const char *registry, char **out,
                      kiln_error_t *err, const char *fmt, ...)
    KILN_PRINTF(5, 6);

/*
 * Runs `q`: credentials or a cached token are attached; on a 401 the
 * challenge is answered (Basic credentials, or a Bearer token fetched and
 * cached) and the request is sent once more. Returns 0 when a response
 * arrived (any status but 401: the caller checks q->status), or an error:
 * KILN_EIO (unreachable, timed out, dropped: q->cc says which; still 401),
 * KILN_ECANCELED, KILN_E2BIG (over q->limit), KILN_ENOMEM, or what the sink
 * returned.
 */
int kiln__oci_reg_do(kiln__oci_reg_t *r, kiln__oci_req_t *q, kiln_error_t *err);

/*
 * One attempt of `q`, without the auth dance (registry_http.c): `auth` is
 * an Authorization header value or NULL, user/pass Basic credentials or
 * NULL. Returns as kiln__oci_reg_do(), a 401 included.
 */
int kiln__oci_reg_perform(kiln__oci_reg_t *r, kiln__oci_req_t *q,
                          const char *auth, const char *user, const char *pass,
                          kiln_error_t *err);

/* Releases the outputs of `q` and resets them, keeping the inputs. */
void kiln__oci_req_reset(kiln__oci_req_t *q);

/*
 * Fails with "METHOD URL: STATUS" plus the registry's own error message
 * when its body has one. Returns `code`.
 */
int kiln__oci_req_fail_status(const kiln__oci_req_t *q, int code,
                              kiln_error_t *err);

/* Resolves `ref` against `base` (a relative Location) into a malloc'ed
 * absolute URL, or NULL. */
char *kiln__oci_resolve_url(const char *base, const char *ref);

#endif
