#!/usr/bin/env bash
# Each language's hello through nginx → cocaine beside that language's
# usual deployment behind the same nginx, in the same run, with the method
# of bench/run.sh (wrk -t1 -c32, a warm-up before every measurement,
# rounds in which every configuration takes its turn, medians reported).
#
#   nc  nginx fastcgi_pass (keepalive) → cocaine → Node, bench/apps/node-hello (args.http)
#   nn  nginx proxy_pass (keepalive) → Node's own http server, the same listener
#   pc  nginx fastcgi_pass (keepalive) → cocaine → Perl, bench/apps/psgi-hello
#   ps  nginx proxy_pass → Starman, 2 workers, the same PSGI app
#   cc  nginx fastcgi_pass (keepalive) → cocaine → C, bench/apps/c-hello
#   cf  nginx fastcgi_pass → a libfcgi responder, 2 processes
#
# Every app answers "Hello, World!\n". The cocaine site is configs/nginx.conf
# with its upstream on a Unix socket. Needs nginx, wrk, starman, libfcgi-dev,
# node and the perl modules (`scripts/deps.sh bench`, `make npm-deps`).
#
# Environment: PORT (18200: uses PORT+1..PORT+4 and PORT+90..91),
# DURATION (10s), WARMUP (2s), ROUNDS (3), CONNS (32), CONFIGS (all).
set -euo pipefail

NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
PORT=${PORT:-18200}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
CONFIGS=${CONFIGS:-nc nn pc ps cc cf}

root=$(cd "$(dirname "$0")/.." && pwd)
for t in "$NGINX" "$WRK" starman node cc curl go; do
	command -v "$t" >/dev/null || { echo "$t not found (scripts/deps.sh bench installs what the bench needs)" >&2; exit 1; }
done
[ -f /usr/include/fcgiapp.h ] || { echo "libfcgi-dev is not installed" >&2; exit 1; }

port_cocaine=$((PORT + 1)) port_nn=$((PORT + 2)) port_ps=$((PORT + 3)) port_cf=$((PORT + 4))
engine_port=$((PORT + 90))
for p in $port_cocaine $port_nn $port_ps $port_cf $engine_port $((engine_port + 1)); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "port $p is taken: set PORT to another base" >&2
		exit 1
	fi
done

tmp=$(mktemp -d /tmp/cocaine-lbench.XXXXXX)
chmod 755 "$tmp"
pids=()
groups=()
cleanup() {
	[ -f "$tmp/nginx/nginx.pid" ] && kill "$(cat "$tmp/nginx/nginx.pid")" 2>/dev/null || true
	for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
	for _ in $(seq 100); do
		alive=0
		for g in "${groups[@]}"; do kill -0 "$g" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building bin/cocaine and the C FastCGI hello" >&2
(cd "$root" && go build -o bin/cocaine ./cmd/cocaine)
cc -O2 -o "$tmp/fcgi-hello" "$root/bench/apps/fcgi-hello/hello.c" -lfcgi

mkdir -p "$tmp/apps"
for a in node-hello psgi-hello c-hello; do cp -r "$root/bench/apps/$a" "$tmp/apps/$a"; done

# Each backend runs in a process group of its own, so its CPU time can be
# counted and it can be stopped whole.
setsid "$root/bin/cocaine" dev --data "$tmp/data" --apps "$tmp/apps" \
	--listen "tcp://127.0.0.1:$engine_port" --announce "tcp://127.0.0.1:$((engine_port + 1))" \
	--announce-interval 200ms --http "" --fastcgi "unix:$tmp/cocaine.sock" --admin off >"$tmp/cocaine.log" 2>&1 &
groups+=($!)
cocaine_pid=$!

setsid node -e '
	const fs = require("fs"), sock = process.argv[1];
	require("http").createServer(require(process.argv[2])).listen(sock, () => fs.chmodSync(sock, 0o666));
' "$tmp/node.sock" "$root/bench/apps/node-hello/hello.js" >"$tmp/node.log" 2>&1 &
groups+=($!)
node_pid=$!

(umask 000 && exec setsid starman --workers 2 --listen "$tmp/starman.sock" "$root/bench/apps/psgi-hello/app.psgi") >"$tmp/starman.log" 2>&1 &
groups+=($!)
starman_pid=$!

setsid "$tmp/fcgi-hello" "$tmp/fcgi.sock" >"$tmp/fcgi.log" 2>&1 &
groups+=($!)
fcgi_pid=$!

mkdir -p "$tmp/nginx/logs" "$tmp/nginx/tmp"
site=$(sed -e "s|server 127.0.0.1:9000;|server unix:$tmp/cocaine.sock;|" \
	-e "s|listen 80;|listen 127.0.0.1:$port_cocaine;|" "$root/configs/nginx.conf")
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 2;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    keepalive_requests 100000;
$site
    upstream node_keep { server unix:$tmp/node.sock; keepalive 32; }
    server { listen 127.0.0.1:$port_nn;
        location / { proxy_pass http://node_keep; proxy_http_version 1.1; proxy_set_header Connection ""; } }
    # Starman and libfcgi are pre-forked, one connection per process at a
    # time: persistent upstream connections would pin 32 of them to two
    # processes, so these two get a connection per request, as deployed.
    server { listen 127.0.0.1:$port_ps;
        location / { proxy_pass http://unix:$tmp/starman.sock; } }
    server { listen 127.0.0.1:$port_cf;
        location / { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$tmp/fcgi.sock; } }
}
CONF
"$NGINX" -t -q -p "$tmp/nginx/" -e logs/error.log -c nginx.conf
"$NGINX" -p "$tmp/nginx/" -e logs/error.log -c nginx.conf

declare -A url backend label
url[nc]="http://127.0.0.1:$port_cocaine/node-hello/http/"
url[nn]="http://127.0.0.1:$port_nn/"
url[pc]="http://127.0.0.1:$port_cocaine/psgi-hello/http/"
url[ps]="http://127.0.0.1:$port_ps/"
url[cc]="http://127.0.0.1:$port_cocaine/c-hello/http/"
url[cf]="http://127.0.0.1:$port_cf/"
label[nc]="nginx → cocaine → Node (args.http)"
label[nn]="nginx proxy_pass → Node http server"
label[pc]="nginx → cocaine → Perl (PSGI)"
label[ps]="nginx proxy_pass → Starman, 2 workers"
label[cc]="nginx → cocaine → C (libcocaine-slave)"
label[cf]="nginx fastcgi → libfcgi, 2 processes"
backend[nc]=$cocaine_pid backend[pc]=$cocaine_pid backend[cc]=$cocaine_pid
backend[nn]=$node_pid backend[ps]=$starman_pid backend[cf]=$fcgi_pid

for k in $CONFIGS; do
	[ -n "${url[$k]:-}" ] || { echo "unknown config $k (have: nc nn pc ps cc cf)" >&2; exit 1; }
	ok=0
	for _ in $(seq 1800); do
		if body=$(curl -sf --max-time 5 "${url[$k]}") && [ "$body" = "Hello, World!" ]; then ok=1; break; fi
		sleep 0.1
	done
	if [ $ok = 0 ]; then
		echo "$k: ${url[$k]} did not answer Hello, World! within 3 minutes" >&2
		tail -n 30 "$tmp"/*.log "$tmp/nginx/logs/error.log" >&2
		exit 1
	fi
done

# CPU time of a process and all its descendants, in clock ticks.
tree_ticks() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | sed 's/^\([0-9]*\) (.*) /\1 /' | awk -v root="$1" '
		{ ppid[$1] = $3; t[$1] = $13 + $14 }
		END { for (p in t) { q = p; while (q != root && q > 1 && (q in ppid)) q = ppid[q]; if (q == root) s += t[p] }; print s + 0 }'
}
hz=$(getconf CLK_TCK)
to_ms() {
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

declare -A rps p50 p99 cpu errs
cfgs=($CONFIGS)
echo "# $(date -u +%FT%TZ) $(nproc) cores, wrk -t1 -c$CONNS -d$DURATION --latency, warm-up $WARMUP, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
	echo "round $r: load average $(cut -d' ' -f1-3 /proc/loadavg)"
	n=${#cfgs[@]}
	for i in $(seq 0 $((n - 1))); do
		k=${cfgs[$(((i + r - 1) % n))]}
		"$WRK" -t1 -c"$CONNS" -d"$WARMUP" "${url[$k]}" >/dev/null
		t0=$(tree_ticks "${backend[$k]}")
		out=$("$WRK" -t1 -c"$CONNS" -d"$DURATION" --latency "${url[$k]}")
		t1=$(tree_ticks "${backend[$k]}")
		req=$(awk '/^Requests\/sec/ { printf "%d", $2 }' <<<"$out")
		l50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
		l99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
		total=$(awk '/requests in/ { print $1 }' <<<"$out")
		us=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$total" 'BEGIN { if (n > 0) printf "%.0f", t / hz / n * 1e6 }')
		e=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd';' || true)
		rps[$k]+="$req " p50[$k]+="$l50 " p99[$k]+="$l99 " cpu[$k]+="$us "
		[ -n "$e" ] && errs[$k]+="r$r:$e "
		printf '  %-3s %-40s %8s req/s  p50 %7s ms  p99 %7s ms  %5s µs CPU/req %s\n' "$k" "${label[$k]}" "$req" "$l50" "$l99" "$us" "$e"
	done
done
echo "after: load average $(cut -d' ' -f1-3 /proc/loadavg)"

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A med
echo
printf '| config | path | req/s (runs) | median req/s | p50 ms | p99 ms | backend CPU µs/req |\n'
printf '| --- | --- | --- | ---: | ---: | ---: | ---: |\n'
for k in $CONFIGS; do
	med[$k]=$(median "${rps[$k]}")
	runs=$(tr -s ' ' '\n' <<<"${rps[$k]}" | grep -v '^$' | paste -sd'/' | sed 's|/| / |g')
	printf '| %s | %s | %s | **%s** | %s | %s | %s |\n' "$k" "${label[$k]}" "$runs" "${med[$k]}" \
		"$(median "${p50[$k]}")" "$(median "${p99[$k]}")" "$(median "${cpu[$k]}")"
done
for k in $CONFIGS; do
	[ -n "${errs[$k]:-}" ] && echo "errors in $k: ${errs[$k]}"
done
echo
ratio() {
	[ -n "${med[$2]:-}" ] && [ -n "${med[$3]:-}" ] || return 0
	awk -v a="${med[$2]}" -v b="${med[$3]}" -v g="$4" -v n="$1" 'BEGIN {
		r = a / b; printf "%-42s %5.2f   goal >= %s: %s\n", n, r, g, (r >= g + 0 ? "met" : "NOT met") }'
}
ratio "(nc)/(nn) cocaine Node / Node http" nc nn 0.6
ratio "(pc)/(ps) cocaine Perl / Starman" pc ps 0.6
ratio "(cc)/(cf) cocaine C / libfcgi" cc cf 0.45
if grep -q '\[error\]' "$tmp/nginx/logs/error.log"; then
	echo "nginx errors:" >&2
	grep '\[error\]' "$tmp/nginx/logs/error.log" | head >&2
fi
