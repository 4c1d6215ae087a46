package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"slolab.dev/slolab/internal/cli"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

// helmModule is the Helm the tests run, built once per test binary.
const helmModule = "helm.sh/helm/v4/cmd/helm@v4.3.2"

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
	helmDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if helmDir != "" {
		os.RemoveAll(helmDir)
	}
	os.Exit(code)
}

// helmBin builds the pinned Helm (go install; the build cache keeps it).
func helmBin(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		helmDir, helmErr = os.MkdirTemp("", "slolab-helm-")
		if helmErr != nil {
			return
		}
		cmd := exec.Command("go", "install", helmModule)
		cmd.Dir = helmDir
		cmd.Env = append(os.Environ(), "GOBIN="+helmDir, "GOFLAGS=")
		var out []byte
		if out, helmErr = cmd.CombinedOutput(); helmErr != nil {
			helmErr = fmt.Errorf("go install %s: %w\n%s", helmModule, helmErr, out)
			return
		}
		helmPath = filepath.Join(helmDir, "helm")
	})
	if helmErr != nil {
		if testtool.Required() {
			t.Fatal(helmErr)
		}
		t.Skip(helmErr)
	}
	return helmPath
}

// helm runs Helm with the chart's values for a mode: the example spec and
// the rules `slolab gen prometheus` makes of it.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

func valueArgs(t *testing.T, mode string) []string {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	var out, errOut bytes.Buffer
	if code := cli.Run(context.Background(), []string{"gen", "prometheus", "-f", "../../examples/chat.yaml"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("gen prometheus: exit %d %s", code, errOut.String())
	}
	if err := os.WriteFile(rules, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"-f", "testdata/" + mode + ".yaml", "--set-file", "spec=../../examples/chat.yaml", "--set-file", "prometheusRule.groups=" + rules}
}

// object is one rendered object, decoded into its Go type.
type object struct {
	kind, name string
	value      any
}

// decode splits Helm's output into objects and decodes each strictly: a
// field its Go type does not have is an error, as `kubectl apply
// --validate=strict` makes it.
func decode(t *testing.T, rendered string) []object {
	t.Helper()
	var out []object
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(rendered, -1) {
		data, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("a rendered document is not YAML: %v\n%s", err, doc)
		}
		if string(data) == "null" {
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := json.Unmarshal(data, &head); err != nil {
			t.Fatal(err)
		}
		var v any
		switch head.APIVersion + " " + head.Kind {
		case "v1 ConfigMap":
			v = &corev1.ConfigMap{}
		case "v1 Secret":
			v = &corev1.Secret{}
		case "v1 Service":
			v = &corev1.Service{}
		case "apps/v1 Deployment":
			v = &appsv1.Deployment{}
		case "policy/v1 PodDisruptionBudget":
			v = &policyv1.PodDisruptionBudget{}
		case "networking.k8s.io/v1 NetworkPolicy":
			v = &networkingv1.NetworkPolicy{}
		case "monitoring.coreos.com/v1 PodMonitor":
			v = &monitoringv1.PodMonitor{}
		case "monitoring.coreos.com/v1 PrometheusRule":
			v = &monitoringv1.PrometheusRule{}
		default:
			t.Fatalf("the chart renders a %s %s the test does not know:\n%s", head.APIVersion, head.Kind, doc)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", head.Kind, err, doc)
		}
		var meta struct{ Metadata struct{ Name string } }
		_ = json.Unmarshal(data, &meta)
		out = append(out, object{kind: head.Kind, name: meta.Metadata.Name, value: v})
	}
	return out
}

func find[T any](t *testing.T, objs []object, kind, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o.value.(T)
		}
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.kind+"/"+o.name)
	}
	t.Fatalf("no %s %s among %v", kind, name, names)
	var zero T
	return zero
}

func kinds(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.kind+"/"+o.name)
	}
	slices.Sort(out)
	return out
}

func TestTheChartLintsCleanInBothModes(t *testing.T) {
	for _, mode := range []string{"gateway", "sidecar"} {
		out, err := helm(t, append([]string{"lint", "--strict", "slolab"}, valueArgs(t, mode)...)...)
		if err != nil || !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
			t.Errorf("%s: %v\n%s", mode, err, out)
		}
	}
}

func TestTheGatewayRendersAFleetOfProxies(t *testing.T) {
	out, err := helm(t, append([]string{"template", "chat", "slolab", "--namespace", "shop"}, valueArgs(t, "gateway")...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	want := []string{
		"ConfigMap/chat-slolab-spec", "Deployment/chat-slolab", "NetworkPolicy/chat-slolab", "PodDisruptionBudget/chat-slolab",
		"PodMonitor/chat-slolab", "PrometheusRule/chat-slolab", "Secret/chat-slolab-admin", "Secret/chat-slolab-cluster",
		"Service/chat-slolab", "Service/chat-slolab-admin", "Service/chat-slolab-peers",
	}
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Fatalf("rendered %v, want %v", got, want)
	}

	cm := find[*corev1.ConfigMap](t, objs, "ConfigMap", "chat-slolab-spec")
	if f, err := spec.Parse("spec.yaml", []byte(cm.Data["spec.yaml"])); err != nil || len(f.Services) != 1 || f.Services[0].Name != "chat" {
		t.Errorf("the ConfigMap's spec does not load: %v", err)
	}

	d := find[*appsv1.Deployment](t, objs, "Deployment", "chat-slolab")
	if *d.Spec.Replicas != 3 || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment: %+v", d.Spec)
	}
	c := d.Spec.Template.Spec.Containers[0]
	for _, arg := range []string{"--upstream=http://chat.shop.svc:80", "--admin=0.0.0.0:9090", "--cluster-listen=0.0.0.0:7946",
		"--cluster-peer=chat-slolab-peers.shop.svc:7946", "--cluster-advertise=$(POD_IP):7946", "--cluster-key-file=/etc/slolab/cluster/key",
		"--admin-allow-host=chat-slolab-admin.shop.svc", "--admin-allow-host=chat-slolab-admin.shop.svc.cluster.local", "--admin-open-metrics"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("the proxy's args lack %s: %v", arg, c.Args)
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if c.SecurityContext == nil || !*c.SecurityContext.RunAsNonRoot || *c.SecurityContext.RunAsUser != 65532 || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("security context: %+v", c.SecurityContext)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources: %+v", c.Resources)
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "SLOLAB_ADMIN_TOKEN" }); i < 0 || c.Env[i].ValueFrom.SecretKeyRef.Name != "chat-slolab-admin" {
		t.Errorf("the admin token does not come from the Secret: %+v", c.Env)
	}

	peers := find[*corev1.Service](t, objs, "Service", "chat-slolab-peers")
	if peers.Spec.ClusterIP != "None" || !peers.Spec.PublishNotReadyAddresses || len(peers.Spec.Ports) != 2 {
		t.Errorf("the peers' Service is not headless with unready pods: %+v", peers.Spec)
	}
	np := find[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy", "chat-slolab")
	if len(np.Spec.Ingress) != 3 || len(np.Spec.Ingress[0].From) != 0 || len(np.Spec.Ingress[1].From) != 1 ||
		np.Spec.Ingress[1].From[0].NamespaceSelector != nil || np.Spec.Ingress[1].From[0].PodSelector == nil || len(np.Spec.Ingress[1].Ports) != 3 {
		t.Errorf("the network policy does not keep admin and gossip inside the namespace: %+v", np.Spec.Ingress)
	}
	if m := np.Spec.Ingress[2]; len(m.From) != 1 || m.From[0].NamespaceSelector == nil || m.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" ||
		len(m.Ports) != 1 || m.Ports[0].Port.IntValue() != 9090 {
		t.Errorf("the network policy does not let Prometheus's namespace scrape the admin port: %+v", m)
	}
	pm := find[*monitoringv1.PodMonitor](t, objs, "PodMonitor", "chat-slolab")
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port == nil || *pm.Spec.PodMetricsEndpoints[0].Port != "slolab-admin" || pm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("pod monitor: %+v", pm)
	}
	pr := find[*monitoringv1.PrometheusRule](t, objs, "PrometheusRule", "chat-slolab")
	var gen struct{ Groups []monitoringv1.RuleGroup }
	var genOut bytes.Buffer
	cli.Run(context.Background(), []string{"gen", "prometheus", "-f", "../../examples/chat.yaml"}, strings.NewReader(""), &genOut, &bytes.Buffer{})
	if err := yaml.UnmarshalStrict(genOut.Bytes(), &gen); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(gen.Groups)
	b, _ := json.Marshal(pr.Spec.Groups)
	if len(gen.Groups) == 0 || !bytes.Equal(a, b) {
		t.Errorf("the PrometheusRule's groups are not gen prometheus's:\n%s\nwant\n%s", b, a)
	}
}

func TestTheSidecarModeRendersAroundTheAppsDeployment(t *testing.T) {
	args := append([]string{"template", "chat", "slolab", "--namespace", "shop"}, valueArgs(t, "sidecar")...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	want := []string{"ConfigMap/chat-slolab-spec", "NetworkPolicy/chat-slolab", "PodMonitor/chat-slolab", "PrometheusRule/chat-slolab",
		"Service/chat", "Service/chat-slolab-admin", "Service/chat-slolab-peers"}
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Fatalf("rendered %v, want %v (the Secrets exist already)", got, want)
	}
	app := find[*corev1.Service](t, objs, "Service", "chat")
	if app.Spec.Selector["app"] != "chat" || app.Spec.Ports[0].TargetPort.String() != "slolab" {
		t.Errorf("the app's Service does not point at the proxy: %+v", app.Spec)
	}
	np := find[*networkingv1.NetworkPolicy](t, objs, "NetworkPolicy", "chat-slolab")
	if np.Spec.PodSelector.MatchLabels["app"] != "chat" || len(np.Spec.Ingress[0].Ports) != 2 {
		t.Errorf("the network policy of the app's pods: %+v", np.Spec)
	}

	patch, err := helm(t, append(args, "--set", "sidecar.patch=true", "--show-only", "templates/sidecar-patch.yaml")...)
	if err != nil {
		t.Fatal(err)
	}
	objs = decode(t, patch)
	d := find[*appsv1.Deployment](t, objs, "Deployment", "chat")
	if len(objs) != 1 || len(d.Spec.Template.Spec.Containers) != 1 || len(d.Spec.Template.Spec.Volumes) != 3 {
		t.Fatalf("the patch: %+v", d.Spec.Template.Spec)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Name != "slolab" || !slices.Contains(c.Args, "--upstream=http://127.0.0.1:3000") || !slices.Contains(c.Args, "--cluster-peer=chat-slolab-peers.shop.svc:7946") {
		t.Errorf("the sidecar: %+v", c)
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "SLOLAB_ADMIN_TOKEN" }); i < 0 || c.Env[i].ValueFrom.SecretKeyRef.Name != "chat-slolab-token" {
		t.Errorf("the sidecar's token Secret: %+v", c.Env)
	}
}

func TestTheChartRefusesWhatTheProxyWouldRefuse(t *testing.T) {
	for _, tc := range []struct {
		set, want string
	}{
		{"adminToken.value=", "adminToken: the admin API listens beyond loopback and needs a token"},
		{"adminToken.value=s3cret", "adminToken.value: the token has 6 characters: use at least 16"},
		{"clusterKey.value=", "clusterKey: the replicas gossip beyond loopback and need a shared key"},
		{"upstream=", "upstream: the app's Service the gateway forwards to"},
		{"mode=mesh", `mode: gateway or sidecar, got "mesh"`},
	} {
		_, err := helm(t, append([]string{"template", "chat", "slolab"}, append(valueArgs(t, "gateway"), "--set", tc.set)...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %s: %v, want %q", tc.set, err, tc.want)
		}
	}
}
