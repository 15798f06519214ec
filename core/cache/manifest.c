/* The manifest or index around a cache config: see manifest.h. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/manifest.h"
#include "oci/layout.h"
#include "util/gojson.h"

void kiln__cache_manifest_clear(kiln__cache_manifest_t *m)
{
    for (size_t i = 0; i < m->n_layers; i++) {
        free(m->layers[i].media_type);
    }
    free(m->layers);
    memset(m, 0, sizeof(*m));
}

/* One descriptor of `arr`[i]: into the config slot or a layer slot. */
static int take_desc(kiln__cache_manifest_t *m, json_t *d, const char *where,
                     size_t i, kiln_error_t *err)
{
    json_t *mt = json_object_get(d, "mediaType");
    json_t *dg = json_object_get(d, "digest");
    json_t *sz = json_object_get(d, "size");
    json_t *ann = json_object_get(d, "annotations");
    kiln__cc_layer_t *l;

    if (!json_is_object(d) || !json_is_string(mt) || !json_is_string(dg) ||
        !kiln__digest_valid(json_string_value(dg)) || !json_is_integer(sz) ||
        json_integer_value(sz) < 0) {
        return kiln__fail(err, KILN_EBADMSG,
                          "cache manifest: %s[%zu]: not a descriptor with a "
                          "mediaType, a sha256 digest and a size",
                          where, i);
    }
    if (strcmp(json_string_value(mt), KILN_CC_MEDIA_TYPE) == 0) {
        snprintf(m->config_digest, sizeof(m->config_digest), "%s",
                 json_string_value(dg));
        m->config_size = json_integer_value(sz);
        return 0;
    }
    l = &m->layers[m->n_layers];
    memset(l, 0, sizeof(*l));
    snprintf(l->blob, sizeof(l->blob), "%s", json_string_value(dg));
    l->size = json_integer_value(sz);
    l->media_type = strdup(json_string_value(mt));
    if (l->media_type == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    m->n_layers++;
    if (json_is_object(ann)) {
        json_t *c = json_object_get(ann, KILN_CACHE_ANN_CREATED);
        json_t *u = json_object_get(ann, KILN_CACHE_ANN_DIFF_ID);
        if (json_is_string(c) && json_string_length(c) < KILN_CC_TIME_MAX) {
            snprintf(l->created, sizeof(l->created), "%s",
                     json_string_value(c));
        }
        if (json_is_string(u) && kiln__digest_valid(json_string_value(u))) {
            snprintf(l->diff_id, sizeof(l->diff_id), "%s",
                     json_string_value(u));
        }
    }
    return 0;
}

int kiln__cache_manifest_parse(const void *data, size_t len,
                               kiln__cache_manifest_t *out, kiln_error_t *err)
{
    json_error_t je;
    json_t *root, *arr = NULL, *cfg = NULL;
    const char *where = "manifests";
    size_t i;
    json_t *d;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (len > KILN_CC_MAX_BYTES) {
        return kiln__fail(err, KILN_E2BIG,
                          "cache manifest: %zu bytes, more than the %u "
                          "allowed",
                          len, KILN_CC_MAX_BYTES);
    }
    root = json_loadb(data, len, 0, &je);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return kiln__fail(err, KILN_EBADMSG,
                          "cache manifest: not a JSON object");
    }
    if (json_is_array(json_object_get(root, "manifests"))) {
        arr = json_object_get(root, "manifests");
    } else if (json_is_object(json_object_get(root, "config"))) {
        arr = json_object_get(root, "layers");
        cfg = json_object_get(root, "config");
        where = "layers";
        if (arr != NULL && !json_is_array(arr)) {
            rc = kiln__fail(err, KILN_EBADMSG,
                            "cache manifest: layers is not an array");
        }
    } else {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "cache manifest: neither an index (manifests) nor "
                        "an image manifest (config)");
    }
    if (rc == 0) {
        out->layers = calloc(json_array_size(arr) + 1, sizeof(*out->layers));
        rc = out->layers != NULL ? 0
                                 : kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    if (rc == 0 && cfg != NULL) {
        rc = take_desc(out, cfg, "config", 0, err);
    }
    json_array_foreach(arr, i, d)
    {
        if (rc == 0) {
            rc = take_desc(out, d, where, i, err);
        }
    }
    if (rc == 0 && out->config_digest[0] == '\0') {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "cache manifest: no %s config: not a build cache",
                        KILN_CC_MEDIA_TYPE);
    }
    json_decref(root);
    if (rc < 0) {
        kiln__cache_manifest_clear(out);
    }
    return rc;
}

int kiln__cache_manifest_attach(const kiln__cache_manifest_t *m,
                                kiln__cc_t *cc, kiln_error_t *err)
{
    for (size_t i = 0; i < cc->n_layers; i++) {
        kiln__cc_layer_t *l = &cc->layers[i];

        for (size_t k = 0; k < m->n_layers; k++) {
            const kiln__cc_layer_t *d = &m->layers[k];

            if (strcmp(d->blob, l->blob) != 0) {
                continue;
            }
            free(l->media_type);
            l->media_type = strdup(d->media_type);
            if (l->media_type == NULL) {
                return kiln__fail(err, KILN_ENOMEM, "out of memory");
            }
            l->size = d->size;
            memcpy(l->diff_id, d->diff_id, sizeof(l->diff_id));
            memcpy(l->created, d->created, sizeof(l->created));
            break;
        }
    }
    return 0;
}

/* Docker's name for an OCI layer media type (zstd has none). */
static const char *docker_mt(const char *mt)
{
    if (strcmp(mt, KILN_OCI_MT_LAYER_GZ) == 0) {
        return KILN_DOCKER_MT_LAYER_GZ;
    }
    if (strcmp(mt, KILN_OCI_MT_LAYER) == 0) {
        return "application/vnd.docker.image.rootfs.diff.tar";
    }
    return mt;
}

/* A quoted JSON string: media types and times come from manifests read
 * from registries, so they are escaped, never pasted. */
static void put_q(kiln__buf_t *b, const char *s)
{
    kiln__gojson_escape(b, s, strlen(s), 0);
}

static void put_desc(kiln__buf_t *b, const char *mt, const char *digest,
                     int64_t size, const char *created, const char *diff_id)
{
    kiln__buf_puts(b, "{\"mediaType\":");
    put_q(b, mt);
    kiln__buf_puts(b, ",\"digest\":");
    put_q(b, digest);
    kiln__buf_printf(b, ",\"size\":%lld", (long long)size);
    if ((created != NULL && created[0]) || (diff_id != NULL && diff_id[0])) {
        const char *sep = "";
        kiln__buf_puts(b, ",\"annotations\":{");
        if (created != NULL && created[0]) {
            kiln__buf_printf(b, "\"%s\":", KILN_CACHE_ANN_CREATED);
            put_q(b, created);
            sep = ",";
        }
        if (diff_id != NULL && diff_id[0]) {
            kiln__buf_printf(b, "%s\"%s\":", sep, KILN_CACHE_ANN_DIFF_ID);
            put_q(b, diff_id);
        }
        kiln__buf_putc(b, '}');
    }
    kiln__buf_putc(b, '}');
}

int kiln__cache_manifest_write(const kiln__cc_t *cc, const char *config_digest,
                               int64_t config_size, bool image_manifest,
                               bool oci, char **out, size_t *len,
                               const char **mt, kiln_error_t *err)
{
    kiln__buf_t b = KILN_BUF_INIT;
    bool first = true;

    if (image_manifest) {
        *mt = KILN_OCI_MT_MANIFEST;
        kiln__buf_printf(&b, "{\"schemaVersion\":2,\"mediaType\":\"%s\","
                             "\"config\":",
                         *mt);
        put_desc(&b, KILN_CC_MEDIA_TYPE, config_digest, config_size, NULL,
                 NULL);
        kiln__buf_puts(&b, ",\"layers\":[");
    } else {
        *mt = oci ? KILN_OCI_MT_INDEX : KILN_DOCKER_MT_LIST;
        kiln__buf_printf(&b, "{\"schemaVersion\":2,\"mediaType\":\"%s\","
                             "\"manifests\":[",
                         *mt);
    }
    for (size_t i = 0; i < cc->n_layers; i++) {
        const kiln__cc_layer_t *l = &cc->layers[i];
        bool seen = false;

        for (size_t k = 0; k < i && !seen; k++) {
            seen = strcmp(cc->layers[k].blob, l->blob) == 0;
        }
        if (seen) {
            continue;
        }
        if (l->media_type == NULL || l->size < 0) {
            kiln__buf_free(&b);
            return kiln__fail(err, KILN_EINVAL,
                              "cache manifest: layer %s has no descriptor "
                              "(internal error)",
                              l->blob);
        }
        if (!first) {
            kiln__buf_putc(&b, ',');
        }
        first = false;
        put_desc(&b, oci ? l->media_type : docker_mt(l->media_type), l->blob,
                 l->size, l->created, l->diff_id);
    }
    if (!image_manifest) {
        if (!first) {
            kiln__buf_putc(&b, ',');
        }
        put_desc(&b, KILN_CC_MEDIA_TYPE, config_digest, config_size, NULL,
                 NULL);
    }
    kiln__buf_puts(&b, "]}");
    kiln__buf_putc(&b, '\0');
    if (!kiln__buf_ok(&b)) {
        kiln__buf_free(&b);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    *out = (char *)b.data;
    *len = b.len - 1;
    return 0;
}
