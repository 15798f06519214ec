/*
 * Meta.user as BuildKit resolves it: "uid", "uid:gid", "name",
 * "name:group" (either side a number or a name), names looked up in the
 * rootfs's /etc/passwd and /etc/group. Private to core/.
 */
#ifndef KILN_EXEC_USER_H
#define KILN_EXEC_USER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

#define KILN__EXEC_MAX_GROUPS 64

typedef struct kiln__exec_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[KILN__EXEC_MAX_GROUPS]; /* supplementary, from /etc/group */
    size_t n_groups;
    char home[256]; /* from /etc/passwd, "/" when unknown */
} kiln__exec_user_t;

/*
 * Resolves `spec` (NULL or "" is root) against the contents of passwd and
 * group (either may be NULL: the file is missing). A numeric user needs no
 * entry; a numeric uid with an entry takes its primary group and home, as
 * runc does. Errors: KILN_EINVAL naming the user or group that has no
 * entry, or a malformed spec.
 */
int kiln__exec_user_resolve(const char *spec, const char *passwd,
                            const char *group, kiln__exec_user_t *out,
                            kiln_error_t *err);

#endif
