package load

// RuntimeTimersOnly makes g wait with the runtime's timers alone, which a
// synctest bubble controls; the timerfd follows the real clock.
func RuntimeTimersOnly(g *Generator) { g.coarseOnly = true }
