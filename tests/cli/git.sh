#!/usr/bin/env bash
# kiln source translate git: the command-line side of the git plugin's
# translate (its identifiers and attrs, as BuildKit's llb.Git() writes
# them; bad parameters are exit 1 with a message naming them). TAP output.
set -u
kiln=${KILN_BIN:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

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

echo "1..7"
check "https remote and ref" 0 out \
    '^\{"identifier":"git://github.com/moby/buildkit.git#v0.11.0","attrs":\{"git.authheadersecret":"GIT_AUTH_HEADER","git.authtokensecret":"GIT_AUTH_TOKEN","git.fullurl":"https://github.com/moby/buildkit.git"\}\}$' \
    -- source translate --json git remote=https://github.com/moby/buildkit.git ref=v0.11.0
check "scp-like remote: same identifier, ssh socket" 0 out \
    '^\{"identifier":"git://github.com/moby/buildkit.git#master",.*"git.fullurl":"git@github.com:moby/buildkit.git","git.mountsshsock":"default"\}\}$' \
    -- source translate --json git remote=git@github.com:moby/buildkit.git fragment=master
check "ssh:// with a port, subdir cleaned" 0 out \
    '^identifier: git://host:2222/x/y.git#main:docs$' \
    -- source translate git remote=ssh://git@host:2222/x/y.git ref=main subdir=/a/../docs/
check "credentials stay out of the identifier" 0 out \
    '^identifier: git://host/x.git$' \
    -- source translate git 'remote=https://user:tok@host/x.git?a=b#dev'
check "unknown parameter" 1 err \
    'git: unknown parameter "branch" \(known: remote, ' \
    -- source translate git remote=https://h/x.git branch=main
check "missing remote" 1 err 'missing parameter remote=URL' \
    -- source translate git ref=main
check "bad boolean" 1 err 'keepgitdir=yes: not a boolean' \
    -- source translate git remote=https://h/x.git keepgitdir=yes
[ "$failed" = 0 ]
