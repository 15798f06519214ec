/* The descriptor helpers (llb/pbdesc.c) and the Go JSON walker's style
 * switches (llb/pbwalk.c). Whole outputs are checked by test_llb_dump and
 * test_solver_cachemap. */
#include <stdlib.h>
#include <string.h>

#include "llb/graph.h"
#include "llb/pbdesc.h"
#include "llb/pbwalk.h"
#include "testutil.h"

static unsigned no_flags(const ProtobufCMessageDescriptor *d,
                         const ProtobufCFieldDescriptor *f)
{
    return 0;
}

static unsigned omit_range_end(const ProtobufCMessageDescriptor *d,
                               const ProtobufCFieldDescriptor *f)
{
    return d == &pb__range__descriptor && strcmp(f->name, "end") == 0
               ? KILN_PBWALK_OMIT
               : kiln__pbwalk_gogo_flags(d, f);
}

static const char *no_oneof(const ProtobufCMessageDescriptor *d)
{
    return NULL;
}

static const char *rename_by_id(const ProtobufCFieldDescriptor *f)
{
    return strcmp(f->name, "byID") == 0 ? "byId" : f->name;
}

static const kiln__pbwalk_style_t gogo = {kiln__pbwalk_gogo_flags,
                                          kiln__pbwalk_oneof_name, NULL,
                                          KILN_PBWALK_UNSET_ONEOF_NULL};
static const kiln__pbwalk_style_t plain = {no_flags, kiln__pbwalk_oneof_name,
                                           rename_by_id, 0};

static void json_is(const kiln__pbwalk_style_t *st, const ProtobufCMessage *m,
                    const char *want)
{
    kiln__buf_t b = KILN_BUF_INIT;
    kiln__gojson_t w;

    kiln__gojson_init(&w, &b, 0);
    assert_int_equal(kiln__pbwalk_json(&w, st, m->descriptor, m), 0);
    assert_true(kiln__gojson_ok(&w));
    assert_string_equal((const char *)b.data, want);
    kiln__buf_free(&b);
}

static const ProtobufCMessageDescriptor *descs[96];
static size_t n_descs;

static void collect(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < n_descs; i++) {
        if (descs[i] == d) {
            return;
        }
    }
    assert_true(n_descs < KILN_ARRAY_SIZE(descs));
    descs[n_descs++] = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
            collect(d->fields[i].descriptor);
        }
    }
}

/* Exactly the map<> fields of ops.proto are maps; CacheOptionsEntry-like
 * names or other two-field messages are not. */
static void test_map_fields(void **state)
{
    static const char *const want[] = {
        "pb.Definition.metadata", "pb.OpMetadata.description",
        "pb.OpMetadata.caps",     "pb.Source.locations",
        "pb.SourceOp.attrs",      "pb.BuildOp.inputs",
        "pb.BuildOp.attrs",
    };
    size_t found = 0;

    collect(&pb__definition__descriptor);
    collect(&pb__op__descriptor);
    for (size_t i = 0; i < n_descs; i++) {
        for (unsigned j = 0; j < descs[i]->n_fields; j++) {
            char name[128];
            bool listed = false;

            snprintf(name, sizeof(name), "%s.%s", descs[i]->name,
                     descs[i]->fields[j].name);
            for (size_t k = 0; k < KILN_ARRAY_SIZE(want); k++) {
                listed = listed || strcmp(want[k], name) == 0;
            }
            assert_int_equal(kiln__pb_is_map(&descs[i]->fields[j]), listed);
            found += listed;
        }
    }
    assert_int_equal(found, KILN_ARRAY_SIZE(want));
}

static void test_wire_and_sizes(void **state)
{
    assert_int_equal(kiln__pb_wire_type(PROTOBUF_C_TYPE_ENUM),
                     KILN_PB_WIRE_VARINT);
    assert_int_equal(kiln__pb_wire_type(PROTOBUF_C_TYPE_SFIXED64),
                     KILN_PB_WIRE_FIXED64);
    assert_int_equal(kiln__pb_wire_type(PROTOBUF_C_TYPE_FLOAT),
                     KILN_PB_WIRE_FIXED32);
    assert_int_equal(kiln__pb_wire_type(PROTOBUF_C_TYPE_MESSAGE),
                     KILN_PB_WIRE_LEN);
    assert_int_equal(kiln__pb_elem_size(PROTOBUF_C_TYPE_DOUBLE), 8);
    assert_int_equal(kiln__pb_elem_size(PROTOBUF_C_TYPE_ENUM), sizeof(int));
    assert_int_equal(kiln__pb_elem_size(PROTOBUF_C_TYPE_BOOL),
                     sizeof(protobuf_c_boolean));
    assert_int_equal(kiln__pb_elem_size(PROTOBUF_C_TYPE_BYTES),
                     sizeof(ProtobufCBinaryData));
}

static void test_oneof_shapes(void **state)
{
    Pb__UserOpt u = PB__USER_OPT__INIT;
    kiln__pbwalk_style_t refuse = plain;
    kiln__buf_t b = KILN_BUF_INIT;
    kiln__gojson_t w;

    json_is(&gogo, &u.base, "{\"User\":null}");
    json_is(&plain, &u.base, "{\"User\":{}}");
    u.user_case = PB__USER_OPT__USER_BY_ID;
    json_is(&gogo, &u.base, "{\"User\":{}}"); /* set, but zero */
    u.byid = 7;
    json_is(&gogo, &u.base, "{\"User\":{\"byID\":7}}");
    json_is(&plain, &u.base, "{\"User\":{\"byId\":7}}");

    refuse.oneof_name = no_oneof;
    kiln__gojson_init(&w, &b, 0);
    assert_int_equal(kiln__pbwalk_json(&w, &refuse, u.base.descriptor, &u.base),
                     KILN_EINVAL);
    kiln__buf_free(&b);
}

static void test_field_flags(void **state)
{
    Pb__Range r = PB__RANGE__INIT;
    Pb__Position end = PB__POSITION__INIT;
    kiln__pbwalk_style_t omit = gogo;

    json_is(&plain, &r.base, "{}");
    json_is(&gogo, &r.base, "{\"start\":{},\"end\":{}}");
    end.line = 3;
    r.end = &end;
    json_is(&plain, &r.base, "{\"end\":{\"line\":3}}");
    omit.field_flags = omit_range_end;
    json_is(&omit, &r.base, "{\"start\":{}}");
}

/* Sorted by key, the last of repeated keys wins, a missing message value
 * is null or (KILN_PBWALK_ZERO_VALUES) the zero message. */
static void test_maps(void **state)
{
    Pb__OpMetadata md = PB__OP_METADATA__INIT;
    Pb__OpMetadata__DescriptionEntry d[3] = {
        PB__OP_METADATA__DESCRIPTION_ENTRY__INIT,
        PB__OP_METADATA__DESCRIPTION_ENTRY__INIT,
        PB__OP_METADATA__DESCRIPTION_ENTRY__INIT};
    Pb__OpMetadata__DescriptionEntry *dp[] = {&d[0], &d[1], &d[2]};
    Pb__Definition def = PB__DEFINITION__INIT;
    Pb__Definition__MetadataEntry e = PB__DEFINITION__METADATA_ENTRY__INIT;
    Pb__Definition__MetadataEntry *ep[] = {&e};

    d[0].key = "b";
    d[0].value = "2";
    d[1].key = "a";
    d[1].value = "1";
    d[2].key = "b";
    d[2].value = "3";
    md.n_description = 3;
    md.description = dp;
    json_is(&plain, &md.base, "{\"description\":{\"a\":\"1\",\"b\":\"3\"}}");

    e.key = "k";
    def.n_metadata = 1;
    def.metadata = ep;
    json_is(&plain, &def.base, "{\"metadata\":{\"k\":null}}");
    json_is(&gogo, &def.base, "{\"metadata\":{\"k\":{\"caps\":null}}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_fields),
        cmocka_unit_test(test_wire_and_sizes),
        cmocka_unit_test(test_oneof_shapes),
        cmocka_unit_test(test_field_flags),
        cmocka_unit_test(test_maps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
