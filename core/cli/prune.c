/* kiln prune: remove cache records, least recently used first. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"

#define CMD "prune"

static void prune_usage(FILE *out)
{
    fprintf(out,
            "Usage: kiln prune [OPTIONS]\n"
            "\n"
            "Remove cache records from the store, least recently used first,\n"
            "then the layers and logs nothing refers to any more. What a\n"
            "running build holds is never removed. Say what to remove:\n"
            "\n"
            "Options:\n"
            "  -a, --all                    Remove every record\n"
            "      --keep-storage SIZE      Remove records until the store "
            "takes\n"
            "                               at most SIZE: bytes, or with a "
            "unit:\n"
            "                               kB, MB, GB, TB (powers of 1000), "
            "KiB,\n"
            "                               MiB, GiB, TiB (of 1024): 512MB, "
            "1.5GiB\n"
            "      --keep-duration DURATION Remove records unused for longer "
            "than\n"
            "                               DURATION: 90s, 30m, 24h, 7d, "
            "1h30m\n"
            "      --root DIR               Store root (default: $KILN_ROOT, "
            "else\n"
            "                               /var/lib/kiln as root, else\n"
            "                               $XDG_DATA_HOME/kiln)\n"
            "  -h, --help                   Show this help and exit\n"
            "\n"
            "With both --keep-storage and --keep-duration, a record goes if "
            "either\n"
            "says so. A SIZE or DURATION of 0 removes every record, as --all "
            "does.\n");
}

/* One option into *o; returns -1 to go on, else the exit status. */
static int prune_option(int c, char **argv, kiln_prune_options_t *o,
                        bool *given, const char **root)
{
    uint64_t size;
    int64_t ns;

    switch (c) {
    case 'a':
        o->all = 1;
        break;
    case 's':
        if (kiln_cli_parse_size(optarg, &size) < 0) {
            return kiln_cli_usage_error(
                CMD, "--keep-storage: '%s' is not a size (512MB, 10GB, 1.5GiB)",
                optarg);
        }
        o->keep_storage = size;
        o->all |= size == 0;
        break;
    case 'd':
        if (kiln_cli_parse_duration(optarg, &ns) < 0) {
            return kiln_cli_usage_error(
                CMD, "--keep-duration: '%s' is not a duration (90s, 24h, 7d)",
                optarg);
        }
        o->keep_duration_ns = ns;
        o->all |= ns == 0;
        break;
    case 'r':
        *root = optarg;
        return -1;
    case 'h':
        prune_usage(stdout);
        return 0;
    default:
        return kiln_cli_bad_option(CMD, c, argv);
    }
    *given = true;
    return -1;
}

int kiln_cli_prune(int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"keep-storage", required_argument, NULL, 's'},
        {"keep-duration", required_argument, NULL, 'd'},
        {"root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_prune_options_t o = KILN_PRUNE_OPTIONS_INIT;
    kiln_engine_t *engine = NULL;
    kiln_error_t err = {0};
    const char *root = NULL;
    bool given = false;
    uint64_t freed = 0;
    uint32_t removed = 0;
    char freed_s[32];
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ha", opts, NULL)) != -1) {
        if ((rc = prune_option(c, argv, &o, &given, &root)) >= 0) {
            return rc;
        }
    }
    if (optind < argc) {
        return kiln_cli_usage_error(CMD, "unexpected argument '%s'",
                                    argv[optind]);
    }
    if (!given) {
        return kiln_cli_usage_error(CMD, "say what to remove: --all, "
                                         "--keep-storage SIZE or "
                                         "--keep-duration DURATION");
    }
    rc = kiln_cli_open_engine(root, 0, KILN_LOG_WARN, &engine);
    if (rc != 0) {
        return rc;
    }
    rc = kiln_engine_prune(engine, &o, &freed, &removed, &err);
    kiln_engine_free(engine);
    if (rc < 0) {
        return kiln_cli_error(&err);
    }
    kiln_cli_format_size(freed, freed_s, sizeof(freed_s));
    printf("Removed:\t%u record%s\nFreed:\t\t%s\n", removed,
           removed == 1 ? "" : "s", freed_s);
    return 0;
}
