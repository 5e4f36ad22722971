#!/usr/bin/env bash
# Cross-check of the bench's ratios with an independent load generator
# (client.c), against the comparator, the reference and a bare epoll echo
# loop (echo.c), interleaved, REPS rounds of 3 s per connection count.
# Prints the median req/s and server CPU µs per request of each.
#
#   make build && docs/crosscheck/run.sh [REPS]     (needs cc; loopback only)
set -euo pipefail
reps=${1:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/client" "$root/docs/crosscheck/client.c"
cc -O2 -o "$work/echo" "$root/docs/crosscheck/echo.c"

# one CONNS NAME COMMAND...: start the server (PORT replaced), warm up 0.5 s,
# measure 3 s, append "req/s cpu-ticks" to $work/NAME-cCONNS.
one() {
	local conns=$1 name=$2 port pid out t0 t1 up try
	shift 2
	for try in 1 2 3 4 5; do
		# Below the ephemeral ports (32768 up) that every connection takes.
		port=$((20000 + RANDOM % 12000))
		"${@//PORT/$port}" >"$work/server.log" 2>&1 &
		pid=$!
		up=
		for _ in $(seq 100); do
			kill -0 $pid 2>/dev/null || break # exited: most likely the port was taken
			if (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
				sleep 0.2 # still alive then: it is ours that listens
				kill -0 $pid 2>/dev/null && up=1
				break
			fi
			sleep 0.05
		done
		[ -n "$up" ] && break
		kill $pid 2>/dev/null || true
		wait $pid 2>/dev/null || true
		echo "run.sh: $name did not listen on port $port (try $try of 5); its output:" >&2
		cat "$work/server.log" >&2
	done
	[ -n "$up" ] || { echo "run.sh: $name never listened; giving up" >&2; exit 1; }
	"$work/client" "$port" "$conns" 0.5 >/dev/null
	t0=$(awk '{print $14+$15}' /proc/$pid/stat)
	out=$("$work/client" "$port" "$conns" 3)
	t1=$(awk '{print $14+$15}' /proc/$pid/stat)
	kill $pid
	wait $pid 2>/dev/null || true
	echo "${out%% *} $((t1 - t0))" >>"$work/$name-c$conns"
}

for _ in $(seq "$reps"); do
	for c in 1 8 64 256; do
		one $c echo "$work/echo" PORT
		one $c comparator "$bin/echoadd-bench" comparator --listen 127.0.0.1:PORT --framing raw
		one $c reference "$bin/echoadd-server" --listen 127.0.0.1:PORT --framing raw
	done
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ticks=$(getconf CLK_TCK)
printf '%5s %12s %12s %12s %9s %9s %12s %12s\n' conns reference comparator epoll-echo ref/cmp echo/cmp 'ref µs/req' 'cmp µs/req'
for c in 1 8 64 256; do
	for s in reference comparator echo; do
		eval "${s//-/_}_rps=\$(awk '{print \$1}' $work/$s-c$c | median)"
		eval "${s//-/_}_cpu=\$(awk -v t=$ticks '{print \$2/t*1e6/(\$1*3)}' $work/$s-c$c | median)"
	done
	awk -v c=$c -v r="$reference_rps" -v m="$comparator_rps" -v e="$echo_rps" -v rc="$reference_cpu" -v mc="$comparator_cpu" \
		'BEGIN {printf "%5d %12.0f %12.0f %12.0f %9.2f %9.2f %12.2f %12.2f\n", c, r, m, e, r/m, e/m, rc, mc}'
done
