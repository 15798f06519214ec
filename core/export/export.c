/* Exporters of build results: local directory and tar stream. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export/export.h"

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int kiln__rm_rf(const char *path, kiln_error_t *err)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        return errno == ENOENT ? 0
                               : kiln__fail(err, -errno, "%s: %s", path,
                                            strerror(errno));
    }
    if (nftw(path, rm_entry, 64, FTW_DEPTH | FTW_PHYS) < 0) {
        return kiln__fail(err, KILN_EIO, "removing %s: %s", path,
                          strerror(errno));
    }
    return 0;
}

static int mkdir_p(const char *path, kiln_error_t *err)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf)) {
        return kiln__fail(err, KILN_EINVAL, "bad output path \"%s\"", path);
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
                return kiln__fail(err, -errno, "%s: %s", buf, strerror(errno));
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
        return kiln__fail(err, -errno, "%s: %s", buf, strerror(errno));
    }
    return 0;
}

/* Moves every entry of `from` into `to`, replacing same-named entries. */
static int move_entries(const char *from, const char *to, kiln_error_t *err)
{
    DIR *d = opendir(from);
    struct dirent *de;
    char src[PATH_MAX], dst[PATH_MAX];
    int rc = 0;

    if (d == NULL) {
        return kiln__fail(err, -errno, "%s: %s", from, strerror(errno));
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name);
        rc = kiln__rm_rf(dst, err);
        if (rc == 0 && rename(src, dst) < 0) {
            rc = kiln__fail(err, -errno, "moving %s into place: %s", dst,
                            strerror(errno));
        }
    }
    closedir(d);
    return rc;
}

int kiln__export_local(const kiln_snap_view_t *v, const char *dest,
                       kiln_error_t *err)
{
    char tmp[PATH_MAX];
    int rc = mkdir_p(dest, err);

    if (rc < 0) {
        return rc;
    }
    /* Beside dest, so the final renames stay on one file system. */
    if (snprintf(tmp, sizeof(tmp), "%s/.kiln-export-XXXXXX", dest) >=
            (int)sizeof(tmp) ||
        mkdtemp(tmp) == NULL) {
        return kiln__fail(err, KILN_EIO, "%s: cannot create a temporary "
                          "directory: %s", dest, strerror(errno));
    }
    rc = kiln__snap_materialize(v, tmp, false, err);
    if (rc == 0) {
        rc = move_entries(tmp, dest, err);
    }
    if (rc < 0) {
        kiln__fail_prefix(err, rc, "exporting to %s", dest);
    }
    kiln__rm_rf(tmp, NULL);
    return rc;
}

struct tar_ctx {
    struct archive *ar;
    struct archive *disk;
    const char *base;
    kiln_error_t *err;
};

static int tar_fail(struct tar_ctx *t, struct archive *a, const char *what)
{
    return kiln__fail(t->err, KILN_EIO, "tar %s: %s", what,
                      archive_error_string(a) ? archive_error_string(a)
                                              : "unknown error");
}

static int copy_data(struct tar_ctx *t, const char *path)
{
    char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n;

    if (fd < 0) {
        return kiln__fail(t->err, -errno, "%s: %s", path, strerror(errno));
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (archive_write_data(t->ar, buf, (size_t)n) != n) {
            close(fd);
            return tar_fail(t, t->ar, "write");
        }
    }
    close(fd);
    return n < 0 ? kiln__fail(t->err, KILN_EIO, "%s: %s", path,
                              strerror(errno))
                 : 0;
}

static int tar_walk(struct tar_ctx *t, const char *rel);

static int tar_one(struct tar_ctx *t, const char *rel)
{
    char path[PATH_MAX];
    struct archive_entry *e = archive_entry_new();
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", t->base, rel);
    archive_entry_copy_sourcepath(e, path);
    if (archive_read_disk_entry_from_file(t->disk, e, -1, NULL) !=
        ARCHIVE_OK) {
        rc = tar_fail(t, t->disk, path);
    } else {
        archive_entry_copy_pathname(e, rel);
        archive_entry_set_uname(e, NULL);
        archive_entry_set_gname(e, NULL);
        if (archive_write_header(t->ar, e) != ARCHIVE_OK) {
            rc = tar_fail(t, t->ar, "header");
        } else if (archive_entry_filetype(e) == AE_IFREG &&
                   archive_entry_size(e) > 0) {
            rc = copy_data(t, path);
        }
    }
    if (rc == 0 && archive_entry_filetype(e) == AE_IFDIR) {
        rc = tar_walk(t, rel);
    }
    archive_entry_free(e);
    return rc;
}

static int byte_order(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dots(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int tar_walk(struct tar_ctx *t, const char *rel)
{
    char dir[PATH_MAX], child[PATH_MAX];
    struct dirent **names;
    int n, rc = 0;

    snprintf(dir, sizeof(dir), "%s%s%s", t->base, *rel ? "/" : "", rel);
    n = scandir(dir, &names, skip_dots, byte_order);
    if (n < 0) {
        return kiln__fail(t->err, -errno, "%s: %s", dir, strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "",
                     names[i]->d_name);
            rc = tar_one(t, child);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int kiln__export_tar(const kiln_snap_view_t *v, int fd, const char *scratch,
                     kiln_error_t *err)
{
    struct tar_ctx t = {archive_write_new(), archive_read_disk_new(), scratch,
                        err};
    int rc;

    if (t.ar == NULL || t.disk == NULL) {
        rc = kiln__fail(err, KILN_ENOMEM, "out of memory");
        goto out;
    }
    rc = kiln__snap_materialize(v, scratch, true, err);
    if (rc < 0) {
        goto out;
    }
    archive_read_disk_set_standard_lookup(t.disk);
    archive_read_disk_set_symlink_physical(t.disk);
    if (archive_write_set_format_pax_restricted(t.ar) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(t.ar, 1) != ARCHIVE_OK ||
        archive_write_open_fd(t.ar, fd) != ARCHIVE_OK) {
        rc = tar_fail(&t, t.ar, "open");
        goto out;
    }
    rc = tar_walk(&t, "");
    if (archive_write_close(t.ar) != ARCHIVE_OK && rc == 0) {
        rc = tar_fail(&t, t.ar, "close");
    }
out:
    if (t.ar != NULL) {
        archive_write_free(t.ar);
    }
    if (t.disk != NULL) {
        archive_read_free(t.disk);
    }
    return rc;
}
