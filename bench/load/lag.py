#!/usr/bin/env python3
"""Schedule lag of a run, in ms: p99 over requests.

slolab: reads `slolab load -o json` and prints scheduleLag.p99.
vegeta: reads `vegeta encode --to csv` and derives each request's lag from its
timestamp (taken when the worker starts the hit) and its sequence number:
vegeta's pacer sends hit k (from 0) at began + (k+1)/rate, and began, which
vegeta does not record, is taken as min over k of (timestamp_k − (k+1)/rate),
i.e. the least-lagged request is assumed on time. That makes vegeta's figures
a lower bound (slightly flattering to vegeta).
"""
import csv, json, re, sys

def go_duration_ms(s):
    total = 0.0
    for num, unit in re.findall(r'([0-9.]+)(ns|us|µs|ms|s|m|h)', s):
        total += float(num) * {'ns': 1e-6, 'us': 1e-3, 'µs': 1e-3, 'ms': 1, 's': 1e3, 'm': 6e4, 'h': 3.6e6}[unit]
    return total

kind, path = sys.argv[1], sys.argv[2]
if kind == 'slolab':
    r = json.load(open(path))
    print('%.3f %d' % (go_duration_ms(r['scheduleLag']['p99']), r['total']['sent']))
else:
    rate = float(sys.argv[3])
    interval = 1e9 / rate
    rows = sorted((int(r[8]), int(r[0])) for r in csv.reader(open(path)))
    t0 = min(ts - (k + 1) * interval for k, ts in rows)
    lags = sorted(ts - (k + 1) * interval - t0 for k, ts in rows)
    print('%.3f %d' % (lags[int(len(lags) * 0.99)] / 1e6, len(lags)))
