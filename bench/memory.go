package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memoryGoalMB is issue 18's goal for slolab's peak resident set with
// 10,000 connections.
const memoryGoalMB = 150

// memoryConfig sizes the memory benchmark.
type memoryConfig struct {
	Conns    int // connections held open at once
	Parallel int // connections being opened at a time
	Wave     int // requests in flight at once in the burst
}

type memSample struct {
	name, note                string
	procs                     int
	idleRSS, heldRSS, peakHWM int64 // kB
	errors                    int
}

// runMemory starts each proxy fresh, opens cfg.Conns keep-alive connections
// to it, each making one request, holds them all, then sends one more
// request on every connection at once, and reads the proxy's resident set.
func runMemory(s *session, cfg memoryConfig) (string, error) {
	started, loadBefore := time.Now(), loadAvg()
	limit, err := raiseFileLimit(uint64(2*cfg.Conns + 1024))
	if err != nil {
		return "", fmt.Errorf("raising the open-files limit: %w", err)
	}
	if limit < uint64(cfg.Conns+cfg.Wave+256) {
		return "", fmt.Errorf("the open-files limit is %d; %d connections and bursts of %d need about %d (raise ulimit -n)", limit, cfg.Conns, cfg.Wave, cfg.Conns+cfg.Wave+256)
	}
	var samples []memSample
	for _, target := range []struct {
		name, note string
		start      func(g *group, up string) (*exec.Cmd, string, error)
	}{
		{"slolab", "`slolab proxy`, no rules", func(g *group, up string) (*exec.Cmd, string, error) {
			listen, _, cmd, err := s.slolabProxy(g, proxySpec, up)
			return cmd, listen, err
		}},
		{"httputil", fmt.Sprintf("httputil.NewSingleHostReverseProxy, MaxIdleConnsPerHost %d", tunedIdle), func(g *group, up string) (*exec.Cmd, string, error) {
			return g.start(true, s.plain, "-upstream", "http://"+up, "-max-idle-per-host", strconv.Itoa(tunedIdle))
		}},
		{"nginx", "master and workers, summed", func(g *group, up string) (*exec.Cmd, string, error) {
			addr, err := startNginx(s, g, "memory", up, int(min(limit, 1<<20)))
			if err != nil {
				return nil, "", err
			}
			return g.cmds[len(g.cmds)-1], addr, nil
		}},
		{"toxiproxy", "no toxics", func(g *group, up string) (*exec.Cmd, string, error) {
			addr, err := startToxiproxy(s, g, up)
			if err != nil {
				return nil, "", err
			}
			return g.cmds[len(g.cmds)-1], addr, nil
		}},
	} {
		smp, err := measureMemory(s, cfg, target.name, target.start)
		if err != nil {
			return "", fmt.Errorf("memory %s: %w", target.name, err)
		}
		smp.note = target.note
		samples = append(samples, smp)
		progress("memory %-10s idle %s, %d connections held %s, peak %s (%d processes, %d errors)", smp.name, fmtKB(smp.idleRSS), cfg.Conns, fmtKB(smp.heldRSS), fmtKB(smp.peakHWM), smp.procs, smp.errors)
	}
	return renderMemory(cfg, samples, limit, started, loadBefore), nil
}

func measureMemory(s *session, cfg memoryConfig, name string, start func(*group, string) (*exec.Cmd, string, error)) (memSample, error) {
	smp := memSample{name: name}
	g := s.group()
	defer g.stop()
	up, err := s.upstream(g)
	if err != nil {
		return smp, err
	}
	cmd, addr, err := start(g, up)
	if err != nil {
		return smp, err
	}
	pid := cmd.Process.Pid
	smp.idleRSS, _, _ = treeMem(pid)
	conns, errs := openConns(s.ctx, addr, cfg.Conns, cfg.Parallel)
	defer closeConns(conns)
	smp.errors += errs
	if len(conns) < cfg.Conns/2 {
		return smp, fmt.Errorf("only %d of %d connections opened", len(conns), cfg.Conns)
	}
	time.Sleep(500 * time.Millisecond) // let the proxy settle before reading its memory
	smp.heldRSS, _, _ = treeMem(pid)
	smp.errors += burst(conns, cfg.Wave)
	_, smp.peakHWM, smp.procs = treeMem(pid)
	return smp, s.ctx.Err()
}

// heldConn is one client connection with its reader.
type heldConn struct {
	c net.Conn
	r *bufio.Reader
}

const memRequest = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: slolab-bench\r\n\r\n"

// roundTrip sends one request on the connection and reads the whole response.
func (h heldConn) roundTrip() error {
	_ = h.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(h.c, memRequest); err != nil {
		return err
	}
	return h.read()
}

func (h heldConn) read() error {
	resp, err := http.ReadResponse(h.r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return err
}

// openConns opens n keep-alive connections to addr, parallel at a time,
// each making one request, and returns those that succeeded.
func openConns(ctx context.Context, addr string, n, parallel int) ([]heldConn, int) {
	var (
		mu    sync.Mutex
		conns = make([]heldConn, 0, n)
		errs  int
		wg    sync.WaitGroup
	)
	next := make(chan struct{})
	go func() {
		defer close(next)
		for range n {
			select {
			case next <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	d := net.Dialer{Timeout: 10 * time.Second}
	for range parallel {
		wg.Go(func() {
			for range next {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					h := heldConn{c: c, r: bufio.NewReaderSize(c, 1024)}
					if err = h.roundTrip(); err == nil {
						mu.Lock()
						conns = append(conns, h)
						mu.Unlock()
						continue
					}
					reset(c)
				}
				mu.Lock()
				errs++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return conns, errs
}

// burst sends one more request on every connection, wave at a time: it
// writes a wave's requests before reading any response, so that they are
// all in flight at the proxy at once.
func burst(conns []heldConn, wave int) int {
	errs := 0
	for len(conns) > 0 {
		w := conns[:min(wave, len(conns))]
		conns = conns[len(w):]
		ok := make([]bool, len(w))
		for i, h := range w {
			_ = h.c.SetDeadline(time.Now().Add(15 * time.Second))
			_, err := io.WriteString(h.c, memRequest)
			ok[i] = err == nil
			if err != nil {
				errs++
			}
		}
		for i, h := range w {
			if ok[i] && h.read() != nil {
				errs++
			}
		}
	}
	return errs
}

func closeConns(conns []heldConn) {
	for _, h := range conns {
		reset(h.c)
	}
}

// reset closes a connection with an RST, so that tens of thousands of
// client connections leave no TIME_WAIT sockets behind.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// treeMem sums VmRSS and VmHWM (kB) over pid and its descendants (nginx's
// workers), and counts the processes.
func treeMem(pid int) (rss, hwm int64, n int) {
	for _, p := range descendants(pid) {
		status := fmt.Sprintf("/proc/%d/status", p)
		rss += procField(status, "VmRSS")
		hwm += procField(status, "VmHWM")
		n++
	}
	return rss, hwm, n
}

// descendants returns pid and every process below it.
func descendants(pid int) []int {
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		p, ppid, err := parseStat(string(b))
		if err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// parseStat reads the pid and parent pid from /proc/PID/stat; the command
// name in parentheses may itself hold spaces and parentheses.
func parseStat(s string) (pid, ppid int, err error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, 0, errors.New("no command name")
	}
	pid, err = strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 {
		return 0, 0, errors.New("short stat")
	}
	ppid, err = strconv.Atoi(f[1])
	return pid, ppid, err
}

func renderMemory(cfg memoryConfig, samples []memSample, limit uint64, started time.Time, loadBefore string) string {
	var b bytes.Buffer
	runLine(&b, started, loadBefore, fmt.Sprintf("-only memory -mem-conns %d -mem-wave %d", cfg.Conns, cfg.Wave))
	fmt.Fprintf(&b, "Each proxy starts fresh in front of the raw upstream. A Go client opens %d keep-alive connections to it over loopback (%d at a time), each making one request, and holds them all open; "+
		"then it sends one more request on every connection, %d at a time, writing each wave's requests before reading any response, so that they are in flight at the proxy at once. "+
		"Resident set from /proc/PID/status: VmRSS before any connection (idle) and with the connections held, VmHWM (peak) after the burst. "+
		"For nginx the figures are summed over the master and its workers (which double-counts shared pages, so nginx's sum is an upper bound).\n\n",
		cfg.Conns, cfg.Parallel, cfg.Wave)
	b.WriteString("| proxy | setup | idle RSS | RSS holding the connections | peak RSS (VmHWM) | per connection | errors |\n|---|---|---:|---:|---:|---:|---:|\n")
	byName := map[string]memSample{}
	for _, m := range samples {
		byName[m.name] = m
		per := float64(m.peakHWM-m.idleRSS) / float64(cfg.Conns)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.1f kB | %d |\n", m.name, m.note, fmtKB(m.idleRSS), fmtKB(m.heldRSS), fmtKB(m.peakHWM), per, m.errors)
	}
	fmt.Fprintf(&b, "\n\"Per connection\" is (peak − idle) / connections. Open-files limit per process: %d", limit)
	if limit < uint64(2*cfg.Conns+16) {
		fmt.Fprintf(&b, "; Toxiproxy, which holds two descriptors per connection (client and upstream), cannot hold all %d here, and the connections it refused count as errors", cfg.Conns)
	}
	b.WriteString(". Reading:\n\n")
	sl := byName["slolab"]
	if sl.peakHWM > 0 {
		v, text := "meets goal", fmt.Sprintf("With %d idle keep-alive connections and a burst over them, slolab peaked at %s resident (goal ≤ %d MB); it held %s with them idle.",
			cfg.Conns, fmtKB(sl.peakHWM), memoryGoalMB, fmtKB(sl.heldRSS))
		if sl.peakHWM > memoryGoalMB<<10 {
			v = "misses goal"
			text += " Each connection keeps a goroutine (its stack, 4–8 KiB after a request) and 1 KiB to read its next request into; the process starts at " + fmtKB(sl.idleRSS) + "."
		}
		b.WriteString(reading(v, text))
	}
	for _, peer := range []string{"httputil", "nginx", "toxiproxy"} {
		p, ok := byName[peer]
		if !ok || sl.peakHWM == 0 {
			continue
		}
		r := float64(p.peakHWM) / float64(sl.peakHWM) // lower is better: the peer's over ours
		b.WriteString(reading(verdict(r), fmt.Sprintf("With %d connections slolab peaked at %s resident, %s's %s (%.2f× slolab's).", cfg.Conns, fmtKB(sl.peakHWM), peer, fmtKB(p.peakHWM), r)))
	}
	return b.String()
}
