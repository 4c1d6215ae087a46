package demoapp

import "time"

// NextDelay draws the next baseline delay of a route, as a request would.
func (a *App) NextDelay(pattern string) time.Duration { return a.latency[pattern].next() }
