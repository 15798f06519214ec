/* Go's path.Clean, path.Join("/", p) and path.Base, byte for byte. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "solver/gopath.h"

char *kiln__gopath_clean(const char *p)
{
    size_t n = strlen(p), r = 0, w = 0, dotdot = 0;
    bool rooted = n > 0 && p[0] == '/';
    char *out = malloc(n + 2);

    if (out == NULL) {
        return NULL;
    }
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
    return out;
}

char *kiln__gopath_join_root(const char *p)
{
    size_t n = strlen(p);
    char *tmp = malloc(n + 2);
    char *out;

    if (tmp == NULL) {
        return NULL;
    }
    tmp[0] = '/';
    memcpy(tmp + 1, p, n + 1);
    out = kiln__gopath_clean(tmp);
    free(tmp);
    return out;
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
