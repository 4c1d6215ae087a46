package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// session holds what every benchmark shares: a scratch directory with the
// binaries built from this tree, and the peers found on this machine.
type session struct {
	ctx    context.Context
	dir    string
	slolab string // go build ./cmd/slolab
	server string // go build ./bench/load/server: the raw HTTP/1.1 upstream
	plain  string // go build ./bench/proxy/plain: httputil.NewSingleHostReverseProxy
	peers  peers
}

// peers are the external tools, with their versions for the record.
type peers struct {
	wrk, nginx, hey, vegeta, toxiproxy string
	versions                           map[string]string
}

func newSession(ctx context.Context) (*session, error) {
	dir, err := os.MkdirTemp("", "slolab-bench-")
	if err != nil {
		return nil, err
	}
	s := &session{ctx: ctx, dir: dir}
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		out *string
		pkg string
	}{{&s.slolab, "./cmd/slolab"}, {&s.server, "./bench/load/server"}, {&s.plain, "./bench/proxy/plain"}} {
		*b.out = filepath.Join(dir, filepath.Base(b.pkg))
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", *b.out, b.pkg).CombinedOutput(); err != nil {
			s.close(false)
			return nil, fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return s, nil
}

// close removes the scratch directory, unless keep: then it stays, with the
// logs of the processes the benchmarks started, for a look after a failure.
func (s *session) close(keep bool) {
	if keep {
		fmt.Fprintf(os.Stderr, "bench: the started processes' logs are in %s\n", filepath.Join(s.dir, "logs"))
		return
	}
	_ = os.RemoveAll(s.dir)
}

// group returns an empty process group logging into the session's directory.
func (s *session) group() *group { return &group{logDir: filepath.Join(s.dir, "logs")} }

// findPeers locates every peer; a missing one is an error naming the
// command that installs it (bench/run.sh does, which `make bench` runs).
func findPeers(ctx context.Context) (peers, error) {
	p := peers{versions: map[string]string{}}
	var missing []string
	find := func(dst *string, names ...string) {
		if path := lookTool(names...); path != "" {
			*dst = path
		} else {
			missing = append(missing, names[0])
		}
	}
	find(&p.wrk, "wrk")
	find(&p.nginx, "nginx")
	find(&p.hey, "hey")
	find(&p.vegeta, "vegeta")
	p.toxiproxy = toxiproxyServer(ctx)
	if p.toxiproxy == "" {
		missing = append(missing, "toxiproxy server")
	}
	if len(missing) > 0 {
		return p, fmt.Errorf("missing peers %v: run bench/run.sh (make bench), which installs them", missing)
	}
	p.versions["wrk"] = firstMatch(ctx, `wrk (?:debian/)?([0-9][^\s]*)`, p.wrk, "-v")
	p.versions["nginx"] = firstMatch(ctx, `nginx/([0-9.]+)`, p.nginx, "-v")
	p.versions["hey"] = firstMatch(ctx, `([0-9][^\s]*)`, "dpkg-query", "-W", "-f", "${Version}", "hey")
	p.versions["vegeta"] = goModVersion(ctx, p.vegeta, "github.com/tsenart/vegeta/v12")
	p.versions["toxiproxy"] = goModVersion(ctx, p.toxiproxy, "github.com/Shopify/toxiproxy/v2")
	return p, nil
}

// lookTool finds the first of names on PATH, in the sbin directories (nginx
// lives in /usr/sbin) or in $(go env GOPATH)/bin (go install puts vegeta there).
func lookTool(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", filepath.Join(goEnv("GOPATH"), "bin")} {
			p := filepath.Join(dir, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

// toxiproxyServer finds Toxiproxy's server: `go install .../cmd/server` names
// the binary "server", so a binary of that name counts only when its build
// information says it is Toxiproxy's.
func toxiproxyServer(ctx context.Context) string {
	if p := lookTool("toxiproxy-server"); p != "" {
		return p
	}
	p := filepath.Join(goEnv("GOPATH"), "bin", "server")
	if goModVersion(ctx, p, "github.com/Shopify/toxiproxy/v2") != "" {
		return p
	}
	return ""
}

func goEnv(k string) string {
	out, _ := exec.Command("go", "env", k).Output()
	return strings.TrimSpace(string(out))
}

// goModVersion returns the version of module mod that binary was built from
// (go version -m), or "" when it was not.
func goModVersion(ctx context.Context, binary, mod string) string {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", binary).Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" && f[1] == mod {
			return f[2]
		}
	}
	return ""
}

// firstMatch runs a command and returns the first submatch of re in its
// combined output ("" when none; wrk -v exits 1 after printing its version).
func firstMatch(ctx context.Context, re, name string, args ...string) string {
	out, _ := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if m := regexp.MustCompile(re).FindStringSubmatch(string(out)); m != nil {
		return m[1]
	}
	return ""
}

// group is a set of long-running processes a benchmark started; stop ends
// exactly those, by PID. Their stderr goes to a log file in logDir (Toxiproxy
// logs every connection), kept when a section fails.
type group struct {
	cmds   []*exec.Cmd
	logDir string
}

// start runs a long-lived process. With firstLine it returns the first line
// the process prints (the servers print their address).
func (g *group) start(firstLine bool, name string, args ...string) (*exec.Cmd, string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	if g.logDir != "" {
		f, err := os.CreateTemp(g.logDir, filepath.Base(name)+"-*.log")
		if err != nil {
			return nil, "", err
		}
		defer f.Close() // the child holds its own descriptor
		cmd.Stderr = f
	}
	var out io.ReadCloser
	if firstLine {
		var err error
		if out, err = cmd.StdoutPipe(); err != nil {
			return nil, "", err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	g.cmds = append(g.cmds, cmd)
	if !firstLine {
		return cmd, "", nil
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if err != nil {
		return cmd, "", fmt.Errorf("%s printed no address: %w", filepath.Base(name), err)
	}
	return cmd, strings.TrimSpace(line), nil
}

// stop sends SIGTERM to every process of the group, waits up to 5 s for each
// and kills what is left.
func (g *group) stop() {
	for _, c := range g.cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range g.cmds {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	g.cmds = nil
}

// upstream starts the raw HTTP/1.1 server every benchmark proxies to.
func (s *session) upstream(g *group) (string, error) {
	_, addr, err := g.start(true, s.server)
	return addr, err
}

// slolabProxy starts `slolab proxy` with the spec and returns its listen and
// admin addresses once it answers.
func (s *session) slolabProxy(g *group, specPath, upstream string, extra ...string) (listen, adminURL string, cmd *exec.Cmd, err error) {
	listen, admin := freeAddr(), freeAddr()
	// The proxy keeps its store, as it does by default, in the session's
	// directory rather than the working tree.
	store, err := os.CreateTemp(s.dir, "slolab-*.db")
	if err != nil {
		return "", "", nil, err
	}
	store.Close()
	args := append([]string{"proxy", "--spec", specPath, "--upstream", "http://" + upstream,
		"--listen", listen, "--admin", admin, "--audit-log", "-", "--log-level", "warn", "--max-ttl", "24h", "--store", store.Name()}, extra...)
	cmd, _, err = g.start(false, s.slolab, args...)
	if err != nil {
		return "", "", nil, err
	}
	if err := waitHTTP(s.ctx, listen); err != nil {
		return "", "", nil, err
	}
	return listen, "http://" + admin, cmd, nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP waits up to 10 s for GET / on addr to answer 200.
func waitHTTP(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within 10s", addr)
}

// putRule adds or replaces a fault rule through the admin API.
func putRule(ctx context.Context, admin, name, body string) error {
	req, _ := http.NewRequestWithContext(ctx, "PUT", admin+"/api/v1/faults/"+name, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json") // the admin API's guard refuses a change without it
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("adding rule %s: %s %s", name, resp.Status, b)
	}
	return nil
}

// machine describes the host for the record.
type machine struct {
	Cores   int
	CPU     string
	MemGiB  float64
	Kernel  string
	Go      string
	LoadAvg string // the 1, 5 and 15 minute load averages
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), CPU: "unknown CPU", Go: runtime.Version(), LoadAvg: loadAvg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb := procField("/proc/meminfo", "MemTotal"); kb > 0 {
		m.MemGiB = float64(kb) / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField reads a "Name:   N kB" field of a /proc file in kB (0 when absent).
func procField(path, name string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return parseProcField(string(b), name)
}

func parseProcField(text, name string) int64 {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		return n
	}
	return 0
}

// runPeakRSS runs cmd to completion and returns its peak resident set in kB:
// VmHWM from /proc, sampled every 20 ms while it runs. (getrusage's maxrss
// will not do: Go starts children with vfork, and Linux carries the
// parent's high-water mark across the child's exec into its maxrss.)
func runPeakRSS(cmd *exec.Cmd) (int64, error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var hwm int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			hwm = max(hwm, procField(status, "VmHWM"))
			select {
			case <-done:
				peak <- hwm
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	return <-peak, err
}

// raiseFileLimit lifts the soft limit on open files to the hard limit (and,
// as root, the hard limit to want) so that this process and the proxies it
// starts can each hold the memory benchmark's connections.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
