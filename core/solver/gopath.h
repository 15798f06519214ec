/*
 * Go's lexical slash-path functions (package path), which BuildKit applies
 * to selectors before hashing them. Results are malloc'ed and owned by the
 * caller; NULL means out of memory.
 */
#ifndef KILN_SOLVER_GOPATH_H
#define KILN_SOLVER_GOPATH_H

/* path.Clean(p). */
char *kiln__gopath_clean(const char *p);

/* path.Join("/", p): "/" for an empty p. */
char *kiln__gopath_join_root(const char *p);

/* path.Base(p). */
char *kiln__gopath_base(const char *p);

#endif
