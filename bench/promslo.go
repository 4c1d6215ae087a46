package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
)

// promSLOConfig sizes the benchmark of `slo status` against Prometheus.
type promSLOConfig struct {
	CUJs       int           // an availability and a latency SLO each
	Members    int           // proxies whose metrics Prometheus holds
	Days       int           // of minute-by-minute scrapes
	Iterations int           // statuses timed from the recorded increases
	Counters   bool          // also time one status from the counters, and compare
	Cache      string        // where the backfilled TSDB is kept between runs ("" for none)
	Timeout    time.Duration // Prometheus' query timeout, for the status from the counters
}

// goalPromStatus is issue 18's goal for a status of 200 SLOs over 30 days
// of three members' metrics, read from the recorded increases.
const goalPromStatus = 2 * time.Second

// promSLOThresholds are the CUJs' latency thresholds, in turn.
var promSLOThresholds = []string{"300ms", "500ms", "1s"}

// promSLOSpec is the benchmark's service: CUJs cuj-000…, each with an
// availability and a latency SLO on a 30-day window.
func promSLOSpec(cujs int) string {
	var b strings.Builder
	b.WriteString("# The Prometheus benchmark's service (bench/promslo.go): generated.\napiVersion: slolab.dev/v1\nkind: Service\nmetadata: {name: fleet}\nspec:\n  cujs:\n")
	for i := range cujs {
		fmt.Fprintf(&b, "    - {name: cuj-%03d, owner: team, routes: [\"GET /c/%d\"], availability: {objective: 99.9%%, window: 30d}, latency: {threshold: %s, objective: 99%%, window: 30d}}\n",
			i, i, promSLOThresholds[i%len(promSLOThresholds)])
	}
	return b.String()
}

// minuteCounts is what member m's proxy counted for CUJ c in minute k: a
// pure function of (c, m, k), so every series can be written on its own.
// 20–59 requests a minute, one failure in about 64 minutes and a slow
// request in about 8, and every 10th CUJ failing a quarter of its requests
// in its last hour, so that its page fires.
func minuteCounts(c, m, k, minutes int) (total, bad, fast uint64) {
	x := splitmix(uint64(c)<<40 ^ uint64(m)<<32 ^ uint64(k))
	total = 20 + x%40
	if x>>8%64 == 0 {
		bad = 1
	}
	fast = total
	if x>>16%8 == 0 {
		fast--
	}
	if c%10 == 0 && k >= minutes-60 {
		bad = total / 4
	}
	return total, bad, fast
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// writePromSLOMetrics writes what Prometheus would have scraped every
// minute from the members' proxies over the minutes after start, as
// OpenMetrics for promtool: per member and CUJ, requests by code (200 and
// 503) and the duration histogram's buckets at 100ms, the CUJ's threshold
// and +Inf.
func writePromSLOMetrics(w io.Writer, cfg promSLOConfig, start time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	minutes := cfg.Days * 24 * 60
	var line []byte
	sample := func(prefix []byte, v uint64, k int) {
		line = append(line[:0], prefix...)
		line = strconv.AppendUint(line, v, 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, start.Unix()+int64(k)*60, 10)
		line = append(line, '\n')
		_, _ = bw.Write(line)
	}
	fmt.Fprintf(bw, "# HELP slolab_requests requests\n# TYPE slolab_requests counter\n")
	for c := range cfg.CUJs {
		for m := range cfg.Members {
			for _, code := range []string{"200", "503"} {
				prefix := fmt.Appendf(nil, "%s{cuj=\"cuj-%03d\",code=%q,instance=\"m%d\"} ", sli.MetricRequests, c, code, m+1)
				var v uint64
				for k := 0; k <= minutes; k++ {
					sample(prefix, v, k)
					if k < minutes {
						total, bad, _ := minuteCounts(c, m, k, minutes)
						if code == "503" {
							v += bad
						} else {
							v += total - bad
						}
					}
				}
			}
		}
	}
	fmt.Fprintf(bw, "# HELP %s duration\n# TYPE %s histogram\n", sli.MetricDuration, sli.MetricDuration)
	for c := range cfg.CUJs {
		thr, _ := time.ParseDuration(promSLOThresholds[c%len(promSLOThresholds)])
		les := []string{"0.1", strconv.FormatFloat(thr.Seconds(), 'g', -1, 64), "+Inf"}
		for m := range cfg.Members {
			prefixes := make([][]byte, len(les))
			for i, le := range les {
				prefixes[i] = fmt.Appendf(nil, "%s_bucket{cuj=\"cuj-%03d\",instance=\"m%d\",le=%q} ", sli.MetricDuration, c, m+1, le)
			}
			var under100, fast, all uint64
			for k := 0; k <= minutes; k++ {
				sample(prefixes[0], under100, k)
				sample(prefixes[1], fast, k)
				sample(prefixes[2], all, k)
				if k < minutes {
					total, _, f := minuteCounts(c, m, k, minutes)
					under100 += f / 2
					fast += f
					all += total
				}
			}
		}
	}
	fmt.Fprintln(bw, "# EOF")
	return bw.Flush()
}

// promSLOData returns a TSDB directory holding the members' metrics and the
// generated rules' per-minute increases over them, both backfilled with
// promtool, and when its data ends. It is built once per configuration and
// version of the rules, then kept in cfg.Cache.
func promSLOData(s *session, cfg promSLOConfig, specPath string) (dir string, end time.Time, built time.Duration, err error) {
	rules, err := exec.CommandContext(s.ctx, s.slolab, "gen", "prometheus", "--spec", specPath).Output()
	if err != nil {
		return "", time.Time{}, 0, fmt.Errorf("slolab gen prometheus: %w", err)
	}
	increases, err := increasesGroup(rules)
	if err != nil {
		return "", time.Time{}, 0, err
	}
	// The data ends at a fixed minute, so that a cached copy stays valid.
	end = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	sum := sha256.Sum256(fmt.Appendf(nil, "v1 %d %d %d %s\n%s", cfg.CUJs, cfg.Members, cfg.Days, end, increases))
	key := "promslo-" + hex.EncodeToString(sum[:8])
	base := cfg.Cache
	if base == "" {
		base = s.dir
	}
	dir = filepath.Join(base, key)
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return dir, end, 0, nil
	}
	t0 := time.Now()
	_ = os.RemoveAll(dir)
	work := dir + ".work"
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", end, 0, err
	}
	defer func() { _ = os.RemoveAll(work) }()
	promtool := lookTool("promtool")
	if promtool == "" {
		return "", end, 0, fmt.Errorf("promtool not found: install Debian's prometheus package")
	}
	start := end.Add(-time.Duration(cfg.Days) * 24 * time.Hour)
	om := filepath.Join(work, "metrics.om")
	f, err := os.Create(om)
	if err != nil {
		return "", end, 0, err
	}
	progress("slo-prometheus: writing %d days of %d members' metrics for %d CUJs", cfg.Days, cfg.Members, cfg.CUJs)
	if err := writePromSLOMetrics(f, cfg, start); err != nil {
		f.Close()
		return "", end, 0, err
	}
	if err := f.Close(); err != nil {
		return "", end, 0, err
	}
	raw := filepath.Join(work, "raw")
	progress("slo-prometheus: promtool tsdb create-blocks-from openmetrics")
	// Blocks of up to 20 days (promtool reads its input once per block, and
	// Prometheus reads fewer blocks faster).
	if out, err := exec.CommandContext(s.ctx, promtool, "tsdb", "create-blocks-from", "--max-block-duration=486h", "openmetrics", om, raw).CombinedOutput(); err != nil {
		return "", end, 0, fmt.Errorf("promtool openmetrics backfill: %w\n%s", err, tail(out))
	}
	_ = os.Remove(om)
	// The rules are backfilled as an operator adding them would: promtool
	// evaluates them against a Prometheus holding the counters.
	rulesPath := filepath.Join(work, "increases.rules.yaml")
	if err := os.WriteFile(rulesPath, increases, 0o644); err != nil {
		return "", end, 0, err
	}
	g := s.group()
	url, _, err := startPrometheus(s, g, raw, cfg.Timeout)
	if err != nil {
		g.stop()
		return "", end, 0, err
	}
	recorded := filepath.Join(work, "recorded")
	progress("slo-prometheus: promtool tsdb create-blocks-from rules")
	// Blocks of up to 6.75 days: promtool asks for a block's samples in one
	// range query, and Prometheus answers at most 11,000 steps.
	out, err := exec.CommandContext(s.ctx, promtool, "tsdb", "create-blocks-from", "--max-block-duration=162h", "rules", "--url", url,
		"--start", strconv.FormatInt(start.Unix(), 10), "--end", strconv.FormatInt(end.Add(2*time.Minute).Unix(), 10),
		"--output-dir", recorded, rulesPath).CombinedOutput()
	g.stop()
	if err != nil {
		return "", end, 0, fmt.Errorf("promtool rules backfill: %w\n%s", err, tail(out))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", end, 0, err
	}
	for _, from := range []string{raw, recorded} {
		if err := moveBlocks(from, dir); err != nil {
			return "", end, 0, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "complete"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", end, 0, err
	}
	return dir, end, time.Since(t0), nil
}

// increasesGroup keeps the group slolab-SERVICE-increases of generated rules.
func increasesGroup(rules []byte) ([]byte, error) {
	i := bytes.Index(rules, []byte("  - name: slolab-fleet-increases\n"))
	if i < 0 {
		return nil, fmt.Errorf("slolab gen prometheus wrote no group slolab-fleet-increases")
	}
	return append([]byte("groups:\n"), rules[i:]...), nil
}

// moveBlocks moves the TSDB blocks (ULID directories) of src into dst.
func moveBlocks(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 26 {
			if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// startPrometheus serves the TSDB in dataDir (which it may write to) on
// loopback and returns its URL once it is ready.
func startPrometheus(s *session, g *group, dataDir string, timeout time.Duration) (string, int, error) {
	bin := lookTool("prometheus")
	if bin == "" {
		return "", 0, fmt.Errorf("prometheus not found: install Debian's prometheus package")
	}
	cfgPath := filepath.Join(s.dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte("global: {scrape_interval: 1m}\n"), 0o644); err != nil {
		return "", 0, err
	}
	addr := freeAddr()
	cmd, _, err := g.start(false, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+dataDir, "--web.listen-address="+addr,
		"--storage.tsdb.retention.time=10y", "--query.timeout="+timeout.String(), "--log.level=warn")
	if err != nil {
		return "", 0, err
	}
	url := "http://" + addr
	for range 600 {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, cmd.Process.Pid, nil
			}
		}
		if s.ctx.Err() != nil {
			return "", 0, s.ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", 0, fmt.Errorf("prometheus on %s not ready after 60s", dataDir)
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

// statusRun is one `slo status` process: its wall time and the status it
// printed, without the line naming its source.
type statusRun struct {
	wall    time.Duration
	cpu     time.Duration // slolab's user + system time
	promCPU time.Duration // Prometheus' user + system time meanwhile
	out     []byte
}

func sloStatus(s *session, specPath, url string, promPID int, at time.Time, recorded bool) (statusRun, error) {
	args := []string{"slo", "status", "--spec", specPath, "--prometheus", url, "--at", at.Format(time.RFC3339), "-o", "json"}
	if recorded {
		args = append(args, "--prometheus-recorded")
	}
	cmd := exec.CommandContext(s.ctx, s.slolab, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0, p0 := time.Now(), procCPU(promPID)
	out, err := cmd.Output()
	r := statusRun{wall: time.Since(t0), promCPU: procCPU(promPID) - p0}
	if cmd.ProcessState != nil {
		r.cpu = cpuOf(cmd)
	}
	if err != nil {
		return r, fmt.Errorf("slolab %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var st slo.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return r, fmt.Errorf("slo status -o json: %w", err)
	}
	r.out, err = json.Marshal(st)
	return r, err
}

// runPromSLO times `slolab slo status` of the benchmark's SLOs from a real
// Prometheus, from the recorded increases and once from the counters.
func runPromSLO(s *session, cfg promSLOConfig) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	specPath := filepath.Join(s.dir, "fleet.yaml")
	if err := os.WriteFile(specPath, []byte(promSLOSpec(cfg.CUJs)), 0o644); err != nil {
		return "", err
	}
	data, end, built, err := promSLOData(s, cfg, specPath)
	if err != nil {
		return "", err
	}
	// Serve a copy: Prometheus writes to its data directory.
	serve := filepath.Join(s.dir, "promslo-serve")
	if out, err := exec.CommandContext(s.ctx, "cp", "-r", data, serve).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copying the TSDB: %w\n%s", err, out)
	}
	defer func() { _ = os.RemoveAll(serve) }()
	g := s.group()
	defer g.stop()
	url, promPID, err := startPrometheus(s, g, serve, cfg.Timeout)
	if err != nil {
		return "", err
	}
	// One status first, untimed: Prometheus pages the blocks in.
	first, err := sloStatus(s, specPath, url, promPID, end, true)
	if err != nil {
		return "", err
	}
	var runs []statusRun
	for i := range cfg.Iterations {
		r, err := sloStatus(s, specPath, url, promPID, end, true)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(r.out, first.out) {
			return "", fmt.Errorf("status %d from the records differs from the first", i+1)
		}
		runs = append(runs, r)
		progress("slo-prometheus: status from the recorded increases %d/%d: %s (CPU: slolab %s, Prometheus %s)", i+1, cfg.Iterations, fmtDur(r.wall), fmtDur(r.cpu), fmtDur(r.promCPU))
	}
	var counters *statusRun
	if cfg.Counters {
		r, err := sloStatus(s, specPath, url, promPID, end, false)
		if err != nil {
			return "", err
		}
		progress("slo-prometheus: status from the counters: %s", fmtDur(r.wall))
		counters = &r
	}
	var st slo.Status
	if err := json.Unmarshal(first.out, &st); err != nil {
		return "", fmt.Errorf("slo status -o json: %w", err)
	}
	return renderPromSLO(cfg, st, first, runs, counters, built, started, loadBefore), nil
}

func renderPromSLO(cfg promSLOConfig, st slo.Status, first statusRun, runs []statusRun, counters *statusRun, built time.Duration, started time.Time, loadBefore string) string {
	walls, cpus, promCPUs := make([]time.Duration, len(runs)), make([]time.Duration, len(runs)), make([]time.Duration, len(runs))
	for i, r := range runs {
		walls[i], cpus[i], promCPUs[i] = r.wall, r.cpu, r.promCPU
	}
	var b bytes.Buffer
	flags := fmt.Sprintf("-only slo-prometheus -slo-prom-cujs %d -slo-prom-members %d -slo-prom-days %d -slo-prom-iterations %d -slo-prom-counters=%t",
		cfg.CUJs, cfg.Members, cfg.Days, cfg.Iterations, cfg.Counters)
	runLine(&b, started, loadBefore, flags)
	series := cfg.CUJs * cfg.Members * 5
	samples := series * (cfg.Days*24*60 + 1)
	var pages, events uint64
	for _, s := range st.SLOs {
		events += s.Events.Total
		for _, a := range s.Alerts {
			if a.Firing && a.Severity == "page" {
				pages++
			}
		}
	}
	fmt.Fprintf(&b, "`slolab slo status --prometheus URL --prometheus-recorded --at END -o json` of **%d SLOs** (%d CUJs, an availability and a latency SLO each, 30-day windows) from a real Prometheus (Debian's) holding **%d days of %d members' metrics**: "+
		"per member and CUJ, `%s` by code (200, 503) and the duration histogram's buckets at 100ms, the CUJ's threshold and +Inf, scraped every minute: %d series, %d samples, written as OpenMetrics and backfilled with `promtool tsdb create-blocks-from openmetrics`. "+
		"The rules of `slolab gen prometheus` for the per-minute increases (group `slolab-fleet-increases`) were backfilled over the same %[3]d days with `promtool tsdb create-blocks-from rules` against that Prometheus, as an operator adding them would. ",
		len(st.SLOs), cfg.CUJs, cfg.Days, cfg.Members, sli.MetricRequests, series, samples)
	if built > 0 {
		fmt.Fprintf(&b, "Building the data took %s in this run. ", fmtDur(built.Round(time.Second)))
	} else {
		b.WriteString("The backfilled data came from the cache of an earlier run (same CUJs, members, days and rules). ")
	}
	fmt.Fprintf(&b, "Each status is a fresh process (its start included), after one untimed status that pages the blocks in; %d timed.\n\n", len(walls))
	b.WriteString("CPU is the user + system time of the `slolab` process and of Prometheus during the status; on a shared machine it depends on the neighbours less than wall time does.\n\n")
	b.WriteString("| read from | statuses | wall time (median) | min | max | CPU: slolab | CPU: Prometheus |\n|---|---:|---:|---:|---:|---:|---:|\n")
	sorted := slices.Clone(walls)
	slices.Sort(sorted)
	med := medianDur(walls)
	fmt.Fprintf(&b, "| recorded increases (`--prometheus-recorded`) | %d | %s | %s | %s | %s | %s |\n", len(walls), fmtDur(med), fmtDur(sorted[0]), fmtDur(sorted[len(sorted)-1]), fmtDur(medianDur(cpus)), fmtDur(medianDur(promCPUs)))
	if counters != nil {
		fmt.Fprintf(&b, "| counters (subqueries) | 1 | %s | | | %s | %s |\n", fmtDur(counters.wall), fmtDur(counters.cpu), fmtDur(counters.promCPU))
	}
	fmt.Fprintf(&b, "\nThe status judged %d events over the SLOs' windows; %d page alerts fire (every 10th CUJ fails a quarter of its requests in its last hour).", events, pages)
	if counters != nil {
		if bytes.Equal(counters.out, first.out) {
			b.WriteString(" The status from the counters is identical, byte for byte, to the one from the records.")
		} else {
			b.WriteString(" **The status from the counters differs from the one from the records.**")
		}
	}
	b.WriteString("\n\nReading:\n\n")
	v, verb := "meets goal", "under"
	if med >= goalPromStatus {
		v, verb = "misses goal", "not under"
	}
	b.WriteString(reading(v, fmt.Sprintf("`slo status` of %d SLOs from a Prometheus holding %d days of %d members' metrics takes %s (median of %d) from the recorded increases, %s the goal of %s.",
		len(st.SLOs), cfg.Days, cfg.Members, fmtDur(med), len(walls), verb, fmtDur(goalPromStatus))))
	if counters != nil {
		same := "the same status"
		if !bytes.Equal(counters.out, first.out) {
			same = "a different status: a bug"
		}
		v := "meets goal"
		if !bytes.Equal(counters.out, first.out) {
			v = "misses goal"
		}
		b.WriteString(reading(v, fmt.Sprintf("From the counters the same status takes %s (%.0f× longer) and gives %s.", fmtDur(counters.wall), float64(counters.wall)/float64(med), same)))
	}
	return b.String()
}

// procCPU returns a process's user + system time so far, from /proc (0 when
// it cannot be read).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: state is the 3rd
	// field, utime the 14th and stime the 15th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100
