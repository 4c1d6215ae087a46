#!/usr/bin/env bash
# Ten million requests from 'slolab load' against the load benchmark's raw
# loopback server, sampling the generator's resident memory (VmRSS) and its
# peak (VmHWM) every 10 s: does memory stay flat over a long run?
# Not part of 'make bench' (it runs for about 21 minutes):
#   bench/load/tenmillion.sh [RATE] [DURATION]      # default 8000 1250s
# Prints the samples, the last progress line and the JSON report's totals.
set -euo pipefail
cd "$(dirname "$0")/../.."
rate=${1:-8000} dur=${2:-1250s}
tmp=$(mktemp -d)
go build -o "$tmp/slolab" ./cmd/slolab
go build -o "$tmp/server" ./bench/load/server
"$tmp/server" -listen 127.0.0.1:0 > "$tmp/addr" &
spid=$!
trap 'kill $spid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
addr=$(head -1 "$tmp/addr")
"$tmp/slolab" load --spec bench/load/bench.yaml --target "http://$addr" --rate "$rate/s" --duration "$dur" \
  --seed 1 -o json > "$tmp/report.json" 2> "$tmp/progress" &
lpid=$!
echo "seconds  VmRSS_kB  VmHWM_kB"
t=0
while kill -0 $lpid 2>/dev/null; do
  awk -v t=$t '/VmRSS/{r=$2} /VmHWM/{h=$2} END{if (r) printf "%7d  %8d  %8d\n", t, r, h}' /proc/$lpid/status 2>/dev/null || true
  sleep 10; t=$((t+10))
done
wait $lpid || echo "slolab load exited $?"
tail -1 "$tmp/progress"
tr -d ' \n' < "$tmp/report.json" | sed 's/.*"total":/total: /' | cut -c1-300
