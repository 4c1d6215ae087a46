// Package helm tests the slolab Helm chart in slolab/ with the real Helm:
// lint, and every object either mode renders decoded strictly into its
// Kubernetes or Prometheus Operator Go type.
package helm
