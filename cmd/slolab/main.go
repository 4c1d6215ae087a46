// Command slolab makes SLOs per Critical User Journey tangible: it proxies,
// measures, injects exact faults, simulates SLO states, runs experiments and
// judges canaries from one spec. See `slolab --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"slolab.dev/slolab/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the first signal asks for a clean shutdown; a second one ends the process at once
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
