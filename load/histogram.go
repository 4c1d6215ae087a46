package load

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1ns to 1h with three significant digits, so every
// percentile is within 0.1% of the true value and one histogram takes about
// 270 KB however long the run.
const (
	histMax     = int64(time.Hour)
	histSigFigs = 3
)

// histogram is an HDR histogram of durations, safe for concurrent use.
type histogram struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newHistogram() *histogram {
	return &histogram{h: hdrhistogram.New(1, histMax, histSigFigs)}
}

func (h *histogram) record(d time.Duration) {
	v := min(max(int64(d), 1), histMax)
	h.mu.Lock()
	_ = h.h.RecordValue(v) // in range by construction
	h.mu.Unlock()
}

// snapshot copies the histogram.
func (h *histogram) snapshot() *hdrhistogram.Histogram {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hdrhistogram.Import(h.h.Export())
}
