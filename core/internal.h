/*
 * Private helpers shared by libkiln's modules. Never installed.
 */
#ifndef KILN_CORE_INTERNAL_H
#define KILN_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>

#define KILN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Records `code` and a formatted message in `err` (which may be NULL) and
 * returns `code`, so that failures read `return kiln__fail(err, ...)`.
 */
int kiln__fail(kiln_error_t *err, int code, const char *fmt, ...)
    KILN_PRINTF(3, 4);

/* Prepends "prefix: " to the message already in `err`. Returns err->code
 * (or `code` if err is NULL). */
int kiln__fail_prefix(kiln_error_t *err, int code, const char *fmt, ...)
    KILN_PRINTF(3, 4);

/*
 * A growable byte buffer. Zero-initialise it (KILN_BUF_INIT), append, then
 * either take `data` (it is malloc'ed, NUL-terminated for convenience and
 * owned by the caller) or release it with kiln__buf_free().
 * Appending never fails silently: on allocation failure the buffer enters an
 * error state, later appends are ignored and kiln__buf_ok() returns false.
 */
typedef struct kiln__buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
} kiln__buf_t;

#define KILN_BUF_INIT                                                          \
    {                                                                          \
        NULL, 0, 0, false                                                      \
    }

bool kiln__buf_reserve(kiln__buf_t *b, size_t extra);
void kiln__buf_append(kiln__buf_t *b, const void *data, size_t len);
void kiln__buf_putc(kiln__buf_t *b, uint8_t c);
void kiln__buf_puts(kiln__buf_t *b, const char *s);
void kiln__buf_printf(kiln__buf_t *b, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln__buf_free(kiln__buf_t *b);
static inline bool kiln__buf_ok(const kiln__buf_t *b)
{
    return !b->oom;
}

/* Length of "sha256:" + 64 hex digits, without the NUL. */
#define KILN_DIGEST_STRLEN 71

/* SHA-256 of `data`, written to `out` as "sha256:<hex>" plus a NUL
 * (KILN_DIGEST_STRLEN + 1 bytes). Returns 0 or KILN_ENOMEM. */
int kiln__sha256_digest(const void *data, size_t len,
                        char out[KILN_DIGEST_STRLEN + 1]);

/* True if `s` is a well-formed "sha256:" + 64 lowercase hex digest. */
bool kiln__digest_valid(const char *s);

/* True if s[0..len) is valid UTF-8 (as Go's utf8.Valid: no surrogates, no
 * overlong forms, nothing past U+10FFFF). */
bool kiln__utf8_valid(const void *s, size_t len);

/* Wall clock (ns since the epoch) and monotonic time (ns). */
int64_t kiln__now_ns(void);
int64_t kiln__mono_ns(void);

/* Reads a whole file (or stdin for "-") into a malloc'ed buffer, refusing
 * files larger than `limit`. */
int kiln__read_file(const char *path, size_t limit, uint8_t **out, size_t *len,
                    kiln_error_t *err);

#endif
