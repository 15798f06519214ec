/*
 * LLB messages (protobuf-c) written as Go's encoding/json writes BuildKit's
 * generated Go structs: fields in .proto order under their .proto names,
 * enums as numbers, bytes as base64, maps sorted by key.
 *
 * Two struct generations exist:
 *  - current (protobuf-go, BuildKit >= v0.17): every field is omitempty;
 *    UserOpt has a custom MarshalJSON: {"User":{"byName":..|"byId":n}}.
 *  - legacy (gogo, BuildKit <= v0.16): index fields declared with
 *    gogoproto customtype (Mount.input/output, MergeInput.input,
 *    Lower/UpperDiffInput.input, NamedUserOpt.input, BuildOp.builder,
 *    BuildInput.input) and the non-nullable Definition.metadata,
 *    OpMetadata.caps, Range.start/end are written even when zero (an empty
 *    map as null); UserOpt is the reflected oneof wrapper,
 *    {"User":{"byName":..|"byID":n}} or {"User":null}. Fields that
 *    BuildKit added after v0.11 (Mount.contentCache, Meta.validExitCodes,
 *    ExecOp.cdiDevices, FileActionCopy.alwaysReplaceExistingDestPaths,
 *    modeStr and required_paths, OpMetadata.linux_resources) are left out:
 *    a v0.11 daemon drops them while decoding.
 *
 * Op and FileAction (oneof messages with custom JSON in BuildKit) are not
 * supported: cache maps never marshal them.
 */
#ifndef KILN_SOLVER_PBJSON_H
#define KILN_SOLVER_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "util/gojson.h"

/*
 * Writes `msg` as a JSON value through `w`. A NULL `msg` writes null.
 * Returns 0, KILN_ENOMEM, or KILN_EINVAL for a message kind the encoder
 * does not support (Op, FileAction, floating-point fields).
 */
int kiln__pbjson_write(kiln__gojson_t *w, const ProtobufCMessage *msg,
                       bool legacy);

#endif
