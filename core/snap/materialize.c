/* Flattening a view into one plain directory tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

/* Opens an empty directory that will receive a tree. */
int kiln__snap_open_empty(const char *dir, kiln_error_t *err)
{
    bool empty;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
        return kiln__fail(err, errno == ENOENT ? KILN_ENOENT : KILN_EIO,
                          "%s: cannot open: %s", dir, strerror(errno));
    }
    if (kiln__snap_dir_empty(fd, &empty) != 0 || !empty) {
        close(fd);
        return kiln__fail(err, KILN_EINVAL, "%s: not an empty directory", dir);
    }
    return fd;
}

/* Gives fd the metadata of the root of v. */
int kiln__snap_root_meta(const kiln_snap_view_t *v, int fd, kiln_error_t *err)
{
    struct stat st;
    snap_meta_t m;
    int sfd;

    if (v->n == 0) {
        return fchmod(fd, 0755) == 0
                   ? 0
                   : kiln__snap_errno(err, errno, "cannot chmod", "");
    }
    if (fstat(v->fds[v->root[0]], &st) != 0) {
        return kiln__snap_errno(err, errno, "cannot stat", "");
    }
    sfd = openat(v->fds[v->root[0]], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd >= 0) {
        kiln__snap_copy_xattrs(sfd, fd);
        close(sfd);
    }
    kiln__snap_meta_from_stat(&m, &st, NULL);
    return kiln__snap_meta_apply(-1, NULL, fd, false, &m, "/", err);
}

int kiln__snap_materialize(const kiln_snap_view_t *v, const char *dest,
                           bool link, kiln_error_t *err)
{
    snap_dir_t root = {v->root, v->nroot};
    snap_copier_t c;
    snap_frame_t f;
    int fd, rc;

    fd = kiln__snap_open_empty(dest, err);
    if (fd < 0) {
        return fd;
    }
    rc = kiln__snap_copier_init(&c, v, fd, NULL, err);
    if (rc == 0) {
        c.link = link;
        kiln__snap_frame_init(&f, &c, fd);
        rc = kiln__snap_copy_contents(&c, &root, &f);
        kiln__snap_copier_free(&c);
    }
    if (rc == 0) {
        rc = kiln__snap_root_meta(v, fd, err);
    }
    close(fd);
    if (rc != 0) {
        kiln__fail_prefix(err, rc, "materialize into %s", dest);
    }
    return rc;
}
