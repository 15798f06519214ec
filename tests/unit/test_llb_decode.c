/* Decoding BuildKit's vectors: digests, graph, round trips. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "llb/graph.h"
#include "llb/pbenc.h"
#include "testutil.h"

/* Every vector decodes and its op digests are BuildKit's, in order. */
static void test_vectors_digests(void **state)
{
    for (size_t k = 0; k < kt_n_vectors; k++) {
        char rel[128];
        size_t pb_len, json_len, n;
        uint8_t *pb, *json;
        char **lines;
        kiln_definition_t *def = NULL;
        kiln_error_t err = {0};

        snprintf(rel, sizeof(rel), "llb/%s.pb", kt_vectors[k]);
        pb = kt_read_data(rel, &pb_len);
        snprintf(rel, sizeof(rel), "llb/%s.json", kt_vectors[k]);
        json = kt_read_data(rel, &json_len);
        if (kiln_definition_load(pb, pb_len, &err, &def) != 0) {
            fail_msg("%s: %s", kt_vectors[k], err.message);
        }
        n = kt_split_lines((char *)json, &lines);
        assert_int_equal(kiln_definition_op_count(def), n);
        for (size_t i = 0; i < n; i++) {
            json_error_t jerr;
            json_t *obj = json_loads(lines[i], 0, &jerr);
            assert_non_null(obj);
            assert_string_equal(
                kiln_definition_op_digest(def, i),
                json_string_value(json_object_get(obj, "Digest")));
            json_decref(obj);
        }
        assert_non_null(def->terminal);
        assert_ptr_equal(def->terminal, &def->vertices[n - 1]);
        free(lines);
        free(json);
        free(pb);
        kiln_definition_free(def);
    }
}

/* The result of e_run_file is the FileOp, output 0. */
static void test_result(void **state)
{
    size_t len;
    uint8_t *pb = kt_read_data("llb/e_run_file.pb", &len);
    kiln_definition_t *def = NULL;
    int64_t index = -1;

    assert_int_equal(kiln_definition_load(pb, len, NULL, &def), 0);
    assert_string_equal(kiln_definition_result(def, &index),
                        "sha256:84dbb331d3f6d35e9ef242236f7e8c10e4f6ba3fd7fad2e"
                        "01167ac27af0c1da2");
    assert_int_equal(index, 0);
    {
        kiln__vertex_t *exec = kiln__definition_find(
            def, "sha256:404a45e0e3e0bd1ba5e43d6242b6d9261df23d0914985944d7b7"
                 "9432fca0c159");
        assert_non_null(exec);
        assert_int_equal(exec->kind, KILN_OP_EXEC);
        assert_int_equal(exec->n_outputs, 2);
        assert_int_equal(exec->op->n_inputs, 1);
        assert_string_equal(exec->inputs[0]->digest,
                            "sha256:1d86b3537e7587f6f080683a05faa30691f6a01ed2"
                            "2b1852f7d7aeb34badef23");
    }
    kiln_definition_free(def);
    free(pb);
}

/*
 * Decode -> encode keeps bytes: whole definitions (the vectors come from a
 * gogo-era client that sorts maps) and every op in legacy order.
 */
static void test_round_trip(void **state)
{
    for (size_t k = 0; k < kt_n_vectors; k++) {
        char rel[128];
        size_t len, out_len;
        uint8_t *pb, *out;
        kiln_definition_t *def = NULL;

        snprintf(rel, sizeof(rel), "llb/%s.pb", kt_vectors[k]);
        pb = kt_read_data(rel, &len);
        assert_int_equal(kiln_definition_load(pb, len, NULL, &def), 0);
        assert_int_equal(kiln_definition_encode(def, &out, &out_len, NULL), 0);
        kt_assert_bytes_equal(out, out_len, pb, len);
        kiln_free(out);
        for (size_t i = 0; i < def->n_vertices; i++) {
            kiln__buf_t b = KILN_BUF_INIT;
            kiln__vertex_t *v = &def->vertices[i];
            assert_int_equal(
                kiln__pb_encode(&v->op->base, KILN_PB_ORDER_LEGACY, &b), 0);
            kt_assert_bytes_equal(b.data, b.len, v->raw, v->raw_len);
            kiln__buf_free(&b);
        }
        kiln_definition_free(def);
        free(pb);
    }
}

/* Unknown fields survive decode -> encode (appended last, as Go does). */
static void test_unknown_fields_kept(void **state)
{
    /* SourceOp{identifier:"a://b"} + unknown field 99 varint 7, and an
     * unknown length-delimited field 100 "xy". */
    static const uint8_t op_bytes[] = {
        0x1a, 0x0f, 0x0a, 0x05, 'a',  ':',  '/', '/', 'b',
        0x98, 0x06, 0x07, 0xa2, 0x06, 0x02, 'x', 'y',
    };
    Pb__Op *op = pb__op__unpack(NULL, sizeof(op_bytes), op_bytes);
    kiln__buf_t b = KILN_BUF_INIT;

    assert_non_null(op);
    assert_int_equal(kiln__pb_encode(&op->base, KILN_PB_ORDER_LEGACY, &b), 0);
    kt_assert_bytes_equal(b.data, b.len, op_bytes, sizeof(op_bytes));
    kiln__buf_free(&b);
    pb__op__free_unpacked(op, NULL);
}

/* An empty definition is valid and means "nothing to build". */
static void test_empty(void **state)
{
    kiln_definition_t *def = NULL;

    assert_int_equal(kiln_definition_load("", 0, NULL, &def), 0);
    assert_int_equal(kiln_definition_op_count(def), 0);
    assert_null(kiln_definition_result(def, NULL));
    kiln_definition_free(def);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_digests),
        cmocka_unit_test(test_result),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_unknown_fields_kept),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
