/*
 * The file-op cache map (solver/llbsolver/ops/file.go CacheMap): each
 * action's own message as JSON, base64'd into {"Type":"buildkit.file.v0",
 * "Actions":[...],"indexes":[...]}, with copy sources from op inputs
 * reduced to path.Base. Inputs read by copies and by chown-by-name get a
 * selector over the paths read and a content key, unless the same input is
 * also an action's base.
 */
#include <stdlib.h>
#include <string.h>

#include "solver/cachemap_int.h"
#include "solver/pbjson.h"
#include "util/gopath.h"

/* Scratch state while walking the actions. */
typedef struct file_walk {
    kiln__cachemap_t *cm;
    enum kiln__cm_compat compat;
    size_t n_inputs;
    size_t n_index;  /* n_inputs + number of actions */
    bool *invalid;   /* [n_index]: the base of some action */
    bool *owner_ref; /* [n_index]: an owner reads an action result */
    bool out_of_range;
    int64_t bad_index;
} file_walk_t;

/* containsWildcards on a non-Windows daemon. */
static bool contains_wildcards(const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') {
            if (*++s == 0) {
                break;
            }
        } else if (*s == '*' || *s == '?' || *s == '[') {
            return true;
        }
    }
    return false;
}

/* addSelector: raw selectors gather in the dep's content_sels and are
 * turned into the selector digest and the deduplicated list at the end. */
static int add_selector(file_walk_t *fw, int64_t idx,
                        const kiln__cm_selector_t *s)
{
    if (idx >= 0 && (uint64_t)idx < fw->n_inputs) {
        kiln__cm_selector_t c = *s;
        c.path = strdup(s->path);
        return kiln__cm_dep_push_sel(&fw->cm->deps[idx], &c);
    }
    if (idx >= 0 && (uint64_t)idx < fw->n_index) {
        fw->owner_ref[idx] = true; /* fine only if it is an action base */
    } else if (!fw->out_of_range) {
        fw->out_of_range = true;
        fw->bad_index = idx;
    }
    return 0;
}

/* processOwner: chown by name reads /etc/passwd and /etc/group of the
 * named input. A negative index stops it (BuildKit ignores the error). */
static int process_owner(file_walk_t *fw, const Pb__ChownOpt *o)
{
    const Pb__UserOpt *u[2];
    static const char *const files[2] = {"/etc/passwd", "/etc/group"};

    if (o == NULL) {
        return 0;
    }
    u[0] = o->user;
    u[1] = o->group;
    for (int k = 0; k < 2; k++) {
        kiln__cm_selector_t s = {.path = (char *)files[k],
                                 .follow_links = true};
        int rc;

        if (u[k] == NULL || u[k]->user_case != PB__USER_OPT__USER_BY_NAME ||
            u[k]->byname == NULL) {
            continue;
        }
        if (u[k]->byname->input < 0) {
            return 0;
        }
        rc = add_selector(fw, u[k]->byname->input, &s);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static void mark_invalid(file_walk_t *fw, int64_t idx)
{
    if (idx >= 0 && (uint64_t)idx < fw->n_index) {
        fw->invalid[idx] = true;
    }
}

/* The copy action: selector over src, then src reduced to its base. */
static int copy_json(file_walk_t *fw, const Pb__FileAction *a,
                     kiln__gojson_t *w)
{
    Pb__FileActionCopy c = *a->copy;
    char *base = NULL;
    int rc = process_owner(fw, c.owner);

    if (rc == 0 && a->secondaryinput != -1 &&
        a->secondaryinput < (int64_t)fw->n_inputs) {
        kiln__cm_selector_t s = {
            .path = c.src,
            .wildcard = c.allowwildcard && contains_wildcards(c.src),
            .follow_links = c.followsymlink,
            .n_include = c.n_include_patterns,
            .include = c.include_patterns,
            .n_exclude = c.n_exclude_patterns,
            .exclude = c.exclude_patterns,
            .n_required = c.n_required_paths,
            .required = c.required_paths,
        };
        rc = add_selector(fw, a->secondaryinput, &s);
        base = kiln__gopath_base(c.src);
        if (rc == 0 && base == NULL) {
            rc = KILN_ENOMEM;
        }
        c.src = base;
    }
    if (rc == 0) {
        rc = kiln__pbjson_write(w, &c.base, fw->compat != KILN_CM_CURRENT);
    }
    free(base);
    return rc;
}

/* One action's message as JSON into `out`. */
static int action_json(file_walk_t *fw, const Pb__FileAction *a,
                       kiln__buf_t *out)
{
    bool legacy = fw->compat != KILN_CM_CURRENT;
    kiln__gojson_t w;
    int rc;

    kiln__gojson_init(&w, out, kiln__cm_json_flags(fw->compat));
    mark_invalid(fw, a->input);
    switch (a->action_case) {
    case PB__FILE_ACTION__ACTION_MKDIR:
        rc = process_owner(fw, a->mkdir->owner);
        if (rc == 0) {
            rc = kiln__pbjson_write(&w, &a->mkdir->base, legacy);
        }
        break;
    case PB__FILE_ACTION__ACTION_MKFILE:
        rc = process_owner(fw, a->mkfile->owner);
        if (rc == 0) {
            rc = kiln__pbjson_write(&w, &a->mkfile->base, legacy);
        }
        break;
    case PB__FILE_ACTION__ACTION_SYMLINK: /* no processOwner in BuildKit */
        rc = kiln__pbjson_write(&w, &a->symlink->base, legacy);
        break;
    case PB__FILE_ACTION__ACTION_RM:
        rc = kiln__pbjson_write(&w, &a->rm->base, legacy);
        break;
    case PB__FILE_ACTION__ACTION_COPY:
        rc = copy_json(fw, a, &w);
        break;
    default:
        rc = KILN_EINVAL;
    }
    if (rc == 0 && !kiln__gojson_ok(&w)) {
        rc = kiln__buf_ok(out) ? KILN_EINVAL : KILN_ENOMEM;
    }
    return rc;
}

/*
 * isDefaultIndexes: the chain Go clients build for a plain sequence of
 * actions. Note BuildKit compares the base of action i with
 * len(actions) + i - 1 (not len(inputs) + i - 1), kept as is.
 */
static bool default_indexes(const Pb__FileOp *f)
{
    int64_t n = (int64_t)f->n_actions;

    if (n == 0) {
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        const Pb__FileAction *a = f->actions[i];

        if ((i == 0 && a->input != 0) || (i != 0 && a->input != n + i - 1)) {
            return false;
        }
        if (a->secondaryinput != -1 && a->secondaryinput != 1) {
            return false;
        }
        if (a->output != (i == n - 1 ? 0 : -1)) {
            return false;
        }
    }
    return true;
}

static void write_indexes(kiln__gojson_t *w, const Pb__FileOp *f)
{
    kiln__gojson_key(w, "indexes");
    kiln__gojson_begin_array(w);
    for (size_t i = 0; i < f->n_actions; i++) {
        kiln__gojson_begin_array(w);
        kiln__gojson_int(w, f->actions[i]->input);
        kiln__gojson_int(w, f->actions[i]->secondaryinput);
        kiln__gojson_int(w, f->actions[i]->output);
        kiln__gojson_end_array(w);
    }
    kiln__gojson_end_array(w);
}

static int file_json(file_walk_t *fw, const Pb__FileOp *f, kiln__buf_t *out)
{
    kiln__gojson_t w;
    int rc = 0;

    kiln__gojson_init(&w, out, kiln__cm_json_flags(fw->compat));
    kiln__gojson_begin_object(&w);
    kiln__gojson_key(&w, "Type");
    kiln__gojson_cstr(&w, "buildkit.file.v0");
    kiln__gojson_key(&w, "Actions");
    kiln__gojson_begin_array(&w);
    for (size_t i = 0; i < f->n_actions && rc == 0; i++) {
        kiln__buf_t one = KILN_BUF_INIT;

        rc = action_json(fw, f->actions[i], &one);
        if (rc == 0) {
            kiln__gojson_base64(&w, one.data, one.len);
        }
        kiln__buf_free(&one);
    }
    kiln__gojson_end_array(&w);
    if (!default_indexes(f)) {
        write_indexes(&w, f);
    }
    kiln__gojson_end_object(&w);
    if (rc == 0 && !kiln__gojson_ok(&w)) {
        rc = kiln__buf_ok(out) ? KILN_EINVAL : KILN_ENOMEM;
    }
    return rc;
}

static bool has_filters(const kiln__cm_selector_t *s)
{
    return s->wildcard || s->n_include > 0 || s->n_exclude > 0 ||
           s->n_required > 0;
}

static int compare_desc(const void *a, const void *b)
{
    return strcmp(*(const char *const *)b, *(const char *const *)a);
}

typedef struct pos_sel {
    kiln__cm_selector_t s;
    size_t pos;
} pos_sel_t;

static int compare_pos_sel(const void *a, const void *b)
{
    const pos_sel_t *x = a, *y = b;
    int r = strcmp(x->s.path, y->s.path);

    return r != 0 ? r : (x->pos < y->pos ? -1 : x->pos > y->pos);
}

/* Sorts by path, keeping the order of equal paths (Go's sort.Slice does
 * for the short lists it sees here). */
static int stable_sort_sels(kiln__cm_selector_t *sels, size_t n)
{
    pos_sel_t *v = malloc((n ? n : 1) * sizeof(*v));

    if (v == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].s = sels[i];
        v[i].pos = i;
    }
    qsort(v, n, sizeof(*v), compare_pos_sel);
    for (size_t i = 0; i < n; i++) {
        sels[i] = v[i].s;
    }
    free(v);
    return 0;
}

/* dedupePaths over the unfiltered selectors with the given follow flag,
 * appended to the dep as plain selectors. */
static int push_deduped(kiln__cm_dep_t *d, const kiln__cm_selector_t *raw,
                        size_t n, bool follow, enum kiln__cm_compat compat)
{
    char **paths = malloc((n ? n : 1) * sizeof(*paths));
    const char **uniq = NULL;
    size_t m = 0, k = 0;
    int rc;

    if (paths == NULL) {
        return KILN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!has_filters(&raw[i]) && raw[i].follow_links == follow) {
            paths[m++] = raw[i].path;
        }
    }
    rc = kiln__cm_dedupe_paths(paths, m, compat, &uniq, &k);
    for (size_t i = 0; i < k && rc == 0; i++) {
        kiln__cm_selector_t s = {.path = strdup(uniq[i]),
                                 .follow_links = follow};
        rc = kiln__cm_dep_push_sel(d, &s);
    }
    free(uniq);
    free(paths);
    return rc;
}

/* dedupeSelectors: unfiltered paths deduplicated (plain, then followed),
 * filtered or wildcard selectors kept as they are, all sorted by path. */
static int dedupe_selectors(kiln__cm_dep_t *d, const kiln__cm_selector_t *raw,
                            size_t n, enum kiln__cm_compat compat)
{
    int rc = push_deduped(d, raw, n, false, compat);

    if (rc == 0) {
        rc = push_deduped(d, raw, n, true, compat);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (has_filters(&raw[i])) {
            kiln__cm_selector_t s = raw[i];
            s.path = strdup(raw[i].path);
            rc = kiln__cm_dep_push_sel(d, &s);
        }
    }
    if (rc == 0) {
        rc = stable_sort_sels(d->content_sels, d->n_content);
    }
    return rc;
}

/* Turns the raw selectors gathered for an input into its selector digest
 * (paths sorted, then reversed) and its content-key selectors. */
static int finish_dep(kiln__cm_dep_t *d, enum kiln__cm_compat compat)
{
    kiln__cm_selector_t *raw = d->content_sels;
    size_t n = d->n_content;
    int rc = 0;

    d->content_sels = NULL;
    d->n_content = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = kiln__cm_dep_push_path(d, strdup(raw[i].path));
    }
    if (rc == 0) {
        qsort(d->paths, d->n_paths, sizeof(*d->paths), compare_desc);
        rc = kiln__cachemap_join_digest(d->paths, d->n_paths, d->selector);
    }
    d->content = true;
    if (rc == 0) {
        rc = dedupe_selectors(d, raw, n, compat);
    }
    for (size_t i = 0; i < n; i++) {
        free(raw[i].path);
    }
    free(raw);
    return rc;
}

static void drop_sels(kiln__cm_dep_t *d)
{
    for (size_t i = 0; i < d->n_content; i++) {
        free(d->content_sels[i].path);
    }
    free(d->content_sels);
    d->content_sels = NULL;
    d->n_content = 0;
}

static int file_deps(file_walk_t *fw, kiln_error_t *err)
{
    int rc = 0;

    if (fw->out_of_range) {
        return kiln__fail(err, KILN_EINVAL,
                          "file op: an owner reads index %lld, which is "
                          "neither an op input nor an action result",
                          (long long)fw->bad_index);
    }
    for (size_t i = fw->n_inputs; i < fw->n_index; i++) {
        if (fw->owner_ref[i] && !fw->invalid[i]) {
            return kiln__fail(err, KILN_EINVAL,
                              "file op: an owner reads the result of action "
                              "%zu, which no action builds on",
                              i - fw->n_inputs);
        }
    }
    for (size_t i = 0; i < fw->n_inputs && rc == 0; i++) {
        kiln__cm_dep_t *d = &fw->cm->deps[i];

        if (fw->invalid[i]) {
            drop_sels(d); /* an action base: no selector, no content key */
        } else if (d->n_content > 0) {
            rc = finish_dep(d, fw->compat);
        }
    }
    return rc < 0 ? kiln__fail(err, rc, "out of memory") : 0;
}

static int file_walk(file_walk_t *fw, const Pb__FileOp *f, kiln_error_t *err)
{
    kiln__buf_t json = KILN_BUF_INIT;
    int rc;

    fw->invalid = calloc(fw->n_index ? fw->n_index : 1, sizeof(bool));
    fw->owner_ref = calloc(fw->n_index ? fw->n_index : 1, sizeof(bool));
    if (fw->invalid == NULL || fw->owner_ref == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = file_json(fw, f, &json);
    if (rc == 0) {
        rc = kiln__cm_finish(fw->cm, &json);
    }
    kiln__buf_free(&json);
    if (rc < 0) {
        return kiln__fail(err, rc, "file cache map: %s", kiln_strerror(rc));
    }
    return file_deps(fw, err);
}

int kiln__cm_file(const Pb__Op *op, enum kiln__cm_compat compat,
                  kiln__cachemap_t **out, kiln_error_t *err)
{
    file_walk_t fw = {
        .compat = compat,
        .n_inputs = op->n_inputs,
        .n_index = op->n_inputs + op->file->n_actions,
    };
    int rc;

    *out = NULL;
    fw.cm = kiln__cm_new(op->n_inputs);
    if (fw.cm == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    rc = file_walk(&fw, op->file, err);
    free(fw.invalid);
    free(fw.owner_ref);
    if (rc < 0) {
        kiln__cachemap_free(fw.cm);
        return rc;
    }
    *out = fw.cm;
    return 0;
}
