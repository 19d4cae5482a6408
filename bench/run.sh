#!/usr/bin/env bash
# Throughput and latency of cocaine behind nginx against the baselines it
# replaces, with the method of /work/shared/reference/machine.md §4: one
# nginx (2 workers, no access log, upstreams on Unix sockets), wrk with one
# thread and 32 connections, a warm-up before every measurement, rounds in
# which every configuration takes its turn, medians reported.
#
#   a   nginx fastcgi_pass (keepalive) → cocaine → Go slave, examples/echo as shipped
#   a32 the same app with "concurrency": 32 (one slave takes all 32 requests at once)
#   b   nginx proxy_pass (keepalive) → bare net/http, the same answer (bench/hello)
#   c   nginx fastcgi_pass → uWSGI --fastcgi-socket, 2 processes, examples/wsgi-hello/app.py
#   d   nginx fastcgi_pass (keepalive) → cocaine → Python slaves, examples/wsgi-hello
#   e   nginx uwsgi_pass → uWSGI, 2 processes, examples/wsgi-hello/app.py
#   fc  nginx fastcgi_pass (keepalive) → cocaine → examples/flask, its index page
#   fu  nginx uwsgi_pass → uWSGI, 2 processes, examples/flask/app.py, the same page
#   s   nginx fastcgi_pass (keepalive) → `cocaine gateway` → ZeroMQ → `cocaine engine` → Go slave,
#       examples/echo as shipped: the split topology, two processes (CPU counts both)
#   a.old, a32.old, s.old  a, a32 and s with the cocaine of another checkout (BEFORE=dir),
#       for a before/after measured side by side in one run
#
# The cocaine site is configs/nginx.conf itself, its upstream pointed at a
# Unix socket. Installs nothing: `make bench` runs scripts/deps.sh bench
# first. Everything listens on loopback or a Unix socket, and everything
# started here is stopped on exit.
#
# Environment: PORT (18100: uses PORT+1..PORT+10 and PORT+90..97),
# DURATION (10s), WARMUP (2s), ROUNDS (3), CONNS (32), THREADS (1),
# CONFIGS (all, e.g. "a b"), BEFORE (a checkout to build the .old configs
# from), DEV_FLAGS (more flags for cocaine dev, e.g.
# "--cpuprofile /tmp/dev.prof"), RAW (unset: when set, every run is appended
# there as TSV), WRK_OUT (unset: a folder for wrk's whole output of every
# run), NGINX, WRK, UWSGI.
set -euo pipefail

NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
UWSGI=${UWSGI:-uwsgi}
PORT=${PORT:-18100}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
CONFIGS=${CONFIGS:-a a32 b c d e fc fu}

root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$NGINX" ] || { echo "nginx not found at $NGINX (scripts/deps.sh bench installs it)" >&2; exit 1; }
for t in "$WRK" "$UWSGI" curl go; do
	command -v "$t" >/dev/null || { echo "$t not found (scripts/deps.sh bench installs wrk and uwsgi)" >&2; exit 1; }
done
[ -f /usr/lib/uwsgi/plugins/python3_plugin.so ] || { echo "uwsgi-plugin-python3 is not installed" >&2; exit 1; }

port_cocaine=$((PORT + 1)) port_b=$((PORT + 2)) port_c=$((PORT + 3)) port_e=$((PORT + 5)) port_fu=$((PORT + 7)) port_s=$((PORT + 8))
port_old=$((PORT + 9)) port_s_old=$((PORT + 10))
engine_port=$((PORT + 90)) split_port=$((PORT + 92)) old_port=$((PORT + 94)) split_old_port=$((PORT + 96))
for p in $port_cocaine $port_b $port_c $port_e $port_fu $port_s $port_old $port_s_old $(seq $engine_port $((engine_port + 7))); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "port $p is taken: set PORT to another base" >&2
		exit 1
	fi
done

# Short: Unix socket paths are limited to 108 bytes.
tmp=$(mktemp -d /tmp/cocaine-bench.XXXXXX)
# nginx workers run as nobody and must reach the sockets in here.
chmod 755 "$tmp"
pids=()   # plain processes
groups=() # process groups: cocaine dev and its slaves
cleanup() {
	[ -f "$tmp/nginx/nginx.pid" ] && kill "$(cat "$tmp/nginx/nginx.pid")" 2>/dev/null || true
	for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	# cocaine dev stops its slaves itself; give it the time to, then make sure.
	for _ in $(seq 100); do
		alive=0
		for g in "${groups[@]}" "${pids[@]}"; do kill -0 "$g" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building bin/cocaine and bench/hello" >&2
(cd "$root" && go build -o bin/cocaine ./cmd/cocaine && go build -o "$tmp/hello" ./bench/hello)

# The apps: the examples as they are, plus echo with a concurrent slave.
mkdir -p "$tmp/apps"
for a in echo wsgi-hello flask; do cp -r "$root/examples/$a" "$tmp/apps/$a"; done
cp -r "$root/examples/echo" "$tmp/apps/echo32"
cat >"$tmp/apps/echo32/manifest.json" <<'JSON'
{ "type": "go",
  "engine": { "pool-limit": 1, "concurrency": 32, "queue-limit": 1000 },
  "drivers": { "http": { "type": "native-server", "emit": "http", "payload": "http" } } }
JSON

# admin_off says "no admin listener" to a binary that has one (a BEFORE
# checkout may predate it): never bind the default admin port.
admin_off() { "$1" dev -h 2>&1 | grep -q -- '-admin'; }
start_dev() { # binary, folder, FastCGI socket, engine port; sets started
	local admin=()
	admin_off "$1" && admin=(--admin off)
	setsid "$1" dev --data "$2/data" --apps "$tmp/apps" \
		--listen "tcp://127.0.0.1:$4" --announce "tcp://127.0.0.1:$(($4 + 1))" \
		--announce-interval 200ms --http "" --fastcgi "unix:$3" "${admin[@]}" ${DEV_FLAGS:-} >"$2/cocaine.log" 2>&1 &
	groups+=($!)
	started=$!
}
# The split topology: the same apps in a separate engine (reading the
# storage cocaine dev filled) and a gateway that knows only that engine,
# the two measured together as one backend.
start_split() { # binary, folder, FastCGI socket, engine port; sets started
	mkdir -p "$2/data"
	cat >"$2/engine.toml" <<TOML
listen = "tcp://127.0.0.1:$4"
announce = "tcp://127.0.0.1:$(($4 + 1))"
announce-interval = "200ms"
storage = "file://$tmp/data/storage"
data-dir = "$2/data"
[sandbox.go]
framework = "$root"
TOML
	cat >"$2/gateway.toml" <<TOML
[dealer]
discovery = ["static:tcp://127.0.0.1:$(($4 + 1))"]
[front]
http = ""
fastcgi = "unix:$3"
[api]
storage = "off"
TOML
	if admin_off "$1"; then
		printf '[admin]\nlisten = "off"\n' >>"$2/gateway.toml"
		printf 'metrics = "off"\n' >"$2/metrics.toml"
		# Top-level keys go before the first table.
		cat "$2/metrics.toml" "$2/engine.toml" >"$2/engine.new" && mv "$2/engine.new" "$2/engine.toml"
	fi
	# One process group for both, so that CPU is counted over the pair.
	setsid bash -c "\"$1\" engine -c \"$2/engine.toml\" >\"$2/engine.log\" 2>&1 &
		exec \"$1\" gateway -c \"$2/gateway.toml\" >\"$2/gateway.log\" 2>&1" &
	groups+=($!)
	started=$!
}
wants() { case " $CONFIGS " in *" $1 "*) return 0 ;; esac; return 1; }

start_dev "$root/bin/cocaine" "$tmp" "$tmp/cocaine.sock" "$engine_port"
cocaine_pid=$started
# The other engines read the apps cocaine dev stores: not before it has.
for _ in $(seq 1800); do
	grep -q "^cocaine dev: apps" "$tmp/cocaine.log" && break
	kill -0 "$cocaine_pid" 2>/dev/null || { cat "$tmp/cocaine.log" >&2; exit 1; }
	sleep 0.1
done
if wants s; then
	start_split "$root/bin/cocaine" "$tmp/split" "$tmp/split.sock" "$split_port"
	split_pid=$started
fi
if wants a.old || wants a32.old || wants s.old; then
	[ -n "${BEFORE:-}" ] || { echo "the .old configs need BEFORE=a checkout to build them from" >&2; exit 1; }
	mkdir -p "$tmp/old"
	echo "building the cocaine of $BEFORE" >&2
	(cd "$BEFORE" && go build -o "$tmp/old/cocaine" ./cmd/cocaine)
	start_dev "$tmp/old/cocaine" "$tmp/old" "$tmp/old.sock" "$old_port"
	old_pid=$started
	if wants s.old; then
		start_split "$tmp/old/cocaine" "$tmp/split-old" "$tmp/split-old.sock" "$split_old_port"
		split_old_pid=$started
	fi
fi

"$tmp/hello" -socket "$tmp/hello.sock" 2>"$tmp/hello.log" &
pids+=($!)
hello_pid=$!

start_uwsgi() { # name, socket option, app dir, extra options
	local name=$1 sockopt=$2 dir=$3
	shift 3
	"$UWSGI" --plugin python3 --master --die-on-term --need-app --processes 2 "$sockopt" "$tmp/$name.sock" \
		--chmod-socket=666 --chdir "$dir" --wsgi-file app.py --disable-logging "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
}
start_uwsgi uwsgi-fcgi --fastcgi-socket "$root/examples/wsgi-hello"
uwsgi_fcgi_pid=$!
start_uwsgi uwsgi --socket "$root/examples/wsgi-hello"
uwsgi_pid=$!
start_uwsgi uwsgi-flask --socket "$root/examples/flask" --callable app
uwsgi_flask_pid=$!

site() { # socket, port, upstream name
	sed -e "s|server 127.0.0.1:9000;|server unix:$1;|" -e "s|listen 80;|listen 127.0.0.1:$2;|" \
		-e "s|cocaine_front|$3|g" "$root/configs/nginx.conf"
}
mkdir -p "$tmp/nginx/logs" "$tmp/nginx/tmp"
site=$(sed -e "s|server 127.0.0.1:9000;|server unix:$tmp/cocaine.sock;|" \
	-e "s|listen 80;|listen 127.0.0.1:$port_cocaine;|" "$root/configs/nginx.conf")
grep -q "unix:$tmp/cocaine.sock" <<<"$site" || { echo "configs/nginx.conf: upstream 127.0.0.1:9000 not found" >&2; exit 1; }
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

    # a, a32, d, fc: the shipped site (configs/nginx.conf)
$site

    # s, and the .old configs: the shipped site again, for other upstreams
$(site "$tmp/split.sock" "$port_s" cocaine_split)
$(site "$tmp/old.sock" "$port_old" cocaine_old)
$(site "$tmp/split-old.sock" "$port_s_old" cocaine_split_old)

    # b
    upstream hello_keep { server unix:$tmp/hello.sock; keepalive 32; }
    server { listen 127.0.0.1:$port_b;
        location / { proxy_pass http://hello_keep; proxy_http_version 1.1; proxy_set_header Connection ""; } }
    # c: uWSGI's FastCGI mode has no persistent connections
    server { listen 127.0.0.1:$port_c;
        location / { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$tmp/uwsgi-fcgi.sock; } }
    # e
    server { listen 127.0.0.1:$port_e;
        location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$tmp/uwsgi.sock; } }
    # fu
    server { listen 127.0.0.1:$port_fu;
        location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$tmp/uwsgi-flask.sock; } }
}
CONF
"$NGINX" -t -q -p "$tmp/nginx/" -e logs/error.log -c nginx.conf
"$NGINX" -p "$tmp/nginx/" -e logs/error.log -c nginx.conf

declare -A url want backend label
url[a]="http://127.0.0.1:$port_cocaine/echo/http/"
url[a32]="http://127.0.0.1:$port_cocaine/echo32/http/"
url[b]="http://127.0.0.1:$port_b/"
url[c]="http://127.0.0.1:$port_c/"
url[d]="http://127.0.0.1:$port_cocaine/wsgi-hello/http/"
url[e]="http://127.0.0.1:$port_e/"
url[fc]="http://127.0.0.1:$port_cocaine/flask/http/"
url[fu]="http://127.0.0.1:$port_fu/"
url[s]="http://127.0.0.1:$port_s/echo/http/"
url[a.old]="http://127.0.0.1:$port_old/echo/http/"
url[a32.old]="http://127.0.0.1:$port_old/echo32/http/"
url[s.old]="http://127.0.0.1:$port_s_old/echo/http/"
label[a]="nginx → cocaine → Go (echo as shipped)"
label[a32]="nginx → cocaine → Go (concurrency 32)"
label[b]="nginx proxy_pass → bare Go net/http"
label[c]="nginx fastcgi → uWSGI, WSGI hello"
label[d]="nginx → cocaine → Python, WSGI hello"
label[e]="nginx uwsgi → uWSGI, WSGI hello"
label[fc]="nginx → cocaine → Flask"
label[fu]="nginx uwsgi → uWSGI → Flask"
label[s]="nginx → gateway → engine → Go (split)"
label[a.old]="${label[a]}, before"
label[a32.old]="${label[a32]}, before"
label[s.old]="${label[s]}, before"
for k in a a32 b s a.old a32.old s.old; do want[$k]="GET /"; done
for k in c d e; do want[$k]="Hello, World!"; done
for k in fc fu; do want[$k]="<h1>Flask on cocaine</h1>"; done
backend[a]=$cocaine_pid backend[a32]=$cocaine_pid backend[d]=$cocaine_pid backend[fc]=$cocaine_pid
backend[s]=${split_pid:-} backend[a.old]=${old_pid:-} backend[a32.old]=${old_pid:-} backend[s.old]=${split_old_pid:-}
backend[b]=$hello_pid backend[c]=$uwsgi_fcgi_pid backend[e]=$uwsgi_pid backend[fu]=$uwsgi_flask_pid

# Every backend answers what it should before anything is measured; the
# Go apps are compiled at deploy, which takes a while on a cold cache.
for k in $CONFIGS; do
	[ -n "${url[$k]:-}" ] || { echo "unknown config $k (have: a a32 b c d e fc fu s a.old a32.old s.old)" >&2; exit 1; }
	ok=0
	for _ in $(seq 1800); do
		if body=$(curl -sf --max-time 5 "${url[$k]}") && grep -qF "${want[$k]}" <<<"$body"; then ok=1; break; fi
		sleep 0.1
	done
	if [ $ok = 0 ]; then
		echo "$k: ${url[$k]} did not answer ${want[$k]} within 3 minutes" >&2
		tail -n 30 "$tmp"/*.log "$tmp"/*/*.log "$tmp/nginx/logs/error.log" >&2
		exit 1
	fi
done

# CPU time of a process and all its descendants, in clock ticks: the
# cost per request behind nginx, which other load on the machine shifts
# far less than requests/s.
# The second number is the platform's share: the cocaine processes of the
# tree (front, dealer, engine), without the apps' slaves.
tree_ticks() {
	# Processes come and go while cat reads: a vanished one is no error.
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | sed 's/^\([0-9]*\) (\(.*\)) /\1 \2 /' | awk -v root="$1" '
		{ ppid[$1] = $4; t[$1] = $14 + $15; own[$1] = ($2 == "cocaine") }
		END { for (p in t) { q = p; while (q != root && q > 1 && (q in ppid)) q = ppid[q]; if (q == root) { s += t[p]; if (own[p]) c += t[p] } }; print s + 0, c + 0 }'
}
hz=$(getconf CLK_TCK)
to_ms() { # wrk's "812.00us", "1.20ms", "2.01s"
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

declare -A rps p50 p99 cpu pcpu errs
cfgs=($CONFIGS)
echo "# $(date -u +%FT%TZ) $(nproc) cores, wrk -t$THREADS -c$CONNS -d$DURATION --latency, warm-up $WARMUP, $ROUNDS rounds" 
for r in $(seq "$ROUNDS"); do
	echo "round $r: load average $(cut -d' ' -f1-3 /proc/loadavg)"
	# Each round starts one configuration later, so none always runs
	# first (after the idle gap) or last.
	n=${#cfgs[@]}
	for i in $(seq 0 $((n - 1))); do
		k=${cfgs[$(((i + r - 1) % n))]}
		"$WRK" -t"$THREADS" -c"$CONNS" -d"$WARMUP" "${url[$k]}" >/dev/null
		read -r t0 c0 <<<"$(tree_ticks "${backend[$k]}")"
		out=$("$WRK" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${url[$k]}")
		read -r t1 c1 <<<"$(tree_ticks "${backend[$k]}")"
		req=$(awk '/^Requests\/sec/ { printf "%d", $2 }' <<<"$out")
		l50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
		l99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
		total=$(awk '/requests in/ { print $1 }' <<<"$out")
		us=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$total" 'BEGIN { if (n > 0) printf "%.0f", t / hz / n * 1e6 }')
		pus=$(awk -v t="$((c1 - c0))" -v hz="$hz" -v n="$total" 'BEGIN { if (n > 0) printf "%.0f", t / hz / n * 1e6 }')
		e=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd';' || true)
		rps[$k]+="$req " p50[$k]+="$l50 " p99[$k]+="$l99 " cpu[$k]+="$us " pcpu[$k]+="$pus "
		[ -n "$e" ] && errs[$k]+="r$r:$e "
		printf '  %-4s %-40s %8s req/s  p50 %7s ms  p99 %7s ms  %5s µs CPU/req (platform %s) %s\n' "$k" "${label[$k]}" "$req" "$l50" "$l99" "$us" "$pus" "$e"
		[ -n "${WRK_OUT:-}" ] && mkdir -p "$WRK_OUT" && printf '%s\n' "$out" >"$WRK_OUT/r$r-$k.txt"
		[ -n "${RAW:-}" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$k" "$req" "$l50" "$l99" "$us" "$pus" "$e" >>"$RAW"
	done
done
echo "after: load average $(cut -d' ' -f1-3 /proc/loadavg)"

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A med
echo
printf '| config | path | req/s (runs) | median req/s | p50 ms | p99 ms | backend CPU µs/req | of which platform |\n'
printf '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n'
for k in $CONFIGS; do
	med[$k]=$(median "${rps[$k]}")
	runs=$(tr -s ' ' '\n' <<<"${rps[$k]}" | grep -v '^$' | paste -sd'/' | sed 's|/| / |g')
	platform=$(median "${pcpu[$k]}")
	case $k in b | c | e | fu) platform=- ;; esac
	printf '| %s | %s | %s | **%s** | %s | %s | %s | %s |\n' "$k" "${label[$k]}" "$runs" "${med[$k]}" \
		"$(median "${p50[$k]}")" "$(median "${p99[$k]}")" "$(median "${cpu[$k]}")" "$platform"
done
for k in $CONFIGS; do
	[ -n "${errs[$k]:-}" ] && echo "errors in $k: ${errs[$k]}"
done
echo
ratio() { # name, numerator, denominator, goal ("" for none)
	[ -n "${med[$2]:-}" ] && [ -n "${med[$3]:-}" ] || return 0
	awk -v a="${med[$2]}" -v b="${med[$3]}" -v g="$4" -v n="$1" 'BEGIN {
		r = a / b; printf "%-50s %5.2f", n, r
		if (g != "") printf "   goal >= %s: %s", g, (r >= g + 0 ? "met" : "NOT met")
		printf "\n" }'
}
ratio "(a)/(b)   cocaine Go / bare Go" a b 0.5
ratio "(a32)/(b) cocaine Go, concurrency 32 / bare Go" a32 b 0.5
ratio "(s)/(b)   split gateway + engine / bare Go" s b 0.4
ratio "(c)/(b)   uWSGI FastCGI / bare Go" c b ""
ratio "before: (a)/(b)" a.old b ""
ratio "before: (a32)/(b)" a32.old b ""
ratio "before: (s)/(b)" s.old b ""
ratio "(d)/(c)   cocaine Python / uWSGI FastCGI" d c ""
ratio "(d)/(e)   cocaine Python / uWSGI native" d e 0.5
ratio "(fc)/(fu) cocaine Flask / uWSGI Flask" fc fu 0.8
if grep -q '\[error\]' "$tmp/nginx/logs/error.log"; then
	echo "nginx errors:" >&2
	grep '\[error\]' "$tmp/nginx/logs/error.log" | head >&2
fi
