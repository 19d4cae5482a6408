#!/usr/bin/env bash
# What the front's per-request metrics cost in throughput: two `cocaine dev`
# with examples/echo, one with --front-metrics=false, loaded in turn with
# wrk on echo/http over HTTP (no nginx), ROUNDS rounds, medians reported:
# requests/s, and the CPU time of the cocaine dev process tree (front,
# dealer, engine, slaves) per request, which varies far less with the
# machine's other load.
# Environment: PORT (18300: uses PORT..PORT+9), DURATION (10s), WARMUP
# (2s), ROUNDS (3), CONNS (32). Everything started here is stopped on exit.
set -euo pipefail
PORT=${PORT:-18300} DURATION=${DURATION:-10s} WARMUP=${WARMUP:-2s} ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "wrk not found (scripts/deps.sh bench installs it)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/cocaine-mbench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; sleep 2; rm -rf "$tmp"' EXIT
cd "$root" # the sandboxes find this checkout from the working directory
go build -o "$tmp/cocaine" ./cmd/cocaine
start() { # name port-offset metrics
	mkdir -p "$tmp/$1/apps" && cp -r "$root/examples/echo" "$tmp/$1/apps/"
	# setsid without a fork (the job is no group leader): $! is cocaine's
	# pid and its process group, which the trap stops.
	setsid "$tmp/cocaine" dev --data "$tmp/$1" --apps "$tmp/$1/apps" \
		--listen "tcp://127.0.0.1:$((PORT + $2))" --announce "tcp://127.0.0.1:$((PORT + $2 + 1))" \
		--http "127.0.0.1:$((PORT + $2 + 2))" --fastcgi "" --admin off --front-metrics="$3" >"$tmp/$1.log" 2>&1 &
	echo $! >"$tmp/$1.pid"
	pids+=($!)
	for _ in $(seq 1 120); do
		curl -sf -o /dev/null -d x "http://127.0.0.1:$((PORT + $2 + 2))/echo/http/x" && return
		sleep 1
	done
	echo "$1 did not come up; log:" >&2; cat "$tmp/$1.log" >&2; exit 1
}
start on 0 true
start off 5 false
# cpu prints the user+system clock ticks of a process and its descendants
# (slaves run in process groups of their own).
cpu() {
	local t=0 todo=("$1") p
	while [ ${#todo[@]} -gt 0 ]; do
		p=${todo[0]} todo=("${todo[@]:1}")
		[ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
		todo+=($(ps -o pid= --ppid "$p"))
	done
	echo $t
}
hz=$(getconf CLK_TCK)
declare -A rps cpr
for r in $(seq 1 "$ROUNDS"); do
	for cfg in on off; do
		off=0; [ $cfg = off ] && off=5
		url="http://127.0.0.1:$((PORT + off + 2))/echo/http/x"
		wrk -t1 -c"$CONNS" -d"$WARMUP" "$url" >/dev/null
		pg=$(cat "$tmp/$cfg.pid")
		c0=$(cpu "$pg")
		out=$(wrk -t1 -c"$CONNS" -d"$DURATION" "$url")
		c1=$(cpu "$pg")
		v=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
		n=$(echo "$out" | awk '/requests in/ {print $1}')
		us=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
		echo "round $r metrics $cfg: $v req/s, $us µs CPU/request (load $(cut -d' ' -f1 /proc/loadavg))"
		rps[$cfg]+="$v "
		cpr[$cfg]+="$us "
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for cfg in on off; do
	echo "metrics $cfg: median $(echo ${rps[$cfg]} | median) req/s, $(echo ${cpr[$cfg]} | median) µs CPU/request"
done
