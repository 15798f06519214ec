/*
 * /etc/passwd and /etc/group lookups for Meta.user (user.h). The files
 * come from the build's rootfs, so any content is possible: lines that do
 * not parse are skipped, as libc does.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/user.h"

/* Fields of one colon-separated line, at most `max` (the rest joined). */
static size_t split_line(char *line, char **f, size_t max)
{
    size_t n = 0;

    while (n < max) {
        f[n++] = line;
        line = strchr(line, ':');
        if (line == NULL) {
            break;
        }
        *line++ = '\0';
    }
    return n;
}

static bool parse_id(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > UINT32_MAX - 1) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/*
 * Calls fn for each line of `text` split into `nf` fields; stops when fn
 * returns true. Returns whether it stopped.
 */
typedef bool (*line_fn)(char **f, size_t n, void *ud);

static bool each_line(const char *text, size_t nf, line_fn fn, void *ud)
{
    char *copy, *save = NULL;
    bool found = false;

    if (text == NULL || (copy = strdup(text)) == NULL) {
        return false;
    }
    for (char *l = strtok_r(copy, "\n", &save); l != NULL && !found;
         l = strtok_r(NULL, "\n", &save)) {
        char *f[8];
        size_t n = split_line(l, f, nf);

        if (n == nf && l[0] != '#') {
            found = fn(f, n, ud);
        }
    }
    free(copy);
    return found;
}

struct pw_query {
    const char *name; /* or NULL: by uid */
    uint32_t uid;
    kiln__exec_user_t *out;
    char matched[256]; /* the entry's name */
};

/* name:passwd:uid:gid:gecos:home:shell */
static bool pw_match(char **f, size_t n, void *ud)
{
    struct pw_query *q = ud;
    uint32_t uid, gid;

    if (!parse_id(f[2], &uid) || !parse_id(f[3], &gid)) {
        return false;
    }
    if (q->name != NULL ? strcmp(f[0], q->name) != 0 : uid != q->uid) {
        return false;
    }
    q->out->uid = uid;
    q->out->gid = gid;
    snprintf(q->matched, sizeof(q->matched), "%s", f[0]);
    snprintf(q->out->home, sizeof(q->out->home), "%s",
             f[5][0] != '\0' ? f[5] : "/");
    return true;
}

struct gr_query {
    const char *name; /* group by name; NULL: memberships of user */
    const char *user;
    uint32_t gid;
    kiln__exec_user_t *out;
};

static bool member_of(char *list, const char *user)
{
    char *save = NULL;

    for (char *m = strtok_r(list, ",", &save); m != NULL;
         m = strtok_r(NULL, ",", &save)) {
        if (strcmp(m, user) == 0) {
            return true;
        }
    }
    return false;
}

/* name:passwd:gid:members */
static bool gr_match(char **f, size_t n, void *ud)
{
    struct gr_query *q = ud;
    uint32_t gid;

    if (!parse_id(f[2], &gid)) {
        return false;
    }
    if (q->name != NULL) {
        if (strcmp(f[0], q->name) != 0) {
            return false;
        }
        q->gid = gid;
        return true;
    }
    if (q->user != NULL && member_of(f[3], q->user) &&
        q->out->n_groups < KILN__EXEC_MAX_GROUPS && gid != q->out->gid) {
        q->out->groups[q->out->n_groups++] = gid;
    }
    return false;
}

static int resolve_group(const char *g, const char *group,
                         kiln__exec_user_t *out, kiln_error_t *err)
{
    struct gr_query q = {.name = g, .out = out};
    uint32_t gid;

    if (parse_id(g, &gid)) {
        out->gid = gid;
        return 0;
    }
    if (!each_line(group, 4, gr_match, &q)) {
        return kiln__fail(err, KILN_EINVAL,
                          "group '%s' is not in the rootfs's /etc/group", g);
    }
    out->gid = q.gid;
    return 0;
}

int kiln__exec_user_resolve(const char *spec, const char *passwd,
                            const char *group, kiln__exec_user_t *out,
                            kiln_error_t *err)
{
    char user[256];
    const char *colon;
    struct pw_query q = {.out = out};
    struct gr_query gq = {.out = out};
    char name_buf[256] = "";
    uint32_t uid;

    memset(out, 0, sizeof(*out));
    snprintf(out->home, sizeof(out->home), "/");
    if (spec == NULL || spec[0] == '\0') {
        spec = "root";
    }
    if (strlen(spec) >= sizeof(user)) {
        return kiln__fail(err, KILN_EINVAL, "user '%.40s...': too long", spec);
    }
    snprintf(user, sizeof(user), "%s", spec);
    colon = strchr(spec, ':');
    if (colon != NULL) {
        user[colon - spec] = '\0';
    }
    if (user[0] == '\0') {
        return kiln__fail(err, KILN_EINVAL, "user '%s': no user name or id",
                          spec);
    }
    if (parse_id(user, &uid)) {
        q.uid = uid;
        out->uid = uid;
        if (each_line(passwd, 7, pw_match, &q)) {
            snprintf(name_buf, sizeof(name_buf), "%s", q.matched);
        }
    } else {
        q.name = user;
        if (!each_line(passwd, 7, pw_match, &q)) {
            if (strcmp(user, "root") != 0) {
                return kiln__fail(err, KILN_EINVAL,
                                  "user '%s' is not in the rootfs's "
                                  "/etc/passwd",
                                  user);
            }
            out->uid = 0;
            out->gid = 0;
        }
        snprintf(name_buf, sizeof(name_buf), "%s", user);
    }
    if (colon != NULL) {
        if (colon[1] == '\0') {
            return kiln__fail(err, KILN_EINVAL, "user '%s': empty group", spec);
        }
        return resolve_group(colon + 1, group, out, err);
    }
    /* Only a user given: its memberships become supplementary groups. */
    gq.user = name_buf[0] != '\0' ? name_buf : NULL;
    if (gq.user != NULL) {
        each_line(group, 4, gr_match, &gq);
    }
    return 0;
}
