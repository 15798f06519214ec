/* Error recording and the public error helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int kiln__fail(kiln_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return code;
    }
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

int kiln__fail_prefix(kiln_error_t *err, int code, const char *fmt, ...)
{
    char prefix[KILN_ERROR_MAX];
    char old[KILN_ERROR_MAX];
    va_list ap;

    if (err == NULL) {
        return code;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof(old));
    snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old);
    return err->code;
}

const char *kiln_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case KILN_ENOMEM:
        return "out of memory";
    case KILN_EINVAL:
        return "invalid argument";
    case KILN_EBADMSG:
        return "malformed input";
    case KILN_E2BIG:
        return "size limit exceeded";
    case KILN_EIO:
        return "input/output error";
    case KILN_ENOENT:
        return "not found";
    case KILN_ENOTSUP:
        return "not supported";
    case KILN_ECANCELED:
        return "canceled";
    case KILN_ELOOP:
        return "too many levels of symbolic links";
    default:
        return code < 0 ? strerror(-code) : "unknown error";
    }
}

const char *kiln_version(void)
{
    return KILN_VERSION_STRING;
}

void kiln_free(void *ptr)
{
    free(ptr);
}
