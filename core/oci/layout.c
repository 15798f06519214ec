/*
 * OCI image layout directories: blobs written under temporary names and
 * renamed into place, index.json, and the reader that follows index.json
 * through indexes to a manifest, checking every blob it reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/layout.h"
#include "oci/layout_int.h"

struct kiln_oci_layout {
    char *dir;
    int blobs_fd; /* blobs/sha256 */
    kiln_oci_index_t index;
};

/* Records an allocation failure in `err` and returns KILN_ENOMEM. */
static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* Creates the directory `path` (0755) unless it exists. */
static int mkdir_p(const char *path, kiln_error_t *err)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        return kiln__fail(err, KILN_EIO, "mkdir %s: %s", path, strerror(errno));
    }
    return 0;
}

int kiln__oci_tmp_open(const char *dir, char *tmp, size_t size,
                       kiln_error_t *err)
{
    int fd;

    snprintf(tmp, size, "%s/.tmp-kiln-XXXXXX", dir);
    fd = mkstemp(tmp);
    if (fd < 0) {
        return kiln__fail(err, KILN_EIO, "create %s: %s", tmp, strerror(errno));
    }
    return fd;
}

int kiln__oci_tmp_commit(int fd, const char *tmp, const char *final,
                         kiln_error_t *err)
{
    int rc = 0;

    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        rc = kiln__fail(err, KILN_EIO, "write %s: %s", tmp, strerror(errno));
    }
    if (close(fd) < 0 && rc == 0) {
        rc = kiln__fail(err, KILN_EIO, "close %s: %s", tmp, strerror(errno));
    }
    if (rc == 0 && rename(tmp, final) < 0) {
        rc = kiln__fail(err, KILN_EIO, "rename %s to %s: %s", tmp, final,
                        strerror(errno));
    }
    if (rc < 0) {
        unlink(tmp);
    }
    return rc;
}

int kiln__oci_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes `data` to `path` through a temporary file beside it. */
static int write_file(const char *dir, const char *path, const void *data,
                      size_t len, kiln_error_t *err)
{
    char tmp[4200];
    int fd = kiln__oci_tmp_open(dir, tmp, sizeof(tmp), err);

    if (fd < 0) {
        return fd;
    }
    if (kiln__oci_write_all(fd, data, len) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return kiln__fail(err, KILN_EIO, "write %s: %s", tmp, strerror(e));
    }
    return kiln__oci_tmp_commit(fd, tmp, path, err);
}

int kiln__oci_layout_init(const char *dir, kiln_error_t *err)
{
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    char path[4200];
    int rc = mkdir_p(dir, err);

    snprintf(path, sizeof(path), "%s/blobs", dir);
    if (rc == 0) {
        rc = mkdir_p(path, err);
    }
    snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
    if (rc == 0) {
        rc = mkdir_p(path, err);
    }
    snprintf(path, sizeof(path), "%s/oci-layout", dir);
    if (rc == 0) {
        rc = write_file(dir, path, layout, sizeof(layout) - 1, err);
    }
    return rc;
}

int kiln__oci_write_blob(const char *dir, const char *media_type,
                         const void *data, size_t len, kiln_oci_desc_t *out,
                         kiln_error_t *err)
{
    char bdir[4200], path[4300];
    int rc;

    memset(out, 0, sizeof(*out));
    if (kiln__sha256_digest(data, len, out->digest) < 0) {
        return oom(err);
    }
    out->size = (int64_t)len;
    out->media_type = strdup(media_type);
    if (out->media_type == NULL) {
        return oom(err);
    }
    snprintf(bdir, sizeof(bdir), "%s/blobs/sha256", dir);
    snprintf(path, sizeof(path), "%s/%s", bdir, out->digest + 7);
    rc = write_file(bdir, path, data, len, err);
    if (rc < 0) {
        kiln__oci_desc_clear(out);
    }
    return rc;
}

/* Stores the JSON text `json` (taken) as a blob. */
static int write_json_blob(const char *dir, const char *mt, char *json,
                           size_t len, kiln_oci_desc_t *out, kiln_error_t *err)
{
    int rc = kiln__oci_write_blob(dir, mt, json, len, out, err);

    free(json);
    return rc;
}

int kiln__oci_write_config(const char *dir, const kiln_oci_config_t *c,
                           kiln_oci_desc_t *out, kiln_error_t *err)
{
    char *json;
    size_t len;
    int rc = kiln__oci_config_json(c, &json, &len, err);

    memset(out, 0, sizeof(*out));
    return rc < 0
               ? rc
               : write_json_blob(dir, KILN_OCI_MT_CONFIG, json, len, out, err);
}

int kiln__oci_write_manifest(const char *dir, const kiln_oci_desc_t *config,
                             const kiln_oci_desc_t *layers, size_t n_layers,
                             kiln_oci_desc_t *out, kiln_error_t *err)
{
    char *json;
    size_t len;
    int rc = kiln__oci_image_manifest_json(config, layers, n_layers, &json,
                                           &len, err);

    memset(out, 0, sizeof(*out));
    return rc < 0 ? rc
                  : write_json_blob(dir, KILN_OCI_MT_MANIFEST, json, len, out,
                                    err);
}

int kiln__oci_write_index_blob(const char *dir,
                               const kiln_oci_desc_t *manifests, size_t n,
                               kiln_oci_desc_t *out, kiln_error_t *err)
{
    char *json;
    size_t len;
    int rc = kiln__oci_index_json(manifests, n, &json, &len, err);

    memset(out, 0, sizeof(*out));
    return rc < 0
               ? rc
               : write_json_blob(dir, KILN_OCI_MT_INDEX, json, len, out, err);
}

int kiln__oci_write_index_json(const char *dir,
                               const kiln_oci_desc_t *manifests, size_t n,
                               kiln_error_t *err)
{
    char path[4200], *json;
    size_t len;
    int rc = kiln__oci_index_json(manifests, n, &json, &len, err);

    if (rc < 0) {
        return rc;
    }
    snprintf(path, sizeof(path), "%s/index.json", dir);
    rc = write_file(dir, path, json, len, err);
    free(json);
    return rc;
}

/* Reads at most `limit` bytes of the open file `fd` (closed here). */
static int read_fd(int fd, const char *what, size_t limit, uint8_t **data,
                   size_t *len, kiln_error_t *err)
{
    kiln__buf_t b = KILN_BUF_INIT;
    uint8_t chunk[65536];
    ssize_t r;
    int rc = 0;

    while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc =
                kiln__fail(err, KILN_EIO, "read %s: %s", what, strerror(errno));
            break;
        }
        if (b.len + (size_t)r > limit) {
            rc =
                kiln__fail(err, KILN_E2BIG,
                           "%s is larger than the %zu byte limit", what, limit);
            break;
        }
        kiln__buf_append(&b, chunk, (size_t)r);
    }
    close(fd);
    if (rc == 0 && !kiln__buf_ok(&b)) {
        rc = oom(err);
    }
    if (rc < 0) {
        kiln__buf_free(&b);
        return rc;
    }
    if (b.data == NULL && (b.data = malloc(1)) == NULL) {
        return oom(err);
    }
    *data = b.data;
    *len = b.len;
    return 0;
}

void kiln__oci_layout_free(kiln_oci_layout_t *l)
{
    if (l == NULL) {
        return;
    }
    if (l->blobs_fd >= 0) {
        close(l->blobs_fd);
    }
    kiln__oci_index_clear(&l->index);
    free(l->dir);
    free(l);
}

/* Reads `name` in the layout directory (index.json, oci-layout). */
static int read_top(const char *dir, const char *name, uint8_t **data,
                    size_t *len, kiln_error_t *err)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return kiln__fail(err, errno == ENOENT ? KILN_ENOENT : KILN_EIO,
                          "open %s: %s", path, strerror(errno));
    }
    return read_fd(fd, path, KILN_OCI_JSON_MAX, data, len, err);
}

/* Checks `dir`/oci-layout names image layout version 1.0.0. */
static int check_oci_layout(const char *dir, kiln_error_t *err)
{
    uint8_t *data;
    size_t len;
    int rc = read_top(dir, "oci-layout", &data, &len, err);

    if (rc < 0) {
        return rc;
    }
    /* The file is one small object; a substring test keeps this free of a
     * second parser while rejecting other versions. */
    if (memmem(data, len, "\"imageLayoutVersion\"", 20) == NULL ||
        memmem(data, len, "\"1.0.0\"", 7) == NULL) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "%s/oci-layout: imageLayoutVersion is not 1.0.0", dir);
    }
    free(data);
    return rc;
}

int kiln__oci_layout_open(const char *dir, kiln_oci_layout_t **out,
                          kiln_error_t *err)
{
    kiln_oci_layout_t *l = calloc(1, sizeof(*l));
    char path[4200];
    uint8_t *data = NULL;
    size_t len;
    int rc = l != NULL ? 0 : oom(err);

    *out = NULL;
    if (rc == 0) {
        l->blobs_fd = -1;
        l->dir = strdup(dir);
        rc = l->dir != NULL ? check_oci_layout(dir, err) : oom(err);
    }
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
        l->blobs_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->blobs_fd < 0) {
            rc =
                kiln__fail(err, KILN_EIO, "open %s: %s", path, strerror(errno));
        }
    }
    if (rc == 0) {
        rc = read_top(dir, "index.json", &data, &len, err);
    }
    if (rc == 0) {
        rc = kiln__oci_index_parse(data, len, &l->index, err);
        if (rc < 0) {
            kiln__fail_prefix(err, rc, "%s/index.json", dir);
        }
    }
    free(data);
    if (rc < 0) {
        kiln__oci_layout_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

const kiln_oci_index_t *kiln__oci_layout_index(const kiln_oci_layout_t *l)
{
    return &l->index;
}

int kiln__oci_layout_open_blob(const kiln_oci_layout_t *l, const char *digest,
                               int *fd, kiln_error_t *err)
{
    *fd = -1;
    if (!kiln__digest_valid(digest)) {
        return kiln__fail(err, KILN_EINVAL,
                          "blob \"%.80s\": not a sha256 digest", digest);
    }
    *fd = openat(l->blobs_fd, digest + 7, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0) {
        return kiln__fail(err, errno == ENOENT ? KILN_ENOENT : KILN_EIO,
                          "blob %s in %s: %s", digest, l->dir, strerror(errno));
    }
    return 0;
}

int kiln__oci_layout_read_blob(const kiln_oci_layout_t *l, const char *digest,
                               int64_t size, size_t limit, uint8_t **data,
                               size_t *len, kiln_error_t *err)
{
    char got[KILN_DIGEST_STRLEN + 1];
    int fd, rc = kiln__oci_layout_open_blob(l, digest, &fd, err);

    if (rc < 0) {
        return rc;
    }
    rc = read_fd(fd, digest, limit, data, len, err);
    if (rc < 0) {
        return rc;
    }
    if (kiln__sha256_digest(*data, *len, got) < 0) {
        rc = oom(err);
    } else if (strcmp(got, digest) != 0) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "blob %s in %s: digest mismatch: expected %s, got %s",
                        digest, l->dir, digest, got);
    } else if (size >= 0 && (uint64_t)size != *len) {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "blob %s in %s: size mismatch: expected %lld, got %zu",
                        digest, l->dir, (long long)size, *len);
    }
    if (rc < 0) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

/* Reads `d` as an index or a manifest. The media type comes from the
 * descriptor, else from the blob, else from its shape. */
static int read_node(const kiln_oci_layout_t *l, const kiln_oci_desc_t *d,
                     bool *is_index, kiln_oci_index_t *ix,
                     kiln_oci_image_manifest_t *m, kiln_error_t *err)
{
    uint8_t *data;
    size_t len;
    const char *mt = d->media_type;
    int rc = kiln__oci_layout_read_blob(l, d->digest, d->size,
                                        KILN_OCI_JSON_MAX, &data, &len, err);

    if (rc < 0) {
        return rc;
    }
    if (mt == NULL ||
        (!kiln__oci_mt_is_index(mt) && !kiln__oci_mt_is_manifest(mt))) {
        /* Unknown or absent: the blob's own fields decide. */
        mt = memmem(data, len, "\"manifests\"", 11) != NULL
                 ? KILN_OCI_MT_INDEX
                 : KILN_OCI_MT_MANIFEST;
    }
    *is_index = kiln__oci_mt_is_index(mt);
    rc = *is_index ? kiln__oci_index_parse(data, len, ix, err)
                   : kiln__oci_image_manifest_parse(data, len, m, err);
    if (rc < 0) {
        kiln__fail_prefix(err, rc, "%s", d->digest);
    }
    free(data);
    return rc;
}

/* The descriptor `ref` names in index.json, or a bare one for a digest. */
static int find_root(const kiln_oci_layout_t *l, const char *ref,
                     kiln_oci_desc_t *out, kiln_error_t *err)
{
    const kiln_oci_index_t *ix = &l->index;
    bool digest = kiln__digest_valid(ref);

    for (size_t i = 0; i < ix->n_manifests; i++) {
        const kiln_oci_desc_t *d = &ix->manifests[i];
        if ((digest && strcmp(d->digest, ref) == 0) ||
            (!digest && d->ref_name && strcmp(d->ref_name, ref) == 0)) {
            return kiln__oci_desc_copy(out, d, err);
        }
    }
    if (digest) {
        memset(out, 0, sizeof(*out));
        memcpy(out->digest, ref, KILN_DIGEST_STRLEN + 1);
        out->size = -1;
        return 0;
    }
    return kiln__fail(err, KILN_ENOENT, "no image named \"%s\" in %s", ref,
                      l->dir);
}

int kiln__oci_layout_find(const kiln_oci_layout_t *l, const char *ref,
                          const kiln_oci_platform_t *platform,
                          kiln_oci_image_manifest_t *manifest,
                          kiln_oci_desc_t *desc, kiln_error_t *err)
{
    kiln_oci_platform_t host;
    kiln_oci_desc_t cur = {0};
    int rc = find_root(l, ref, &cur, err);

    memset(manifest, 0, sizeof(*manifest));
    if (platform == NULL) {
        kiln__oci_platform_host(&host);
        platform = &host;
    }
    for (int depth = 0; rc == 0; depth++) {
        kiln_oci_index_t ix = {0};
        bool is_index = false;
        size_t pick;
        if (depth > KILN_OCI_MAX_NESTING) {
            rc = kiln__fail(err, KILN_EINVAL,
                            "%s: indexes nested deeper than %d", ref,
                            KILN_OCI_MAX_NESTING);
            break;
        }
        rc = read_node(l, &cur, &is_index, &ix, manifest, err);
        if (rc < 0 || !is_index) {
            break;
        }
        rc = kiln__oci_platform_select(ix.manifests, ix.n_manifests, platform,
                                       cur.digest, &pick, err);
        kiln__oci_desc_clear(&cur);
        if (rc == 0) {
            rc = kiln__oci_desc_copy(&cur, &ix.manifests[pick], err);
        }
        kiln__oci_index_clear(&ix);
    }
    if (rc == 0 && desc != NULL) {
        *desc = cur;
    } else {
        kiln__oci_desc_clear(&cur);
    }
    if (rc < 0) {
        kiln__oci_image_manifest_clear(manifest);
    }
    return rc;
}

int kiln__oci_layout_read_config(const kiln_oci_layout_t *l,
                                 const kiln_oci_image_manifest_t *m,
                                 kiln_oci_config_t *out, kiln_error_t *err)
{
    uint8_t *data;
    size_t len;
    int rc = kiln__oci_layout_read_blob(l, m->config.digest, m->config.size,
                                        KILN_OCI_JSON_MAX, &data, &len, err);

    memset(out, 0, sizeof(*out));
    if (rc < 0) {
        return rc;
    }
    rc = kiln__oci_config_parse(data, len, out, err);
    if (rc < 0) {
        kiln__fail_prefix(err, rc, "%s", m->config.digest);
    }
    free(data);
    return rc;
}

EVP_MD_CTX *kiln__oci_sha_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    if (c != NULL && !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(c);
        c = NULL;
    }
    return c;
}

void kiln__oci_sha_update(EVP_MD_CTX *c, const void *data, size_t len)
{
    /* EVP_DigestUpdate only fails for a context that was never set up. */
    (void)EVP_DigestUpdate(c, data, len);
}

int kiln__oci_sha_final(EVP_MD_CTX *c, char out[KILN_DIGEST_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(c, md, &n) && n == 32;

    EVP_MD_CTX_free(c);
    if (!ok) {
        return KILN_ENOMEM;
    }
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 0xf];
    }
    out[KILN_DIGEST_STRLEN] = '\0';
    return 0;
}
