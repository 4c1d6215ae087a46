package promrules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/gen/promrules"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/notify"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// identitySpec names its alerts and labels them per severity, as a team
// migrating from Sloth's getting-started example does.
const identitySpec = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: myservice}
spec:
  alerting:
    name: MyServiceHighErrorRate
    labels: {category: availability}
    annotations: {summary: "High error rate on 'myservice' requests responses"}
    page: {labels: {severity: pageteam, routing_key: myteam}}
    ticket: {labels: {severity: slack, slack_channel: "#alerts-myteam"}}
  cujs:
    - {name: requests, owner: myteam, routes: ["GET /"], availability: {objective: 99.9%}}
`

// The engine's notification and the generated rule of one alert carry the
// same name and labels: Prometheus fires the rules with exactly the labels
// slo.AlertIdentity gives (promtool checks every label of every firing
// alert), and a real Alertmanager, sent both, holds one alert per row and
// routes it by the spec's labels.
func TestTheEngineAndTheRulesRaiseOneAlertThatOneRouteMatches(t *testing.T) {
	promtool := testtool.Path(t, "promtool")
	f, err := spec.Parse("myservice.yaml", []byte(identitySpec))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := f.Service()
	rules := generate(t, svc, promrules.Options{})
	labelsOf, annotationsOf := alertsOf(t, rules)
	var want []expAlert // every row fires when every request fails
	identities := map[alertKey]slo.Identity{}
	for _, a := range slo.Workbook {
		k := alertKey{"requests", spec.FormatDuration(a.Long), spec.FormatDuration(a.Short)}
		id := slo.AlertIdentity(svc, svc.CUJ("requests"), slo.Availability, a)
		identities[k] = id
		if id.Name != "MyServiceHighErrorRate" || !maps.Equal(id.Labels, labelsOf[k]) {
			t.Errorf("%v: rule labels %v, identity %s %v", k, labelsOf[k], id.Name, id.Labels)
		}
		want = append(want, expAlert{Labels: labelsOf[k], Annotations: annotationsOf[k]})
	}
	runPromtool(t, promtool, rules, promtoolTest{
		RuleFiles:          []string{"myservice.rules.yaml"},
		EvaluationInterval: "1m",
		Tests: []testCase{{
			Name:     "every request fails: every row fires with the identity's labels",
			Interval: "1m",
			InputSeries: []series{
				{Series: `slolab_requests_total{cuj="requests",route="GET /",method="GET",code="500",group="none"}`, Values: "0+1000x60"},
			},
			AlertRuleTests: []alertTest{{EvalTime: "30m", AlertName: "MyServiceHighErrorRate", ExpAlerts: want}},
		}},
	})

	// One Alertmanager; the team's routes match Sloth's labels.
	hits := make(chan string, 20)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits <- r.URL.Path }))
	defer hook.Close()
	url := testtool.Alertmanager(t, fmt.Sprintf(`route:
  receiver: other
  group_by: ['...']
  group_wait: 100ms
  group_interval: 100ms
  repeat_interval: 1h
  routes:
    - receiver: team-page
      matchers: ['alertname="MyServiceHighErrorRate"', 'severity="pageteam"', 'routing_key="myteam"']
    - receiver: team-slack
      matchers: ['alertname="MyServiceHighErrorRate"', 'severity="slack"', 'slack_channel="#alerts-myteam"']
receivers:
  - {name: other, webhook_configs: [{url: "%[1]s/other"}]}
  - {name: team-page, webhook_configs: [{url: "%[1]s/team-page"}]}
  - {name: team-slack, webhook_configs: [{url: "%[1]s/team-slack"}]}
`, hook.URL))

	// The engine notifies the 1h/5m page and the 3d/6h ticket...
	now := time.Now().UTC().Truncate(time.Second)
	var firing []slo.Transition
	for _, a := range []spec.BurnRateAlert{slo.Workbook[0], slo.Workbook[3]} {
		firing = append(firing, slo.Transition{
			Key: slo.Key{CUJ: "requests", Kind: slo.Availability}, Owner: "myteam", Firing: true, At: now, Since: now,
			Alert: slo.AlertState{Severity: a.Severity, Long: spec.Duration(a.Long), Short: spec.Duration(a.Short), Factor: a.Factor.Decimal(), Firing: true},
		})
	}
	am := &notify.Alertmanager{URL: url}
	if err := am.Notify(context.Background(), notify.Notice{Service: "myservice", Spec: svc, At: now, Changes: firing, Firing: firing}); err != nil {
		t.Fatal(err)
	}
	// ...and Prometheus sends the same rows, labelled as promtool showed.
	var fromRules []notify.PostableAlert
	for _, k := range []alertKey{{"requests", "1h", "5m"}, {"requests", "3d", "6h"}} {
		l := maps.Clone(labelsOf[k])
		l["alertname"] = "MyServiceHighErrorRate"
		fromRules = append(fromRules, notify.PostableAlert{Labels: l, Annotations: annotationsOf[k], StartsAt: now, EndsAt: now.Add(5 * time.Minute)})
	}
	body, _ := json.Marshal(fromRules)
	resp, err := http.Post(url+"/api/v2/alerts", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("posting the rules' alerts: %s", resp.Status)
	}

	resp, err = http.Get(url + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	var held []struct {
		Labels    map[string]string
		Receivers []struct{ Name string }
	}
	json.NewDecoder(resp.Body).Decode(&held)
	resp.Body.Close()
	var got []string
	for _, a := range held {
		var rs []string
		for _, r := range a.Receivers {
			rs = append(rs, r.Name)
		}
		got = append(got, fmt.Sprintf("%s %s/%s → %s", a.Labels["severity"], a.Labels["long_window"], a.Labels["short_window"], strings.Join(rs, ",")))
	}
	slices.Sort(got)
	if fmt.Sprint(got) != "[pageteam 1h/5m → team-page slack 3d/6h → team-slack]" {
		t.Errorf("Alertmanager holds %v: want one alert per row, whichever sent it, on the team's receivers", got)
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case p := <-hits:
			seen[p] = true
			if p == "/other" {
				t.Errorf("an alert fell through to the default receiver")
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("notifications within 30s: %v, want team-page and team-slack", seen)
		}
	}
}
