// Package httpserve runs an http.Server on a listener until its context ends,
// then drains in-flight requests for a bounded time. Every slolab listener
// (proxy, admin API, dashboard, demo app) shuts down the same way.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Options tune a server. Zero values take the defaults noted.
type Options struct {
	// Drain bounds how long in-flight requests may finish after ctx ends (default 30s).
	Drain time.Duration
	// ReadHeaderTimeout guards against clients that never finish a request head (default 30s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 2m).
	IdleTimeout time.Duration
	// H2C also serves HTTP/2 without TLS (prior knowledge), besides HTTP/1.1.
	H2C bool
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish within Drain, and closes what is
// left. It returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opt Options) error {
	if opt.Drain == 0 {
		opt.Drain = 30 * time.Second
	}
	if opt.ReadHeaderTimeout == 0 {
		opt.ReadHeaderTimeout = 30 * time.Second
	}
	if opt.IdleTimeout == 0 {
		opt.IdleTimeout = 2 * time.Minute
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opt.ReadHeaderTimeout,
		IdleTimeout:       opt.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if opt.H2C {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.Background(), opt.Drain)
	defer cancel()
	err := srv.Shutdown(dctx)
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close()
		err = nil
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
