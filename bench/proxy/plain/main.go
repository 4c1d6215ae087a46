// Command plain is the baseline the proxy benchmark compares slolab with: a
// reverse proxy as most Go programs write it, httputil.NewSingleHostReverseProxy,
// with net/http's default transport or, with -max-idle-per-host, one that
// keeps enough idle connections to the upstream for a busy proxy (the
// default keeps 2, so under load most requests open a new connection).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "upstream base URL")
	maxIdle := flag.Int("max-idle-per-host", 0, "idle keep-alive connections kept to the upstream (0: net/http's default, 2)")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "plain: -upstream http://HOST:PORT is required")
		os.Exit(2)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	if *maxIdle > 0 {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = *maxIdle
		t.MaxIdleConns = max(t.MaxIdleConns, *maxIdle) // the total cap (100) would bind first
		rp.Transport = t
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plain:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	fmt.Fprintln(os.Stderr, "plain:", http.Serve(ln, rp))
	os.Exit(1)
}
