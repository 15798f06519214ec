/*
 * dump-llb output: byte-identical JSON to `buildctl debug dump-llb` for the
 * BuildKit vectors, the gogo/encoding-json rules on hand-made definitions
 * that reach every kind of field, and the Graphviz output.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "llb/graph.h"
#include "llb/pbenc.h"
#include "testutil.h"

#define MAX_OPS 16

/* A definition under construction: encoded ops, their digests, and the
 * encoded Definition.metadata entries. */
struct defb {
    kiln__buf_t ops[MAX_OPS];
    char digest[MAX_OPS][KILN_DIGEST_STRLEN + 1];
    size_t n_ops;
    kiln__buf_t md;
};

/* Encodes `op` as the next op; returns its position. */
static size_t defb_op(struct defb *d, const Pb__Op *op)
{
    kiln__buf_t *b = &d->ops[d->n_ops];

    assert_true(d->n_ops < MAX_OPS);
    memset(b, 0, sizeof(*b));
    assert_int_equal(kiln__pb_encode(&op->base, KILN_PB_ORDER_CURRENT, b), 0);
    assert_true(kiln__buf_reserve(b, 0));
    assert_int_equal(kiln__sha256_digest(b->data, b->len, d->digest[d->n_ops]),
                     0);
    return d->n_ops++;
}

/* Adds the terminal op pointing at output `index` of op `target`. */
static size_t defb_terminal(struct defb *d, size_t target, int64_t index)
{
    Pb__Op op = PB__OP__INIT;
    Pb__Input in = PB__INPUT__INIT;
    Pb__Input *inputs[] = {&in};

    in.digest = d->digest[target];
    in.index = index;
    op.n_inputs = 1;
    op.inputs = inputs;
    return defb_op(d, &op);
}

/* Adds a metadata entry for op `pos` whose value is `value` as encoded. */
static void defb_meta_raw(struct defb *d, size_t pos, const void *value,
                          size_t len)
{
    kiln__buf_t e = KILN_BUF_INIT;

    kiln__pb_put_bytes(&e, 1, d->digest[pos], strlen(d->digest[pos]));
    kiln__pb_put_bytes(&e, 2, value, len);
    kiln__pb_put_bytes(&d->md, 2, e.data, e.len);
    assert_true(kiln__buf_ok(&e) && kiln__buf_ok(&d->md));
    kiln__buf_free(&e);
}

static void defb_meta(struct defb *d, size_t pos, const Pb__OpMetadata *md)
{
    kiln__buf_t b = KILN_BUF_INIT;

    assert_int_equal(kiln__pb_encode(&md->base, KILN_PB_ORDER_CURRENT, &b), 0);
    defb_meta_raw(d, pos, b.data, b.len);
    kiln__buf_free(&b);
}

/* Loads what was built (which must be valid) and releases the builder. */
static kiln_definition_t *defb_load(struct defb *d)
{
    Pb__Definition pb = PB__DEFINITION__INIT;
    ProtobufCBinaryData raw[MAX_OPS];
    kiln__buf_t b = KILN_BUF_INIT;
    kiln_definition_t *def = NULL;
    kiln_error_t err = {0};

    for (size_t i = 0; i < d->n_ops; i++) {
        raw[i].data = d->ops[i].data;
        raw[i].len = d->ops[i].len;
    }
    pb.n_def = d->n_ops;
    pb.def = raw;
    assert_int_equal(kiln__pb_encode(&pb.base, KILN_PB_ORDER_CURRENT, &b), 0);
    kiln__buf_append(&b, d->md.data, d->md.len);
    assert_true(kiln__buf_ok(&b));
    if (kiln_definition_load(b.data, b.len, &err, &def) != 0) {
        fail_msg("hand-made definition does not load: %s", err.message);
    }
    kiln__buf_free(&b);
    for (size_t i = 0; i < d->n_ops; i++) {
        kiln__buf_free(&d->ops[i]);
    }
    kiln__buf_free(&d->md);
    return def;
}

/* The dump as a NUL-terminated string, through a FILE as the CLI uses it. */
static char *dump(const kiln_definition_t *def, bool dot, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    kiln_error_t err = {0};
    int rc;

    assert_non_null(f);
    rc = dot ? kiln_definition_dump_dot(def, f, &err)
             : kiln_definition_dump_json(def, f, &err);
    if (rc != 0) {
        fail_msg("dump failed: %s", err.message);
    }
    assert_int_equal(fclose(f), 0);
    if (len != NULL) {
        *len = n;
    }
    return text;
}

/* `tmpl` with each "@N" replaced by the digest of op N. */
static char *expand(const char *tmpl, const struct defb *d)
{
    kiln__buf_t b = KILN_BUF_INIT;

    for (const char *p = tmpl; *p != 0; p++) {
        if (p[0] == '@' && p[1] >= '0' && p[1] <= '9') {
            kiln__buf_puts(&b, d->digest[p[1] - '0']);
            p++;
        } else {
            kiln__buf_putc(&b, (uint8_t)*p);
        }
    }
    assert_true(kiln__buf_reserve(&b, 0));
    return (char *)b.data;
}

/* expand() of the concatenation of `n` strings. */
static char *expand_lines(const char *const *parts, size_t n,
                          const struct defb *d)
{
    kiln__buf_t b = KILN_BUF_INIT;
    char *out;

    for (size_t i = 0; i < n; i++) {
        kiln__buf_puts(&b, parts[i]);
    }
    assert_true(kiln__buf_reserve(&b, 0));
    out = expand((const char *)b.data, d);
    kiln__buf_free(&b);
    return out;
}

/* Compares line by line (for readable failures), then byte for byte. Each
 * expected line must also be JSON, to catch mistakes in the expectations. */
static void assert_json_lines(const char *got, const char *want)
{
    char *g = strdup(got);
    char *w = strdup(want);
    char **gl, **wl;
    size_t gn = kt_split_lines(g, &gl);
    size_t wn = kt_split_lines(w, &wl);

    for (size_t i = 0; i < wn; i++) {
        json_error_t jerr;
        json_t *obj = json_loads(wl[i], 0, &jerr);
        if (obj == NULL) {
            fail_msg("expected line %zu is not JSON: %s", i, jerr.text);
        }
        json_decref(obj);
        if (i < gn) {
            assert_string_equal(gl[i], wl[i]);
        }
    }
    assert_int_equal(gn, wn);
    assert_string_equal(got, want);
    free(gl);
    free(wl);
    free(g);
    free(w);
}

/* Every vector's dump is byte-identical to buildctl's. */
static void test_vectors_json(void **state)
{
    for (size_t k = 0; k < kt_n_vectors; k++) {
        char rel[128];
        size_t pb_len, json_len, len;
        uint8_t *pb, *json;
        kiln_definition_t *def = NULL;
        char *out;

        snprintf(rel, sizeof(rel), "llb/%s.pb", kt_vectors[k]);
        pb = kt_read_data(rel, &pb_len);
        snprintf(rel, sizeof(rel), "llb/%s.json", kt_vectors[k]);
        json = kt_read_data(rel, &json_len);
        assert_int_equal(kiln_definition_load(pb, pb_len, NULL, &def), 0);
        out = dump(def, false, &len);
        kt_assert_bytes_equal((const uint8_t *)out, len, json, json_len);
        free(out);
        kiln_definition_free(def);
        free(json);
        free(pb);
    }
}

/*
 * Op 0: a source whose identifier and attrs hold everything Go escapes:
 * HTML characters, quotes, backslashes, control characters (DEL is not
 * escaped), and U+2028/U+2029 among other multi-byte characters.
 */
static size_t add_source(struct defb *d)
{
    static const char *const kv[][2] = {
        {"z.last", "v"},
        {"a.first", "q\"uote\\back"},
        {"m.ctl", "\x01\x1f\x7f\t\n\r\b\f"},
        {"u.uni", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8"
                  "\xe2\x80\xa9"},
    };
    Pb__Op op = PB__OP__INIT;
    Pb__SourceOp src = PB__SOURCE_OP__INIT;
    Pb__Platform plat = PB__PLATFORM__INIT;
    Pb__WorkerConstraints wc = PB__WORKER_CONSTRAINTS__INIT;
    Pb__SourceOp__AttrsEntry attrs[4];
    Pb__SourceOp__AttrsEntry *attrp[4];
    char *features[] = {"f1"};

    for (size_t i = 0; i < 4; i++) {
        pb__source_op__attrs_entry__init(&attrs[i]);
        attrs[i].key = (char *)kv[i][0];
        attrs[i].value = (char *)kv[i][1];
        attrp[i] = &attrs[i];
    }
    src.identifier = "docker-image://example.com/a<b>&c:latest";
    src.n_attrs = 4;
    src.attrs = attrp;
    plat.architecture = "arm64";
    plat.os = "linux";
    plat.variant = "v8";
    plat.n_osfeatures = 1;
    plat.osfeatures = features;
    op.op_case = PB__OP__OP_SOURCE;
    op.source = &src;
    op.platform = &plat;
    op.constraints = &wc;
    return defb_op(d, &op);
}

/* Metadata with every OpMetadata field set; ExportCache{false} is "{}". */
static void add_source_meta(struct defb *d, size_t pos)
{
    Pb__OpMetadata md = PB__OP_METADATA__INIT;
    Pb__OpMetadata__DescriptionEntry name =
        PB__OP_METADATA__DESCRIPTION_ENTRY__INIT;
    Pb__OpMetadata__DescriptionEntry *namep[] = {&name};
    Pb__OpMetadata__CapsEntry caps[2] = {PB__OP_METADATA__CAPS_ENTRY__INIT,
                                         PB__OP_METADATA__CAPS_ENTRY__INIT};
    Pb__OpMetadata__CapsEntry *capsp[] = {&caps[0], &caps[1]};
    Pb__ExportCache ec = PB__EXPORT_CACHE__INIT;
    Pb__ProgressGroup pg = PB__PROGRESS_GROUP__INIT;
    Pb__LinuxResources lr = PB__LINUX_RESOURCES__INIT;

    name.key = "llb.customname";
    name.value = "Name <1> & \"2\"";
    caps[0].key = "source.image";
    caps[0].value = 1;
    caps[1].key = "a.cap";
    md.ignore_cache = 1;
    md.n_description = 1;
    md.description = namep;
    md.export_cache = &ec;
    md.n_caps = 2;
    md.caps = capsp;
    pg.id = "pg1";
    pg.name = "Group";
    pg.weak = 1;
    md.progress_group = &pg;
    lr.memory = 1048576;
    lr.cpushares = 2;
    lr.cpusetcpus = "0-1";
    md.linux_resources = &lr;
    defb_meta(d, pos, &md);
}

/* The exec's mounts: one of each type, options set, outputs 0 and 1. */
static void make_mounts(Pb__Mount m[7], Pb__Mount *mp[7], Pb__CacheOpt *co,
                        Pb__SecretOpt *so, Pb__SSHOpt *ssh, Pb__TmpfsOpt *to)
{
    static const char *const dest[] = {
        "/", "/cache", "/ro", "/run/secrets/s", "/run/ssh", "/tmp", "/out"};
    for (size_t i = 0; i < 7; i++) {
        pb__mount__init(&m[i]);
        m[i].dest = (char *)dest[i];
        m[i].input = -1;
        m[i].output = -1;
        mp[i] = &m[i];
    }
    m[0].input = 0;
    m[0].output = 0;
    m[1].mounttype = PB__MOUNT_TYPE__CACHE;
    co->id = "c1";
    co->sharing = PB__CACHE_SHARING_OPT__LOCKED;
    m[1].cacheopt = co;
    m[1].contentcache = PB__MOUNT_CONTENT_CACHE__OFF;
    m[2].input = 0;
    m[2].selector = "/etc";
    m[2].readonly = 1;
    m[3].mounttype = PB__MOUNT_TYPE__SECRET;
    so->id = "s";
    so->mode = 0400;
    so->optional = 1;
    m[3].secretopt = so;
    m[4].mounttype = PB__MOUNT_TYPE__SSH;
    ssh->id = "default";
    ssh->uid = 1;
    ssh->gid = 2;
    ssh->mode = 0600;
    m[4].sshopt = ssh;
    m[5].mounttype = PB__MOUNT_TYPE__TMPFS;
    m[5].tmpfsopt = to;
    m[6].output = 1;
    m[6].resultid = "r1";
}

/* Every Meta field, including the packed validExitCodes with -1. */
static void make_meta(Pb__Meta *meta, Pb__ProxyEnv *proxy, Pb__HostIP **hosts,
                      Pb__Ulimit **uls)
{
    static char *args[] = {"sh", "-c", "echo \"hi\" > /out/x && cat\\"};
    static char *env[] = {"A=1", "B="};
    static int32_t codes[] = {0, 1, -1};

    meta->n_args = 3;
    meta->args = args;
    meta->n_env = 2;
    meta->env = env;
    meta->cwd = "/w";
    meta->user = "1000:1000";
    proxy->http_proxy = "http://p:3128";
    proxy->no_proxy = "localhost";
    meta->proxy_env = proxy;
    hosts[0]->host = "h";
    hosts[0]->ip = "10.0.0.1";
    meta->n_extrahosts = 1;
    meta->extrahosts = hosts;
    meta->hostname = "box";
    uls[0]->name = "nofile";
    uls[0]->soft = 1024;
    uls[0]->hard = 4096;
    meta->n_ulimit = 1;
    meta->ulimit = uls;
    meta->cgroupparent = "cg";
    meta->removemountstubsrecursive = 1;
    meta->n_validexitcodes = 3;
    meta->validexitcodes = codes;
}

/* Op 1: an exec on op 0 with every ExecOp, Meta and Mount field. */
static size_t add_exec(struct defb *d, size_t src)
{
    Pb__Op op = PB__OP__INIT;
    Pb__Input in = PB__INPUT__INIT;
    Pb__Input *inputs[] = {&in};
    Pb__ExecOp e = PB__EXEC_OP__INIT;
    Pb__Meta meta = PB__META__INIT;
    Pb__ProxyEnv proxy = PB__PROXY_ENV__INIT;
    Pb__HostIP host = PB__HOST_IP__INIT, *hostp[] = {&host};
    Pb__Ulimit ul = PB__ULIMIT__INIT, *ulp[] = {&ul};
    Pb__Mount m[7], *mp[7];
    Pb__CacheOpt co = PB__CACHE_OPT__INIT;
    Pb__SecretOpt so = PB__SECRET_OPT__INIT;
    Pb__SSHOpt ssh = PB__SSHOPT__INIT;
    Pb__TmpfsOpt to = PB__TMPFS_OPT__INIT;
    Pb__SecretEnv se = PB__SECRET_ENV__INIT, *sep[] = {&se};
    Pb__CDIDevice cdi = PB__CDIDEVICE__INIT, *cdip[] = {&cdi};
    Pb__Platform plat = PB__PLATFORM__INIT;
    Pb__WorkerConstraints wc = PB__WORKER_CONSTRAINTS__INIT;
    char *filter[] = {"a==b"};

    in.digest = d->digest[src];
    make_meta(&meta, &proxy, hostp, ulp);
    make_mounts(m, mp, &co, &so, &ssh, &to);
    e.meta = &meta;
    e.n_mounts = 7;
    e.mounts = mp;
    e.network = PB__NET_MODE__NONE;
    e.security = PB__SECURITY_MODE__INSECURE;
    se.id = "tok";
    se.name = "TOKEN";
    se.optional = 1;
    e.n_secretenv = 1;
    e.secretenv = sep;
    cdi.name = "vendor.com/gpu=0";
    e.n_cdidevices = 1;
    e.cdidevices = cdip;
    plat.architecture = "amd64";
    plat.os = "linux";
    wc.n_filter = 1;
    wc.filter = filter;
    op.n_inputs = 1;
    op.inputs = inputs;
    op.op_case = PB__OP__OP_EXEC;
    op.exec = &e;
    op.platform = &plat;
    op.constraints = &wc;
    return defb_op(d, &op);
}

/* The copy action: owner by ID and by name, every flag and list. */
static void make_copy(Pb__FileActionCopy *cp, Pb__ChownOpt *own,
                      Pb__UserOpt u[2], Pb__NamedUserOpt *named)
{
    static char *incl[] = {"*.go", ""};
    static char *excl[] = {"x"};
    static char *req[] = {"/out/x"};

    cp->src = "/out/x";
    cp->dest = "/d/";
    u[0].user_case = PB__USER_OPT__USER_BY_ID;
    u[0].byid = 1000;
    named->name = "staff";
    named->input = 2;
    u[1].user_case = PB__USER_OPT__USER_BY_NAME;
    u[1].byname = named;
    own->user = &u[0];
    own->group = &u[1];
    cp->owner = own;
    cp->mode = -1;
    cp->followsymlink = 1;
    cp->dircopycontents = 1;
    cp->attemptunpackdockercompatibility = 1;
    cp->createdestpath = 1;
    cp->allowwildcard = 1;
    cp->allowemptywildcard = 1;
    cp->n_include_patterns = 2;
    cp->include_patterns = incl;
    cp->n_exclude_patterns = 1;
    cp->exclude_patterns = excl;
    cp->alwaysreplaceexistingdestpaths = 1;
    cp->modestr = "u+x";
    cp->n_required_paths = 1;
    cp->required_paths = req;
}

/* The mkfile action with binary data and owner root / group ID 0. */
static void make_mkfile(Pb__FileActionMkFile *mf, Pb__ChownOpt *own,
                        Pb__UserOpt u[2], Pb__NamedUserOpt *named)
{
    static uint8_t data[] = {0x00, 0xff, 0x10, 'a'};

    mf->path = "/f";
    mf->mode = 0644;
    mf->data.data = data;
    mf->data.len = sizeof(data);
    named->name = "root";
    u[0].user_case = PB__USER_OPT__USER_BY_NAME;
    u[0].byname = named;
    u[1].user_case = PB__USER_OPT__USER_BY_ID; /* byID 0: omitted */
    own->user = &u[0];
    own->group = &u[1];
    mf->owner = own;
    mf->timestamp = -1;
}

/* The six file actions, chained: input of action j is N + j - 1. */
static void make_actions(Pb__FileAction a[6], Pb__FileActionCopy *cp,
                         Pb__FileActionMkFile mf[2], Pb__FileActionMkDir *md,
                         Pb__FileActionSymlink *sl, Pb__FileActionRm *rm)
{
    for (size_t j = 0; j < 6; j++) {
        pb__file_action__init(&a[j]);
        a[j].input = j == 0 ? 0 : (int64_t)j + 1;
        a[j].secondaryinput = -1;
        a[j].output = j == 5 ? 0 : -1;
    }
    a[0].action_case = PB__FILE_ACTION__ACTION_MKFILE;
    a[0].mkfile = &mf[0];
    a[1].secondaryinput = 1;
    a[1].action_case = PB__FILE_ACTION__ACTION_COPY;
    a[1].copy = cp;
    md->path = "/d";
    md->mode = 0755;
    md->makeparents = 1;
    md->timestamp = 1700000000000000000;
    a[2].action_case = PB__FILE_ACTION__ACTION_MKDIR;
    a[2].mkdir = md;
    sl->oldpath = "/d";
    sl->newpath = "/l";
    sl->timestamp = -1;
    a[3].action_case = PB__FILE_ACTION__ACTION_SYMLINK;
    a[3].symlink = sl;
    mf[1].path = "/empty";
    a[4].action_case = PB__FILE_ACTION__ACTION_MKFILE;
    a[4].mkfile = &mf[1];
    rm->path = "/f*";
    rm->allownotfound = 1;
    rm->allowwildcard = 1;
    a[5].action_case = PB__FILE_ACTION__ACTION_RM;
    a[5].rm = rm;
}

/* Op 2: a file op on op 0 and output 1 of the exec. */
static size_t add_file(struct defb *d, size_t src, size_t exec)
{
    Pb__Op op = PB__OP__INIT;
    Pb__Input in[2] = {PB__INPUT__INIT, PB__INPUT__INIT};
    Pb__Input *inputs[] = {&in[0], &in[1]};
    Pb__FileOp f = PB__FILE_OP__INIT;
    Pb__FileAction a[6], *ap[6];
    Pb__FileActionCopy cp = PB__FILE_ACTION_COPY__INIT;
    Pb__FileActionMkFile mf[2] = {PB__FILE_ACTION_MK_FILE__INIT,
                                  PB__FILE_ACTION_MK_FILE__INIT};
    Pb__FileActionMkDir md = PB__FILE_ACTION_MK_DIR__INIT;
    Pb__FileActionSymlink sl = PB__FILE_ACTION_SYMLINK__INIT;
    Pb__FileActionRm rm = PB__FILE_ACTION_RM__INIT;
    Pb__ChownOpt own[2] = {PB__CHOWN_OPT__INIT, PB__CHOWN_OPT__INIT};
    Pb__UserOpt u[4] = {PB__USER_OPT__INIT, PB__USER_OPT__INIT,
                        PB__USER_OPT__INIT, PB__USER_OPT__INIT};
    Pb__NamedUserOpt named[2] = {PB__NAMED_USER_OPT__INIT,
                                 PB__NAMED_USER_OPT__INIT};
    Pb__WorkerConstraints wc = PB__WORKER_CONSTRAINTS__INIT;

    make_mkfile(&mf[0], &own[0], &u[0], &named[0]);
    make_copy(&cp, &own[1], &u[2], &named[1]);
    make_actions(a, &cp, mf, &md, &sl, &rm);
    for (size_t j = 0; j < 6; j++) {
        ap[j] = &a[j];
    }
    f.n_actions = 6;
    f.actions = ap;
    in[0].digest = d->digest[src];
    in[1].digest = d->digest[exec];
    in[1].index = 1;
    op.n_inputs = 2;
    op.inputs = inputs;
    op.op_case = PB__OP__OP_FILE;
    op.file = &f;
    op.constraints = &wc;
    return defb_op(d, &op);
}

/* Op 3: merge of ops 0 and 2 (input 0 is always printed). */
static size_t add_merge(struct defb *d, size_t a, size_t b)
{
    Pb__Op op = PB__OP__INIT;
    Pb__Input in[2] = {PB__INPUT__INIT, PB__INPUT__INIT};
    Pb__Input *inputs[] = {&in[0], &in[1]};
    Pb__MergeOp m = PB__MERGE_OP__INIT;
    Pb__MergeInput mi[2] = {PB__MERGE_INPUT__INIT, PB__MERGE_INPUT__INIT};
    Pb__MergeInput *mip[] = {&mi[0], &mi[1]};

    in[0].digest = d->digest[a];
    in[1].digest = d->digest[b];
    mi[1].input = 1;
    m.n_inputs = 2;
    m.inputs = mip;
    op.n_inputs = 2;
    op.inputs = inputs;
    op.op_case = PB__OP__OP_MERGE;
    op.merge = &m;
    return defb_op(d, &op);
}

/* Op 4: diff of op 3 (lower, input 0) against scratch (upper, -1). */
static size_t add_diff(struct defb *d, size_t lower)
{
    Pb__Op op = PB__OP__INIT;
    Pb__Input in = PB__INPUT__INIT;
    Pb__Input *inputs[] = {&in};
    Pb__DiffOp diff = PB__DIFF_OP__INIT;
    Pb__LowerDiffInput lo = PB__LOWER_DIFF_INPUT__INIT;
    Pb__UpperDiffInput up = PB__UPPER_DIFF_INPUT__INIT;

    in.digest = d->digest[lower];
    up.input = -1;
    diff.lower = &lo;
    diff.upper = &up;
    op.n_inputs = 1;
    op.inputs = inputs;
    op.op_case = PB__OP__OP_DIFF;
    op.diff = &diff;
    return defb_op(d, &op);
}

/* The nested definition of the build op: def bytes, a metadata entry, and
 * a source map whose Range has no end (gogo prints a zero struct). */
static void make_nested(Pb__Definition *def, Pb__Source *s)
{
    static ProtobufCBinaryData raw[] = {{2, (uint8_t *)"ab"}};
    static Pb__OpMetadata md = PB__OP_METADATA__INIT;
    static Pb__Definition__MetadataEntry me =
        PB__DEFINITION__METADATA_ENTRY__INIT;
    static Pb__Definition__MetadataEntry *mep[] = {&me};
    static Pb__Position start = PB__POSITION__INIT;
    static Pb__Range range = PB__RANGE__INIT, *rangep[] = {&range};
    static Pb__Location loc = PB__LOCATION__INIT, *locp[] = {&loc};
    static Pb__Locations locs = PB__LOCATIONS__INIT;
    static Pb__Source__LocationsEntry le = PB__SOURCE__LOCATIONS_ENTRY__INIT;
    static Pb__Source__LocationsEntry *lep[] = {&le};
    static Pb__SourceInfo info = PB__SOURCE_INFO__INIT, *infop[] = {&info};

    def->n_def = 1;
    def->def = raw;
    me.key = "sha256:y";
    me.value = &md;
    def->n_metadata = 1;
    def->metadata = mep;
    start.line = 1;
    range.start = &start;
    loc.n_ranges = 1;
    loc.ranges = rangep;
    locs.n_locations = 1;
    locs.locations = locp;
    le.key = "sha256:x";
    le.value = &locs;
    s->n_locations = 1;
    s->locations = lep;
    info.filename = "Dockerfile";
    info.data.data = (uint8_t *)"FROM x";
    info.data.len = 6;
    info.language = "Dockerfile";
    s->n_infos = 1;
    s->infos = infop;
    def->source = s;
}

/* Op 5: a build op (builder -1) reading op 2. */
static size_t add_build(struct defb *d, size_t input)
{
    Pb__Op op = PB__OP__INIT;
    Pb__Input in = PB__INPUT__INIT;
    Pb__Input *inputs[] = {&in};
    Pb__BuildOp b = PB__BUILD_OP__INIT;
    Pb__BuildInput bi = PB__BUILD_INPUT__INIT;
    Pb__BuildOp__InputsEntry ie = PB__BUILD_OP__INPUTS_ENTRY__INIT;
    Pb__BuildOp__InputsEntry *iep[] = {&ie};
    Pb__BuildOp__AttrsEntry ae = PB__BUILD_OP__ATTRS_ENTRY__INIT;
    Pb__BuildOp__AttrsEntry *aep[] = {&ae};
    Pb__Definition nested = PB__DEFINITION__INIT;
    Pb__Source source = PB__SOURCE__INIT;

    in.digest = d->digest[input];
    b.builder = -1;
    ie.key = "buildkit.llb.definition";
    ie.value = &bi;
    b.n_inputs = 1;
    b.inputs = iep;
    make_nested(&nested, &source);
    b.def = &nested;
    ae.key = "llbbuild.filename";
    ae.value = "f.pb";
    b.n_attrs = 1;
    b.attrs = aep;
    op.n_inputs = 1;
    op.inputs = inputs;
    op.op_case = PB__OP__OP_BUILD;
    op.build = &b;
    return defb_op(d, &op);
}

/* Op 6: a passthrough forwarding output 1 of the exec. */
static size_t add_passthrough(struct defb *d, size_t exec)
{
    Pb__Op op = PB__OP__INIT;
    Pb__Input in = PB__INPUT__INIT;
    Pb__Input *inputs[] = {&in};
    Pb__PassthroughOp pt = PB__PASSTHROUGH_OP__INIT;
    int64_t outputs[] = {0};

    in.digest = d->digest[exec];
    in.index = 1;
    pt.id = "pt";
    pt.n_outputs = 1;
    pt.outputs = outputs;
    op.n_inputs = 1;
    op.inputs = inputs;
    op.op_case = PB__OP__OP_PASSTHROUGH;
    op.passthrough = &pt;
    return defb_op(d, &op);
}

/* Metadata of the other ops: empty (exec), name only (file), none (merge,
 * build, passthrough), caps (diff, terminal). */
static void add_other_meta(struct defb *d)
{
    Pb__OpMetadata empty = PB__OP_METADATA__INIT;
    Pb__OpMetadata named = PB__OP_METADATA__INIT;
    Pb__OpMetadata__DescriptionEntry name =
        PB__OP_METADATA__DESCRIPTION_ENTRY__INIT;
    Pb__OpMetadata__DescriptionEntry *namep[] = {&name};
    Pb__OpMetadata diff = PB__OP_METADATA__INIT;
    Pb__OpMetadata term = PB__OP_METADATA__INIT;
    Pb__OpMetadata__CapsEntry caps[3] = {PB__OP_METADATA__CAPS_ENTRY__INIT,
                                         PB__OP_METADATA__CAPS_ENTRY__INIT,
                                         PB__OP_METADATA__CAPS_ENTRY__INIT};
    Pb__OpMetadata__CapsEntry *diffcaps[] = {&caps[0]};
    Pb__OpMetadata__CapsEntry *termcaps[] = {&caps[2], &caps[1]};

    defb_meta(d, 1, &empty);
    name.key = "llb.customname";
    name.value = "files";
    named.n_description = 1;
    named.description = namep;
    defb_meta(d, 2, &named);
    caps[0].key = "diffop";
    caps[1].key = "constraints";
    caps[2].key = "platform";
    for (size_t i = 0; i < 3; i++) {
        caps[i].value = 1;
    }
    diff.n_caps = 1;
    diff.caps = diffcaps;
    defb_meta(d, 4, &diff);
    term.n_caps = 2;
    term.caps = termcaps;
    defb_meta(d, 7, &term);
}

/* The expected dump, one op per element. */
static const char *const want_handmade[] = {
    /* 0: source */
    "{\"Op\":{\"Op\":{\"source\":{\"identifier\":\"docker-image://example.com"
    "/a\\u003cb\\u003e\\u0026c:latest\",\"attrs\":{\"a.first\":\"q\\\"uote"
    "\\\\back\",\"m.ctl\":\"\\u0001\\u001f\x7f\\t\\n\\r\\u0008\\u000c\","
    "\"u.uni\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\u2028\\u2029\","
    "\"z.last\":\"v\"}}},\"platform\":{\"Architecture\":\"arm64\",\"OS\":"
    "\"linux\",\"Variant\":\"v8\",\"OSFeatures\":[\"f1\"]},\"constraints\":"
    "{}},\"Digest\":\"@0\",\"OpMetadata\":{\"ignore_cache\":true,"
    "\"description\":{\"llb.customname\":\"Name \\u003c1\\u003e \\u0026 "
    "\\\"2\\\"\"},\"export_cache\":{},\"caps\":{\"a.cap\":false,"
    "\"source.image\":true},\"progress_group\":{\"id\":\"pg1\",\"name\":"
    "\"Group\",\"weak\":true},\"linux_resources\":{\"memory\":1048576,"
    "\"cpuShares\":2,\"cpusetCpus\":\"0-1\"}}}\n",
    /* 1: exec */
    "{\"Op\":{\"inputs\":[{\"digest\":\"@0\",\"index\":0}],\"Op\":{\"exec\":"
    "{\"meta\":{\"args\":[\"sh\",\"-c\",\"echo \\\"hi\\\" \\u003e /out/x "
    "\\u0026\\u0026 cat\\\\\"],\"env\":[\"A=1\",\"B=\"],\"cwd\":\"/w\","
    "\"user\":\"1000:1000\",\"proxy_env\":{\"http_proxy\":\"http://p:3128\","
    "\"no_proxy\":\"localhost\"},\"extraHosts\":[{\"Host\":\"h\",\"IP\":"
    "\"10.0.0.1\"}],\"hostname\":\"box\",\"ulimit\":[{\"Name\":\"nofile\","
    "\"Soft\":1024,\"Hard\":4096}],\"cgroupParent\":\"cg\","
    "\"removeMountStubsRecursive\":true,\"validExitCodes\":[0,1,-1]},"
    "\"mounts\":[{\"input\":0,\"dest\":\"/\",\"output\":0},{\"input\":-1,"
    "\"dest\":\"/cache\",\"output\":-1,\"mountType\":3,\"cacheOpt\":{\"ID\":"
    "\"c1\",\"sharing\":2},\"contentCache\":2},{\"input\":0,\"selector\":"
    "\"/etc\",\"dest\":\"/ro\",\"output\":-1,\"readonly\":true},{\"input\":"
    "-1,\"dest\":\"/run/secrets/s\",\"output\":-1,\"mountType\":1,"
    "\"secretOpt\":{\"ID\":\"s\",\"mode\":256,\"optional\":true}},{\"input\":"
    "-1,\"dest\":\"/run/ssh\",\"output\":-1,\"mountType\":2,\"SSHOpt\":"
    "{\"ID\":\"default\",\"uid\":1,\"gid\":2,\"mode\":384}},{\"input\":-1,"
    "\"dest\":\"/tmp\",\"output\":-1,\"mountType\":4,\"TmpfsOpt\":{}},"
    "{\"input\":-1,\"dest\":\"/out\",\"output\":1,\"resultID\":\"r1\"}],"
    "\"network\":2,\"security\":1,\"secretenv\":[{\"ID\":\"tok\",\"name\":"
    "\"TOKEN\",\"optional\":true}],\"cdiDevices\":[{\"name\":"
    "\"vendor.com/gpu=0\"}]}},\"platform\":{\"Architecture\":\"amd64\","
    "\"OS\":\"linux\"},\"constraints\":{\"filter\":[\"a==b\"]}},\"Digest\":"
    "\"@1\",\"OpMetadata\":{\"caps\":null}}\n",
    /* 2: file */
    "{\"Op\":{\"inputs\":[{\"digest\":\"@0\",\"index\":0},{\"digest\":\"@1\","
    "\"index\":1}],\"Op\":{\"file\":{\"actions\":[{\"input\":0,"
    "\"secondaryInput\":-1,\"output\":-1,\"Action\":{\"mkfile\":{\"path\":"
    "\"/f\",\"mode\":420,\"data\":\"AP8QYQ==\",\"owner\":{\"user\":{\"User\":"
    "{\"byName\":{\"name\":\"root\",\"input\":0}}},\"group\":{\"User\":{}}},"
    "\"timestamp\":-1}}},{\"input\":2,\"secondaryInput\":1,\"output\":-1,"
    "\"Action\":{\"copy\":{\"src\":\"/out/x\",\"dest\":\"/d/\",\"owner\":"
    "{\"user\":{\"User\":{\"byID\":1000}},\"group\":{\"User\":{\"byName\":"
    "{\"name\":\"staff\",\"input\":2}}}},\"mode\":-1,\"followSymlink\":true,"
    "\"dirCopyContents\":true,\"attemptUnpackDockerCompatibility\":true,"
    "\"createDestPath\":true,\"allowWildcard\":true,\"allowEmptyWildcard\":"
    "true,\"include_patterns\":[\"*.go\",\"\"],\"exclude_patterns\":[\"x\"],"
    "\"alwaysReplaceExistingDestPaths\":true,\"modeStr\":\"u+x\","
    "\"required_paths\":[\"/out/x\"]}}},{\"input\":3,\"secondaryInput\":-1,"
    "\"output\":-1,\"Action\":{\"mkdir\":{\"path\":\"/d\",\"mode\":493,"
    "\"makeParents\":true,\"timestamp\":1700000000000000000}}},{\"input\":4,"
    "\"secondaryInput\":-1,\"output\":-1,\"Action\":{\"symlink\":"
    "{\"oldpath\":\"/d\",\"newpath\":\"/l\",\"timestamp\":-1}}},{\"input\":5,"
    "\"secondaryInput\":-1,\"output\":-1,\"Action\":{\"mkfile\":{\"path\":"
    "\"/empty\"}}},{\"input\":6,\"secondaryInput\":-1,\"output\":0,"
    "\"Action\":{\"rm\":{\"path\":\"/f*\",\"allowNotFound\":true,"
    "\"allowWildcard\":true}}}]}},\"constraints\":{}},\"Digest\":\"@2\","
    "\"OpMetadata\":{\"description\":{\"llb.customname\":\"files\"},"
    "\"caps\":null}}\n",
    /* 3: merge */
    "{\"Op\":{\"inputs\":[{\"digest\":\"@0\",\"index\":0},{\"digest\":\"@2\","
    "\"index\":0}],\"Op\":{\"merge\":{\"inputs\":[{\"input\":0},{\"input\":"
    "1}]}}},\"Digest\":\"@3\",\"OpMetadata\":{\"caps\":null}}\n",
    /* 4: diff */
    "{\"Op\":{\"inputs\":[{\"digest\":\"@3\",\"index\":0}],\"Op\":{\"diff\":"
    "{\"lower\":{\"input\":0},\"upper\":{\"input\":-1}}}},\"Digest\":\"@4\","
    "\"OpMetadata\":{\"caps\":{\"diffop\":true}}}\n",
    /* 5: build */
    "{\"Op\":{\"inputs\":[{\"digest\":\"@2\",\"index\":0}],\"Op\":{\"build\":"
    "{\"builder\":-1,\"inputs\":{\"buildkit.llb.definition\":{\"input\":0}},"
    "\"def\":{\"def\":[\"YWI=\"],\"metadata\":{\"sha256:y\":{\"caps\":null}},"
    "\"Source\":{\"locations\":{\"sha256:x\":{\"locations\":[{\"ranges\":"
    "[{\"start\":{\"line\":1},\"end\":{}}]}]}},\"infos\":[{\"filename\":"
    "\"Dockerfile\",\"data\":\"RlJPTSB4\",\"language\":\"Dockerfile\"}]}},"
    "\"attrs\":{\"llbbuild.filename\":\"f.pb\"}}}},\"Digest\":\"@5\","
    "\"OpMetadata\":{\"caps\":null}}\n",
    /* 6: passthrough */
    "{\"Op\":{\"inputs\":[{\"digest\":\"@1\",\"index\":1}],\"Op\":"
    "{\"passthrough\":{\"id\":\"pt\",\"outputs\":[0]}}},\"Digest\":\"@6\","
    "\"OpMetadata\":{\"caps\":null}}\n",
    /* 7: terminal */
    "{\"Op\":{\"inputs\":[{\"digest\":\"@4\",\"index\":0}],\"Op\":null},"
    "\"Digest\":\"@7\",\"OpMetadata\":{\"caps\":{\"constraints\":true,"
    "\"platform\":true}}}\n",
};

/*
 * A definition reaching every op kind and field: the always-printed gogo
 * fields, omitempty everywhere else, escaping, base64, maps, oneofs,
 * caps:null and missing metadata, and fields newer than v0.11.
 */
static void test_handmade_json(void **state)
{
    struct defb d = {0};
    kiln_definition_t *def;
    size_t src, exec, file, merge, diff;
    char *want, *got;

    src = add_source(&d);
    exec = add_exec(&d, src);
    file = add_file(&d, src, exec);
    merge = add_merge(&d, src, file);
    diff = add_diff(&d, merge);
    assert_int_equal(add_build(&d, file), 5);
    assert_int_equal(add_passthrough(&d, exec), 6);
    assert_int_equal(defb_terminal(&d, diff, 0), 7);
    add_source_meta(&d, src);
    add_other_meta(&d);
    want = expand_lines(want_handmade, KILN_ARRAY_SIZE(want_handmade), &d);
    def = defb_load(&d);
    got = dump(def, false, NULL);
    assert_json_lines(got, want);
    free(got);
    free(want);
    kiln_definition_free(def);
}

/* A source op named `name` (NULL: none) and the terminal on it. */
static kiln_definition_t *load_named_source(struct defb *d, const char *id,
                                            const char *name)
{
    Pb__Op op = PB__OP__INIT;
    Pb__SourceOp src = PB__SOURCE_OP__INIT;
    Pb__OpMetadata md = PB__OP_METADATA__INIT;
    Pb__OpMetadata__DescriptionEntry e =
        PB__OP_METADATA__DESCRIPTION_ENTRY__INIT;
    Pb__OpMetadata__DescriptionEntry *ep[] = {&e};

    src.identifier = (char *)id;
    op.op_case = PB__OP__OP_SOURCE;
    op.source = &src;
    defb_op(d, &op);
    defb_terminal(d, 0, 0);
    if (name != NULL) {
        e.key = "llb.customname";
        e.value = (char *)name;
        md.n_description = 1;
        md.description = ep;
        defb_meta(d, 0, &md);
    }
    return defb_load(d);
}

/* Go's map keeps the last of duplicate keys and prints keys sorted, so a
 * map written unsorted and with a repeated key prints one sorted entry per
 * key. */
static void test_map_duplicates(void **state)
{
    struct defb d = {0};
    kiln__buf_t md = KILN_BUF_INIT, e = KILN_BUF_INIT;
    static const char *const desc[][2] = {{"k", "first"}, {"k", "second"}};
    static const char *const caps[] = {"b", "a", "b"};
    kiln_definition_t *def;
    char *got, *want;

    for (size_t i = 0; i < 2; i++) {
        kiln__pb_put_bytes(&e, 1, desc[i][0], strlen(desc[i][0]));
        kiln__pb_put_bytes(&e, 2, desc[i][1], strlen(desc[i][1]));
        kiln__pb_put_bytes(&md, 2, e.data, e.len);
        e.len = 0;
    }
    for (size_t i = 0; i < 3; i++) {
        kiln__pb_put_bytes(&e, 1, caps[i], 1);
        kiln__pb_put_tag(&e, 2, 0);
        kiln__pb_put_varint(&e, i < 2); /* the last "b" is false */
        kiln__pb_put_bytes(&md, 5, e.data, e.len);
        e.len = 0;
    }
    {
        Pb__Op op = PB__OP__INIT;
        Pb__SourceOp src = PB__SOURCE_OP__INIT;
        src.identifier = "local://ctx";
        op.op_case = PB__OP__OP_SOURCE;
        op.source = &src;
        defb_op(&d, &op);
    }
    defb_terminal(&d, 0, 0);
    defb_meta_raw(&d, 0, md.data, md.len);
    want = expand("{\"Op\":{\"Op\":{\"source\":{\"identifier\":\"local://ctx"
                  "\"}}},\"Digest\":\"@0\",\"OpMetadata\":{\"description\":"
                  "{\"k\":\"second\"},\"caps\":{\"a\":true,\"b\":false}}}\n"
                  "{\"Op\":{\"inputs\":[{\"digest\":\"@0\",\"index\":0}],"
                  "\"Op\":null},\"Digest\":\"@1\",\"OpMetadata\":{\"caps\":"
                  "null}}\n",
                  &d);
    def = defb_load(&d);
    got = dump(def, false, NULL);
    assert_json_lines(got, want);
    free(got);
    free(want);
    kiln__buf_free(&md);
    kiln__buf_free(&e);
    kiln_definition_free(def);
}

/* An empty definition prints no op, and an empty graph. */
static void test_empty(void **state)
{
    kiln_definition_t *def = NULL;
    size_t len;
    char *out;

    assert_int_equal(kiln_definition_load("", 0, NULL, &def), 0);
    out = dump(def, false, &len);
    assert_int_equal(len, 0);
    free(out);
    out = dump(def, true, NULL);
    assert_string_equal(out, "digraph {\n}\n");
    free(out);
    kiln_definition_free(def);
}

/* Output larger than the internal chunk is written whole and in order. */
static void test_large_output(void **state)
{
    enum { DATA_LEN = 3 << 20 }; /* base64: 4 MiB of 'A' */
    struct defb d = {0};
    Pb__Op op = PB__OP__INIT;
    Pb__FileOp f = PB__FILE_OP__INIT;
    Pb__FileAction a = PB__FILE_ACTION__INIT, *ap[] = {&a};
    Pb__FileActionMkFile mf = PB__FILE_ACTION_MK_FILE__INIT;
    uint8_t *data = calloc(DATA_LEN, 1);
    kiln_definition_t *def;
    const char *head, *b64;
    char *out, *tail, **lines;
    size_t len;

    assert_non_null(data);
    mf.path = "/big";
    mf.data.data = data;
    mf.data.len = DATA_LEN;
    a.input = -1;
    a.secondaryinput = -1;
    a.action_case = PB__FILE_ACTION__ACTION_MKFILE;
    a.mkfile = &mf;
    f.n_actions = 1;
    f.actions = ap;
    op.op_case = PB__OP__OP_FILE;
    op.file = &f;
    defb_op(&d, &op);
    defb_terminal(&d, 0, 0);
    def = defb_load(&d);
    out = dump(def, false, &len);
    assert_int_equal(kt_split_lines(out, &lines), 2);
    head = "{\"Op\":{\"Op\":{\"file\":{\"actions\":[{\"input\":-1,"
           "\"secondaryInput\":-1,\"output\":0,\"Action\":{\"mkfile\":"
           "{\"path\":\"/big\",\"data\":\"";
    tail = expand("\"}}}]}}},\"Digest\":\"@0\",\"OpMetadata\":{\"caps\":null}}",
                  &d);
    assert_int_equal(strncmp(lines[0], head, strlen(head)), 0);
    b64 = lines[0] + strlen(head);
    assert_int_equal(strspn(b64, "A"), DATA_LEN / 3 * 4);
    assert_string_equal(b64 + DATA_LEN / 3 * 4, tail);
    assert_non_null(strstr(lines[1], "\"Op\":null"));
    free(tail);
    free(lines);
    free(out);
    free(data);
    kiln_definition_free(def);
}

/* A stream that cannot be written gives KILN_EIO, for both formats. */
static void test_write_error(void **state)
{
    size_t len;
    uint8_t *pb = kt_read_data("llb/e_run_file.pb", &len);
    kiln_definition_t *def = NULL;
    const char *paths[] = {"/dev/null", "/dev/full"};

    assert_int_equal(kiln_definition_load(pb, len, NULL, &def), 0);
    for (size_t i = 0; i < 2; i++) {
        /* Read-only: fwrite fails. /dev/full: the final fflush fails. */
        FILE *f = fopen(paths[i], i == 0 ? "r" : "w");
        kiln_error_t err = {0};

        if (f == NULL) {
            continue;
        }
        assert_int_equal(kiln_definition_dump_json(def, f, &err), KILN_EIO);
        assert_int_equal(err.code, KILN_EIO);
        assert_non_null(strstr(err.message, "writing"));
        clearerr(f);
        assert_int_equal(kiln_definition_dump_dot(def, f, NULL), KILN_EIO);
        fclose(f);
    }
    kiln_definition_free(def);
    free(pb);
}

/* Runs /usr/bin/dot on `text`; skipped where Graphviz is not installed. */
static void assert_dot_parses(const char *text)
{
    char path[] = "/tmp/kiln-dump-dot-XXXXXX";
    int fd, status;
    pid_t pid;

    if (access("/usr/bin/dot", X_OK) != 0) {
        return;
    }
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/usr/bin/dot", "dot", "-Tsvg", "-o", "/dev/null", path,
              (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static size_t count_lines_with(char **lines, size_t n, const char *part)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++) {
        c += strstr(lines[i], part) != NULL;
    }
    return c;
}

static void assert_has_line(char **lines, size_t n, const char *line)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(lines[i], line) == 0) {
            return;
        }
    }
    fail_msg("no line \"%s\" in the graph", line);
}

#define E_SRC                                                                  \
    "\"sha256:"                                                                \
    "1d86b3537e7587f6f080683a05faa30691f6a01ed22b1852f7d7aeb34badef23\""
#define E_EXEC                                                                 \
    "\"sha256:"                                                                \
    "404a45e0e3e0bd1ba5e43d6242b6d9261df23d0914985944d7b79432fca0c159\""
#define E_FILE                                                                 \
    "\"sha256:"                                                                \
    "84dbb331d3f6d35e9ef242236f7e8c10e4f6ba3fd7fad2e01167ac27af0c1da2\""
#define E_TERM                                                                 \
    "\"sha256:"                                                                \
    "dcf61e7793472d24dd28c54ef5d762b9f05262d7888db5b7cfd1be26bf5727d0\""

/* e_run_file: 4 nodes, 4 edges, the exec's second output labelled. */
static void test_dot_run_file(void **state)
{
    size_t len, n;
    uint8_t *pb = kt_read_data("llb/e_run_file.pb", &len);
    kiln_definition_t *def = NULL;
    char *out, *again, **lines;

    assert_int_equal(kiln_definition_load(pb, len, NULL, &def), 0);
    out = dump(def, true, NULL);
    again = dump(def, true, NULL);
    assert_string_equal(out, again); /* deterministic */
    assert_dot_parses(out);
    n = kt_split_lines(out, &lines);
    assert_int_equal(n, 10);
    assert_string_equal(lines[0], "digraph {");
    assert_string_equal(lines[n - 1], "}");
    assert_int_equal(count_lines_with(lines, n, "shape=box];"), 4);
    assert_int_equal(count_lines_with(lines, n, " -> "), 4);
    assert_has_line(lines, n,
                    "  " E_SRC " [label=\"source docker-image://127.0.0.1:5000"
                    "/busybox:latest\" shape=box];");
    assert_has_line(lines, n,
                    "  " E_EXEC " [label=\"exec sh -c echo hi > /out/x\" "
                    "shape=box];");
    assert_has_line(lines, n,
                    "  " E_FILE " [label=\"file mkdir, mkfile, copy, mkfile, "
                    "rm\" shape=box];");
    assert_has_line(lines, n, "  " E_TERM " [label=\"terminal\" shape=box];");
    assert_has_line(lines, n, "  " E_SRC " -> " E_EXEC ";");
    assert_has_line(lines, n, "  " E_EXEC " -> " E_FILE " [label=\"1\"];");
    assert_has_line(lines, n, "  " E_SRC " -> " E_FILE ";");
    assert_has_line(lines, n, "  " E_FILE " -> " E_TERM ";");
    free(lines);
    free(again);
    free(out);
    kiln_definition_free(def);
    free(pb);
}

/* A label with every character dot treats specially. */
static void test_dot_escaping(void **state)
{
    struct defb d = {0};
    kiln_definition_t *def =
        load_named_source(&d, "docker-image://x",
                          "a \"quoted\" \\N\\back\\\nline2 & <x>\ttab\x7f");
    char *out = dump(def, true, NULL);

    assert_non_null(strstr(out, "[label=\"a \\\"quoted\\\" \\\\N\\\\back\\\\"
                                "\\nline2 &amp; <x> tab \" shape=box];\n"));
    assert_dot_parses(out);
    free(out);
    kiln_definition_free(def);
}

/* Long labels are cut on a UTF-8 boundary and end in "...". */
static void test_dot_long_label(void **state)
{
    char id[160];
    struct defb d = {0};
    kiln_definition_t *def;
    char *out, *label, *end;

    /* "source " (7) + "a://" (4) + 107 'x' = 118 bytes, then a 3-byte
     * character across the 120-byte limit. */
    memset(id, 0, sizeof(id));
    memcpy(id, "a://", 4);
    memset(id + 4, 'x', 107);
    strcat(id, "\xe2\x82\xac and more");
    def = load_named_source(&d, id, NULL);
    out = dump(def, true, NULL);
    label = strstr(out, "[label=\"source a://");
    assert_non_null(label);
    label += strlen("[label=\"");
    end = strstr(label, "...\" shape=box]");
    assert_non_null(end);
    assert_int_equal(end - label, 118);
    assert_dot_parses(out);
    free(out);
    kiln_definition_free(def);
}

/* Every vector's graph parses and has one node per op. */
static void test_dot_vectors(void **state)
{
    for (size_t k = 0; k < kt_n_vectors; k++) {
        char rel[128];
        size_t len, n;
        uint8_t *pb;
        kiln_definition_t *def = NULL;
        char *out, **lines;

        snprintf(rel, sizeof(rel), "llb/%s.pb", kt_vectors[k]);
        pb = kt_read_data(rel, &len);
        assert_int_equal(kiln_definition_load(pb, len, NULL, &def), 0);
        out = dump(def, true, NULL);
        assert_dot_parses(out);
        n = kt_split_lines(out, &lines);
        assert_int_equal(count_lines_with(lines, n, "shape=box];"),
                         kiln_definition_op_count(def));
        free(lines);
        free(out);
        kiln_definition_free(def);
        free(pb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_json),
        cmocka_unit_test(test_handmade_json),
        cmocka_unit_test(test_map_duplicates),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_large_output),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_dot_run_file),
        cmocka_unit_test(test_dot_escaping),
        cmocka_unit_test(test_dot_long_label),
        cmocka_unit_test(test_dot_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
