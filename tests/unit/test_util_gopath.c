/* Go's path.Clean, path.Join and path.Base (util/gopath.c), against the
 * cases of Go's own path_test.go. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"
#include "util/gopath.h"

static const char *const clean_cases[][2] = {
    {"", "."},
    {"abc", "abc"},
    {"abc/def", "abc/def"},
    {".", "."},
    {"..", ".."},
    {"../..", "../.."},
    {"../../abc", "../../abc"},
    {"/abc", "/abc"},
    {"/", "/"},
    {"abc/", "abc"},
    {"./", "."},
    {"../", ".."},
    {"/abc/", "/abc"},
    {"abc//def//ghi", "abc/def/ghi"},
    {"//abc", "/abc"},
    {"///abc", "/abc"},
    {"//abc//", "/abc"},
    {"abc/./def", "abc/def"},
    {"/./abc/def", "/abc/def"},
    {"abc/.", "abc"},
    {"abc/def/ghi/../jkl", "abc/def/jkl"},
    {"abc/def/../ghi/../jkl", "abc/jkl"},
    {"abc/def/..", "abc"},
    {"abc/def/../..", "."},
    {"/abc/def/../..", "/"},
    {"abc/def/../../..", ".."},
    {"/abc/def/../../..", "/"},
    {"abc/def/../../../ghi/jkl/../../../mno", "../../mno"},
    {"abc/./../def", "def"},
    {"abc//./../def", "def"},
    {"abc/../../././../def", "../../def"},
    {"/a/.b/..c/", "/a/.b/..c"},
};

/* Checks and frees a malloc'ed result. */
static void path_is(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_clean(void **state)
{
    for (size_t i = 0; i < KILN_ARRAY_SIZE(clean_cases); i++) {
        path_is(kiln__gopath_clean(clean_cases[i][0]), clean_cases[i][1]);
    }
}

/* In place, with exactly the room the header asks for. */
static void test_clean_in_place(void **state)
{
    for (size_t i = 0; i < KILN_ARRAY_SIZE(clean_cases); i++) {
        size_t n = strlen(clean_cases[i][0]);
        char *buf = malloc(n + 2);
        size_t len;

        assert_non_null(buf);
        memcpy(buf, clean_cases[i][0], n + 1);
        len = kiln__gopath_clean_in_place(buf);
        assert_string_equal(buf, clean_cases[i][1]);
        assert_int_equal(len, strlen(clean_cases[i][1]));
        free(buf);
    }
}

static void test_join(void **state)
{
    static const char *const cases[][3] = {
        {"a", "b", "a/b"},    {"a", "", "a"},       {"", "b", "b"},
        {"/", "a", "/a"},     {"/", "a/b", "/a/b"}, {"/", "", "/"},
        {"a/", "b", "a/b"},   {"a/", "", "a"},      {"", "", ""},
        {"/a", "../..", "/"}, {"a", "../..", ".."}, {"", ".", "."},
    };

    for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
        size_t size = kiln__gopath_join_size(cases[i][0], cases[i][1]);
        char *buf = malloc(size);

        path_is(kiln__gopath_join(cases[i][0], cases[i][1]), cases[i][2]);
        assert_non_null(buf);
        assert_int_equal(kiln__gopath_join_to(buf, cases[i][0], cases[i][1]),
                         strlen(cases[i][2]));
        path_is(buf, cases[i][2]);
    }
}

static void test_join_root(void **state)
{
    static const char *const cases[][2] = {
        {"", "/"}, {"./x/", "/x"}, {"../../etc", "/etc"}, {"//a//", "/a"}};

    for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
        path_is(kiln__gopath_join_root(cases[i][0]), cases[i][1]);
    }
}

static void test_base(void **state)
{
    static const char *const cases[][2] = {
        {"", "."},        {".", "."},         {"/.", "."},
        {"/", "/"},       {"////", "/"},      {"x/", "x"},
        {"abc", "abc"},   {"abc/def", "def"}, {"a/b/.x", ".x"},
        {"a/b/c.", "c."}, {"a/b/c.x", "c.x"},
    };

    for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
        path_is(kiln__gopath_base(cases[i][0]), cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean), cmocka_unit_test(test_clean_in_place),
        cmocka_unit_test(test_join),  cmocka_unit_test(test_join_root),
        cmocka_unit_test(test_base),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
