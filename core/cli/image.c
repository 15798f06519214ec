/*
 * kiln image inspect: what an image reference resolves to (the manifest's
 * digest for a platform, and the image config), as BuildKit's
 * ResolveImageConfig gives it to frontends, through
 * kiln_source_resolve().
 */
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CMD "image inspect"

static void inspect_usage(FILE *out)
{
    fprintf(out,
            "Usage: kiln image inspect [OPTIONS] REF\n"
            "\n"
            "Resolve an image and print, as one JSON object, the reference,\n"
            "the digest of its manifest for the platform, the platform and\n"
            "the image config (Env, WorkingDir, User, Entrypoint, Cmd, ...).\n"
            "REF is an image reference (busybox, 127.0.0.1:5000/app:v1,\n"
            "name@sha256:...) or a source identifier: docker-image://REF\n"
            "or oci-layout://NAME@DIGEST.\n"
            "\n"
            "Options:\n"
            "      --platform OS/ARCH[/VARIANT]\n"
            "                         The platform to choose from an index\n"
            "                         (default: this host's)\n"
            "      --resolve-mode MODE\n"
            "                         default, pull or local, as a build's\n"
            "                         image.resolvemode (default: default)\n"
            "      --oci-layout STORE=DIR\n"
            "                         The OCI image layout an oci-layout://\n"
            "                         REF is read from\n"
            "      --root DIR         Store root (default: $KILN_ROOT, else\n"
            "                         /var/lib/kiln as root, else\n"
            "                         $XDG_DATA_HOME/kiln)\n"
            "  -h, --help             Show this help and exit\n"
            "\n"
            "Exit status: 0 resolved, 1 it could not be (not found,\n"
            "unreachable, malformed), 2 a usage error.\n");
}

static int fail(kiln_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(kiln_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

static int oom(kiln_error_t *err)
{
    return fail(err, KILN_ENOMEM, "out of memory");
}

struct inspect_args {
    const char *ref;
    const char *platform;
    const char *mode;
    const char *root;
    const char *layout; /* "STORE=DIR" */
};

/* The identifier and attrs to resolve: as given for a source identifier,
 * else translated as `kiln source translate docker-image ref=REF`. */
static int source_of(const struct inspect_args *a, kiln_translated_t **t,
                     char **attrs, kiln_error_t *err)
{
    char ref[4096], mode[64];
    const char *params[3] = {ref, NULL, NULL};
    size_t n = 0;
    int rc;

    if (strncmp(a->ref, "oci-layout://", 13) == 0) {
        const char *eq = a->layout != NULL ? strchr(a->layout, '=') : NULL;

        *t = calloc(1, sizeof(**t));
        if (*t == NULL || ((*t)->identifier = strdup(a->ref)) == NULL) {
            return oom(err);
        }
        if (eq != NULL && asprintf(&attrs[n++], "oci.store=%.*s",
                                   (int)(eq - a->layout), a->layout) < 0) {
            return oom(err);
        }
        return 0;
    }
    snprintf(ref, sizeof(ref), "ref=%s",
             strncmp(a->ref, "docker-image://", 15) == 0 ? a->ref + 15
                                                         : a->ref);
    if (a->mode != NULL) {
        snprintf(mode, sizeof(mode), "resolvemode=%s", a->mode);
        params[1] = mode;
    }
    rc = kiln_source_translate(NULL, "docker-image", params, t, err);
    for (size_t i = 0; rc == 0 && i < (*t)->n_attrs && n < 7; i++) {
        if (asprintf(&attrs[n++], "%s=%s", (*t)->keys[i], (*t)->values[i]) <
            0) {
            return oom(err);
        }
    }
    return rc;
}

static const char *meta(const kiln_resolved_t *r, const char *key,
                        size_t *len)
{
    for (size_t i = 0; i < r->n_meta; i++) {
        if (strcmp(r->keys[i], key) == 0) {
            *len = r->lens[i];
            return r->values[i];
        }
    }
    return NULL;
}

static int print_result(const kiln_translated_t *t, const char *platform,
                        const kiln_resolved_t *r, kiln_error_t *err)
{
    const char *digest, *config;
    size_t dlen = 0, clen = 0;
    json_t *o, *cfg, *p;
    json_error_t jerr;
    char *text, plat[128] = "";

    digest = meta(r, "image.digest", &dlen);
    config = meta(r, "image.config", &clen);
    if (digest == NULL || config == NULL) {
        return fail(err, KILN_EINVAL,
                          "%s: the plugin gave no image digest or config",
                          t->identifier);
    }
    cfg = json_loadb(config, clen, 0, &jerr);
    if (cfg == NULL) {
        return fail(err, KILN_EBADMSG, "%s: image config: %s",
                          t->identifier, jerr.text);
    }
    if (platform != NULL) {
        snprintf(plat, sizeof(plat), "%s", platform);
    } else if (json_is_string(json_object_get(cfg, "os")) &&
               json_is_string(json_object_get(cfg, "architecture"))) {
        snprintf(plat, sizeof(plat), "%s/%s%s%s",
                 json_string_value(json_object_get(cfg, "os")),
                 json_string_value(json_object_get(cfg, "architecture")),
                 json_is_string(json_object_get(cfg, "variant")) ? "/" : "",
                 json_is_string(json_object_get(cfg, "variant"))
                     ? json_string_value(json_object_get(cfg, "variant"))
                     : "");
    }
    o = json_object();
    p = json_stringn(digest, dlen);
    json_object_set_new(o, "ref",
                        json_string(strstr(t->identifier, "://") + 3));
    json_object_set_new(o, "identifier", json_string(t->identifier));
    json_object_set_new(o, "digest", p);
    json_object_set_new(o, "platform", json_string(plat));
    json_object_set_new(o, "config", cfg);
    text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL) {
        return oom(err);
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static int inspect(const struct inspect_args *a)
{
    kiln_solve_options_t ctx = KILN_SOLVE_OPTIONS_INIT;
    const char *layouts[2] = {a->layout, NULL};
    kiln_translated_t *t = NULL;
    kiln_resolved_t *r = NULL;
    kiln_engine_t *e = NULL;
    kiln_error_t err = {0};
    char *attrs[8] = {0};
    int rc = source_of(a, &t, attrs, &err);

    if (rc < 0) {
        kiln_translated_free(t);
        for (size_t i = 0; i < 8; i++) {
            free(attrs[i]);
        }
        return kiln_cli_error(&err);
    }
    if (kiln_cli_open_engine(a->root, 0, KILN_LOG_WARN, &e) != 0) {
        rc = KILN_CLI_FAILURE;
    } else {
        ctx.oci_layouts = a->layout != NULL ? layouts : NULL;
        rc = kiln_source_resolve(e, t->identifier, (const char **)attrs,
                                 a->platform, &ctx, &r, &err);
        if (rc == 0) {
            rc = print_result(t, a->platform, r, &err);
        }
        rc = rc < 0 ? kiln_cli_error(&err) : 0;
    }
    kiln_resolved_free(r);
    kiln_engine_free(e);
    kiln_translated_free(t);
    for (size_t i = 0; i < 8; i++) {
        free(attrs[i]);
    }
    return rc;
}

static int image_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"platform", required_argument, NULL, 'P'},
        {"resolve-mode", required_argument, NULL, 'm'},
        {"oci-layout", required_argument, NULL, 'O'},
        {"root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct inspect_args a = {0};
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'P':
            a.platform = optarg;
            break;
        case 'm':
            a.mode = optarg;
            break;
        case 'O':
            if (a.layout != NULL || strchr(optarg, '=') == NULL ||
                optarg[0] == '=' || strchr(optarg, '=')[1] == '\0') {
                return kiln_cli_usage_error(
                    CMD, "--oci-layout wants one STORE=DIR, not '%s'",
                    optarg);
            }
            a.layout = optarg;
            break;
        case 'r':
            a.root = optarg;
            break;
        case 'h':
            inspect_usage(stdout);
            return 0;
        default:
            return kiln_cli_bad_option(CMD, c, argv);
        }
    }
    if (argc - optind != 1) {
        return kiln_cli_usage_error(CMD, argc - optind == 0
                                             ? "an image reference is needed"
                                             : "one image reference, please");
    }
    a.ref = argv[optind];
    return inspect(&a);
}

static void image_usage(FILE *out)
{
    fprintf(out, "Usage: kiln image COMMAND [ARGS...]\n"
                 "\n"
                 "Commands:\n"
                 "  inspect REF    Resolve an image: its digest and config\n"
                 "\n"
                 "Run 'kiln image inspect --help' for more.\n");
}

int kiln_cli_image(int argc, char **argv)
{
    if (argc < 2) {
        image_usage(stderr);
        return KILN_CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        image_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "inspect") == 0) {
        return image_inspect(argc - 1, argv + 1);
    }
    return kiln_cli_usage_error("image", "unknown command '%s'", argv[1]);
}
