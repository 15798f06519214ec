/*
 * Decoding throughput: load (decode, digest, validate) and dump-llb of the
 * BuildKit vectors and of a generated 10,000-op chain. Prints figures; it
 * asserts nothing about time. Run: meson test -C build --benchmark -v
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llb/graph.h"
#include "llb/pbenc.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *data = NULL;
    kiln_error_t err;

    if (kiln__read_file(path, KILN_DEFINITION_MAX_BYTES, &data, len, &err)) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    return data;
}

/* A chain of n mkfile ops on scratch, then the terminal op, with a
 * metadata entry (a custom name) for every op. */
static uint8_t *make_chain(size_t n, size_t *len)
{
    ProtobufCBinaryData *ops = calloc(n + 1, sizeof(*ops));
    char prev[KILN_DIGEST_STRLEN + 1] = "";
    Pb__Definition def = PB__DEFINITION__INIT;
    kiln__buf_t out = KILN_BUF_INIT;

    for (size_t i = 0; i <= n; i++) {
        Pb__Op op = PB__OP__INIT;
        Pb__Input in = PB__INPUT__INIT, *ins[] = {&in};
        Pb__FileOp f = PB__FILE_OP__INIT;
        Pb__FileAction a = PB__FILE_ACTION__INIT, *acts[] = {&a};
        Pb__FileActionMkFile mk = PB__FILE_ACTION_MK_FILE__INIT;
        kiln__buf_t b = KILN_BUF_INIT;
        char path[32];

        in.digest = prev;
        if (i > 0) {
            op.n_inputs = 1;
            op.inputs = ins;
        }
        if (i < n) {
            snprintf(path, sizeof(path), "/f%zu", i);
            mk.path = path;
            mk.mode = 0644;
            mk.timestamp = -1;
            a.input = i > 0 ? 0 : -1;
            a.secondaryinput = -1;
            a.action_case = PB__FILE_ACTION__ACTION_MKFILE;
            a.mkfile = &mk;
            f.n_actions = 1;
            f.actions = acts;
            op.op_case = PB__OP__OP_FILE;
            op.file = &f;
        }
        kiln__pb_encode(&op.base, KILN_PB_ORDER_CURRENT, &b);
        kiln__sha256_digest(b.data, b.len, prev);
        ops[i].data = b.data;
        ops[i].len = b.len;
    }
    def.n_def = n + 1;
    def.def = ops;
    def.n_metadata = n + 1;
    def.metadata = calloc(n + 1, sizeof(*def.metadata));
    for (size_t i = 0; i <= n; i++) {
        Pb__Definition__MetadataEntry *e = malloc(sizeof(*e));
        Pb__OpMetadata *md = malloc(sizeof(*md));
        Pb__OpMetadata__DescriptionEntry *de = malloc(sizeof(*de));

        pb__definition__metadata_entry__init(e);
        pb__op_metadata__init(md);
        pb__op_metadata__description_entry__init(de);
        e->key = malloc(KILN_DIGEST_STRLEN + 1);
        kiln__sha256_digest(ops[i].data, ops[i].len, e->key);
        de->key = "llb.customname";
        de->value = "mkfile";
        md->n_description = 1;
        md->description = malloc(sizeof(*md->description));
        md->description[0] = de;
        e->value = md;
        def.metadata[i] = e;
    }
    kiln__pb_encode(&def.base, KILN_PB_ORDER_CURRENT, &out);
    for (size_t i = 0; i <= n; i++) {
        free(ops[i].data);
        free(def.metadata[i]->key);
        free(def.metadata[i]->value->description[0]);
        free(def.metadata[i]->value->description);
        free(def.metadata[i]->value);
        free(def.metadata[i]);
    }
    free(def.metadata);
    free(ops);
    *len = out.len;
    return out.data;
}

static void bench(const char *name, const uint8_t *data, size_t len)
{
    FILE *null = fopen("/dev/null", "w");
    kiln_definition_t *def = NULL;
    kiln_error_t err;
    size_t n_ops = 0;
    int iters = 0;
    double t0 = now(), t_load, t_dump;

    while (now() - t0 < 0.5 || iters < 3) {
        if (kiln_definition_load(data, len, &err, &def) != 0) {
            fprintf(stderr, "%s: %s\n", name, err.message);
            exit(1);
        }
        n_ops = kiln_definition_op_count(def);
        kiln_definition_free(def);
        iters++;
    }
    t_load = (now() - t0) / iters;
    kiln_definition_load(data, len, &err, &def);
    t0 = now();
    for (int i = 0; i < iters; i++) {
        kiln_definition_dump_json(def, null, &err);
    }
    t_dump = (now() - t0) / iters;
    kiln_definition_free(def);
    fclose(null);
    printf("%-22s %7zu ops %9zu bytes  load %9.3f ms (%6.2f us/op)  "
           "dump-llb %9.3f ms\n",
           name, n_ops, len, t_load * 1e3, t_load * 1e6 / (double)n_ops,
           t_dump * 1e3);
}

int main(void)
{
    static const char *const files[] = {
        "llb/e_run_file.pb",         "llb/g_chain200.pb",
        "perf/p_file_chain400.pb",   "perf/p_exec_true200.pb",
        "perf/p_exec_parallel16.pb",
    };
    const char *dir = getenv("KILN_TEST_DATA");
    char path[4096];
    uint8_t *data;
    size_t len;

    if (dir == NULL) {
        fprintf(stderr, "KILN_TEST_DATA is not set\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        data = read_all(path, &len);
        bench(strchr(files[i], '/') + 1, data, len);
        free(data);
    }
    data = make_chain(10000, &len);
    bench("generated chain 10000", data, len);
    free(data);
    data = make_chain(100000, &len);
    bench("generated chain 100000", data, len);
    free(data);
    return 0;
}
