// Command plain is the baseline the proxy benchmark compares slolab with: a
// reverse proxy as most Go programs write it, httputil.NewSingleHostReverseProxy
// with net/http's default transport and nothing else.
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
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "plain: -upstream http://HOST:PORT is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plain:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	fmt.Fprintln(os.Stderr, "plain:", http.Serve(ln, httputil.NewSingleHostReverseProxy(u)))
	os.Exit(1)
}
