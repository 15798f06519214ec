/*
 * Content checksums of paths in a snapshot, for content ("slow") cache
 * keys: BuildKit's cache/contenthash in spirit. A file's checksum covers
 * its type, permission bits, owner, size, device numbers, xattrs and bytes
 * but not its times; a symlink's its target; a directory's its own header
 * and, in name order, each child's name and checksum. Two trees that a copy
 * would turn into the same result (mtimes aside, as in BuildKit) have the
 * same checksum, wherever they came from.
 *
 * Include/exclude patterns of a copy are not applied here: the checksum
 * covers everything below the path, so it changes whenever anything the
 * copy could read changes (a miss more, never a wrong hit).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fileop/fileop_int.h"

#define SUM_LEN 32

/* Fixed-width little-endian fields, so no two headers hash alike. */
static void put_u64(EVP_MD_CTX *ctx, uint64_t v)
{
    unsigned char b[8];

    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    EVP_DigestUpdate(ctx, b, sizeof(b));
}

static void put_str(EVP_MD_CTX *ctx, const char *s, size_t len)
{
    put_u64(ctx, len);
    EVP_DigestUpdate(ctx, s, len);
}

static void put_header(EVP_MD_CTX *ctx, const struct stat *st)
{
    put_u64(ctx, (uint64_t)st->st_mode);
    put_u64(ctx, (uint64_t)st->st_uid);
    put_u64(ctx, (uint64_t)st->st_gid);
    put_u64(ctx, S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0);
    put_u64(ctx, S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)
                     ? ((uint64_t)major(st->st_rdev) << 32) |
                           minor(st->st_rdev)
                     : 0);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* xattrs of an open file, sorted by name (none where unsupported). */
static void put_xattrs(EVP_MD_CTX *ctx, int fd)
{
    ssize_t len = flistxattr(fd, NULL, 0);
    char *names, **v = NULL;
    size_t n = 0;

    if (len <= 0 || (names = malloc((size_t)len)) == NULL) {
        put_u64(ctx, 0);
        return;
    }
    len = flistxattr(fd, names, (size_t)len);
    for (ssize_t off = 0; len > 0 && off < len; off += strlen(names + off) + 1) {
        char **nv = realloc(v, (n + 1) * sizeof(*v));
        if (nv == NULL) {
            break;
        }
        v = nv;
        v[n++] = names + off;
    }
    qsort(v, n, sizeof(*v), cmp_names);
    put_u64(ctx, n);
    for (size_t i = 0; i < n; i++) {
        char value[4096];
        ssize_t vl = fgetxattr(fd, v[i], value, sizeof(value));

        put_str(ctx, v[i], strlen(v[i]));
        put_str(ctx, value, vl > 0 ? (size_t)vl : 0);
    }
    free(v);
    free(names);
}

static int put_file(EVP_MD_CTX *ctx, const kiln_snap_view_t *v,
                    const kiln_snap_entry_t *e, kiln_error_t *err)
{
    char buf[65536];
    int fd, rc = kiln__snap_open_file(v, e, &fd, err);
    ssize_t n;

    if (rc < 0) {
        return rc;
    }
    put_xattrs(ctx, fd);
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = kiln__fail(err, KILN_EIO, "%s: %s", e->path, strerror(errno));
            break;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    }
    close(fd);
    return rc;
}

static int sum_entry(const kiln_snap_view_t *v, const kiln_snap_entry_t *e,
                     unsigned char out[SUM_LEN], kiln_error_t *err);

static int put_dir(EVP_MD_CTX *ctx, const kiln_snap_view_t *v,
                   const kiln_snap_entry_t *e, kiln_error_t *err)
{
    kiln__fo_children_t ch;
    int rc = kiln__fo_list_dir(v, e->path, &ch, err);

    for (size_t i = 0; rc == 0 && i < ch.n; i++) {
        kiln_snap_entry_t *c = kiln__fo_child_entry(e->path, &ch.v[i]);
        unsigned char sum[SUM_LEN];

        if (c == NULL) {
            rc = kiln__fail(err, -ENAMETOOLONG, "%s/%s: path too long",
                            e->path, ch.v[i].name);
            break;
        }
        rc = sum_entry(v, c, sum, err);
        free(c);
        if (rc == 0) {
            put_str(ctx, ch.v[i].name, strlen(ch.v[i].name));
            EVP_DigestUpdate(ctx, sum, sizeof(sum));
        }
    }
    kiln__fo_children_free(&ch);
    return rc;
}

static int sum_entry(const kiln_snap_view_t *v, const kiln_snap_entry_t *e,
                     unsigned char out[SUM_LEN], kiln_error_t *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int rc = 0;

    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    put_header(ctx, &e->st);
    if (S_ISREG(e->st.st_mode)) {
        rc = put_file(ctx, v, e, err);
    } else if (S_ISLNK(e->st.st_mode)) {
        char target[4096];
        rc = kiln__snap_readlink(v, e, target, sizeof(target), err);
        if (rc == 0) {
            put_str(ctx, target, strlen(target));
        }
    } else if (S_ISDIR(e->st.st_mode)) {
        rc = put_dir(ctx, v, e, err);
    }
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* One path: its entry's checksum, or a marker for an absent path (the op
 * reports a missing source itself). */
static int put_path(EVP_MD_CTX *ctx, const kiln_snap_view_t *v,
                    const char *path, bool follow, kiln_error_t *err)
{
    kiln_snap_entry_t e;
    unsigned char sum[SUM_LEN];
    int rc = kiln__snap_resolve(v, path, follow, &e, err);

    if (rc == KILN_ENOENT || rc == -ENOTDIR || (rc == 0 && e.layer < 0 &&
                                                strcmp(e.path, "/") != 0)) {
        put_str(ctx, "absent", 6);
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    if (e.layer < 0) { /* the root of an empty snapshot */
        put_str(ctx, "empty", 5);
        return 0;
    }
    rc = sum_entry(v, &e, sum, err);
    if (rc == 0) {
        put_str(ctx, "entry", 5);
        EVP_DigestUpdate(ctx, sum, sizeof(sum));
    }
    return rc;
}

int kiln__fileop_checksum(const kiln_snap_view_t *v, const char *path,
                          bool wildcard, bool follow,
                          char out[KILN_DIGEST_STRLEN + 1], kiln_error_t *err)
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[SUM_LEN];
    unsigned int len = 0;
    char **matches = NULL;
    size_t n = 0;
    int rc = 0;

    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (wildcard && kiln__fo_has_wildcards(path)) {
        rc = kiln__fo_resolve_wildcards(v, path, follow, &matches, &n, err);
        put_u64(ctx, n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            put_str(ctx, matches[i], strlen(matches[i]));
            rc = put_path(ctx, v, matches[i], follow, err);
        }
        kiln__fo_strv_free(matches, n);
    } else {
        rc = put_path(ctx, v, path, follow, err);
    }
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (rc < 0) {
        return kiln__fail_prefix(err, rc, "checksum of %s", path);
    }
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < SUM_LEN; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 0xf];
    }
    out[KILN_DIGEST_STRLEN] = '\0';
    return 0;
}
