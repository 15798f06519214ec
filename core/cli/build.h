/* Pieces of `kiln build` shared by its files. */
#ifndef KILN_CLI_BUILD_H
#define KILN_CLI_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

/* A parsed --output. */
struct kiln_cli_output {
    kiln_output_type_t type; /* KILN_OUTPUT_NONE: not given */
    char *dest;              /* malloc'ed; "-" for standard output */
    bool to_stdout;          /* a tar stream on standard output */
};

/*
 * Parses an --output value into *o. Returns 0, or -1 with a message for
 * the user in `msg`; either way release *o with kiln_cli_output_free().
 */
int kiln_cli_parse_output(const char *spec, struct kiln_cli_output *o,
                          char *msg, size_t len);

void kiln_cli_output_free(struct kiln_cli_output *o);

#endif
