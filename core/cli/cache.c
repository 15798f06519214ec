/* kiln cache ls: the records of an exported build cache. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define CMD "cache"

/* Hex digits of a record's digest in the table. */
#define DIGITS 12

struct ls_state {
    bool json;
    json_t *all;
    size_t n, with;
};

static void cache_usage(FILE *out)
{
    fprintf(out,
            "Usage: kiln cache ls [--json] SRC\n"
            "\n"
            "List the records of an exported build cache (what --export-cache\n"
            "wrote, by kiln or BuildKit): digest, the layers and bytes of its\n"
            "newest result, when that was made, and the vertex it came from.\n"
            "Records without layers only link others to their inputs. Only\n"
            "the cache's manifest and config are read.\n"
            "\n"
            "SRC is what --import-cache takes (type=local,src=DIR or\n"
            "type=registry,ref=HOST/REPO[:TAG]), or short: a directory, or\n"
            "a registry ref.\n"
            "\n"
            "Options:\n"
            "      --json         One JSON array of records\n"
            "  -h, --help         Show this help and exit\n");
}

/* Prints `s` with control characters as spaces. */
static void put_clean(const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
    }
}

static int on_record(const kiln_cache_record_t *r, void *ud)
{
    struct ls_state *st = ud;
    const char *hex = strchr(r->digest, ':');
    char size[32];

    st->n++;
    st->with += r->n_results > 0;
    if (st->json) {
        json_t *o = json_pack("{s:s, s:s?, s:I, s:I, s:I, s:I, s:s?}",
                              "digest", r->digest, "description",
                              r->description, "size", (json_int_t)r->size,
                              "layers", (json_int_t)r->n_layers, "results",
                              (json_int_t)r->n_results, "inputs",
                              (json_int_t)r->n_inputs, "created", r->created);
        return o != NULL && json_array_append_new(st->all, o) == 0 ? 0 : -1;
    }
    if (r->n_results > 0) {
        kiln_cli_format_size(r->size, size, sizeof(size));
    } else {
        snprintf(size, sizeof(size), "-");
    }
    printf("%-*.*s %6zu %10s  %-30s ", DIGITS, DIGITS,
           hex != NULL ? hex + 1 : r->digest, r->n_layers, size,
           r->created != NULL ? r->created : "-");
    put_clean(r->description != NULL ? r->description : "-");
    putchar('\n');
    return 0;
}

/* A directory or a ref is short for the spec. */
static char *spec_of(const char *src)
{
    struct stat st;
    char *s = NULL;

    if (strstr(src, "type=") != NULL) {
        return strdup(src);
    }
    if (stat(src, &st) == 0 && S_ISDIR(st.st_mode)) {
        return asprintf(&s, "type=local,src=%s", src) < 0 ? NULL : s;
    }
    return asprintf(&s, "type=registry,ref=%s", src) < 0 ? NULL : s;
}

static int cache_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ls_state st = {0};
    kiln_error_t err = {0};
    char *spec;
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        if (c == 'J') {
            st.json = true;
        } else if (c == 'h') {
            cache_usage(stdout);
            return 0;
        } else {
            return kiln_cli_bad_option(CMD, c, argv);
        }
    }
    if (argc - optind != 1) {
        return kiln_cli_usage_error(CMD, "cache ls wants one SRC");
    }
    if ((spec = spec_of(argv[optind])) == NULL ||
        (st.json && (st.all = json_array()) == NULL)) {
        free(spec);
        err.code = KILN_ENOMEM;
        snprintf(err.message, sizeof(err.message), "out of memory");
        return kiln_cli_error(&err);
    }
    if (!st.json) {
        printf("%-*s %6s %10s  %-30s %s\n", DIGITS, "DIGEST", "LAYERS", "SIZE",
               "CREATED", "DESCRIPTION");
    }
    rc = kiln_cache_list(spec, on_record, &st, &err);
    free(spec);
    if (rc == 0 && st.json) {
        rc = json_dumpf(st.all, stdout, JSON_INDENT(2)) == 0 ? 0 : -1;
        putchar('\n');
    } else if (rc == 0) {
        printf("%zu records, %zu with layers\n", st.n, st.with);
    }
    json_decref(st.all);
    if (rc < 0 && err.message[0] == '\0') {
        err.code = KILN_EIO;
        snprintf(err.message, sizeof(err.message), "writing the list failed");
    }
    return rc < 0 ? kiln_cli_error(&err) : 0;
}

int kiln_cli_cache(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "ls") == 0) {
        return cache_ls(argc - 1, argv + 1);
    }
    if (argc >= 2 &&
        (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        cache_usage(stdout);
        return 0;
    }
    return kiln_cli_usage_error(CMD, argc < 2 ? "cache wants a subcommand (ls)"
                                              : "unknown subcommand '%s'",
                                argc < 2 ? "" : argv[1]);
}
