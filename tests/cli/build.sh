#!/usr/bin/env bash
# kiln build, du, prune and logs end to end, on a store root in a temp dir:
# the 400-op file chain BuildKit's Go client made builds into a directory
# and a tar (file and standard output), a rebuild is fully cached,
# --no-cache runs everything again, plain and json progress have their
# documented shapes, du lists the records, prune --all empties the store,
# and usage errors exit 2, failures 1. TAP output.
set -u
kiln=${KILN_BIN:?run through meson test}
data=${KILN_TEST_DATA:?run through meson test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
def=$data/perf/p_file_chain400.pb
# Every command gets --root; a store appearing here means one ignored it.
export KILN_ROOT=$tmp/default-root
export XDG_DATA_HOME=$tmp/xdg
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

skip() {
    n=$((n + 1))
    echo "ok $n # SKIP $1"
}

# run ARGS...: runs kiln with standard input from /dev/null; sets $status.
run() {
    status=0
    "$kiln" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || status=$?
}

# expect NAME WANT_STATUS [STREAM PATTERN]: checks the last run.
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

# The summary line's numbers: sets $total $cached $ran, or returns 1.
summary() {
    local line
    line=$(grep -E '^[0-9]+ vertices: [0-9]+ cached, [0-9]+ run, [0-9.]+s$' \
        "$tmp/err" | tail -n 1)
    [ -n "$line" ] || return 1
    total=$(echo "$line" | sed -E 's/^([0-9]+) vertices.*/\1/')
    cached=$(echo "$line" | sed -E 's/.* ([0-9]+) cached.*/\1/')
    ran=$(echo "$line" | sed -E 's/.* ([0-9]+) run.*/\1/')
}

# The chain writes /f0 .. /f49 and then overwrites them: /fK holds 350+K.
check_tree() {
    local dir=$1 k
    [ "$(find "$dir" -type f | wc -l)" = 50 ] || return 1
    for k in $(seq 0 49); do
        [ "$(cat "$dir/f$k")" = "$((350 + k))" ] || return 1
    done
    [ "$(stat -c %a "$dir/f0")" = 644 ] || return 1
}

echo "1..55"

# --- First build: everything runs, into a directory, plain progress.
run build --root "$root" --progress=plain -o "type=local,dest=$tmp/result" "$def"
expect "cold build into a directory" 0
if check_tree "$tmp/result"; then
    ok "directory holds the chain's 50 files with their last contents"
else
    not_ok "directory contents are wrong"
fi
if ! summary; then
    not_ok "cold build: no summary line"
elif [ "$cached" != 0 ] || [ "$ran" -lt 400 ] || [ "$total" -lt 400 ]; then
    not_ok "cold build: summary says $total total, $cached cached, $ran run"
else
    ok "cold build: summary line, nothing cached, $ran run"
fi
done_lines=$(grep -cE '^#[0-9]+ DONE [0-9]+\.[0-9]s$' "$tmp/err")
if [ "$done_lines" = "${ran:-x}" ]; then
    ok "plain: one '#N DONE T.Ts' line per vertex run"
else
    not_ok "plain: $done_lines DONE lines for ${ran:-?} vertices run"
fi
if grep -qE '^#1 .+' "$tmp/err" &&
    ! grep -vqE '^(#[0-9]+ .*|[0-9]+ vertices: .*|)$' "$tmp/err"; then
    ok "plain: every line is '#N ...', blank, or the summary"
else
    not_ok "plain: lines of another shape"
fi

# --- Rebuild: fully cached, as a tar file.
run build --root "$root" --progress=plain -o "type=tar,dest=$tmp/out.tar" "$def"
expect "cached rebuild into a tar file" 0
if summary && [ "$cached" = "$total" ] && [ "$ran" = 0 ]; then
    ok "rebuild: summary says all $total cached, 0 run"
else
    not_ok "rebuild: not fully cached (${total:-?}/${cached:-?}/${ran:-?})"
fi
if [ "$(grep -cE '^#[0-9]+ CACHED$' "$tmp/err")" = "${cached:-x}" ] &&
    ! grep -qE '^#[0-9]+ DONE' "$tmp/err"; then
    ok "plain: one '#N CACHED' line per cached vertex, no DONE"
else
    not_ok "plain: CACHED lines do not match the summary"
fi
mkdir -p "$tmp/untar"
if tar -xf "$tmp/out.tar" -C "$tmp/untar" 2>"$tmp/err" &&
    check_tree "$tmp/untar"; then
    ok "tar file holds the chain's 50 files"
else
    not_ok "tar file contents are wrong"
fi

# --- Tar on standard output, with buildctl's dest=- and the '-o -' form.
status=0
"$kiln" build --root "$root" --output type=tar,dest=- "$def" \
    >"$tmp/stdout.tar" 2>"$tmp/err" </dev/null || status=$?
expect "tar to standard output (dest=-)" 0
mkdir -p "$tmp/untar2"
if tar -xf "$tmp/stdout.tar" -C "$tmp/untar2" 2>/dev/null &&
    check_tree "$tmp/untar2"; then
    ok "tar on standard output holds the 50 files"
else
    not_ok "tar on standard output is wrong"
fi
if ! summary || [ "$ran" != 0 ]; then
    not_ok "tar to standard output: progress not on stderr, or not cached"
elif grep -q 'vertices:' "$tmp/stdout.tar"; then
    not_ok "tar to standard output: progress mixed into the tar"
else
    ok "tar to standard output: progress on stderr only"
fi
status=0
"$kiln" build --root "$root" -o - "$def" >"$tmp/stdout2.tar" 2>"$tmp/err" \
    </dev/null || status=$?
expect "'-o -' is a tar on standard output" 0
if tar -tf "$tmp/stdout2.tar" 2>/dev/null | grep -qE '(^|/)f49$'; then
    ok "'-o -' wrote a tar listing f49"
else
    not_ok "'-o -' did not write a tar"
fi

# A tar stream is not written to a terminal.
if command -v script >/dev/null; then
    status=0
    script -qec "'$kiln' build --root '$root' -o - '$def'" /dev/null \
        >"$tmp/err" 2>&1 </dev/null || status=$?
    expect "tar to a terminal is refused" 2 err 'refusing to write a tar'
else
    skip "script(1) not installed"
fi

# --- Definition on standard input.
status=0
"$kiln" build --root "$root" --progress=plain - <"$def" >"$tmp/out" \
    2>"$tmp/err" || status=$?
expect "definition from standard input" 0 err '^[0-9]+ vertices: [0-9]+ cached, 0 run'

# --- json progress.
run build --root "$root" --progress=json --jobs 2 "$def"
expect "json progress" 0
if ! grep -vqE '^\{"type":"[a-z]+","time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z".*\}$' "$tmp/err"; then
    ok "json: every line is an object starting with type and time"
else
    not_ok "json: a line of another shape"
fi
if command -v python3 >/dev/null; then
    if python3 -c 'import json, sys
for line in sys.stdin:
    json.loads(line)' <"$tmp/err" 2>/dev/null; then
        ok "json: every line parses"
    else
        not_ok "json: a line does not parse"
    fi
else
    skip "python3 not installed"
fi
ncached=$(grep -c '^{"type":"cached",.*"vertex":[0-9]*,"digest":"sha256:[0-9a-f]\{64\}","name":' "$tmp/err")
if [ "$ncached" -ge 400 ] && ! grep -q '"type":"started"' "$tmp/err"; then
    ok "json: $ncached cached events with vertex, digest, name; none started"
else
    not_ok "json: $ncached cached events (or some started)"
fi
last=$(tail -n 1 "$tmp/err")
if echo "$last" | grep -qE '^\{"type":"summary",.*"status":"ok","vertices":([0-9]+),"cached":\1,"run":0,"duration_ns":[0-9]+\}$'; then
    ok "json: ends with a summary object, all cached"
else
    not_ok "json: last line is not an all-cached summary: $last"
fi

# --- --debug says why: each lookup's key and result.
run build --root "$root" --progress=plain --debug "$def"
if [ "$status" = 0 ] &&
    grep -qE '^#400 DEBUG: cache key sha256:[0-9a-f]{64}: hit$' "$tmp/err"; then
    ok "--debug: the result's cache key and 'hit'"
else
    not_ok "--debug: no 'cache key ...: hit' line for #400"
fi
run build --root "$root" --progress=json --log-level=debug "$def"
if [ "$status" = 0 ] &&
    grep -qE '^\{"type":"message",.*"level":"debug","message":"cache key sha256:' "$tmp/err"; then
    ok "json: debug messages are 'message' objects with a level"
else
    not_ok "json: no debug message object"
fi
run build --root "$root" --log-level=loud "$def"
expect "--log-level: an unknown level is a usage error" 2 err "unknown log level 'loud'"
run build --root "$root" --local "ctx=$tmp/no-such-dir" "$def"
expect "--local: a missing directory fails before building" 1 err \
    "local directory 'ctx' \($tmp/no-such-dir\): No such file or directory"
run build --root "$root" --secret "id=tok,src=$tmp/no-such-file" "$def"
expect "--secret: a missing file fails before building" 1 err \
    "secret 'tok' \($tmp/no-such-file\): No such file or directory"

# --- --no-cache runs everything again.
run build --root "$root" --no-cache --progress=plain -o "type=local,dest=$tmp/out2" "$def"
expect "--no-cache build" 0
if summary && [ "$cached" = 0 ] && [ "$ran" -ge 400 ] &&
    check_tree "$tmp/out2"; then
    ok "--no-cache: nothing cached, $ran run, same files"
else
    not_ok "--no-cache: ${cached:-?} cached, ${ran:-?} run"
fi

# --- Canceling with SIGINT leaves a store that builds again.
"$kiln" build --root "$root" --no-cache --progress=plain "$def" \
    >"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
sleep 0.2
kill -INT "$pid" 2>/dev/null
status=0
wait "$pid" || status=$?
if [ "$status" = 1 ] && grep -q '^kiln: error: .*cancel' "$tmp/err"; then
    ok "SIGINT cancels the build: exit 1, 'canceled'"
elif [ "$status" = 0 ]; then
    ok "SIGINT: the build had finished already # SKIP too fast to cancel"
else
    not_ok "SIGINT: exit $status"
fi
run build --root "$root" --progress=plain -o "type=local,dest=$tmp/out3" "$def"
if [ "$status" = 0 ] && check_tree "$tmp/out3"; then
    ok "after a cancel the store builds again"
else
    not_ok "after a cancel: exit $status"
fi

# --- du.
run du --root "$root"
expect "du" 0 out '^Total:[[:space:]]+[0-9.]+[kMGT]?B$'
rows=$(grep -cE '^[0-9a-f]{12}[* ] ' "$tmp/out")
records=$(sed -nE 's/^Records:[[:space:]]+([0-9]+)$/\1/p' "$tmp/out")
if [ "$rows" -ge 400 ] && [ "$rows" = "$records" ] &&
    head -n 1 "$tmp/out" | grep -qE '^ID +SIZE +LAST USED +DESCRIPTION$'; then
    ok "du: a header, $rows records, a count that matches"
else
    not_ok "du: $rows rows, Records: ${records:-?}"
fi
run du --root "$root" --verbose
expect "du --verbose" 0 out '^Description:'
if [ "$(grep -c '^ID:' "$tmp/out")" = "$records" ] &&
    [ "$(grep -c '^Last used:' "$tmp/out")" = "$records" ]; then
    ok "du --verbose: every field for every record"
else
    not_ok "du --verbose: not one block per record"
fi

# --- logs.
run logs --root "$root" ffffffffffffffff
expect "logs of an unknown digest prefix" 1 err '^kiln: error: '
run logs --root "$root" "no such vertex"
expect "logs of an unknown name" 1 err '^kiln: error: '

# --- prune.
run prune --root "$root" --keep-storage 100GB
expect "prune --keep-storage 100GB keeps everything" 0 out '^Removed:[[:space:]]+0 records$'
run prune --root "$root" --all
expect "prune --all" 0 out '^Removed:[[:space:]]+[1-9][0-9]* records?$'
if grep -qE '^Freed:[[:space:]]+[0-9.]+[kMGT]?B$' "$tmp/out" &&
    ! grep -qE '^Freed:[[:space:]]+0B$' "$tmp/out"; then
    ok "prune --all: freed some bytes"
else
    not_ok "prune --all: freed nothing"
fi
run du --root "$root"
if [ "$status" = 0 ] && grep -qE '^Records:[[:space:]]+0$' "$tmp/out" &&
    grep -qE '^Total:[[:space:]]+0B$' "$tmp/out" &&
    ! grep -qE '^[0-9a-f]{12}[* ] ' "$tmp/out"; then
    ok "du after prune --all: no records, 0B"
else
    not_ok "du after prune --all: the store is not empty"
fi

# --- Failures: exit 1.
op1='\x1a\x10\x0a\x0efrobnicate://x' # a source no plugin claims
d=$(printf "$op1" | sha256sum | cut -d' ' -f1)
printf "\x0a\x12$op1\x0a\x4b\x0a\x49\x0a\x47sha256:$d" >"$tmp/unsupported.pb"
run build --root "$root" --progress=plain "$tmp/unsupported.pb"
expect "an unsupported op fails" 1 err '^kiln: error: .+'
run build --root "$root" "$tmp/nonexistent.pb"
expect "a missing definition fails" 1 err '^kiln: error: .*nonexistent\.pb'

# --- Usage errors: exit 2.
run build --root "$root" --bogus "$def"
expect "build: unknown option" 2 err "unknown option '--bogus'"
run build --root "$root" -o "type=oci,dest=$tmp/x" "$def"
expect "build: unknown output type" 2 err "unknown type 'oci'"
run build --root "$root" -o "type=local,dest=$tmp/x,color=red" "$def"
expect "build: unknown output key" 2 err "unknown key 'color'"
run build --root "$root" -o "type=local" "$def"
expect "build: local without dest" 2 err 'type=local needs dest'
run build --root "$root" --jobs 0 "$def"
expect "build: --jobs 0" 2 err '--jobs'
run build --root "$root" --progress=fancy "$def"
expect "build: unknown progress mode" 2 err "unknown progress mode 'fancy'"
run build --root "$root" "$def" extra
expect "build: too many arguments" 2 err 'too many arguments'
run prune --root "$root"
expect "prune without a criterion" 2 err '--all'
run prune --root "$root" --keep-storage 12XB
expect "prune: bad size" 2 err "'12XB' is not a size"
run prune --root "$root" --keep-duration 5
expect "prune: duration without a unit" 2 err "'5' is not a duration"
run logs --root "$root"
expect "logs without a vertex" 2 err 'which vertex'
run du --root "$root" --bogus
expect "du: unknown option" 2 err "unknown option '--bogus'"

# Every --root was honoured: nothing went to the default root.
if [ ! -e "$KILN_ROOT" ] && [ ! -e "$XDG_DATA_HOME/kiln" ]; then
    ok "no command touched the default root"
else
    not_ok "something was written to the default root"
fi

[ "$failed" = 0 ]
