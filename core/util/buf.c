/* Growable byte buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bool kiln__buf_reserve(kiln__buf_t *b, size_t extra)
{
    size_t want;
    size_t cap;
    uint8_t *p;

    if (b->oom) {
        return false;
    }
    /* One spare byte keeps the contents NUL-terminated. */
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return false;
    }
    want = b->len + extra + 1;
    if (want <= b->cap) {
        return true;
    }
    cap = b->cap ? b->cap : 64;
    while (cap < want) {
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void kiln__buf_append(kiln__buf_t *b, const void *data, size_t len)
{
    if (!kiln__buf_reserve(b, len)) {
        return;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = 0;
}

void kiln__buf_putc(kiln__buf_t *b, uint8_t c)
{
    kiln__buf_append(b, &c, 1);
}

void kiln__buf_puts(kiln__buf_t *b, const char *s)
{
    kiln__buf_append(b, s, strlen(s));
}

void kiln__buf_printf(kiln__buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !kiln__buf_reserve(b, (size_t)n)) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void kiln__buf_free(kiln__buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}
