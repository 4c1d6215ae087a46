#!/usr/bin/env bash
# Load-generator benchmark: slolab load vs vegeta against the same trivial
# loopback server, in one run. For each round and each tool (interleaved:
# slolab, vegeta, slolab, vegeta, ...) it climbs a ladder of rates, each held
# for STEP seconds, and records the highest rate whose p99 schedule lag
# (actual − intended send time; see lag.py) stays under 1 ms with every
# request sent. Then it reports the medians over ROUNDS rounds, and the peak
# RSS of one long slolab run of RSS_REQUESTS requests.
#
#   bench/load/run.sh                      # defaults below
#   ROUNDS=5 STEP=5 RSS_REQUESTS=10000000 bench/load/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
STEP=${STEP:-3}
RATES=${RATES:-"500 1000 2000 3000 4000 6000 8000 12000 16000 24000"}
RSS_REQUESTS=${RSS_REQUESTS:-10000000}
RSS_RATE=${RSS_RATE:-10000}
VEGETA=${VEGETA:-$(go env GOPATH)/bin/vegeta}
work=$(mktemp -d)
trap 'kill $srv_pid 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/slolab" ./cmd/slolab
go build -o "$work/server" ./bench/load/server
"$work/server" > "$work/addr" &
srv_pid=$!
for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
addr=$(head -1 "$work/addr")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); vegeta $("$VEGETA" -version 2>&1 | head -1 | awk '{print $2}')"
echo "server: $addr (bench/load/server, raw HTTP/1.1)"

# p99 lag in ms and requests sent, for one tool at one rate.
measure() {
  local tool=$1 rate=$2
  if [ "$tool" = slolab ]; then
    "$work/slolab" load --spec bench/load/bench.yaml --target "http://$addr" --rate "$rate/s" \
      --duration "${STEP}s" --progress 0 -o json > "$work/out.json"
    python3 bench/load/lag.py slolab "$work/out.json"
  else
    echo "GET http://$addr/" | "$VEGETA" attack -rate "$rate/s" -duration "${STEP}s" > "$work/out.bin"
    "$VEGETA" encode --to csv < "$work/out.bin" > "$work/out.csv"
    python3 bench/load/lag.py vegeta "$work/out.csv" "$rate"
  fi
}

declare -A best
for round in $(seq "$ROUNDS"); do
  for tool in slolab vegeta; do
    top=0
    for rate in $RATES; do
      read -r lag sent < <(measure "$tool" "$rate")
      want=$((rate * STEP))
      printf 'round %d %-6s %6d/s: p99 lag %8.3f ms, sent %d/%d\n' "$round" "$tool" "$rate" "$lag" "$sent" "$want"
      if python3 -c "import sys; sys.exit(0 if $lag < 1.0 and $sent == $want else 1)"; then top=$rate; else break; fi
    done
    best[$tool]="${best[$tool]:-} $top"
    echo "round $round $tool: highest rate with p99 lag < 1 ms: $top/s"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s=$(echo "${best[slolab]}" | median); v=$(echo "${best[vegeta]}" | median)
echo "median highest rate with p99 schedule lag < 1 ms: slolab $s/s (rounds:${best[slolab]}), vegeta $v/s (rounds:${best[vegeta]})"

secs=$((RSS_REQUESTS / RSS_RATE))
echo "peak RSS: slolab load, $RSS_REQUESTS requests at $RSS_RATE/s (${secs}s)"
/usr/bin/time -v "$work/slolab" load --spec bench/load/bench.yaml --target "http://$addr" --rate "$RSS_RATE/s" \
  --duration "${secs}s" --progress 60s -o json > "$work/rss.json" 2> "$work/rss.err" || true
grep -E 'Maximum resident set size|Elapsed \(wall' "$work/rss.err"
grep -v -E '^\s' "$work/rss.err" | tail -3 || true
python3 - "$work/rss.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r['total']
print('sent %d, dropped %d, late %d, 2xx %d, errors %d, latency p99 %s, schedule lag p99 %s' % (
    t['sent'], t['dropped'], t['late'], t['status']['2xx'], t['errors'], t['latency']['p99'], r['scheduleLag']['p99']))
PY
