/*
 * Layer blobs from directory trees: the tree is listed, sorted by path
 * bytes and written as a pax tar by libarchive. The tar bytes are hashed
 * (the diff_id) and handed to a second libarchive writer that only
 * compresses (format "raw"), whose output is hashed (the digest) and
 * written to a temporary blob file: one pass over the tree.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oci/layout.h"
#include "oci/layout_int.h"

/* Deepest directory nesting packed. */
#define MAX_DEPTH 256

typedef struct pent {
    char *path; /* relative to the source, no leading "./" */
    struct stat st;
    const char *link; /* hardlink target (another entry's path) or NULL */
} pent_t;

typedef struct pk {
    const char *src;
    kiln_error_t *err;
    pent_t *ents;
    size_t n, cap;
    int fd; /* the temporary blob */
    EVP_MD_CTX *tar_sha, *blob_sha;
    struct archive *tar, *zip; /* zip is NULL when uncompressed */
    int64_t blob_size;
    int io_errno; /* set by the callbacks when writing fails */
    int level;    /* compression level; 0: default */
} pk_t;

/* Records an allocation failure in `err` and returns KILN_ENOMEM. */
static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

/* Appends an entry for `path` (taken, freed on failure). */
static int add_entry(pk_t *p, char *path, const struct stat *st)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        pent_t *v = realloc(p->ents, cap * sizeof(*v));
        if (v == NULL) {
            free(path);
            return oom(p->err);
        }
        p->ents = v;
        p->cap = cap;
    }
    p->ents[p->n].path = path;
    p->ents[p->n].st = *st;
    p->ents[p->n].link = NULL;
    p->n++;
    return 0;
}

/* Lists the directory `dfd` (taken, closed here) at relative path `rel`. */
static int list_dir(pk_t *p, int dfd, const char *rel, int depth)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    int rc = 0;

    if (d == NULL) {
        close(dfd);
        return kiln__fail(p->err, KILN_EIO, "%s/%s: %s", p->src, rel,
                          strerror(errno));
    }
    if (depth > MAX_DEPTH) {
        closedir(d);
        return kiln__fail(p->err, KILN_E2BIG,
                          "%s/%s: nested deeper than %d directories", p->src,
                          rel, MAX_DEPTH);
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        char *path;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = kiln__fail(p->err, KILN_EIO, "%s/%s/%s: %s", p->src, rel,
                            de->d_name, strerror(errno));
            break;
        }
        if (S_ISSOCK(st.st_mode)) {
            continue;
        }
        path = *rel ? malloc(strlen(rel) + strlen(de->d_name) + 2)
                    : strdup(de->d_name);
        if (path == NULL) {
            rc = oom(p->err);
            break;
        }
        if (*rel) {
            sprintf(path, "%s/%s", rel, de->d_name);
        }
        rc = add_entry(p, path, &st);
        if (rc == 0 && S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sub >= 0 ? list_dir(p, sub, path, depth + 1)
                          : kiln__fail(p->err, KILN_EIO, "%s/%s: %s", p->src,
                                       path, strerror(errno));
        }
    }
    closedir(d);
    return rc;
}

/* qsort order of entries: the bytes of their paths. */
static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const pent_t *)a)->path, ((const pent_t *)b)->path);
}

/* qsort order of entry pointers: device, inode, then entry order. */
static int cmp_inode(const void *a, const void *b)
{
    const pent_t *x = *(const pent_t *const *)a, *y = *(const pent_t *const *)b;

    if (x->st.st_dev != y->st.st_dev) {
        return x->st.st_dev < y->st.st_dev ? -1 : 1;
    }
    if (x->st.st_ino != y->st.st_ino) {
        return x->st.st_ino < y->st.st_ino ? -1 : 1;
    }
    return x < y ? -1 : x > y; /* entry order: the first is stored */
}

/* Links every non-directory sharing an inode to the first in order. */
static int find_hardlinks(pk_t *p)
{
    pent_t **v = malloc((p->n ? p->n : 1) * sizeof(*v));
    size_t m = 0;

    if (v == NULL) {
        return oom(p->err);
    }
    for (size_t i = 0; i < p->n; i++) {
        if (!S_ISDIR(p->ents[i].st.st_mode) && p->ents[i].st.st_nlink > 1) {
            v[m++] = &p->ents[i];
        }
    }
    if (m > 1) {
        qsort(v, m, sizeof(*v), cmp_inode);
    }
    for (size_t i = 1; i < m; i++) {
        if (v[i]->st.st_dev == v[i - 1]->st.st_dev &&
            v[i]->st.st_ino == v[i - 1]->st.st_ino) {
            v[i]->link = v[i - 1]->link ? v[i - 1]->link : v[i - 1]->path;
        }
    }
    free(v);
    return 0;
}

/* Hashes and writes blob bytes; -1 with p->io_errno on failure. */
static int emit(pk_t *p, const void *buf, size_t len)
{
    kiln__oci_sha_update(p->blob_sha, buf, len);
    p->blob_size += (int64_t)len;
    if (kiln__oci_write_all(p->fd, buf, len) < 0) {
        p->io_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* libarchive output of the tar writer: hashed for the diff_id, then
 * compressed (or written as is). */
static la_ssize_t tar_write_cb(struct archive *a, void *ud, const void *buf,
                               size_t len)
{
    pk_t *p = ud;

    (void)a;
    kiln__oci_sha_update(p->tar_sha, buf, len);
    if (p->zip == NULL) {
        return emit(p, buf, len) < 0 ? -1 : (la_ssize_t)len;
    }
    if (archive_write_data(p->zip, buf, len) != (la_ssize_t)len) {
        p->io_errno = p->io_errno ? p->io_errno : EIO;
        return -1;
    }
    return (la_ssize_t)len;
}

/* libarchive output of the compressor: the blob bytes. */
static la_ssize_t zip_write_cb(struct archive *a, void *ud, const void *buf,
                               size_t len)
{
    (void)a;
    return emit(ud, buf, len) < 0 ? -1 : (la_ssize_t)len;
}

/* The compressing writer: format raw, one regular-file entry. */
static int open_zip(pk_t *p, kiln_oci_comp_t comp)
{
    struct archive_entry *e = archive_entry_new();
    int r;

    p->zip = archive_write_new();
    if (p->zip == NULL || e == NULL) {
        archive_entry_free(e);
        return oom(p->err);
    }
    r = archive_write_set_format_raw(p->zip);
    if (r == ARCHIVE_OK) {
        r = comp == KILN_OCI_COMP_GZIP ? archive_write_add_filter_gzip(p->zip)
                                       : archive_write_add_filter_zstd(p->zip);
    }
    if (r == ARCHIVE_OK && comp == KILN_OCI_COMP_GZIP) {
        /* No time in the gzip header: equal trees give equal blobs. */
        r = archive_write_set_filter_option(p->zip, "gzip", "timestamp", NULL);
    }
    if (r == ARCHIVE_OK && p->level > 0) {
        char lv[16];
        snprintf(lv, sizeof(lv), "%d", p->level);
        r = archive_write_set_filter_option(p->zip, NULL, "compression-level",
                                            lv);
    }
    if (r == ARCHIVE_OK) {
        r = archive_write_set_bytes_per_block(p->zip, 0);
    }
    if (r == ARCHIVE_OK) {
        r = archive_write_open2(p->zip, p, NULL, zip_write_cb, NULL, NULL);
    }
    archive_entry_set_pathname(e, "layer.tar");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (r == ARCHIVE_OK) {
        r = archive_write_header(p->zip, e);
    }
    archive_entry_free(e);
    if (r != ARCHIVE_OK) {
        return kiln__fail(p->err, KILN_ENOTSUP, "layer compression: %s",
                          archive_error_string(p->zip));
    }
    return 0;
}

/* The tar writer: pax, unblocked, into tar_write_cb. */
static int open_tar(pk_t *p)
{
    p->tar = archive_write_new();
    if (p->tar == NULL) {
        return oom(p->err);
    }
    if (archive_write_set_format_pax(p->tar) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(p->tar, 0) != ARCHIVE_OK ||
        archive_write_open2(p->tar, p, NULL, tar_write_cb, NULL, NULL) !=
            ARCHIVE_OK) {
        return kiln__fail(p->err, KILN_EIO, "layer tar: %s",
                          archive_error_string(p->tar));
    }
    return 0;
}

/* Copies the xattrs of `full` into the entry. */
static int add_xattrs(pk_t *p, const char *full, struct archive_entry *e)
{
    char names[65536], val[65536];
    ssize_t n = llistxattr(full, names, sizeof(names));

    if (n < 0) {
        return errno == ENOTSUP
                   ? 0
                   : kiln__fail(p->err, KILN_EIO, "list xattrs of %s: %s", full,
                                strerror(errno));
    }
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        ssize_t vl = lgetxattr(full, names + i, val, sizeof(val));
        if (vl < 0) {
            return kiln__fail(p->err, KILN_EIO, "xattr %s of %s: %s", names + i,
                              full, strerror(errno));
        }
        archive_entry_xattr_add_entry(e, names + i, val, (size_t)vl);
    }
    return 0;
}

/* Copies the content of the file `full` into the current tar entry. */
static int write_data(pk_t *p, const char *full)
{
    char buf[65536];
    ssize_t r;
    int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

    if (fd < 0) {
        return kiln__fail(p->err, KILN_EIO, "open %s: %s", full,
                          strerror(errno));
    }
    while ((r = read(fd, buf, sizeof(buf))) != 0) {
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = kiln__fail(p->err, KILN_EIO, "read %s: %s", full,
                            strerror(errno));
            break;
        }
        if (archive_write_data(p->tar, buf, (size_t)r) < 0) {
            rc = kiln__fail(p->err, KILN_EIO, "write layer: %s",
                            p->io_errno ? strerror(p->io_errno)
                                        : archive_error_string(p->tar));
            break;
        }
    }
    close(fd);
    return rc;
}

/* Fills the tar header of `pe`. */
static int fill_entry(pk_t *p, const pent_t *pe, const char *full,
                      struct archive_entry *e)
{
    const struct stat *st = &pe->st;
    char name[4200];

    snprintf(name, sizeof(name), "%s%s", pe->path,
             S_ISDIR(st->st_mode) ? "/" : "");
    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, st->st_mode);
    archive_entry_set_uid(e, st->st_uid);
    archive_entry_set_gid(e, st->st_gid);
    archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    if (pe->link != NULL) {
        archive_entry_set_hardlink(e, pe->link);
        archive_entry_set_size(e, 0);
    } else if (S_ISREG(st->st_mode)) {
        archive_entry_set_size(e, st->st_size);
    } else if (S_ISLNK(st->st_mode)) {
        char target[4097];
        ssize_t n = readlink(full, target, sizeof(target) - 1);
        if (n < 0 || n >= (ssize_t)sizeof(target) - 1) {
            return kiln__fail(p->err, KILN_EIO, "readlink %s: %s", full,
                              n < 0 ? strerror(errno) : "target too long");
        }
        target[n] = '\0';
        archive_entry_set_symlink(e, target);
    } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        archive_entry_set_rdev(e, st->st_rdev);
    }
    return pe->link != NULL ? 0 : add_xattrs(p, full, e);
}

/* Writes the header (and content) of one entry. */
static int write_entry(pk_t *p, const pent_t *pe)
{
    struct archive_entry *e = archive_entry_new();
    char full[8400];
    int rc;

    if (e == NULL) {
        return oom(p->err);
    }
    snprintf(full, sizeof(full), "%s/%s", p->src, pe->path);
    rc = fill_entry(p, pe, full, e);
    if (rc == 0 && archive_write_header(p->tar, e) != ARCHIVE_OK) {
        rc = kiln__fail(p->err, KILN_EIO, "layer entry %s: %s", pe->path,
                        p->io_errno ? strerror(p->io_errno)
                                    : archive_error_string(p->tar));
    }
    if (rc == 0 && pe->link == NULL && S_ISREG(pe->st.st_mode) &&
        pe->st.st_size > 0) {
        rc = write_data(p, full);
    }
    archive_entry_free(e);
    return rc;
}

/* Closes the writers, flushing the tar end and the compressor. */
static int finish(pk_t *p)
{
    int rc = 0;

    if (archive_write_close(p->tar) != ARCHIVE_OK) {
        rc = kiln__fail(p->err, KILN_EIO, "finish layer tar: %s",
                        archive_error_string(p->tar));
    }
    if (rc == 0 && p->zip != NULL &&
        archive_write_close(p->zip) != ARCHIVE_OK) {
        rc = kiln__fail(p->err, KILN_EIO, "finish layer compression: %s",
                        archive_error_string(p->zip));
    }
    return rc;
}

/* The layer media type for `comp`. */
static const char *layer_mt(kiln_oci_comp_t comp)
{
    return comp == KILN_OCI_COMP_GZIP   ? KILN_OCI_MT_LAYER_GZ
           : comp == KILN_OCI_COMP_ZSTD ? KILN_OCI_MT_LAYER_ZST
                                        : KILN_OCI_MT_LAYER;
}

/* Lists and writes everything; the blob is in p->fd. */
static int pack(pk_t *p, kiln_oci_comp_t comp)
{
    int root = open(p->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = root >= 0 ? list_dir(p, root, "", 0)
                       : kiln__fail(p->err, KILN_EIO, "open %s: %s", p->src,
                                    strerror(errno));

    if (rc == 0 && p->n > 0) {
        qsort(p->ents, p->n, sizeof(*p->ents), cmp_path);
        rc = find_hardlinks(p);
    }
    if (rc == 0 && comp != KILN_OCI_COMP_NONE) {
        rc = open_zip(p, comp);
    }
    if (rc == 0) {
        rc = open_tar(p);
    }
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        rc = write_entry(p, &p->ents[i]);
    }
    return rc == 0 ? finish(p) : rc;
}

int kiln__oci_write_layer(const char *dir, const char *src,
                          kiln_oci_comp_t comp, kiln_oci_desc_t *out,
                          char diff_id[KILN_DIGEST_STRLEN + 1],
                          kiln_error_t *err)
{
    return kiln__oci_write_layer_level(dir, src, comp, 0, out, diff_id, err);
}

int kiln__oci_write_layer_level(const char *dir, const char *src,
                                kiln_oci_comp_t comp, int level,
                                kiln_oci_desc_t *out,
                                char diff_id[KILN_DIGEST_STRLEN + 1],
                                kiln_error_t *err)
{
    pk_t p = {0};
    char bdir[4200], tmp[4300], final[4300];
    int rc;

    memset(out, 0, sizeof(*out));
    p.level = level;
    p.src = src;
    p.err = err;
    p.tar_sha = kiln__oci_sha_new();
    p.blob_sha = kiln__oci_sha_new();
    snprintf(bdir, sizeof(bdir), "%s/blobs/sha256", dir);
    p.fd = -1;
    rc = p.tar_sha && p.blob_sha ? 0 : oom(err);
    if (rc == 0 &&
        (p.fd = kiln__oci_tmp_open(bdir, tmp, sizeof(tmp), err)) < 0) {
        rc = p.fd;
    }
    if (rc == 0) {
        rc = pack(&p, comp);
    }
    if (p.tar != NULL) {
        archive_write_free(p.tar);
    }
    if (p.zip != NULL) {
        archive_write_free(p.zip);
    }
    for (size_t i = 0; i < p.n; i++) {
        free(p.ents[i].path);
    }
    free(p.ents);
    if (rc == 0 && (kiln__oci_sha_final(p.tar_sha, diff_id) < 0 ||
                    kiln__oci_sha_final(p.blob_sha, out->digest) < 0)) {
        p.tar_sha = p.blob_sha = NULL;
        rc = oom(err);
    } else if (rc == 0) {
        p.tar_sha = p.blob_sha = NULL;
    }
    if (rc == 0) {
        snprintf(final, sizeof(final), "%s/%s", bdir, out->digest + 7);
        rc = kiln__oci_tmp_commit(p.fd, tmp, final, err);
        p.fd = -1;
    }
    if (rc == 0) {
        out->size = p.blob_size;
        out->media_type = strdup(layer_mt(comp));
        rc = out->media_type != NULL ? 0 : oom(err);
    }
    if (p.fd >= 0) {
        close(p.fd);
        unlink(tmp);
    }
    EVP_MD_CTX_free(p.tar_sha);
    EVP_MD_CTX_free(p.blob_sha);
    if (rc < 0) {
        kiln__oci_desc_clear(out);
    }
    return rc;
}
