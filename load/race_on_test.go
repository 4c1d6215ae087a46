//go:build race

package load_test

// raceDetector: the race detector slows every send several times over, so the
// real-time accuracy tests cannot hold their rates under it.
const raceDetector = true
