/*
 * kiln: the command-line client. A thin layer over libkiln's public API.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/kiln.h>

#include "cli.h"

static const struct kiln_cli_command commands[] = {
    {"build", "Build an LLB definition and export its result", kiln_cli_build},
    {"du", "Show the disk usage of the build cache", kiln_cli_du},
    {"prune", "Remove build cache records", kiln_cli_prune},
    {"logs", "Print the stored output of a vertex", kiln_cli_logs},
    {"cache", "List the records of an exported build cache (ls)",
     kiln_cli_cache},
    {"plugins", "List the source plugins kiln loads", kiln_cli_plugins},
    {"source", "Translate source parameters (translate)", kiln_cli_source},
    {"image", "Resolve an image's digest and config (inspect)",
     kiln_cli_image},
    {"debug", "Inspect definitions (dump-llb)", kiln_cli_debug},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: kiln [OPTIONS] COMMAND [ARGS...]\n"
                 "\n"
                 "kiln runs build graphs in BuildKit's LLB format.\n"
                 "\n"
                 "Options:\n"
                 "  -h, --help       Show this help and exit\n"
                 "  -V, --version    Show the version and exit\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\nRun 'kiln COMMAND --help' for more on a command.\n");
}

int kiln_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kiln: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'kiln %s%s--help' for more information.\n",
            cmd ? cmd : "", cmd ? " " : "");
    return KILN_CLI_USAGE;
}

int kiln_cli_error(const kiln_error_t *err)
{
    fprintf(stderr, "kiln: error: %s\n", err->message);
    return KILN_CLI_FAILURE;
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        usage(stderr);
        return KILN_CLI_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("kiln %s\n", kiln_version());
        return 0;
    }
    if (cmd[0] == '-') {
        return kiln_cli_usage_error(NULL, "unknown option '%s'", cmd);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    return kiln_cli_usage_error(NULL, "unknown command '%s'", cmd);
}
