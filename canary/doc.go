// Package canary judges a canary release per Critical User Journey: every
// CUJ's canary is compared with its stable release and with its SLOs, using
// exact tests that hold for a low-traffic CUJ's handful of requests, and the
// release passes only when every CUJ does. It also serves the verdict to
// Argo Rollouts' web metric provider and Flagger's webhooks, and drives a
// local progressive rollout through the proxy's admin API.
package canary
