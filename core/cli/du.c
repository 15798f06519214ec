/* kiln du: disk usage of the store, record by record. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define CMD "du"

/* Hex digits of a record's ID in the table. */
#define ID_DIGITS 12

struct du_state {
    bool verbose;
    uint32_t records;
    uint64_t reclaimable;
    int64_t now_ns;
};

static void du_usage(FILE *out)
{
    fprintf(out,
            "Usage: kiln du [OPTIONS]\n"
            "\n"
            "Show the disk space the store's cache records take, most\n"
            "recently used first, and the total. An ID marked '*' is held by\n"
            "a running build.\n"
            "\n"
            "Options:\n"
            "      --root DIR     Store root (default: $KILN_ROOT, else\n"
            "                     /var/lib/kiln as root, else\n"
            "                     $XDG_DATA_HOME/kiln)\n"
            "  -v, --verbose      Print every field of every record\n"
            "  -h, --help         Show this help and exit\n");
}

/* Prints `s` with control characters (a newline in a name) as spaces. */
static void put_clean(const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
    }
}

static const char *hex_of(const char *digest)
{
    const char *colon = digest != NULL ? strchr(digest, ':') : NULL;

    return colon != NULL ? colon + 1 : digest != NULL ? digest : "";
}

static void format_time(int64_t ns, char *buf, size_t len)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;

    if (ns <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    gmtime_r(&secs, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void format_last_used(const struct du_state *st, int64_t ns, char *buf,
                             size_t len)
{
    char age[64];

    if (ns <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    kiln_cli_format_age(st->now_ns - ns, age, sizeof(age));
    snprintf(buf, len, "%s ago", age);
}

static void print_verbose(const struct du_state *st, const kiln_du_entry_t *e)
{
    char size[32], shared[32], created[64], used[64];

    kiln_cli_format_size(e->size, size, sizeof(size));
    kiln_cli_format_size(e->shared_size, shared, sizeof(shared));
    format_time(e->created_ns, created, sizeof(created));
    format_last_used(st, e->last_used_ns, used, sizeof(used));
    printf("ID:\t\t%s\n", e->key != NULL ? e->key : "");
    printf("Digest:\t\t%s\n", e->digest != NULL ? e->digest : "");
    printf("Description:\t");
    put_clean(e->description);
    printf("\nSize:\t\t%s\n", size);
    printf("Shared size:\t%s\n", shared);
    printf("Created at:\t%s\n", created);
    printf("Last used:\t%s\n", used);
    printf("In use:\t\t%s\n", e->in_use ? "true" : "false");
    printf("Reclaimable:\t%s\n\n", e->in_use ? "false" : "true");
}

static int du_record(const kiln_du_entry_t *e, void *userdata)
{
    struct du_state *st = userdata;
    char size[32], used[64];

    st->records++;
    if (!e->in_use) {
        st->reclaimable += e->size;
    }
    if (st->verbose) {
        print_verbose(st, e);
        return 0;
    }
    kiln_cli_format_size(e->size, size, sizeof(size));
    format_last_used(st, e->last_used_ns, used, sizeof(used));
    printf("%-*.*s%c %-10s %-24s ", ID_DIGITS, ID_DIGITS, hex_of(e->key),
           e->in_use ? '*' : ' ', size, used);
    put_clean(e->description);
    putchar('\n');
    return 0;
}

static int du_run(const char *root, bool verbose)
{
    struct du_state st = {verbose, 0, 0, 0};
    kiln_engine_t *engine = NULL;
    kiln_error_t err = {0};
    char reclaimable[32], total_s[32];
    struct timespec ts;
    uint64_t total = 0;
    int rc;

    rc = kiln_cli_open_engine(root, 0, KILN_LOG_WARN, &engine);
    if (rc != 0) {
        return rc;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    st.now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (!verbose) {
        printf("%-*s  %-10s %-24s %s\n", ID_DIGITS, "ID", "SIZE", "LAST USED",
               "DESCRIPTION");
    }
    rc = kiln_engine_du(engine, du_record, &st, &total, &err);
    kiln_engine_free(engine);
    if (rc < 0) {
        fflush(stdout);
        return kiln_cli_error(&err);
    }
    kiln_cli_format_size(st.reclaimable, reclaimable, sizeof(reclaimable));
    kiln_cli_format_size(total, total_s, sizeof(total_s));
    printf("%sRecords:\t%u\nReclaimable:\t%s\nTotal:\t\t%s\n",
           verbose || st.records == 0 ? "" : "\n", st.records, reclaimable,
           total_s);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        kiln_error_t werr = {KILN_EIO, "writing the usage table failed"};
        return kiln_cli_error(&werr);
    }
    return 0;
}

int kiln_cli_du(int argc, char **argv)
{
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *root = NULL;
    bool verbose = false;
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":hv", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            root = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            du_usage(stdout);
            return 0;
        default:
            return kiln_cli_bad_option(CMD, c, argv);
        }
    }
    if (optind < argc) {
        return kiln_cli_usage_error(CMD, "unexpected argument '%s'",
                                    argv[optind]);
    }
    return du_run(root, verbose);
}
