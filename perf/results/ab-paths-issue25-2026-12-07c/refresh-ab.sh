#!/usr/bin/env bash
# Embedded refresh only, alternating binaries, 4 rounds of 15 s (after 2 s warm-up).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
OUT="$1"; shift
BENCH="${*: -1}"
source "$REPO/perf/lib.sh"
for round in 1 2 3 4; do
  for i in 1 2; do
    HJ="${!i}"
    target="$(start_server embedded)"
    "$BENCH" bench seed --target "$target" --users 200 --seed-file "$OUT/seed.json" >/dev/null
    "$BENCH" bench run --quiet --target "$target" --seed-file "$OUT/seed.json" --scenario refresh \
        --connections 32 --duration 15s --warmup 2s --out "$OUT/r$round-b$i-refresh" >/dev/null
    stop_server embedded
  done
done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
for r in range(1, 5):
    cells = [json.load(open(os.path.join(out, f"r{r}-b{i}-refresh", "summary.json"))) for i in (1, 2)]
    print(f"| embedded | refresh | {r} | " + " | ".join(f"{s['ok_rate']:.0f} ({s['latency_ms']['p99']:.1f})" for s in cells) + " |")
PY
