package slothspec_test

import (
	"os"
	"strings"
	"testing"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/slothspec"
)

func TestASlothSpecImportsWithNotesForWhatDoesNotMap(t *testing.T) {
	data, err := os.ReadFile("testdata/checkout.sloth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := slothspec.Import("checkout.sloth.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	y := res.Service.YAML()
	f, err := spec.Parse("imported.yaml", y)
	if err != nil {
		t.Fatalf("the imported spec is invalid: %v\n%s", err, y)
	}
	svc, _ := f.Service()
	if got := svc.CUJNames(); strings.Join(got, ",") != "requests-availability,requests-latency" {
		t.Errorf("CUJs = %v", got)
	}
	q := svc.CUJ("requests-availability").Queries.Availability
	if want := `sum(increase(http_requests_total{job="checkout",code=~"(5..|429)"}[{{.window}}]))`; q.Bad != want {
		t.Errorf("bad query = %s, want %s", q.Bad, want)
	}
	// Alert routing survives: the name, Sloth's labels, the disabled ticket alerts.
	a := svc.CUJ("requests-availability").Alerting
	if a.Name != "CheckoutHighErrorRate" || a.Labels["category"] != "availability" || a.Labels["sloth_id"] != "Checkout-requests-availability" ||
		a.Page.Labels["severity"] != "pageteam" || a.Page.Labels["sloth_severity"] != "page" || !a.Ticket.Disable ||
		svc.Alerting.Labels["sloth_service"] != "Checkout" || svc.Alerting.Labels["tier"] != "1" {
		t.Errorf("alerting %+v, page %+v, ticket %+v, service %+v", a, a.Page, a.Ticket, svc.Alerting)
	}
	testtool.Golden(t, "testdata/checkout.slolab.yaml", []byte(string(y)+"# Notes:\n# "+strings.Join(res.Notes, "\n# ")+"\n"))
	for _, want := range []string{
		`checkout.sloth.yaml:33:9: SLO "raw-ratio": a raw error_ratio_query is a ratio, not event counts; the SLO is not imported (write it as events)`,
	} {
		if !strings.Contains(strings.Join(res.Notes, "\n"), want) {
			t.Errorf("no note %q in:\n%s", want, strings.Join(res.Notes, "\n"))
		}
	}
}

func TestOtherSlothVersionsAreRejected(t *testing.T) {
	_, err := slothspec.Import("s.yaml", []byte("version: sloth.slok.dev/v1\nservice: x\nslos: []\n"))
	if err == nil || err.Error() != `s.yaml:1:1: version: want "prometheus/v1" (Sloth's prometheus/v1 format), got "sloth.slok.dev/v1"` {
		t.Errorf("err = %v", err)
	}
}
