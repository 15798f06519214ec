/*
 * WWW-Authenticate challenges, Docker config.json credentials and token
 * endpoint responses, for the registry client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "oci/auth.h"

/* The config file is small; refuse anything absurd. */
#define CONFIG_MAX (4u << 20)

/* RFC 7230 tchar. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Advances *i past spaces and tabs. */
static void skip_ows(const char *s, size_t len, size_t *i)
{
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t')) {
        (*i)++;
    }
}

/* Reads a token at s[*i], which must not be empty. */
static bool read_token(const char *s, size_t len, size_t *i, size_t *start,
                       size_t *n)
{
    *start = *i;
    while (*i < len && s[*i] != '\0' && is_tchar(s[*i])) {
        (*i)++;
    }
    *n = *i - *start;
    return *n > 0;
}

/* Reads a quoted-string or a token value at s[*i] into a malloc'ed
 * string. Returns 0, KILN_EINVAL (malformed) or KILN_ENOMEM. */
static int read_value(const char *s, size_t len, size_t *i, char **out)
{
    kiln__buf_t b = KILN_BUF_INIT;
    size_t start, n;

    if (*i < len && s[*i] == '"') {
        (*i)++;
        while (*i < len && s[*i] != '"') {
            if (s[*i] == '\\' && *i + 1 < len) {
                (*i)++;
            }
            if (s[*i] == '\0') {
                kiln__buf_free(&b);
                return KILN_EINVAL;
            }
            kiln__buf_putc(&b, (uint8_t)s[*i]);
            (*i)++;
        }
        if (*i >= len) {
            kiln__buf_free(&b);
            return KILN_EINVAL;
        }
        (*i)++;
    } else {
        /* token68 values (base64 with '/' and '=') are tokens here too. */
        start = *i;
        while (*i < len && s[*i] != '\0' &&
               (is_tchar(s[*i]) || s[*i] == '/' || s[*i] == '=')) {
            (*i)++;
        }
        n = *i - start;
        if (n == 0) {
            return KILN_EINVAL;
        }
        kiln__buf_append(&b, s + start, n);
    }
    kiln__buf_putc(&b, 0);
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return KILN_ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
}

/* Stores a parameter we know; others are skipped. */
static void keep_param(kiln__oci_challenge_t *c, const char *name, size_t n,
                       char **val)
{
    char **slot = NULL;

    if (n == 5 && strncasecmp(name, "realm", 5) == 0) {
        slot = &c->realm;
    } else if (n == 7 && strncasecmp(name, "service", 7) == 0) {
        slot = &c->service;
    } else if (n == 5 && strncasecmp(name, "scope", 5) == 0) {
        slot = &c->scope;
    }
    if (slot != NULL) {
        /* The first occurrence wins, as Go's parser does. */
        if (*slot == NULL) {
            *slot = *val;
            *val = NULL;
        }
    }
    free(*val);
    *val = NULL;
}

/* True if s[i..] starts a new challenge: a token then whitespace or end,
 * not "name=". */
static bool starts_challenge(const char *s, size_t len, size_t i)
{
    size_t start, n;

    if (!read_token(s, len, &i, &start, &n)) {
        return false;
    }
    skip_ows(s, len, &i);
    return i >= len || s[i] != '=';
}

/* Reads the parameters of the challenge whose scheme ends at hdr[i], up
 * to the end or the next challenge, keeping those we know in *c. */
static int parse_params(const char *hdr, size_t len, size_t i,
                        kiln__oci_challenge_t *c, kiln_error_t *err)
{
    size_t start, n;
    char *val = NULL;
    int rc;

    for (;;) {
        while (i < len && (hdr[i] == ',' || hdr[i] == ' ' || hdr[i] == '\t')) {
            i++;
        }
        if (i >= len || starts_challenge(hdr, len, i)) {
            return 0;
        }
        if (!read_token(hdr, len, &i, &start, &n)) {
            return kiln__fail(err, KILN_EINVAL,
                              "WWW-Authenticate: expected a parameter name at "
                              "offset %zu",
                              i);
        }
        skip_ows(hdr, len, &i);
        if (i >= len || hdr[i] != '=') {
            return kiln__fail(err, KILN_EINVAL,
                              "WWW-Authenticate: expected '=' at offset %zu",
                              i);
        }
        i++;
        skip_ows(hdr, len, &i);
        rc = read_value(hdr, len, &i, &val);
        if (rc == KILN_ENOMEM) {
            return kiln__fail(err, rc, "out of memory");
        } else if (rc < 0) {
            return kiln__fail(err, rc,
                              "WWW-Authenticate: malformed value of \"%.*s\"",
                              (int)n, hdr + start);
        }
        keep_param(c, hdr + start, n, &val);
        skip_ows(hdr, len, &i);
        if (i < len && hdr[i] != ',') {
            return kiln__fail(err, KILN_EINVAL,
                              "WWW-Authenticate: expected ',' at offset %zu",
                              i);
        }
    }
}

int kiln__oci_challenge_parse(const char *hdr, size_t len,
                              kiln__oci_challenge_t *out, kiln_error_t *err)
{
    kiln__oci_challenge_t c = {0};
    size_t i = 0, start, n;
    int rc;

    skip_ows(hdr, len, &i);
    if (!read_token(hdr, len, &i, &start, &n)) {
        return kiln__fail(err, KILN_EINVAL,
                          "WWW-Authenticate: no authentication scheme");
    }
    if (n == 5 && strncasecmp(hdr + start, "Basic", 5) == 0) {
        c.scheme = KILN_OCI_AUTH_BASIC;
    } else if (n == 6 && strncasecmp(hdr + start, "Bearer", 6) == 0) {
        c.scheme = KILN_OCI_AUTH_BEARER;
    }
    if (i < len && hdr[i] != ' ' && hdr[i] != '\t' && hdr[i] != ',') {
        return kiln__fail(err, KILN_EINVAL,
                          "WWW-Authenticate: unexpected '%c' at offset %zu",
                          hdr[i], i);
    }
    rc = parse_params(hdr, len, i, &c, err);
    if (rc < 0) {
        kiln__oci_challenge_clear(&c);
        return rc;
    }
    *out = c;
    return 0;
}

void kiln__oci_challenge_clear(kiln__oci_challenge_t *c)
{
    free(c->realm);
    free(c->service);
    free(c->scope);
    memset(c, 0, sizeof(*c));
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    } else if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    } else if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    } else if (ch == '+') {
        return 62;
    } else if (ch == '/') {
        return 63;
    }
    return -1;
}

int kiln__oci_base64_decode(const char *in, size_t len, uint8_t **out,
                            size_t *out_len, kiln_error_t *err)
{
    uint8_t *o;
    uint32_t acc = 0;
    size_t n = 0, bits = 0;

    while (len > 0 && in[len - 1] == '=') {
        len--;
    }
    if (len % 4 == 1) {
        return kiln__fail(err, KILN_EINVAL, "invalid base64: bad length");
    }
    o = malloc(len * 3 / 4 + 1);
    if (o == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(in[i]);
        if (v < 0) {
            free(o);
            return kiln__fail(err, KILN_EINVAL,
                              "invalid base64: bad character at offset %zu", i);
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (uint8_t)(acc >> bits);
        }
    }
    o[n] = 0;
    *out = o;
    *out_len = n;
    return 0;
}

/* The registry part of an `auths` key: scheme and path dropped. */
static void key_host(const char *key, char *buf, size_t size)
{
    const char *p = strstr(key, "://");
    size_t n;

    p = p != NULL ? p + 3 : key;
    n = strcspn(p, "/");
    if (n >= size) {
        n = size - 1;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* True for the names Docker Hub goes by. */
static bool is_docker_hub(const char *h)
{
    return strcmp(h, "docker.io") == 0 || strcmp(h, "index.docker.io") == 0 ||
           strcmp(h, "registry-1.docker.io") == 0;
}

/* True if an `auths` key names `registry`. */
static bool key_matches(const char *key, const char *registry)
{
    char h[512];

    key_host(key, h, sizeof(h));
    if (strcmp(h, registry) == 0) {
        return true;
    }
    return is_docker_hub(h) && is_docker_hub(registry);
}

/* Splits a decoded "user:pass" into two malloc'ed strings. */
static int split_auth(uint8_t *dec, size_t n, const char *path, char **user,
                      char **pass, kiln_error_t *err)
{
    char *colon = memchr(dec, ':', n);

    if (colon == NULL || memchr(dec, '\0', n) != NULL) {
        return kiln__fail(err, KILN_EINVAL,
                          "%s: an auth entry is not base64 of user:password",
                          path);
    }
    *user = strndup((char *)dec, (size_t)(colon - (char *)dec));
    *pass = strdup(colon + 1);
    if (*user == NULL || *pass == NULL) {
        free(*user);
        free(*pass);
        *user = *pass = NULL;
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}

/* Credentials of one `auths` entry; an entry with neither `auth` nor
 * username and password leaves *user NULL. */
static int entry_creds(json_t *e, const char *path, char **user, char **pass,
                       kiln_error_t *err)
{
    const char *a = json_string_value(json_object_get(e, "auth"));
    const char *u = json_string_value(json_object_get(e, "username"));
    const char *p = json_string_value(json_object_get(e, "password"));
    uint8_t *dec = NULL;
    size_t n = 0;
    int rc;

    if (a != NULL && *a != '\0') {
        rc = kiln__oci_base64_decode(a, strlen(a), &dec, &n, err);
        if (rc < 0) {
            return kiln__fail_prefix(err, rc, "%s", path);
        }
        rc = split_auth(dec, n, path, user, pass, err);
        explicit_bzero(dec, n);
        free(dec);
        return rc;
    }
    if (u != NULL && p != NULL) {
        *user = strdup(u);
        *pass = strdup(p);
        if (*user == NULL || *pass == NULL) {
            free(*user);
            free(*pass);
            *user = *pass = NULL;
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
    }
    return 0;
}

int kiln__oci_config_creds(const char *dir, const char *registry, char **user,
                           char **pass, kiln_error_t *err)
{
    char path[4096];
    const char *home, *key;
    json_error_t jerr;
    json_t *root, *auths, *e;
    kiln_error_t rerr = {0};
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = 0;

    *user = *pass = NULL;
    if (dir == NULL) {
        dir = getenv("DOCKER_CONFIG");
    }
    if (dir != NULL && *dir != '\0') {
        snprintf(path, sizeof(path), "%s/config.json", dir);
    } else if ((home = getenv("HOME")) != NULL && *home != '\0') {
        snprintf(path, sizeof(path), "%s/.docker/config.json", home);
    } else {
        return 0;
    }
    /* A missing file is the common case, and leaves `err` untouched. */
    rc = kiln__read_file(path, CONFIG_MAX, &data, &len, &rerr);
    if (rc == KILN_ENOENT) {
        return 0;
    } else if (rc < 0) {
        return kiln__fail(err, rc, "%s", rerr.message);
    }
    root = json_loadb((const char *)data, len, 0, &jerr);
    explicit_bzero(data, len);
    free(data);
    if (root == NULL) {
        return kiln__fail(err, KILN_EINVAL, "%s:%d: %s", path, jerr.line,
                          jerr.text);
    }
    auths = json_object_get(root, "auths");
    json_object_foreach(auths, key, e)
    {
        if (key_matches(key, registry)) {
            rc = entry_creds(e, path, user, pass, err);
            if (rc < 0 || *user != NULL) {
                break;
            }
        }
    }
    json_decref(root);
    return rc;
}

int kiln__oci_token_parse(const void *body, size_t len, char **token,
                          long *expires_in, kiln_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr), *exp;
    const char *t;

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return kiln__fail(err, KILN_EBADMSG,
                          "token response is not a JSON object");
    }
    t = json_string_value(json_object_get(root, "token"));
    if (t == NULL || *t == '\0') {
        t = json_string_value(json_object_get(root, "access_token"));
    }
    if (t == NULL || *t == '\0') {
        json_decref(root);
        return kiln__fail(err, KILN_EBADMSG,
                          "token response has neither token nor access_token");
    }
    exp = json_object_get(root, "expires_in");
    *expires_in = json_is_integer(exp) && json_integer_value(exp) > 0 &&
                          json_integer_value(exp) < 86400 * 365
                      ? (long)json_integer_value(exp)
                      : 60;
    *token = strdup(t);
    json_decref(root);
    if (*token == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    return 0;
}
