/* Go's path.Clean, path.Join and path.Base, byte for byte. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/gopath.h"

/*
 * path.Clean of p[0..n) (NUL-terminated) written to `out`, which has room
 * for n + 2 bytes and may be `p` itself: like Go's lazybuf, the write
 * position never passes the read position.
 */
static size_t clean_to(char *out, const char *p, size_t n)
{
    size_t r = 0, w = 0, dotdot = 0;
    bool rooted = n > 0 && p[0] == '/';

    if (rooted) {
        out[w++] = '/';
        r = dotdot = 1;
    }
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++;
        } else if (p[r] == '.' && p[r + 1] == '.' &&
                   (r + 2 == n || p[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                for (w--; w > dotdot && out[w] != '/'; w--) {
                }
            } else if (!rooted) {
                if (w > 0) {
                    out[w++] = '/';
                }
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0)) {
                out[w++] = '/';
            }
            while (r < n && p[r] != '/') {
                out[w++] = p[r++];
            }
        }
    }
    if (w == 0) {
        out[w++] = '.';
    }
    out[w] = 0;
    return w;
}

size_t kiln__gopath_clean_in_place(char *buf)
{
    return clean_to(buf, buf, strlen(buf));
}

size_t kiln__gopath_join_size(const char *dir, const char *p)
{
    /* dir, "/", p, the NUL, and one more for clean_to(). */
    return strlen(dir) + strlen(p) + 3;
}

size_t kiln__gopath_join_to(char *out, const char *dir, const char *p)
{
    size_t nd = strlen(dir), np = strlen(p);

    if (nd == 0 && np == 0) {
        out[0] = 0;
        return 0;
    }
    if (nd == 0) {
        return clean_to(out, p, np);
    }
    memcpy(out, dir, nd);
    out[nd] = '/';
    memcpy(out + nd + 1, p, np + 1);
    return clean_to(out, out, nd + 1 + np);
}

char *kiln__gopath_clean(const char *p)
{
    size_t n = strlen(p);
    char *out = malloc(n + 2);

    if (out != NULL) {
        clean_to(out, p, n);
    }
    return out;
}

char *kiln__gopath_join(const char *dir, const char *p)
{
    char *out = malloc(kiln__gopath_join_size(dir, p));

    if (out != NULL) {
        kiln__gopath_join_to(out, dir, p);
    }
    return out;
}

char *kiln__gopath_join_root(const char *p)
{
    return kiln__gopath_join("/", p);
}

char *kiln__gopath_base(const char *p)
{
    size_t n = strlen(p), start;
    char *out;

    if (n == 0) {
        return strdup(".");
    }
    while (n > 0 && p[n - 1] == '/') {
        n--;
    }
    if (n == 0) {
        return strdup("/");
    }
    for (start = n; start > 0 && p[start - 1] != '/'; start--) {
    }
    out = malloc(n - start + 1);
    if (out != NULL) {
        memcpy(out, p + start, n - start);
        out[n - start] = 0;
    }
    return out;
}
