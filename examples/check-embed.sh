#!/bin/sh
# Runs the embedding example twice on one temp root: the first run builds
# /app with the site in it, the second takes every vertex from the store.
# check-embed.sh EXAMPLE
set -eu
example=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$example" "$tmp/root" "$tmp/out" > "$tmp/first"
grep -q '^3 vertices: 0 cached, 3 run$' "$tmp/first"
test "$(cat "$tmp/out/app/index.html")" = "<h1>hi</h1>"
test "$(cat "$tmp/out/etc/app.conf")" = "listen = 127.0.0.1:8080"
"$example" "$tmp/root" "$tmp/out2" > "$tmp/second"
grep -q '^3 vertices: 3 cached, 0 run$' "$tmp/second"
test "$(grep -c CACHED "$tmp/second")" = 3
test "$(cat "$tmp/out2/app/index.html")" = "<h1>hi</h1>"
