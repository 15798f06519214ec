/* kiln plugins, kiln source translate: the source plugins kiln loads. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void plugins_usage(FILE *out)
{
    fprintf(out,
            "Usage: kiln plugins [--json]\n"
            "\n"
            "List the source plugins kiln loads: from each directory of\n"
            "$KILN_PLUGIN_PATH (colon-separated), then the installed plugin\n"
            "directory. A plugin that cannot be loaded is an error naming\n"
            "its file.\n"
            "\n"
            "Options:\n"
            "      --json     One JSON object per plugin\n"
            "  -h, --help     Show this help and exit\n");
}

static int print_plugin(const kiln_plugin_info_t *p, void *ud)
{
    bool json = *(bool *)ud;

    if (json) {
        json_t *o = json_object(), *s = json_array();
        char *text;

        for (const char *const *x = p->schemes; *x != NULL; x++) {
            json_array_append_new(s, json_string(*x));
        }
        json_object_set_new(o, "name", json_string(p->name));
        json_object_set_new(o, "version", json_string(p->version));
        json_object_set_new(o, "schemes", s);
        json_object_set_new(o, "path", json_string(p->path));
        if (p->description != NULL) {
            json_object_set_new(o, "description",
                                json_string(p->description));
        }
        text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (text == NULL) {
            return -1;
        }
        printf("%s\n", text);
        free(text);
        return 0;
    }
    {
        char schemes[256] = "";
        size_t used = 0;

        for (const char *const *x = p->schemes; *x != NULL; x++) {
            int n = snprintf(schemes + used, sizeof(schemes) - used, "%s%s",
                             x == p->schemes ? "" : ",", *x);
            if (n < 0 || (size_t)n >= sizeof(schemes) - used) {
                break;
            }
            used += (size_t)n;
        }
        printf("%-14s %-9s %-16s %s\n", p->name,
               p->version != NULL ? p->version : "-", schemes, p->path);
    }
    return 0;
}

/*
 * --json and --help, from optind on, up to the first operand (`optstring`
 * "+:h" stops there, ":h" permutes). Returns -1 to go on, else the exit
 * status.
 */
static int parse_json_opts(const char *cmd, const char *optstring, int argc,
                           char **argv, void (*usage)(FILE *), bool *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, optstring, opts, NULL)) != -1) {
        if (c == 'j') {
            *json = true;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            return kiln_cli_bad_option(cmd, c, argv);
        }
    }
    return -1;
}

int kiln_cli_plugins(int argc, char **argv)
{
    kiln_error_t err = {0};
    bool json = false;
    int rc;

    opterr = 0;
    optind = 1;
    rc = parse_json_opts("plugins", ":h", argc, argv, plugins_usage, &json);
    if (rc >= 0) {
        return rc;
    }
    if (optind < argc) {
        return kiln_cli_usage_error("plugins", "unexpected argument '%s'",
                                    argv[optind]);
    }
    if (!json) {
        printf("%-14s %-9s %-16s %s\n", "NAME", "VERSION", "SCHEMES", "PATH");
    }
    if (kiln_plugins_list(NULL, print_plugin, &json, &err) < 0) {
        fflush(stdout);
        return kiln_cli_error(&err);
    }
    return 0;
}

static void source_usage(FILE *out)
{
    fprintf(out,
            "Usage: kiln source translate [--json] SCHEME [KEY=VALUE...]\n"
            "\n"
            "Print the SourceOp identifier and attrs that the plugin owning\n"
            "SCHEME makes of the parameters, exactly as BuildKit's Go client\n"
            "would write them. List values are comma-separated or a JSON\n"
            "array. Example:\n"
            "\n"
            "  kiln source translate local name=context include='*.go'\n"
            "\n"
            "Options:\n"
            "      --json     The op as JSON: {\"identifier\":...,"
            "\"attrs\":{...}}\n"
            "  -h, --help     Show this help and exit\n");
}

static int print_translated(const kiln_translated_t *t, bool json)
{
    json_t *o, *a;
    char *text;

    if (!json) {
        printf("identifier: %s\n", t->identifier);
        for (size_t i = 0; i < t->n_attrs; i++) {
            printf("%s: %s\n", t->keys[i], t->values[i]);
        }
        return 0;
    }
    o = json_object();
    a = json_object();
    json_object_set_new(o, "identifier", json_string(t->identifier));
    for (size_t i = 0; i < t->n_attrs; i++) {
        json_object_set_new(a, t->keys[i], json_string(t->values[i]));
    }
    if (t->n_attrs > 0) {
        json_object_set_new(o, "attrs", a);
    } else {
        json_decref(a);
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL) {
        kiln_error_t err = {KILN_ENOMEM, "out of memory"};
        return kiln_cli_error(&err);
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

int kiln_cli_source(int argc, char **argv)
{
    kiln_translated_t *t = NULL;
    kiln_error_t err = {0};
    bool json = false;
    int rc;

    opterr = 0;
    optind = 1;
    /* '+': parameters after the scheme may start with '-'. */
    rc = parse_json_opts("source", "+:h", argc, argv, source_usage, &json);
    if (rc >= 0) {
        return rc;
    }
    if (optind == argc || strcmp(argv[optind], "translate") != 0) {
        return kiln_cli_usage_error(
            "source", optind == argc ? "which subcommand? (translate)"
                                     : "unknown subcommand '%s' (translate)",
            optind < argc ? argv[optind] : "");
    }
    optind++;
    rc = parse_json_opts("source", "+:h", argc, argv, source_usage, &json);
    if (rc >= 0) {
        return rc;
    }
    if (optind == argc) {
        return kiln_cli_usage_error("source", "which scheme? (see 'kiln "
                                              "plugins')");
    }
    rc = kiln_source_translate(NULL, argv[optind],
                               (const char *const *)argv + optind + 1, &t,
                               &err);
    if (rc < 0) {
        return kiln_cli_error(&err);
    }
    rc = print_translated(t, json);
    kiln_translated_free(t);
    return rc;
}
