//go:build race

package cli

// raceDetector: under the race detector the pure-Go SQLite runs many times
// slower, so the browser test's lab writes a shorter synthetic history.
const raceDetector = true
