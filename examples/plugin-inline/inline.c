/*
 * kiln-inline: an example source plugin. `inline://NAME` is a small tree
 * of text files written in the definition itself, for generated
 * configuration, scripts or test fixtures:
 *
 *   kiln source translate inline name=cfg file.etc/app.conf='port = 80' \
 *       mode.bin/run=0755 file.bin/run='#!/bin/sh'
 *
 * gives identifier "inline://cfg" and attrs "inline.file.etc/app.conf",
 * "inline.file.bin/run" and "inline.mode.bin/run". Files default to mode
 * 0644; directories are created as needed (0755).
 *
 * It shows each hook of <kiln/plugin.h>: translate is pure, resolve pins
 * the content (no I/O: everything is in the attrs), fetch writes it. Build
 * it against an installed kiln with
 *
 *   cc -shared -fPIC -o kiln-inline.so inline.c \
 *       $(pkg-config --cflags kiln-plugin)
 *
 * and put its directory in KILN_PLUGIN_PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/plugin.h>

#define FILE_PREFIX "inline.file."
#define MODE_PREFIX "inline.mode."

static const kiln_host_t *host;

static int inline_init(const kiln_host_t *h, void **state)
{
    (void)state;
    if (!KILN_HOST_HAS(h, attr_value)) {
        return -ENOTSUP;
    }
    host = h;
    return 0;
}

/* A relative path with no "..", no empty or "." component, no leading /. */
static int check_path(kiln_job_t *job, const char *p)
{
    const char *c = p;

    if (*p == '\0' || *p == '/') {
        return host->fail(job, -EINVAL, "inline: bad path '%s' (relative, "
                                        "please)", p);
    }
    while (*c != '\0') {
        size_t n = strcspn(c, "/");

        if (n == 0 || (n == 1 && c[0] == '.') ||
            (n == 2 && c[0] == '.' && c[1] == '.')) {
            return host->fail(job, -EINVAL, "inline: bad path '%s'", p);
        }
        c += n + (c[n] == '/');
    }
    return 0;
}

static int parse_mode(kiln_job_t *job, const char *path, const char *s,
                      mode_t *out)
{
    char *end;
    unsigned long m = strtoul(s, &end, 8);

    if (*s == '\0' || *end != '\0' || m > 07777) {
        return host->fail(job, -EINVAL, "inline: mode of '%s': '%s' is not "
                                        "an octal mode",
                          path, s);
    }
    *out = (mode_t)m;
    return 0;
}

static int inline_translate(void *state, kiln_job_t *job, const char *scheme,
                            const kiln_attrs_t *params, char *ident,
                            size_t ident_size, kiln_attrs_t *attrs)
{
    const char *name = host->attr_get(params, "name");
    char key[4096];
    int rc = 0;

    (void)state;
    (void)scheme;
    if (name == NULL || name[0] == '\0') {
        return host->fail(job, -EINVAL, "inline: name=NAME is required");
    }
    for (size_t i = 0; rc == 0 && i < host->attr_count(params); i++) {
        const char *k = host->attr_key(params, i);
        const char *v = host->attr_value(params, i);
        mode_t m;

        if (strcmp(k, "name") == 0) {
            continue;
        }
        if (strncmp(k, "file.", 5) == 0 && (rc = check_path(job, k + 5)) == 0) {
            snprintf(key, sizeof(key), FILE_PREFIX "%s", k + 5);
            rc = host->attr_set(attrs, key, v);
        } else if (strncmp(k, "mode.", 5) == 0 &&
                   (rc = check_path(job, k + 5)) == 0 &&
                   (rc = parse_mode(job, k + 5, v, &m)) == 0) {
            snprintf(key, sizeof(key), MODE_PREFIX "%s", k + 5);
            rc = host->attr_set(attrs, key, v);
        } else if (rc == 0) {
            rc = host->fail(job, -EINVAL,
                            "inline: unknown parameter '%s' (name, "
                            "file.PATH, mode.PATH)",
                            k);
        }
    }
    if (rc == 0 && snprintf(ident, ident_size, "inline://%s", name) >=
                       (int)ident_size) {
        rc = host->fail(job, -ENAMETOOLONG, "inline: name too long");
    }
    return rc;
}

/* The pin: sha256 over every file's path, mode and content, in key order
 * (the host keeps attrs sorted), so equal trees pin equal. */
static int inline_resolve(void *state, kiln_job_t *job,
                          const kiln_source_t *src)
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int len = 0;
    char pin[7 + 64 + 1] = "sha256:";
    int rc = 0;

    (void)state;
    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return host->fail(job, -ENOMEM, "inline: out of memory");
    }
    for (size_t i = 0; rc == 0 && i < host->attr_count(src->attrs); i++) {
        const char *k = host->attr_key(src->attrs, i);
        const char *v = host->attr_value(src->attrs, i);

        if (strncmp(k, "inline.", 7) == 0) {
            /* Key and value with their NULs: no two trees hash alike. */
            EVP_DigestUpdate(ctx, k, strlen(k) + 1);
            EVP_DigestUpdate(ctx, v, strlen(v) + 1);
        }
    }
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++) {
        pin[7 + 2 * i] = hex[md[i] >> 4];
        pin[8 + 2 * i] = hex[md[i] & 15];
    }
    pin[71] = '\0';
    return host->set_pin(job, pin);
}

/* mkdir -p of the parents of dir/rel. */
static int make_parents(kiln_job_t *job, const char *dir, const char *rel)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, rel);

    if (n < 0 || (size_t)n >= sizeof(path)) {
        return host->fail(job, -ENAMETOOLONG, "inline: path too long");
    }
    for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL;
         p++) {
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            return host->fail(job, -errno, "inline: %s: %s", path,
                              strerror(errno));
        }
        *p = '/';
    }
    return 0;
}

static int write_file(kiln_job_t *job, const char *dir, const char *rel,
                      const char *data, mode_t mode)
{
    char path[4096];
    size_t len = strlen(data);
    int fd, rc = make_parents(job, dir, rel);

    if (rc < 0) {
        return rc;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd < 0) {
        return host->fail(job, -errno, "inline: %s: %s", rel, strerror(errno));
    }
    if (write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) < 0) {
        rc = host->fail(job, -EIO, "inline: writing %s: %s", rel,
                        strerror(errno));
    }
    close(fd);
    return rc;
}

static int inline_fetch(void *state, kiln_job_t *job, const kiln_source_t *src,
                        const char *dest_dir)
{
    int rc = 0;

    (void)state;
    for (size_t i = 0; rc == 0 && i < host->attr_count(src->attrs); i++) {
        const char *k = host->attr_key(src->attrs, i);
        const char *rel = k + strlen(FILE_PREFIX);
        char mode_key[4096];
        const char *ms;
        mode_t mode = 0644;

        if (strncmp(k, FILE_PREFIX, strlen(FILE_PREFIX)) != 0) {
            continue;
        }
        if (host->cancelled(job)) {
            return host->fail(job, -ECANCELED, "inline: canceled");
        }
        rc = check_path(job, rel);
        snprintf(mode_key, sizeof(mode_key), MODE_PREFIX "%s", rel);
        if (rc == 0 && (ms = host->attr_get(src->attrs, mode_key)) != NULL) {
            rc = parse_mode(job, rel, ms, &mode);
        }
        if (rc == 0) {
            rc = write_file(job, dest_dir, rel,
                            host->attr_value(src->attrs, i), mode);
        }
    }
    if (rc == 0) {
        host->log(job, KILN_PLUGIN_LOG_DEBUG, "wrote %s", src->identifier);
    }
    return rc;
}

static const char *const schemes[] = {"inline", NULL};

static const kiln_plugin_t inline_plugin = {
    KILN_PLUGIN_HEADER,
    .name = "inline",
    .version = "1.0.0",
    .description = "text files written in the definition (inline://NAME)",
    .schemes = schemes,
    .init = inline_init,
    .translate = inline_translate,
    .resolve = inline_resolve,
    .fetch = inline_fetch,
};

KILN_PLUGIN_DEFINE(inline_plugin)
