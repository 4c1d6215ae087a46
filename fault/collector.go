package fault

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	matchedDesc = prometheus.NewDesc("slolab_fault_matched_total",
		"Requests a fault rule's selector matched while the rule was active.", []string{"fault"}, nil)
	injectedDesc = prometheus.NewDesc("slolab_fault_injected_total",
		"Requests a fault rule injected.", []string{"fault"}, nil)
)

// Collector exposes the registry's per-rule counters to Prometheus.
type Collector struct{ Registry *Registry }

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- matchedDesc
	ch <- injectedDesc
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.Registry.List() {
		ch <- prometheus.MustNewConstMetric(matchedDesc, prometheus.CounterValue, float64(st.Matched), st.Rule.Name)
		ch <- prometheus.MustNewConstMetric(injectedDesc, prometheus.CounterValue, float64(st.Injected), st.Rule.Name)
	}
}
