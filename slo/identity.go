package slo

import (
	"maps"

	"slolab.dev/slolab/spec"
)

// Identity is what Alertmanager routes a burn-rate alert on: its name,
// labels and annotations. The engine's notifications and every generator
// that writes alerts take it from AlertIdentity, so one route matches the
// alert whichever of them raised it.
type Identity struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

// AlertIdentity returns the identity of one row of an SLO's alert table.
// Labels: service, cuj, slo (availability or latency), severity,
// long_window, short_window, burn_rate, and owner when the CUJ has one;
// then, each refining the last, the labels and annotations of the service's
// alerting, the CUJ's, the service's for the severity (alerting.page or
// alerting.ticket) and the CUJ's for the severity. The name is the last
// one given, spec.DefaultAlertName without one. Annotations hold only what
// the spec gives: callers lay them over their own summaries.
func AlertIdentity(svc *spec.Service, c *spec.CUJ, kind Kind, a spec.BurnRateAlert) Identity {
	id := Identity{
		Name: spec.DefaultAlertName,
		Labels: map[string]string{
			"service":      svc.Name,
			"cuj":          c.Name,
			"slo":          string(kind),
			"severity":     a.Severity,
			"long_window":  spec.FormatDuration(a.Long),
			"short_window": spec.FormatDuration(a.Short),
			"burn_rate":    a.Factor.Decimal(),
		},
		Annotations: map[string]string{},
	}
	if c.Owner != "" {
		id.Labels["owner"] = c.Owner
	}
	for _, x := range []*spec.AlertIdentity{
		identityOf(svc.Alerting), identityOf(c.Alerting),
		severityOf(svc.Alerting, a.Severity), severityOf(c.Alerting, a.Severity),
	} {
		if x == nil {
			continue
		}
		if x.Name != "" {
			id.Name = x.Name
		}
		maps.Copy(id.Labels, x.Labels)
		maps.Copy(id.Annotations, x.Annotations)
	}
	return id
}

func identityOf(a *spec.Alerting) *spec.AlertIdentity {
	if a == nil {
		return nil
	}
	return &a.AlertIdentity
}

func severityOf(a *spec.Alerting, severity string) *spec.AlertIdentity {
	if s := a.Severity(severity); s != nil {
		return &s.AlertIdentity
	}
	return nil
}
