/*
 * Exporting a snapshot's files: into a local directory, or as a tar
 * stream. Private to core/.
 */
#ifndef KILN_EXPORT_EXPORT_H
#define KILN_EXPORT_EXPORT_H

#include "internal.h"
#include "snap/snap.h"

/*
 * Writes the tree of `v` into directory `dest` (created if missing, parents
 * too). Top-level entries of the result replace entries of the same name in
 * `dest`; other entries of `dest` are left alone. The tree is first written
 * next to `dest` and renamed into place, so a failure leaves `dest` as it
 * was, entry by entry.
 */
int kiln__export_local(const kiln_snap_view_t *v, const char *dest,
                       kiln_error_t *err);

/*
 * Writes the tree of `v` as a POSIX (pax) tar stream to `fd`, entries in
 * byte order of their paths, with modes, owners, mtimes, symlinks, hard
 * links and xattrs. `scratch` is an empty directory the function may use
 * (and empties again).
 */
int kiln__export_tar(const kiln_snap_view_t *v, int fd, const char *scratch,
                     kiln_error_t *err);

/* Removes a directory tree (no symlinks followed). Missing is fine. */
int kiln__rm_rf(const char *path, kiln_error_t *err);

#endif
