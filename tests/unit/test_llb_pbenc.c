/* The deterministic encoder against llb-wire.md §2's byte examples. */
#include <stdlib.h>
#include <string.h>

#include "llb/graph.h"
#include "llb/pbenc.h"
#include "testutil.h"

static void encode_op(const Pb__Op *op, enum kiln__pb_order order,
                      kiln__buf_t *b)
{
    assert_int_equal(kiln__pb_encode(&op->base, order, b), 0);
}

/* llb.Image("busybox") for linux/amd64, both orders, and its terminal. */
static void test_image_op(void **state)
{
    static const uint8_t current[] =
        "\x52\x0e\x0a\x05"
        "amd64"
        "\x12\x05"
        "linux"
        "\x5a\x00"
        "\x1a\x31\x0a\x2f"
        "docker-image://docker.io/library/busybox:latest";
    Pb__Op op = PB__OP__INIT;
    Pb__Platform plat = PB__PLATFORM__INIT;
    Pb__WorkerConstraints wc = PB__WORKER_CONSTRAINTS__INIT;
    Pb__SourceOp src = PB__SOURCE_OP__INIT;
    Pb__Op term = PB__OP__INIT;
    Pb__Input in = PB__INPUT__INIT;
    Pb__Input *inputs[] = {&in};
    kiln__buf_t b = KILN_BUF_INIT;
    char digest[KILN_DIGEST_STRLEN + 1];

    plat.architecture = "amd64";
    plat.os = "linux";
    src.identifier = "docker-image://docker.io/library/busybox:latest";
    op.platform = &plat;
    op.constraints = &wc;
    op.op_case = PB__OP__OP_SOURCE;
    op.source = &src;

    encode_op(&op, KILN_PB_ORDER_CURRENT, &b);
    kt_assert_bytes_equal(b.data, b.len, current, sizeof(current) - 1);
    kiln__sha256_digest(b.data, b.len, digest);
    assert_string_equal(digest, "sha256:e1432b8e2054abb034451c15f0a8ad49d07f58"
                                "92ca266016226fec77e95d20a0");
    kiln__buf_free(&b);

    in.digest = digest;
    term.n_inputs = 1;
    term.inputs = inputs;
    encode_op(&term, KILN_PB_ORDER_CURRENT, &b);
    assert_int_equal(b.len, 0x4b);
    kiln__sha256_digest(b.data, b.len, digest);
    assert_string_equal(digest, "sha256:ed184c8ee1441a77d21fb2e07c870c7dca33c5"
                                "e9b47f5033e4d70507d8c1f8c7");
    kiln__buf_free(&b);

    /* The same op as a gogo client writes it: body first. */
    encode_op(&op, KILN_PB_ORDER_LEGACY, &b);
    assert_int_equal(b.data[0], 0x1a);
    kiln__sha256_digest(b.data, b.len, digest);
    assert_string_equal(digest, "sha256:08a03f3ffe5fba421a6403c31e153425ced631"
                                "d108868f30e04985f99d69326e");
    kiln__buf_free(&b);
}

/* Map entries are sorted, and empty values are still written. */
static void test_map_example(void **state)
{
    Pb__SourceOp src = PB__SOURCE_OP__INIT;
    Pb__SourceOp__AttrsEntry e1 = PB__SOURCE_OP__ATTRS_ENTRY__INIT;
    Pb__SourceOp__AttrsEntry e2 = PB__SOURCE_OP__ATTRS_ENTRY__INIT;
    Pb__SourceOp__AttrsEntry e3 = PB__SOURCE_OP__ATTRS_ENTRY__INIT;
    Pb__SourceOp__AttrsEntry *attrs[] = {&e3, &e1, &e2};
    static const uint8_t expect[] = "\x12\x06\x0a\x01"
                                    "a"
                                    "\x12\x01"
                                    "x"
                                    "\x12\x1e\x0a\x13"
                                    "local.sharedkeyhint"
                                    "\x12\x07"
                                    "context"
                                    "\x12\x10\x0a\x0c"
                                    "local.unique"
                                    "\x12\x00";
    kiln__buf_t b = KILN_BUF_INIT;

    e1.key = "a";
    e1.value = "x";
    e2.key = "local.sharedkeyhint";
    e2.value = "context";
    e3.key = "local.unique";
    e3.value = "";
    src.n_attrs = 3;
    src.attrs = attrs;
    assert_int_equal(kiln__pb_encode(&src.base, KILN_PB_ORDER_CURRENT, &b), 0);
    kt_assert_bytes_equal(b.data, b.len, expect, sizeof(expect) - 1);
    kiln__buf_free(&b);
}

/* FileAction mkdir with negative values as ten-byte varints. */
static void test_file_action(void **state)
{
    static const uint8_t expect[] =
        "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
        "\x32\x12\x0a\x02"
        "/x"
        "\x10\xed\x03"
        "\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01";
    Pb__FileAction fa = PB__FILE_ACTION__INIT;
    Pb__FileActionMkDir mk = PB__FILE_ACTION_MK_DIR__INIT;
    kiln__buf_t b = KILN_BUF_INIT;

    mk.path = "/x";
    mk.mode = 0755;
    mk.timestamp = -1;
    fa.input = 0;
    fa.secondaryinput = -1;
    fa.output = 0;
    fa.action_case = PB__FILE_ACTION__ACTION_MKDIR;
    fa.mkdir = &mk;
    assert_int_equal(kiln__pb_encode(&fa.base, KILN_PB_ORDER_CURRENT, &b), 0);
    kt_assert_bytes_equal(b.data, b.len, expect, sizeof(expect) - 1);
    kiln__buf_free(&b);
}

/* Empty sub-messages are written; packed repeated scalars; oneof zero. */
static void test_presence_and_packing(void **state)
{
    Pb__Mount m = PB__MOUNT__INIT;
    Pb__TmpfsOpt t = PB__TMPFS_OPT__INIT;
    Pb__Meta meta = PB__META__INIT;
    int32_t codes[] = {0, -1, 2};
    Pb__UserOpt u = PB__USER_OPT__INIT;
    kiln__buf_t b = KILN_BUF_INIT;
    static const uint8_t mount_want[] = "\x08\x01\x30\x04\x9a\x01\x00";
    static const uint8_t meta_want[] =
        "\x62\x0c\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x02";
    static const uint8_t user_want[] = "\x10\x00";

    m.input = 1;
    m.mounttype = PB__MOUNT_TYPE__TMPFS;
    m.tmpfsopt = &t;
    assert_int_equal(kiln__pb_encode(&m.base, KILN_PB_ORDER_CURRENT, &b), 0);
    kt_assert_bytes_equal(b.data, b.len, mount_want, sizeof(mount_want) - 1);
    kiln__buf_free(&b);

    meta.n_validexitcodes = 3;
    meta.validexitcodes = codes;
    assert_int_equal(kiln__pb_encode(&meta.base, KILN_PB_ORDER_CURRENT, &b), 0);
    kt_assert_bytes_equal(b.data, b.len, meta_want, sizeof(meta_want) - 1);
    kiln__buf_free(&b);

    u.user_case = PB__USER_OPT__USER_BY_ID;
    u.byid = 0;
    assert_int_equal(kiln__pb_encode(&u.base, KILN_PB_ORDER_CURRENT, &b), 0);
    kt_assert_bytes_equal(b.data, b.len, user_want, sizeof(user_want) - 1);
    kiln__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_op),
        cmocka_unit_test(test_map_example),
        cmocka_unit_test(test_file_action),
        cmocka_unit_test(test_presence_and_packing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
