/*
 * The plugin loader and registry through the public API: deliberately
 * broken modules are refused with messages naming the file, and the
 * example inline:// plugin loads from KILN_PLUGIN_PATH, translates, and
 * builds (then rebuilds cached) through the real solver and store.
 */
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <kiln/kiln.h>
#include <kiln/llb.h>

static char tmp[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/kiln-loader-XXXXXX");
    return mkdtemp(tmp) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh directory holding links to the named test modules. */
static const char *dir_with(const char *sub, const char *const *cases)
{
    static char dir[512];
    const char *built = getenv("KILN_TEST_BROKEN_DIR");

    assert_non_null(built);
    snprintf(dir, sizeof(dir), "%s/%s", tmp, sub);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (; *cases != NULL; cases++) {
        char from[512], to[600];
        snprintf(from, sizeof(from), "%s/broken-%s.so", built, *cases);
        snprintf(to, sizeof(to), "%s/broken-%s.so", dir, *cases);
        assert_int_equal(symlink(from, to), 0);
    }
    return dir;
}

static int count_cb(const kiln_plugin_info_t *info, void *ud)
{
    int *n = ud;

    (void)info;
    (*n)++;
    return 0;
}

/* Loading `dir` fails with code `want`; the message holds `text`. */
static void expect_refused(const char *dir, int want, const char *text)
{
    kiln_error_t err = {0};
    int n = 0;
    int rc = kiln_plugins_list(dir, count_cb, &n, &err);

    if (rc != want || strstr(err.message, text) == NULL) {
        fail_msg("got %d \"%s\", want %d and \"%s\"", rc, err.message, want,
                 text);
    }
    assert_non_null(strstr(err.message, dir)); /* names the file */
}

static void test_refused(void **state)
{
    struct {
        const char *c;
        int code;
        const char *text;
    } cases[] = {
        {"no_entry", KILN_EINVAL,
         "not a kiln plugin (no kiln_plugin_entry symbol)"},
        {"bad_magic", KILN_EINVAL, "not a kiln plugin"},
        {"new_major", KILN_ENOTSUP,
         "built for plugin ABI 2.2, this kiln provides 1.2"},
        {"new_minor", KILN_ENOTSUP,
         "built for plugin ABI 1.9, this kiln provides 1.2"},
        {"small", KILN_EINVAL, "plugin descriptor of 16 bytes"},
        {"no_fetch", KILN_EINVAL, "without a name, schemes, resolve or fetch"},
        {"init_fails", KILN_EIO, "plugin 'dup-a' failed to initialise"},
        {"bad_name", KILN_EINVAL, "plugin name '../up' is not 1 to 64"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *one[] = {cases[i].c, NULL};
        expect_refused(dir_with(cases[i].c, one), cases[i].code,
                       cases[i].text);
    }
}

static void test_not_elf(void **state)
{
    char dir[300], path[400];
    FILE *f;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/garbage", tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/kiln-garbage.so", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not a shared object\n", f);
    fclose(f);
    expect_refused(dir, KILN_EINVAL, "kiln-garbage.so");
}

static void test_scheme_twice(void **state)
{
    const char *both[] = {"dup_a", "dup_b", NULL};
    const char *dir = dir_with("dup", both);
    kiln_error_t err = {0};

    (void)state;
    assert_int_equal(kiln_plugins_list(dir, NULL, NULL, &err), KILN_EINVAL);
    assert_non_null(strstr(err.message, "scheme 'dup' is claimed by two "
                                        "plugins"));
    assert_non_null(strstr(err.message, "broken-dup_a.so (dup-a)"));
    assert_non_null(strstr(err.message, "broken-dup_b.so (dup-b)"));
}

/* The same plugin name in two directories: the earlier one is used. */
static void test_override(void **state)
{
    const char *a[] = {"dup_a", NULL};
    char path[1200], first[512];
    kiln_error_t err = {0};
    int n = 0;

    (void)state;
    snprintf(first, sizeof(first), "%s", dir_with("one", a));
    snprintf(path, sizeof(path), "%s:%s", first, dir_with("two", a));
    assert_int_equal(kiln_plugins_list(path, count_cb, &n, &err), 0);
    assert_true(n >= 1);
}

/* An engine on a plugin path holding a broken module does not start. */
static void test_engine_refuses(void **state)
{
    const char *one[] = {"bad_magic", NULL};
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_engine_t *e = NULL;
    kiln_error_t err = {0};
    char root[300];

    (void)state;
    snprintf(root, sizeof(root), "%s/root", tmp);
    eo.root = root;
    eo.plugin_path = dir_with("engine", one);
    assert_int_equal(kiln_engine_new(&eo, &err, &e), KILN_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err.message, "broken-bad_magic.so"));
}

static void use_example(void)
{
    static char dir[512];
    const char *so = getenv("KILN_TEST_EXAMPLE_PLUGIN");

    assert_non_null(so);
    snprintf(dir, sizeof(dir), "%s", so);
    setenv("KILN_PLUGIN_PATH", dirname(dir), 1);
}

static int find_inline(const kiln_plugin_info_t *info, void *ud)
{
    if (strcmp(info->name, "inline") == 0) {
        *(const char **)ud = "found";
        assert_string_equal(info->schemes[0], "inline");
        assert_non_null(strstr(info->path, "kiln-inline.so"));
    }
    return 0;
}

static kiln_definition_t *inline_def(const kiln_translated_t *t)
{
    kiln_definition_t *def = NULL;
    kiln_llb_state_t *st;
    kiln_error_t err = {0};
    kiln_llb_t *b;
    uint8_t *bytes;
    size_t len;

    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    st = kiln_llb_source(b, t->identifier);
    for (size_t i = 0; i < t->n_attrs; i++) {
        st = kiln_llb_source_attr(st, t->keys[i], t->values[i]);
    }
    if (kiln_llb_marshal(b, st, &bytes, &len, &err) != 0 ||
        kiln_definition_load(bytes, len, &err, &def) != 0) {
        fail_msg("%s", err.message);
    }
    kiln_free(bytes);
    kiln_llb_free(b);
    return def;
}

/* What `kiln logs` prints for the definition's result op. */
static void stored_log(kiln_definition_t *def, char *buf, size_t size)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_error_t err = {0};
    kiln_engine_t *e;
    char root[300], path[400];
    FILE *f;
    size_t n;

    snprintf(root, sizeof(root), "%s/root", tmp);
    snprintf(path, sizeof(path), "%s/log", tmp);
    eo.root = root;
    assert_int_equal(kiln_engine_new(&eo, &err, &e), 0);
    f = fopen(path, "w+");
    assert_non_null(f);
    if (kiln_engine_logs(e, kiln_definition_result(def, NULL), fileno(f),
                         &err) != 0) {
        fail_msg("%s", err.message);
    }
    rewind(f);
    n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    kiln_engine_free(e);
}

static int solve(kiln_definition_t *def, const char *out,
                 kiln_solve_stats_t *st, kiln_error_t *err)
{
    kiln_engine_options_t eo = KILN_ENGINE_OPTIONS_INIT;
    kiln_solve_options_t so = KILN_SOLVE_OPTIONS_INIT;
    kiln_engine_t *e;
    kiln_solve_t *s;
    char root[300];
    int rc;

    snprintf(root, sizeof(root), "%s/root", tmp);
    eo.root = root;
    assert_int_equal(kiln_engine_new(&eo, err, &e), 0);
    so.definition = def;
    so.output = out != NULL ? KILN_OUTPUT_LOCAL : KILN_OUTPUT_NONE;
    so.output_dest = out;
    assert_int_equal(kiln_solve_start(e, &so, err, &s), 0);
    rc = kiln_solve_wait(s, err);
    kiln_solve_stats(s, st);
    kiln_solve_free(s);
    kiln_engine_free(e);
    return rc;
}

static void assert_file(const char *path, const char *want, mode_t mode)
{
    char buf[256] = {0};
    struct stat stt;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        fail_msg("%s: missing", path);
    }
    assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
    fclose(f);
    assert_string_equal(buf, want);
    assert_int_equal(stat(path, &stt), 0);
    assert_int_equal(stt.st_mode & 07777, mode);
}

static void test_example_plugin(void **state)
{
    const char *params[] = {"name=cfg", "file.etc/app.conf=port = 80\n",
                            "file.bin/run=#!/bin/sh\n", "mode.bin/run=0755",
                            NULL};
    const char *bad[] = {"name=cfg", "colour=blue", NULL};
    const char *found = NULL;
    kiln_translated_t *t = NULL;
    kiln_definition_t *def;
    kiln_solve_stats_t st;
    kiln_error_t err = {0};
    char out[300], path[400];

    (void)state;
    use_example();
    assert_int_equal(kiln_plugins_list(NULL, find_inline, &found, &err), 0);
    assert_non_null(found);

    assert_int_equal(kiln_source_translate(NULL, "inline", bad, &t, &err),
                     KILN_EINVAL);
    assert_non_null(strstr(err.message, "unknown parameter 'colour'"));
    assert_int_equal(kiln_source_translate(NULL, "inline", params, &t, &err),
                     0);
    assert_string_equal(t->identifier, "inline://cfg");
    assert_int_equal(t->n_attrs, 3);
    assert_string_equal(t->keys[0], "inline.file.bin/run");
    assert_string_equal(t->keys[2], "inline.mode.bin/run");

    def = inline_def(t);
    snprintf(out, sizeof(out), "%s/out", tmp);
    if (solve(def, out, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    assert_int_equal(st.run, 1);
    snprintf(path, sizeof(path), "%s/etc/app.conf", out);
    assert_file(path, "port = 80\n", 0644);
    snprintf(path, sizeof(path), "%s/bin/run", out);
    assert_file(path, "#!/bin/sh\n", 0755);
    /* What the plugin logged is the vertex's stored output. */
    {
        char log[512];
        stored_log(def, log, sizeof(log));
        assert_string_equal(log, "[debug] wrote inline://cfg\n");
    }
    /* The same content pins the same: fully cached. */
    assert_int_equal(solve(def, NULL, &st, &err), 0);
    assert_int_equal(st.cached, 1);
    assert_int_equal(st.run, 0);
    kiln_definition_free(def);
    kiln_translated_free(t);
}

/* A fetch that adds a layer (ABI 1.1): the layers stack in order, and a
 * whiteout in the upper one deletes from the lower. */
static void test_add_layer(void **state)
{
    kiln_translated_t t = {.identifier = "layers://two"};
    const char *built = getenv("KILN_TEST_BROKEN_DIR");
    kiln_definition_t *def;
    kiln_solve_stats_t st;
    kiln_error_t err = {0};
    char dir[300], from[600], to[600], out[300], path[400];

    (void)state;
    assert_non_null(built);
    snprintf(dir, sizeof(dir), "%s/layers", tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(from, sizeof(from), "%s/kiln-layers.so", built);
    snprintf(to, sizeof(to), "%s/kiln-layers.so", dir);
    assert_int_equal(symlink(from, to), 0);
    setenv("KILN_PLUGIN_PATH", dir, 1);
    def = inline_def(&t);
    snprintf(out, sizeof(out), "%s/out", tmp);
    if (solve(def, out, &st, &err) != 0) {
        fail_msg("%s", err.message);
    }
    snprintf(path, sizeof(path), "%s/b", out);
    assert_file(path, "b\n", 0644);
    snprintf(path, sizeof(path), "%s/c", out);
    assert_file(path, "c\n", 0644);
    snprintf(path, sizeof(path), "%s/a", out);
    assert_int_equal(access(path, F_OK), -1); /* whited out */
    snprintf(path, sizeof(path), "%s/.wh.a", out);
    assert_int_equal(access(path, F_OK), -1); /* markers never show */
    assert_int_equal(solve(def, NULL, &st, &err), 0);
    assert_int_equal(st.cached, 1);
    kiln_definition_free(def);
}

/* The builder asks the plugin: the same op as written by hand. */
static void test_builder_plugin_source(void **state)
{
    const char *params[] = {"name=cfg", "file.a=1", NULL};
    const char *bad[] = {"name=cfg", "nope=1", NULL};
    kiln_translated_t *t = NULL;
    kiln_definition_t *want, *got = NULL;
    kiln_error_t err = {0};
    kiln_llb_t *b;
    uint8_t *bytes;
    size_t len;

    (void)state;
    use_example();
    assert_int_equal(kiln_source_translate(NULL, "inline", params, &t, &err),
                     0);
    want = inline_def(t);
    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    assert_int_equal(kiln_llb_marshal(b,
                                      kiln_llb_plugin_source(b, "inline",
                                                             params),
                                      &bytes, &len, &err),
                     0);
    assert_int_equal(kiln_definition_load(bytes, len, &err, &got), 0);
    assert_string_equal(kiln_definition_result(got, NULL),
                        kiln_definition_result(want, NULL));
    kiln_free(bytes);
    kiln_llb_free(b);
    /* A plugin's refusal is the builder's error, with the message. */
    assert_int_equal(kiln_llb_new(KILN_LLB_ENCODING_CURRENT, &b), 0);
    assert_null(kiln_llb_plugin_source(b, "inline", bad));
    assert_int_equal(kiln_llb_error(b, &err), KILN_EINVAL);
    assert_non_null(strstr(err.message, "unknown parameter 'nope'"));
    kiln_llb_free(b);
    kiln_definition_free(want);
    kiln_definition_free(got);
    kiln_translated_free(t);
}

static void test_unknown_scheme(void **state)
{
    kiln_translated_t t = {.identifier = "nosuch://thing"};
    kiln_definition_t *def;
    kiln_solve_stats_t st;
    kiln_error_t err = {0};

    (void)state;
    use_example();
    def = inline_def(&t);
    assert_true(solve(def, NULL, &st, &err) < 0);
    assert_non_null(strstr(err.message, "no source plugin handles scheme "
                                        "'nosuch' (loaded: "));
    assert_non_null(strstr(err.message, "inline"));
    kiln_definition_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_elf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheme_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_scheme, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builder_plugin_source, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_layer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
