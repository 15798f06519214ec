/*
 * The exec helper's spec: records of length-prefixed fields (spec.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/spec.h"

/* Fields per record kind; mounts carry all their fields, used or not. */
#define MOUNT_FIELDS 13

static void put_u32(kiln__buf_t *b, uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 24)};

    kiln__buf_append(b, le, sizeof(le));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

void kiln__exec_rec(kiln__buf_t *b, int tag, size_t n,
                    const void *const *fields, const size_t *lens)
{
    kiln__buf_putc(b, (uint8_t)tag);
    put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t len = lens != NULL ? lens[i] : strlen(fields[i]);

        put_u32(b, (uint32_t)len);
        kiln__buf_append(b, fields[i], len);
    }
}

int kiln__exec_rec_next(const uint8_t *data, size_t len, size_t *off,
                        kiln__exec_rec_t *rec, kiln_error_t *err)
{
    size_t at = *off;

    if (len - at < 5) {
        return kiln__fail(err, KILN_EBADMSG, "spec: record at %zu: truncated",
                          at);
    }
    rec->tag = data[at];
    rec->n = get_u32(data + at + 1);
    if (rec->n > KILN__EXEC_REC_MAX) {
        return kiln__fail(err, KILN_EBADMSG,
                          "spec: record at %zu: %zu fields (at most %d)", at,
                          rec->n, KILN__EXEC_REC_MAX);
    }
    at += 5;
    for (size_t i = 0; i < rec->n; i++) {
        uint32_t flen;

        if (len - at < 4 || (flen = get_u32(data + at)) > len - at - 4) {
            return kiln__fail(err, KILN_EBADMSG,
                              "spec: record at %zu: field %zu truncated", *off,
                              i);
        }
        rec->f[i] = data + at + 4;
        rec->len[i] = flen;
        at += 4 + flen;
    }
    *off = at;
    return 0;
}

/* ---- encoding ---- */

static void put_str(kiln__buf_t *b, int tag, const char *s)
{
    if (s != NULL) {
        kiln__exec_rec(b, tag, 1, (const void *const[]){s}, NULL);
    }
}

static void put_mount(kiln__buf_t *b, const kiln__exec_mount_t *m)
{
    char type[16], size[24], uid[16], gid[16], mode[16];
    const void *f[MOUNT_FIELDS];
    size_t lens[MOUNT_FIELDS];

    snprintf(type, sizeof(type), "%d", m->type);
    snprintf(size, sizeof(size), "%llu", (unsigned long long)m->size);
    snprintf(uid, sizeof(uid), "%u", m->uid);
    snprintf(gid, sizeof(gid), "%u", m->gid);
    snprintf(mode, sizeof(mode), "%u", m->mode);
    f[0] = type;
    f[1] = m->dest != NULL ? m->dest : "";
    f[2] = m->src != NULL ? m->src : "";
    f[3] = m->upper != NULL ? m->upper : "";
    f[4] = m->work != NULL ? m->work : "";
    f[5] = m->selector != NULL ? m->selector : "";
    f[6] = m->readonly ? "1" : "0";
    f[7] = m->stub_parents ? "1" : "0";
    f[8] = size;
    f[9] = uid;
    f[10] = gid;
    f[11] = mode;
    for (size_t i = 0; i < 12; i++) {
        lens[i] = strlen(f[i]);
    }
    f[12] = m->data != NULL ? (const void *)m->data : "";
    lens[12] = m->data != NULL ? m->len : 0;
    kiln__exec_rec(b, KILN__EXEC_MOUNT, MOUNT_FIELDS, f, lens);
}

void kiln__exec_spec_encode(const kiln__exec_spec_t *s, kiln__buf_t *b)
{
    for (size_t i = 0; i < s->n_args; i++) {
        put_str(b, KILN__EXEC_ARG, s->args[i]);
    }
    for (size_t i = 0; i < s->n_env; i++) {
        put_str(b, KILN__EXEC_ENV, s->env[i]);
    }
    put_str(b, KILN__EXEC_CWD, s->cwd);
    put_str(b, KILN__EXEC_USER, s->user);
    put_str(b, KILN__EXEC_HOSTNAME, s->hostname);
    put_str(b, KILN__EXEC_HOSTS, s->hosts);
    put_str(b, KILN__EXEC_RESOLV, s->resolv);
    put_str(b, KILN__EXEC_STAGING, s->staging);
    put_str(b, KILN__EXEC_NET, s->net_none ? "none" : "host");
    for (size_t i = 0; i < s->n_ulimits; i++) {
        char soft[24], hard[24];

        snprintf(soft, sizeof(soft), "%llu",
                 (unsigned long long)s->ulimits[i].soft);
        snprintf(hard, sizeof(hard), "%llu",
                 (unsigned long long)s->ulimits[i].hard);
        kiln__exec_rec(b, KILN__EXEC_ULIMIT, 3,
                       (const void *const[]){s->ulimits[i].name, soft, hard},
                       NULL);
    }
    for (size_t i = 0; i < s->n_mounts; i++) {
        put_mount(b, &s->mounts[i]);
    }
}

/* ---- decoding ---- */

/* A field as a C string: no NUL inside. */
static int field_str(const kiln__exec_rec_t *r, size_t i, size_t at, char **out,
                     kiln_error_t *err)
{
    if (memchr(r->f[i], '\0', r->len[i]) != NULL) {
        return kiln__fail(err, KILN_EBADMSG,
                          "spec: record at %zu: field %zu holds a NUL", at, i);
    }
    /* Not strndup(): the field is not NUL-terminated, and a strict string
     * check would read past it. */
    *out = malloc(r->len[i] + 1);
    if (*out == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    memcpy(*out, r->f[i], r->len[i]);
    (*out)[r->len[i]] = '\0';
    return 0;
}

static int field_num(const kiln__exec_rec_t *r, size_t i, size_t at,
                     uint64_t max, uint64_t *out, kiln_error_t *err)
{
    uint64_t v = 0;

    if (r->len[i] == 0 || r->len[i] > 20) {
        goto bad;
    }
    for (size_t k = 0; k < r->len[i]; k++) {
        unsigned d = (unsigned)r->f[i][k] - '0';

        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            goto bad;
        }
        v = v * 10 + d;
    }
    if (v > max) {
        goto bad;
    }
    *out = v;
    return 0;
bad:
    return kiln__fail(err, KILN_EBADMSG,
                      "spec: record at %zu: field %zu is not a number up to "
                      "%llu",
                      at, i, (unsigned long long)max);
}

static int push_str(char ***v, size_t *n, char *s, kiln_error_t *err)
{
    char **nv = realloc(*v, (*n + 2) * sizeof(*nv));

    if (nv == NULL) {
        free(s);
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    nv[(*n)++] = s;
    nv[*n] = NULL;
    *v = nv;
    return 0;
}

static int decode_mount(const kiln__exec_rec_t *r, size_t at,
                        kiln__exec_spec_t *s, kiln_error_t *err)
{
    kiln__exec_mount_t *v = realloc(s->mounts, (s->n_mounts + 1) * sizeof(*v));
    kiln__exec_mount_t *m;
    uint64_t type = 0, ro = 0, sp = 0, uid = 0, gid = 0, mode = 0;
    int rc;

    if (v == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    s->mounts = v;
    m = memset(&v[s->n_mounts++], 0, sizeof(*m));
    rc = field_num(r, 0, at, KILN__EXEC_MNT_SOCKET, &type, err);
    if (rc == 0 && type == 0) {
        rc = kiln__fail(err, KILN_EBADMSG, "spec: record at %zu: mount type 0",
                        at);
    }
    m->type = (int)type;
    char **strs[] = {&m->dest, &m->src, &m->upper, &m->work, &m->selector};
    for (size_t i = 0; rc == 0 && i < KILN_ARRAY_SIZE(strs); i++) {
        rc = field_str(r, i + 1, at, strs[i], err);
    }
    if (rc == 0) {
        rc = field_num(r, 6, at, 1, &ro, err);
    }
    if (rc == 0) {
        rc = field_num(r, 7, at, 1, &sp, err);
    }
    if (rc == 0) {
        rc = field_num(r, 8, at, UINT64_MAX, &m->size, err);
    }
    if (rc == 0) {
        rc = field_num(r, 9, at, UINT32_MAX, &uid, err);
    }
    if (rc == 0) {
        rc = field_num(r, 10, at, UINT32_MAX, &gid, err);
    }
    if (rc == 0) {
        rc = field_num(r, 11, at, 07777, &mode, err);
    }
    if (rc == 0 && m->dest[0] != '/') {
        rc = kiln__fail(err, KILN_EBADMSG,
                        "spec: record at %zu: mount destination '%s' is not "
                        "absolute",
                        at, m->dest);
    }
    if (rc == 0 && r->len[12] > 0) {
        m->data = malloc(r->len[12]);
        if (m->data == NULL) {
            return kiln__fail(err, KILN_ENOMEM, "out of memory");
        }
        memcpy(m->data, r->f[12], r->len[12]);
        m->len = r->len[12];
    }
    m->readonly = ro != 0;
    m->stub_parents = sp != 0;
    m->uid = (uint32_t)uid;
    m->gid = (uint32_t)gid;
    m->mode = (uint32_t)mode;
    return rc;
}

static int decode_ulimit(const kiln__exec_rec_t *r, size_t at,
                         kiln__exec_spec_t *s, kiln_error_t *err)
{
    kiln__exec_ulimit_t *v =
        realloc(s->ulimits, (s->n_ulimits + 1) * sizeof(*v));
    kiln__exec_ulimit_t *u;
    int rc;

    if (v == NULL) {
        return kiln__fail(err, KILN_ENOMEM, "out of memory");
    }
    s->ulimits = v;
    u = memset(&v[s->n_ulimits++], 0, sizeof(*u));
    rc = field_str(r, 0, at, &u->name, err);
    if (rc == 0) {
        rc = field_num(r, 1, at, UINT64_MAX, &u->soft, err);
    }
    if (rc == 0) {
        rc = field_num(r, 2, at, UINT64_MAX, &u->hard, err);
    }
    return rc;
}

static size_t fields_of(int tag)
{
    switch (tag) {
    case KILN__EXEC_ARG:
    case KILN__EXEC_ENV:
    case KILN__EXEC_CWD:
    case KILN__EXEC_USER:
    case KILN__EXEC_HOSTNAME:
    case KILN__EXEC_HOSTS:
    case KILN__EXEC_RESOLV:
    case KILN__EXEC_NET:
    case KILN__EXEC_STAGING:
        return 1;
    case KILN__EXEC_ULIMIT:
        return 3;
    case KILN__EXEC_MOUNT:
        return MOUNT_FIELDS;
    default:
        return 0;
    }
}

/* The single-string records: where each goes (NULL: a list). */
static char **single_slot(kiln__exec_spec_t *s, int tag)
{
    switch (tag) {
    case KILN__EXEC_CWD:
        return &s->cwd;
    case KILN__EXEC_USER:
        return &s->user;
    case KILN__EXEC_HOSTNAME:
        return &s->hostname;
    case KILN__EXEC_HOSTS:
        return &s->hosts;
    case KILN__EXEC_RESOLV:
        return &s->resolv;
    case KILN__EXEC_STAGING:
        return &s->staging;
    default:
        return NULL;
    }
}

static int decode_rec(const kiln__exec_rec_t *r, size_t at,
                      kiln__exec_spec_t *s, kiln_error_t *err)
{
    char **slot = single_slot(s, r->tag);
    char *str = NULL;
    int rc;

    if (fields_of(r->tag) == 0 || r->n != fields_of(r->tag)) {
        return kiln__fail(err, KILN_EBADMSG,
                          "spec: record at %zu: unknown tag 0x%02x or %zu "
                          "fields",
                          at, r->tag, r->n);
    }
    switch (r->tag) {
    case KILN__EXEC_MOUNT:
        return decode_mount(r, at, s, err);
    case KILN__EXEC_ULIMIT:
        return decode_ulimit(r, at, s, err);
    default:
        break;
    }
    rc = field_str(r, 0, at, &str, err);
    if (rc < 0) {
        return rc;
    }
    if (r->tag == KILN__EXEC_ARG) {
        return push_str(&s->args, &s->n_args, str, err);
    }
    if (r->tag == KILN__EXEC_ENV) {
        return push_str(&s->env, &s->n_env, str, err);
    }
    if (r->tag == KILN__EXEC_NET) {
        s->net_none = strcmp(str, "none") == 0;
        rc = s->net_none || strcmp(str, "host") == 0
                 ? 0
                 : kiln__fail(err, KILN_EBADMSG,
                              "spec: record at %zu: network '%s'", at, str);
        free(str);
        return rc;
    }
    free(*slot);
    *slot = str;
    return 0;
}

int kiln__exec_spec_decode(const uint8_t *data, size_t len,
                           kiln__exec_spec_t *s, kiln_error_t *err)
{
    size_t off = 0;
    int rc = 0;

    memset(s, 0, sizeof(*s));
    while (rc == 0 && off < len) {
        kiln__exec_rec_t r;
        size_t at = off;

        rc = kiln__exec_rec_next(data, len, &off, &r, err);
        if (rc == 0) {
            rc = decode_rec(&r, at, s, err);
        }
    }
    if (rc == 0 && s->n_args == 0) {
        rc = kiln__fail(err, KILN_EBADMSG, "spec: no command");
    }
    if (rc == 0 && (s->staging == NULL || s->staging[0] != '/')) {
        rc = kiln__fail(err, KILN_EBADMSG, "spec: no staging directory");
    }
    return rc;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void kiln__exec_spec_clear(kiln__exec_spec_t *s)
{
    free_strv(s->args, s->n_args);
    for (size_t i = 0; i < s->n_env; i++) {
        explicit_bzero(s->env[i], strlen(s->env[i])); /* secret env too */
    }
    free_strv(s->env, s->n_env);
    free(s->cwd);
    free(s->user);
    free(s->hostname);
    free(s->hosts);
    free(s->resolv);
    free(s->staging);
    for (size_t i = 0; i < s->n_mounts; i++) {
        kiln__exec_mount_t *m = &s->mounts[i];

        free(m->dest);
        free(m->src);
        free(m->upper);
        free(m->work);
        free(m->selector);
        if (m->data != NULL) {
            explicit_bzero(m->data, m->len);
        }
        free(m->data);
    }
    free(s->mounts);
    for (size_t i = 0; i < s->n_ulimits; i++) {
        free(s->ulimits[i].name);
    }
    free(s->ulimits);
    memset(s, 0, sizeof(*s));
}
