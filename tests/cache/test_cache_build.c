/*
 * Build cache export and import through real builds: separate store roots
 * stand for separate hosts, the cache goes through an OCI layout directory
 * or a docker-registry on 127.0.0.1.
 *
 * The graph: a local:// source "src"; s1 copies src's a.txt onto scratch;
 * s2 adds b.txt over s1; "side" makes side.txt on scratch; "final" copies
 * side.txt over s2 and adds c.txt (its text is the step a test changes).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cache_fixture.h"

static char tmp[256], src[300];
static registry_t reg;
static bool have_registry;
static int seq;

/* A fresh path under the test's temp dir. */
static const char *fresh(const char *what)
{
    static char paths[64][400];
    char *p = paths[seq % 64];

    snprintf(p, 400, "%s/%s-%d", tmp, what, seq++);
    return p;
}

static kiln_definition_t *graph(const char *c_text)
{
    kiln_llb_t *b = NULL;
    kiln_llb_state_t *s, *s1, *s2, *side, *fin;
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};
    uint8_t *bytes = NULL;
    size_t len = 0;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    s = kiln_llb_local(b, "src");
    s1 = kiln_llb_custom_name(
        kiln_llb_file(kiln_llb_scratch(b),
                      kiln_llb_copy(kiln_llb_actions(b), s, "/a.txt",
                                    "/a.txt", 0)),
        "s1");
    s2 = kiln_llb_custom_name(
        kiln_llb_file(s1, kiln_llb_mkfile(kiln_llb_actions(b), "/b.txt", 0644,
                                          "B\n", 2, 0)),
        "s2");
    side = kiln_llb_custom_name(
        kiln_llb_file(kiln_llb_scratch(b),
                      kiln_llb_mkfile(kiln_llb_actions(b), "/side.txt", 0644,
                                      "SIDE\n", 5, 0)),
        "side");
    fin = kiln_llb_custom_name(
        kiln_llb_file(s2, kiln_llb_mkfile(
                              kiln_llb_copy(kiln_llb_actions(b), side,
                                            "/side.txt", "/side.txt", 0),
                              "/c.txt", 0644, c_text, strlen(c_text), 0)),
        "final");
    if (kiln_llb_marshal(b, fin, &bytes, &len, &err) < 0 ||
        kiln_definition_load(bytes, len, &err, &def) < 0) {
        fail_msg("definition: %s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

static int setup(void **state)
{
    char path[400];

    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/kiln-cache-test-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(src, sizeof(src), "%s/src", tmp);
    assert_int_equal(mkdir(src, 0755), 0);
    snprintf(path, sizeof(path), "%s/a.txt", src);
    write_file(path, "A\n");
    snprintf(path, sizeof(path), "%s/registry", tmp);
    have_registry = access(REGISTRY_BIN, X_OK) == 0 &&
                    start_registry(&reg, path);
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];

    (void)state;
    stop_registry(&reg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd);
}

static void file_is(const char *dir, const char *name, const char *want)
{
    char path[600];
    size_t len = 0;
    uint8_t *got;
    kiln_error_t err = {0};

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (kiln__read_file(path, 1 << 20, &got, &len, &err) < 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
}

static char spec_buf[16][600];
static int spec_n;

/* A spec string, kept until 16 more are made. */
static const char *spec(const char *fmt, ...) KILN_PRINTF(1, 2);

static const char *spec(const char *fmt, ...)
{
    char *p = spec_buf[spec_n++ % 16];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p, 600, fmt, ap);
    va_end(ap);
    return p;
}

static size_t store_layers(const char *root)
{
    char path[500];

    snprintf(path, sizeof(path), "%s/layers", root);
    return count_entries(path);
}

/*
 * Root A exports (max), a fresh root B imports: nothing runs, the output
 * is identical, and only the final result's chain of layers was fetched
 * (side's layer, which the final copy does not keep, never was). Then a
 * changed final step on root C: only it runs.
 */
static void roundtrip(const char *export_spec, const char *import_spec)
{
    kiln_definition_t *def = graph("C\n"), *changed = graph("C2\n");
    const char *ra = fresh("root"), *rb = fresh("root"), *rc = fresh("root");
    const char *oa = fresh("out"), *ob = fresh("out"), *oc = fresh("out");
    outcome_t o;

    o = build(ra, def, src, oa, export_spec, NULL, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 5);
    assert_int_equal(o.n_warnings, 0);

    o = build(rb, def, src, ob, NULL, import_spec, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 0);
    assert_int_equal(o.stats.cached, 5);
    assert_int_equal(o.n_warnings, 0);
    assert_same_tree(oa, ob);
    file_is(ob, "c.txt", "C\n");
    /* a.txt's layer, b.txt's, and final's own: not side's. */
    assert_int_equal(store_layers(rb), 3);

    o = build(rc, changed, src, oc, NULL, import_spec, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 1);
    assert_string_equal(o.ran, "final;");
    /* Why final ran: the op's fields changed, not its inputs. */
    assert_contains(o.misses, "final: cache miss: record ");
    assert_contains(o.misses, "(final) has the same inputs but another "
                              "cache-map digest");
    file_is(oc, "c.txt", "C2\n");
    file_is(oc, "side.txt", "SIDE\n");
    file_is(oc, "a.txt", "A\n");
    kiln_definition_free(def);
    kiln_definition_free(changed);
}

static void test_local_max(void **state)
{
    const char *dir = fresh("cache"), *other = fresh("src");
    kiln_definition_t *def = graph("C\n");
    char path[500];
    outcome_t o;

    (void)state;
    roundtrip(spec("type=local,dest=%s,mode=max", dir),
              spec("type=local,src=%s", dir));
    /* Another content of the source: it and the steps over it run, and
     * the explanations point at the source. */
    assert_int_equal(mkdir(other, 0755), 0);
    snprintf(path, sizeof(path), "%s/a.txt", other);
    write_file(path, "A2\n");
    o = build(fresh("root"), def, other, NULL, NULL,
              spec("type=local,src=%s", dir), NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 4); /* all but side */
    assert_contains(o.misses, "cache miss: no record of this source as "
                              "pinned here");
    assert_contains(o.misses, "s1: cache miss: record ");
    assert_contains(o.misses, "is this op, but its input 0 (");
    kiln_definition_free(def);
}

static void test_registry_max(void **state)
{
    (void)state;
    if (!have_registry) {
        skip();
    }
    roundtrip(spec("type=registry,ref=%s/cache/app:max,mode=max", reg.host),
              spec("type=registry,ref=%s/cache/app:max", reg.host));
}

/*
 * Exporting to a second repository of the same registry mounts the blobs
 * the first one has instead of uploading them again; the import from the
 * second repository finds them.
 */
static void test_registry_mount(void **state)
{
    kiln_definition_t *def = graph("MOUNT\n");
    const char *root = fresh("root");
    outcome_t o;

    (void)state;
    if (!have_registry) {
        skip();
    }
    o = build(root, def, src, NULL,
              spec("type=registry,ref=%s/mount/one:main", reg.host), NULL,
              NULL);
    ASSERT_BUILT(o);
    assert_contains(o.exported, "blobs already there");
    assert_true(strstr(o.exported, ": 0 bytes uploaded") == NULL);
    o = build(root, def, src, NULL,
              spec("type=registry,ref=%s/mount/two:main", reg.host), NULL,
              NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 0);
    assert_contains(o.exported, ": 0 bytes uploaded, 3 blobs already there");
    o = build(fresh("root"), def, src, NULL, NULL,
              spec("type=registry,ref=%s/mount/two:main", reg.host), NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 0);
    kiln_definition_free(def);
}

/*
 * Content keys: the source's other files changed, so its pin (and every
 * key above it) did, but what s1 copies of it did not: s1 matches its
 * record through the content-key link once the source is built, s2 and
 * final through s1. Only the source runs.
 */
static void content_keys(const char *export_spec, const char *import_spec)
{
    kiln_definition_t *def = graph("C\n");
    const char *one = fresh("src"), *two = fresh("src");
    const char *out1 = fresh("out"), *out2 = fresh("out");
    char path[500];
    outcome_t o;

    assert_int_equal(mkdir(one, 0755), 0);
    assert_int_equal(mkdir(two, 0755), 0);
    snprintf(path, sizeof(path), "%s/a.txt", one);
    write_file(path, "A\n");
    snprintf(path, sizeof(path), "%s/other.txt", one);
    write_file(path, "1\n");
    snprintf(path, sizeof(path), "%s/a.txt", two);
    write_file(path, "A\n");
    snprintf(path, sizeof(path), "%s/other.txt", two);
    write_file(path, "2\n");
    ASSERT_BUILT(build(fresh("root"), def, one, out1, export_spec, NULL, NULL));
    o = build(fresh("root"), def, two, out2, NULL, import_spec, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 1);
    assert_string_equal(o.ran, "local://src;");
    assert_int_equal(o.n_warnings, 0);
    assert_same_tree(out1, out2);
    kiln_definition_free(def);
}

static void test_content_keys(void **state)
{
    const char *dir = fresh("cache");

    (void)state;
    content_keys(spec("type=local,dest=%s,mode=max", dir),
                 spec("type=local,src=%s", dir));
    if (have_registry) {
        content_keys(spec("type=registry,ref=%s/cache/content:max,mode=max",
                          reg.host),
                     spec("type=registry,ref=%s/cache/content:max", reg.host));
    }
}

/* The other forms and compressions read back too. */
static void test_forms(void **state)
{
    static const char *const opts[] = {
        ",image-manifest=false",
        ",compression=zstd,compression-level=3",
        ",compression=uncompressed",
        ",oci-mediatypes=false,image-manifest=false",
    };

    (void)state;
    for (size_t i = 0; i < KILN_ARRAY_SIZE(opts); i++) {
        const char *dir = fresh("cache");
        roundtrip(spec("type=local,dest=%s,mode=max%s", dir, opts[i]),
                  spec("type=local,src=%s", dir));
    }
}

/*
 * min exports the final result only: the same definition is fully reused,
 * a changed final step reuses nothing (max reuses s2 and side: see
 * roundtrip()).
 */
static void min_mode(const char *export_spec, const char *import_spec)
{
    kiln_definition_t *def = graph("C\n"), *changed = graph("C2\n");
    outcome_t o;

    o = build(fresh("root"), def, src, NULL, export_spec, NULL, NULL);
    ASSERT_BUILT(o);
    o = build(fresh("root"), def, src, NULL, NULL, import_spec, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 0);
    o = build(fresh("root"), changed, src, NULL, NULL, import_spec, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 5);
    /* s2 and side match records that hold no layers in a min cache. */
    assert_contains(o.misses, "s2: cache miss: 1 imported record(s) match it "
                              "but hold no usable result");
    kiln_definition_free(def);
    kiln_definition_free(changed);
}

static void test_local_min(void **state)
{
    const char *dir = fresh("cache");

    (void)state;
    min_mode(spec("type=local,dest=%s", dir),
             spec("type=local,src=%s", dir));
}

static void test_registry_min(void **state)
{
    (void)state;
    if (!have_registry) {
        skip();
    }
    min_mode(spec("type=registry,ref=%s/cache/app:min", reg.host),
             spec("type=registry,ref=%s/cache/app:min", reg.host));
}

/* Rewrites every layer blob of a layout: mode 'c' flips a byte in its
 * middle, 'd' deletes it. */
static void damage_layers(const char *dir, char mode)
{
    char path[600], bdir[500];
    struct dirent *e;
    DIR *d;

    snprintf(bdir, sizeof(bdir), "%s/blobs/sha256", dir);
    d = opendir(bdir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        unsigned char head[2] = {0};
        struct stat st;
        FILE *f;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", bdir, e->d_name);
        f = fopen(path, "r+");
        assert_non_null(f);
        if (fread(head, 1, 2, f) != 2 || head[0] != 0x1f || head[1] != 0x8b) {
            fclose(f); /* JSON: the manifest or the config */
            continue;
        }
        assert_int_equal(stat(path, &st), 0);
        if (mode == 'c') {
            int c;
            fseek(f, st.st_size / 2, SEEK_SET);
            c = fgetc(f);
            fseek(f, st.st_size / 2, SEEK_SET);
            fputc(c ^ 0x55, f);
        }
        fclose(f);
        if (mode == 'd') {
            assert_int_equal(unlink(path), 0);
        }
    }
    closedir(d);
}

/* A corrupt or missing blob: that record is a miss with a warning, and
 * the vertex is built; the build succeeds. */
static void test_damaged_blobs(void **state)
{
    kiln_definition_t *def = graph("C\n");
    const char *dir = fresh("cache"), *ra = fresh("root");
    const char *oa = fresh("out");

    (void)state;
    ASSERT_BUILT(build(ra, def, src, oa,
                       spec("type=local,dest=%s,mode=max", dir), NULL,
                       NULL));
    for (int m = 0; m < 2; m++) {
        char cmd[1400];
        const char *copy = fresh("damaged"), *out = fresh("out");
        outcome_t o;

        snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", dir, copy);
        assert_int_equal(system(cmd), 0);
        damage_layers(copy, m == 0 ? 'c' : 'd');
        o = build(fresh("root"), def, src, out, NULL,
                  spec("type=local,src=%s", copy), NULL);
        ASSERT_BUILT(o);
        assert_int_equal(o.stats.run, 5);
        assert_true(o.n_warnings >= 1);
        assert_contains(o.warnings, "unusable, building instead");
        assert_contains(o.warnings, m == 0 ? "sha256:" : "blob");
        assert_same_tree(oa, out);
    }
    kiln_definition_free(def);
}

/* An import that cannot be read is a warning; the build goes on. */
static void test_unreadable_imports(void **state)
{
    kiln_definition_t *def = graph("C\n");
    char ref[128];
    outcome_t o;

    (void)state;
    snprintf(ref, sizeof(ref), "127.0.0.1:%d/nothing/here:tag", free_port());
    o = build(fresh("root"), def, src, NULL, NULL,
              spec("type=registry,ref=%s", ref),
              spec("type=local,src=%s/missing", tmp));
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 5);
    assert_int_equal(o.n_warnings, 2);
    assert_contains(o.warnings, "importing the build cache from 127.0.0.1:");
    assert_contains(o.warnings, "/missing: ");
    assert_contains(o.warnings, "(building without it)");
    kiln_definition_free(def);
}

/* BuildKit's own caches read without error; none of their records is
 * for this graph, so everything runs. */
static void test_buildkit_caches(void **state)
{
    kiln_definition_t *def = graph("C\n");
    const char *data = getenv("KILN_TEST_DATA");
    char a[600], b[600];
    outcome_t o;

    (void)state;
    assert_non_null(data);
    snprintf(a, sizeof(a), "type=local,src=%s/buildkit-cache/e_run_file",
             data);
    snprintf(b, sizeof(b), "type=local,src=%s/buildkit-cache/f_diamond",
             data);
    o = build(fresh("root"), def, src, NULL, NULL, a, b);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 5);
    assert_int_equal(o.n_warnings, 0);
    kiln_definition_free(def);
}

/* Export failures fail the build, unless ignore-error=true. */
static void test_export_errors(void **state)
{
    kiln_definition_t *def = graph("C\n");
    char ref[128];
    outcome_t o;

    (void)state;
    snprintf(ref, sizeof(ref), "127.0.0.1:%d/down/cache:x", free_port());
    o = build(fresh("root"), def, src, NULL,
              spec("type=registry,ref=%s,mode=max", ref), NULL, NULL);
    assert_int_not_equal(o.rc, 0);
    assert_contains(o.err.message, "exporting the build cache to 127.0.0.1:");
    o = build(fresh("root"), def, src, NULL,
              spec("type=registry,ref=%s,ignore-error=true", ref), NULL,
              NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.n_warnings, 1);
    assert_contains(o.warnings, "failed (ignored)");
    kiln_definition_free(def);
}

static void bad_spec(const char *export_spec, const char *import_spec,
                     const char *msg)
{
    kiln_definition_t *def = graph("C\n");
    outcome_t o = build(fresh("root"), def, src, NULL, export_spec,
                        import_spec, NULL);

    assert_int_equal(o.rc, KILN_EINVAL);
    assert_contains(o.err.message, msg);
    kiln_definition_free(def);
}

static void test_bad_specs(void **state)
{
    (void)state;
    bad_spec("type=local", NULL, "--export-cache 'type=local': type=local "
                                 "needs dest=DIR");
    bad_spec("type=s3,bucket=x", NULL, "type 's3' is not supported");
    bad_spec("type=local,dest=/tmp/x,mod=max", NULL, "unknown option 'mod'");
    bad_spec("type=local,dest=/tmp/x,mode=all", NULL,
             "mode 'all' is not min or max");
    bad_spec("type=registry,ref=nohost", NULL, "has no registry host");
    bad_spec(NULL, "type=local,dest=/tmp/x", "unknown option 'dest'");
    bad_spec(NULL, "type=registry", "type=registry needs ref=");
    bad_spec("type=local,dest=/tmp/x,compression=lz4", NULL,
             "compression 'lz4' is not gzip, zstd or uncompressed");
}

/*
 * Additive: two builds exporting to one destination both find their
 * records afterwards (BuildKit keeps only the last writer's).
 */
static void additive(const char *export_spec, const char *import_spec)
{
    kiln_definition_t *x = graph("X\n"), *y = graph("Y\n");
    outcome_t o;

    ASSERT_BUILT(build(fresh("root"), x, src, NULL, export_spec, NULL, NULL));
    ASSERT_BUILT(build(fresh("root"), y, src, NULL, export_spec, NULL, NULL));
    o = build(fresh("root"), x, src, NULL, NULL, import_spec, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 0);
    o = build(fresh("root"), y, src, NULL, NULL, import_spec, NULL);
    ASSERT_BUILT(o);
    assert_int_equal(o.stats.run, 0);
    kiln_definition_free(x);
    kiln_definition_free(y);
}

static void test_additive_local(void **state)
{
    const char *dir = fresh("cache");

    (void)state;
    additive(spec("type=local,dest=%s", dir),
             spec("type=local,src=%s", dir));
}

static void test_additive_registry(void **state)
{
    (void)state;
    if (!have_registry) {
        skip();
    }
    additive(spec("type=registry,ref=%s/cache/shared:main", reg.host),
             spec("type=registry,ref=%s/cache/shared:main", reg.host));
}

struct racer {
    kiln_engine_t *engine;
    const char *spec;
    kiln_definition_t *def;
    outcome_t o;
};

static void *race_main(void *arg)
{
    struct racer *r = arg;

    r->o = build_on(r->engine, r->def, src, NULL, r->spec, NULL, NULL);
    return NULL;
}

/* Concurrent exporters to one destination lose nothing of each other. */
static void concurrent(const char *export_spec, const char *import_spec)
{
    enum { N = 4 };
    struct racer r[N];
    pthread_t t[N];

    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof(text), "R%d\n", i);
        /* Engines open before and close after the race: only the solves
         * (and their exports) run at once. */
        r[i].engine = open_engine(fresh("root"));
        r[i].spec = export_spec;
        r[i].def = graph(text);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
    }
    for (int i = 0; i < N; i++) {
        kiln_engine_free(r[i].engine);
        ASSERT_BUILT(r[i].o);
    }
    for (int i = 0; i < N; i++) {
        outcome_t o = build(fresh("root"), r[i].def, src, NULL, NULL,
                            import_spec, NULL);
        ASSERT_BUILT(o);
        assert_int_equal(o.stats.run, 0);
        kiln_definition_free(r[i].def);
    }
}

static void test_concurrent_local(void **state)
{
    const char *dir = fresh("cache");

    (void)state;
    concurrent(spec("type=local,dest=%s", dir),
               spec("type=local,src=%s", dir));
}

static void test_concurrent_registry(void **state)
{
    (void)state;
    if (!have_registry) {
        skip();
    }
    concurrent(spec("type=registry,ref=%s/cache/race:main", reg.host),
               spec("type=registry,ref=%s/cache/race:main", reg.host));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_max),
        cmocka_unit_test(test_registry_max),
        cmocka_unit_test(test_registry_mount),
        cmocka_unit_test(test_content_keys),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_local_min),
        cmocka_unit_test(test_registry_min),
        cmocka_unit_test(test_damaged_blobs),
        cmocka_unit_test(test_unreadable_imports),
        cmocka_unit_test(test_buildkit_caches),
        cmocka_unit_test(test_export_errors),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_additive_local),
        cmocka_unit_test(test_additive_registry),
        cmocka_unit_test(test_concurrent_local),
        cmocka_unit_test(test_concurrent_registry),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
