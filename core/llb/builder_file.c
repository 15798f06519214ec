/*
 * File ops: chains of mkdir/mkfile/rm/copy/symlink actions applied to a
 * base state, encoded as BuildKit's Go FileOp.Marshal does
 * (client/llb/fileop.go): inputs collected action by action, action inputs
 * pointing at op inputs or at earlier actions' results, only the last
 * action's result as the output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/builder.h"

/* ---- chains ---- */

kiln_llb_file_t *kiln_llb_actions(kiln_llb_t *b)
{
    return b != NULL ? &b->empty_chain : NULL;
}

static kiln_llb_file_t *new_action(kiln_llb_file_t *prev, const char *fn,
                                   enum kiln__action_kind kind, unsigned flags,
                                   unsigned allowed)
{
    kiln_llb_file_t *a;

    if (prev == NULL) {
        return NULL;
    }
    if (flags & ~allowed) {
        kiln__llb_fail(prev->b, KILN_EINVAL, "%s: unknown flags 0x%x", fn,
                       flags & ~allowed);
        return NULL;
    }
    a = kiln__llb_alloc(prev->b, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->b = prev->b;
    a->prev = prev->kind == KILN_ACT_NONE ? NULL : prev;
    a->kind = kind;
    a->flags = flags;
    a->copy_mode = -1;
    a->timestamp = -1;
    return a;
}

kiln_llb_file_t *kiln_llb_mkdir(kiln_llb_file_t *fa, const char *path,
                                unsigned mode, unsigned flags)
{
    static const char fn[] = "kiln_llb_mkdir";
    kiln_llb_file_t *a =
        new_action(fa, fn, KILN_ACT_MKDIR, flags, KILN_LLB_MKDIR_PARENTS);

    if (a == NULL || !kiln__llb_str(a->b, fn, "path", path, false, &a->path)) {
        return NULL;
    }
    a->mode = mode & 0777;
    return a;
}

kiln_llb_file_t *kiln_llb_mkfile(kiln_llb_file_t *fa, const char *path,
                                 unsigned mode, const void *data, size_t len,
                                 unsigned flags)
{
    static const char fn[] = "kiln_llb_mkfile";
    kiln_llb_file_t *a = new_action(fa, fn, KILN_ACT_MKFILE, flags, 0);

    if (a == NULL || !kiln__llb_str(a->b, fn, "path", path, false, &a->path)) {
        return NULL;
    }
    if (data == NULL && len > 0) {
        kiln__llb_null(a->b, fn, "data");
        return NULL;
    }
    if (len > 0 &&
        (a->data = kiln__arena_dup(&a->b->arena, data, len)) == NULL) {
        kiln__llb_fail(a->b, KILN_ENOMEM, "out of memory");
        return NULL;
    }
    a->len = len;
    a->mode = mode & 0777;
    return a;
}

kiln_llb_file_t *kiln_llb_rm(kiln_llb_file_t *fa, const char *path,
                             unsigned flags)
{
    static const char fn[] = "kiln_llb_rm";
    kiln_llb_file_t *a =
        new_action(fa, fn, KILN_ACT_RM, flags,
                   KILN_LLB_RM_ALLOW_NOT_FOUND | KILN_LLB_RM_ALLOW_WILDCARD);

    if (a == NULL || !kiln__llb_str(a->b, fn, "path", path, false, &a->path)) {
        return NULL;
    }
    return a;
}

kiln_llb_file_t *kiln_llb_copy(kiln_llb_file_t *fa, kiln_llb_state_t *src,
                               const char *src_path, const char *dest,
                               unsigned flags)
{
    static const char fn[] = "kiln_llb_copy";
    kiln_llb_file_t *a;

    if (fa != NULL && src == NULL) {
        kiln__llb_null(fa->b, fn, "src");
        return NULL;
    }
    a = new_action(fa, fn, KILN_ACT_COPY, flags,
                   (KILN_LLB_COPY_ALWAYS_REPLACE_EXISTING << 1) - 1);
    if (a == NULL ||
        !kiln__llb_str(a->b, fn, "src_path", src_path, false, &a->path) ||
        !kiln__llb_str(a->b, fn, "dest", dest, false, &a->path2)) {
        return NULL;
    }
    if (src->b != a->b) {
        kiln__llb_fail(a->b, KILN_EINVAL,
                       "%s: the source state belongs to another builder", fn);
        return NULL;
    }
    a->src = src;
    return a;
}

kiln_llb_file_t *kiln_llb_symlink(kiln_llb_file_t *fa, const char *oldpath,
                                  const char *newpath, unsigned flags)
{
    static const char fn[] = "kiln_llb_symlink";
    kiln_llb_file_t *a = new_action(fa, fn, KILN_ACT_SYMLINK, flags, 0);

    if (a == NULL ||
        !kiln__llb_str(a->b, fn, "oldpath", oldpath, false, &a->path) ||
        !kiln__llb_str(a->b, fn, "newpath", newpath, false, &a->path2)) {
        return NULL;
    }
    return a;
}

/* ---- options of the last action ---- */

static const char *action_name(enum kiln__action_kind k)
{
    static const char *const names[] = {"(none)", "mkdir", "mkfile",
                                        "rm",     "copy",  "symlink"};
    return names[k];
}

/* `fa` if its last action is one of `kinds` (a bit per kind). */
static kiln_llb_file_t *last_action(kiln_llb_file_t *fa, const char *fn,
                                    unsigned kinds)
{
    if (fa == NULL) {
        return NULL;
    }
    if (!(kinds & (1u << fa->kind))) {
        kiln__llb_fail(fa->b, KILN_EINVAL,
                       "%s: does not apply to %s (the last action of the "
                       "chain)",
                       fn, action_name(fa->kind));
        return NULL;
    }
    return fa;
}

#define CREATORS                                                               \
    ((1u << KILN_ACT_MKDIR) | (1u << KILN_ACT_MKFILE) |                        \
     (1u << KILN_ACT_COPY) | (1u << KILN_ACT_SYMLINK))

/* Go's parseUID: "root", or a decimal int32 (wrapped to uint32). */
static bool parse_uid(const char *s, uint32_t *id)
{
    char *end;
    long long v;

    if (strcmp(s, "root") == 0) {
        *id = 0;
        return true;
    }
    if (*s == 0 || !(*s == '+' || *s == '-' || (*s >= '0' && *s <= '9'))) {
        return false;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != 0 || errno != 0 || v < INT32_MIN || v > INT32_MAX ||
        ((*s == '+' || *s == '-') && (s[1] < '0' || s[1] > '9'))) {
        return false;
    }
    *id = (uint32_t)(int32_t)v;
    return true;
}

static bool user_opt(kiln_llb_t *b, const char *s, size_t n,
                     kiln__user_opt_t *out)
{
    char *copy = kiln__arena_dup(&b->arena, s, n + 1);

    if (copy == NULL) {
        kiln__llb_fail(b, KILN_ENOMEM, "out of memory");
        return false;
    }
    copy[n] = 0;
    out->set = true;
    out->name = NULL;
    out->id = 0;
    /* An empty name means id 0, as Go marshals UserOpt{Name: ""}. */
    if (!parse_uid(copy, &out->id) && *copy != 0) {
        out->name = copy;
    }
    return true;
}

kiln_llb_file_t *kiln_llb_file_owner(kiln_llb_file_t *fa,
                                     const char *user_group)
{
    static const char fn[] = "kiln_llb_file_owner";
    kiln_llb_file_t *a = last_action(fa, fn, CREATORS);
    const char *ug, *colon;

    if (a == NULL ||
        !kiln__llb_str(a->b, fn, "owner", user_group, false, &ug)) {
        return NULL;
    }
    colon = strchr(ug, ':');
    a->group.set = false;
    if (!user_opt(a->b, ug, colon ? (size_t)(colon - ug) : strlen(ug),
                  &a->user) ||
        (colon != NULL &&
         !user_opt(a->b, colon + 1, strlen(colon + 1), &a->group))) {
        return NULL;
    }
    a->has_owner = true;
    return a;
}

kiln_llb_file_t *kiln_llb_file_owner_id(kiln_llb_file_t *fa, uint32_t uid,
                                        uint32_t gid)
{
    kiln_llb_file_t *a = last_action(fa, "kiln_llb_file_owner_id", CREATORS);

    if (a == NULL) {
        return NULL;
    }
    a->user = (kiln__user_opt_t){true, NULL, uid};
    a->group = (kiln__user_opt_t){true, NULL, gid};
    a->has_owner = true;
    return a;
}

kiln_llb_file_t *kiln_llb_file_timestamp(kiln_llb_file_t *fa, int64_t unix_nano)
{
    kiln_llb_file_t *a = last_action(fa, "kiln_llb_file_timestamp", CREATORS);

    if (a == NULL) {
        return NULL;
    }
    a->timestamp = unix_nano;
    return a;
}

kiln_llb_file_t *kiln_llb_file_chmod(kiln_llb_file_t *fa, unsigned mode)
{
    kiln_llb_file_t *a =
        last_action(fa, "kiln_llb_file_chmod", 1u << KILN_ACT_COPY);

    if (a == NULL) {
        return NULL;
    }
    a->copy_mode = (int32_t)mode;
    return a;
}

static kiln_llb_file_t *copy_pattern(kiln_llb_file_t *fa, const char *fn,
                                     bool include, const char *pattern)
{
    kiln_llb_file_t *a = last_action(fa, fn, 1u << KILN_ACT_COPY);
    const char *p;

    if (a == NULL || !kiln__llb_str(a->b, fn, "pattern", pattern, false, &p) ||
        !kiln__llb_push(a->b, include ? &a->include : &a->exclude, (void *)p)) {
        return NULL;
    }
    return a;
}

kiln_llb_file_t *kiln_llb_file_include(kiln_llb_file_t *fa, const char *pattern)
{
    return copy_pattern(fa, "kiln_llb_file_include", true, pattern);
}

kiln_llb_file_t *kiln_llb_file_exclude(kiln_llb_file_t *fa, const char *pattern)
{
    return copy_pattern(fa, "kiln_llb_file_exclude", false, pattern);
}

kiln_llb_state_t *kiln_llb_file(kiln_llb_state_t *base, kiln_llb_file_t *fa)
{
    static const char fn[] = "kiln_llb_file";
    struct kiln__file_op *f;
    kiln__op_t *op;
    kiln_llb_t *b;

    if (base == NULL || fa == NULL) {
        kiln__llb_null(base ? base->b
                       : fa ? fa->b
                            : NULL,
                       fn, base ? "actions" : "base");
        return NULL;
    }
    b = base->b;
    if (fa->b != b) {
        kiln__llb_fail(b, KILN_EINVAL,
                       "%s: base and actions belong to different builders", fn);
        return NULL;
    }
    if (fa->kind == KILN_ACT_NONE) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: the chain has no actions", fn);
        return NULL;
    }
    op = kiln__llb_op_new(b, KILN_LLB_FILE);
    f = op ? kiln__llb_alloc(b, sizeof(*f)) : NULL;
    if (f == NULL) {
        return NULL;
    }
    f->base = base;
    f->last = fa;
    op->u.file = f;
    return kiln__llb_state_new(b, op, base);
}

/* ---- encoding ---- */

static int push_unique(kiln__enc_t *e, kiln__vec_t *out, kiln_llb_state_t *st)
{
    st = kiln__llb_resolve(st);
    if (st->op == NULL) {
        return 0;
    }
    for (size_t j = 0; j < out->n; j++) {
        const kiln_llb_state_t *o = out->v[j];
        if (o->op == st->op && o->mount == st->mount) {
            return 0;
        }
    }
    return kiln__vec_push(&e->tmp, out, st) ? 0 : kiln__enc_oom(e);
}

int kiln__llb_file_inputs(kiln__enc_t *e, kiln__op_t *op, kiln__vec_t *out)
{
    const struct kiln__file_op *f = op->u.file;
    int rc = 0;

    /* Go's allOutputs: from the last action back, its base then its copy
     * source. */
    for (kiln_llb_file_t *a = f->last; a != NULL && rc == 0; a = a->prev) {
        rc = push_unique(e, out, f->base);
        if (rc == 0 && a->kind == KILN_ACT_COPY) {
            rc = push_unique(e, out, a->src);
        }
    }
    return rc;
}
