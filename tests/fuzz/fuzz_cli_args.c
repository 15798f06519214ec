/*
 * libFuzzer target for the kiln command's argument parsers: the --output
 * CSV spec, sizes (--keep-storage) and durations (--keep-duration). The
 * input is split at its first two NUL bytes into the three strings.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The real ones (main.c) print; the parsers under test only call them on
 * a usage error, which is a normal result here. */
int kiln_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    (void)cmd;
    (void)fmt;
    return KILN_CLI_USAGE;
}

int kiln_cli_error(const kiln_error_t *err)
{
    (void)err;
    return KILN_CLI_FAILURE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 3);
    const char *parts[3];
    struct kiln_cli_output out;
    char msg[512];
    uint64_t bytes;
    int64_t ns;
    size_t off = 0;

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    memset(text + size, 0, 3);
    for (int i = 0; i < 3; i++) {
        parts[i] = text + off;
        off += strlen(text + off) + 1;
        if (off > size) {
            off = size + 2;
        }
    }
    memset(&out, 0, sizeof(out));
    if (kiln_cli_parse_output(parts[0], &out, msg, sizeof(msg)) == 0 &&
        out.type != KILN_OUTPUT_LOCAL && out.type != KILN_OUTPUT_TAR) {
        abort(); /* a parsed spec always names an exporter */
    }
    kiln_cli_output_free(&out);
    (void)kiln_cli_parse_size(parts[1], &bytes);
    (void)kiln_cli_parse_duration(parts[2], &ns);
    free(text);
    return 0;
}
