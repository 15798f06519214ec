/*
 * Generic protobuf-c message -> Go encoding/json (llb/pbwalk.c) in the two
 * struct generations pbjson.h describes.
 */
#include <string.h>

#include "llb/pbwalk.h"
#include "ops.pb-c.h"
#include "solver/pbjson.h"

/* Fields added after v0.11: a v0.11 daemon drops them while decoding, so
 * they never reach its JSON. */
static const kiln__pbwalk_rule_t added_after_v011[] = {
    /* v0.13 */
    {&pb__mount__descriptor, "contentCache", KILN_PBWALK_OMIT},
    /* v0.14 */
    {&pb__file_action_copy__descriptor, "alwaysReplaceExistingDestPaths",
     KILN_PBWALK_OMIT},
    /* v0.17 */
    {&pb__file_action_copy__descriptor, "modeStr", KILN_PBWALK_OMIT},
    {&pb__meta__descriptor, "validExitCodes", KILN_PBWALK_OMIT},
    /* v0.20 */
    {&pb__exec_op__descriptor, "cdiDevices", KILN_PBWALK_OMIT},
    /* v0.26 */
    {&pb__file_action_copy__descriptor, "required_paths", KILN_PBWALK_OMIT},
    /* v0.31 */
    {&pb__op_metadata__descriptor, "linux_resources", KILN_PBWALK_OMIT},
};

static unsigned legacy_flags(const ProtobufCMessageDescriptor *d,
                             const ProtobufCFieldDescriptor *f)
{
    /* A map entry without a value decodes to the zero message in Go;
     * protobuf-c leaves it NULL. */
    return KILN_PBWALK_ZERO_VALUES | kiln__pbwalk_gogo_flags(d, f) |
           kiln__pbwalk_rule_flags(added_after_v011,
                                   KILN_ARRAY_SIZE(added_after_v011), d, f);
}

static unsigned current_flags(const ProtobufCMessageDescriptor *d,
                              const ProtobufCFieldDescriptor *f)
{
    return KILN_PBWALK_ZERO_VALUES; /* as in legacy_flags() */
}

/* Only UserOpt's oneof: Op and FileAction have a custom MarshalJSON in
 * BuildKit, which cache maps never call. */
static const char *user_oneof(const ProtobufCMessageDescriptor *d)
{
    return d == &pb__user_opt__descriptor ? kiln__pbwalk_oneof_name(d) : NULL;
}

/* UserOpt.MarshalJSON of current BuildKit names the member "byId". */
static const char *current_member(const ProtobufCFieldDescriptor *f)
{
    return strcmp(f->name, "byID") == 0 ? "byId" : f->name;
}

/* gogo reflected the oneof wrapper struct: {"User":{"byID":n}} or
 * {"User":null}. */
static const kiln__pbwalk_style_t legacy_style = {
    legacy_flags,
    user_oneof,
    NULL,
    KILN_PBWALK_UNSET_ONEOF_NULL | KILN_PBWALK_NO_FLOATS,
};

static const kiln__pbwalk_style_t current_style = {
    current_flags,
    user_oneof,
    current_member,
    KILN_PBWALK_NO_FLOATS,
};

int kiln__pbjson_write(kiln__gojson_t *w, const ProtobufCMessage *msg,
                       bool legacy)
{
    int rc;

    if (msg == NULL) {
        kiln__gojson_null(w);
        return 0;
    }
    rc = kiln__pbwalk_json(w, legacy ? &legacy_style : &current_style,
                           msg->descriptor, msg);
    if (rc == 0 && !kiln__buf_ok(w->out)) {
        rc = KILN_ENOMEM;
    }
    return rc;
}
