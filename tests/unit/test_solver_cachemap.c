/*
 * Cache maps: the worked example of cache.md (v0.17+ rules), the caches
 * BuildKit v0.11.6 exported for two vectors (v0.11 rules), and unit cases
 * for each normalisation and JSON rule.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachemap_fixtures.h"

/* ---- cache.md worked example --------------------------------------------- */

static void test_worked_example(void **state)
{
    exec_fx_t f;
    kiln__cachemap_t *cm;
    char rec[KILN_DIGEST_STRLEN + 1], slash[KILN_DIGEST_STRLEN + 1];

    exec_fx(&f);
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_json(cm,
                "{\"Type\":\"buildkit.exec.v0\",\"Exec\":{\"meta\":{\"args\""
                ":[\"/bin/sh\",\"-c\",\"echo a\\u003eb \\u0026\\u0026 "
                "true\"],\"cwd\":\"/\",\"removeMountStubsRecursive\":true}"
                ",\"mounts\":[{\"dest\":\"/\"},{\"input\":1,\"dest\":\""
                "/src\",\"output\":-1,\"readonly\":true}]},\"OS\":\"linux"
                "\",\"Arch\":\"amd64\"}");
    assert_string_equal(cm->digest, "sha256:02c290903477b2a932a5382b15eccc0e8e4"
                                    "1cfec63d0f80f72ae15c7ecc62e51");
    assert_int_equal(
        kiln__cachemap_record_digest(cm->digest, 0, KILN_CM_CURRENT, rec), 0);
    assert_string_equal(rec, "sha256:3cb4e5b4e358fca18a10577120091dd9dd80dac47"
                             "d27fcf57d063ccc92674758");
    /* Every mounted input has the selector "/" now; the root mount gets no
     * content key, the read-only one does, over the whole input. */
    digest_of_str("/", 1, slash);
    assert_int_equal(cm->n_deps, 2);
    assert_string_equal(cm->deps[0].selector, slash);
    assert_false(cm->deps[0].content);
    assert_string_equal(cm->deps[1].selector, slash);
    assert_true(cm->deps[1].content);
    assert_int_equal(cm->deps[1].n_content, 0);
    assert_int_equal(cm->deps[1].n_paths, 1);
    assert_string_equal(cm->deps[1].paths[0], "/");
    kiln__cachemap_free(cm);

    /* v0.11: "input":0 and "output":0 written, no selector without
     * Mount.selector, no content key once a mount is the root. */
    cm = cm_of(&f.op, KILN_CM_V0_11);
    assert_non_null(strstr(cm->json, "\"mounts\":[{\"input\":0,\"dest\":\"/\","
                                     "\"output\":0},"));
    assert_string_equal(cm->deps[0].selector, "");
    assert_false(cm->deps[0].content);
    assert_string_equal(cm->deps[1].selector, "");
    assert_true(cm->deps[1].content);
    kiln__cachemap_free(cm);
}

/* ---- BuildKit v0.11.6 cache exports (v0.11 rules) ------------------------ */

static void test_vector_e_run_file(void **state)
{
    kiln_definition_t *def = load_vector("e_run_file");
    const char *file = "sha256:84dbb331d3f6d35e9ef242236f7e8c10e4f6ba3fd7fad2e"
                       "01167ac27af0c1da2";
    kiln__cachemap_t *cm;
    kiln_error_t err = {0};

    set_amd64(&amd64);
    assert_int_equal(check_vector("e_run_file", def), 2);
    assert_record(def,
                  "sha256:404a45e0e3e0bd1ba5e43d6242b6d9261df23d0914985944d7b7"
                  "9432fca0c159",
                  1,
                  "sha256:8dbc8fecbe88628dfc81fa4531959b8f4e8a3bfce519ea3f0ad7"
                  "cf1b166358e9");
    assert_record(def, file, 0,
                  "sha256:0023a5a90dac9e30cdd8c09abedf2a4e513dc7761b1280ef3c0f"
                  "44b02cc0b6c1");
    /* The copy reads /etc/passwd from input 1; input 0 is the base. */
    assert_int_equal(kiln__cachemap_vertex(kiln__definition_find(def, file),
                                           &amd64, KILN_CM_V0_11, &cm, &err),
                     0);
    assert_string_equal(cm->deps[0].selector, "");
    assert_false(cm->deps[0].content);
    assert_string_equal(cm->deps[1].selector,
                        "sha256:74acf31844532670be412c65b8251ee55d072549080b1c"
                        "ffdbea6b1a192230a0");
    assert_true(cm->deps[1].content);
    assert_int_equal(cm->deps[1].n_content, 1);
    assert_string_equal(cm->deps[1].content_sels[0].path, "/etc/passwd");
    assert_non_null(strstr(cm->json, "\"indexes\":[[0,-1,-1],[2,-1,-1],"
                                     "[3,1,-1],[4,-1,-1],[5,-1,0]]"));
    kiln__cachemap_free(cm);
    kiln_definition_free(def);
}

static void test_vector_f_diamond(void **state)
{
    kiln_definition_t *def = load_vector("f_diamond");

    set_amd64(&amd64);
    assert_int_equal(check_vector("f_diamond", def), 3);
    assert_record(def,
                  "sha256:c1f439d1b15d90f8d9b13705d468e30331261bc9b8518a44b58c"
                  "3f749dd0102b",
                  0,
                  "sha256:57ddda48ff585082d723052a0a3bb1b110c2a2929c8d70a4fa38"
                  "85ba8f771f42");
    assert_record(def,
                  "sha256:79b7a2f65571a9a921b4a19121b160235668525538b5ea014ee7"
                  "16d21d115287",
                  0,
                  "sha256:40ecf52c927e3247c46641bd6c4d2b34538a8e4cc74fb5bde506"
                  "6982589f96f6");
    assert_record(def,
                  "sha256:cd597052c5e67c870efe2f643be06e7726a7e5b5a6a2acaa47fa"
                  "a1f665fdeaa7",
                  0,
                  "sha256:561daf49771b52da48ce14c879c720c73c989447134499f594de"
                  "1b8675f316c6");
    kiln_definition_free(def);
}

/* ---- exec rules ---------------------------------------------------------- */

static void test_exec_plain_root_dropped(void **state)
{
    exec_fx_t f;
    kiln__cachemap_t *cm;
    char sub[KILN_DIGEST_STRLEN + 1];

    exec_fx(&f);
    f.exec.n_mounts = 1;
    f.op.n_inputs = 1;
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_json(cm,
                "{\"Type\":\"buildkit.exec.v0\",\"Exec\":{\"meta\":{\"args\""
                ":[\"/bin/sh\",\"-c\",\"echo a\\u003eb \\u0026\\u0026 "
                "true\"],\"cwd\":\"/\",\"removeMountStubsRecursive\":true}"
                "},\"OS\":\"linux\",\"Arch\":\"amd64\"}");
    kiln__cachemap_free(cm);

    /* The selector is cleared before the check, so it still counts as
     * plain, but it selects what the input's key covers. */
    f.m[0].selector = "sub";
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_null(strstr(cm->json, "mounts"));
    digest_of_str("/sub", 4, sub);
    assert_string_equal(cm->deps[0].selector, sub);
    kiln__cachemap_free(cm);

    /* Anything else about it keeps the list. */
    f.m[0].readonly = 1;
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_non_null(strstr(cm->json, "\"mounts\":[{\"dest\":\"/\",\"readonly"
                                     "\":true}]"));
    kiln__cachemap_free(cm);
}

static void test_exec_selectors(void **state)
{
    exec_fx_t f;
    kiln__cachemap_t *cm;
    const kiln__cm_dep_t *d;
    char want[KILN_DIGEST_STRLEN + 1];

    exec_fx(&f);
    f.exec.n_mounts = 4;
    f.m[1].selector = "a/../b/";
    f.m[2] = f.m[1];
    f.m[2].dest = "/other";
    f.m[2].selector = "c";
    f.m[3] = f.m[1];
    f.m[3].dest = "/deeper";
    f.m[3].selector = "/b/x";
    for (int k = 0; k < 2; k++) {
        cm = cm_of(&f.op, k == 0 ? KILN_CM_CURRENT : KILN_CM_V0_11);
        assert_null(strstr(cm->json, "selector"));
        d = &cm->deps[1];
        assert_int_equal(d->n_paths, 3);
        assert_string_equal(d->paths[0], "/b");
        assert_string_equal(d->paths[1], "/c");
        assert_string_equal(d->paths[2], "/b/x");
        digest_of_str("/b\0/c\0/b/x", 10, want);
        assert_string_equal(d->selector, want);
        /* Read-only mounts: content key over the deduplicated paths. */
        assert_true(d->content);
        assert_int_equal(d->n_content, 2);
        assert_string_equal(d->content_sels[0].path, "/b");
        assert_string_equal(d->content_sels[1].path, "/c");
        assert_true(d->content_sels[0].follow_links);
        kiln__cachemap_free(cm);
    }
}

static void test_exec_content_rules(void **state)
{
    exec_fx_t f;
    kiln__cachemap_t *cm;
    kiln_error_t err = {0};

    exec_fx(&f);
    f.m[1].readonly = 0;
    f.m[1].output = 1;
    f.m[1].selector = "part";
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_false(cm->deps[1].content); /* writable, output, partial */
    kiln__cachemap_free(cm);

    f.m[1].contentcache = PB__MOUNT_CONTENT_CACHE__ON;
    assert_int_equal(
        kiln__cachemap_compute(&f.op, NULL, KILN_CM_CURRENT, &cm, &err),
        KILN_EINVAL);
    assert_null(cm);
    assert_non_null(strstr(err.message, "contentCache"));

    f.m[1].selector = "";
    cm = cm_of(&f.op, KILN_CM_CURRENT); /* the whole input: allowed */
    assert_true(cm->deps[1].content);
    kiln__cachemap_free(cm);

    exec_fx(&f);
    f.m[1].contentcache = PB__MOUNT_CONTENT_CACHE__OFF;
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_false(cm->deps[1].content);
    kiln__cachemap_free(cm);
}

static void test_exec_cache_ids(void **state)
{
    static const struct {
        const char *id;
        Pb__CacheSharingOpt sharing;
        const char *current;
    } cases[] = {
        {"/root/.cache", PB__CACHE_SHARING_OPT__SHARED,
         "\"cacheOpt\":{\"ID\":\"/root/.cache\"}"},
        {"ns//root/.cache", PB__CACHE_SHARING_OPT__SHARED,
         "\"cacheOpt\":{\"ID\":\"ns//root/.cache\"}"},
        {"custom", PB__CACHE_SHARING_OPT__SHARED, "\"cacheOpt\":{}"},
        {"/root/.cache", PB__CACHE_SHARING_OPT__LOCKED, "\"cacheOpt\":{}"},
    };
    exec_fx_t f;
    Pb__CacheOpt copt = PB__CACHE_OPT__INIT;
    kiln__cachemap_t *cm;
    char legacy[128];

    exec_fx(&f);
    f.op.n_inputs = 1;
    f.m[1].input = -1;
    f.m[1].readonly = 0;
    f.m[1].dest = "/root/.cache";
    f.m[1].mounttype = PB__MOUNT_TYPE__CACHE;
    f.m[1].cacheopt = &copt;
    for (size_t i = 0; i < KILN_ARRAY_SIZE(cases); i++) {
        copt.id = (char *)cases[i].id;
        copt.sharing = cases[i].sharing;
        cm = cm_of(&f.op, KILN_CM_CURRENT);
        assert_non_null(strstr(cm->json, cases[i].current));
        kiln__cachemap_free(cm);
        cm = cm_of(&f.op, KILN_CM_V0_11); /* v0.11 never cleared them */
        snprintf(legacy, sizeof(legacy), "\"cacheOpt\":{\"ID\":\"%s\"%s}",
                 cases[i].id, cases[i].sharing ? ",\"sharing\":2" : "");
        assert_non_null(strstr(cm->json, legacy));
        kiln__cachemap_free(cm);
        assert_string_equal(copt.id, cases[i].id); /* op untouched */
    }
}

static void test_exec_proxy_and_hosts(void **state)
{
    exec_fx_t f;
    Pb__ProxyEnv proxy = PB__PROXY_ENV__INIT;
    Pb__HostIP host = PB__HOST_IP__INIT;
    Pb__HostIP *hosts[1] = {&host};
    kiln__cachemap_t *cm;

    exec_fx(&f);
    proxy.http_proxy = "http://proxy:3128";
    host.host = "db";
    host.ip = "10.0.0.2";
    f.meta.proxy_env = &proxy;
    f.meta.n_extrahosts = 1;
    f.meta.extrahosts = hosts;
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_null(strstr(cm->json, "proxy"));
    assert_null(strstr(cm->json, "10.0.0.2"));
    assert_non_null(strstr(cm->json, "\"extraHosts\":[{\"Host\":\"db\"}]"));
    kiln__cachemap_free(cm);
    assert_ptr_equal(f.meta.proxy_env, &proxy);
    assert_string_equal(host.ip, "10.0.0.2");
}

static void test_exec_platform(void **state)
{
    exec_fx_t f;
    Pb__Platform arm = PB__PLATFORM__INIT;
    char *features[1] = {"win32k"};
    kiln__cachemap_t *cm;
    kiln_error_t err = {0};

    exec_fx(&f);
    f.op.platform = NULL; /* the caller's default applies */
    arm.os = "linux";
    arm.architecture = "arm64";
    arm.variant = "v8";
    arm.osversion = "10.0";
    arm.n_osfeatures = 1;
    arm.osfeatures = features;
    assert_int_equal(
        kiln__cachemap_compute(&f.op, &arm, KILN_CM_CURRENT, &cm, &err), 0);
    assert_non_null(strstr(cm->json, "},\"OS\":\"linux\",\"Arch\":\"arm64\","
                                     "\"Variant\":\"v8\",\"OSVersion\":\"10.0"
                                     "\",\"OSFeatures\":[\"win32k\"]}"));
    kiln__cachemap_free(cm);
    assert_int_equal(
        kiln__cachemap_compute(&f.op, &arm, KILN_CM_V0_11, &cm, &err), 0);
    assert_non_null(strstr(cm->json, "},\"OS\":\"linux\",\"Arch\":\"arm64\","
                                     "\"Variant\":\"v8\"}"));
    kiln__cachemap_free(cm);
    assert_int_equal(
        kiln__cachemap_compute(&f.op, NULL, KILN_CM_CURRENT, &cm, &err),
        KILN_EINVAL);
}

/* Fields v0.11 did not know are not in its JSON. */
static void test_legacy_drops_new_fields(void **state)
{
    exec_fx_t f;
    int32_t codes[2] = {0, 1};
    kiln__cachemap_t *cm;

    exec_fx(&f);
    f.meta.n_validexitcodes = 2;
    f.meta.validexitcodes = codes;
    f.m[1].contentcache = PB__MOUNT_CONTENT_CACHE__ON;
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_non_null(strstr(cm->json, "\"validExitCodes\":[0,1]"));
    assert_non_null(strstr(cm->json, "\"readonly\":true,\"contentCache\":1}"));
    kiln__cachemap_free(cm);
    cm = cm_of(&f.op, KILN_CM_V0_11);
    assert_null(strstr(cm->json, "validExitCodes"));
    assert_null(strstr(cm->json, "contentCache"));
    kiln__cachemap_free(cm);
}

static void test_go_escaping_versions(void **state)
{
    exec_fx_t f;
    kiln__cachemap_t *cm;

    exec_fx(&f);
    f.args[2] = "a\bb\fc";
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_non_null(strstr(cm->json, "\"a\\bb\\fc\""));
    kiln__cachemap_free(cm);
    cm = cm_of(&f.op, KILN_CM_V0_11);
    assert_non_null(strstr(cm->json, "\"a\\u0008b\\u000cc\""));
    kiln__cachemap_free(cm);
}

/* ---- file rules ---------------------------------------------------------- */

static void test_file_copy_src_base(void **state)
{
    file_fx_t f;
    kiln__cachemap_t *cm;
    char want[KILN_DIGEST_STRLEN + 1];

    file_fx(&f);
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_action(cm, 0,
                  "{\"src\":\"bar.txt\",\"dest\":\"/x\",\"mode\":-1,"
                  "\"timestamp\":-1}");
    assert_null(strstr(cm->json, "indexes")); /* [0,1,0]: the default */
    digest_of_str("/etc/foo/bar.txt", 16, want);
    assert_string_equal(cm->deps[1].selector, want);
    assert_true(cm->deps[1].content);
    assert_string_equal(cm->deps[0].selector, ""); /* the base */
    assert_false(cm->deps[0].content);
    kiln__cachemap_free(cm);

    /* From the result of an earlier action: src stays whole, no selector. */
    f.a[0].input = -1;
    f.a[0].secondaryinput = -1;
    f.a[0].output = -1;
    f.a[0].action_case = PB__FILE_ACTION__ACTION_MKDIR;
    f.a[0].mkdir = &f.mkdir;
    f.a[1].input = 0;
    f.a[1].secondaryinput = 2;
    f.a[1].output = 0;
    f.a[1].action_case = PB__FILE_ACTION__ACTION_COPY;
    f.a[1].copy = &f.copy;
    f.file.n_actions = 2;
    cm = cm_of(&f.op, KILN_CM_CURRENT);
    assert_action(cm, 0, "{\"path\":\"/d\",\"mode\":493,\"timestamp\":-1}");
    assert_action(cm, 1,
                  "{\"src\":\"/etc/foo/bar.txt\",\"dest\":\"/x\","
                  "\"mode\":-1,\"timestamp\":-1}");
    assert_non_null(strstr(cm->json, "\"indexes\":[[-1,-1,-1],[0,2,0]]}"));
    assert_string_equal(cm->deps[1].selector, "");
    kiln__cachemap_free(cm);
}

static void test_file_indexes(void **state)
{
    file_fx_t f;
    kiln__cachemap_t *cm;

    file_fx(&f);
    f.a[0].secondaryinput = -1;
    f.a[0].output = -1;
    f.a[0].action_case = PB__FILE_ACTION__ACTION_MKDIR;
    f.a[0].mkdir = &f.mkdir;
    f.a[1] = f.a[0];
    f.a[1].input = 2;
    f.a[1].output = 0;
    f.file.n_actions = 2;
    cm = cm_of(&f.op, KILN_CM_CURRENT); /* [0,-1,-1],[2,-1,0]: default */
    assert_null(strstr(cm->json, "indexes"));
    kiln__cachemap_free(cm);

    /* BuildKit expects action i's base at len(actions)+i-1, so a real
     * three-action chain over two inputs ([0],[2],[3]) is "not default". */
    f.a[1].output = -1;
    f.a[2] = f.a[1];
    f.a[2].input = 3;
    f.a[2].output = 0;
    f.file.n_actions = 3;
    cm = cm_of(&f.op, KILN_CM_V0_11);
    assert_non_null(strstr(cm->json, ",\"indexes\":[[0,-1,-1],[2,-1,-1],"
                                     "[3,-1,0]]}"));
    kiln__cachemap_free(cm);
}

static void test_file_owner_selectors(void **state)
{
    owner_fx_t o;
    kiln__cachemap_t *cm;
    char want[KILN_DIGEST_STRLEN + 1];

    owner_fx(&o);
    cm = cm_of(&o.f.op, KILN_CM_CURRENT);
    assert_action(cm, 0,
                  "{\"path\":\"/f\",\"mode\":420,\"owner\":{\"user\":{"
                  "\"User\":{\"byName\":{\"name\":\"app\",\"input\":1}}},"
                  "\"group\":{\"User\":{\"byId\":5}}},\"timestamp\":-1}");
    digest_of_str("/etc/passwd", 11, want);
    assert_string_equal(cm->deps[1].selector, want);
    assert_true(cm->deps[1].content);
    assert_true(cm->deps[1].content_sels[0].follow_links);
    kiln__cachemap_free(cm);

    /* Group by name too: paths sorted, then reversed. */
    o.group.user_case = PB__USER_OPT__USER_BY_NAME;
    o.group.byname = &o.uname;
    cm = cm_of(&o.f.op, KILN_CM_CURRENT);
    digest_of_str("/etc/passwd\0/etc/group", 22, want);
    assert_string_equal(cm->deps[1].selector, want);
    assert_int_equal(cm->deps[1].n_content, 2);
    assert_string_equal(cm->deps[1].content_sels[0].path, "/etc/group");
    kiln__cachemap_free(cm);

    /* Names read from the base input: no selector there. */
    o.uname.input = 0;
    cm = cm_of(&o.f.op, KILN_CM_CURRENT);
    assert_string_equal(cm->deps[0].selector, "");
    assert_false(cm->deps[0].content);
    assert_string_equal(cm->deps[1].selector, "");
    kiln__cachemap_free(cm);
}

static void test_file_user_opt_json(void **state)
{
    owner_fx_t o;
    kiln__cachemap_t *cm;

    /* v0.11 writes "input":0 and "byID". */
    owner_fx(&o);
    o.uname.input = 0;
    cm = cm_of(&o.f.op, KILN_CM_V0_11);
    assert_action(cm, 0,
                  "{\"path\":\"/f\",\"mode\":420,\"owner\":{\"user\":{"
                  "\"User\":{\"byName\":{\"name\":\"app\",\"input\":0}}},"
                  "\"group\":{\"User\":{\"byID\":5}}},\"timestamp\":-1}");
    kiln__cachemap_free(cm);

    /* byID 0 is omitted; a missing oneof is {} now, null in v0.11. */
    o.group.byid = 0;
    o.user.user_case = PB__USER_OPT__USER__NOT_SET;
    cm = cm_of(&o.f.op, KILN_CM_CURRENT);
    assert_action(cm, 0,
                  "{\"path\":\"/f\",\"mode\":420,\"owner\":{\"user\":{"
                  "\"User\":{}},\"group\":{\"User\":{}}},\"timestamp\":-1}");
    kiln__cachemap_free(cm);
    cm = cm_of(&o.f.op, KILN_CM_V0_11);
    assert_action(cm, 0,
                  "{\"path\":\"/f\",\"mode\":420,\"owner\":{\"user\":{"
                  "\"User\":null},\"group\":{\"User\":{}}},"
                  "\"timestamp\":-1}");
    kiln__cachemap_free(cm);
}

static void test_file_bad_owner_index(void **state)
{
    file_fx_t f;
    Pb__ChownOpt own = PB__CHOWN_OPT__INIT;
    Pb__UserOpt user = PB__USER_OPT__INIT;
    Pb__NamedUserOpt uname = PB__NAMED_USER_OPT__INIT;
    kiln__cachemap_t *cm = NULL;
    kiln_error_t err = {0};

    file_fx(&f);
    f.copy.owner = &own;
    own.user = &user;
    user.user_case = PB__USER_OPT__USER_BY_NAME;
    user.byname = &uname;
    uname.name = "app";
    uname.input = 7;
    assert_int_equal(
        kiln__cachemap_compute(&f.op, NULL, KILN_CM_CURRENT, &cm, &err),
        KILN_EINVAL);
    assert_null(cm);
    /* The result of action 0 (index 2) is fine only as some action's base. */
    uname.input = 2;
    assert_int_equal(
        kiln__cachemap_compute(&f.op, NULL, KILN_CM_CURRENT, &cm, &err),
        KILN_EINVAL);
}

/* ---- merge, diff, build, passthrough ------------------------------------- */

static void test_merge_diff(void **state)
{
    Pb__Op op = PB__OP__INIT;
    Pb__MergeOp merge = PB__MERGE_OP__INIT;
    Pb__MergeInput mi[2] = {PB__MERGE_INPUT__INIT, PB__MERGE_INPUT__INIT};
    Pb__MergeInput *mip[2] = {&mi[0], &mi[1]};
    Pb__DiffOp diff = PB__DIFF_OP__INIT;
    Pb__LowerDiffInput lower = PB__LOWER_DIFF_INPUT__INIT;
    Pb__UpperDiffInput upper = PB__UPPER_DIFF_INPUT__INIT;
    kiln__cachemap_t *cm;

    mi[1].input = 1;
    merge.n_inputs = 2;
    merge.inputs = mip;
    op.n_inputs = 2;
    op.op_case = PB__OP__OP_MERGE;
    op.merge = &merge;
    cm = cm_of(&op, KILN_CM_CURRENT);
    assert_json(cm, "{\"Type\":\"buildkit.merge.v0\",\"Merge\":{\"inputs\":[{},"
                    "{\"input\":1}]}}");
    assert_int_equal(cm->n_deps, 2);
    assert_string_equal(cm->deps[0].selector, "");
    assert_false(cm->deps[0].content);
    kiln__cachemap_free(cm);
    cm = cm_of(&op, KILN_CM_V0_11);
    assert_json(cm, "{\"Type\":\"buildkit.merge.v0\",\"Merge\":{\"inputs\":[{"
                    "\"input\":0},{\"input\":1}]}}");
    kiln__cachemap_free(cm);

    upper.input = -1;
    diff.lower = &lower;
    diff.upper = &upper;
    op.n_inputs = 1;
    op.op_case = PB__OP__OP_DIFF;
    op.diff = &diff;
    cm = cm_of(&op, KILN_CM_CURRENT);
    assert_json(cm, "{\"Type\":\"buildkit.diff.v0\",\"Diff\":{\"lower\":{},"
                    "\"upper\":{\"input\":-1}}}");
    assert_int_equal(cm->n_deps, 1); /* scratch sides have no dep */
    kiln__cachemap_free(cm);
    cm = cm_of(&op, KILN_CM_V0_11);
    assert_json(cm, "{\"Type\":\"buildkit.diff.v0\",\"Diff\":{\"lower\":{"
                    "\"input\":0},\"upper\":{\"input\":-1}}}");
    kiln__cachemap_free(cm);
}

static void test_build_passthrough(void **state)
{
    Pb__Op op = PB__OP__INIT;
    Pb__BuildOp build = PB__BUILD_OP__INIT;
    Pb__BuildInput bin = PB__BUILD_INPUT__INIT;
    Pb__BuildOp__InputsEntry ie = PB__BUILD_OP__INPUTS_ENTRY__INIT;
    Pb__BuildOp__InputsEntry *iep[1] = {&ie};
    Pb__BuildOp__AttrsEntry at[3] = {PB__BUILD_OP__ATTRS_ENTRY__INIT,
                                     PB__BUILD_OP__ATTRS_ENTRY__INIT,
                                     PB__BUILD_OP__ATTRS_ENTRY__INIT};
    Pb__BuildOp__AttrsEntry *atp[3] = {&at[0], &at[1], &at[2]};
    Pb__PassthroughOp pt = PB__PASSTHROUGH_OP__INIT;
    int64_t outs[2] = {1, 0};
    kiln__cachemap_t *cm;

    ie.key = "buildkit.llb.definition";
    ie.value = &bin;
    at[0].key = "b";
    at[0].value = "first";
    at[1].key = "a";
    at[1].value = "x<y";
    at[2].key = "b";
    at[2].value = "last"; /* a repeated key: the last one wins */
    build.builder = -1;
    build.n_inputs = 1;
    build.inputs = iep;
    build.n_attrs = 3;
    build.attrs = atp;
    op.n_inputs = 1;
    op.op_case = PB__OP__OP_BUILD;
    op.build = &build;
    cm = cm_of(&op, KILN_CM_CURRENT);
    assert_json(cm, "{\"Type\":\"buildkit.build.v0\",\"Exec\":{\"builder\":-1,"
                    "\"inputs\":{\"buildkit.llb.definition\":{}},\"attrs\":{"
                    "\"a\":\"x\\u003cy\",\"b\":\"last\"}}}");
    kiln__cachemap_free(cm);
    cm = cm_of(&op, KILN_CM_V0_11);
    assert_non_null(
        strstr(cm->json, "{\"buildkit.llb.definition\":{\"input\":0}}"));
    kiln__cachemap_free(cm);

    pt.id = "p";
    pt.n_outputs = 2;
    pt.outputs = outs;
    op.n_inputs = 2;
    op.op_case = PB__OP__OP_PASSTHROUGH;
    op.passthrough = &pt;
    cm = cm_of(&op, KILN_CM_CURRENT);
    assert_json(cm, "{\"Type\":\"buildkit.passthrough.v0\",\"Passthrough\":{"
                    "\"id\":\"p\",\"outputs\":[1,0]}}");
    assert_int_equal(cm->n_deps, 2);
    kiln__cachemap_free(cm);
}

static void test_unsupported_ops(void **state)
{
    Pb__Op op = PB__OP__INIT;
    Pb__SourceOp src = PB__SOURCE_OP__INIT;
    kiln__cachemap_t *cm = NULL;
    kiln_error_t err = {0};

    assert_int_equal(
        kiln__cachemap_compute(&op, NULL, KILN_CM_CURRENT, &cm, &err),
        KILN_ENOTSUP);
    op.op_case = PB__OP__OP_SOURCE;
    op.source = &src;
    assert_int_equal(
        kiln__cachemap_compute(&op, NULL, KILN_CM_CURRENT, &cm, &err),
        KILN_ENOTSUP);
    assert_null(cm);
}

/* ---- helpers ------------------------------------------------------------- */

static void test_source_and_record_digests(void **state)
{
    static const char key[] = "docker-image://docker.io/library/busybox:latest";
    static const char pre[] =
        "buildkit.source.v0:docker-image://docker.io/library/busybox:latest";
    static const char sess[] = "session:context:abc";
    static const char sess_pre[] = "buildkit.source.v0:session:context:abc";
    char d[KILN_DIGEST_STRLEN + 1], want[KILN_DIGEST_STRLEN + 1];
    char rec[KILN_DIGEST_STRLEN + 1];

    assert_int_equal(kiln__cachemap_source_digest(key, strlen(key), d), 0);
    assert_digest_of(pre, strlen(pre), d);
    assert_false(kiln__cachemap_is_random(d));

    assert_int_equal(kiln__cachemap_source_digest(sess, strlen(sess), d), 0);
    digest_of_str(sess_pre, strlen(sess_pre), want);
    assert_true(kiln__cachemap_is_random(d));
    assert_string_equal(d + 7, want + 7);

    /* Current BuildKit keeps a random key as it is; v0.11 rehashed it. */
    assert_int_equal(kiln__cachemap_record_digest(d, 0, KILN_CM_CURRENT, rec),
                     0);
    assert_string_equal(rec, d);
    assert_int_equal(kiln__cachemap_record_digest(d, 0, KILN_CM_V0_11, rec), 0);
    {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "%s@0", d);
        digest_of_str(buf, (size_t)n, want);
    }
    assert_int_equal(strncmp(rec, "random:", 7), 0);
    assert_string_equal(rec + 7, want + 7);

    /* Content keys: output -1. */
    assert_int_equal(
        kiln__cachemap_record_digest(want, -1, KILN_CM_CURRENT, rec), 0);
    {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "%s@-1", want);
        assert_digest_of(buf, (size_t)n, rec);
    }
}

static void test_gojson_strings(void **state)
{
    static const char ctl[] = "\"\\/\n\r\t\x01\x1f\x7f\b\f";
    static const char html[] = "<a href='x'>&amp;</a>";
    static const char uni[] =
        "\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\xf0\x9f\x98\x80";
    static const char bad[] = "a\xff"
                              "b\xed\xa0\x80"
                              "c\xe2\x82";

    escape_is(ctl, sizeof(ctl) - 1, KILN_GOJSON_GO122,
              "\"\\\"\\\\/\\n\\r\\t\\u0001\\u001f\x7f\\b\\f\"");
    escape_is(ctl, sizeof(ctl) - 1, 0,
              "\"\\\"\\\\/\\n\\r\\t\\u0001\\u001f\x7f\\u0008\\u000c\"");
    escape_is(html, sizeof(html) - 1, 0,
              "\"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e\"");
    escape_is(uni, sizeof(uni) - 1, 0,
              "\"\\u2028\\u2029\xc3\xa9\xf0\x9f\x98\x80\"");
    escape_is(bad, sizeof(bad) - 1, 0,
              "\"a\\ufffdb\\ufffd\\ufffd\\ufffdc\\ufffd\\ufffd\"");
    escape_is("a\0b", 3, 0, "\"a\\u0000b\"");
}

static void test_gojson_writer(void **state)
{
    static const char *const b64[][2] = {
        {"", "\"\""},        {"f", "\"Zg==\""},        {"fo", "\"Zm8=\""},
        {"foo", "\"Zm9v\""}, {"foob", "\"Zm9vYg==\""}, {"\xff\xfe", "\"//4=\""},
    };
    kiln__buf_t b = KILN_BUF_INIT;
    kiln__gojson_t w;

    for (size_t i = 0; i < KILN_ARRAY_SIZE(b64); i++) {
        kiln__buf_t one = KILN_BUF_INIT;
        kiln__gojson_init(&w, &one, 0);
        kiln__gojson_base64(&w, b64[i][0], strlen(b64[i][0]));
        assert_true(kiln__gojson_ok(&w));
        assert_string_equal((const char *)one.data, b64[i][1]);
        kiln__buf_free(&one);
    }
    kiln__gojson_init(&w, &b, 0);
    kiln__gojson_begin_object(&w);
    kiln__gojson_key(&w, "a");
    kiln__gojson_begin_array(&w);
    kiln__gojson_int(&w, -1);
    kiln__gojson_uint(&w, 18446744073709551615u);
    kiln__gojson_bool(&w, true);
    kiln__gojson_null(&w);
    kiln__gojson_begin_object(&w);
    kiln__gojson_end_object(&w);
    kiln__gojson_end_array(&w);
    kiln__gojson_key(&w, "<");
    kiln__gojson_cstr(&w, "");
    kiln__gojson_end_object(&w);
    assert_true(kiln__gojson_ok(&w));
    assert_string_equal((const char *)b.data,
                        "{\"a\":[-1,18446744073709551615,true,null,{}],"
                        "\"\\u003c\":\"\"}");
    kiln__gojson_end_object(&w); /* one too many */
    assert_false(kiln__gojson_ok(&w));
    kiln__buf_free(&b);
}

static void test_gopath(void **state)
{
    path_is(kiln__gopath_clean(""), ".");
    path_is(kiln__gopath_clean("/"), "/");
    path_is(kiln__gopath_clean("a//b/./c/"), "a/b/c");
    path_is(kiln__gopath_clean("a/../.."), "..");
    path_is(kiln__gopath_clean("../a/../../b"), "../../b");
    path_is(kiln__gopath_clean("/../a/b/../../.."), "/");
    path_is(kiln__gopath_clean("/a/.b/..c/"), "/a/.b/..c");
    path_is(kiln__gopath_join_root(""), "/");
    path_is(kiln__gopath_join_root("./x/"), "/x");
    path_is(kiln__gopath_join_root("../../etc"), "/etc");
    path_is(kiln__gopath_base(""), ".");
    path_is(kiln__gopath_base("///"), "/");
    path_is(kiln__gopath_base("/a/b/"), "b");
    path_is(kiln__gopath_base("file"), "file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_vector_e_run_file),
        cmocka_unit_test(test_vector_f_diamond),
        cmocka_unit_test(test_exec_plain_root_dropped),
        cmocka_unit_test(test_exec_selectors),
        cmocka_unit_test(test_exec_content_rules),
        cmocka_unit_test(test_exec_cache_ids),
        cmocka_unit_test(test_exec_proxy_and_hosts),
        cmocka_unit_test(test_exec_platform),
        cmocka_unit_test(test_legacy_drops_new_fields),
        cmocka_unit_test(test_go_escaping_versions),
        cmocka_unit_test(test_file_copy_src_base),
        cmocka_unit_test(test_file_indexes),
        cmocka_unit_test(test_file_owner_selectors),
        cmocka_unit_test(test_file_user_opt_json),
        cmocka_unit_test(test_file_bad_owner_index),
        cmocka_unit_test(test_merge_diff),
        cmocka_unit_test(test_build_passthrough),
        cmocka_unit_test(test_unsupported_ops),
        cmocka_unit_test(test_source_and_record_digests),
        cmocka_unit_test(test_gojson_strings),
        cmocka_unit_test(test_gojson_writer),
        cmocka_unit_test(test_gopath),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
