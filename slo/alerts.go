// Package slo is the SLO engine's maths: budgets, burn rates, windows and
// multiwindow multi-burn-rate alerts, as pure functions over event counts.
package slo

import (
	"time"

	"slolab.dev/slolab/spec"
)

// Workbook is the SRE Workbook's multiwindow multi-burn-rate alert table for a
// 30-day SLO: page when 2% of the budget burns in an hour or 5% in six hours,
// open a ticket at 10% in three days. Every part of slolab that evaluates or
// generates alerts reads this one table.
var Workbook = []spec.BurnRateAlert{
	{Severity: "page", Long: time.Hour, Short: 5 * time.Minute, Factor: spec.NewRatio(72, 5)}, // 14.4
	{Severity: "page", Long: 6 * time.Hour, Short: 30 * time.Minute, Factor: spec.NewRatio(6, 1)},
	{Severity: "ticket", Long: 24 * time.Hour, Short: 2 * time.Hour, Factor: spec.NewRatio(3, 1)},
	{Severity: "ticket", Long: 3 * 24 * time.Hour, Short: 6 * time.Hour, Factor: spec.NewRatio(1, 1)},
}

// DefaultMinBadEvents is the low-traffic guard when the spec sets none: an
// alert needs at least this many bad events in its long window.
const DefaultMinBadEvents = 5

// StatusWindows are the windows over which status reports burn rates, besides
// the SLO's own window.
var StatusWindows = []time.Duration{
	5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour,
}

// AlertsFor returns the burn-rate alerts of a CUJ: its own table, else the
// service's, else the Workbook's, without the rows of a severity the CUJ or
// the service switched off (alerting.page.disable, as Sloth's
// page_alert.disable).
func AlertsFor(svc *spec.Service, c *spec.CUJ) []spec.BurnRateAlert {
	table := Workbook
	switch {
	case c != nil && c.Alerting != nil && len(c.Alerting.BurnRates) > 0:
		table = c.Alerting.BurnRates
	case svc != nil && svc.Alerting != nil && len(svc.Alerting.BurnRates) > 0:
		table = svc.Alerting.BurnRates
	}
	off := func(severity string) bool {
		for _, a := range []*spec.Alerting{serviceAlerting(svc), cujAlerting(c)} {
			if s := a.Severity(severity); s != nil && s.Disable {
				return true
			}
		}
		return false
	}
	if !off("page") && !off("ticket") {
		return table
	}
	var on []spec.BurnRateAlert
	for _, a := range table {
		if !off(a.Severity) {
			on = append(on, a)
		}
	}
	return on
}

func serviceAlerting(svc *spec.Service) *spec.Alerting {
	if svc == nil {
		return nil
	}
	return svc.Alerting
}

func cujAlerting(c *spec.CUJ) *spec.Alerting {
	if c == nil {
		return nil
	}
	return c.Alerting
}

// MinBadEventsFor returns the low-traffic guard of a CUJ.
func MinBadEventsFor(svc *spec.Service, c *spec.CUJ) int64 {
	if c != nil && c.Alerting != nil && c.Alerting.MinBadEvents > 0 {
		return c.Alerting.MinBadEvents
	}
	if svc != nil && svc.Alerting != nil && svc.Alerting.MinBadEvents > 0 {
		return svc.Alerting.MinBadEvents
	}
	return DefaultMinBadEvents
}
