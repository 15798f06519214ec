/* kiln logs: the complete stored output of one vertex. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

#define CMD "logs"

static void logs_usage(FILE *out)
{
    fprintf(out,
            "Usage: kiln logs [OPTIONS] VERTEX\n"
            "\n"
            "Print the complete output (standard output and standard error,\n"
            "as it was written, never clipped) that a vertex wrote when it\n"
            "ran, from the store. VERTEX is a digest prefix of at least 4 hex\n"
            "digits ('sha256:' optional) or a vertex's name, as 'kiln build'\n"
            "shows it.\n"
            "\n"
            "Options:\n"
            "      --root DIR     Store root (default: $KILN_ROOT, else\n"
            "                     /var/lib/kiln as root, else\n"
            "                     $XDG_DATA_HOME/kiln)\n"
            "  -h, --help         Show this help and exit\n");
}

int kiln_cli_logs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_engine_t *engine = NULL;
    kiln_error_t err = {0};
    const char *root = NULL;
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'r') {
            root = optarg;
        } else if (c == 'h') {
            logs_usage(stdout);
            return 0;
        } else {
            return kiln_cli_bad_option(CMD, c, argv);
        }
    }
    if (optind == argc) {
        return kiln_cli_usage_error(CMD, "which vertex? Give a digest prefix "
                                         "or a name");
    }
    if (argc - optind > 1) {
        return kiln_cli_usage_error(
            CMD, "too many arguments (starting at '%s')", argv[optind + 1]);
    }
    rc = kiln_cli_open_engine(root, 0, KILN_LOG_WARN, &engine);
    if (rc != 0) {
        return rc;
    }
    rc = kiln_engine_logs(engine, argv[optind], STDOUT_FILENO, &err);
    kiln_engine_free(engine);
    return rc < 0 ? kiln_cli_error(&err) : 0;
}
