/*
 * Go's lexical slash-path functions (package path), byte for byte. BuildKit
 * applies them to selectors before hashing them (cache maps) and its Go
 * client to the paths it stores in definitions (the builder).
 *
 * The functions returning char * malloc their result, which the caller
 * frees; NULL means out of memory. The _in_place and _to forms write to a
 * caller-provided buffer instead (the builder allocates from its arena).
 */
#ifndef KILN_UTIL_GOPATH_H
#define KILN_UTIL_GOPATH_H

#include <stddef.h>

/* Rewrites the path in `buf` as path.Clean(buf). `buf` must have room for
 * strlen(buf) + 2 bytes (path.Clean("") is "."). Returns the new length. */
size_t kiln__gopath_clean_in_place(char *buf);

/* Size of the buffer kiln__gopath_join_to() needs for `dir` and `p`. */
size_t kiln__gopath_join_size(const char *dir, const char *p);

/* Writes path.Join(dir, p) to `out`, which has room for
 * kiln__gopath_join_size(dir, p) bytes: "" if both are empty, else
 * path.Clean of the non-empty ones joined by "/". Returns its length. */
size_t kiln__gopath_join_to(char *out, const char *dir, const char *p);

/* path.Clean(p). */
char *kiln__gopath_clean(const char *p);

/* path.Join(dir, p). */
char *kiln__gopath_join(const char *dir, const char *p);

/* path.Join("/", p): "/" for an empty p. */
char *kiln__gopath_join_root(const char *p);

/* path.Base(p). */
char *kiln__gopath_base(const char *p);

#endif
