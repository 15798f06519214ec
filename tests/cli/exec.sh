#!/usr/bin/env bash
# kiln build of exec steps end to end, on a busybox rootfs made from
# Debian's busybox-static: --secret from a file and from a variable,
# --ssh, a cache mount that persists (kiln du lists it, prune --all
# removes it), the step's output in the progress, a failing step's exit
# status and message, and the up-front checks of the new options. TAP.
set -u
kiln=${KILN_BIN:?run through meson test}
gen=${KILN_TEST_EXEC_DEF:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
export KILN_ROOT=$tmp/default-root
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
    for f in out err; do
        [ -s "$tmp/$f" ] &&
            head -n 30 "$tmp/$f" | awk -v f="$f" '{ print "# " f ": " substr($0, 1, 300) }'
    done
    return 0
}

run() {
    status=0
    "$kiln" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
}

expect() {
    local name=$1 want=$2 stream=${3:-} pattern=${4:-}
    if [ "$status" != "$want" ]; then
        not_ok "$name: exit $status, want $want"
    elif [ -n "$stream" ] && ! grep -qE -- "$pattern" "$tmp/$stream"; then
        not_ok "$name: $stream lacks /$pattern/"
    else
        ok "$name"
    fi
}

check() {
    if eval "$2"; then ok "$1"; else not_ok "$1"; fi
}

if ! unshare --mount --pid --fork true 2>/dev/null; then
    echo "1..1"
    echo "ok 1 # SKIP the kernel forbids the namespaces an exec needs"
    exit 0
fi

r=$tmp/rootfs
mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/dev" "$r/tmp" "$r/run"
cp /bin/busybox "$r/bin/"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
done
"$gen" >"$tmp/def.pb"
"$gen" fail >"$tmp/fail.pb"
secret=kiln-cli-s3cr3t-51f0
printf %s "$secret" >"$tmp/secret"
export KILN_T_VAR="$secret-env"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$tmp/agent.sock"
want_sum=$(printf %s "$secret" | md5sum; printf %s "$secret-env" | md5sum)
common=(--root "$root" --local "rootfs=$r" --secret "id=tok,src=$tmp/secret"
    --secret id=tok2,env=KILN_T_VAR --ssh "default=$tmp/agent.sock"
    --progress plain)

echo "1..14"

run build "${common[@]}" -o "$tmp/out1" "$tmp/def.pb"
expect "an exec step builds" 0 err "step-output"
check "it saw the secrets" '[ "$(cat "$tmp/out1/sum" 2>/dev/null)" = "$want_sum" ]'
check "it saw the SSH socket" '[ "$(cat "$tmp/out1/ssh" 2>/dev/null)" = socket ]'
check "its cache mount is new" '[ "$(cat "$tmp/out1/runs" 2>/dev/null)" = 1 ]'

run build "${common[@]}" --no-cache -o "$tmp/out2" "$tmp/def.pb"
expect "again with --no-cache" 0
check "the cache mount kept its content" '[ "$(cat "$tmp/out2/runs" 2>/dev/null)" = 2 ]'

run du --root "$root"
expect "kiln du lists the cache mount" 0 out "cache mount 'cli-cache'"

if grep -rqa -- "$secret" "$root"; then
    not_ok "the secret is in the store"
else
    ok "the secret is nowhere in the store"
fi

run build "${common[@]}" "$tmp/fail.pb"
expect "a failing step fails the build" 1 err \
    'did not complete successfully: exit code: 7'
check "its output is in the message" 'grep -q failing-now "$tmp/err"'

run build --root "$root" --secret id=x,env= "$tmp/def.pb"
expect "--secret env= without a name is a usage error" 2

run build --root "$root" --local "rootfs=$r" --secret id=x,env=KILN_T_UNSET_VAR "$tmp/def.pb"
expect "--secret env=VAR of an unset variable fails up front" 1 err \
    "environment variable KILN_T_UNSET_VAR is not set"

run build --root "$root" --local "rootfs=$r" --ssh "default=$tmp/nothing" "$tmp/def.pb"
expect "--ssh without a socket there fails up front" 1 err \
    "SSH agent 'default'"

run prune --root "$root" --all
run du --root "$root"
if grep -q "cache mount" "$tmp/out"; then
    not_ok "prune --all removed the cache mount"
else
    ok "prune --all removed the cache mount"
fi

[ "$failed" = 0 ]
