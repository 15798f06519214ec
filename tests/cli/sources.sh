#!/usr/bin/env bash
# A definition with a local:// and an http:// source plus a file op
# (examples/site.c) built with kiln build against a real nginx on
# 127.0.0.1: it builds, rebuilds fully cached (nginx answers 304), and
# re-pins incrementally: one changed page re-runs the page source and the
# layout, not the download. TAP output; skips when nginx is missing.
set -u
kiln=${KILN_BIN:?run through meson test}
site=${KILN_TEST_EXAMPLE_SITE:?run through meson test}
nginx=/usr/sbin/nginx
tmp=$(mktemp -d)
n=0
failed=0
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1"
    failed=$((failed + 1))
    sed 's/^/# /' "$tmp/err" 2>/dev/null | tail -n 20
}

echo "1..7"
if [ ! -x "$nginx" ]; then
    for i in 1 2 3 4 5 6 7; do echo "ok $i # SKIP nginx is not installed"; done
    exit 0
fi

# --- nginx on a free port, everything in $tmp.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/www" "$tmp/pages"
echo 'console.log("lib 1");' >"$tmp/www/lib.js"
cp "$(dirname "$0")/../../examples/site/"* "$tmp/pages/"
user=
[ "$(id -u)" = 0 ] && user="user root root;"
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
$user
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 16; }
http {
  log_format kiln '\$request_method \$request_uri \$status \$body_bytes_sent';
  access_log $tmp/access.log kiln;
  client_body_temp_path $tmp/t1; proxy_temp_path $tmp/t2;
  fastcgi_temp_path $tmp/t3; uwsgi_temp_path $tmp/t4; scgi_temp_path $tmp/t5;
  server { listen 127.0.0.1:$port; root $tmp/www; }
}
CONF
"$nginx" -e "$tmp/error.log" -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' &
pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
env -u http_proxy -u HTTP_PROXY "$site" "http://127.0.0.1:$port/lib.js" >"$tmp/def.pb"

build() {
    status=0
    "$kiln" build --root "$tmp/root" --progress=plain \
        --local site="$tmp/pages" -o "$tmp/out" "$tmp/def.pb" \
        >"$tmp/stdout" 2>"$tmp/err" </dev/null || status=$?
    line=$(grep -E '^[0-9]+ vertices: ' "$tmp/err" | tail -n 1)
}

build
if [ "$status" = 0 ] && [ "$line" = "${line#*: 0 cached}" ] ||
    [ "$status" != 0 ]; then
    not_ok "cold build: exit $status, '$line'"
else
    ok "cold build: $line"
fi
if [ "$(cat "$tmp/out/srv/www/vendor/lib.js")" = 'console.log("lib 1");' ] &&
    [ -f "$tmp/out/srv/www/index.html" ] && [ -f "$tmp/out/srv/www/VERSION" ] &&
    [ ! -e "$tmp/out/srv/www/notes.tmp" ]; then
    ok "the site: pages (no notes), VERSION, vendor/lib.js"
else
    not_ok "the site's files are wrong"
fi

build
case "$line" in
"3 vertices: 3 cached, 0 run"*) ok "rebuild fully cached: $line" ;;
*) not_ok "rebuild: '$line'" ;;
esac
sleep 0.2 # nginx logs after it answers
if grep -q '^GET /lib.js 304 0$' "$tmp/access.log"; then
    ok "nginx answered the rebuild's revalidation with 304, no body"
else
    not_ok "no 304 in nginx's log: $(tr '\n' '|' <"$tmp/access.log")"
fi

# One changed page: the page source and the layout re-run, the download
# is revalidated and stays cached.
sleep 0.1
echo '<h1>changed</h1>' >"$tmp/pages/index.html"
build
case "$line" in
"3 vertices: 1 cached, 2 run"*) ok "one changed page: $line" ;;
*) not_ok "after a change: '$line'" ;;
esac
if grep -q changed "$tmp/out/srv/www/index.html"; then
    ok "the changed page is in the result"
else
    not_ok "the result lacks the changed page"
fi
# A changed notes file is outside the patterns: nothing runs.
echo 'more notes' >>"$tmp/pages/notes.tmp"
build
case "$line" in
"3 vertices: 3 cached, 0 run"*) ok "a change outside the patterns: $line" ;;
*) not_ok "after a change outside the patterns: '$line'" ;;
esac
[ "$failed" = 0 ]
