/*
 * Encoding of file ops, following BuildKit's Go FileOp.Marshal
 * (client/llb/fileop.go).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/builder.h"

static Pb__UserOpt *user_msg(kiln__enc_t *e, const kiln__user_opt_t *u,
                             int64_t base)
{
    Pb__UserOpt *uo = KILN_ENC_NEW(e, Pb__UserOpt, PB__USER_OPT__INIT);

    if (uo == NULL) {
        return NULL;
    }
    if (u->name != NULL) {
        /* Resolved in the base's /etc/passwd: input is the base (-1 for
         * scratch, as Go writes it). */
        Pb__NamedUserOpt *n =
            KILN_ENC_NEW(e, Pb__NamedUserOpt, PB__NAMED_USER_OPT__INIT);
        if (n == NULL) {
            return NULL;
        }
        n->name = (char *)u->name;
        n->input = base;
        uo->user_case = PB__USER_OPT__USER_BY_NAME;
        uo->byname = n;
    } else {
        uo->user_case = PB__USER_OPT__USER_BY_ID;
        uo->byid = u->id;
    }
    return uo;
}

/* The ChownOpt of an action, NULL in *out if it has no owner. */
static int owner_msg(kiln__enc_t *e, const kiln_llb_file_t *a, int64_t base,
                     Pb__ChownOpt **out)
{
    Pb__ChownOpt *c;

    *out = NULL;
    if (!a->has_owner) {
        return 0;
    }
    c = KILN_ENC_NEW(e, Pb__ChownOpt, PB__CHOWN_OPT__INIT);
    if (c == NULL ||
        (a->user.set && (c->user = user_msg(e, &a->user, base)) == NULL) ||
        (a->group.set && (c->group = user_msg(e, &a->group, base)) == NULL)) {
        return kiln__enc_oom(e);
    }
    *out = c;
    return 0;
}

static char *norm(kiln__enc_t *e, const char *p, bool keep_slash)
{
    return kiln__llb_normalize_path(&e->tmp, p, keep_slash);
}

static int mkdir_body(kiln__enc_t *e, const kiln_llb_file_t *a, int64_t base,
                      Pb__FileAction *fa)
{
    Pb__FileActionMkDir *m =
        KILN_ENC_NEW(e, Pb__FileActionMkDir, PB__FILE_ACTION_MK_DIR__INIT);

    if (m == NULL || (m->path = norm(e, a->path, false)) == NULL) {
        return kiln__enc_oom(e);
    }
    m->mode = (int32_t)a->mode;
    m->makeparents = (a->flags & KILN_LLB_MKDIR_PARENTS) != 0;
    m->timestamp = a->timestamp;
    fa->action_case = PB__FILE_ACTION__ACTION_MKDIR;
    fa->mkdir = m;
    return owner_msg(e, a, base, &m->owner);
}

static int mkfile_body(kiln__enc_t *e, const kiln_llb_file_t *a, int64_t base,
                       Pb__FileAction *fa)
{
    Pb__FileActionMkFile *m =
        KILN_ENC_NEW(e, Pb__FileActionMkFile, PB__FILE_ACTION_MK_FILE__INIT);

    if (m == NULL || (m->path = norm(e, a->path, false)) == NULL) {
        return kiln__enc_oom(e);
    }
    m->mode = (int32_t)a->mode;
    m->data.data = (uint8_t *)a->data;
    m->data.len = a->len;
    m->timestamp = a->timestamp;
    fa->action_case = PB__FILE_ACTION__ACTION_MKFILE;
    fa->mkfile = m;
    return owner_msg(e, a, base, &m->owner);
}

static int rm_body(kiln__enc_t *e, const kiln_llb_file_t *a, Pb__FileAction *fa)
{
    Pb__FileActionRm *m =
        KILN_ENC_NEW(e, Pb__FileActionRm, PB__FILE_ACTION_RM__INIT);

    if (m == NULL || (m->path = norm(e, a->path, false)) == NULL) {
        return kiln__enc_oom(e);
    }
    m->allownotfound = (a->flags & KILN_LLB_RM_ALLOW_NOT_FOUND) != 0;
    m->allowwildcard = (a->flags & KILN_LLB_RM_ALLOW_WILDCARD) != 0;
    fa->action_case = PB__FILE_ACTION__ACTION_RM;
    fa->rm = m;
    return 0;
}

static int copy_body(kiln__enc_t *e, const kiln_llb_file_t *a, int64_t base,
                     Pb__FileAction *fa)
{
    Pb__FileActionCopy *c =
        KILN_ENC_NEW(e, Pb__FileActionCopy, PB__FILE_ACTION_COPY__INIT);
    char *src;

    /* The source path is cleaned and made absolute; the destination keeps
     * a trailing slash. */
    if (c == NULL || (src = kiln__path_clean(&e->tmp, a->path)) == NULL ||
        (c->src = kiln__path_join(&e->tmp, "/", src)) == NULL ||
        (c->dest = norm(e, a->path2, true)) == NULL) {
        return kiln__enc_oom(e);
    }
    c->mode = a->copy_mode;
    c->followsymlink = (a->flags & KILN_LLB_COPY_FOLLOW_SYMLINKS) != 0;
    c->dircopycontents = (a->flags & KILN_LLB_COPY_DIR_CONTENTS_ONLY) != 0;
    c->attemptunpackdockercompatibility =
        (a->flags & KILN_LLB_COPY_ATTEMPT_UNPACK) != 0;
    c->createdestpath = (a->flags & KILN_LLB_COPY_CREATE_DEST_PATH) != 0;
    c->allowwildcard = (a->flags & KILN_LLB_COPY_ALLOW_WILDCARD) != 0;
    c->allowemptywildcard =
        (a->flags & KILN_LLB_COPY_ALLOW_EMPTY_WILDCARD) != 0;
    c->alwaysreplaceexistingdestpaths =
        (a->flags & KILN_LLB_COPY_ALWAYS_REPLACE_EXISTING) != 0;
    c->timestamp = a->timestamp;
    c->include_patterns = (char **)a->include.v;
    c->n_include_patterns = a->include.n;
    c->exclude_patterns = (char **)a->exclude.v;
    c->n_exclude_patterns = a->exclude.n;
    fa->action_case = PB__FILE_ACTION__ACTION_COPY;
    fa->copy = c;
    return owner_msg(e, a, base, &c->owner);
}

static int symlink_body(kiln__enc_t *e, const kiln_llb_file_t *a, int64_t base,
                        Pb__FileAction *fa)
{
    Pb__FileActionSymlink *s =
        KILN_ENC_NEW(e, Pb__FileActionSymlink, PB__FILE_ACTION_SYMLINK__INIT);

    if (s == NULL) {
        return kiln__enc_oom(e);
    }
    s->oldpath = (char *)a->path;
    s->newpath = (char *)a->path2;
    s->timestamp = a->timestamp;
    fa->action_case = PB__FILE_ACTION__ACTION_SYMLINK;
    fa->symlink = s;
    return owner_msg(e, a, base, &s->owner);
}

static int action_body(kiln__enc_t *e, const kiln_llb_file_t *a, int64_t base,
                       Pb__FileAction *fa)
{
    switch (a->kind) {
    case KILN_ACT_MKDIR:
        return mkdir_body(e, a, base, fa);
    case KILN_ACT_MKFILE:
        return mkfile_body(e, a, base, fa);
    case KILN_ACT_RM:
        return rm_body(e, a, fa);
    case KILN_ACT_COPY:
        return copy_body(e, a, base, fa);
    default:
        return symlink_body(e, a, base, fa);
    }
}

/* Op inputs in Go's order: action by action, the base then the copy
 * source. `second[j]` gets action j's secondary input (-1 if none). */
static int collect_inputs(kiln__enc_t *e, kiln_llb_state_t *base,
                          kiln_llb_file_t *const *acts, size_t n,
                          kiln__vec_t *inputs, int64_t *base_idx,
                          int64_t *second)
{
    kiln_llb_state_t *b = kiln__llb_resolve(base);

    *base_idx = -1;
    for (size_t j = 0; j < n; j++) {
        second[j] = -1;
        if (b->op != NULL &&
            (*base_idx = kiln__llb_add_input(e, inputs, b)) < 0) {
            return KILN_ENOMEM;
        }
        if (acts[j]->kind == KILN_ACT_COPY) {
            kiln_llb_state_t *src = kiln__llb_resolve(acts[j]->src);
            if (src->op != NULL &&
                (second[j] = kiln__llb_add_input(e, inputs, src)) < 0) {
                return KILN_ENOMEM;
            }
        }
    }
    return 0;
}

/* The last action of the chain, first to last, into `acts`. */
static kiln_llb_file_t **chain_of(kiln__enc_t *e, kiln_llb_file_t *last,
                                  size_t *n)
{
    kiln_llb_file_t **v;
    size_t count = 0;

    for (kiln_llb_file_t *a = last; a != NULL; a = a->prev) {
        count++;
    }
    v = kiln__enc_alloc(e, (count + 1) * sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    *n = count;
    for (kiln_llb_file_t *a = last; a != NULL; a = a->prev) {
        v[--count] = a;
    }
    return v;
}

int kiln__llb_encode_file(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                          kiln__caps_t *caps)
{
    const struct kiln__file_op *f = op->u.file;
    Pb__FileOp *fo = KILN_ENC_NEW(e, Pb__FileOp, PB__FILE_OP__INIT);
    kiln__vec_t inputs = {0};
    kiln_llb_file_t **acts;
    int64_t base, *second;
    size_t n = 0;
    int rc;

    if (fo == NULL || (acts = chain_of(e, f->last, &n)) == NULL ||
        (second = kiln__enc_alloc(e, (n + 1) * sizeof(*second))) == NULL ||
        (fo->actions = kiln__enc_alloc(e, (n + 1) * sizeof(*fo->actions))) ==
            NULL) {
        return kiln__enc_oom(e);
    }
    rc = collect_inputs(e, f->base, acts, n, &inputs, &base, second);
    for (size_t j = 0; j < n && rc == 0; j++) {
        Pb__FileAction *fa =
            KILN_ENC_NEW(e, Pb__FileAction, PB__FILE_ACTION__INIT);
        if (fa == NULL) {
            return kiln__enc_oom(e);
        }
        /* Action j > 0 works on the result of action j - 1. */
        fa->input = j == 0 ? base : (int64_t)(inputs.n + j - 1);
        fa->secondaryinput = second[j];
        fa->output = j + 1 == n ? 0 : -1;
        rc = action_body(e, acts[j], base, fa);
        fo->actions[fo->n_actions++] = fa;
    }
    if (rc < 0) {
        return rc;
    }
    pop->inputs = (Pb__Input **)inputs.v;
    pop->n_inputs = inputs.n;
    /* Go's FileOp dropped its platform in v0.12; v0.11 wrote the
     * marshal-wide default, whatever the base's. */
    kiln__caps_add(caps, "file.base");
    rc = kiln__llb_constraints(e, pop, op,
                               e->b->legacy ? &e->b->platform : NULL);
    pop->op_case = PB__OP__OP_FILE;
    pop->file = fo;
    return rc;
}
