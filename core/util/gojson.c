/*
 * Go encoding/json output, byte for byte: the escaping rules follow
 * encoding/json's encodeState.string with HTML escaping on (Marshal's
 * default), and []byte values are base64.StdEncoding.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/gojson.h"

static const char hex_digits[] = "0123456789abcdef";

void kiln__gojson_init(kiln__gojson_t *w, kiln__buf_t *out, unsigned flags)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->flags = flags;
}

bool kiln__gojson_ok(const kiln__gojson_t *w)
{
    return !w->bad && w->depth == 0 && !w->after_key && kiln__buf_ok(w->out);
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 if it is not one
 * (Go's utf8.DecodeRune then reports RuneError with size 1). */
static size_t utf8_seq(const uint8_t *s, size_t len)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t k = 2; k < n; k++) {
        if (s[k] < 0x80 || s[k] > 0xbf) {
            return 0;
        }
    }
    return n;
}

/* The escape for ASCII byte c, or NULL if Go writes it as is. `buf` holds
 * a \u00XX form when one is needed. */
static const char *ascii_escape(uint8_t c, unsigned flags, char buf[7])
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '\b':
        if (flags & KILN_GOJSON_GO122) {
            return "\\b";
        }
        break;
    case '\f':
        if (flags & KILN_GOJSON_GO122) {
            return "\\f";
        }
        break;
    case '<':
    case '>':
    case '&':
        break;
    default:
        if (c >= 0x20) {
            return NULL;
        }
    }
    memcpy(buf, "\\u00", 4);
    buf[4] = hex_digits[c >> 4];
    buf[5] = hex_digits[c & 0xf];
    buf[6] = 0;
    return buf;
}

void kiln__gojson_escape(kiln__buf_t *b, const void *data, size_t len,
                         unsigned flags)
{
    const uint8_t *s = data;
    size_t start = 0, i = 0;
    char ubuf[7];

    kiln__buf_putc(b, '"');
    while (i < len) {
        const char *esc = NULL;
        size_t n = 1;

        if (s[i] < 0x80) {
            esc = ascii_escape(s[i], flags, ubuf);
        } else if ((n = utf8_seq(s + i, len - i)) == 0) {
            esc = "\\ufffd";
            n = 1;
        } else if (n == 3 && s[i] == 0xe2 && s[i + 1] == 0x80 &&
                   (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
            esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
        }
        if (esc != NULL) {
            kiln__buf_append(b, s + start, i - start);
            kiln__buf_puts(b, esc);
            start = i + n;
        }
        i += n;
    }
    kiln__buf_append(b, s + start, len - start);
    kiln__buf_putc(b, '"');
}

/* Comma and bookkeeping before a value or a key at the current level. */
static void before_item(kiln__gojson_t *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0) {
        return;
    }
    if (w->has_member & (1ull << w->depth)) {
        kiln__buf_putc(w->out, ',');
    }
    w->has_member |= 1ull << w->depth;
}

static void open_level(kiln__gojson_t *w, char c)
{
    before_item(w);
    if (w->depth + 1 >= KILN_GOJSON_MAX_DEPTH) {
        w->bad = true;
        return;
    }
    w->depth++;
    w->has_member &= ~(1ull << w->depth);
    kiln__buf_putc(w->out, (uint8_t)c);
}

static void close_level(kiln__gojson_t *w, char c)
{
    if (w->depth == 0 || w->after_key) {
        w->bad = true;
        return;
    }
    w->depth--;
    kiln__buf_putc(w->out, (uint8_t)c);
}

void kiln__gojson_begin_object(kiln__gojson_t *w)
{
    open_level(w, '{');
}

void kiln__gojson_end_object(kiln__gojson_t *w)
{
    close_level(w, '}');
}

void kiln__gojson_begin_array(kiln__gojson_t *w)
{
    open_level(w, '[');
}

void kiln__gojson_end_array(kiln__gojson_t *w)
{
    close_level(w, ']');
}

void kiln__gojson_key(kiln__gojson_t *w, const char *key)
{
    if (w->after_key || w->depth == 0) {
        w->bad = true;
        return;
    }
    before_item(w);
    kiln__gojson_escape(w->out, key, strlen(key), w->flags);
    kiln__buf_putc(w->out, ':');
    w->after_key = true;
}

void kiln__gojson_string(kiln__gojson_t *w, const void *s, size_t len)
{
    before_item(w);
    kiln__gojson_escape(w->out, s, len, w->flags);
}

void kiln__gojson_cstr(kiln__gojson_t *w, const char *s)
{
    kiln__gojson_string(w, s, strlen(s));
}

void kiln__gojson_int(kiln__gojson_t *w, int64_t v)
{
    before_item(w);
    kiln__buf_printf(w->out, "%" PRId64, v);
}

void kiln__gojson_uint(kiln__gojson_t *w, uint64_t v)
{
    before_item(w);
    kiln__buf_printf(w->out, "%" PRIu64, v);
}

void kiln__gojson_bool(kiln__gojson_t *w, bool v)
{
    before_item(w);
    kiln__buf_puts(w->out, v ? "true" : "false");
}

void kiln__gojson_null(kiln__gojson_t *w)
{
    before_item(w);
    kiln__buf_puts(w->out, "null");
}

void kiln__gojson_double(kiln__gojson_t *w, double v)
{
    before_item(w);
    if (isfinite(v)) {
        kiln__buf_printf(w->out, "%.17g", v);
    } else {
        kiln__buf_puts(w->out, "null");
    }
}

void kiln__gojson_base64(kiln__gojson_t *w, const void *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *s = data;
    char quad[4];

    before_item(w);
    kiln__buf_putc(w->out, '"');
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        size_t n = len - i < 3 ? len - i : 3;

        if (n > 1) {
            v |= (uint32_t)s[i + 1] << 8;
        }
        if (n > 2) {
            v |= s[i + 2];
        }
        quad[0] = alphabet[(v >> 18) & 63];
        quad[1] = alphabet[(v >> 12) & 63];
        quad[2] = n > 1 ? alphabet[(v >> 6) & 63] : '=';
        quad[3] = n > 2 ? alphabet[v & 63] : '=';
        kiln__buf_append(w->out, quad, 4);
    }
    kiln__buf_putc(w->out, '"');
}
