/*
 * Source ops: the generic, image, local, git and http helpers and their
 * options (client/llb/source.go). builder_source_enc.c turns them into
 * identifiers, attrs and capabilities.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/builder.h"

/* ---- construction ---- */

static kiln_llb_state_t *new_source(kiln_llb_t *b, enum kiln__src_kind kind,
                                    kiln__src_t **out)
{
    kiln__op_t *op = kiln__llb_op_new(b, KILN_LLB_SOURCE);
    kiln__src_t *src = op ? kiln__llb_alloc(b, sizeof(*src)) : NULL;

    if (src == NULL) {
        return NULL;
    }
    src->kind = kind;
    src->differ = -1;
    op->u.src = src;
    *out = src;
    return kiln__llb_state_new(b, op, NULL);
}

/* The source behind `st` if it is of `kind` (any kind for -1). */
static kiln__src_t *src_of(kiln_llb_state_t *st, const char *fn, int kind)
{
    static const char *const names[] = {"generic", "image", "local", "git",
                                        "http"};
    kiln__op_t *op;

    if (st == NULL) {
        return NULL;
    }
    op = st->op;
    if (op == NULL || op->kind != KILN_LLB_SOURCE ||
        (kind >= 0 && op->u.src->kind != (enum kiln__src_kind)kind)) {
        kiln__llb_fail(st->b, KILN_EINVAL,
                       "%s: the state is not made by a%s%s source", fn,
                       kind == KILN_SRC_IMAGE ? "n "
                       : kind >= 0            ? " "
                                              : "",
                       kind >= 0 ? names[kind] : "");
        return NULL;
    }
    return op->u.src;
}

kiln_llb_state_t *kiln_llb_source(kiln_llb_t *b, const char *identifier)
{
    static const char fn[] = "kiln_llb_source";
    kiln__src_t *src;
    const char *id;
    kiln_llb_state_t *st;

    if (b == NULL ||
        !kiln__llb_str(b, fn, "identifier", identifier, false, &id)) {
        return NULL;
    }
    if (strstr(id, "://") == NULL || strstr(id, "://") == id) {
        kiln__llb_fail(b, KILN_EINVAL,
                       "%s: identifier \"%.200s\" has no scheme (expected "
                       "SCHEME://...)",
                       fn, id);
        return NULL;
    }
    st = new_source(b, KILN_SRC_GENERIC, &src);
    if (st != NULL) {
        src->identifier = id;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_source_attr(kiln_llb_state_t *st, const char *key,
                                       const char *value)
{
    static const char fn[] = "kiln_llb_source_attr";
    kiln__src_t *src = src_of(st, fn, -1);
    const char *k, *v;

    if (src == NULL || !kiln__llb_str(st->b, fn, "key", key, false, &k) ||
        !kiln__llb_str(st->b, fn, "value", value, false, &v) ||
        !kiln__llb_kv_set(st->b, &src->attrs, k, v, false)) {
        return NULL;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_plugin_source(kiln_llb_t *b, const char *scheme,
                                         const char *const *params)
{
    static const char fn[] = "kiln_llb_plugin_source";
    kiln_translated_t *t = NULL;
    kiln_error_t err = {0};
    kiln_llb_state_t *st;

    if (b == NULL) {
        return NULL;
    }
    if (kiln_source_translate(NULL, scheme, params, &t, &err) < 0) {
        kiln__llb_fail(b, err.code, "%s: %s", fn, err.message);
        return NULL;
    }
    st = kiln_llb_source(b, t->identifier);
    for (size_t i = 0; st != NULL && i < t->n_attrs; i++) {
        st = kiln_llb_source_attr(st, t->keys[i], t->values[i]);
    }
    kiln_translated_free(t);
    return st;
}

kiln_llb_state_t *kiln_llb_image(kiln_llb_t *b, const char *ref)
{
    static const char fn[] = "kiln_llb_image";
    kiln_error_t err = {0};
    const char *r;
    char *norm, *id;
    kiln__src_t *src;
    kiln_llb_state_t *st;

    if (b == NULL || !kiln__llb_str(b, fn, "reference", ref, false, &r)) {
        return NULL;
    }
    if (kiln__oci_ref_normalize(r, &norm, &err) < 0) {
        kiln__llb_fail(b, err.code,
                       "%s: invalid image reference \"%.200s\": %s", fn, r,
                       err.message);
        return NULL;
    }
    id = kiln__llb_alloc(b, strlen(norm) + 16);
    st = id ? new_source(b, KILN_SRC_IMAGE, &src) : NULL;
    if (st == NULL) {
        free(norm);
        return NULL;
    }
    sprintf(id, "docker-image://%s", norm);
    free(norm);
    src->identifier = id;
    return st;
}

kiln_llb_state_t *kiln_llb_image_resolve_mode(kiln_llb_state_t *st,
                                              kiln_llb_resolve_mode_t mode)
{
    static const char fn[] = "kiln_llb_image_resolve_mode";
    kiln__src_t *src = src_of(st, fn, KILN_SRC_IMAGE);

    if (src == NULL) {
        return NULL;
    }
    if ((int)mode < 0 || mode > KILN_LLB_RESOLVE_LOCAL) {
        kiln__llb_fail(st->b, KILN_EINVAL, "%s: unknown mode %d", fn,
                       (int)mode);
        return NULL;
    }
    src->resolve_mode = (int)mode;
    return st;
}

kiln_llb_state_t *kiln_llb_image_layer_limit(kiln_llb_state_t *st, int limit)
{
    static const char fn[] = "kiln_llb_image_layer_limit";
    kiln__src_t *src = src_of(st, fn, KILN_SRC_IMAGE);

    if (src == NULL) {
        return NULL;
    }
    if (limit <= 0) {
        kiln__llb_fail(st->b, KILN_EINVAL,
                       "%s: the limit is %d; it must be positive", fn, limit);
        return NULL;
    }
    src->layer_limit = limit;
    return st;
}

kiln_llb_state_t *kiln_llb_image_record_type(kiln_llb_state_t *st,
                                             const char *type)
{
    static const char fn[] = "kiln_llb_image_record_type";
    kiln__src_t *src = src_of(st, fn, KILN_SRC_IMAGE);

    if (src == NULL ||
        !kiln__llb_str(st->b, fn, "type", type, false, &src->record_type)) {
        return NULL;
    }
    return st;
}

/* Stores a digest option after checking it as go-digest would. */
static kiln_llb_state_t *set_digest(kiln_llb_state_t *st, const char *fn,
                                    int kind, const char *digest)
{
    kiln__src_t *src = src_of(st, fn, kind);
    const char *d, *why;

    if (src == NULL || !kiln__llb_str(st->b, fn, "digest", digest, false, &d)) {
        return NULL;
    }
    why = kiln__digest_check(d);
    if (why != NULL) {
        kiln__llb_fail(st->b, KILN_EINVAL, "%s: \"%.200s\": %s", fn, d, why);
        return NULL;
    }
    src->checksum = d;
    return st;
}

kiln_llb_state_t *kiln_llb_image_checksum(kiln_llb_state_t *st,
                                          const char *digest)
{
    return set_digest(st, "kiln_llb_image_checksum", KILN_SRC_IMAGE, digest);
}

/* ---- local ---- */

kiln_llb_state_t *kiln_llb_local(kiln_llb_t *b, const char *name)
{
    static const char fn[] = "kiln_llb_local";
    kiln__src_t *src;
    const char *n;
    kiln_llb_state_t *st;

    if (b == NULL || !kiln__llb_str(b, fn, "name", name, false, &n)) {
        return NULL;
    }
    if (*n == 0) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: the name is empty", fn);
        return NULL;
    }
    st = new_source(b, KILN_SRC_LOCAL, &src);
    if (st != NULL) {
        src->name = n;
    }
    return st;
}

static kiln_llb_state_t *local_push(kiln_llb_state_t *st, const char *fn,
                                    int which, const char *s)
{
    kiln__src_t *src = src_of(st, fn, KILN_SRC_LOCAL);
    kiln__vec_t *vec;
    const char *copy;

    if (src == NULL || !kiln__llb_str(st->b, fn, "pattern", s, false, &copy)) {
        return NULL;
    }
    vec = which == 0   ? &src->include
          : which == 1 ? &src->exclude
                       : &src->follow;
    return kiln__llb_push(st->b, vec, (void *)copy) ? st : NULL;
}

kiln_llb_state_t *kiln_llb_local_include(kiln_llb_state_t *st,
                                         const char *pattern)
{
    return local_push(st, "kiln_llb_local_include", 0, pattern);
}

kiln_llb_state_t *kiln_llb_local_exclude(kiln_llb_state_t *st,
                                         const char *pattern)
{
    return local_push(st, "kiln_llb_local_exclude", 1, pattern);
}

kiln_llb_state_t *kiln_llb_local_follow_path(kiln_llb_state_t *st,
                                             const char *path)
{
    return local_push(st, "kiln_llb_local_follow_path", 2, path);
}

/* Sets the string option at `offset` in a source of `kind`. */
static kiln_llb_state_t *set_str(kiln_llb_state_t *st, const char *fn, int kind,
                                 size_t offset, const char *what,
                                 const char *value)
{
    kiln__src_t *src = src_of(st, fn, kind);

    if (src == NULL || !kiln__llb_str(st->b, fn, what, value, false,
                                      (const char **)((char *)src + offset))) {
        return NULL;
    }
    return st;
}

#define SET_STR(st, fn, kind, field, what, value)                              \
    set_str((st), (fn), (kind), offsetof(kiln__src_t, field), (what), (value))

kiln_llb_state_t *kiln_llb_local_shared_key_hint(kiln_llb_state_t *st,
                                                 const char *hint)
{
    return SET_STR(st, "kiln_llb_local_shared_key_hint", KILN_SRC_LOCAL,
                   shared_key_hint, "hint", hint);
}

kiln_llb_state_t *kiln_llb_local_session(kiln_llb_state_t *st, const char *id)
{
    return SET_STR(st, "kiln_llb_local_session", KILN_SRC_LOCAL, session, "id",
                   id);
}

kiln_llb_state_t *kiln_llb_local_differ(kiln_llb_state_t *st,
                                        kiln_llb_differ_t differ, int required)
{
    static const char fn[] = "kiln_llb_local_differ";
    kiln__src_t *src = src_of(st, fn, KILN_SRC_LOCAL);

    if (src == NULL) {
        return NULL;
    }
    if (differ != KILN_LLB_DIFFER_METADATA && differ != KILN_LLB_DIFFER_NONE) {
        kiln__llb_fail(st->b, KILN_EINVAL, "%s: unknown differ %d", fn,
                       (int)differ);
        return NULL;
    }
    src->differ = (int)differ;
    src->differ_required = required != 0;
    return st;
}

/* ---- git ---- */

kiln_llb_state_t *kiln_llb_git(kiln_llb_t *b, const char *url,
                               const char *fragment)
{
    static const char fn[] = "kiln_llb_git";
    const char *u, *frag, *colon;
    kiln__src_t *src;
    kiln_llb_state_t *st;

    if (b == NULL || !kiln__llb_str(b, fn, "url", url, false, &u) ||
        !kiln__llb_str(b, fn, "fragment", fragment ? fragment : "", false,
                       &frag)) {
        return NULL;
    }
    if (*u == 0) {
        kiln__llb_fail(b, KILN_EINVAL, "%s: the url is empty", fn);
        return NULL;
    }
    st = new_source(b, KILN_SRC_GIT, &src);
    if (st == NULL) {
        return NULL;
    }
    kiln__git_parse(&b->arena, u, &src->git);
    if (src->git.id == NULL) {
        kiln__llb_fail(b, KILN_ENOMEM, "out of memory");
        return NULL;
    }
    /* "ref:subdir": the subdir is cleaned and made relative. */
    colon = strchr(frag, ':');
    src->ref =
        colon ? kiln__arena_dup(&b->arena, frag, (size_t)(colon - frag) + 1)
              : frag;
    if (colon != NULL) {
        char *ref = (char *)src->ref, *sub;
        ref[colon - frag] = 0;
        sub = kiln__path_join(&b->arena, "/", colon + 1);
        if (sub != NULL) {
            src->subdir = sub + 1;
        }
    }
    if (src->ref == NULL || (colon != NULL && src->subdir == NULL)) {
        kiln__llb_fail(b, KILN_ENOMEM, "out of memory");
        return NULL;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_git_ref(kiln_llb_state_t *st, const char *ref)
{
    return SET_STR(st, "kiln_llb_git_ref", KILN_SRC_GIT, ref, "ref", ref);
}

kiln_llb_state_t *kiln_llb_git_subdir(kiln_llb_state_t *st, const char *subdir)
{
    return SET_STR(st, "kiln_llb_git_subdir", KILN_SRC_GIT, subdir, "subdir",
                   subdir);
}

kiln_llb_state_t *kiln_llb_git_keep_dir(kiln_llb_state_t *st)
{
    kiln__src_t *src = src_of(st, "kiln_llb_git_keep_dir", KILN_SRC_GIT);

    if (src == NULL) {
        return NULL;
    }
    src->keep_dir = true;
    return st;
}

kiln_llb_state_t *kiln_llb_git_auth_token_secret(kiln_llb_state_t *st,
                                                 const char *name)
{
    st = SET_STR(st, "kiln_llb_git_auth_token_secret", KILN_SRC_GIT, auth_token,
                 "name", name);
    if (st != NULL) {
        st->op->u.src->auth_cap = true;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_git_auth_header_secret(kiln_llb_state_t *st,
                                                  const char *name)
{
    st = SET_STR(st, "kiln_llb_git_auth_header_secret", KILN_SRC_GIT,
                 auth_header, "name", name);
    if (st != NULL) {
        st->op->u.src->auth_cap = true;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_git_known_ssh_hosts(kiln_llb_state_t *st,
                                               const char *lines)
{
    static const char fn[] = "kiln_llb_git_known_ssh_hosts";
    kiln__src_t *src = src_of(st, fn, KILN_SRC_GIT);
    const char *l, *prev;
    size_t n;
    char *all;

    if (src == NULL || !kiln__llb_str(st->b, fn, "lines", lines, false, &l)) {
        return NULL;
    }
    prev = src->known_hosts ? src->known_hosts : "";
    n = strlen(l);
    if (n > 0 && l[n - 1] == '\n') {
        n--;
    }
    all = kiln__llb_alloc(st->b, strlen(prev) + n + 2);
    if (all == NULL) {
        return NULL;
    }
    sprintf(all, "%s%.*s\n", prev, (int)n, l);
    src->known_hosts = all;
    return st;
}

kiln_llb_state_t *kiln_llb_git_mount_ssh_sock(kiln_llb_state_t *st,
                                              const char *id)
{
    return SET_STR(st, "kiln_llb_git_mount_ssh_sock", KILN_SRC_GIT, ssh_sock,
                   "id", id);
}

kiln_llb_state_t *kiln_llb_git_checksum(kiln_llb_state_t *st,
                                        const char *commit)
{
    return SET_STR(st, "kiln_llb_git_checksum", KILN_SRC_GIT, checksum,
                   "commit", commit);
}

kiln_llb_state_t *kiln_llb_git_skip_submodules(kiln_llb_state_t *st)
{
    kiln__src_t *src = src_of(st, "kiln_llb_git_skip_submodules", KILN_SRC_GIT);

    if (src == NULL) {
        return NULL;
    }
    src->skip_submodules = true;
    return st;
}

/* ---- http ---- */

kiln_llb_state_t *kiln_llb_http(kiln_llb_t *b, const char *url)
{
    static const char fn[] = "kiln_llb_http";
    kiln__src_t *src;
    const char *u;
    kiln_llb_state_t *st;

    if (b == NULL || !kiln__llb_str(b, fn, "url", url, false, &u)) {
        return NULL;
    }
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
        kiln__llb_fail(b, KILN_EINVAL,
                       "%s: \"%.200s\" is not an http:// or https:// URL", fn,
                       u);
        return NULL;
    }
    st = new_source(b, KILN_SRC_HTTP, &src);
    if (st != NULL) {
        src->identifier = u;
    }
    return st;
}

kiln_llb_state_t *kiln_llb_http_checksum(kiln_llb_state_t *st,
                                         const char *digest)
{
    return set_digest(st, "kiln_llb_http_checksum", KILN_SRC_HTTP, digest);
}

kiln_llb_state_t *kiln_llb_http_filename(kiln_llb_state_t *st, const char *name)
{
    return SET_STR(st, "kiln_llb_http_filename", KILN_SRC_HTTP, filename,
                   "name", name);
}

kiln_llb_state_t *kiln_llb_http_chmod(kiln_llb_state_t *st, unsigned mode)
{
    kiln__src_t *src = src_of(st, "kiln_llb_http_chmod", KILN_SRC_HTTP);

    if (src == NULL) {
        return NULL;
    }
    src->perm = mode & 0777;
    return st;
}

kiln_llb_state_t *kiln_llb_http_chown(kiln_llb_state_t *st, uint32_t uid,
                                      uint32_t gid)
{
    kiln__src_t *src = src_of(st, "kiln_llb_http_chown", KILN_SRC_HTTP);

    if (src == NULL) {
        return NULL;
    }
    src->uid = uid;
    src->gid = gid;
    return st;
}

kiln_llb_state_t *kiln_llb_http_auth_header_secret(kiln_llb_state_t *st,
                                                   const char *name)
{
    return SET_STR(st, "kiln_llb_http_auth_header_secret", KILN_SRC_HTTP,
                   auth_header, "name", name);
}
