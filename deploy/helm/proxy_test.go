package helm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"slolab.dev/slolab/internal/cli"
)

// podIP and podName stand for the fields the kubelet gives the container.
const (
	podIP   = "127.0.0.1"
	podName = "chat-slolab-6d4b9c7f5-x2k8q"
)

// pod is a rendered proxy container started as the kubelet would start it.
type pod struct {
	admin  string            // the admin API's URL
	env    map[string]string // the container's environment, resolved
	args   []string          // the container's args, $(VAR) expanded
	ports  map[string]int32  // container ports by name
	stderr *lockedBuffer
	stop   func() int // stops the proxy and returns its exit code
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// startRendered runs `slolab proxy` (cli.Run, what the binary's main runs)
// with the rendered container's args, as the kubelet would: $(VAR) expanded
// from the pod's fields, the volumes at their mount paths (under a
// temporary root) filled from the rendered ConfigMap and the Secrets, the
// Secrets' values in the environment. Only what would reach beyond this
// machine changes: the proxy, admin and gossip addresses listen on
// 127.0.0.1:0, and the peers (a DNS name inside the cluster) and the
// advertised address are left out.
func startRendered(t *testing.T, configMaps []*corev1.ConfigMap, secrets map[string]map[string]string, spec corev1.PodSpec) *pod {
	t.Helper()
	if len(spec.Containers) != 1 || spec.Containers[0].Name != "slolab" {
		t.Fatalf("containers: %+v", spec.Containers)
	}
	c := spec.Containers[0]
	p := &pod{env: map[string]string{}, ports: map[string]int32{}, stderr: &lockedBuffer{}}
	for _, port := range c.Ports {
		p.ports[port.Name] = port.ContainerPort
	}

	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			p.env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			p.env[e.Name] = podIP
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			p.env[e.Name] = podName
		case e.ValueFrom.SecretKeyRef != nil:
			v, ok := secrets[e.ValueFrom.SecretKeyRef.Name][e.ValueFrom.SecretKeyRef.Key]
			if !ok {
				t.Fatalf("env %s: no Secret %s with key %s", e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			p.env[e.Name] = v
		default:
			t.Fatalf("env %s: a source the test does not know: %+v", e.Name, e.ValueFrom)
		}
	}
	for k, v := range p.env {
		t.Setenv(k, v)
	}

	root := t.TempDir()
	var mounts []string
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m.MountPath)
		var files map[string]string
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				for _, cm := range configMaps {
					if cm.Name == v.ConfigMap.Name {
						files = cm.Data
					}
				}
				if files == nil {
					t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
				}
			case v.Secret != nil:
				if files = secrets[v.Secret.SecretName]; files == nil {
					t.Fatalf("volume %s: no Secret %s", v.Name, v.Secret.SecretName)
				}
			case v.EmptyDir != nil:
			default:
				t.Fatalf("volume %s: a source the test does not know", v.Name)
			}
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	args := []string{}
	for i, a := range c.Args {
		a = envRef.ReplaceAllStringFunc(a, func(ref string) string { return p.env[envRef.FindStringSubmatch(ref)[1]] })
		p.args = append(p.args, a)
		if i == 0 {
			args = append(args, a)
			continue
		}
		name, value, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") {
			t.Fatalf("arg %q: the test reads --flag or --flag=value", a)
		}
		switch name {
		case "--listen", "--admin", "--cluster-listen":
			value = "127.0.0.1:0"
		case "--cluster-peer", "--cluster-advertise":
			continue
		}
		for _, m := range mounts {
			if strings.HasPrefix(value, m+"/") {
				value = filepath.Join(root, value)
			}
		}
		if value != "" || strings.Contains(a, "=") {
			a = name + "=" + value
		}
		args = append(args, a)
	}

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- cli.Run(ctx, args, strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	banner := regexp.MustCompile(`^slolab proxy: admin API (http://\S+)/api/v1/`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(p.stderr, sc.Text())
			if m := banner.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	stopped := false
	p.stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		return <-exit
	}
	t.Cleanup(func() { p.stop() })
	select {
	case url, ok := <-found:
		if !ok {
			t.Fatalf("slolab proxy %s did not start:\n%s", strings.Join(args, " "), p.stderr.String())
		}
		p.admin = url
	case <-time.After(30 * time.Second):
		t.Fatalf("slolab proxy %s did not start in 30s:\n%s", strings.Join(args, " "), p.stderr.String())
	}
	return p
}

// get sends a GET to the pod's admin API naming host in Host, with the
// token when one is given.
func (p *pod) get(t *testing.T, path, host, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// probe runs a rendered probe against the pod as the kubelet does: an HTTP
// GET to the pod's IP and port, or a TCP connection.
func (p *pod) probe(t *testing.T, what string, pr *corev1.Probe) {
	t.Helper()
	switch {
	case pr == nil:
		t.Errorf("%s: none", what)
	case pr.HTTPGet != nil:
		host := fmt.Sprintf("%s:%d", podIP, p.ports[pr.HTTPGet.Port.String()])
		if code, body := p.get(t, pr.HTTPGet.Path, host, ""); code != http.StatusOK {
			t.Errorf("%s: GET %s: %d %s", what, pr.HTTPGet.Path, code, body)
		}
	case pr.TCPSocket != nil:
		if p.ports[pr.TCPSocket.Port.String()] != p.ports["slolab-admin"] {
			t.Errorf("%s: a TCP probe of port %s, not the admin API's", what, pr.TCPSocket.Port.String())
		}
		conn, err := net.Dial("tcp", strings.TrimPrefix(p.admin, "http://"))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		conn.Close()
	default:
		t.Errorf("%s: a probe the test does not know: %+v", what, pr)
	}
}

// serviceNames are the names the rendered args allow in Host.
func (p *pod) serviceNames() []string {
	var out []string
	for _, a := range p.args {
		if name, ok := strings.CutPrefix(a, "--admin-allow-host="); ok {
			out = append(out, name)
		}
	}
	return out
}

// checkGuard checks what reaches the admin API of a started pod: the
// probes, the PodMonitor's scrape, and clients by the admin Service's names,
// with the token from the Secret; others are refused.
func checkGuard(t *testing.T, p *pod, c corev1.Container, pm *monitoringv1.PodMonitor, secrets map[string]map[string]string, namespace string) {
	t.Helper()
	token := p.env["SLOLAB_ADMIN_TOKEN"]
	p.probe(t, "readiness probe", c.ReadinessProbe)
	p.probe(t, "liveness probe", c.LivenessProbe)

	if pm != nil {
		ep := pm.Spec.PodMetricsEndpoints[0]
		scrapeToken := ""
		if a := ep.Authorization; a != nil {
			if a.Type != "Bearer" || a.Credentials == nil {
				t.Fatalf("the PodMonitor's authorization: %+v", a)
			}
			scrapeToken = secrets[a.Credentials.Name][a.Credentials.Key]
			if code, _ := p.get(t, ep.Path, fmt.Sprintf("%s:%d", podIP, p.ports[*ep.Port]), ""); code != http.StatusUnauthorized {
				t.Errorf("GET %s without the token, metrics closed: %d, want 401", ep.Path, code)
			}
		}
		code, body := p.get(t, ep.Path, fmt.Sprintf("%s:%d", podIP, p.ports[*ep.Port]), scrapeToken)
		if code != http.StatusOK || !strings.Contains(body, "# TYPE go_goroutines gauge") {
			t.Errorf("the PodMonitor's scrape of %s: %d %.300s", ep.Path, code, body)
		}
	}

	names := p.serviceNames()
	want := "chat-slolab-admin." + namespace + ".svc"
	if !strings.Contains(strings.Join(names, " "), want) {
		t.Errorf("the admin API does not allow its Service's name %s: %v", want, names)
	}
	for _, name := range names {
		host := fmt.Sprintf("%s:%d", name, p.ports["slolab-admin"])
		code, body := p.get(t, "/api/v1/cluster", host, token)
		var st struct{ Self string }
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Self != podName {
			t.Errorf("GET /api/v1/cluster by %s with the token: %d %.300s", host, code, body)
		}
		if code, _ := p.get(t, "/api/v1/cluster", host, ""); code != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/cluster by %s without the token: %d, want 401", host, code)
		}
	}
	if code, _ := p.get(t, "/api/v1/faults", "attacker.example:9090", token); code != http.StatusForbidden {
		t.Errorf("a Host the chart does not allow: %d, want 403", code)
	}
}

func secretsOf(objs []object) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, o := range objs {
		if s, ok := o.value.(*corev1.Secret); ok {
			out[s.Name] = s.StringData
		}
	}
	return out
}

func configMapsOf(objs []object) []*corev1.ConfigMap {
	var out []*corev1.ConfigMap
	for _, o := range objs {
		if cm, ok := o.value.(*corev1.ConfigMap); ok {
			out = append(out, cm)
		}
	}
	return out
}

// The gateway's proxies, started with exactly the rendered args: the
// binary accepts every flag, the kubelet's probes and Prometheus's scrape
// pass the admin API's guard, and clients reach it by its Service's names
// with the token, whether /metrics and /healthz are open or not.
func TestTheGatewaysRenderedProxyRunsBehindTheGuard(t *testing.T) {
	for _, open := range []bool{true, false} {
		t.Run(fmt.Sprintf("adminOpenMetrics=%v", open), func(t *testing.T) {
			args := append([]string{"template", "chat", "slolab", "--namespace", "shop"}, valueArgs(t, "gateway")...)
			out, err := helm(t, append(args, "--set", fmt.Sprintf("adminOpenMetrics=%v", open))...)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			d := find[*appsv1.Deployment](t, objs, "Deployment", "chat-slolab")
			pm := find[*monitoringv1.PodMonitor](t, objs, "PodMonitor", "chat-slolab")
			secrets := secretsOf(objs)
			p := startRendered(t, configMapsOf(objs), secrets, d.Spec.Template.Spec)
			checkGuard(t, p, d.Spec.Template.Spec.Containers[0], pm, secrets, "shop")
			if code := p.stop(); code != 0 {
				t.Errorf("the proxy exited %d:\n%s", code, p.stderr.String())
			}
		})
	}
}

// The sidecar patch's container, with the Secrets the values name, runs
// the same way beside the app.
func TestTheSidecarsRenderedProxyRunsBehindTheGuard(t *testing.T) {
	args := append([]string{"template", "chat", "slolab", "--namespace", "shop"}, valueArgs(t, "sidecar")...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	patch, err := helm(t, append(args, "--set", "sidecar.patch=true", "--show-only", "templates/sidecar-patch.yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	d := find[*appsv1.Deployment](t, decode(t, patch), "Deployment", "chat")
	// The Secrets the values name exist already, made as docs/kubernetes.md says.
	secrets := map[string]map[string]string{
		"chat-slolab-token": {"token": "0123456789abcdef0123456789abcdef"},
		"chat-slolab-key":   {"key": "c2xvbGFiLXRlc3RzLWNsdXN0ZXIta2V5LTMyLWJ5dGU="},
	}
	p := startRendered(t, configMapsOf(objs), secrets, d.Spec.Template.Spec)
	checkGuard(t, p, d.Spec.Template.Spec.Containers[0], find[*monitoringv1.PodMonitor](t, objs, "PodMonitor", "chat-slolab"), secrets, "shop")
	if code := p.stop(); code != 0 {
		t.Errorf("the proxy exited %d:\n%s", code, p.stderr.String())
	}
}
