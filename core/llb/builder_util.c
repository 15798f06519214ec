/*
 * Small helpers of the definition builder: arena memory, Go's path.Clean and
 * path.Join into the arena (util/gopath.c), JSON string arrays
 * (util/gojson.c) and IP formatting, digest validation, the host platform
 * and random ids.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "llb/builder.h"
#include "util/gojson.h"
#include "util/gopath.h"

/* ---- arena ---- */

struct kiln__arena_chunk {
    kiln__arena_chunk_t *next;
    size_t used;
    size_t cap;
    max_align_t data[];
};

#define ARENA_CHUNK 16384u

void *kiln__arena_alloc(kiln__arena_t *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    kiln__arena_chunk_t *c = a->head;
    void *p;

    if (n > SIZE_MAX / 2) {
        return NULL;
    }
    n = (n + align - 1) & ~(align - 1);
    if (n == 0) {
        n = align;
    }
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL) {
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        /* A big allocation gets its own chunk behind the current one, so
         * that the current chunk's free space stays usable. */
        if (a->head != NULL && n > ARENA_CHUNK) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void *kiln__arena_dup(kiln__arena_t *a, const void *p, size_t n)
{
    void *q = kiln__arena_alloc(a, n);

    if (q != NULL && n > 0) {
        memcpy(q, p, n);
    }
    return q;
}

char *kiln__arena_strdup(kiln__arena_t *a, const char *s)
{
    return kiln__arena_dup(a, s, strlen(s) + 1);
}

void kiln__arena_free(kiln__arena_t *a)
{
    kiln__arena_chunk_t *c = a->head;

    while (c != NULL) {
        kiln__arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

bool kiln__vec_push(kiln__arena_t *a, kiln__vec_t *vec, void *item)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 4;
        void **v = kiln__arena_alloc(a, cap * sizeof(*v));
        if (v == NULL) {
            return false;
        }
        if (vec->n > 0) {
            memcpy(v, vec->v, vec->n * sizeof(*v));
        }
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = item;
    return true;
}

/* ---- paths ---- */

char *kiln__path_clean(kiln__arena_t *a, const char *p)
{
    size_t n = strlen(p);
    char *out = kiln__arena_alloc(a, n + 2);

    if (out != NULL) {
        memcpy(out, p, n + 1);
        kiln__gopath_clean_in_place(out);
    }
    return out;
}

char *kiln__path_join(kiln__arena_t *a, const char *dir, const char *p)
{
    char *out = kiln__arena_alloc(a, kiln__gopath_join_size(dir, p));

    if (out != NULL) {
        kiln__gopath_join_to(out, dir, p);
    }
    return out;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

char *kiln__llb_normalize_path(kiln__arena_t *a, const char *p, bool keep_slash)
{
    char *c = kiln__path_clean(a, p);
    char *out;

    if (c == NULL) {
        return NULL;
    }
    if (c[0] != '/') {
        c = kiln__path_join(a, "/", c);
        if (c == NULL) {
            return NULL;
        }
    }
    if (!keep_slash) {
        return c;
    }
    out = kiln__arena_alloc(a, strlen(c) + 3);
    if (out == NULL) {
        return NULL;
    }
    strcpy(out, c);
    if (ends_with(p, "/") && !ends_with(out, "/")) {
        strcat(out, "/");
    } else if (ends_with(p, "/.")) {
        if (strcmp(out, "/") != 0) {
            strcat(out, "/");
        }
        strcat(out, ".");
    }
    return out;
}

/* ---- JSON ---- */

char *kiln__json_strings(kiln__arena_t *a, char *const *v, size_t n,
                         bool legacy)
{
    kiln__buf_t b = KILN_BUF_INIT;
    kiln__gojson_t w;
    char *out = NULL;

    kiln__gojson_init(&w, &b, legacy ? 0 : KILN_GOJSON_GO122);
    kiln__gojson_begin_array(&w);
    for (size_t i = 0; i < n; i++) {
        kiln__gojson_cstr(&w, v[i]);
    }
    kiln__gojson_end_array(&w);
    if (kiln__gojson_ok(&w)) {
        out = kiln__arena_dup(a, b.data, b.len + 1);
    }
    kiln__buf_free(&b);
    return out;
}

/* ---- IP addresses ---- */

bool kiln__ip_canonical(const char *ip, char out[64])
{
    static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
    uint8_t a[16];
    int best = -1, best_len = 0;
    size_t w = 0;

    if (inet_pton(AF_INET, ip, a) == 1) {
        snprintf(out, 64, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        return true;
    }
    if (inet_pton(AF_INET6, ip, a) != 1) {
        return false;
    }
    if (memcmp(a, v4_prefix, 12) == 0) {
        snprintf(out, 64, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        return true;
    }
    /* The first longest run of two or more zero groups becomes "::". */
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && a[2 * j] == 0 && a[2 * j + 1] == 0) {
            j++;
        }
        if (j - i > best_len && j - i >= 2) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            w += (size_t)snprintf(out + w, 64 - w, "::");
            i += best_len - 1;
            continue;
        }
        if (i > 0 && i != best + best_len) {
            out[w++] = ':';
        }
        w += (size_t)snprintf(out + w, 64 - w, "%x",
                              (unsigned)(a[2 * i] << 8 | a[2 * i + 1]));
    }
    out[w] = 0;
    return true;
}

/* ---- host platform ---- */

void kiln__host_platform(const char **os, const char **arch,
                         const char **variant)
{
#if defined(__APPLE__)
    *os = "darwin";
#elif defined(__FreeBSD__)
    *os = "freebsd";
#elif defined(_WIN32)
    *os = "windows";
#else
    *os = "linux";
#endif
    *variant = "";
    /* Go's runtime.GOARCH of a binary built for this target, with
     * containerd's normalization (arm gets a variant, arm64 v8 none). */
#if defined(__x86_64__)
    *arch = "amd64";
#elif defined(__aarch64__)
    *arch = "arm64";
#elif defined(__arm__)
    *arch = "arm";
#if defined(__ARM_ARCH) && __ARM_ARCH <= 5
    *variant = "v5";
#elif defined(__ARM_ARCH) && __ARM_ARCH == 6
    *variant = "v6";
#elif defined(__ARM_ARCH) && __ARM_ARCH >= 8
    *variant = "v8";
#else
    *variant = "v7";
#endif
#elif defined(__i386__)
    *arch = "386";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
    *arch = "ppc64le";
#elif defined(__powerpc64__)
    *arch = "ppc64";
#elif defined(__s390x__)
    *arch = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    *arch = "riscv64";
#elif defined(__loongarch64)
    *arch = "loong64";
#elif defined(__mips64) && defined(__MIPSEL__)
    *arch = "mips64le";
#elif defined(__mips64)
    *arch = "mips64";
#elif defined(__mips__) && defined(__MIPSEL__)
    *arch = "mipsle";
#elif defined(__mips__)
    *arch = "mips";
#else
    *arch = "unknown";
#endif
}

/* ---- random ids ---- */

static int read_random(uint8_t *p, size_t n)
{
    size_t got = 0;
    int fd;

#if defined(__linux__)
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)r;
    }
    if (got == n) {
        return 0;
    }
#endif
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return KILN_EIO;
    }
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            close(fd);
            return KILN_EIO;
        }
        got += (size_t)r;
    }
    close(fd);
    return 0;
}

int kiln__random_id(char out[26])
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t num[17];
    char rev[32];
    size_t nd = 0;
    bool zero = false;
    int rc = read_random(num, sizeof(num));

    if (rc < 0) {
        return rc;
    }
    /* The top bit fixes the length: 27 base-36 digits, of which BuildKit
     * keeps the 2nd to the 26th. */
    num[0] |= 0x80;
    while (!zero && nd < sizeof(rev)) {
        unsigned rem = 0;
        zero = true;
        for (size_t i = 0; i < sizeof(num); i++) {
            unsigned cur = rem * 256 + num[i];
            num[i] = (uint8_t)(cur / 36);
            rem = cur % 36;
            if (num[i] != 0) {
                zero = false;
            }
        }
        rev[nd++] = digits[rem];
    }
    for (size_t i = 0; i < 25; i++) {
        out[i] = rev[nd - 2 - i];
    }
    out[25] = 0;
    return 0;
}
