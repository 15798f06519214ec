/* Helpers shared by the kiln commands: options, engines, sizes, durations. */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

int kiln_cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";

    if (c == ':') {
        if (optopt != 0 && arg[0] == '-' && arg[1] != '-') {
            return kiln_cli_usage_error(cmd, "option '-%c' needs an argument",
                                        optopt);
        }
        return kiln_cli_usage_error(cmd, "option '%s' needs an argument", arg);
    }
    if (optopt != 0) {
        return kiln_cli_usage_error(cmd, "unknown option '-%c'", optopt);
    }
    return kiln_cli_usage_error(cmd, "unknown option '%s'", arg);
}

int kiln_cli_open_engine(const char *root, unsigned jobs,
                         kiln_log_level_t level, kiln_engine_t **out)
{
    kiln_engine_options_t opts = KILN_ENGINE_OPTIONS_INIT;
    kiln_error_t err = {0};

    opts.root = root;
    opts.jobs = jobs;
    opts.process_jobs = jobs;
    opts.log_level = level;
    if (kiln_engine_new(&opts, &err, out) < 0) {
        return kiln_cli_error(&err);
    }
    return 0;
}

void kiln_cli_format_size(uint64_t size, char *buf, size_t len)
{
    static const char *const units[] = {"B",  "kB", "MB", "GB",
                                        "TB", "PB", "EB"};
    double v = (double)size;
    size_t i = 0;

    while (v >= 1000.0 && i < sizeof(units) / sizeof(units[0]) - 1) {
        v /= 1000.0;
        i++;
    }
    snprintf(buf, len, "%.4g%s", v, units[i]);
}

void kiln_cli_format_age(int64_t ns, char *buf, size_t len)
{
    int64_t s = ns / 1000000000;
    int64_t m = s / 60;
    int64_t h = (ns + 1800000000000ll) / 3600000000000ll; /* rounded */

    if (s < 1) {
        snprintf(buf, len, "Less than a second");
    } else if (s == 1) {
        snprintf(buf, len, "1 second");
    } else if (s < 60) {
        snprintf(buf, len, "%lld seconds", (long long)s);
    } else if (m == 1) {
        snprintf(buf, len, "About a minute");
    } else if (m < 60) {
        snprintf(buf, len, "%lld minutes", (long long)m);
    } else if (h == 1) {
        snprintf(buf, len, "About an hour");
    } else if (h < 48) {
        snprintf(buf, len, "%lld hours", (long long)h);
    } else if (h < 24 * 7 * 2) {
        snprintf(buf, len, "%lld days", (long long)(h / 24));
    } else if (h < 24 * 30 * 2) {
        snprintf(buf, len, "%lld weeks", (long long)(h / 24 / 7));
    } else if (h < 24 * 365 * 2) {
        snprintf(buf, len, "%lld months", (long long)(h / 24 / 30));
    } else {
        snprintf(buf, len, "%lld years", (long long)(s / 3600 / 24 / 365));
    }
}

/* Multiplier of a size unit, case insensitive; 0 if unknown. */
static uint64_t size_unit(const char *u)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000ull},
        {"kb", 1000ull},
        {"m", 1000000ull},
        {"mb", 1000000ull},
        {"g", 1000000000ull},
        {"gb", 1000000000ull},
        {"t", 1000000000000ull},
        {"tb", 1000000000000ull},
        {"ki", 1ull << 10},
        {"kib", 1ull << 10},
        {"mi", 1ull << 20},
        {"mib", 1ull << 20},
        {"gi", 1ull << 30},
        {"gib", 1ull << 30},
        {"ti", 1ull << 40},
        {"tib", 1ull << 40},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(u, units[i].name) == 0) {
            return units[i].mult;
        }
    }
    return 0;
}

int kiln_cli_parse_size(const char *s, uint64_t *out)
{
    const char *p = s;
    bool fraction = false;
    uint64_t mult;

    while (isdigit((unsigned char)*p)) {
        p++;
    }
    if (*p == '.') {
        fraction = true;
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    if (p == s || (fraction && p == s + 1) || (mult = size_unit(p)) == 0) {
        return KILN_EINVAL;
    }
    if (!fraction) {
        unsigned long long v;
        errno = 0;
        v = strtoull(s, NULL, 10);
        if (errno != 0 || (v != 0 && mult > UINT64_MAX / v)) {
            return KILN_EINVAL;
        }
        *out = (uint64_t)v * mult;
        return 0;
    }
    long double v = strtold(s, NULL) * (long double)mult + 0.5L;
    if (!(v < 18446744073709551616.0L)) {
        return KILN_EINVAL;
    }
    *out = (uint64_t)v;
    return 0;
}

/* Nanoseconds in a duration unit; 0 if unknown. `len` bytes at `u`. */
static int64_t duration_unit(const char *u, size_t len)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000}, /* U+03BC Greek small letter mu */
        {"ms", 1000000},
        {"s", 1000000000ll},
        {"m", 60 * 1000000000ll},
        {"h", 3600 * 1000000000ll},
        {"d", 24 * 3600 * 1000000000ll},
        {"w", 7 * 24 * 3600 * 1000000000ll},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == len &&
            memcmp(u, units[i].name, len) == 0) {
            return units[i].ns;
        }
    }
    return 0;
}

int kiln_cli_parse_duration(const char *s, int64_t *out_ns)
{
    long double total = 0;
    const char *p = s;

    if (strcmp(s, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    if (*p == '\0') {
        return KILN_EINVAL;
    }
    while (*p != '\0') {
        const char *num = p, *unit;
        int64_t ns;

        while (isdigit((unsigned char)*p) || *p == '.') {
            p++;
        }
        if (p == num || (p == num + 1 && *num == '.')) {
            return KILN_EINVAL;
        }
        unit = p;
        while (*p != '\0' && !isdigit((unsigned char)*p) && *p != '.') {
            p++;
        }
        ns = duration_unit(unit, (size_t)(p - unit));
        if (ns == 0) {
            return KILN_EINVAL;
        }
        char *end;
        long double v = strtold(num, &end);
        if (end != unit) {
            return KILN_EINVAL; /* "1.2.3s" */
        }
        total += v * (long double)ns;
    }
    total += 0.5L;
    if (!(total < 9223372036854775807.0L)) {
        return KILN_EINVAL;
    }
    *out_ns = (int64_t)total;
    return 0;
}
