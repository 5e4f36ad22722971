#!/bin/sh
# Interleaved A/B runs of the README's standard command (raw, echo 16 B, 3 s
# after a 0.5 s warm-up, --baseline): PAIRS rounds, each one run of every
# binary in turn, one JSON line per run appended to OUT. Interleaving spreads
# the machine's drift over all binaries alike; docs/perf/abmed.py OUT prints
# the medians.
#
#   make build && docs/perf/ab.sh CONNS PAIRS OUT BIN_A BIN_B...
set -eu
[ $# -ge 4 ] || { echo "usage: $0 CONNS PAIRS OUT BIN..." >&2; exit 2; }
cd "$(dirname "$0")/../.."
conns=$1 pairs=$2 out=$3
shift 3
for _ in $(seq "$pairs"); do
	for b in "$@"; do
		bin/echoadd-bench --server-bin "$b" --framing raw --payload 16 --conns "$conns" \
			--duration 3s --warmup 500ms --baseline --json |
			python3 -c '
import json, sys
bin, conns = sys.argv[1], int(sys.argv[2])
for row in json.load(sys.stdin)["rows"]:
    t, c, x = row["target"], row["comparator"], row["ratio"]
    print(json.dumps({"bin": bin, "conns": conns, "rps": t["throughput_rps"], "xrps": x["throughput"],
                      "xcpu": x.get("cpu_per_request"), "xp99": x["p99"],
                      "err": sum(t["errors"].values()) + sum(c["errors"].values())}))
' "$b" "$conns" >>"$out"
	done
done
