#!/usr/bin/env bash
# kiln plugins and kiln source translate with the example inline:// plugin
# on KILN_PLUGIN_PATH, and kiln build of a definition that uses it: the
# command-line side of the plugin loader. TAP output.
set -u
kiln=${KILN_BIN:?run through meson test}
example=${KILN_TEST_EXAMPLE_PLUGIN:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
export KILN_PLUGIN_PATH=$(dirname "$example")

# check NAME WANT_STATUS STREAM PATTERN -- ARGS...
check() {
    local name=$1 want=$2 stream=$3 pattern=$4
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

echo "1..11"
check "plugins lists inline with its scheme and path" 0 out \
    "^inline +1\.0\.0 +inline +/.*kiln-inline\.so$" -- plugins
check "plugins --json" 0 out \
    '^\{"name":"inline","version":"1\.0\.0","schemes":\["inline"\],"path":"/' \
    -- plugins --json
check "plugins --help" 0 out '^Usage: kiln plugins' -- plugins --help
check "translate, plain" 0 out '^inline\.file\.a\.conf: x = 1$' -- \
    source translate inline name=cfg 'file.a.conf=x = 1'
check "translate --json" 0 out \
    '^\{"identifier":"inline://cfg","attrs":\{"inline\.file\.a":"1"\}\}$' -- \
    source translate --json inline name=cfg file.a=1
check "translate: unknown scheme names the loaded plugins" 1 err \
    "no source plugin handles scheme 'nosuch' \(loaded: .*inline" -- \
    source translate nosuch a=b
check "translate: the plugin's own error" 1 err \
    "unknown parameter 'colour'" -- source translate inline name=x colour=1
check "translate: not KEY=VALUE" 1 err "parameter 'oops' is not KEY=VALUE" \
    -- source translate inline name=x oops
check "source: unknown subcommand" 2 err "unknown subcommand 'move'" -- \
    source move inline

# A broken module on the path: every command that loads plugins says so.
printf 'not a shared object\n' >"$tmp/kiln-broken.so"
KILN_PLUGIN_PATH=$tmp check "plugins: a broken module is named" 1 err \
    "kiln-broken\.so" -- plugins
KILN_PLUGIN_PATH=$tmp check "build: a broken module stops the build" 1 err \
    "kiln-broken\.so" -- build --root "$tmp/root" /dev/null

[ "$failed" = 0 ]
