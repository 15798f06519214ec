/*
 * The JSON documents of an OCI image: descriptors, indexes, manifests and
 * image configs, parsed from and written to bytes with jansson.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "oci/layout.h"

/* Records an allocation failure in `err` and returns KILN_ENOMEM. */
static int oom(kiln_error_t *err)
{
    return kiln__fail(err, KILN_ENOMEM, "out of memory");
}

void kiln__oci_desc_clear(kiln_oci_desc_t *d)
{
    free(d->media_type);
    free(d->ref_name);
    memset(d, 0, sizeof(*d));
}

void kiln__oci_index_clear(kiln_oci_index_t *ix)
{
    for (size_t i = 0; i < ix->n_manifests; i++) {
        kiln__oci_desc_clear(&ix->manifests[i]);
    }
    free(ix->manifests);
    free(ix->media_type);
    memset(ix, 0, sizeof(*ix));
}

void kiln__oci_image_manifest_clear(kiln_oci_image_manifest_t *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        kiln__oci_desc_clear(&m->layers[i]);
    }
    free(m->layers);
    kiln__oci_desc_clear(&m->config);
    free(m->media_type);
    memset(m, 0, sizeof(*m));
}

/* Frees the strings of `s` and empties it. */
static void strv_clear(kiln_oci_strv_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i]);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

void kiln__oci_config_clear(kiln_oci_config_t *c)
{
    free(c->architecture);
    free(c->os);
    free(c->variant);
    free(c->created);
    strv_clear(&c->env);
    strv_clear(&c->cmd);
    strv_clear(&c->entrypoint);
    free(c->working_dir);
    free(c->user);
    strv_clear(&c->labels);
    strv_clear(&c->diff_ids);
    for (size_t i = 0; i < c->n_history; i++) {
        free(c->history[i].created);
        free(c->history[i].created_by);
        free(c->history[i].comment);
    }
    free(c->history);
    memset(c, 0, sizeof(*c));
}

int kiln__oci_desc_copy(kiln_oci_desc_t *dst, const kiln_oci_desc_t *src,
                        kiln_error_t *err)
{
    *dst = *src;
    dst->media_type = src->media_type ? strdup(src->media_type) : NULL;
    dst->ref_name = src->ref_name ? strdup(src->ref_name) : NULL;
    if ((src->media_type && !dst->media_type) ||
        (src->ref_name && !dst->ref_name)) {
        kiln__oci_desc_clear(dst);
        return oom(err);
    }
    return 0;
}

bool kiln__oci_mt_is_index(const char *mt)
{
    return mt != NULL && (strcmp(mt, KILN_OCI_MT_INDEX) == 0 ||
                          strcmp(mt, KILN_DOCKER_MT_LIST) == 0);
}

bool kiln__oci_mt_is_manifest(const char *mt)
{
    return mt != NULL && (strcmp(mt, KILN_OCI_MT_MANIFEST) == 0 ||
                          strcmp(mt, KILN_DOCKER_MT_MANIFEST) == 0);
}

/* Parses `data` as a JSON object, with the size limit. */
static int load(const void *data, size_t len, const char *what, json_t **out,
                kiln_error_t *err)
{
    json_error_t je;

    *out = NULL;
    if (len > KILN_OCI_JSON_MAX) {
        return kiln__fail(err, KILN_E2BIG,
                          "%s: %zu bytes is over the %u byte limit", what, len,
                          KILN_OCI_JSON_MAX);
    }
    *out = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (*out == NULL) {
        return kiln__fail(err, KILN_EBADMSG, "%s: invalid JSON: %s (line %d)",
                          what, je.text, je.line);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return kiln__fail(err, KILN_EBADMSG, "%s: not a JSON object", what);
    }
    return 0;
}

/* Copies the optional string member `key` of `o` into *out (NULL when
 * absent or null). */
static int get_str(json_t *o, const char *key, const char *what, char **out,
                   kiln_error_t *err)
{
    json_t *v = json_object_get(o, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v)) {
        return kiln__fail(err, KILN_EBADMSG, "%s: %s is not a string", what,
                          key);
    }
    *out = strndup(json_string_value(v), json_string_length(v));
    return *out != NULL ? 0 : oom(err);
}

/* As get_str() into a fixed buffer; longer values are an error. */
static int get_fixed(json_t *o, const char *key, const char *what, char *buf,
                     size_t size, kiln_error_t *err)
{
    json_t *v = json_object_get(o, key);

    buf[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        return kiln__fail(err, KILN_EBADMSG,
                          "%s: %s is not a string of under %zu bytes", what,
                          key, size);
    }
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* Parses the descriptor object `o` into *d (cleared on failure); `what`
 * names it in messages. */
static int parse_desc(json_t *o, const char *what, kiln_oci_desc_t *d,
                      kiln_error_t *err)
{
    json_t *v, *plat, *ann;
    int rc;

    memset(d, 0, sizeof(*d));
    if (!json_is_object(o)) {
        return kiln__fail(err, KILN_EBADMSG, "%s: not an object", what);
    }
    v = json_object_get(o, "digest");
    if (!json_is_string(v) || !kiln__digest_valid(json_string_value(v)) ||
        json_string_length(v) != KILN_DIGEST_STRLEN) {
        return kiln__fail(err, KILN_EBADMSG,
                          "%s: digest is not a sha256:<64 hex> digest", what);
    }
    memcpy(d->digest, json_string_value(v), KILN_DIGEST_STRLEN + 1);
    v = json_object_get(o, "size");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return kiln__fail(err, KILN_EBADMSG,
                          "%s: size is not a non-negative integer", what);
    }
    d->size = json_integer_value(v);
    rc = get_str(o, "mediaType", what, &d->media_type, err);
    plat = json_object_get(o, "platform");
    if (rc == 0 && plat != NULL && !json_is_null(plat)) {
        if (!json_is_object(plat)) {
            rc = kiln__fail(err, KILN_EBADMSG, "%s: platform is not an object",
                            what);
        }
        if (rc == 0) {
            rc = get_fixed(plat, "os", what, d->platform.os,
                           sizeof(d->platform.os), err);
        }
        if (rc == 0) {
            rc = get_fixed(plat, "architecture", what, d->platform.arch,
                           sizeof(d->platform.arch), err);
        }
        if (rc == 0) {
            rc = get_fixed(plat, "variant", what, d->platform.variant,
                           sizeof(d->platform.variant), err);
        }
        d->has_platform = rc == 0;
    }
    ann = json_object_get(o, "annotations");
    if (rc == 0 && ann != NULL && !json_is_null(ann)) {
        rc = json_is_object(ann)
                 ? get_str(ann, KILN_OCI_REF_NAME, what, &d->ref_name, err)
                 : kiln__fail(err, KILN_EBADMSG,
                              "%s: annotations is not an "
                              "object",
                              what);
    }
    if (rc < 0) {
        kiln__oci_desc_clear(d);
    }
    return rc;
}

/* Parses the array member `key` of descriptors. */
static int parse_descs(json_t *o, const char *key, const char *what,
                       bool required, kiln_oci_desc_t **out, size_t *n,
                       kiln_error_t *err)
{
    json_t *a = json_object_get(o, key);
    char name[96];
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (a == NULL || json_is_null(a)) {
        return required ? kiln__fail(err, KILN_EBADMSG, "%s: no %s", what, key)
                        : 0;
    }
    if (!json_is_array(a)) {
        return kiln__fail(err, KILN_EBADMSG, "%s: %s is not an array", what,
                          key);
    }
    if (json_array_size(a) == 0) {
        return 0;
    }
    *out = calloc(json_array_size(a), sizeof(**out));
    if (*out == NULL) {
        return oom(err);
    }
    for (size_t i = 0; rc == 0 && i < json_array_size(a); i++) {
        snprintf(name, sizeof(name), "%s: %s[%zu]", what, key, i);
        rc = parse_desc(json_array_get(a, i), name, &(*out)[i], err);
        *n += rc == 0;
    }
    return rc;
}

/* Accepts a missing schemaVersion or 2; anything else is KILN_EBADMSG. */
static int check_schema(json_t *o, const char *what, kiln_error_t *err)
{
    json_t *v = json_object_get(o, "schemaVersion");

    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) != 2)) {
        return kiln__fail(err, KILN_EBADMSG, "%s: schemaVersion is not 2",
                          what);
    }
    return 0;
}

int kiln__oci_index_parse(const void *data, size_t len, kiln_oci_index_t *out,
                          kiln_error_t *err)
{
    json_t *o;
    int rc = load(data, len, "index", &o, err);

    memset(out, 0, sizeof(*out));
    if (rc == 0) {
        rc = check_schema(o, "index", err);
    }
    if (rc == 0) {
        rc = get_str(o, "mediaType", "index", &out->media_type, err);
    }
    if (rc == 0) {
        rc = parse_descs(o, "manifests", "index", true, &out->manifests,
                         &out->n_manifests, err);
    }
    if (rc < 0) {
        kiln__oci_index_clear(out);
    }
    json_decref(o);
    return rc;
}

int kiln__oci_image_manifest_parse(const void *data, size_t len,
                                   kiln_oci_image_manifest_t *out,
                                   kiln_error_t *err)
{
    json_t *o;
    int rc = load(data, len, "manifest", &o, err);

    memset(out, 0, sizeof(*out));
    if (rc == 0) {
        rc = check_schema(o, "manifest", err);
    }
    if (rc == 0) {
        rc = get_str(o, "mediaType", "manifest", &out->media_type, err);
    }
    if (rc == 0 && json_object_get(o, "config") == NULL) {
        rc = kiln__fail(err, KILN_EBADMSG, "manifest: no config");
    }
    if (rc == 0) {
        rc = parse_desc(json_object_get(o, "config"), "manifest: config",
                        &out->config, err);
    }
    if (rc == 0) {
        rc = parse_descs(o, "layers", "manifest", false, &out->layers,
                         &out->n_layers, err);
    }
    if (rc < 0) {
        kiln__oci_image_manifest_clear(out);
    }
    json_decref(o);
    return rc;
}

/* The optional string array member `key` of `o`. */
static int get_strv(json_t *o, const char *key, kiln_oci_strv_t *s,
                    kiln_error_t *err)
{
    json_t *a = json_object_get(o, key);

    s->v = NULL;
    s->n = 0;
    if (a == NULL || json_is_null(a)) {
        return 0;
    }
    if (!json_is_array(a)) {
        return kiln__fail(err, KILN_EBADMSG, "config: %s is not an array", key);
    }
    s->v = calloc(json_array_size(a) + 1, sizeof(char *));
    if (s->v == NULL) {
        return oom(err);
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v)) {
            return kiln__fail(err, KILN_EBADMSG,
                              "config: %s[%zu] is not a string", key, i);
        }
        s->v[i] = strndup(json_string_value(v), json_string_length(v));
        if (s->v[i] == NULL) {
            return oom(err);
        }
        s->n++;
    }
    return 0;
}

/* The Labels object of `o` as key/value pairs in *s. */
static int get_labels(json_t *o, kiln_oci_strv_t *s, kiln_error_t *err)
{
    json_t *l = json_object_get(o, "Labels"), *v;
    const char *k;

    if (l == NULL || json_is_null(l)) {
        return 0;
    }
    if (!json_is_object(l)) {
        return kiln__fail(err, KILN_EBADMSG, "config: Labels is not an object");
    }
    s->v = calloc(2 * json_object_size(l) + 1, sizeof(char *));
    if (s->v == NULL) {
        return oom(err);
    }
    json_object_foreach(l, k, v)
    {
        if (!json_is_string(v)) {
            return kiln__fail(err, KILN_EBADMSG,
                              "config: label %s is not a string", k);
        }
        s->v[s->n] = strdup(k);
        if (s->v[s->n] == NULL) {
            return oom(err);
        }
        s->n++;
        s->v[s->n] = strndup(json_string_value(v), json_string_length(v));
        if (s->v[s->n] == NULL) {
            return oom(err);
        }
        s->n++;
    }
    return 0;
}

/* The history array of `o` into c->history. */
static int get_history(json_t *o, kiln_oci_config_t *c, kiln_error_t *err)
{
    json_t *a = json_object_get(o, "history");
    int rc = 0;

    if (a == NULL || json_is_null(a) || json_array_size(a) == 0) {
        return json_is_array(a) || a == NULL || json_is_null(a)
                   ? 0
                   : kiln__fail(err, KILN_EBADMSG,
                                "config: history is not an array");
    }
    c->history = calloc(json_array_size(a), sizeof(*c->history));
    if (c->history == NULL) {
        return oom(err);
    }
    for (size_t i = 0; rc == 0 && i < json_array_size(a); i++) {
        json_t *h = json_array_get(a, i), *e;
        kiln_oci_history_t *dst = &c->history[i];
        if (!json_is_object(h)) {
            return kiln__fail(err, KILN_EBADMSG,
                              "config: history[%zu] is not an object", i);
        }
        c->n_history++;
        rc = get_str(h, "created", "config: history", &dst->created, err);
        if (rc == 0) {
            rc = get_str(h, "created_by", "config: history", &dst->created_by,
                         err);
        }
        if (rc == 0) {
            rc = get_str(h, "comment", "config: history", &dst->comment, err);
        }
        e = json_object_get(h, "empty_layer");
        dst->empty_layer = json_is_true(e);
    }
    return rc;
}

/* The members of the "config" object. */
static int parse_exec_config(json_t *cc, kiln_oci_config_t *c,
                             kiln_error_t *err)
{
    int rc;

    if (cc == NULL || json_is_null(cc)) {
        return 0;
    }
    if (!json_is_object(cc)) {
        return kiln__fail(err, KILN_EBADMSG, "config: config is not an object");
    }
    rc = get_strv(cc, "Env", &c->env, err);
    if (rc == 0) {
        rc = get_strv(cc, "Cmd", &c->cmd, err);
    }
    if (rc == 0) {
        rc = get_strv(cc, "Entrypoint", &c->entrypoint, err);
    }
    if (rc == 0) {
        rc = get_str(cc, "WorkingDir", "config", &c->working_dir, err);
    }
    if (rc == 0) {
        rc = get_str(cc, "User", "config", &c->user, err);
    }
    if (rc == 0) {
        rc = get_labels(cc, &c->labels, err);
    }
    return rc;
}

int kiln__oci_config_parse(const void *data, size_t len, kiln_oci_config_t *out,
                           kiln_error_t *err)
{
    json_t *o, *rootfs;
    int rc = load(data, len, "config", &o, err);

    memset(out, 0, sizeof(*out));
    if (rc == 0) {
        rc = get_str(o, "architecture", "config", &out->architecture, err);
    }
    if (rc == 0) {
        rc = get_str(o, "os", "config", &out->os, err);
    }
    if (rc == 0) {
        rc = get_str(o, "variant", "config", &out->variant, err);
    }
    if (rc == 0) {
        rc = get_str(o, "created", "config", &out->created, err);
    }
    if (rc == 0) {
        rc = parse_exec_config(json_object_get(o, "config"), out, err);
    }
    rootfs = rc == 0 ? json_object_get(o, "rootfs") : NULL;
    if (rc == 0 && rootfs != NULL && !json_is_object(rootfs)) {
        rc = kiln__fail(err, KILN_EBADMSG, "config: rootfs is not an object");
    }
    if (rc == 0 && rootfs != NULL) {
        rc = get_strv(rootfs, "diff_ids", &out->diff_ids, err);
    }
    for (size_t i = 0; rc == 0 && i < out->diff_ids.n; i++) {
        if (!kiln__digest_valid(out->diff_ids.v[i])) {
            rc = kiln__fail(err, KILN_EBADMSG,
                            "config: rootfs.diff_ids[%zu] is not a sha256 "
                            "digest",
                            i);
        }
    }
    if (rc == 0) {
        rc = get_history(o, out, err);
    }
    if (rc < 0) {
        kiln__oci_config_clear(out);
    }
    json_decref(o);
    return rc;
}

/* Writing. Every json_* constructor may return NULL on allocation failure;
 * the set_new helpers below turn that into `bad`. */
typedef struct jb {
    bool bad;
} jb_t;

/* Sets o[key] = v (taken); a NULL `v` or a failure marks `b` bad. */
static void set(jb_t *b, json_t *o, const char *key, json_t *v)
{
    if (v == NULL || json_object_set_new(o, key, v) != 0) {
        b->bad = true;
    }
}

/* Sets o[key] to the string `s` unless `s` is NULL. */
static void set_str(jb_t *b, json_t *o, const char *key, const char *s)
{
    if (s != NULL) {
        set(b, o, key, json_string(s));
    }
}

/* A new JSON array of the strings of `s` (NULL when out of memory). */
static json_t *strv_json(jb_t *b, const kiln_oci_strv_t *s)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < s->n; i++) {
        if (json_array_append_new(a, json_string(s->v[i])) != 0) {
            b->bad = true;
        }
    }
    return a;
}

/* A new JSON object for descriptor `d` (NULL when out of memory). */
static json_t *desc_json(jb_t *b, const kiln_oci_desc_t *d)
{
    json_t *o = json_object();

    if (o == NULL) {
        b->bad = true;
        return NULL;
    }
    set_str(b, o, "mediaType", d->media_type);
    set_str(b, o, "digest", d->digest);
    set(b, o, "size", json_integer(d->size));
    if (d->has_platform) {
        json_t *p = json_object();
        set(b, o, "platform", p);
        if (p != NULL) {
            set_str(b, p, "os", d->platform.os);
            set_str(b, p, "architecture", d->platform.arch);
            if (d->platform.variant[0]) {
                set_str(b, p, "variant", d->platform.variant);
            }
        }
    }
    if (d->ref_name != NULL) {
        json_t *a = json_object();
        set(b, o, "annotations", a);
        if (a != NULL) {
            set_str(b, a, KILN_OCI_REF_NAME, d->ref_name);
        }
    }
    return o;
}

/* Serialises `o` (taken) into *out. */
static int dump(jb_t *b, json_t *o, char **out, size_t *len, kiln_error_t *err)
{
    char *s = NULL;

    if (!b->bad && o != NULL) {
        s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_decref(o);
    if (s == NULL) {
        return oom(err);
    }
    *out = s;
    *len = strlen(s);
    return 0;
}

int kiln__oci_config_json(const kiln_oci_config_t *c, char **out, size_t *len,
                          kiln_error_t *err)
{
    jb_t b = {false};
    json_t *o = json_object(), *cc = json_object(), *rootfs = json_object();
    json_t *labels = json_object();

    set(&b, o, "config", cc);
    set(&b, o, "rootfs", rootfs);
    if (b.bad || labels == NULL) {
        json_decref(labels);
        json_decref(o);
        return oom(err);
    }
    set_str(&b, o, "architecture", c->architecture);
    set_str(&b, o, "os", c->os);
    if (c->variant != NULL && c->variant[0]) {
        set_str(&b, o, "variant", c->variant);
    }
    set_str(&b, o, "created", c->created);
    if (c->env.n > 0) {
        set(&b, cc, "Env", strv_json(&b, &c->env));
    }
    if (c->cmd.v != NULL) {
        set(&b, cc, "Cmd", strv_json(&b, &c->cmd));
    }
    if (c->entrypoint.v != NULL) {
        set(&b, cc, "Entrypoint", strv_json(&b, &c->entrypoint));
    }
    if (c->working_dir != NULL && c->working_dir[0]) {
        set_str(&b, cc, "WorkingDir", c->working_dir);
    }
    if (c->user != NULL && c->user[0]) {
        set_str(&b, cc, "User", c->user);
    }
    for (size_t i = 0; i + 1 < c->labels.n; i += 2) {
        set_str(&b, labels, c->labels.v[i], c->labels.v[i + 1]);
    }
    if (c->labels.n > 0) {
        set(&b, cc, "Labels", labels);
    } else {
        json_decref(labels);
    }
    set_str(&b, rootfs, "type", "layers");
    set(&b, rootfs, "diff_ids", strv_json(&b, &c->diff_ids));
    if (c->n_history > 0) {
        json_t *h = json_array();
        set(&b, o, "history", h);
        for (size_t i = 0; h != NULL && i < c->n_history; i++) {
            json_t *e = json_object();
            if (e == NULL || json_array_append_new(h, e) != 0) {
                b.bad = true;
                break;
            }
            set_str(&b, e, "created", c->history[i].created);
            set_str(&b, e, "created_by", c->history[i].created_by);
            set_str(&b, e, "comment", c->history[i].comment);
            if (c->history[i].empty_layer) {
                set(&b, e, "empty_layer", json_true());
            }
        }
    }
    return dump(&b, o, out, len, err);
}

int kiln__oci_image_manifest_json(const kiln_oci_desc_t *config,
                                  const kiln_oci_desc_t *layers,
                                  size_t n_layers, char **out, size_t *len,
                                  kiln_error_t *err)
{
    jb_t b = {false};
    json_t *o = json_object(), *a = json_array();

    set(&b, o, "layers", a);
    set(&b, o, "schemaVersion", json_integer(2));
    set_str(&b, o, "mediaType", KILN_OCI_MT_MANIFEST);
    set(&b, o, "config", desc_json(&b, config));
    for (size_t i = 0; a != NULL && i < n_layers; i++) {
        if (json_array_append_new(a, desc_json(&b, &layers[i])) != 0) {
            b.bad = true;
        }
    }
    return dump(&b, o, out, len, err);
}

int kiln__oci_index_json(const kiln_oci_desc_t *manifests, size_t n, char **out,
                         size_t *len, kiln_error_t *err)
{
    jb_t b = {false};
    json_t *o = json_object(), *a = json_array();

    set(&b, o, "manifests", a);
    set(&b, o, "schemaVersion", json_integer(2));
    set_str(&b, o, "mediaType", KILN_OCI_MT_INDEX);
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, desc_json(&b, &manifests[i])) != 0) {
            b.bad = true;
        }
    }
    return dump(&b, o, out, len, err);
}
