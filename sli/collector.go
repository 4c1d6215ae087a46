package sli

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

var (
	requestsDesc = prometheus.NewDesc(MetricRequests,
		"Requests through the slolab proxy by CUJ, route, method, status code (0: no response), client group and revision (stable or canary while the proxy splits traffic, else empty).",
		[]string{"cuj", "route", "method", "code", "group", "revision"}, nil)
	durationDesc = prometheus.NewDesc(MetricDuration,
		"Request duration from reading the request head to writing the last byte, by CUJ, client group and revision. Buckets include every CUJ's latency threshold.",
		[]string{"cuj", "group", "revision"}, nil)
)

// Describe implements prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- durationDesc
}

// Collect implements prometheus.Collector: it reads the live counters.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	nb := len(r.bounds) + 1
	cujs := r.cfg.Routes.CUJs()
	for cuj, routes := range r.cujRoutes {
		for rev := range match.NumRevisions {
			for g := range match.NumGroups {
				hist := make([]uint64, nb)
				var sumNs uint64
				seen := false
				for _, route := range routes {
					s := r.series[route][rev][g].Load()
					if s == nil {
						continue
					}
					seen = true
					r.collectCodes(ch, s)
					for i := range hist {
						hist[i] += s.hist[i].Load()
					}
					sumNs += s.sumNs.Load()
				}
				if !seen {
					continue
				}
				buckets := make(map[float64]uint64, len(r.bounds))
				var cum uint64
				for i, b := range r.bounds {
					cum += hist[i]
					buckets[b.Seconds()] = cum
				}
				count := cum + hist[nb-1]
				ch <- prometheus.MustNewConstHistogram(durationDesc, count, float64(sumNs)/1e9, buckets,
					cujs[cuj], match.Group(g).String(), match.Revision(rev).String())
			}
		}
	}
}

func (r *Recorder) collectCodes(ch chan<- prometheus.Metric, s *series) {
	route := s.route.Pattern
	if route == "" {
		route = spec.OtherCUJ
	}
	for m := range s.codes {
		codes := s.codes[m].Load()
		if codes == nil {
			continue
		}
		for code := range codes {
			if v := codes[code].Load(); v > 0 {
				ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(v),
					s.route.CUJName, route, methods[m], strconv.Itoa(code), s.group.String(), s.revision.String())
			}
		}
	}
}
