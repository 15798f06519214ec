/* Shared pieces of the kiln command-line client. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include <errno.h>
#include <stdint.h>

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

/*
 * The usage error for what getopt_long() returned as `c` ('?' or ':', with
 * an optstring starting "+:"): an unknown option or a missing argument.
 * Returns 2.
 */
int kiln_cli_bad_option(const char *cmd, int c, char **argv);

/*
 * Opens an engine on `root` (NULL: the engine's default) with `jobs` ops
 * and processes at once (0: the engine's defaults) and diagnostics up to
 * `level`. Returns 0, or prints the error and returns 1.
 */
int kiln_cli_open_engine(const char *root, unsigned jobs,
                         kiln_log_level_t level, kiln_engine_t **out);

/* Formats `size` bytes as docker does: "0B", "512B", "1.234kB", "12.5MB"
 * (powers of 1000, four significant digits). */
void kiln_cli_format_size(uint64_t size, char *buf, size_t len);

/* Formats an age as docker does: "Less than a second", "5 minutes",
 * "About an hour", "3 days", ... */
void kiln_cli_format_age(int64_t ns, char *buf, size_t len);

/*
 * Parses a size: a number of bytes with an optional unit, B, kB, MB, GB,
 * TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), case
 * insensitive, "B" optional ("10G", "1.5GiB", "4096"). Returns 0 or
 * KILN_EINVAL (malformed, negative or over 2^64-1).
 */
int kiln_cli_parse_size(const char *s, uint64_t *out);

/*
 * Parses a duration as Go's time.ParseDuration does ("90s", "1h30m",
 * "1.5h", "250ms"), plus "d" (24h) and "w" (7d). A bare "0" is allowed.
 * Returns 0 or KILN_EINVAL (malformed, negative, or over 292 years).
 */
int kiln_cli_parse_duration(const char *s, int64_t *out_ns);

int kiln_cli_debug(int argc, char **argv);
int kiln_cli_build(int argc, char **argv);
int kiln_cli_du(int argc, char **argv);
int kiln_cli_prune(int argc, char **argv);
int kiln_cli_logs(int argc, char **argv);
int kiln_cli_cache(int argc, char **argv);
int kiln_cli_plugins(int argc, char **argv);
int kiln_cli_source(int argc, char **argv);
int kiln_cli_image(int argc, char **argv);

#endif
