#!/usr/bin/env bash
# kiln build --export-cache / --import-cache end to end: the 400-op file
# chain BuildKit's Go client made is built on one store root with its cache
# exported into a layout directory (mode=max), then on a fresh root with
# that cache imported: nothing runs and the result is the same; bad specs
# fail with exit 1 and say what is wrong; an unreadable import is a
# warning. TAP output.
set -u
kiln=${KILN_BIN:?run through meson test}
data=${KILN_TEST_DATA:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
def=$data/perf/p_file_chain400.pb
n=0

ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}

not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1"
    head -n 20 "$tmp/err" | sed 's/^/# /'
}

run() {
    status=0
    "$kiln" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
}

# expect NAME WANT_STATUS [PATTERN in stderr]
expect() {
    if [ "$status" != "$2" ]; then
        not_ok "$1: exit $status, want $2"
    elif [ -n "${3:-}" ] && ! grep -qE -- "$3" "$tmp/err"; then
        not_ok "$1: stderr lacks /$3/"
    else
        ok "$1"
    fi
}

echo "1..13"

run build --root "$tmp/a" --progress=plain -o "$tmp/out-a" \
    --export-cache "type=local,dest=$tmp/cache,mode=max" "$def"
expect "build exporting its cache" 0 '^400 vertices: 0 cached, 400 run'
if [ -f "$tmp/cache/index.json" ] && grep -q '"latest"' "$tmp/cache/index.json"; then
    ok "the cache is an OCI layout tagged latest"
else
    not_ok "no index.json naming latest in the cache"
fi

run build --root "$tmp/b" --progress=plain -o "$tmp/out-b" \
    --import-cache "type=local,src=$tmp/cache" "$def"
expect "fresh root importing it runs nothing" 0 '^400 vertices: 400 cached, 0 run'
if diff -r "$tmp/out-a" "$tmp/out-b" >/dev/null; then
    ok "the same result on both roots"
else
    not_ok "results differ"
fi

run build --root "$tmp/c" --export-cache "type=local,dest=$tmp/x,mod=max" "$def"
expect "an unknown option is an error" 1 \
    "kiln: error: --export-cache 'type=local,dest=$tmp/x,mod=max': unknown option 'mod'"
run build --root "$tmp/c" --import-cache "type=registry" "$def"
expect "a registry import without ref is an error" 1 'type=registry needs ref='

run build --root "$tmp/d" --progress=plain \
    --import-cache "type=local,src=$tmp/nothing-here" "$def"
expect "an unreadable import is a warning" 0 \
    "importing the build cache from $tmp/nothing-here: .*building without it"

# A cache of another definition: every vertex misses, and says why.
run build --root "$tmp/e" --progress=plain --explain-misses \
    --import-cache "type=local,src=$data/buildkit-cache/f_diamond" "$def"
expect "--explain-misses says why each vertex ran" 0 \
    'cache miss: no record of this op \(cache-map digest [0-9a-f]{12}\)' 

run cache ls "$tmp/cache"
expect "cache ls lists the 400 records" 0
if grep -qE '^[0-9a-f]{12} +[0-9]+ +[0-9.]+k?B +20[0-9-]+T.* mkfile /f' "$tmp/out" &&
    grep -qx '400 records, 400 with layers' "$tmp/out"; then
    ok "cache ls: digest, layers, size, created, description"
else
    not_ok "cache ls output is wrong"; head -n 3 "$tmp/out" | sed 's/^/# /'
fi
run cache ls --json "type=local,src=$data/buildkit-cache/f_diamond"
expect "cache ls --json of a BuildKit cache" 0
if python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r)==7 and sum(1 for x in r if x["results"])==3' "$tmp/out"; then
    ok "its 7 records, 3 with results, as JSON"
else
    not_ok "cache ls --json output is wrong"
fi

run build --help
if grep -q -- '--export-cache' "$tmp/out" && grep -q -- '--import-cache' "$tmp/out" &&
    grep -q -- '--explain-misses' "$tmp/out"; then
    ok "--help describes both options"
else
    not_ok "--help lacks them"
fi
