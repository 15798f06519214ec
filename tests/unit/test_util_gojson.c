/* The Go encoding/json writer (util/gojson.c): escaping, base64, nesting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util/gojson.h"

static void escaped_is(const char *in, size_t len, unsigned flags,
                       const char *want)
{
    kiln__buf_t b = KILN_BUF_INIT;

    kiln__gojson_escape(&b, in, len, flags);
    assert_true(kiln__buf_ok(&b));
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    kiln__buf_free(&b);
}

#define ESCAPED_IS(lit, flags, want)                                           \
    escaped_is(lit, sizeof(lit) - 1, flags, want)

/* Go < 1.22 (BuildKit <= v0.16, buildctl v0.11) and Go >= 1.22 differ only
 * in U+0008 and U+000C. */
static void test_escape_flavours(void **state)
{
    ESCAPED_IS("\b\f", 0, "\"\\u0008\\u000c\"");
    ESCAPED_IS("\b\f", KILN_GOJSON_GO122, "\"\\b\\f\"");
    ESCAPED_IS("\"\\\n\r\t", 0, "\"\\\"\\\\\\n\\r\\t\"");
    ESCAPED_IS("\"\\\n\r\t", KILN_GOJSON_GO122, "\"\\\"\\\\\\n\\r\\t\"");
    ESCAPED_IS("\x01\x1f\x7f/", 0, "\"\\u0001\\u001f\x7f/\"");
    ESCAPED_IS("a\0b", KILN_GOJSON_GO122, "\"a\\u0000b\"");
}

static void test_escape_html_and_unicode(void **state)
{
    ESCAPED_IS("<a>&", 0, "\"\\u003ca\\u003e\\u0026\"");
    ESCAPED_IS("\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaa", 0,
               "\"\\u2028\\u2029\xe2\x80\xaa\"");
    ESCAPED_IS("\xc3\xa9\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 0,
               "\"\xc3\xa9\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"");
}

/* Each byte of an invalid sequence becomes U+FFFD, as utf8.DecodeRune
 * reports it: overlong forms, surrogates, past U+10FFFF, cut short. */
static void test_escape_invalid_utf8(void **state)
{
    ESCAPED_IS("\xc0\xaf", 0, "\"\\ufffd\\ufffd\"");
    ESCAPED_IS("\xe0\x80\xaf", 0, "\"\\ufffd\\ufffd\\ufffd\"");
    ESCAPED_IS("\xed\xa0\x80", 0, "\"\\ufffd\\ufffd\\ufffd\"");
    ESCAPED_IS("\xf4\x90\x80\x80", 0, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    ESCAPED_IS("\xf5", 0, "\"\\ufffd\"");
    ESCAPED_IS("a\xe2\x82", 0, "\"a\\ufffd\\ufffd\"");
    ESCAPED_IS("\x80z", 0, "\"\\ufffdz\"");
}

static void test_base64(void **state)
{
    static const char *const cases[][2] = {
        {"", "\"\""},
        {"f", "\"Zg==\""},
        {"fo", "\"Zm8=\""},
        {"foo", "\"Zm9v\""},
        {"foob", "\"Zm9vYg==\""},
        {"\xff\xfe\xfd", "\"//79\""},
    };

    for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
        kiln__buf_t b = KILN_BUF_INIT;
        kiln__gojson_t w;

        kiln__gojson_init(&w, &b, 0);
        kiln__gojson_base64(&w, cases[i][0], strlen(cases[i][0]));
        assert_true(kiln__gojson_ok(&w));
        assert_string_equal((const char *)b.data, cases[i][1]);
        kiln__buf_free(&b);
    }
}

static void test_writer_shapes(void **state)
{
    kiln__buf_t b = KILN_BUF_INIT;
    kiln__gojson_t w;

    kiln__gojson_init(&w, &b, KILN_GOJSON_GO122);
    kiln__gojson_begin_object(&w);
    kiln__gojson_key(&w, "k\b");
    kiln__gojson_begin_array(&w);
    kiln__gojson_double(&w, 1.5);
    kiln__gojson_double(&w, NAN);
    kiln__gojson_string(&w, "x\fy", 3);
    kiln__gojson_begin_array(&w);
    kiln__gojson_end_array(&w);
    kiln__gojson_end_array(&w);
    kiln__gojson_key(&w, "n");
    kiln__gojson_int(&w, INT64_MIN);
    kiln__gojson_end_object(&w);
    assert_true(kiln__gojson_ok(&w));
    assert_string_equal((const char *)b.data,
                        "{\"k\\b\":[1.5,null,\"x\\fy\",[]],"
                        "\"n\":-9223372036854775808}");
    kiln__buf_free(&b);
}

static void test_writer_misuse(void **state)
{
    kiln__buf_t b = KILN_BUF_INIT;
    kiln__gojson_t w;

    kiln__gojson_init(&w, &b, 0);
    kiln__gojson_key(&w, "no object");
    assert_false(kiln__gojson_ok(&w));

    kiln__gojson_init(&w, &b, 0);
    kiln__gojson_begin_object(&w);
    kiln__gojson_key(&w, "a");
    kiln__gojson_end_object(&w); /* the key has no value */
    assert_false(kiln__gojson_ok(&w));

    kiln__gojson_init(&w, &b, 0);
    for (unsigned i = 0; i < KILN_GOJSON_MAX_DEPTH; i++) {
        kiln__gojson_begin_array(&w);
    }
    assert_false(kiln__gojson_ok(&w));
    kiln__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_flavours),
        cmocka_unit_test(test_escape_html_and_unicode),
        cmocka_unit_test(test_escape_invalid_utf8),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_writer_shapes),
        cmocka_unit_test(test_writer_misuse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
