#!/usr/bin/env bash
# The kiln command's contract: help, version, usage errors (exit 2) and
# failures (exit 1 with "kiln: error: ..."). TAP output.
set -u
kiln=${KILN_BIN:?run through meson test}
data=${KILN_TEST_DATA:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

# check NAME WANT_STATUS PATTERN STREAM -- ARGS...
check() {
    local name=$1 want=$2 pattern=$3 stream=$4
    shift 5
    local status=0
    "$kiln" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
    n=$((n + 1))
    if [ "$status" != "$want" ]; then
        echo "not ok $n - $name: exit $status, want $want"
        sed 's/^/# /' "$tmp/err"
        failed=$((failed + 1))
    elif ! grep -qE -- "$pattern" "$tmp/$stream"; then
        echo "not ok $n - $name: $stream lacks /$pattern/"
        sed 's/^/# /' "$tmp/$stream"
        failed=$((failed + 1))
    else
        echo "ok $n - $name"
    fi
}

echo "1..13"
check "--help" 0 '^Usage: kiln ' out -- --help
check "-h" 0 'Commands:' out -- -h
check "--version" 0 '^kiln [0-9]+\.[0-9]+\.[0-9]+$' out -- --version
check "no arguments" 2 '^Usage: kiln ' err --
check "unknown command" 2 "unknown command 'frobnicate'" err -- frobnicate
check "unknown option" 2 "unknown option '--frob'" err -- --frob
check "debug --help" 0 'dump-llb' out -- debug --help
check "dump-llb --help" 0 'Usage: kiln debug dump-llb' out -- debug dump-llb --help
check "dump-llb unknown option" 2 "unknown option '--bogus'" err -- debug dump-llb --bogus
check "dump-llb missing file" 1 '^kiln: error: .*nonexistent.pb' err -- debug dump-llb "$tmp/nonexistent.pb"

printf 'not a definition' >"$tmp/garbage.pb"
check "dump-llb garbage" 1 '^kiln: error: .*not a valid LLB definition' err -- debug dump-llb "$tmp/garbage.pb"
head -c 100 "$data/llb/e_run_file.pb" >"$tmp/truncated.pb"
check "dump-llb truncated" 1 '^kiln: error: .*truncated\.pb: not a valid LLB definition' err -- debug dump-llb "$tmp/truncated.pb"
check "dump-llb too many args" 2 'too many arguments' err -- debug dump-llb a b

[ "$failed" = 0 ]
