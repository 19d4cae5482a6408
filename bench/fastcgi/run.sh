#!/usr/bin/env bash
# Load comparison behind a real nginx: this repository's fcgiproxy/fastcgi
# versus the standard library's net/http/fcgi, each with a new FastCGI
# connection per request and with fastcgi_keep_conn + upstream keepalive,
# plus nginx proxy_pass to net/http as a reference. Needs nginx and wrk;
# every server listens on loopback or a Unix socket only.
#
# Environment: NGINX (/usr/sbin/nginx), WRK (wrk), PORT (18089),
# DURATION (5s), CONNS (32), THREADS (1), PROFILE_DIR (unset: when set,
# each Go server writes a CPU profile there).
set -euo pipefail

NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
PORT=${PORT:-18089}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}

root=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$NGINX" ] || { echo "nginx not found at $NGINX (apt-get install nginx)" >&2; exit 1; }
command -v "$WRK" >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
	[ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/fastcgi-bench" ./bench/fastcgi)
for impl in fastcgi netfcgi http; do
	prof=()
	[ -n "${PROFILE_DIR:-}" ] && prof=(-cpuprofile "$PROFILE_DIR/$impl.pprof")
	"$tmp/fastcgi-bench" -impl "$impl" -socket "$tmp/$impl.sock" "${prof[@]}" &
	pids+=($!)
done
for impl in fastcgi netfcgi http; do
	for _ in $(seq 100); do [ -S "$tmp/$impl.sock" ] && break; sleep 0.05; done
	[ -S "$tmp/$impl.sock" ] || { echo "$impl server did not start" >&2; exit 1; }
done

mkdir -p "$tmp/body" "$tmp/fastcgi_temp" "$tmp/proxy_temp"
user=""
[ "$(id -u)" = 0 ] && user="user root;"
cat >"$tmp/nginx.conf" <<CONF
$user
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    fastcgi_temp_path $tmp/fastcgi_temp;
    proxy_temp_path $tmp/proxy_temp;
    upstream fastcgi_keep { server unix:$tmp/fastcgi.sock; keepalive 64; }
    upstream netfcgi_keep { server unix:$tmp/netfcgi.sock; keepalive 64; }
    upstream http_keep    { server unix:$tmp/http.sock;    keepalive 64; }
    server {
        listen 127.0.0.1:$PORT;
        location /fastcgi/      { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$tmp/fastcgi.sock; }
        location /netfcgi/      { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$tmp/netfcgi.sock; }
        location /fastcgi-keep/ { include /etc/nginx/fastcgi_params; fastcgi_keep_conn on; fastcgi_pass fastcgi_keep; }
        location /netfcgi-keep/ { include /etc/nginx/fastcgi_params; fastcgi_keep_conn on; fastcgi_pass netfcgi_keep; }
        location /http-keep/    { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://http_keep; }
    }
}
CONF
"$NGINX" -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/error.log"
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.05
done

# Server CPU per request (user+system time of the Go process over the
# requests wrk completed) stays meaningful when other load shares the
# machine, unlike requests/s.
declare -A pid_of=([fastcgi]=${pids[0]} [netfcgi]=${pids[1]} [http]=${pids[2]})
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '%-40s %11s %9s %9s %14s\n' "variant (wrk -t$THREADS -c$CONNS -d$DURATION)" "requests/s" "p50" "p99" "server CPU/req"
for v in fastcgi netfcgi fastcgi-keep netfcgi-keep http-keep; do
	case $v in
	fastcgi) label="fcgiproxy/fastcgi, conn per request" ;;
	netfcgi) label="net/http/fcgi, conn per request" ;;
	fastcgi-keep) label="fcgiproxy/fastcgi, fastcgi_keep_conn" ;;
	netfcgi-keep) label="net/http/fcgi, fastcgi_keep_conn" ;;
	http-keep) label="reference: proxy_pass to net/http" ;;
	esac
	pid=${pid_of[${v%-keep}]}
	t0=$(cpu_ticks "$pid")
	out=$("$WRK" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$PORT/$v/hello")
	t1=$(cpu_ticks "$pid")
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$n" 'BEGIN { if (n > 0) printf "%.1fus", t / hz / n * 1e6 }')
	errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' || true)
	printf '%-40s %11s %9s %9s %14s %s\n' "$label" "$rps" "$p50" "$p99" "$cpu" "$errs"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
if grep -q '\[error\]' "$tmp/error.log"; then
	echo "nginx errors:" >&2
	grep '\[error\]' "$tmp/error.log" | head >&2
fi
