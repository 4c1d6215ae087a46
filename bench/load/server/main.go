// Command server is the trivial loopback HTTP server the load-generator
// benchmark points slolab and vegeta at: every request gets "200 ok". With
// -raw it answers HTTP/1.1 keep-alive requests straight from the socket,
// without net/http, so that the server costs as little CPU as possible and
// the generators' own costs decide the result.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	raw := flag.Bool("raw", true, "answer from the socket without net/http")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String()) // the harness reads the address from the first line
	if !*raw {
		err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", "2")
			_, _ = w.Write([]byte("ok"))
		}))
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(1)
		}
		go serveRaw(c)
	}
}

var response = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")

// serveRaw answers each request on a keep-alive connection. It reads the
// header block and skips a Content-Length body; it is enough for the
// generators under test, not a general server.
func serveRaw(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	for {
		var bodyLen int64
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > 16 && bytes.EqualFold(line[:15], []byte("content-length:")) {
				bodyLen, _ = strconv.ParseInt(string(bytes.TrimSpace(line[15:])), 10, 64)
			}
		}
		if bodyLen > 0 {
			if _, err := r.Discard(int(bodyLen)); err != nil {
				return
			}
		}
		_, _ = w.Write(response)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}
