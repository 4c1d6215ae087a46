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
	"time"

	"slolab.dev/slolab/load"
)

// loadgenConfig sizes the load-generator benchmark.
type loadgenConfig struct {
	Rounds int
	Step   time.Duration // how long each rung of the ladder runs
	Rates  []int         // the ladder, ascending
	Bar    time.Duration // the p99 schedule lag a sustained rate must stay under
}

const loadSpec = "bench/load/bench.yaml"

// rung is one tool's run at one rate.
type rung struct {
	lag        time.Duration // p99 schedule lag
	sent, want int
	errors     int
	rssKB      int64
}

func (r rung) ok(bar time.Duration) bool { return r.lag < bar && r.sent == r.want }

var generators = []string{"slolab", "vegeta"}

// runLoadgen climbs a ladder of rates with slolab's generator and vegeta,
// interleaved, and finds per tool the highest rate whose p99 schedule lag
// stays under the bar with every request sent.
func runLoadgen(s *session, cfg loadgenConfig) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	g := s.group()
	defer g.stop()
	up, err := s.upstream(g)
	if err != nil {
		return "", err
	}
	runs := map[string]map[int][]rung{"slolab": {}, "vegeta": {}}
	best, relaxed := map[string][]int{}, map[string][]int{}
	for r := range cfg.Rounds {
		order := slices.Clone(generators)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, tool := range order {
			// Climb past the first miss (so the table compares the tools
			// rung by rung on a busy machine too) until the tool drops
			// requests or lags hopelessly.
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
				progress("load round %d/%d %-6s %6d/s: p99 lag %s, sent %d/%d, peak RSS %s", r+1, cfg.Rounds, tool, rate, fmtMS(x.lag), x.sent, x.want, fmtKB(x.rssKB))
				climbed = append(climbed, x)
				if x.sent != x.want || x.lag >= hopeless*cfg.Bar {
					break
				}
			}
			best[tool] = append(best[tool], sustained(cfg.Rates, climbed, cfg.Bar))
			relaxed[tool] = append(relaxed[tool], sustained(cfg.Rates, climbed, relaxedBar*cfg.Bar))
		}
	}
	return renderLoadgen(s, cfg, runs, best, relaxed, started, loadBefore), nil
}

const (
	hopeless   = 50 // stop climbing at 50 times the bar
	relaxedBar = 10 // the second, relaxed bar reported: 10 times the bar
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
	out := stdout.Bytes()
	var rep load.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		return x, fmt.Errorf("slolab load -o json: %w", err)
	}
	x.sent, x.errors = int(rep.Total.Sent), int(rep.Total.Sent-rep.Total.Status.C2xx)
	x.lag = time.Duration(rep.ScheduleLag.P99)
	return x, nil
}

func vegetaRung(s *session, up string, rate int, step time.Duration) (rung, error) {
	x := rung{want: rate * int(step/time.Second)}
	bin := filepath.Join(s.dir, "vegeta.bin")
	f, err := os.Create(bin)
	if err != nil {
		return x, err
	}
	defer f.Close()
	cmd := exec.CommandContext(s.ctx, s.peers.vegeta, "attack", "-rate", fmt.Sprintf("%d/s", rate), "-duration", step.String())
	cmd.Stdin = strings.NewReader("GET http://" + up + "/\n")
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if x.rssKB, err = runPeakRSS(cmd); err != nil {
		return x, fmt.Errorf("vegeta attack: %w\n%s", err, stderr.Bytes())
	}
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

// vegetaLag derives the p99 schedule lag of a vegeta attack from
// `vegeta encode --to csv`, whose rows carry each hit's timestamp (taken when
// a worker starts the hit) and its sequence number. vegeta's constant pacer
// sends hit k (from 0) at began + (k+1)/rate; began is not recorded, so it is
// taken as min over k of (timestamp_k − (k+1)/rate): the least-lagged hit is
// assumed on time, which makes the figure a lower bound, slightly flattering
// vegeta. It also returns the number of hits and of non-200 answers.
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

func renderLoadgen(s *session, cfg loadgenConfig, runs map[string]map[int][]rung, best, relaxed map[string][]int, started time.Time, loadBefore string) string {
	var b bytes.Buffer
	rates := make([]string, len(cfg.Rates))
	for i, r := range cfg.Rates {
		rates[i] = strconv.Itoa(r)
	}
	runLine(&b, started, loadBefore, fmt.Sprintf("-only load -load-rounds %d -load-step %s -load-rates %s", cfg.Rounds, cfg.Step, strings.Join(rates, ",")))
	fmt.Fprintf(&b, "slolab's generator (`slolab load`) and vegeta %s (`vegeta attack`, default settings) against the raw upstream, in %d rounds (the tool that goes first alternates). "+
		"Each climbs the ladder %s req/s, %s per rung; the highest rate it **sustains** is the top of the unbroken run of rungs from the bottom where its **p99 schedule lag** (actual − intended send time) stayed under %s with every request sent. "+
		"It climbs on past a miss, so that the table compares the tools rung by rung, and stops where it drops requests or lags 50 times the bar. "+
		"slolab measures its lag itself (`scheduleLag` in `-o json`); vegeta's is derived from `vegeta encode --to csv` (hit k is due at began + (k+1)/rate; began, unrecorded, is taken from the least-lagged hit, so vegeta's figure is a lower bound). "+
		"Peak RSS is the process's VmHWM, sampled every 20 ms. slolab also sends its three identity headers (user header, cookie, X-Forwarded-For) with each request.\n\n",
		s.peers.versions["vegeta"], cfg.Rounds, strings.Join(rates, ", "), cfg.Step, fmtMS(cfg.Bar))
	b.WriteString("| rate | slolab p99 lag | sent | peak RSS | vegeta p99 lag | sent | peak RSS |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	cell := func(xs []rung) (string, string, string) {
		if len(xs) == 0 {
			return "—", "—", "—"
		}
		lags, rss := make([]time.Duration, len(xs)), make([]float64, len(xs))
		sent, want := 0, 0
		for i, x := range xs {
			lags[i], rss[i] = x.lag, float64(x.rssKB)
			sent += x.sent
			want += x.want
		}
		return fmtMS(medianDur(lags)), fmt.Sprintf("%d/%d", sent, want), fmtKB(int64(median(rss)))
	}
	for _, rate := range cfg.Rates {
		sl, vg := runs["slolab"][rate], runs["vegeta"][rate]
		if len(sl) == 0 && len(vg) == 0 {
			continue
		}
		a1, a2, a3 := cell(sl)
		v1, v2, v3 := cell(vg)
		fmt.Fprintf(&b, "| %d/s | %s | %s | %s | %s | %s | %s |\n", rate, a1, a2, a3, v1, v2, v3)
	}
	b.WriteString("\nLag and RSS are medians over the rounds that reached the rung; sent counts are summed over them.\n\n")
	ms := func(m map[string][]int, t string) float64 {
		xs := make([]float64, len(m[t]))
		for i, x := range m[t] {
			xs[i] = float64(x)
		}
		return median(xs)
	}
	sl, vg := ms(best, "slolab"), ms(best, "vegeta")
	rsl, rvg := ms(relaxed, "slolab"), ms(relaxed, "vegeta")
	fmt.Fprintf(&b, "Highest rate sustained with p99 schedule lag under %s, per round: slolab %v, vegeta %v; medians **slolab %.0f/s, vegeta %.0f/s** (ratio %s). "+
		"Under a relaxed bar of %s: slolab %v, vegeta %v; medians %.0f/s and %.0f/s (ratio %s).\n\nReading:\n\n",
		fmtMS(cfg.Bar), best["slolab"], best["vegeta"], sl, vg, fmtRatio(sl/vg),
		fmtMS(relaxedBar*cfg.Bar), relaxed["slolab"], relaxed["vegeta"], rsl, rvg, fmtRatio(rsl/rvg))
	switch {
	case sl == 0 && vg == 0 && rsl == 0 && rvg == 0:
		b.WriteString(reading("on par", fmt.Sprintf("Neither generator held p99 schedule lag under %s (nor under %s) even at %d req/s on this machine during this run; compare the lags rung by rung above.",
			fmtMS(cfg.Bar), fmtMS(relaxedBar*cfg.Bar), cfg.Rates[0])))
	case sl == 0 && vg == 0:
		b.WriteString(reading(verdict(rsl/rvg), fmt.Sprintf("Neither generator held p99 schedule lag under %s on this machine during this run; under %s slolab's sustains %.0f req/s, %s× vegeta's %.0f req/s.",
			fmtMS(cfg.Bar), fmtMS(relaxedBar*cfg.Bar), rsl, fmtRatio(rsl/rvg), rvg)))
	case vg == 0:
		relaxedText := fmt.Sprintf("under %s, slolab's sustains %.0f req/s and vegeta's %.0f req/s", fmtMS(relaxedBar*cfg.Bar), rsl, rvg)
		if rvg > 0 {
			relaxedText += fmt.Sprintf(" (%s×)", fmtRatio(rsl/rvg))
		}
		b.WriteString(reading("leads", fmt.Sprintf("slolab's generator sustains %.0f req/s with p99 schedule lag under %s; vegeta held that bar at no rate, not even %d req/s; %s.",
			sl, fmtMS(cfg.Bar), cfg.Rates[0], relaxedText)))
	default:
		b.WriteString(reading(verdict(sl/vg), fmt.Sprintf("slolab's generator sustains %.0f req/s with p99 schedule lag under %s, %s× vegeta's %.0f req/s.", sl, fmtMS(cfg.Bar), fmtRatio(sl/vg), vg)))
	}
	// Memory at the highest rung both reached.
	for i := len(cfg.Rates) - 1; i >= 0; i-- {
		sr, vr := runs["slolab"][cfg.Rates[i]], runs["vegeta"][cfg.Rates[i]]
		if len(sr) == 0 || len(vr) == 0 {
			continue
		}
		_, _, a := cell(sr)
		_, _, v := cell(vr)
		ratio := median(rssOf(vr)) / median(rssOf(sr))
		b.WriteString(reading(verdict(ratio), fmt.Sprintf("At %d req/s slolab's generator peaked at %s resident, vegeta at %s.", cfg.Rates[i], a, v)))
		break
	}
	return b.String()
}

func rssOf(xs []rung) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x.rssKB)
	}
	return out
}
