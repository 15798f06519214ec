/*
 * Registry authentication pieces that do no I/O on the network: the
 * WWW-Authenticate parser, Docker config.json credentials and token
 * responses. Used by the registry client (registry_http.c).
 */
#ifndef KILN_OCI_AUTH_H
#define KILN_OCI_AUTH_H

#include "internal.h"

enum kiln__oci_auth_scheme {
    KILN_OCI_AUTH_UNKNOWN = 0,
    KILN_OCI_AUTH_BASIC,
    KILN_OCI_AUTH_BEARER,
};

/* One challenge of a WWW-Authenticate header. Owned strings, or NULL when
 * the parameter is absent. */
typedef struct kiln__oci_challenge {
    enum kiln__oci_auth_scheme scheme;
    char *realm;
    char *service;
    char *scope;
} kiln__oci_challenge_t;

/*
 * Parses the first challenge of a WWW-Authenticate value hdr[0..len)
 * (RFC 7235: a scheme, then comma-separated name=token or
 * name="quoted\"string" parameters; a later challenge ends the first).
 * Schemes other than Basic and Bearer parse as KILN_OCI_AUTH_UNKNOWN.
 * Fills *out (release with kiln__oci_challenge_clear()) only on success.
 * Errors: KILN_EINVAL (malformed, message names the offset), KILN_ENOMEM.
 */
int kiln__oci_challenge_parse(const char *hdr, size_t len,
                              kiln__oci_challenge_t *out, kiln_error_t *err);

/* Releases a challenge's strings and zeroes it. */
void kiln__oci_challenge_clear(kiln__oci_challenge_t *c);

/*
 * Looks up credentials for `registry` (host[:port]) in `dir`/config.json
 * (dir NULL: $DOCKER_CONFIG, else $HOME/.docker). `auths` keys match when,
 * without scheme and path, they equal the registry; docker.io also matches
 * index.docker.io and registry-1.docker.io. An entry gives base64 `auth`
 * ("user:pass") or `username` and `password`. A missing file or entry is
 * not an error: *user and *pass stay NULL. On success with an entry, both
 * are malloc'ed and the caller wipes and frees them.
 * Errors: KILN_EINVAL (unreadable JSON, bad base64), KILN_EIO, KILN_ENOMEM.
 */
int kiln__oci_config_creds(const char *dir, const char *registry, char **user,
                           char **pass, kiln_error_t *err);

/*
 * Decodes standard base64 (padding optional, no whitespace) in[0..len)
 * into a malloc'ed NUL-terminated buffer. Errors: KILN_EINVAL, KILN_ENOMEM.
 */
int kiln__oci_base64_decode(const char *in, size_t len, uint8_t **out,
                            size_t *out_len, kiln_error_t *err);

/*
 * Reads a token endpoint's JSON response body[0..len): `token`, else
 * `access_token`, and `expires_in` (seconds; 60 when absent, as the
 * distribution spec says). *token is malloc'ed for the caller.
 * Errors: KILN_EBADMSG (not JSON, no token), KILN_ENOMEM.
 */
int kiln__oci_token_parse(const void *body, size_t len, char **token,
                          long *expires_in, kiln_error_t *err);

#endif
