#!/bin/sh
# The README's main example, twice on one temp root: the first build runs
# the two exec steps on the busybox base (kiln-mkbase's layout) and lays
# out /dist; the second takes every vertex from the store, and the cache
# mount saw one run of the step.
# check-app.sh EXAMPLE KILN MKBASE SRCDIR
set -eu
example=$1 kiln=$2 mkbase=$3 src=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
digest=$("$mkbase" "$tmp/base")
"$example" "$digest" "$tmp/def.pb"
build() {
    "$kiln" build --root "$tmp/root" --oci-layout base="$tmp/base" \
        --local src="$src" --progress plain -o "$1" "$tmp/def.pb" 2>"$2"
}
build "$tmp/out" "$tmp/first"
grep -q '^5 vertices: 0 cached, 5 run' "$tmp/first"
grep -q 'checked [0-9]* files (run 1 of this step)' "$tmp/first"
test "$(cat "$tmp/out/dist/VERSION")" = "app 1.0"
(cd "$src" && sha256sum ./* | sed 's| \./| |') >"$tmp/want"
sed 's|  |  ./|' "$tmp/out/dist/SHA256SUMS" | sed 's| \./| |' >"$tmp/got"
cmp "$tmp/want" "$tmp/got"
mkdir "$tmp/x" && tar -xzf "$tmp/out/dist/app.tar.gz" -C "$tmp/x"
cmp "$tmp/x/src/greet.c" "$src/greet.c"
build "$tmp/out2" "$tmp/second"
grep -q '^5 vertices: 5 cached, 0 run' "$tmp/second"
cmp "$tmp/out/dist/SHA256SUMS" "$tmp/out2/dist/SHA256SUMS"
