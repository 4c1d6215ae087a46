package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
)

// exactConfig sizes the rate-exactness simulation.
type exactConfig struct {
	Rate     spec.Ratio
	Requests int
	Conns    int
	Runs     int
	Seed     uint64 // run i uses seed Seed+i
}

// strategy decides which of a run's requests get the fault: conn[i] is how
// many requests connection i carries; it returns how many were injected.
type strategy struct {
	name, who, how string
	run            func(p spec.Ratio, conns []int, seed uint64) int
}

var strategies = []strategy{
	{"slolab", "slolab", "`fault.Counter`: request n of the matched stream is injected iff ⌊n·p⌋ > ⌊(n−1)·p⌋, n from one atomic counter shared by the 32 connections' goroutines", counterStrategy},
	{"bernoulli", "Envoy, Istio", "a draw per request: injected iff uniform(0, 10⁶) < p·10⁶ (Envoy's fractional percent with Istio's million denominator)", bernoulliStrategy},
	{"per-connection", "Toxiproxy", "a draw per connection: a connection is faulted for all its requests iff rand.Float32() < toxicity (Toxiproxy v2.12.0 toxics/toxic.go `ToxicStub.Run` draws once when a connection's link starts)", perConnStrategy},
}

// counterStrategy runs the real fault.Counter, with one goroutine per
// connection taking positions concurrently.
func counterStrategy(p spec.Ratio, conns []int, seed uint64) int {
	c := fault.NewCounter(p, seed)
	var wg sync.WaitGroup
	for _, n := range conns {
		wg.Go(func() {
			for range n {
				c.Next()
			}
		})
	}
	wg.Wait()
	return int(c.Injected())
}

func bernoulliStrategy(p spec.Ratio, conns []int, seed uint64) int {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	const den = 1_000_000
	num := p.FloorMul(den)
	injected := 0
	for _, n := range conns {
		for range n {
			if rng.Uint64N(den) < num {
				injected++
			}
		}
	}
	return injected
}

func perConnStrategy(p spec.Ratio, conns []int, seed uint64) int {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	toxicity := float32(p.Float())
	injected := 0
	for _, n := range conns {
		if rng.Float32() < toxicity {
			injected += n
		}
	}
	return injected
}

// spreadConns shares n requests over c connections as evenly as keep-alive
// connections under round-robin share them: the first n mod c carry one more.
func spreadConns(n, c int) []int {
	out := make([]int, c)
	for i := range out {
		out[i] = n / c
		if i < n%c {
			out[i]++
		}
	}
	return out
}

type exactResult struct {
	strategy strategy
	counts   []int
}

func simulateExact(cfg exactConfig) []exactResult {
	conns := spreadConns(cfg.Requests, cfg.Conns)
	var out []exactResult
	for _, st := range strategies {
		r := exactResult{strategy: st}
		for i := range cfg.Runs {
			r.counts = append(r.counts, st.run(cfg.Rate, conns, cfg.Seed+uint64(i)))
		}
		out = append(out, r)
	}
	return out
}

func runExact(cfg exactConfig) string {
	started, load := time.Now(), loadAvg()
	results := simulateExact(cfg)
	var b bytes.Buffer
	runLine(&b, started, load, fmt.Sprintf("-only exact -exact-runs %d -exact-seed %d", cfg.Runs, cfg.Seed))
	conns := spreadConns(cfg.Requests, cfg.Conns)
	intended := cfg.Rate.FloorMul(uint64(cfg.Requests))
	fmt.Fprintf(&b, "A fault at rate %s over %d requests carried by %d keep-alive connections (%d carry %d requests, %d carry %d), %d runs with seeds %d–%d. "+
		"Intended: exactly %d injected per run. This is a simulation in Go, no network: slolab's strategy is the real `fault.Counter` (the proxy's code), the others are models of what the peers do, stated below. "+
		"The per-connection model is faithful to how Toxiproxy applies toxicity: the draw is per connection, so a faulted connection fails all of its ~%d requests and an unlucky run faults none.\n\n",
		cfg.Rate.Decimal()+" ("+cfg.Rate.String()+")", cfg.Requests, cfg.Conns, cfg.Requests%cfg.Conns, conns[0], cfg.Conns-cfg.Requests%cfg.Conns, conns[len(conns)-1],
		cfg.Runs, cfg.Seed, cfg.Seed+uint64(cfg.Runs)-1, intended, conns[len(conns)-1])
	b.WriteString("| strategy | as in | min | max | max − min | mean | std. dev. | runs exactly on target |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		mean, sd := meanStddev(r.counts)
		exact := 0
		for _, c := range r.counts {
			if uint64(c) == intended {
				exact++
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.1f | %.1f | %d of %d |\n", r.strategy.name, r.strategy.who,
			slices.Min(r.counts), slices.Max(r.counts), slices.Max(r.counts)-slices.Min(r.counts), mean, sd, exact, len(r.counts))
	}
	b.WriteString("\nInjected counts per run (seed order):\n\n")
	for _, r := range results {
		parts := make([]string, len(r.counts))
		for i, c := range r.counts {
			parts[i] = fmt.Sprint(c)
		}
		fmt.Fprintf(&b, "- %s: %s\n", r.strategy.name, strings.Join(parts, ", "))
	}
	b.WriteString("\nStrategies:\n\n")
	for _, r := range results {
		fmt.Fprintf(&b, "- %s (%s): %s.\n", r.strategy.name, r.strategy.who, r.strategy.how)
	}
	b.WriteString("\nThe standard deviation is over the runs (population). Reading:\n\n")
	sl := results[0]
	spread := slices.Max(sl.counts) - slices.Min(sl.counts)
	v := "leads"
	if spread != 0 {
		v = "trails"
	}
	_, sdB := meanStddev(results[1].counts)
	_, sdC := meanStddev(results[2].counts)
	got := fmt.Sprintf("exactly %d faults in every run", sl.counts[0])
	if spread != 0 {
		got = fmt.Sprintf("between %d and %d faults (spread %d)", slices.Min(sl.counts), slices.Max(sl.counts), spread)
	}
	b.WriteString(reading(v, fmt.Sprintf("slolab injected %s where %d were intended; a per-request draw gave %d–%d (std. dev. %.1f), a per-connection draw %d–%d (std. dev. %.1f).",
		got, intended,
		slices.Min(results[1].counts), slices.Max(results[1].counts), sdB,
		slices.Min(results[2].counts), slices.Max(results[2].counts), sdC)))
	return b.String()
}
