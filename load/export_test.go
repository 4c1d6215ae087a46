package load

// RuntimeTimersOnly makes g wait with the runtime's timers alone, which a
// synctest bubble controls; the timerfd follows the real clock.
func RuntimeTimersOnly(g *Generator) { g.coarseOnly = true }

// EscapedPath is the request target the generator's own client writes for p.
func EscapedPath(p string) string { return string(appendEscapedPath(nil, []byte(p))) }
