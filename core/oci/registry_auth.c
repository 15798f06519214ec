/*
 * The registry client's auth: a 401's WWW-Authenticate is answered with
 * Basic credentials (explicit ones, else Docker's config.json) or a Bearer
 * token from the challenge's realm, cached per (registry, scope) until it
 * expires, and the request is sent once more.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci/auth.h"
#include "oci/registry_internal.h"

/* A token is dropped this long before the registry would refuse it. */
#define TOKEN_MARGIN_NS (10 * 1000000000LL)

/* The unexpired cached token for (registry, scope), or NULL. */
static reg_token_t *find_token(kiln__oci_reg_t *r, const char *registry,
                               const char *scope)
{
    int64_t now = kiln__mono_ns();

    for (size_t i = 0; i < r->n_tokens; i++) {
        reg_token_t *t = &r->tokens[i];
        if (strcmp(t->registry, registry) == 0 &&
            strcmp(t->scope, scope) == 0) {
            return t->expires > now ? t : NULL;
        }
    }
    return NULL;
}

/* Stores a token, replacing an expired one of the same key. Takes `tok`. */
static int keep_token(kiln__oci_reg_t *r, const char *registry,
                      const char *scope, char *tok, long expires_in,
                      kiln_error_t *err)
{
    int64_t exp =
        kiln__mono_ns() + (int64_t)expires_in * 1000000000LL - TOKEN_MARGIN_NS;
    reg_token_t *t = NULL, *grown;

    for (size_t i = 0; i < r->n_tokens; i++) {
        if (strcmp(r->tokens[i].registry, registry) == 0 &&
            strcmp(r->tokens[i].scope, scope) == 0) {
            t = &r->tokens[i];
            explicit_bzero(t->token, strlen(t->token));
            free(t->token);
            break;
        }
    }
    if (t == NULL) {
        grown = realloc(r->tokens, (r->n_tokens + 1) * sizeof(*grown));
        if (grown == NULL) {
            free(tok);
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        r->tokens = grown;
        t = &r->tokens[r->n_tokens];
        t->registry = strdup(registry);
        t->scope = strdup(scope);
        if (t->registry == NULL || t->scope == NULL) {
            free(t->registry);
            free(t->scope);
            free(tok);
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        r->n_tokens++;
    }
    t->token = tok;
    /* Short-lived tokens are still used for the retry they were got for. */
    t->expires = expires_in * 1000000000LL > TOKEN_MARGIN_NS
                     ? exp
                     : kiln__mono_ns() + expires_in * 1000000000LL;
    return 0;
}

/* True if `registry` asked for Basic auth before. */
static bool uses_basic(const kiln__oci_reg_t *r, const char *registry)
{
    for (size_t i = 0; i < r->n_basic; i++) {
        if (strcmp(r->basic[i], registry) == 0) {
            return true;
        }
    }
    return false;
}

/* Remembers that `registry` wants Basic auth. */
static int mark_basic(kiln__oci_reg_t *r, const char *registry,
                      kiln_error_t *err)
{
    char **grown;

    if (uses_basic(r, registry)) {
        return 0;
    }
    grown = realloc(r->basic, (r->n_basic + 1) * sizeof(*grown));
    if (grown == NULL || (grown[r->n_basic] = strdup(registry)) == NULL) {
        if (grown != NULL) {
            r->basic = grown;
        }
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    r->basic = grown;
    r->n_basic++;
    return 0;
}

/* Credentials for `registry`: the explicit ones, else config.json's. The
 * caller wipes and frees both. */
static int get_creds(kiln__oci_reg_t *r, const char *registry, char **user,
                     char **pass, kiln_error_t *err)
{
    if (r->o.username != NULL) {
        *user = strdup(r->o.username);
        *pass = strdup(r->o.password != NULL ? r->o.password : "");
        if (*user == NULL || *pass == NULL) {
            free(*user);
            free(*pass);
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        return 0;
    }
    return kiln__oci_config_creds(r->o.docker_config_dir, registry, user, pass,
                                  err);
}

/* Wipes and frees credentials from get_creds(). NULLs are fine. */
static void free_creds(char *user, char *pass)
{
    if (user != NULL) {
        explicit_bzero(user, strlen(user));
    }
    if (pass != NULL) {
        explicit_bzero(pass, strlen(pass));
    }
    free(user);
    free(pass);
}

/* The message of a refused or missing login. */
static int auth_required(const kiln__oci_req_t *q, kiln_error_t *err)
{
    return kiln__fail(err, KILN_EIO,
                      "authentication required for %s (%s): wrong or missing "
                      "credentials",
                      q->registry, q->repository);
}

/* Appends "name=escaped(value)" to the token URL. */
static void add_query(kiln__buf_t *b, CURL *h, const char *name,
                      const char *value, bool *first)
{
    char *e = curl_easy_escape(h, value, 0);

    if (e == NULL) {
        b->oom = true;
        return;
    }
    kiln__buf_printf(b, "%c%s=%s", *first ? '?' : '&', name, e);
    *first = false;
    curl_free(e);
}

/* The token URL: realm?service=...&scope=... (one scope= per scope). */
static char *token_url(kiln__oci_reg_t *r, const kiln__oci_challenge_t *c,
                       const char *scope)
{
    kiln__buf_t b = KILN_BUF_INIT;
    bool first = strchr(c->realm, '?') == NULL;
    const char *p = scope;

    kiln__buf_puts(&b, c->realm);
    if (c->service != NULL) {
        add_query(&b, r->curl, "service", c->service, &first);
    }
    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, " ");
        if (n > 0) {
            char *one = strndup(p, n);
            if (one == NULL) {
                b.oom = true;
                break;
            }
            add_query(&b, r->curl, "scope", one, &first);
            free(one);
        }
        p += n;
        while (*p == ' ') {
            p++;
        }
    }
    kiln__buf_putc(&b, 0);
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* GETs a token for `scope` from the challenge's realm, with credentials
 * when there are some, and caches it under (registry, key). */
static int fetch_token(kiln__oci_reg_t *r, const kiln__oci_req_t *q,
                       const kiln__oci_challenge_t *c, const char *scope,
                       const char *key, kiln_error_t *err)
{
    kiln__oci_req_t t = {0};
    char *user = NULL, *pass = NULL, *tok = NULL, *url;
    long expires_in = 0;
    int rc;

    if (c->realm == NULL || c->realm[0] == '\0') {
        return kiln__fail(err, KILN_EIO,
                          "%s %s: the Bearer challenge names no realm",
                          q->method, q->url);
    }
    url = token_url(r, c, scope);
    if (url == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = get_creds(r, q->registry, &user, &pass, err);
    if (rc == 0) {
        t.method = "GET";
        t.url = url;
        t.registry = q->registry;
        t.repository = q->repository;
        t.follow = true;
        t.limit = 1u << 20;
        rc = kiln__oci_reg_perform(r, &t, NULL, user, pass, err);
    }
    if (rc == 0 && (t.status == 401 || t.status == 403)) {
        rc = auth_required(q, err);
    } else if (rc == 0 && t.status != 200) {
        rc = kiln__oci_req_fail_status(&t, KILN_EIO, err);
    }
    if (rc == 0) {
        rc = kiln__oci_token_parse(t.data.data, t.data.len, &tok, &expires_in,
                                   err);
        if (rc < 0) {
            rc = kiln__fail_prefix(err, rc, "GET %s", c->realm);
        }
    }
    if (rc == 0) {
        rc = keep_token(r, q->registry, key, tok, expires_in, err);
    }
    free_creds(user, pass);
    kiln__oci_req_reset(&t);
    free(url);
    return rc;
}

/* Answers a 401: sets up Basic for the registry or fetches a token. */
static int answer_challenge(kiln__oci_reg_t *r, kiln__oci_req_t *q,
                            kiln_error_t *err)
{
    kiln__oci_challenge_t c = {0};
    char *user = NULL, *pass = NULL;
    int rc;

    if (q->www_auth == NULL ||
        kiln__oci_challenge_parse(q->www_auth, strlen(q->www_auth), &c, NULL) <
            0 ||
        c.scheme == KILN_OCI_AUTH_UNKNOWN) {
        kiln__oci_challenge_clear(&c);
        return auth_required(q, err);
    }
    if (c.scheme == KILN_OCI_AUTH_BEARER) {
        /* Our own scopes, else the one the registry asked for. */
        const char *scope = q->scope != NULL  ? q->scope
                            : c.scope != NULL ? c.scope
                                              : "";
        rc =
            fetch_token(r, q, &c, scope, q->scope != NULL ? q->scope : "", err);
    } else {
        rc = get_creds(r, q->registry, &user, &pass, err);
        if (rc == 0 && user == NULL) {
            rc = auth_required(q, err);
        } else if (rc == 0) {
            rc = mark_basic(r, q->registry, err);
        }
        free_creds(user, pass);
    }
    kiln__oci_challenge_clear(&c);
    return rc;
}

/* One attempt with whatever auth is known for the registry. */
static int attempt(kiln__oci_reg_t *r, kiln__oci_req_t *q, kiln_error_t *err)
{
    const char *scope = q->scope != NULL ? q->scope : "";
    reg_token_t *t = find_token(r, q->registry, scope);
    char *user = NULL, *pass = NULL, *auth = NULL;
    int rc = 0;

    if (t != NULL) {
        auth = malloc(strlen(t->token) + 8);
        if (auth == NULL) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        sprintf(auth, "Bearer %s", t->token);
    } else if (uses_basic(r, q->registry)) {
        rc = get_creds(r, q->registry, &user, &pass, err);
    }
    if (rc == 0) {
        rc = kiln__oci_reg_perform(r, q, auth, user, pass, err);
    }
    if (auth != NULL) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    free_creds(user, pass);
    return rc;
}

int kiln__oci_reg_do(kiln__oci_reg_t *r, kiln__oci_req_t *q, kiln_error_t *err)
{
    int rc = attempt(r, q, err);

    if (rc < 0 || q->status != 401) {
        return rc;
    }
    rc = answer_challenge(r, q, err);
    if (rc == 0) {
        rc = attempt(r, q, err);
    }
    if (rc == 0 && q->status == 401) {
        rc = auth_required(q, err);
    }
    return rc;
}
