#!/usr/bin/env bash
# kiln debug dump-llb end to end: the JSON of every BuildKit vector is
# byte-identical to buildctl's, from a file and from standard input; --dot
# gives one node per op and parses with Graphviz; a failed write is an error.
# TAP output.
set -u
kiln=${KILN_BIN:?run through meson test}
data=${KILN_TEST_DATA:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}

not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1"
    failed=$((failed + 1))
    [ -s "$tmp/err" ] && sed 's/^/# /' "$tmp/err"
    return 0
}

vectors=("$data"/llb/*.pb)
plan=$((${#vectors[@]} * 3 + 1))
echo "1..$plan"

for pb in "${vectors[@]}"; do
    name=$(basename "$pb" .pb)
    want=${pb%.pb}.json

    if "$kiln" debug dump-llb "$pb" >"$tmp/out" 2>"$tmp/err" &&
        cmp -s "$tmp/out" "$want"; then
        ok "$name: JSON is buildctl's"
    else
        not_ok "$name: JSON differs from $want"
    fi

    if "$kiln" debug dump-llb <"$pb" >"$tmp/out" 2>"$tmp/err" &&
        cmp -s "$tmp/out" "$want"; then
        ok "$name: JSON from standard input"
    else
        not_ok "$name: JSON from standard input differs"
    fi

    ops=$(wc -l <"$want")
    if ! "$kiln" debug dump-llb --dot "$pb" >"$tmp/dot" 2>"$tmp/err"; then
        not_ok "$name: --dot failed"
    elif [ "$(grep -c 'shape=box];$' "$tmp/dot")" != "$ops" ]; then
        not_ok "$name: --dot does not have $ops nodes"
    elif [ -x /usr/bin/dot ] &&
        ! /usr/bin/dot -Tsvg -o /dev/null "$tmp/dot" 2>"$tmp/err"; then
        not_ok "$name: --dot output does not parse"
    else
        ok "$name: --dot has $ops nodes and parses"
    fi
done

if [ ! -w /dev/full ]; then
    ok "# SKIP no /dev/full"
elif "$kiln" debug dump-llb "$data/llb/a_image.pb" >/dev/full 2>"$tmp/err"; then
    not_ok "writing to /dev/full succeeded"
elif ! grep -q '^kiln: error: writing the dump' "$tmp/err"; then
    not_ok "writing to /dev/full: no error message"
else
    ok "writing to /dev/full fails with a message"
fi

[ "$failed" = 0 ]
