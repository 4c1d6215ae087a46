package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"slolab.dev/slolab/load"
)

// loadgenConfig sizes the load-generator benchmark.
type loadgenConfig struct {
	Rounds  int
	Step    time.Duration // how long each rung of the ladder runs
	Rates   []int         // the ladder, ascending
	Bar     time.Duration // the p99 schedule lag a sustained rate must stay under
	Through int           // every tool runs every rung up to this rate, whatever the rungs below gave
	RSSRate int           // the rate at which peak memory is compared
}

// The goals of issue 18 for the load generator.
const (
	goalSustainedRatio = 1.5 // slolab's sustained rate ÷ vegeta's
	goalRSSRatio       = 2.0 // slolab's peak RSS ÷ vegeta's at RSSRate
)

const loadSpec = "bench/load/bench.yaml"

// rung is one tool's run at one rate.
type rung struct {
	lag        time.Duration // p99 schedule lag
	sent, want int
	errors     int
	rssKB      int64
	cpu        time.Duration // user + system time of the whole process
}

// ok: every planned request sent, with the p99 schedule lag under bar.
func (r rung) ok(bar time.Duration) bool { return r.lag < bar && r.sent == r.want }

func (r rung) cpuPerRequest() time.Duration {
	if r.sent == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.sent)
}

var generators = []string{"slolab", "vegeta"}

// runLoadgen climbs a ladder of rates with slolab's generator and vegeta,
// interleaved, and finds per tool the highest rate whose p99 schedule lag
// stays under the bar with every request sent.
//
// Both tools are held to the same terms: each is asked for exactly the
// planned requests, at the planned rate, and sends every one of them
// however late (slolab by its plan; vegeta reading exactly that many
// targets with -lazy and no -duration, where with -duration it would stop
// at the deadline and leave its lagging hits unsent). A request counts as
// sent when it was, whenever that was; its lateness shows in the p99 lag.
// A request not sent at all (slolab drops one due while --max-in-flight
// requests wait) fails the rung for either tool.
func runLoadgen(s *session, cfg loadgenConfig) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	g := s.group()
	defer g.stop()
	up, err := s.upstream(g)
	if err != nil {
		return "", err
	}
	runs := map[string]map[int][]rung{"slolab": {}, "vegeta": {}}
	best, strict := map[string][]int{}, map[string][]int{}
	for r := range cfg.Rounds {
		order := slices.Clone(generators)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, tool := range order {
			// Every rung up to cfg.Through, so that the goals' figures are
			// measured whatever happened below; past it, on past a miss (so
			// that the table compares the tools rung by rung on a busy
			// machine too) until the tool drops requests or lags hopelessly.
			var climbed []rung
			for _, rate := range cfg.Rates {
				var x rung
				var err error
				if tool == "slolab" {
					x, err = slolabRung(s, up, rate, cfg.Step)
				} else {
					x, err = vegetaRung(s, up, rate, cfg.Step)
				}
				if err != nil {
					return "", fmt.Errorf("%s at %d/s: %w", tool, rate, err)
				}
				runs[tool][rate] = append(runs[tool][rate], x)
				progress("load round %d/%d %-6s %6d/s: p99 lag %s, sent %d/%d, %s CPU/request, peak RSS %s", r+1, cfg.Rounds, tool, rate, fmtMS(x.lag), x.sent, x.want, fmtDur(x.cpuPerRequest()), fmtKB(x.rssKB))
				climbed = append(climbed, x)
				if rate >= cfg.Through && (x.sent != x.want || x.lag >= hopeless*cfg.Bar) {
					break
				}
			}
			best[tool] = append(best[tool], sustained(cfg.Rates, climbed, cfg.Bar))
			strict[tool] = append(strict[tool], sustained(cfg.Rates, climbed, cfg.Bar/strictBar))
		}
	}
	return renderLoadgen(s, cfg, runs, best, strict, started, loadBefore), nil
}

const (
	hopeless  = 50 // past cfg.Through, stop climbing at 50 times the bar
	strictBar = 10 // the second, strict bar reported: a tenth of the bar
)

// sustained returns the highest rate whose rung, and every rung below it,
// kept the p99 lag under bar with every request sent (0 when the first did not).
func sustained(rates []int, climbed []rung, bar time.Duration) int {
	top := 0
	for i, x := range climbed {
		if !x.ok(bar) {
			break
		}
		top = rates[i]
	}
	return top
}

func slolabRung(s *session, up string, rate int, step time.Duration) (rung, error) {
	x := rung{want: rate * int(step/time.Second)}
	cmd := exec.CommandContext(s.ctx, s.slolab, "load", "--spec", loadSpec, "--target", "http://"+up, "--rate", fmt.Sprintf("%d/s", rate),
		"--duration", step.String(), "--seed", "1", "--progress", "0", "-o", "json")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	var err error
	if x.rssKB, err = runPeakRSS(cmd); err != nil {
		return x, fmt.Errorf("slolab load: %w", err)
	}
	x.cpu = cpuOf(cmd)
	out := stdout.Bytes()
	var rep load.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		return x, fmt.Errorf("slolab load -o json: %w", err)
	}
	x.sent, x.errors = int(rep.Total.Sent), int(rep.Total.Sent-rep.Total.Status.C2xx)
	x.lag = time.Duration(rep.ScheduleLag.P99)
	return x, nil
}

// vegetaRung runs `vegeta attack -lazy` without a duration on exactly the
// rung's number of targets: it sends them all at the rate, however late,
// and stops when they run out.
func vegetaRung(s *session, up string, rate int, step time.Duration) (rung, error) {
	x := rung{want: rate * int(step/time.Second)}
	bin := filepath.Join(s.dir, "vegeta.bin")
	f, err := os.Create(bin)
	if err != nil {
		return x, err
	}
	defer f.Close()
	cmd := exec.CommandContext(s.ctx, s.peers.vegeta, "attack", "-lazy", "-rate", fmt.Sprintf("%d/s", rate), "-duration", "0")
	cmd.Stdin = strings.NewReader(strings.Repeat("GET http://"+up+"/\n", x.want))
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if x.rssKB, err = runPeakRSS(cmd); err != nil {
		return x, fmt.Errorf("vegeta attack: %w\n%s", err, stderr.Bytes())
	}
	x.cpu = cpuOf(cmd)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return x, err
	}
	enc := exec.CommandContext(s.ctx, s.peers.vegeta, "encode", "--to", "csv")
	enc.Stdin = f
	out, err := enc.Output()
	if err != nil {
		return x, fmt.Errorf("vegeta encode: %w", err)
	}
	x.lag, x.sent, x.errors, err = vegetaLag(bytes.NewReader(out), rate)
	return x, err
}

// cpuOf returns the user and system time a finished command used.
func cpuOf(cmd *exec.Cmd) time.Duration {
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vegetaNoTargets is the error of the hits vegeta -lazy starts after its
// targets ran out: they were never sent.
const vegetaNoTargets = "no targets to attack"

// vegetaLag derives the p99 schedule lag of a vegeta attack from
// `vegeta encode --to csv`, whose rows carry each hit's timestamp (taken when
// a worker starts the hit) and its sequence number. vegeta's constant pacer
// sends hit k (from 0) at began + (k+1)/rate; began is not recorded, so it is
// taken as min over k of (timestamp_k − (k+1)/rate): the least-lagged hit is
// assumed on time, which makes the figure a lower bound, slightly flattering
// vegeta. It also returns the number of hits and of non-200 answers; the
// hits started after the targets ran out are not counted.
func vegetaLag(r io.Reader, rate int) (p99 time.Duration, hits, errs int, err error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	interval := float64(time.Second) / float64(rate)
	var offsets []float64 // timestamp_k − (k+1)/rate, in ns
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("vegeta csv: %w", err)
		}
		if len(rec) < 9 {
			return 0, 0, 0, fmt.Errorf("vegeta csv: %d fields, want at least 9 (timestamp … seq)", len(rec))
		}
		if rec[5] == vegetaNoTargets {
			continue
		}
		ts, err1 := strconv.ParseInt(rec[0], 10, 64)
		seq, err2 := strconv.ParseInt(rec[8], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, 0, fmt.Errorf("vegeta csv: timestamp %q, seq %q", rec[0], rec[8])
		}
		if rec[1] != "200" {
			errs++
		}
		offsets = append(offsets, float64(ts)-float64(seq+1)*interval)
	}
	if len(offsets) == 0 {
		return 0, 0, errs, errors.New("vegeta sent nothing")
	}
	t0 := slices.Min(offsets)
	lags := make([]time.Duration, len(offsets))
	for i, o := range offsets {
		lags[i] = time.Duration(o - t0)
	}
	slices.Sort(lags)
	return quantileDur(lags, 0.99), len(lags), errs, nil
}

// ladderCell summarizes one tool's rounds at one rung: the median p99 lag,
// sent/planned summed, the median CPU per request and the median peak RSS.
type ladderCell struct {
	lag, cpu   time.Duration
	sent, want int
	rssKB      float64
}

func cellOf(xs []rung) (ladderCell, bool) {
	if len(xs) == 0 {
		return ladderCell{}, false
	}
	var c ladderCell
	lags, cpus, rss := make([]time.Duration, len(xs)), make([]time.Duration, len(xs)), make([]float64, len(xs))
	for i, x := range xs {
		lags[i], cpus[i], rss[i] = x.lag, x.cpuPerRequest(), float64(x.rssKB)
		c.sent += x.sent
		c.want += x.want
	}
	c.lag, c.cpu, c.rssKB = medianDur(lags), medianDur(cpus), median(rss)
	return c, true
}

func renderLoadgen(s *session, cfg loadgenConfig, runs map[string]map[int][]rung, best, strict map[string][]int, started time.Time, loadBefore string) string {
	var b bytes.Buffer
	rates := make([]string, len(cfg.Rates))
	for i, r := range cfg.Rates {
		rates[i] = strconv.Itoa(r)
	}
	runLine(&b, started, loadBefore, fmt.Sprintf("-only load -load-rounds %d -load-step %s -load-rates %s -load-bar %s -load-through %d -load-rss-rate %d",
		cfg.Rounds, cfg.Step, strings.Join(rates, ","), cfg.Bar, cfg.Through, cfg.RSSRate))
	fmt.Fprintf(&b, "slolab's generator (`slolab load`) and vegeta %s (`vegeta attack -lazy`, otherwise default settings) against the raw upstream, in %d rounds (the tool that goes first alternates). "+
		"Each climbs the ladder %s req/s, %s of requests per rung; the highest rate it **sustains** is the top of the unbroken run of rungs from the bottom where it **sent every planned request** and its **p99 schedule lag** (actual − intended send time) stayed under %s. "+
		"Both tools are held to the same terms: each is given exactly the rung's requests and sends every one of them however late (vegeta reads exactly that many targets and runs without `-duration`, which would stop it at the deadline and leave its lagging hits unsent), so a late send counts in the lag for both, and a request never sent (slolab drops one that falls due while `--max-in-flight` requests wait) fails the rung for both. "+
		"Every rung up to %d/s runs for both tools whatever the rungs below gave; past it, a tool stops where it drops requests or lags 50 times the bar. "+
		"slolab measures its lag itself (`scheduleLag` in `-o json`); vegeta's is derived from `vegeta encode --to csv` (hit k is due at began + (k+1)/rate; began, unrecorded, is taken from the least-lagged hit, so vegeta's figure is a lower bound). "+
		"CPU is the process's user + system time over the requests it sent; peak RSS its VmHWM, sampled every 20 ms. slolab also sends its three identity headers (user header, cookie, X-Forwarded-For) with each request.\n\n",
		s.peers.versions["vegeta"], cfg.Rounds, strings.Join(rates, ", "), cfg.Step, fmtMS(cfg.Bar), cfg.Through)
	b.WriteString("| rate | slolab p99 lag | sent | CPU / request | peak RSS | vegeta p99 lag | sent | CPU / request | peak RSS |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cells := func(xs []rung) string {
		c, ok := cellOf(xs)
		if !ok {
			return "— | — | — | —"
		}
		return fmt.Sprintf("%s | %d/%d | %s | %s", fmtMS(c.lag), c.sent, c.want, fmtDur(c.cpu), fmtKB(int64(c.rssKB)))
	}
	for _, rate := range cfg.Rates {
		sl, vg := runs["slolab"][rate], runs["vegeta"][rate]
		if len(sl) == 0 && len(vg) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %d/s | %s | %s |\n", rate, cells(sl), cells(vg))
	}
	b.WriteString("\nLag, CPU and RSS are medians over the rounds that reached the rung; sent counts are summed over them.\n\n")
	ms := func(m map[string][]int, t string) float64 {
		xs := make([]float64, len(m[t]))
		for i, x := range m[t] {
			xs[i] = float64(x)
		}
		return median(xs)
	}
	sl, vg := ms(best, "slolab"), ms(best, "vegeta")
	ssl, svg := ms(strict, "slolab"), ms(strict, "vegeta")
	fmt.Fprintf(&b, "Highest rate sustained (every request sent, p99 schedule lag under %s), per round: slolab %v, vegeta %v; medians **slolab %.0f/s, vegeta %.0f/s** (ratio %s). "+
		"Under a strict bar of %s: slolab %v, vegeta %v; medians %.0f/s and %.0f/s (ratio %s).\n\nReading:\n\n",
		fmtMS(cfg.Bar), best["slolab"], best["vegeta"], sl, vg, fmtRatio(sl/vg),
		fmtMS(cfg.Bar/strictBar), strict["slolab"], strict["vegeta"], ssl, svg, fmtRatio(ssl/svg))
	b.WriteString(sustainedReading(cfg, runs, sl, vg))
	b.WriteString(sentInFullReading(cfg, runs))
	b.WriteString(cpuReading(cfg, runs))
	b.WriteString(rssReading(cfg, runs))
	return b.String()
}

// sustainedReading compares the sustained rates and judges the goal. When
// either tool sustained no rung the ratio means nothing, so the verdict
// comes from the rungs both ran instead, and the goal is not judged met.
func sustainedReading(cfg loadgenConfig, runs map[string]map[int][]rung, sl, vg float64) string {
	var b strings.Builder
	if sl > 0 && vg > 0 {
		r := sl / vg
		b.WriteString(reading(verdict(r), fmt.Sprintf("slolab's generator sustains %.0f req/s with every request sent and p99 schedule lag under %s, %s× vegeta's %.0f req/s.", sl, fmtMS(cfg.Bar), fmtRatio(r), vg)))
		v, verb := "meets goal", "at least"
		if r < goalSustainedRatio {
			v, verb = "misses goal", "under"
		}
		b.WriteString(reading(v, fmt.Sprintf("Sustained rate %s× vegeta's, %s the goal of %.1f×.", fmtRatio(r), verb, goalSustainedRatio)))
		return b.String()
	}
	lower, higher, both := 0, 0, 0
	for _, rate := range cfg.Rates {
		a, okA := cellOf(runs["slolab"][rate])
		v, okV := cellOf(runs["vegeta"][rate])
		if !okA || !okV {
			continue
		}
		both++
		switch latencyVerdict(a.lag, v.lag) {
		case "leads":
			lower++
		case "trails":
			higher++
		}
	}
	v := "on par" // a majority of the rungs decides
	switch {
	case 2*lower > both:
		v = "leads"
	case 2*higher > both:
		v = "trails"
	}
	none := "neither generator sustained a rung"
	switch {
	case sl > 0:
		none = "vegeta sustained no rung"
	case vg > 0:
		none = "slolab's generator sustained no rung"
	}
	b.WriteString(reading(v, fmt.Sprintf("slolab's generator sustains %.0f req/s and vegeta %.0f req/s: %s, so their ratio means nothing; "+
		"rung by rung, slolab's p99 schedule lag was lower at %d and higher at %d of the %d rungs both ran (within 20%% or 1 ms counts as even).", sl, vg, none, lower, higher, both)))
	b.WriteString(reading("misses goal", fmt.Sprintf("The goal of %.1f× vegeta's sustained rate cannot be judged when %s; run again on a quieter machine.", goalSustainedRatio, none)))
	return b.String()
}

// sentInFullReading judges the goal that slolab sends every request at
// every rung up to cfg.Through.
func sentInFullReading(cfg loadgenConfig, runs map[string]map[int][]rung) string {
	var short []string
	ran := 0
	for _, rate := range cfg.Rates {
		if rate > cfg.Through {
			break
		}
		for _, x := range runs["slolab"][rate] {
			ran++
			if x.sent != x.want {
				short = append(short, fmt.Sprintf("%d/%d at %d/s", x.sent, x.want, rate))
			}
		}
	}
	if ran == 0 {
		return ""
	}
	if len(short) == 0 {
		return reading("meets goal", fmt.Sprintf("slolab's generator sent every planned request at every rung up to %d/s in every round.", cfg.Through))
	}
	return reading("misses goal", fmt.Sprintf("slolab's generator did not send every planned request at every rung up to %d/s: %s.", cfg.Through, strings.Join(short, ", ")))
}

// cpuReading compares the CPU each tool spends per request at the highest
// rung both sent in full in every round.
func cpuReading(cfg loadgenConfig, runs map[string]map[int][]rung) string {
	for i := len(cfg.Rates) - 1; i >= 0; i-- {
		rate := cfg.Rates[i]
		a, okA := cellOf(runs["slolab"][rate])
		v, okV := cellOf(runs["vegeta"][rate])
		if !okA || !okV || a.sent != a.want || v.sent != v.want || a.cpu <= 0 {
			continue
		}
		r := float64(v.cpu) / float64(a.cpu)
		return reading(verdict(r), fmt.Sprintf("At %d req/s, the highest rung both sent in full, slolab's generator used %s of CPU per request and vegeta %s (%s× slolab's).", rate, fmtDur(a.cpu), fmtDur(v.cpu), fmtRatio(r)))
	}
	return ""
}

// rssReading compares peak memory at cfg.RSSRate and judges the goal there.
func rssReading(cfg loadgenConfig, runs map[string]map[int][]rung) string {
	a, okA := cellOf(runs["slolab"][cfg.RSSRate])
	v, okV := cellOf(runs["vegeta"][cfg.RSSRate])
	if !okA || !okV || v.rssKB <= 0 {
		return reading("misses goal", fmt.Sprintf("Peak memory was not compared at %d req/s: the ladder did not take both generators there.", cfg.RSSRate))
	}
	r := a.rssKB / v.rssKB
	var b strings.Builder
	b.WriteString(reading(verdict(v.rssKB/a.rssKB), fmt.Sprintf("At %d req/s slolab's generator peaked at %s resident, vegeta at %s.", cfg.RSSRate, fmtKB(int64(a.rssKB)), fmtKB(int64(v.rssKB)))))
	g, verb := "meets goal", "within"
	if r > goalRSSRatio {
		g, verb = "misses goal", "over"
	}
	b.WriteString(reading(g, fmt.Sprintf("Peak RSS at %d req/s %s× vegeta's, %s the goal of %.0f×.", cfg.RSSRate, fmtRatio(r), verb, goalRSSRatio)))
	return b.String()
}
