/*
 * Encoding of source ops: identifier, attrs and capabilities as BuildKit's
 * Go client derives them from its helpers (client/llb/source.go).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llb/builder.h"

/* Sets attr `key` in a kiln__kv_t * list of the marshal arena. */
static int put_attr(kiln__enc_t *e, kiln__vec_t *attrs, const char *key,
                    const char *value)
{
    kiln__kv_t *kv;

    for (size_t i = 0; i < attrs->n; i++) {
        kv = attrs->v[i];
        if (strcmp(kv->key, key) == 0) {
            kv->value = value;
            return 0;
        }
    }
    kv = kiln__enc_alloc(e, sizeof(*kv));
    if (kv == NULL || !kiln__vec_push(&e->tmp, attrs, kv)) {
        return kiln__enc_oom(e);
    }
    kv->key = key;
    kv->value = value;
    return 0;
}

static const char *enc_printf(kiln__enc_t *e, const char *fmt, ...)
    KILN_PRINTF(2, 3);

static const char *enc_printf(kiln__enc_t *e, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    return kiln__arena_strdup(&e->tmp, tmp);
}

static int image_attrs(kiln__enc_t *e, const kiln__src_t *src,
                       kiln__vec_t *attrs, kiln__caps_t *caps)
{
    static const char *const modes[] = {"default", "pull", "local"};
    int rc = 0;

    kiln__caps_add(caps, "source.image");
    if (src->resolve_mode != 0) {
        rc = put_attr(e, attrs, "image.resolvemode", modes[src->resolve_mode]);
        /* Only the security-relevant mode needs daemon support. */
        if (src->resolve_mode == KILN_LLB_RESOLVE_PULL) {
            kiln__caps_add(caps, "source.image.resolvemode");
        }
    }
    if (rc == 0 && src->record_type != NULL) {
        rc = put_attr(e, attrs, "image.recordtype", src->record_type);
    }
    if (rc == 0 && src->layer_limit > 0) {
        const char *v = enc_printf(e, "%d", src->layer_limit);
        rc = v ? put_attr(e, attrs, "image.layerlimit", v) : kiln__enc_oom(e);
        kiln__caps_add(caps, "source.image.layerlimit");
    }
    if (rc == 0 && src->checksum != NULL) {
        rc = put_attr(e, attrs, "image.checksum", src->checksum);
        kiln__caps_add(caps, "source.image.checksum");
    }
    return rc;
}

/* A pattern list as a JSON attr with its cap, if not empty. */
static int json_attr(kiln__enc_t *e, kiln__vec_t *attrs, kiln__caps_t *caps,
                     const kiln__vec_t *list, const char *key, const char *cap)
{
    const char *json;

    if (list->n == 0) {
        return 0;
    }
    json = kiln__json_strings(&e->tmp, (char *const *)list->v, list->n,
                              e->b->legacy);
    if (json == NULL) {
        return kiln__enc_oom(e);
    }
    kiln__caps_add(caps, cap);
    return put_attr(e, attrs, key, json);
}

static int local_attrs(kiln__enc_t *e, const kiln__src_t *src,
                       kiln__vec_t *attrs, kiln__caps_t *caps)
{
    int rc = 0;

    if (src->session != NULL && *src->session) {
        rc = put_attr(e, attrs, "local.session", src->session);
        kiln__caps_add(caps, "source.local.sessionid");
    }
    if (rc == 0) {
        rc = json_attr(e, attrs, caps, &src->include, "local.includepattern",
                       "source.local.includepatterns");
    }
    if (rc == 0) {
        rc = json_attr(e, attrs, caps, &src->follow, "local.followpaths",
                       "source.local.followpaths");
    }
    if (rc == 0) {
        rc = json_attr(e, attrs, caps, &src->exclude, "local.excludepatterns",
                       "source.local.excludepatterns");
    }
    if (rc == 0 && src->shared_key_hint != NULL && *src->shared_key_hint) {
        rc = put_attr(e, attrs, "local.sharedkeyhint", src->shared_key_hint);
        kiln__caps_add(caps, "source.local.sharedkeyhint");
    }
    if (rc == 0 && src->differ >= 0) {
        rc =
            put_attr(e, attrs, "local.differ",
                     src->differ == KILN_LLB_DIFFER_NONE ? "none" : "metadata");
        if (src->differ_required) {
            kiln__caps_add(caps, "source.local.differ");
        }
    }
    kiln__caps_add(caps, "source.local");
    return rc;
}

static const char *git_identifier(kiln__enc_t *e, const kiln__src_t *src)
{
    const char *ref = src->ref ? src->ref : "";
    const char *sub = src->subdir ? src->subdir : "";
    size_t n = strlen(src->git.id) + strlen(ref) + strlen(sub) + 16;
    char *id = kiln__enc_alloc(e, n);

    if (id == NULL) {
        return NULL;
    }
    /* Ref and subdir go in the fragment; an unparsable url is used raw. */
    if (src->git.ok && (*ref || *sub)) {
        snprintf(id, n, "git://%s#%s%s%s", src->git.id, ref, *sub ? ":" : "",
                 sub);
    } else {
        snprintf(id, n, "git://%s", src->git.id);
    }
    return id;
}

static int git_attrs(kiln__enc_t *e, const kiln__src_t *src, kiln__vec_t *attrs,
                     kiln__caps_t *caps)
{
    const char *token = src->auth_token ? src->auth_token : "GIT_AUTH_TOKEN";
    const char *header =
        src->auth_header ? src->auth_header : "GIT_AUTH_HEADER";
    int rc = 0;

    if (src->keep_dir) {
        rc = put_attr(e, attrs, "git.keepgitdir", "true");
        kiln__caps_add(caps, "source.git.keepgitdir");
    }
    if (rc == 0 && *src->git.remote) {
        rc = put_attr(e, attrs, "git.fullurl", src->git.remote);
        kiln__caps_add(caps, "source.git.fullurl");
    }
    if (rc == 0 && *token) {
        rc = put_attr(e, attrs, "git.authtokensecret", token);
    }
    if (rc == 0 && *header) {
        rc = put_attr(e, attrs, "git.authheadersecret", header);
    }
    if (src->auth_cap && (*token || *header)) {
        kiln__caps_add(caps, "source.git.httpauth");
    }
    if (rc == 0 && src->git.ssh) {
        /* Go declares both caps for every SSH remote, known hosts or not;
         * unlike Go, kiln never runs ssh-keyscan. */
        if (src->known_hosts != NULL) {
            rc = put_attr(e, attrs, "git.knownsshhosts", src->known_hosts);
        }
        kiln__caps_add(caps, "source.git.knownsshhosts");
        if (rc == 0) {
            rc = put_attr(e, attrs, "git.mountsshsock",
                          src->ssh_sock && *src->ssh_sock ? src->ssh_sock
                                                          : "default");
        }
        kiln__caps_add(caps, "source.git.mountsshsock");
    }
    if (rc == 0 && src->checksum != NULL && *src->checksum) {
        rc = put_attr(e, attrs, "git.checksum", src->checksum);
        kiln__caps_add(caps, "source.git.checksum");
    }
    if (rc == 0 && src->skip_submodules) {
        rc = put_attr(e, attrs, "git.skipsubmodules", "true");
        kiln__caps_add(caps, "source.git.skipsubmodules");
    }
    kiln__caps_add(caps, "source.git");
    return rc;
}

static int http_attrs(kiln__enc_t *e, const kiln__src_t *src,
                      kiln__vec_t *attrs, kiln__caps_t *caps)
{
    int rc = 0;

    if (src->checksum != NULL) {
        rc = put_attr(e, attrs, "http.checksum", src->checksum);
        kiln__caps_add(caps, "source.http.checksum");
    }
    if (rc == 0 && src->filename != NULL && *src->filename) {
        rc = put_attr(e, attrs, "http.filename", src->filename);
    }
    if (rc == 0 && src->perm != 0) {
        const char *v = enc_printf(e, "0%o", src->perm);
        rc = v ? put_attr(e, attrs, "http.perm", v) : kiln__enc_oom(e);
        kiln__caps_add(caps, "source.http.perm");
    }
    if (rc == 0 && src->uid != 0) {
        const char *v = enc_printf(e, "%u", (unsigned)src->uid);
        rc = v ? put_attr(e, attrs, "http.uid", v) : kiln__enc_oom(e);
        kiln__caps_add(caps, "soruce.http.uidgid"); /* sic: BuildKit's id */
    }
    if (rc == 0 && src->gid != 0) {
        const char *v = enc_printf(e, "%u", (unsigned)src->gid);
        rc = v ? put_attr(e, attrs, "http.gid", v) : kiln__enc_oom(e);
        kiln__caps_add(caps, "soruce.http.uidgid");
    }
    if (rc == 0 && src->auth_header != NULL && *src->auth_header) {
        rc = put_attr(e, attrs, "http.authheadersecret", src->auth_header);
        kiln__caps_add(caps, "source.http.auth");
    }
    kiln__caps_add(caps, "source.http");
    return rc;
}

static bool platform_specific(const char *id)
{
    return strncmp(id, "docker-image://", 15) == 0 ||
           strncmp(id, "oci-layout://", 13) == 0;
}

bool kiln__llb_src_has_platform(const kiln__src_t *src)
{
    return src->kind == KILN_SRC_IMAGE || (src->kind == KILN_SRC_GENERIC &&
                                           platform_specific(src->identifier));
}

static bool has_attr(const kiln__vec_t *attrs, const char *key)
{
    for (size_t i = 0; i < attrs->n; i++) {
        if (strcmp(((kiln__kv_t *)attrs->v[i])->key, key) == 0) {
            return true;
        }
    }
    return false;
}

/* The identifier, and attrs and caps of the helper that made the source. */
static int source_attrs(kiln__enc_t *e, const kiln__src_t *src, const char **id,
                        kiln__vec_t *attrs, kiln__caps_t *caps)
{
    *id = src->identifier;
    switch (src->kind) {
    case KILN_SRC_IMAGE:
        return image_attrs(e, src, attrs, caps);
    case KILN_SRC_LOCAL:
        *id = kiln__enc_alloc(e, strlen(src->name) + 9);
        if (*id == NULL) {
            return kiln__enc_oom(e);
        }
        sprintf((char *)*id, "local://%s", src->name);
        return local_attrs(e, src, attrs, caps);
    case KILN_SRC_GIT:
        *id = git_identifier(e, src);
        return *id ? git_attrs(e, src, attrs, caps) : kiln__enc_oom(e);
    case KILN_SRC_HTTP:
        return http_attrs(e, src, attrs, caps);
    default:
        return 0;
    }
}

int kiln__llb_encode_source(kiln__enc_t *e, kiln__op_t *op, Pb__Op *pop,
                            kiln__caps_t *caps)
{
    const kiln__src_t *src = op->u.src;
    kiln__vec_t attrs = {0};
    Pb__SourceOp *so = KILN_ENC_NEW(e, Pb__SourceOp, PB__SOURCE_OP__INIT);
    const char *id;
    int rc;

    if (so == NULL) {
        return kiln__enc_oom(e);
    }
    rc = source_attrs(e, src, &id, &attrs, caps);
    for (size_t i = 0; i < src->attrs.n && rc == 0; i++) {
        const kiln__kv_t *kv = src->attrs.v[i];
        rc = put_attr(e, &attrs, kv->key, kv->value);
    }
    /* Go adds the client's unique id to every sessionless local source
     * that does not carry one of its own (llb.LocalUniqueID). */
    if (rc == 0 && strncmp(id, "local://", 8) == 0 &&
        !has_attr(&attrs, "local.session") &&
        !has_attr(&attrs, "local.unique")) {
        rc = put_attr(e, &attrs, "local.unique", e->b->local_unique);
        kiln__caps_add(caps, "source.local.unique");
    }
    if (rc == 0) {
        rc = kiln__llb_constraints(
            e, pop, op,
            platform_specific(id)
                ? (op->platform ? op->platform : &e->b->platform)
                : NULL);
    }
    if (rc < 0) {
        return rc;
    }
    so->identifier = (char *)id;
    so->n_attrs = attrs.n;
    so->attrs = kiln__enc_alloc(e, (attrs.n + 1) * sizeof(*so->attrs));
    if (so->attrs == NULL) {
        return kiln__enc_oom(e);
    }
    for (size_t i = 0; i < attrs.n; i++) {
        const kiln__kv_t *kv = attrs.v[i];
        Pb__SourceOp__AttrsEntry *en = KILN_ENC_NEW(
            e, Pb__SourceOp__AttrsEntry, PB__SOURCE_OP__ATTRS_ENTRY__INIT);
        if (en == NULL) {
            return kiln__enc_oom(e);
        }
        en->key = (char *)kv->key;
        en->value = (char *)kv->value;
        so->attrs[i] = en;
    }
    pop->op_case = PB__OP__OP_SOURCE;
    pop->source = so;
    return 0;
}
