package cli

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/demoapp"
	"slolab.dev/slolab/internal/httpserve"
)

// demoAppOptions are the flags of `slolab demo-app`, also used by `slolab lab`.
type demoAppOptions struct {
	listen    string
	seed      uint64
	blobs     string
	noLatency bool
}

func demoAppCmd(e *env) *cobra.Command {
	o := &demoAppOptions{}
	cmd := &cobra.Command{
		Use:   "demo-app [--listen ADDR]",
		Short: "Run the chat service of examples/chat.yaml: a real app to put behind the proxy",
		Long: `Run the demo chat service, the app 'slolab lab' puts behind the proxy.

It serves every route of examples/chat.yaml with JSON APIs (log in and out,
send, edit and read messages, upload and download files, add and list tasks)
and a small web UI at / that uses them, with relative URLs so it works
through the proxy. Open the UI through the proxy and click through while a
simulation runs to feel what an SLO state means.

Each route waits a baseline latency drawn from --seed (a few to tens of
milliseconds, never enough to break a latency SLO of examples/chat.yaml by
itself), so percentiles look like a real service's. Storage is SQLite in
memory, seeded with messages 1..500 (the ids the spec's load edits and
reads). Uploaded files go to a blob store over TCP: the app starts its own on
a loopback port unless --blobs names one, so a TCP proxy can sit between
the app and its dependency.`,
		Example: `  slolab demo-app --listen 127.0.0.1:3000
  slolab proxy --spec examples/chat.yaml --upstream http://127.0.0.1:3000
  # then open http://127.0.0.1:8080/ and click through the app`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", o.listen)
			if err != nil {
				return fmt.Errorf("the demo app cannot listen on %s: %w (choose another with --listen)", o.listen, err)
			}
			app, err := demoapp.New(demoapp.Config{Seed: o.seed, Blobs: o.blobs, NoLatency: o.noLatency})
			if err != nil {
				ln.Close()
				return err
			}
			fmt.Fprintf(e.stderr, "slolab demo-app: http://%s/ (blob store %s, seed %d)\n", ln.Addr(), app.BlobAddr(), o.seed)
			return runDemoApp(e.ctx, app, ln)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.listen, "listen", "127.0.0.1:3000", "address the app listens on")
	o.flags(cmd)
	return cmd
}

func (o *demoAppOptions) flags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the app's baseline latencies")
	fs.StringVar(&o.blobs, "blobs", "", "address (host:port) of the blob store for files; default: the app starts its own on loopback")
	fs.BoolVar(&o.noLatency, "no-latency", false, "answer at once, without the baseline latencies")
}

// runDemoApp serves app on ln until ctx ends, then closes it.
func runDemoApp(ctx context.Context, app *demoapp.App, ln net.Listener) error {
	err := httpserve.Serve(ctx, ln, app.Handler(), httpserve.Options{})
	if cerr := app.Close(); err == nil {
		err = cerr
	}
	return err
}
