package sli

// Metric names: a contract users script against (docs/architecture.md). Generated rules
// and dashboards read these names from here.
const (
	// MetricRequests counts requests: labels cuj, route, method, code, group,
	// revision. revision is "stable" or "canary" while the proxy splits
	// traffic (or reads a revision header), and empty otherwise — so queries
	// written before the label existed still select the same series.
	// code is the HTTP status, or "0" when the proxy answered nothing (an
	// aborted connection); an abort counts against availability.
	MetricRequests = "slolab_requests_total"
	// MetricDuration is the request duration histogram: labels cuj, group, revision. Its
	// buckets include every CUJ's latency threshold, so "good" is exact.
	MetricDuration = "slolab_request_duration_seconds"
	// MetricFaultMatched counts requests a fault rule's selector matched: label fault.
	MetricFaultMatched = "slolab_fault_matched_total"
	// MetricFaultInjected counts requests a fault rule injected: label fault.
	MetricFaultInjected = "slolab_fault_injected_total"
)

// AvailabilityBadCodes is a PromQL regular expression for the code label of
// requests that count against availability: 5xx and no response.
const AvailabilityBadCodes = "5..|0"
