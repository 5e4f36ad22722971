"""Medians of docs/perf/ab.sh's JSON lines, per binary and connection count.

    python3 docs/perf/abmed.py OUT
"""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
for b in dict.fromkeys(r["bin"] for r in rows):
    for c in sorted({r["conns"] for r in rows}):
        rs = [r for r in rows if r["bin"] == b and r["conns"] == c]
        if not rs:
            continue
        med = lambda k: statistics.median(r[k] for r in rs if r[k] is not None)
        per_run = " ".join("%.2f" % r["xrps"] for r in rs)
        print(f"{b} conns={c} runs={len(rs)} x req/s {med('xrps'):.2f}  x cpu/req {med('xcpu'):.2f}  "
              f"x p99 {med('xp99'):.2f}  errors {sum(r['err'] for r in rs)}  req/s {med('rps'):.0f}  "
              f"(x req/s per run: {per_run})")
