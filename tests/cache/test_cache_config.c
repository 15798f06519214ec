/*
 * The cache config model: BuildKit's own exported caches (tests/data/
 * buildkit-cache) read and written back byte for byte, their manifests,
 * malformed configs rejected with a message naming the field, merging and
 * bounding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/config.h"
#include "cache/manifest.h"
#include "testutil.h"

/* The config and manifest blobs of the BuildKit caches. */
static const struct vec {
    const char *name, *index, *config;
    size_t n_layers, n_records;
} vecs[] = {
    {"e_run_file",
     "32d0905043eee720c538ca66907f048e5293466205c47fcc35ca6190b626aed3",
     "dc45ce9b107fe42d28690015ab7903fef618c0bfdc89924457cbc20e5a587258", 2, 5},
    {"f_diamond",
     "a2d1c99d5381a63efa4b4f40b84665a391b388d4ff3c9d2b0e981580f1e395f8",
     "609f18d3ac0522f5ded4d9793c69ef714f6be5cbe817ee441fc8e73033fc2b1a", 4, 7},
};

static uint8_t *blob(const char *name, const char *hex, size_t *len)
{
    char rel[256];

    snprintf(rel, sizeof(rel), "buildkit-cache/%s/blobs/sha256/%s", name,
             hex);
    return kt_read_data(rel, len);
}

static kiln__cc_t *parse_ok(const void *data, size_t len)
{
    kiln_error_t err = {0};
    kiln__cc_t *cc = NULL;

    if (kiln__cc_parse(data, len, &cc, &err) != 0) {
        fail_msg("parse: %s", err.message);
    }
    return cc;
}

static void parse_fails(const char *json, int code, const char *msg)
{
    kiln_error_t err = {0};
    kiln__cc_t *cc = NULL;

    assert_int_equal(kiln__cc_parse(json, strlen(json), &cc, &err), code);
    assert_null(cc);
    if (strstr(err.message, msg) == NULL) {
        fail_msg("\"%s\" does not say \"%s\"", err.message, msg);
    }
}

/* BuildKit's configs parse, and write back to the very same bytes. */
static void test_buildkit_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < KILN_ARRAY_SIZE(vecs); i++) {
        size_t len, out_len;
        uint8_t *data = blob(vecs[i].name, vecs[i].config, &len);
        kiln__cc_t *cc = parse_ok(data, len);
        kiln_error_t err = {0};
        char *out = NULL;

        assert_int_equal(cc->n_layers, vecs[i].n_layers);
        assert_int_equal(cc->n_records, vecs[i].n_records);
        assert_int_equal(kiln__cc_write(cc, &out, &out_len, &err), 0);
        kt_assert_bytes_equal((const uint8_t *)out, out_len, data, len);
        free(out);
        free(data);
        kiln__cc_free(cc);
    }
}

/* What the f_diamond config says, field by field. */
static void test_buildkit_fields(void **state)
{
    size_t len;
    uint8_t *data = blob("f_diamond", vecs[1].config, &len);
    kiln__cc_t *cc = parse_ok(data, len);
    int64_t *chain = NULL;
    size_t n = 0;

    (void)state;
    /* layers[0] has parent 2; layers[2] none. */
    assert_int_equal(cc->layers[0].parent, 2);
    assert_int_equal(cc->layers[2].parent, -1);
    /* records[2]: result layer 3; two inputs, two alternatives each. */
    assert_int_equal(cc->records[2].n_results, 1);
    assert_int_equal(cc->records[2].results[0].layer, 3);
    assert_string_equal(cc->records[2].results[0].created,
                        "2026-11-23T19:02:04.932600774Z");
    assert_int_equal(cc->records[2].n_inputs, 2);
    assert_int_equal(cc->records[2].inputs[0].n, 2);
    assert_string_equal(cc->records[2].inputs[0].links[0].selector,
                        "sha256:6a50dc8584134c7de537c0052ff6d236bf874355e050c9"
                        "0523e0c5ff2a543a28");
    assert_int_equal(cc->records[2].inputs[0].links[1].link, 6);
    assert_string_equal(cc->records[2].inputs[0].links[1].selector, "");
    /* Layer 0's chain: 2 then 0. */
    assert_int_equal(kiln__cc_layer_chain(cc, 0, &chain, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(chain[0], 2);
    assert_int_equal(chain[1], 0);
    free(chain);
    free(data);
    kiln__cc_free(cc);
}

/* The OCI index around BuildKit's configs: the config's descriptor, and
 * the layers' media types, sizes and diff_ids. */
static void test_buildkit_manifest(void **state)
{
    (void)state;
    for (size_t i = 0; i < KILN_ARRAY_SIZE(vecs); i++) {
        size_t len, clen;
        uint8_t *data = blob(vecs[i].name, vecs[i].index, &len);
        uint8_t *cfg = blob(vecs[i].name, vecs[i].config, &clen);
        kiln__cache_manifest_t m;
        kiln_error_t err = {0};
        kiln__cc_t *cc = parse_ok(cfg, clen);

        assert_int_equal(kiln__cache_manifest_parse(data, len, &m, &err), 0);
        assert_string_equal(m.config_digest + 7, vecs[i].config);
        assert_int_equal(m.config_size, (int64_t)clen);
        assert_int_equal(m.n_layers, vecs[i].n_layers);
        assert_int_equal(kiln__cache_manifest_attach(&m, cc, &err), 0);
        for (size_t k = 0; k < cc->n_layers; k++) {
            assert_string_equal(cc->layers[k].media_type,
                                "application/vnd.oci.image.layer.v1.tar+gzip");
            assert_true(cc->layers[k].size > 0);
            assert_true(kiln__digest_valid(cc->layers[k].diff_id));
        }
        kiln__cache_manifest_clear(&m);
        kiln__cc_free(cc);
        free(data);
        free(cfg);
    }
}

/* Written as an image manifest and as an index, and read back. */
static void test_manifest_write(void **state)
{
    size_t clen;
    uint8_t *cfg = blob("e_run_file", vecs[0].config, &clen);
    uint8_t *idx;
    size_t ilen;
    kiln__cc_t *cc = parse_ok(cfg, clen);
    kiln__cache_manifest_t m;
    kiln_error_t err = {0};

    (void)state;
    idx = blob("e_run_file", vecs[0].index, &ilen);
    assert_int_equal(kiln__cache_manifest_parse(idx, ilen, &m, &err), 0);
    assert_int_equal(kiln__cache_manifest_attach(&m, cc, &err), 0);
    kiln__cache_manifest_clear(&m);
    for (int form = 0; form < 2; form++) {
        char *out = NULL, digest[KILN_DIGEST_STRLEN + 1];
        const char *mt = NULL;
        size_t len = 0;

        assert_int_equal(kiln__sha256_digest(cfg, clen, digest), 0);
        assert_int_equal(kiln__cache_manifest_write(cc, digest, (int64_t)clen,
                                                    form == 0, true, &out,
                                                    &len, &mt, &err),
                         0);
        assert_string_equal(mt, form == 0
                                    ? "application/vnd.oci.image.manifest.v1+json"
                                    : "application/vnd.oci.image.index.v1+json");
        assert_int_equal(kiln__cache_manifest_parse(out, len, &m, &err), 0);
        assert_string_equal(m.config_digest, digest);
        assert_int_equal(m.n_layers, 2);
        assert_string_equal(m.layers[1].diff_id,
                            "sha256:5a1a72794dc6de33471bfe2156a6f531196807329a"
                            "6d8036e173b59b681f794b");
        kiln__cache_manifest_clear(&m);
        if (form == 1) {
            /* BuildKit's own index, byte for byte. */
            kt_assert_bytes_equal((const uint8_t *)out, len, idx, ilen);
        }
        free(out);
    }
    free(idx);
    free(cfg);
    kiln__cc_free(cc);
}

static void test_malformed(void **state)
{
    static const char d[] = "sha256:0123456789abcdef0123456789abcdef0123456789"
                            "abcdef0123456789abcdef";
    char buf[1024];

    (void)state;
    parse_fails("[]", KILN_EBADMSG, "not a JSON object");
    parse_fails("{\"layers\":{}}", KILN_EBADMSG, "layers: not an array");
    parse_fails("{\"layers\":[{\"blob\":\"sha256:12\"}]}", KILN_EBADMSG,
                "layers[0]: blob is not a sha256 digest");
    snprintf(buf, sizeof(buf),
             "{\"layers\":[{\"blob\":\"%s\",\"parent\":1},{\"blob\":\"%s\"}]}",
             d, d);
    parse_fails(buf, KILN_EBADMSG, "layers[0]: its parents form a loop");
    snprintf(buf, sizeof(buf), "{\"layers\":[{\"blob\":\"%s\",\"parent\":5}]}",
             d);
    parse_fails(buf, KILN_EBADMSG, "layers[0]: parent is out of range");
    snprintf(buf, sizeof(buf),
             "{\"records\":[{\"digest\":\"%s\",\"inputs\":[[{\"link\":9}]]}]}",
             d);
    parse_fails(buf, KILN_EBADMSG,
                "records[0].inputs[0][0]: link 9 is out of range (1 records)");
    snprintf(buf, sizeof(buf),
             "{\"records\":[{\"digest\":\"%s\",\"inputs\":[[]]}]}", d);
    parse_fails(buf, KILN_EBADMSG, "records[0].inputs[0]: not a non-empty");
    snprintf(buf, sizeof(buf),
             "{\"records\":[{\"digest\":\"%s\",\"inputs\":[[{\"link\":1}]]},"
             "{\"digest\":\"%s\",\"inputs\":[[{\"link\":0}]]}]}",
             d, d);
    parse_fails(buf, KILN_EBADMSG, "input links form a loop");
    snprintf(buf, sizeof(buf),
             "{\"records\":[{\"digest\":\"%s\",\"layers\":[{\"layer\":0}]}]}",
             d);
    parse_fails(buf, KILN_EBADMSG, "records[0].layers[0]: layer is out of");
    parse_fails("{\"records\":[{\"digest\":7}]}", KILN_EBADMSG,
                "records[0].digest: not a string");
    parse_fails("{\"records\":[{\"digest\":\"md5:x\"}]}", KILN_EBADMSG,
                "records[0]: digest is not a sha256 digest");
    parse_fails("{\"layers\":[", KILN_EBADMSG, "cache config:");
    {
        size_t big = KILN_CC_MAX_BYTES + 1;
        char *huge = malloc(big + 1);
        kiln__cc_t *cc = NULL;

        assert_non_null(huge);
        memset(huge, ' ', big);
        huge[big] = 0;
        assert_int_equal(kiln__cc_parse(huge, big, &cc, NULL), KILN_E2BIG);
        free(huge);
    }
}

static char *write_ok(kiln__cc_t *cc)
{
    char *out = NULL;
    size_t len;

    assert_int_equal(kiln__cc_write(cc, &out, &len, NULL), 0);
    return out;
}

/* The union of two BuildKit caches holds every record of both once; a
 * merge of a cache into itself changes nothing. */
static void test_merge(void **state)
{
    size_t la, lb;
    uint8_t *a = blob("e_run_file", vecs[0].config, &la);
    uint8_t *b = blob("f_diamond", vecs[1].config, &lb);
    kiln__cc_t *x = parse_ok(a, la), *y = parse_ok(b, lb);
    kiln__cc_t *self = parse_ok(a, la);
    char *before, *after;

    (void)state;
    before = write_ok(x);
    assert_int_equal(kiln__cc_merge(x, self, NULL), 0);
    after = write_ok(x);
    assert_string_equal(before, after);
    free(after);
    assert_int_equal(kiln__cc_merge(x, y, NULL), 0);
    /* Both hold the two source records 643adf... and 709c8e...: shared. */
    assert_int_equal(x->n_records, 5 + 7 - 2);
    assert_int_equal(x->n_layers, 2 + 4);
    free(write_ok(x));
    {
        size_t with = 0;
        for (size_t i = 0; i < x->n_records; i++) {
            with += x->records[i].n_results > 0;
        }
        assert_int_equal(with, 2 + 3);
    }
    /* Merging the other way round gives the same bytes. */
    {
        kiln__cc_t *p = parse_ok(b, lb), *q = parse_ok(a, la);
        char *one, *two;

        assert_int_equal(kiln__cc_merge(p, q, NULL), 0);
        one = write_ok(p);
        two = write_ok(x);
        assert_string_equal(one, two);
        free(one);
        free(two);
        kiln__cc_free(p);
        kiln__cc_free(q);
    }
    free(before);
    free(a);
    free(b);
    kiln__cc_free(x);
    kiln__cc_free(y);
    kiln__cc_free(self);
}

/* max-records keeps the newest results and what they link to. */
static void test_limit(void **state)
{
    size_t len, dropped = 0;
    uint8_t *data = blob("f_diamond", vecs[1].config, &len);
    kiln__cc_t *cc = parse_ok(data, len);
    size_t with = 0;

    (void)state;
    assert_int_equal(kiln__cc_limit(cc, 1, 0, &dropped, NULL), 0);
    for (size_t i = 0; i < cc->n_records; i++) {
        with += cc->records[i].n_results > 0;
    }
    assert_int_equal(with, 1);
    /* The newest result is records[2] (19:02:04.9326); it links records
     * 0, 1, 3 and 6, and 1 and 3 link 4 and 5: all 7 stay but the two
     * older results go, and their layers 0 and 1 with them. */
    assert_int_equal(cc->n_records, 7);
    assert_int_equal(dropped, 0);
    assert_int_equal(cc->n_layers, 1);
    free(write_ok(cc));
    /* A bound on age drops every result (they are from 2026-11-23). */
    assert_int_equal(kiln__cc_limit(cc, 0, 60, &dropped, NULL), 0);
    assert_int_equal(cc->n_records, 0);
    assert_int_equal(dropped, 7);
    free(data);
    kiln__cc_free(cc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buildkit_roundtrip),
        cmocka_unit_test(test_buildkit_fields),
        cmocka_unit_test(test_buildkit_manifest),
        cmocka_unit_test(test_manifest_write),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
