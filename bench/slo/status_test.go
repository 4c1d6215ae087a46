// Package slo_test benchmarks the SLO engine at fleet scale: full status
// (every window, every burn rate, every alert) for 10,000 SLOs over 30 days
// of minute buckets each.
//
//	go test -run '^$' -bench . -benchtime 10x ./bench/slo/
package slo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

const cujs = 5_000 // an availability and a latency SLO each: 10,000 SLOs

// fleet builds a service of 5,000 CUJs and 30 days of minute buckets for
// each: 50–150 requests a minute, a failure in one minute of 50 (burn rate
// about 0.2) and a slow request in one of 4 (about 0.25), and every 100th
// CUJ burning at 20 for its last hour so its page fires.
func fleet(b *testing.B, end time.Time) (*spec.Service, *slo.History) {
	b.Helper()
	svc := &spec.Service{Name: "fleet"}
	window := spec.Window{Rolling: 30 * spec.Day}
	for i := range cujs {
		svc.CUJs = append(svc.CUJs, &spec.CUJ{
			Name: fmt.Sprintf("cuj-%04d", i), Owner: "team",
			Availability: &spec.AvailabilitySLO{Objective: spec.NewRatio(999, 1000), Window: window},
			Latency:      &spec.LatencySLO{Threshold: 300 * time.Millisecond, Objective: spec.NewRatio(99, 100), Window: window},
		})
	}
	start := end.Add(-30 * spec.Day)
	minutes := int(30 * spec.Day / time.Minute)
	bld := slo.NewHistoryBuilder(start, end)
	counts := make([]slo.Counts, minutes)
	for i, c := range svc.CUJs {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		for m := range counts {
			x := rng.Uint64()
			total := 50 + x%100
			counts[m] = slo.Counts{Total: total}
			if x>>8%50 == 0 {
				counts[m].Bad = 1
			}
			if x>>16%4 == 0 {
				counts[m].Slow = 1
			}
			if i%100 == 0 && m >= minutes-60 {
				counts[m].Bad = (total + 49) / 50 // at least 2%: burn rate 20 or more
			}
		}
		bld.AddMinutes(c.Name, start, counts)
	}
	h, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	return svc, h
}

// BenchmarkStatus10kSLOs30Days is one full status: 8 windows (5m … 3d and
// 30d) read for 10,000 SLOs, each judged (SLI, budget, time to exhaustion,
// 8 burn rates, 4 multiwindow alerts, policy).
func BenchmarkStatus10kSLOs30Days(b *testing.B) {
	end := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	svc, h := fleet(b, end)
	ctx := context.Background()
	var firing int
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		n++
		st, err := slo.Evaluate(ctx, svc, h, end)
		if err != nil {
			b.Fatal(err)
		}
		firing = 0
		for _, s := range st.SLOs {
			firing += len(s.Firing())
		}
	}
	if firing != cujs/100 { // the burning CUJs page through 1h/5m
		b.Fatalf("%d alerts firing, want %d", firing, cujs/100)
	}
	// On a shared machine wall time depends on the neighbours; CPU time
	// (user + system, this process) per status does less.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/op")
	b.ReportMetric(float64(len(svc.CUJs)*2), "SLOs")
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
