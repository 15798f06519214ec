/* Reading whole files with a size limit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int kiln__read_file(const char *path, size_t limit, uint8_t **out, size_t *len,
                    kiln_error_t *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *what = is_stdin ? "standard input" : path;
    kiln__buf_t b = KILN_BUF_INIT;
    FILE *f;
    int rc = 0;

    *out = NULL;
    *len = 0;
    f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        return kiln__fail(err, e == ENOENT ? KILN_ENOENT : KILN_EIO, "%s: %s",
                          path, strerror(e));
    }
    for (;;) {
        size_t n;

        if (!kiln__buf_reserve(&b, 65536)) {
            rc = kiln__fail(err, KILN_ENOMEM, "%s: out of memory", what);
            goto out;
        }
        n = fread(b.data + b.len, 1, 65536, f);
        b.len += n;
        if (b.len > limit) {
            rc = kiln__fail(err, KILN_E2BIG,
                            "%s: larger than the limit of %zu bytes", what,
                            limit);
            goto out;
        }
        if (n < 65536) {
            if (ferror(f)) {
                rc = kiln__fail(err, KILN_EIO, "%s: read error: %s", what,
                                strerror(errno));
                goto out;
            }
            break;
        }
    }
    if (b.data == NULL) {
        kiln__buf_reserve(&b, 0);
    }
    *out = b.data;
    *len = b.len;
    b.data = NULL;
out:
    if (!is_stdin) {
        fclose(f);
    }
    kiln__buf_free(&b);
    return rc;
}
