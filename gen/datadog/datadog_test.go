package datadog_test

import (
	"encoding/json"
	"strings"
	"testing"

	"slolab.dev/slolab/gen/datadog"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

func TestTerraformForTheChatExampleMatchesTheGoldenFile(t *testing.T) {
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := datadog.Generate(svc, datadog.Options{Tags: []string{"env:prod"}, Notify: map[string]string{"page": "@pagerduty-chat"}})
	if err != nil {
		t.Fatal(err)
	}
	testtool.Golden(t, "testdata/chat.tf.json", out.Files[0].Data)
	var doc struct {
		Resource struct {
			SLOs     map[string]json.RawMessage `json:"datadog_service_level_objective"`
			Monitors map[string]struct {
				Query string
			} `json:"datadog_monitor"`
		}
	}
	if err := json.Unmarshal(out.Files[0].Data, &doc); err != nil {
		t.Fatal(err)
	}
	// The Workbook's four rows become three monitors per SLO: 3d/6h at 1×
	// scales to 24h/2h at 3×, which is the 1d/2h row.
	if len(doc.Resource.SLOs) != 12 || len(doc.Resource.Monitors) != 36 {
		t.Errorf("%d SLOs and %d monitors, want 12 and 36", len(doc.Resource.SLOs), len(doc.Resource.Monitors))
	}
	m := doc.Resource.Monitors["chat_update_availability_ticket_24h_2h"]
	if want := `burn_rate("${datadog_service_level_objective.chat_update_availability.id}").over("30d").long_window("24h").short_window("2h") > 3`; m.Query != want {
		t.Errorf("ticket query = %s, want %s", m.Query, want)
	}
	for name, m := range doc.Resource.Monitors {
		if strings.Contains(m.Query, `long_window("72h")`) {
			t.Errorf("%s has a long window beyond Datadog's 48h", name)
		}
	}
	want := []string{"every SLO: Datadog caps burn-rate windows at 48h, so the 3d/6h ticket alert at 1× becomes 24h/2h at 3× (the same share of the budget)"}
	if strings.Join(out.Notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes = %q, want %q", out.Notes, want)
	}
}

// The spec's alert identity reaches the monitors: its name leads theirs and
// its labels are tags, so Datadog notification rules keyed on them match.
func TestMonitorsCarryTheAlertIdentity(t *testing.T) {
	f, err := spec.Parse("s.yaml", []byte(`apiVersion: slolab.dev/v1
kind: Service
metadata: {name: myservice}
spec:
  alerting:
    name: MyServiceHighErrorRate
    labels: {category: availability}
    page: {labels: {severity: pageteam, routing_key: myteam}}
  cujs:
    - {name: requests, owner: myteam, routes: ["GET /"], availability: {objective: 99.9%}}
`))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := f.Service()
	out, err := datadog.Generate(svc, datadog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resource struct {
			Monitors map[string]struct {
				Name string
				Tags []string
			} `json:"datadog_monitor"`
		}
	}
	if err := json.Unmarshal(out.Files[0].Data, &doc); err != nil {
		t.Fatal(err)
	}
	page, ticket := doc.Resource.Monitors["myservice_requests_availability_page_1h_5m"], doc.Resource.Monitors["myservice_requests_availability_ticket_24h_2h"]
	if !strings.HasPrefix(page.Name, "MyServiceHighErrorRate: myservice requests availability") ||
		!strings.Contains(strings.Join(page.Tags, " "), "severity:pageteam category:availability routing_key:myteam") ||
		!strings.Contains(strings.Join(ticket.Tags, " "), "severity:ticket category:availability") {
		t.Errorf("page monitor %+v, ticket monitor %+v", page, ticket)
	}
}
