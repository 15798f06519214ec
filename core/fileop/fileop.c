/*
 * Running a FileOp: BuildKit's FileOpSolver (solver/llbsolver/ops/file.go)
 * over layered snapshots. Each action's result is a state: a base (an op
 * input or scratch) plus the new layers written so far; a state read only
 * by the next action of a chain keeps its writer open for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileop/fileop_int.h"

typedef struct fo_state {
    int64_t base;  /* op input index, or -1 */
    char **layers; /* new layers on top of base, owned */
    size_t n_layers;
    kiln_snap_view_t *wbase; /* what the open writer writes over */
    kiln_snap_writer_t *w;   /* open writer, or NULL */
    kiln_snap_view_t *view;  /* committed view, opened on demand */
    unsigned uses;           /* reads by run actions, outputs included */
    unsigned base_uses;      /* of which: as the base of an action */
    bool reachable;
    bool visiting;
    bool done;
} fo_state_t;

typedef struct fo_run {
    const Pb__FileOp *op;
    const kiln_fileop_env_t *env;
    size_t n_in;
    size_t n_act;
    fo_state_t *st;
    int64_t *outs; /* output i: index of its action's state */
    size_t n_outs;
    kiln_snap_view_t *scratch;
    char **made; /* every directory handed out */
    size_t n_made;
    size_t cap_made;
    kiln_error_t *err;
} fo_run_t;

static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

static char *xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* The named-user inputs of an action's owner option (up to two). */
static size_t owner_inputs(const Pb__FileAction *a, int64_t idx[2])
{
    const Pb__ChownOpt *o = NULL;
    size_t n = 0;

    switch (a->action_case) {
    case PB__FILE_ACTION__ACTION_COPY:
        o = a->copy->owner;
        break;
    case PB__FILE_ACTION__ACTION_MKFILE:
        o = a->mkfile->owner;
        break;
    case PB__FILE_ACTION__ACTION_MKDIR:
        o = a->mkdir->owner;
        break;
    case PB__FILE_ACTION__ACTION_SYMLINK:
        o = a->symlink->owner;
        break;
    default:
        break;
    }
    if (o != NULL && o->user != NULL &&
        o->user->user_case == PB__USER_OPT__USER_BY_NAME) {
        idx[n++] = o->user->byname->input;
    }
    if (o != NULL && o->group != NULL &&
        o->group->user_case == PB__USER_OPT__USER_BY_NAME) {
        idx[n++] = o->group->byname->input;
    }
    return n;
}

static const Pb__ChownOpt *owner_of(const Pb__FileAction *a)
{
    switch (a->action_case) {
    case PB__FILE_ACTION__ACTION_COPY:
        return a->copy->owner;
    case PB__FILE_ACTION__ACTION_MKFILE:
        return a->mkfile->owner;
    case PB__FILE_ACTION__ACTION_MKDIR:
        return a->mkdir->owner;
    case PB__FILE_ACTION__ACTION_SYMLINK:
        return a->symlink->owner;
    default:
        return NULL;
    }
}

/* Index checks (FileOpSolver.Solve) and the outputs. */
static int check_action(fo_run_t *r, size_t j)
{
    const Pb__FileAction *a = r->op->actions[j];
    int64_t lim = (int64_t)(r->n_in + r->n_act), idx[2];
    size_t n = owner_inputs(a, idx);

    if (a->input < -1 || a->input >= lim) {
        return kiln__fail(r->err, KILN_EINVAL,
                          "action %zu: invalid input index %lld, %lld "
                          "provided",
                          j, (long long)a->input, (long long)lim);
    }
    if (a->secondaryinput < -1 || a->secondaryinput >= lim) {
        return kiln__fail(r->err, KILN_EINVAL,
                          "action %zu: invalid secondary input index %lld", j,
                          (long long)a->secondaryinput);
    }
    for (size_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= lim) {
            return kiln__fail(r->err, KILN_EINVAL,
                              "action %zu: invalid user index %lld", j,
                              (long long)idx[i]);
        }
    }
    if (a->action_case == PB__FILE_ACTION__ACTION__NOT_SET) {
        return kiln__fail(r->err, KILN_EINVAL,
                          "action %zu: invalid action type", j);
    }
    return 0;
}

static int find_outputs(fo_run_t *r)
{
    size_t top = 0;

    for (size_t j = 0; j < r->n_act; j++) {
        int64_t o = r->op->actions[j]->output;

        if (o == -1) {
            continue;
        }
        if (o < 0) {
            return kiln__fail(r->err, KILN_EINVAL,
                              "action %zu: invalid output %lld", j,
                              (long long)o);
        }
        if ((size_t)o < r->n_act && r->outs[o] != -1) {
            return kiln__fail(r->err, KILN_EINVAL, "duplicate output %lld",
                              (long long)o);
        }
        if ((size_t)o < r->n_act) {
            r->outs[o] = (int64_t)(r->n_in + j);
        }
        top = (size_t)o + 1 > top ? (size_t)o + 1 : top;
    }
    if (top == 0) {
        return kiln__fail(r->err, KILN_EINVAL, "no outputs specified");
    }
    /* Outputs are distinct, so one past the actions leaves a gap below. */
    for (size_t o = 0; o < top && o < r->n_act; o++) {
        if (r->outs[o] == -1) {
            return kiln__fail(r->err, KILN_EINVAL, "missing output index %zu",
                              o);
        }
    }
    r->n_outs = top;
    return 0;
}

/* Marks what output idx needs (FileOpSolver.validate: loops are errors) and
 * counts each state's readers. */
static int mark(fo_run_t *r, int64_t idx)
{
    fo_state_t *s;
    const Pb__FileAction *a;
    int64_t own[2];
    size_t n;
    int rc;

    if (idx < (int64_t)r->n_in) {
        return 0;
    }
    s = &r->st[idx - (int64_t)r->n_in];
    if (s->visiting) {
        return kiln__fail(r->err, KILN_EINVAL, "loop from index %lld",
                          (long long)idx);
    }
    if (s->reachable) {
        return 0;
    }
    s->visiting = true;
    a = r->op->actions[idx - (int64_t)r->n_in];
    n = owner_inputs(a, own);
    rc = mark(r, a->input);
    if (rc == 0) {
        rc = mark(r, a->secondaryinput);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = mark(r, own[i]);
    }
    s->visiting = false;
    s->reachable = true;
    return rc;
}

static void count_use(fo_run_t *r, int64_t idx, bool as_base)
{
    if (idx >= (int64_t)r->n_in) {
        fo_state_t *s = &r->st[idx - (int64_t)r->n_in];
        s->uses++;
        s->base_uses += as_base;
    }
}

static void count_uses(fo_run_t *r)
{
    int64_t own[2];

    for (size_t j = 0; j < r->n_act; j++) {
        const Pb__FileAction *a = r->op->actions[j];
        size_t n;

        if (!r->st[j].reachable) {
            continue;
        }
        count_use(r, a->input, true);
        count_use(r, a->secondaryinput, false);
        n = owner_inputs(a, own);
        for (size_t i = 0; i < n; i++) {
            count_use(r, own[i], false);
        }
    }
    for (size_t o = 0; o < r->n_outs; o++) {
        count_use(r, r->outs[o], false);
    }
}

/* The layer stack of index idx: an input's layers, or a state's base
 * layers plus its own. */
static int stack_of(fo_run_t *r, int64_t idx, const char ***out, size_t *n)
{
    const kiln_snap_view_t *bv = NULL;
    const fo_state_t *s = NULL;
    size_t nb = 0, k = 0;
    const char **v;

    if (idx >= (int64_t)r->n_in) {
        s = &r->st[idx - (int64_t)r->n_in];
        idx = s->base;
    }
    if (idx >= 0) {
        bv = r->env->inputs[idx];
        nb = kiln__snap_view_depth(bv);
    }
    v = malloc((nb + (s ? s->n_layers : 0) + 1) * sizeof(*v));
    if (v == NULL) {
        return oom(r->err);
    }
    for (size_t i = 0; i < nb; i++) {
        v[k++] = kiln__snap_view_layer(bv, i);
    }
    for (size_t i = 0; s != NULL && i < s->n_layers; i++) {
        v[k++] = s->layers[i];
    }
    *out = v;
    *n = k;
    return 0;
}

static int open_stack(fo_run_t *r, int64_t idx, kiln_snap_view_t **out)
{
    const char **v = NULL;
    size_t n = 0;
    int rc = stack_of(r, idx, &v, &n);

    if (rc == 0) {
        rc = kiln__snap_view_open(v, n, r->err, out);
        free(v);
    }
    return rc;
}

/* A read-only view of index idx (scratch, an input or a finished state). */
static int view_of(fo_run_t *r, int64_t idx, const kiln_snap_view_t **out)
{
    fo_state_t *s;
    int rc = 0;

    if (idx < 0) {
        if (r->scratch == NULL) {
            rc = kiln__snap_view_open(NULL, 0, r->err, &r->scratch);
        }
        *out = r->scratch;
        return rc;
    }
    if (idx < (int64_t)r->n_in) {
        *out = r->env->inputs[idx];
        return 0;
    }
    s = &r->st[idx - (int64_t)r->n_in];
    if (s->view == NULL) {
        rc = open_stack(r, idx, &s->view);
    }
    *out = s->view;
    return rc;
}

/* Ends a state's layer: flushed, and dropped if nothing was written. */
static int finish(fo_run_t *r, fo_state_t *s)
{
    const char *dir = s->layers[s->n_layers - 1];
    uint64_t size = 0;
    int rc = kiln__snap_writer_finish(s->w, &size, r->err);

    if (rc == 0 && kiln__fo_dir_is_empty(dir) &&
        kiln__fo_same_root(s->wbase, dir)) {
        free(s->layers[--s->n_layers]);
    }
    kiln__snap_writer_free(s->w);
    kiln__snap_view_free(s->wbase);
    s->w = NULL;
    s->wbase = NULL;
    return rc;
}

/* A new layer directory from the caller, remembered. */
static int new_dir(fo_run_t *r, char **out)
{
    char path[4096];
    int rc;

    if (r->n_made == r->cap_made) {
        size_t cap = r->cap_made ? r->cap_made * 2 : 8;
        char **v = realloc(r->made, cap * sizeof(*v));
        if (v == NULL) {
            return oom(r->err);
        }
        r->made = v;
        r->cap_made = cap;
    }
    rc = r->env->new_layer(r->env->ud, path, sizeof(path), r->err);
    if (rc < 0) {
        return rc;
    }
    if ((r->made[r->n_made] = strdup(path)) == NULL ||
        (*out = strdup(path)) == NULL) {
        free(r->made[r->n_made]);
        return oom(r->err);
    }
    r->n_made++;
    return 0;
}

/* Starts a state on base `idx`: continues the base's open writer when this
 * action is its only reader, else a new layer over the base's stack. */
static int start_state(fo_run_t *r, fo_state_t *s, int64_t idx)
{
    fo_state_t *b = NULL;
    char *dir = NULL;
    char **layers;
    int rc;

    if (idx >= (int64_t)r->n_in) {
        b = &r->st[idx - (int64_t)r->n_in];
    }
    if (b != NULL && b->w != NULL) {
        /* Move the open layer: nothing else reads b's state. */
        s->base = b->base;
        s->layers = b->layers;
        s->n_layers = b->n_layers;
        s->wbase = b->wbase;
        s->w = b->w;
        b->layers = NULL;
        b->n_layers = 0;
        b->wbase = NULL;
        b->w = NULL;
        return 0;
    }
    s->base = b != NULL ? b->base : idx;
    layers = calloc((b ? b->n_layers : 0) + 1, sizeof(*layers));
    if (layers == NULL) {
        return oom(r->err);
    }
    s->layers = layers;
    for (size_t i = 0; b != NULL && i < b->n_layers; i++) {
        if ((s->layers[s->n_layers++] = xstrdup(b->layers[i])) == NULL) {
            return oom(r->err);
        }
    }
    rc = open_stack(r, idx < 0 ? -1 : idx, &s->wbase);
    if (rc == 0) {
        rc = new_dir(r, &dir);
    }
    if (rc == 0) {
        s->layers[s->n_layers++] = dir;
        rc = kiln__snap_writer_new(s->wbase, dir, r->err, &s->w);
    }
    return rc;
}

/* "mkdir /x", "copy /a to /b", ... for messages. */
static void describe(const Pb__FileAction *a, char *buf, size_t size)
{
    switch (a->action_case) {
    case PB__FILE_ACTION__ACTION_COPY:
        snprintf(buf, size, "copy %s to %s", a->copy->src, a->copy->dest);
        break;
    case PB__FILE_ACTION__ACTION_MKFILE:
        snprintf(buf, size, "mkfile %s", a->mkfile->path);
        break;
    case PB__FILE_ACTION__ACTION_MKDIR:
        snprintf(buf, size, "mkdir %s", a->mkdir->path);
        break;
    case PB__FILE_ACTION__ACTION_RM:
        snprintf(buf, size, "rm %s", a->rm->path);
        break;
    case PB__FILE_ACTION__ACTION_SYMLINK:
        snprintf(buf, size, "symlink %s -> %s", a->symlink->newpath,
                 a->symlink->oldpath);
        break;
    default:
        snprintf(buf, size, "action");
        break;
    }
}

/* Resolves the action's ChownOpt with the views its names refer to. */
static int read_owner(fo_run_t *r, const Pb__FileAction *a,
                      kiln__fo_owner_t *owner)
{
    const Pb__ChownOpt *o = owner_of(a);
    const kiln_snap_view_t *uv = NULL, *gv = NULL;
    int rc = 0;

    if (o != NULL && o->user != NULL &&
        o->user->user_case == PB__USER_OPT__USER_BY_NAME) {
        rc = view_of(r, o->user->byname->input, &uv);
    }
    if (rc == 0 && o != NULL && o->group != NULL &&
        o->group->user_case == PB__USER_OPT__USER_BY_NAME) {
        rc = view_of(r, o->group->byname->input, &gv);
    }
    if (rc == 0) {
        rc = kiln__fo_read_owner(o, uv, gv, owner, r->err);
    }
    return rc;
}

static int dispatch(kiln__fo_ctx_t *c, const Pb__FileAction *a)
{
    switch (a->action_case) {
    case PB__FILE_ACTION__ACTION_COPY:
        return kiln__fo_copy(c, a->copy);
    case PB__FILE_ACTION__ACTION_MKFILE:
        return kiln__fo_mkfile(c, a->mkfile);
    case PB__FILE_ACTION__ACTION_MKDIR:
        return kiln__fo_mkdir(c, a->mkdir);
    case PB__FILE_ACTION__ACTION_RM:
        return kiln__fo_rm(c, a->rm);
    case PB__FILE_ACTION__ACTION_SYMLINK:
        return kiln__fo_symlink(c, a->symlink);
    default:
        return kiln__fail(c->err, KILN_EINVAL, "invalid action type");
    }
}

/* Runs action j over its state's writer. */
static int run_action(fo_run_t *r, size_t j)
{
    const Pb__FileAction *a = r->op->actions[j];
    fo_state_t *s = &r->st[j];
    kiln__fo_ctx_t c = {NULL, NULL, {false, 0, 0}, r->env, r->err};
    char what[512];
    int rc = start_state(r, s, a->input);

    if (rc == 0 && a->action_case == PB__FILE_ACTION__ACTION_COPY) {
        rc = view_of(r, a->secondaryinput, &c.src);
    }
    if (rc == 0) {
        rc = read_owner(r, a, &c.owner);
    }
    if (rc == 0 && !kiln__fo_cancelled(&c)) {
        c.w = s->w;
        rc = dispatch(&c, a);
    } else if (rc == 0) {
        rc = KILN_ECANCELED;
    }
    /* A state only the next action of its chain reads keeps its writer. */
    if (rc == 0 && !(s->uses == 1 && s->base_uses == 1)) {
        rc = finish(r, s);
    }
    s->done = true;
    if (rc < 0 && rc != KILN_ECANCELED) {
        describe(a, what, sizeof(what));
        kiln__fail_prefix(r->err, rc, "action %zu: %s", j, what);
    }
    return rc;
}

/* Runs what index idx depends on, then its action. */
static int eval(fo_run_t *r, int64_t idx)
{
    const Pb__FileAction *a;
    int64_t own[2];
    size_t j, n;
    int rc;

    if (idx < (int64_t)r->n_in) {
        return 0;
    }
    j = (size_t)(idx - (int64_t)r->n_in);
    if (r->st[j].done) {
        return 0;
    }
    a = r->op->actions[j];
    n = owner_inputs(a, own);
    rc = eval(r, a->input);
    if (rc == 0) {
        rc = eval(r, a->secondaryinput);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = eval(r, own[i]);
    }
    return rc == 0 ? run_action(r, j) : rc;
}

static void run_free(fo_run_t *r)
{
    for (size_t j = 0; r->st != NULL && j < r->n_act; j++) {
        fo_state_t *s = &r->st[j];
        if (s->w != NULL) {
            kiln__snap_writer_free(s->w);
        }
        kiln__snap_view_free(s->wbase);
        kiln__snap_view_free(s->view);
        kiln__fo_strv_free(s->layers, s->n_layers);
    }
    kiln__snap_view_free(r->scratch);
    kiln__fo_strv_free(r->made, r->n_made);
    free(r->st);
    free(r->outs);
}

void kiln__fileop_result_free(kiln_fileop_result_t *res)
{
    if (res == NULL) {
        return;
    }
    for (size_t o = 0; o < res->n_outputs; o++) {
        for (size_t i = 0; i < res->outputs[o].n_layers; i++) {
            free(res->outputs[o].layers[i].dir);
        }
        free(res->outputs[o].layers);
    }
    free(res->outputs);
    kiln__fo_strv_free(res->discard, res->n_discard);
    free(res);
}

static bool in_outputs(const kiln_fileop_result_t *res, const char *dir)
{
    for (size_t o = 0; o < res->n_outputs; o++) {
        for (size_t i = 0; i < res->outputs[o].n_layers; i++) {
            if (strcmp(res->outputs[o].layers[i].dir, dir) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* Copies the outputs' states into a result; the rest is to discard. */
static int make_result(fo_run_t *r, kiln_fileop_result_t **out)
{
    kiln_fileop_result_t *res = calloc(1, sizeof(*res));
    int rc = res != NULL ? 0 : oom(r->err);

    if (rc == 0) {
        res->outputs = calloc(r->n_outs, sizeof(*res->outputs));
        res->discard = calloc(r->n_made + 1, sizeof(char *));
        rc = (res->outputs && res->discard) ? 0 : oom(r->err);
    }
    for (size_t o = 0; rc == 0 && o < r->n_outs; o++) {
        const fo_state_t *s = &r->st[r->outs[o] - (int64_t)r->n_in];
        kiln_fileop_output_t *op = &res->outputs[o];

        res->n_outputs++;
        op->base = s->base;
        op->layers = calloc(s->n_layers + 1, sizeof(*op->layers));
        rc = op->layers != NULL ? 0 : oom(r->err);
        for (size_t i = 0; rc == 0 && i < s->n_layers; i++) {
            op->layers[i].created = true;
            op->layers[i].dir = strdup(s->layers[i]);
            rc = op->layers[i].dir != NULL ? 0 : oom(r->err);
            op->n_layers += rc == 0;
        }
    }
    for (size_t i = 0; rc == 0 && i < r->n_made; i++) {
        if (!in_outputs(res, r->made[i])) {
            res->discard[res->n_discard++] = r->made[i];
            r->made[i] = NULL;
        }
    }
    if (rc < 0) {
        kiln__fileop_result_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

static int run_init(fo_run_t *r, const Pb__FileOp *op,
                    const kiln_fileop_env_t *env, kiln_error_t *err)
{
    memset(r, 0, sizeof(*r));
    r->op = op;
    r->env = env;
    r->n_in = env->n_inputs;
    r->n_act = op->n_actions;
    r->err = err;
    if (r->n_act == 0) {
        return kiln__fail(err, KILN_EINVAL, "file op without actions");
    }
    r->st = calloc(r->n_act, sizeof(*r->st));
    r->outs = malloc(r->n_act * sizeof(*r->outs));
    if (r->st == NULL || r->outs == NULL) {
        return oom(err);
    }
    for (size_t j = 0; j < r->n_act; j++) {
        r->outs[j] = -1;
        r->st[j].base = -1;
    }
    return 0;
}

/* True if every action only refers to inputs and earlier actions (what the
 * Go client writes): then no loop is possible and one pass in each
 * direction replaces the recursive walks. */
static bool backward_only(const fo_run_t *r)
{
    int64_t own[2];

    for (size_t j = 0; j < r->n_act; j++) {
        const Pb__FileAction *a = r->op->actions[j];
        int64_t self = (int64_t)(r->n_in + j);
        size_t n = owner_inputs(a, own);

        if (a->input >= self || a->secondaryinput >= self) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            if (own[i] >= self) {
                return false;
            }
        }
    }
    return true;
}

static void set_reachable(fo_run_t *r, int64_t idx)
{
    if (idx >= (int64_t)r->n_in) {
        r->st[idx - (int64_t)r->n_in].reachable = true;
    }
}

/* Marks what action j reads (one level: the linear pass). */
static void mark_deps(fo_run_t *r, size_t j)
{
    const Pb__FileAction *a = r->op->actions[j];
    int64_t own[2];
    size_t n = owner_inputs(a, own);

    set_reachable(r, a->input);
    set_reachable(r, a->secondaryinput);
    for (size_t i = 0; i < n; i++) {
        set_reachable(r, own[i]);
    }
}

/* Marks what the outputs need; then runs it, dependencies first. */
static int plan_and_run(fo_run_t *r)
{
    bool linear = backward_only(r);
    int rc = 0;

    for (size_t o = 0; linear && o < r->n_outs; o++) {
        r->st[r->outs[o] - (int64_t)r->n_in].reachable = true;
    }
    for (size_t j = r->n_act; linear && j > 0; j--) {
        if (r->st[j - 1].reachable) {
            mark_deps(r, j - 1);
        }
    }
    for (size_t o = 0; !linear && rc == 0 && o < r->n_outs; o++) {
        rc = mark(r, r->outs[o]);
    }
    if (rc == 0) {
        count_uses(r);
    }
    for (size_t j = 0; linear && rc == 0 && j < r->n_act; j++) {
        if (r->st[j].reachable) {
            rc = eval(r, (int64_t)(r->n_in + j));
        }
    }
    for (size_t o = 0; rc == 0 && o < r->n_outs; o++) {
        rc = eval(r, r->outs[o]);
    }
    return rc;
}

int kiln__fileop_run(const Pb__FileOp *op, const kiln_fileop_env_t *env,
                     kiln_error_t *err, kiln_fileop_result_t **out)
{
    fo_run_t r;
    int rc = run_init(&r, op, env, err);

    *out = NULL;
    for (size_t j = 0; rc == 0 && j < r.n_act; j++) {
        rc = check_action(&r, j);
    }
    if (rc == 0) {
        rc = find_outputs(&r);
    }
    if (rc == 0) {
        rc = plan_and_run(&r);
    }
    if (rc == 0) {
        rc = make_result(&r, out);
    }
    run_free(&r);
    return rc;
}
