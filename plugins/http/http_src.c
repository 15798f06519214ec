/*
 * SourceOp attrs, file names, HTTP dates and the cache key, reproducing
 * BuildKit's source/http (Identifier, getFileName, formatCacheKey) so that
 * kiln's pins are the cache keys a BuildKit daemon computes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "http.h"

#define HEADER_PREFIX "http.header."

/* ---- Attrs ---- */

/* Go's strconv.ParseInt(v, 0, 64): a sign, then a 0x / 0o / 0b / 0 prefix
 * choosing the base, else decimal. */
static bool parse_go_int(const char *v, long long *out)
{
    int base = 10;
    bool neg = false;
    unsigned long long n = 0;
    const char *p = v;

    if (*p == '+' || *p == '-') {
        neg = *p++ == '-';
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && p[1] != '\0') {
        base = 8;
        p++;
    }
    if (*p == '\0') {
        return false;
    }
    for (; *p != '\0'; p++) {
        int d;
        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (*p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (*p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            return false;
        }
        if (d >= base || n > (0x7fffffffffffffffULL - (unsigned)d) / base) {
            return false;
        }
        n = n * (unsigned)base + (unsigned)d;
    }
    *out = neg ? -(long long)n : (long long)n;
    return true;
}

/* go-digest's Parse, restricted to the one algorithm the blob store
 * speaks. */
int http_check_checksum(const kiln_host_t *h, kiln_job_t *job, const char *v)
{
    const char *hex;

    if (strncmp(v, "sha256:", 7) != 0) {
        if (strncmp(v, "sha384:", 7) == 0 || strncmp(v, "sha512:", 7) == 0) {
            return h->fail(job, -ENOTSUP,
                           "http.checksum \"%s\": only sha256 digests "
                           "are supported",
                           v);
        }
        return h->fail(job, -EINVAL,
                       "http.checksum \"%s\": not a digest "
                       "(want sha256:<64 hex digits>)",
                       v);
    }
    hex = v + 7;
    if (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64) {
        return h->fail(job, -EINVAL,
                       "http.checksum \"%s\": not a sha256 digest "
                       "(want sha256:<64 lower-case hex digits>)",
                       v);
    }
    return 0;
}

/* Go's http.CanonicalHeaderKey for the names BuildKit accepts. */
static const char *supported_header(const char *name)
{
    if (strcasecmp(name, "accept") == 0) {
        return "Accept";
    }
    if (strcasecmp(name, "user-agent") == 0) {
        return "User-Agent";
    }
    return NULL;
}

bool http_bad_file_name(const char *name)
{
    return strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
           strcmp(name, "..") == 0;
}

static int parse_attr(const http_call_t *c, http_src_t *s, const char *k,
                      const char *v)
{
    long long *num = NULL;

    if (strcmp(k, "http.checksum") == 0) {
        int rc = http_check_checksum(c->host, c->job, v);
        if (rc < 0) {
            return rc;
        }
        s->checksum = v;
    } else if (strcmp(k, "http.filename") == 0) {
        if (http_bad_file_name(v)) {
            return c->host->fail(c->job, -EINVAL,
                                 "http.filename \"%s\": must be one path "
                                 "element, not \".\" or \"..\"",
                                 v);
        }
        s->filename = *v != '\0' ? v : NULL;
    } else if (strcmp(k, "http.perm") == 0) {
        num = &s->perm;
    } else if (strcmp(k, "http.uid") == 0) {
        num = &s->uid;
    } else if (strcmp(k, "http.gid") == 0) {
        num = &s->gid;
    } else if (strcmp(k, "http.authheadersecret") == 0) {
        s->auth_secret = *v != '\0' ? v : NULL;
    } else if (strncmp(k, "http.sig.", 9) == 0) {
        return c->host->fail(c->job, -ENOTSUP,
                             "%s: PGP signature verification of downloads "
                             "is not supported",
                             k);
    } else if (strncmp(k, HEADER_PREFIX, strlen(HEADER_PREFIX)) == 0) {
        const char *name = supported_header(k + strlen(HEADER_PREFIX));
        /* BuildKit silently drops the headers it does not honour. */
        if (name != NULL && s->n_header < HTTP_MAX_HEADERS) {
            s->header[s->n_header].name = name;
            s->header[s->n_header].value = v;
            s->n_header++;
        }
    }
    if (num != NULL) {
        if (!parse_go_int(v, num)) {
            return c->host->fail(c->job, -EINVAL, "%s \"%s\": not an integer",
                                 k, v);
        }
        if (num != &s->perm && *num < 0) {
            return c->host->fail(c->job, -EINVAL, "%s \"%s\": negative id", k,
                                 v);
        }
    }
    return 0;
}

int http_src_parse(const http_call_t *c, http_src_t *s)
{
    const kiln_host_t *h = c->host;
    size_t n = c->src->attrs != NULL ? h->attr_count(c->src->attrs) : 0;

    memset(s, 0, sizeof(*s));
    s->url = c->src->identifier;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_attr(c, s, h->attr_key(c->src->attrs, i),
                            h->attr_value(c->src->attrs, i));
        if (rc < 0) {
            return rc;
        }
    }
    /* Sorted by name, as BuildKit does before hashing (insertion sort:
     * equal names keep attr order). */
    for (size_t i = 1; i < s->n_header; i++) {
        for (size_t j = i;
             j > 0 && strcmp(s->header[j - 1].name, s->header[j].name) > 0;
             j--) {
            const char *tn = s->header[j].name, *tv = s->header[j].value;
            s->header[j] = s->header[j - 1];
            s->header[j - 1].name = tn;
            s->header[j - 1].value = tv;
        }
    }
    return 0;
}

/* ---- File names ---- */

/* Go mime: token characters (RFC 1521 tspecials excluded). */
static bool is_token_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static const char *token_end(const char *p)
{
    while (is_token_char((unsigned char)*p)) {
        p++;
    }
    return p;
}

/* A quoted-string or token value at *pp into a malloc'ed string; *pp moves
 * past it. NULL when malformed (or out of memory). */
static char *consume_value(const char **pp)
{
    const char *p = *pp;
    char *out;
    size_t n = 0;

    if (*p != '"') {
        const char *e = token_end(p);
        if (e == p) {
            return NULL;
        }
        *pp = e;
        return strndup(p, (size_t)(e - p));
    }
    out = malloc(strlen(p) + 1);
    if (out == NULL) {
        return NULL;
    }
    for (p++; *p != '\0'; p++) {
        if (*p == '"') {
            out[n] = '\0';
            *pp = p + 1;
            return out;
        }
        if (*p == '\r' || *p == '\n') {
            break;
        }
        /* Go unescapes only backslashed tspecials. */
        if (*p == '\\' && p[1] != '\0' && strchr("()<>@,;:\\\"/[]?=", p[1])) {
            p++;
        }
        out[n++] = *p;
    }
    free(out);
    return NULL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* RFC 2231 "charset'lang'pct-encoded" (utf-8 or us-ascii), in place. */
static bool decode_2231(char *v)
{
    char *q1 = strchr(v, '\''), *q2, *w;

    if (q1 == NULL || (q2 = strchr(q1 + 1, '\'')) == NULL) {
        return false;
    }
    *q1 = '\0';
    if (strcasecmp(v, "utf-8") != 0 && strcasecmp(v, "us-ascii") != 0) {
        return false;
    }
    w = v;
    for (const char *r = q2 + 1; *r != '\0'; r++) {
        if (*r == '%') {
            int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
            if (lo < 0) {
                return false;
            }
            *w++ = (char)(hi << 4 | lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return *v != '\0' || q2[1] == '\0';
}

/* Go's mime.ParseMediaType(cd) then params["filename"] (filename* wins
 * over filename); NULL when it has none or does not parse. */
static char *disposition_filename(const char *cd)
{
    const char *p = skip_ws(cd), *e = token_end(p);
    char *plain = NULL, *ext = NULL;
    bool ok = e != p;

    /* The disposition type: a token, or token/token. */
    if (ok && *e == '/') {
        const char *e2 = token_end(e + 1);
        ok = e2 != e + 1;
        e = e2;
    }
    p = skip_ws(e);
    while (ok && *p != '\0') {
        char key[64], *val;
        const char *k;
        size_t klen;

        if (*p != ';') {
            ok = false;
            break;
        }
        p = skip_ws(p + 1);
        if (*p == '\0') {
            break; /* a trailing ";" is ignored */
        }
        k = p;
        p = token_end(p);
        klen = (size_t)(p - k);
        p = skip_ws(p);
        if (klen == 0 || *p != '=') {
            ok = false;
            break;
        }
        p = skip_ws(p + 1);
        val = consume_value(&p);
        if (val == NULL) {
            ok = false;
            break;
        }
        p = skip_ws(p);
        if (klen >= sizeof(key)) {
            free(val);
            continue;
        }
        for (size_t i = 0; i < klen; i++) {
            key[i] = (char)tolower((unsigned char)k[i]);
        }
        key[klen] = '\0';
        if (strcmp(key, "filename") == 0 || strcmp(key, "filename*") == 0) {
            char **slot = key[8] == '*' ? &ext : &plain;
            if (*slot != NULL) {
                ok = false; /* Go: duplicate parameter name */
                free(val);
                break;
            }
            *slot = val;
        } else {
            free(val);
        }
    }
    if (ok && ext != NULL && decode_2231(ext)) {
        free(plain);
        return ext;
    }
    free(ext);
    if (!ok) {
        free(plain);
        return NULL;
    }
    return plain;
}

/* Go's path.Base, in place: the last element, "/" for only slashes, "."
 * for "". Returns a pointer into `p`. */
static char *path_base(char *p)
{
    size_t n = strlen(p);
    char *slash;

    if (n == 0) {
        return strcpy(p, ".");
    }
    while (n > 0 && p[n - 1] == '/') {
        p[--n] = '\0';
    }
    if (n == 0) {
        return strcpy(p, "/");
    }
    slash = strrchr(p, '/');
    return slash != NULL ? slash + 1 : p;
}

/* The decoded path of the URL's last element, or NULL. */
static char *url_base(const char *url)
{
    CURLU *u = curl_url();
    char *path = NULL, *out = NULL;

    if (u == NULL) {
        return NULL;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK) {
        char *base = path_base(path);
        if (strcmp(base, ".") != 0 && strcmp(base, "/") != 0 &&
            strcmp(base, "..") != 0) {
            out = strdup(base);
        }
    }
    curl_free(path);
    curl_url_cleanup(u);
    return out;
}

char *http_file_name(const http_src_t *s, const char *disposition)
{
    char *name;

    if (s->filename != NULL) {
        return strdup(s->filename);
    }
    if (disposition != NULL &&
        (name = disposition_filename(disposition)) != NULL) {
        size_t n = strlen(name);
        if (n > 0 && name[n - 1] != '/') {
            char *base = path_base(name);
            if (!http_bad_file_name(base)) {
                memmove(name, base, strlen(base) + 1);
                return name;
            }
        }
        free(name);
    }
    name = url_base(s->url);
    return name != NULL ? name : strdup("download");
}

/* ---- Go JSON ---- */

typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf_t;

static void put(jbuf_t *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(jbuf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (as Go's utf8.DecodeRune
 * accepts), 0 if invalid; *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, unsigned *cp)
{
    size_t n;
    unsigned c, min;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2, c = s[0] & 0x1f, min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3, c = s[0] & 0x0f, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    *cp = c;
    return n;
}

/* A string as Go's encoding/json writes it (HTML-safe escaping, invalid
 * UTF-8 as U+FFFD, U+2028/2029 escaped). */
static void put_str(jbuf_t *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    char esc[8];

    put(b, "\"", 1);
    while (*s != '\0') {
        unsigned cp;
        size_t n;
        if (*s < 0x80) {
            switch (*s) {
            case '"':
                puts_(b, "\\\"");
                break;
            case '\\':
                puts_(b, "\\\\");
                break;
            case '\b':
                puts_(b, "\\b");
                break;
            case '\f':
                puts_(b, "\\f");
                break;
            case '\n':
                puts_(b, "\\n");
                break;
            case '\r':
                puts_(b, "\\r");
                break;
            case '\t':
                puts_(b, "\\t");
                break;
            default:
                if (*s < 0x20 || *s == '<' || *s == '>' || *s == '&') {
                    snprintf(esc, sizeof(esc), "\\u%04x", *s);
                    puts_(b, esc);
                } else {
                    put(b, (const char *)s, 1);
                }
            }
            s++;
            continue;
        }
        n = utf8_seq(s, &cp);
        if (n == 0) {
            puts_(b, "\\ufffd");
            s++;
        } else if (cp == 0x2028 || cp == 0x2029) {
            snprintf(esc, sizeof(esc), "\\u%04x", cp);
            puts_(b, esc);
            s += n;
        } else {
            put(b, (const char *)s, n);
            s += n;
        }
    }
    put(b, "\"", 1);
}

static void put_field_str(jbuf_t *b, const char *name, const char *v)
{
    puts_(b, ",\"");
    puts_(b, name);
    puts_(b, "\":");
    put_str(b, v);
}

static void put_field_int(jbuf_t *b, const char *name, long long v)
{
    char num[32];

    snprintf(num, sizeof(num), ",\"%s\":%lld", name, v);
    puts_(b, num);
}

int http_cache_key(const http_src_t *s, const char *filename,
                   const char *digest, const char *last_modified,
                   char pin[HTTP_DIGEST_SIZE])
{
    jbuf_t b = {0};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    time_t t;
    int rc = 0;

    puts_(&b, "{\"Filename\":");
    put_str(&b, filename);
    put_field_int(&b, "Perm", s->perm);
    put_field_int(&b, "UID", s->uid);
    put_field_int(&b, "GID", s->gid);
    put_field_str(&b, "Checksum", digest);
    if (http_parse_time(last_modified, &t)) {
        char when[40];
        http_format_time(t, when);
        put_field_str(&b, "LastModTime", when);
    }
    if (s->auth_secret != NULL) {
        put_field_str(&b, "AuthHeaderSecret", s->auth_secret);
    }
    if (s->n_header > 0) {
        puts_(&b, ",\"Header\":[");
        for (size_t i = 0; i < s->n_header; i++) {
            puts_(&b, i > 0 ? ",{\"Name\":" : "{\"Name\":");
            put_str(&b, s->header[i].name);
            puts_(&b, ",\"Value\":");
            put_str(&b, s->header[i].value);
            puts_(&b, "}");
        }
        puts_(&b, "]");
    }
    puts_(&b, "}");
    if (b.oom) {
        rc = -ENOMEM;
    } else if (!EVP_Digest(b.p, b.len, md, &mdlen, EVP_sha256(), NULL) ||
               mdlen != 32) {
        rc = -EIO;
    } else {
        memcpy(pin, "sha256:", 7);
        for (unsigned i = 0; i < 32; i++) {
            snprintf(pin + 7 + 2 * i, 3, "%02x", md[i]);
        }
    }
    free(b.p);
    return rc;
}

long http_timeout(void)
{
    const char *v = getenv("KILN_HTTP_TIMEOUT");
    char *end;
    long n;

    if (v == NULL || *v == '\0') {
        return 300;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n <= 0) {
        return 300;
    }
    return n;
}
