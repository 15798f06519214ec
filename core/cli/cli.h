/* Shared pieces of the kiln command-line client. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <kiln/kiln.h>

/* Exit codes: 1 for a failed operation, 2 for a usage error. */
#define KILN_CLI_FAILURE 1
#define KILN_CLI_USAGE   2

struct kiln_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* Prints "kiln: <message>" and a pointer to --help; returns 2. */
int kiln_cli_usage_error(const char *cmd, const char *fmt, ...)
    KILN_PRINTF(2, 3);

/* Prints "kiln: error: <message>"; returns 1. */
int kiln_cli_error(const kiln_error_t *err);

int kiln_cli_debug(int argc, char **argv);

#endif
