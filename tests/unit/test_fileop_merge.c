/*
 * core/fileop: MergeOp and DiffOp over layer stacks, and the matchers the
 * actions use (filepath.Match, patternmatcher, mode strings).
 */
#include "fileop_fixture.h"

#include "fileop/fileop_int.h"

static kiln_fileop_env_t env_of(kiln_snap_view_t **in, size_t n)
{
    kiln_fileop_env_t env = {(const kiln_snap_view_t *const *)in, n,
                             fx_new_layer, NULL, NULL, NULL};
    return env;
}

static kiln_fileop_result_t *merge(kiln_snap_view_t **in, size_t n,
                                   const int64_t *order, size_t k)
{
    Pb__MergeOp op;
    Pb__MergeInput mi[8], *pmi[8];
    kiln_fileop_env_t env = env_of(in, n);
    kiln_fileop_result_t *r = NULL;

    pb__merge_op__init(&op);
    for (size_t i = 0; i < k; i++) {
        pb__merge_input__init(&mi[i]);
        mi[i].input = order[i];
        pmi[i] = &mi[i];
    }
    op.inputs = pmi;
    op.n_inputs = k;
    if (kiln__mergeop_run(&op, &env, &fx->err, &r) != 0) {
        fail_msg("merge: %s", fx->err.message);
    }
    fx->results[fx->n_results++] = r;
    return r;
}

static void test_merge(void **state)
{
    (void)state;
    char *a1 = fx_dir("a1"), *b1 = fx_dir("b1"), *b2 = fx_dir("b2");
    fx_file(a1, "a", "A", 0644);
    fx_file(a1, "shared", "A", 0644);
    fx_file(b1, "b", "B", 0644);
    fx_file(b1, "shared", "B", 0644);
    fx_whiteout(b2, "", "a"); /* B deletes /a */
    const char *bl[] = {b1, b2};
    kiln_snap_view_t *in[] = {fx_view1(a1), fx_view(2, bl)};
    const int64_t ab[] = {0, 1}, ba[] = {1, 0};
    kiln_fileop_result_t *r = merge(in, 2, ab, 2);

    assert_int_equal(r->n_outputs, 1);
    assert_int_equal(r->outputs[0].base, 0);
    assert_int_equal(r->outputs[0].n_layers, 2);
    assert_string_equal(r->outputs[0].layers[0].dir, b1);
    assert_false(r->outputs[0].layers[0].created);
    kiln_snap_view_t *v = fx_out(in, 2, r, 0);
    /* A later input's deletions apply to what earlier inputs brought. */
    fx_assert_missing(v, "/a");
    fx_assert_file(v, "/b", "B");
    fx_assert_file(v, "/shared", "B");

    r = merge(in, 2, ba, 2);
    assert_int_equal(r->outputs[0].base, 1);
    v = fx_out(in, 2, r, 0);
    fx_assert_file(v, "/a", "A");
    fx_assert_file(v, "/b", "B");
    fx_assert_file(v, "/shared", "A");
}

static kiln_fileop_result_t *diff(kiln_snap_view_t **in, size_t n,
                                  int64_t lower, int64_t upper)
{
    Pb__DiffOp op;
    Pb__LowerDiffInput lo;
    Pb__UpperDiffInput up;
    kiln_fileop_env_t env = env_of(in, n);
    kiln_fileop_result_t *r = NULL;

    pb__diff_op__init(&op);
    pb__lower_diff_input__init(&lo);
    pb__upper_diff_input__init(&up);
    lo.input = lower;
    up.input = upper;
    op.lower = &lo;
    op.upper = &up;
    if (kiln__diffop_run(&op, &env, &fx->err, &r) != 0) {
        fail_msg("diff: %s", fx->err.message);
    }
    fx->results[fx->n_results++] = r;
    return r;
}

static void test_diff_prefix(void **state)
{
    (void)state;
    char *l1 = fx_dir("l1"), *l2 = fx_dir("l2"), *l3 = fx_dir("l3");
    fx_file(l1, "base", "b", 0644);
    fx_file(l2, "two", "2", 0644);
    fx_file(l3, "three", "3", 0644);
    const char *lower[] = {l1}, *upper[] = {l1, l2, l3};
    kiln_snap_view_t *in[] = {fx_view(1, lower), fx_view(3, upper)};
    kiln_fileop_result_t *r = diff(in, 2, 0, 1);

    assert_int_equal(r->outputs[0].base, -1);
    assert_int_equal(r->outputs[0].n_layers, 2);
    assert_string_equal(r->outputs[0].layers[0].dir, l2);
    assert_string_equal(r->outputs[0].layers[1].dir, l3);
    assert_false(r->outputs[0].layers[1].created);
    kiln_snap_view_t *v = fx_out(in, 2, r, 0);
    fx_assert_missing(v, "/base");
    fx_assert_file(v, "/three", "3");

    r = diff(in, 2, 1, 1); /* a diff with itself is empty */
    assert_int_equal(r->outputs[0].base, -1);
    assert_int_equal(r->outputs[0].n_layers, 0);
    r = diff(in, 2, -1, 1); /* scratch lower: upper itself */
    assert_int_equal(r->outputs[0].base, 1);
    assert_int_equal(r->outputs[0].n_layers, 0);
    r = diff(in, 2, -1, -1);
    assert_int_equal(r->outputs[0].base, -1);
    assert_int_equal(r->outputs[0].n_layers, 0);
}

static void test_diff_computed(void **state)
{
    (void)state;
    char *lo = fx_dir("lo"), *up = fx_dir("up");
    fx_file(lo, "keep", "same", 0644);
    fx_file(lo, "gone", "x", 0644);
    fx_file(lo, "changed", "1", 0644);
    fx_file(up, "keep", "same", 0644);
    fx_file(up, "changed", "2", 0644);
    fx_file(up, "new", "n", 0644);
    fx_mtime(lo, "keep", 1000000);
    fx_mtime(up, "keep", 1000000);
    kiln_snap_view_t *in[] = {fx_view1(lo), fx_view1(up)};
    kiln_fileop_result_t *r = diff(in, 2, 0, 1);

    assert_int_equal(r->outputs[0].base, -1);
    assert_int_equal(r->outputs[0].n_layers, 1);
    assert_true(r->outputs[0].layers[0].created);
    const char *stack[] = {lo, r->outputs[0].layers[0].dir};
    kiln_snap_view_t *v = fx_view(2, stack);
    fx_assert_missing(v, "/gone");
    fx_assert_file(v, "/changed", "2");
    fx_assert_file(v, "/new", "n");
    fx_assert_file(v, "/keep", "same");
    v = fx_out(in, 2, r, 0);
    fx_assert_missing(v, "/keep"); /* unchanged: not in the diff */
    fx_assert_file(v, "/new", "n");

    /* Scratch upper: the layer that deletes everything lower has. */
    r = diff(in, 2, 0, -1);
    assert_int_equal(r->outputs[0].n_layers, 1);
    stack[1] = r->outputs[0].layers[0].dir;
    v = fx_view(2, stack);
    fx_assert_missing(v, "/keep");
    fx_assert_missing(v, "/gone");
}

static void test_fnmatch(void **state)
{
    (void)state;
    assert_int_equal(kiln__fo_fnmatch("*.txt", "a.txt"), 1);
    assert_int_equal(kiln__fo_fnmatch("*.txt", "d/a.txt"), 0);
    assert_int_equal(kiln__fo_fnmatch("*/a.txt", "d/a.txt"), 1);
    assert_int_equal(kiln__fo_fnmatch("a?c", "abc"), 1);
    assert_int_equal(kiln__fo_fnmatch("a?c", "a/c"), 0);
    assert_int_equal(kiln__fo_fnmatch("[a-c]x", "bx"), 1);
    assert_int_equal(kiln__fo_fnmatch("[^a-c]x", "bx"), 0);
    assert_int_equal(kiln__fo_fnmatch("[^a-c]x", "zx"), 1);
    assert_int_equal(kiln__fo_fnmatch("\\*x", "*x"), 1);
    assert_int_equal(kiln__fo_fnmatch("\\*x", "ax"), 0);
    assert_int_equal(kiln__fo_fnmatch("*", ""), 1);
    assert_int_equal(kiln__fo_fnmatch("a*b*c", "axxbyyc"), 1);
    assert_int_equal(kiln__fo_fnmatch("a*b*c", "axxbyy"), 0);
    assert_int_equal(kiln__fo_fnmatch("[é]", "é"), 1);
    assert_int_equal(kiln__fo_fnmatch("[", "a"), KILN_EINVAL);
    assert_int_equal(kiln__fo_fnmatch("a[", "b"), KILN_EINVAL);
    assert_int_equal(kiln__fo_fnmatch("[]a]", "a"), KILN_EINVAL);
    assert_true(kiln__fo_has_wildcards("a/*.c"));
    assert_false(kiln__fo_has_wildcards("a/\\*.c"));
}

static bool pm(kiln__fo_patterns_t *p, const char *path, const bool *parent,
               bool *info)
{
    return kiln__fo_patterns_match(p, path, parent, info);
}

static void test_patterns(void **state)
{
    (void)state;
    char *inc[] = {"**/*.go", " docs/** ", "exact/path", "**/foo", "a?c"};
    char *exc[] = {"vendor", "!vendor/keep", "*.md"};
    char *bad[] = {"!"};
    kiln__fo_patterns_t *pi, *pe, *pb;
    bool i1[8], i2[8], i3[8];

    assert_int_equal(kiln__fo_patterns_new(inc, 5, &pi, NULL), 0);
    assert_int_equal(kiln__fo_patterns_new(exc, 3, &pe, NULL), 0);
    assert_true(pm(pi, "main.go", NULL, i1));
    assert_true(pm(pi, "a/b/c.go", NULL, i1));
    assert_false(pm(pi, "a/b/c.goo", NULL, i1));
    assert_true(pm(pi, "docs/x/y", NULL, i1));
    assert_false(pm(pi, "docs", NULL, i1));
    assert_true(pm(pi, "exact/path", NULL, i1));
    assert_true(pm(pi, "exact/path/below", NULL, i1)); /* parent matched */
    assert_true(pm(pi, "foo", NULL, i1));
    assert_true(pm(pi, "x/y/foo", NULL, i1));
    assert_false(pm(pi, "xfoo", NULL, i1));
    assert_true(pm(pi, "abc", NULL, i1));
    assert_false(pm(pi, "a/c", NULL, i1));

    assert_true(kiln__fo_patterns_exclusions(pe));
    assert_true(pm(pe, "vendor", NULL, i1));
    assert_true(pm(pe, "vendor/x", i1, i2));
    assert_false(pm(pe, "vendor/keep", i1, i3));
    assert_false(pm(pe, "vendor/keep/deep", i3, i2));
    assert_true(pm(pe, "README.md", NULL, i1));
    assert_false(pm(pe, "docs/README.md", NULL, i1));
    assert_int_equal(kiln__fo_patterns_new(bad, 1, &pb, NULL), KILN_EINVAL);
    kiln__fo_patterns_free(pi);
    kiln__fo_patterns_free(pe);
}

/* Stars do not backtrack exponentially (a fuzzer found this shape): 24
 * stars over 60 characters would take years; it answers at once. */
static void test_patterns_linear(void **state)
{
    (void)state;
    char pat[128] = "", name[128] = "";
    char *pats[] = {pat};
    kiln__fo_patterns_t *p;
    bool info[2];

    for (int i = 0; i < 24; i++) {
        strcat(pat, "*a");
    }
    strcat(pat, "*b");
    memset(name, 'a', 60);
    assert_int_equal(kiln__fo_patterns_new(pats, 1, &p, NULL), 0);
    assert_false(pm(p, name, NULL, info));
    name[59] = 'b';
    assert_true(pm(p, name, NULL, info));
    kiln__fo_patterns_free(p);
}

static mode_t apply(const char *s, mode_t m)
{
    kiln__fo_modeset_t *ms;
    mode_t r;

    if (kiln__fo_modeset_parse(s, &ms) != 0) {
        fail_msg("cannot parse %s", s);
    }
    r = kiln__fo_modeset_apply(ms, m);
    kiln__fo_modeset_free(ms);
    return r;
}

static void test_modestr(void **state)
{
    (void)state;
    const char *bad[] = {"", "u", "z+x", "999", "u+x,", "+q", "70000"};
    kiln__fo_modeset_t *ms;

    assert_int_equal(apply("+x", S_IFREG | 0644), S_IFREG | 0755);
    assert_int_equal(apply("u+rw,g-w", S_IFREG | 0464), S_IFREG | 0644);
    assert_int_equal(apply("go=u-w", S_IFREG | 0700), S_IFREG | 0755);
    assert_int_equal(apply("a+X", S_IFREG | 0644), S_IFREG | 0644);
    assert_int_equal(apply("a+X", S_IFREG | 0744), S_IFREG | 0755);
    assert_int_equal(apply("a+X", S_IFDIR | 0600), S_IFDIR | 0711);
    assert_int_equal(apply("755", S_IFREG | 04600), S_IFREG | 0755);
    assert_int_equal(apply("0", S_IFREG | 0644), S_IFREG | 0);
    assert_int_equal(apply("u=rwx,g=,o=", S_IFREG | 0666), S_IFREG | 0700);
    assert_int_equal(apply("+s", S_IFREG | 0755), S_IFREG | 06755);
    assert_int_equal(apply("o+t", S_IFDIR | 0755), S_IFDIR | 0755);
    assert_int_equal(apply("+t", S_IFDIR | 0755), S_IFDIR | 01755);
    assert_int_equal(apply("g=u", S_IFREG | 0640), S_IFREG | 0660);
    assert_int_equal(apply("a-w,u+w", S_IFREG | 0666), S_IFREG | 0644);
    for (size_t i = 0; i < KILN_ARRAY_SIZE(bad); i++) {
        assert_int_equal(kiln__fo_modeset_parse(bad[i], &ms), KILN_EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
        T(test_merge),   T(test_diff_prefix), T(test_diff_computed),
        T(test_fnmatch), T(test_patterns),
        T(test_patterns_linear),    T(test_modestr),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
