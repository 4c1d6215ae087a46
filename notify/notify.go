// Package notify tells people and tools when an SLO alert fires or
// resolves: a generic JSON webhook whose "text" field Slack (and anything
// Slack-compatible) shows as is, and Alertmanager's v2 API, which then
// routes, groups, silences and inhibits like any Prometheus alert.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Notice is what happened at one evaluation.
type Notice struct {
	Service string
	// Spec is the service's spec, whose alerting names and labels the
	// alerts (slo.AlertIdentity); without it they get the defaults.
	Spec *spec.Service
	At   time.Time
	// Changes are the alerts that fired or resolved since the last notice.
	Changes []slo.Transition
	// Firing lists every alert firing now, for receivers that need firing
	// alerts repeated (Alertmanager forgets alerts that are not).
	Firing []slo.Transition
}

// Notifier delivers notices.
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

var (
	_ Notifier = (*Webhook)(nil)
	_ Notifier = (*Alertmanager)(nil)
)

// AlertName is the alertname of slolab's alerts when the spec names none:
// the name `slolab gen prometheus` gives its rules.
const AlertName = spec.DefaultAlertName

// Text describes a transition in one line: what fired or resolved, how
// fast the budget burns, and whose it is.
func Text(service string, t slo.Transition) string {
	a := t.Alert
	name := fmt.Sprintf("%s/%s %s SLO: %s alert %s ≥ %s", service, t.Key.CUJ, t.Key.Kind, a.Severity, a.Pair(), a.Factor)
	if t.Firing {
		return fmt.Sprintf("[FIRING] %s. The budget burns %s times as fast as allowed over %s and %s over %s. Owner: %s.",
			name, burn(a.LongBurn), spec.FormatDuration(time.Duration(a.Long)), burn(a.ShortBurn), spec.FormatDuration(time.Duration(a.Short)), owner(t.Owner))
	}
	return fmt.Sprintf("[RESOLVED] %s, after %s. Burn rate now %s over %s and %s over %s. Owner: %s.",
		name, span(t.At.Sub(t.Since)), burn(a.LongBurn), spec.FormatDuration(time.Duration(a.Long)),
		burn(a.ShortBurn), spec.FormatDuration(time.Duration(a.Short)), owner(t.Owner))
}

// span writes a duration to the second below a minute, else to the minute.
func span(d time.Duration) string {
	if d < time.Minute {
		return spec.FormatDuration(d.Round(time.Second))
	}
	return spec.FormatDuration(d.Round(time.Minute))
}

func burn(v *float64) string {
	if v == nil {
		return "n/a (no requests)"
	}
	return fmt.Sprintf("%.1f", *v)
}

func owner(o string) string {
	if o == "" {
		return "unknown"
	}
	return o
}

// Webhook posts each transition as JSON to a URL.
type Webhook struct {
	URL    string
	Client *http.Client // default: 10-second timeout
}

// WebhookPayload is the JSON a webhook receives, one per transition.
type WebhookPayload struct {
	// Text is a one-line summary; Slack incoming webhooks show it as the message.
	Text          string     `json:"text"`
	Status        string     `json:"status"` // "firing" or "resolved"
	Service       string     `json:"service"`
	CUJ           string     `json:"cuj"`
	SLO           slo.Kind   `json:"slo"`
	Owner         string     `json:"owner,omitempty"`
	Severity      string     `json:"severity"`
	Windows       string     `json:"windows"`
	BurnRate      string     `json:"burnRate"` // the threshold
	LongBurnRate  *float64   `json:"longBurnRate"`
	ShortBurnRate *float64   `json:"shortBurnRate"`
	FiredAt       time.Time  `json:"firedAt"`
	ResolvedAt    *time.Time `json:"resolvedAt,omitempty"`
}

// Payload builds the webhook body for a transition.
func Payload(service string, t slo.Transition) WebhookPayload {
	p := WebhookPayload{
		Text: Text(service, t), Status: "firing", Service: service, CUJ: t.Key.CUJ, SLO: t.Key.Kind, Owner: t.Owner,
		Severity: t.Alert.Severity, Windows: t.Alert.Pair(), BurnRate: t.Alert.Factor,
		LongBurnRate: t.Alert.LongBurn, ShortBurnRate: t.Alert.ShortBurn, FiredAt: t.Since.UTC(),
	}
	if !t.Firing {
		p.Status = "resolved"
		at := t.At.UTC()
		p.ResolvedAt = &at
	}
	return p
}

// Notify posts every change.
func (w *Webhook) Notify(ctx context.Context, n Notice) error {
	for _, t := range n.Changes {
		if err := post(ctx, w.client(), w.URL, Payload(n.Service, t)); err != nil {
			return err
		}
	}
	return nil
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func post(ctx context.Context, c *http.Client, url string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return slolab.Errorf(slolab.Invalid, "notification URL %q: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "notifying %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 300 {
		return slolab.Errorf(slolab.Unavailable, "notifying %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Alertmanager sends alerts to Alertmanager's v2 API.
type Alertmanager struct {
	// URL is Alertmanager's base URL, e.g. http://alertmanager:9093.
	URL string
	// Hold is how long Alertmanager keeps a firing alert without hearing of
	// it again (default 5m); the watcher resends firing alerts every
	// evaluation, well within it.
	Hold time.Duration
	// GeneratorURL links from the alert back to slolab (a dashboard).
	GeneratorURL string
	Client       *http.Client
}

// PostableAlert is Alertmanager's v2 alert.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Alert builds the Alertmanager alert of a transition. Its name and labels
// are slo.AlertIdentity's, the ones `slolab gen prometheus` gives the same
// alert, so one Alertmanager route matches both. A firing alert ends at +
// hold unless sent again; a resolved one ends at the resolution.
func Alert(svc *spec.Service, t slo.Transition, hold time.Duration, generator string) PostableAlert {
	a := t.Alert
	factor, _ := spec.ParseRatio(a.Factor)
	rule := spec.BurnRateAlert{Severity: a.Severity, Long: time.Duration(a.Long), Short: time.Duration(a.Short), Factor: factor}
	c := svc.CUJ(t.Key.CUJ)
	if c == nil { // a spec that lost the CUJ: its name and owner still say whose it is
		c = &spec.CUJ{Name: t.Key.CUJ, Owner: t.Owner}
	}
	id := slo.AlertIdentity(svc, c, t.Key.Kind, rule)
	pa := PostableAlert{
		Labels: id.Labels,
		Annotations: map[string]string{
			"summary":  Text(svc.Name, t),
			"burnRate": a.Factor,
		},
		StartsAt: t.Since.UTC(), EndsAt: t.At.Add(hold).UTC(), GeneratorURL: generator,
	}
	pa.Labels["alertname"] = id.Name
	if a.LongBurn != nil {
		pa.Annotations["longBurnRate"] = fmt.Sprintf("%.3f", *a.LongBurn)
	}
	if a.ShortBurn != nil {
		pa.Annotations["shortBurnRate"] = fmt.Sprintf("%.3f", *a.ShortBurn)
	}
	maps.Copy(pa.Annotations, id.Annotations)
	if !t.Firing {
		pa.EndsAt = t.At.UTC()
	}
	return pa
}

// Notify sends every firing alert (again) and every resolution.
func (am *Alertmanager) Notify(ctx context.Context, n Notice) error {
	hold := am.Hold
	if hold == 0 {
		hold = 5 * time.Minute
	}
	svc := n.Spec
	if svc == nil {
		svc = &spec.Service{Name: n.Service}
	}
	alerts := []PostableAlert{}
	for _, t := range n.Firing {
		t.At = n.At
		alerts = append(alerts, Alert(svc, t, hold, am.GeneratorURL))
	}
	for _, t := range n.Changes {
		if !t.Firing {
			alerts = append(alerts, Alert(svc, t, hold, am.GeneratorURL))
		}
	}
	if len(alerts) == 0 {
		return nil
	}
	c := am.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return post(ctx, c, strings.TrimSuffix(am.URL, "/")+"/api/v2/alerts", alerts)
}

// Message is a chat message: Slack's incoming webhooks (and Mattermost's,
// and Teams' via a workflow) show Text.
type Message struct {
	Text string `json:"text"`
}

// PostText posts text as a Message to url.
func PostText(ctx context.Context, client *http.Client, url, text string) error {
	if client == nil {
		client = (&Webhook{}).client()
	}
	return post(ctx, client, url, Message{Text: text})
}
