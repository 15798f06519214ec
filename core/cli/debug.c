/* kiln debug: inspection commands. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void dump_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: kiln debug dump-llb [OPTIONS] [FILE|-]\n"
        "\n"
        "Decode and validate an LLB definition (a marshaled pb.Definition,\n"
        "as 'buildctl build' reads it) and print one JSON object per op,\n"
        "as 'buildctl debug dump-llb' does. Reads standard input when FILE\n"
        "is '-' or missing.\n"
        "\n"
        "Options:\n"
        "      --dot        Print a Graphviz graph of the ops instead\n"
        "  -h, --help       Show this help and exit\n");
}

static int dump_llb(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dot", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    const char *path = "-";
    bool dot = false;
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dot = true;
            break;
        case 'h':
            dump_usage(stdout);
            return 0;
        default:
            return kiln_cli_usage_error("debug dump-llb", "unknown option '%s'",
                                        argv[optind - 1]);
        }
    }
    if (argc - optind > 1) {
        return kiln_cli_usage_error("debug dump-llb",
                                    "too many arguments (starting at '%s')",
                                    argv[optind + 1]);
    }
    if (optind < argc) {
        path = argv[optind];
    }
    rc = kiln_definition_load_file(path, &err, &def);
    if (rc == 0) {
        rc = dot ? kiln_definition_dump_dot(def, stdout, &err)
                 : kiln_definition_dump_json(def, stdout, &err);
    }
    kiln_definition_free(def);
    return rc < 0 ? kiln_cli_error(&err) : 0;
}

static void debug_usage(FILE *out)
{
    fprintf(out, "Usage: kiln debug COMMAND\n"
                 "\n"
                 "Commands:\n"
                 "  dump-llb    Print the ops of an LLB definition as JSON or "
                 "dot\n");
}

int kiln_cli_debug(int argc, char **argv)
{
    if (argc < 2) {
        debug_usage(stderr);
        return KILN_CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        debug_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "dump-llb") == 0) {
        return dump_llb(argc - 1, argv + 1);
    }
    return kiln_cli_usage_error("debug", "unknown debug command '%s'", argv[1]);
}
