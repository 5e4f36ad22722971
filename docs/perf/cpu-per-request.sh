#!/bin/sh
# Server CPU per request as perf counts it (task-clock of the server process
# over 2 s in the middle of a 4 s run), with epoll_pwait calls and context
# switches per request: one JSON line. BIN is an echoadd-server build; it
# listens on a free port (read from its start-up line). ENV=VAL, if given,
# is set for the server only (e.g. GOMAXPROCS=1).
#
#   make build && docs/perf/cpu-per-request.sh CONNS LABEL BIN [ENV=VAL]
#   (needs perf: apt-get install linux-perf)
set -eu
[ $# -ge 3 ] || { echo "usage: $0 CONNS LABEL BIN [ENV=VAL]" >&2; exit 2; }
cd "$(dirname "$0")/../.."
conns=$1 label=$2 bin=$3 env=${4:-ECHOADD_UNUSED=1}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
env "$env" "$bin" --listen 127.0.0.1:0 --framing raw 2>"$work/server.log" &
pid=$!
addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$work/server.log")
	[ -n "$addr" ] && break
	sleep 0.05
done
[ -n "$addr" ] || { echo "$0: the server never listened:" >&2; cat "$work/server.log" >&2; exit 1; }
bin/echoadd-bench --target "$addr" --framing raw --conns "$conns" --duration 4s --warmup 0s --json >"$work/bench.json" &
bp=$!
sleep 1
perf stat -x, -e 'syscalls:sys_enter_epoll_pwait,sched:sched_switch,task-clock' -p $pid -- sleep 2 2>"$work/perf.txt"
wait $bp
python3 - "$label" "$conns" "$work/bench.json" "$work/perf.txt" <<'PY'
import json, sys
label, conns, bench, perf = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rps = json.load(open(bench))["rows"][0]["target"]["throughput_rps"]
counts = {}
for line in open(perf):
    f = line.strip().split(",")
    if len(f) >= 3 and f[0].replace(".", "").isdigit():
        counts[f[2].split(":")[-1]] = float(f[0])
requests = rps * 2  # the 2 s perf counted
print(json.dumps({"label": label, "conns": conns, "rps": rps,
                  "cpu_us_per_request": counts["task-clock"] * 1e3 / requests,  # task-clock is in ms
                  "epoll_pwait_per_request": counts.get("sys_enter_epoll_pwait", 0) / requests,
                  "switches_per_request": counts.get("sched_switch", 0) / requests}))
PY
