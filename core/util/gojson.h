/*
 * A writer for JSON byte-identical to Go's encoding/json.Marshal: compact,
 * HTML-safe string escaping, standard base64 for []byte. Used wherever kiln
 * must print or hash the same bytes as BuildKit: cache maps, `kiln debug
 * dump-llb`, the JSON string lists the definition builder stores in attrs.
 *
 * The writer appends to a caller-owned kiln__buf_t and never fails by
 * itself: allocation failures put the buffer in its error state
 * (kiln__buf_ok() turns false) and misuse (nesting deeper than
 * KILN_GOJSON_MAX_DEPTH, closing what is not open) sets `bad`; check
 * kiln__gojson_ok() once at the end.
 */
#ifndef KILN_UTIL_GOJSON_H
#define KILN_UTIL_GOJSON_H

#include "internal.h"

/* Deepest nesting of objects and arrays the writer tracks. */
#define KILN_GOJSON_MAX_DEPTH 64u

/*
 * Escaping flavours. Go 1.22 started writing U+0008 and U+000C as "\b" and
 * "\f"; older releases (which built BuildKit <= v0.16) wrote "\u0008" and
 * "\u000c". Everything else is the same in every Go release since 1.13.
 */
#define KILN_GOJSON_GO122 0x1u

typedef struct kiln__gojson {
    kiln__buf_t *out; /* borrowed */
    unsigned flags;   /* KILN_GOJSON_* */
    unsigned depth;
    uint64_t has_member; /* bit d: level d already holds a member */
    bool after_key;      /* a key was written; its value comes next */
    bool bad;
} kiln__gojson_t;

/* Starts a writer appending to `out` (not cleared). */
void kiln__gojson_init(kiln__gojson_t *w, kiln__buf_t *out, unsigned flags);

/* True if nothing went wrong: no misuse, no allocation failure. */
bool kiln__gojson_ok(const kiln__gojson_t *w);

void kiln__gojson_begin_object(kiln__gojson_t *w);
void kiln__gojson_end_object(kiln__gojson_t *w);
void kiln__gojson_begin_array(kiln__gojson_t *w);
void kiln__gojson_end_array(kiln__gojson_t *w);

/* Writes an object key (escaped as a Go string); the next call writes its
 * value. */
void kiln__gojson_key(kiln__gojson_t *w, const char *key);

/* String values: the bytes s[0..len) (invalid UTF-8 becomes U+FFFD, as Go
 * does), or a NUL-terminated string. */
void kiln__gojson_string(kiln__gojson_t *w, const void *s, size_t len);
void kiln__gojson_cstr(kiln__gojson_t *w, const char *s);

void kiln__gojson_int(kiln__gojson_t *w, int64_t v);
void kiln__gojson_uint(kiln__gojson_t *w, uint64_t v);
void kiln__gojson_bool(kiln__gojson_t *w, bool v);
void kiln__gojson_null(kiln__gojson_t *w);

/*
 * A float64 value as "%.17g", or null if it is not finite. Valid JSON, but
 * not Go's shortest formatting (and Go refuses NaN and infinities): for
 * callers that never meet floats in practice (ops.proto has none).
 */
void kiln__gojson_double(kiln__gojson_t *w, double v);

/* A []byte value: standard base64 with padding, as a JSON string. */
void kiln__gojson_base64(kiln__gojson_t *w, const void *data, size_t len);

/* Appends `s` to `b` as a quoted Go JSON string (see kiln__gojson_string).
 * `flags` are KILN_GOJSON_* flags. */
void kiln__gojson_escape(kiln__buf_t *b, const void *s, size_t len,
                         unsigned flags);

#endif
