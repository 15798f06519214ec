#!/bin/sh
# Runs an example program and checks that `kiln debug dump-llb` loads what
# it writes: check-example.sh EXAMPLE KILN
set -eu
example=$1
kiln=$2
out=$(mktemp)
trap 'rm -f "$out" "$out.json"' EXIT
"$example" "$out"
"$kiln" debug dump-llb "$out" > "$out.json"
# One JSON object per op, the terminal op included.
test "$(wc -l < "$out.json")" -ge 2
