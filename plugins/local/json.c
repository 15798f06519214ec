/*
 * String lists as JSON, the way BuildKit's Go client writes the local
 * source's pattern attrs (json.Marshal of a []string: compact, HTML-safe
 * escapes, invalid UTF-8 as U+FFFD), and parsing them back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

typedef struct sbuf {
    char *p;
    size_t n;
    size_t cap;
} sbuf_t;

static int sb_put(sbuf_t *b, const char *s, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap < b->n + len + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            return -ENOMEM;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

/* Length of the valid UTF-8 sequence at s (as Go's utf8.DecodeRune), or 0
 * when it is invalid; *r gets the rune. */
static size_t utf8_len(const unsigned char *s, uint32_t *r)
{
    size_t n;
    uint32_t c, min;

    if (s[0] < 0x80) {
        *r = s[0];
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        n = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    *r = c;
    return n;
}

/* encoding/json's encodeState.string with escapeHTML. */
static int put_string(sbuf_t *b, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    int rc = sb_put(b, "\"", 1);

    while (rc == 0 && *s != '\0') {
        uint32_t r;
        size_t n = utf8_len(s, &r);
        char esc[8] = "\\u00";

        if (n == 0) {
            rc = sb_put(b, "\\ufffd", 6);
            s++;
            continue;
        }
        if (r == '"' || r == '\\') {
            esc[1] = (char)r;
            rc = sb_put(b, esc, 2);
        } else if (r == '\n' || r == '\r' || r == '\t' || r == '\b' ||
                   r == '\f') {
            esc[1] = r == '\n'   ? 'n'
                     : r == '\r' ? 'r'
                     : r == '\t' ? 't'
                     : r == '\b' ? 'b'
                                 : 'f';
            rc = sb_put(b, esc, 2);
        } else if (r < 0x20 || r == '<' || r == '>' || r == '&') {
            esc[4] = hex[r >> 4];
            esc[5] = hex[r & 0xf];
            rc = sb_put(b, esc, 6);
        } else if (r == 0x2028 || r == 0x2029) {
            rc = sb_put(b, r == 0x2028 ? "\\u2028" : "\\u2029", 6);
        } else {
            rc = sb_put(b, (const char *)s, n);
        }
        s += n;
    }
    return rc == 0 ? sb_put(b, "\"", 1) : rc;
}

int lc_json_marshal(const lc_strv_t *v, char **out)
{
    sbuf_t b = {NULL, 0, 0};
    int rc = sb_put(&b, "[", 1);

    for (size_t i = 0; rc == 0 && i < v->n; i++) {
        if (i > 0) {
            rc = sb_put(&b, ",", 1);
        }
        if (rc == 0) {
            rc = put_string(&b, v->v[i]);
        }
    }
    if (rc == 0) {
        rc = sb_put(&b, "]", 1);
    }
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    return s;
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -EINVAL;
        }
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static int put_rune(sbuf_t *b, uint32_t r)
{
    char u[4];
    size_t n;

    if (r < 0x80) {
        u[0] = (char)r, n = 1;
    } else if (r < 0x800) {
        u[0] = (char)(0xc0 | r >> 6), u[1] = (char)(0x80 | (r & 0x3f)), n = 2;
    } else if (r < 0x10000) {
        u[0] = (char)(0xe0 | r >> 12);
        u[1] = (char)(0x80 | (r >> 6 & 0x3f));
        u[2] = (char)(0x80 | (r & 0x3f)), n = 3;
    } else {
        u[0] = (char)(0xf0 | r >> 18);
        u[1] = (char)(0x80 | (r >> 12 & 0x3f));
        u[2] = (char)(0x80 | (r >> 6 & 0x3f));
        u[3] = (char)(0x80 | (r & 0x3f)), n = 4;
    }
    return sb_put(b, u, n);
}

/* One \u escape (s after the 'u'), a surrogate pair taken whole. */
static int parse_u(const char **sp, sbuf_t *b)
{
    const char *s = *sp;
    uint32_t r, lo;

    if (hex4(s, &r) < 0) {
        return -EINVAL;
    }
    s += 4;
    if (r >= 0xd800 && r < 0xdc00 && s[0] == '\\' && s[1] == 'u' &&
        hex4(s + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
        r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
        s += 6;
    } else if (r >= 0xd800 && r < 0xe000) {
        r = 0xfffd;
    }
    *sp = s;
    return put_rune(b, r);
}

/* A JSON string at *sp (at its opening quote) into b. */
static int parse_string(const char **sp, sbuf_t *b)
{
    const char *s = *sp + 1;
    int rc = sb_put(b, "", 0);

    while (rc == 0 && *s != '"') {
        if ((unsigned char)*s < 0x20) {
            return -EINVAL;
        }
        if (*s != '\\') {
            rc = sb_put(b, s++, 1);
            continue;
        }
        s++;
        switch (*s) {
        case '"':
        case '\\':
        case '/':
            rc = sb_put(b, s, 1);
            break;
        case 'b':
            rc = sb_put(b, "\b", 1);
            break;
        case 'f':
            rc = sb_put(b, "\f", 1);
            break;
        case 'n':
            rc = sb_put(b, "\n", 1);
            break;
        case 'r':
            rc = sb_put(b, "\r", 1);
            break;
        case 't':
            rc = sb_put(b, "\t", 1);
            break;
        case 'u':
            s++;
            rc = parse_u(&s, b);
            continue;
        default:
            return -EINVAL;
        }
        s++;
    }
    *sp = s + 1;
    return rc;
}

int lc_json_parse(const char *s, lc_strv_t *out)
{
    sbuf_t b = {NULL, 0, 0};
    int rc = 0;

    s = skip_ws(s);
    if (*s++ != '[') {
        return -EINVAL;
    }
    s = skip_ws(s);
    if (*s == ']') {
        return *skip_ws(s + 1) == '\0' ? 0 : -EINVAL;
    }
    for (;;) {
        if (*s != '"') {
            rc = -EINVAL;
            break;
        }
        b.n = 0;
        rc = parse_string(&s, &b);
        if (rc == 0 && memchr(b.p, '\0', b.n) != NULL) {
            rc = -EINVAL; /* a NUL cannot be a path */
        }
        if (rc == 0) {
            rc = lc_strv_push(out, b.p, b.n);
        }
        s = skip_ws(s);
        if (rc < 0 || *s != ',') {
            break;
        }
        s = skip_ws(s + 1);
    }
    if (rc == 0 && (*s != ']' || *skip_ws(s + 1) != '\0')) {
        rc = -EINVAL;
    }
    free(b.p);
    return rc;
}
