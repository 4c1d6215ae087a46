package errclass

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names: a contract users script against.
const (
	// MetricClasses is the number of error classes held: labels cuj, kind,
	// injected. Its cardinality is CUJs × kinds × 2, never per class.
	MetricClasses = "slolab_error_classes"
	// MetricClassesDropped counts classes dropped to keep the bound per
	// CUJ: labels cuj, injected.
	MetricClassesDropped = "slolab_error_classes_dropped_total"
)

var (
	classesDesc = prometheus.NewDesc(MetricClasses, "Error classes the proxy holds (bounded per CUJ), by failure kind; injected ones apart.", []string{"cuj", "kind", "injected"}, nil)
	droppedDesc = prometheus.NewDesc(MetricClassesDropped, "Error classes dropped, least recently seen first, to keep the bound per CUJ.", []string{"cuj", "injected"}, nil)
)

var _ prometheus.Collector = (*Classifier)(nil)

// Describe implements prometheus.Collector.
func (c *Classifier) Describe(ch chan<- *prometheus.Desc) {
	ch <- classesDesc
	ch <- droppedDesc
}

// Collect implements prometheus.Collector.
func (c *Classifier) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.Stats() {
		inj := strconv.FormatBool(st.Injected)
		for kind, n := range st.Kinds {
			ch <- prometheus.MustNewConstMetric(classesDesc, prometheus.GaugeValue, float64(n), st.CUJ, kind, inj)
		}
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(st.Dropped), st.CUJ, inj)
	}
}
