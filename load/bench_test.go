package load_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"slolab.dev/slolab/load"
	"slolab.dev/slolab/spec"
)

// BenchmarkSendToALoopbackServer sends b.N requests of the load benchmark's
// plan (one CUJ, GET /, identity headers) at 4,000/s over loopback to a
// minimal HTTP/1.1 server in this process, so that allocations per request
// (allocs/op) and a CPU profile show the generator's own costs:
//
//	go test -run '^$' -bench SendToALoopback -benchtime 20000x -benchmem -cpuprofile cpu.out ./load
func BenchmarkSendToALoopbackServer(b *testing.B) {
	addr := rawServer(b)
	f, err := spec.Parse("bench.yaml", []byte(`apiVersion: slolab.dev/v1
kind: Service
metadata: {name: bench}
spec:
  cujs:
    - name: root
      owner: bench
      routes: ["GET /"]
      availability: {objective: 99.9%}
`))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := f.Service()
	if err != nil {
		b.Fatal(err)
	}
	const perSecond = 4000
	d := time.Duration(b.N) * time.Second / perSecond
	p, err := load.NewPlan(svc, load.PlanConfig{Stages: []load.Stage{{From: spec.Rate{Freq: perSecond, Per: time.Second}, Duration: d}}, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	g, err := load.New(load.Config{Plan: p, Target: "http://" + addr})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	r, err := g.Run(context.Background())
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if int(r.Total.Status.C2xx) != b.N {
		b.Fatalf("%d of %d requests answered 2xx (dropped %d, errors %d: %s)", r.Total.Status.C2xx, b.N, r.Total.Dropped, r.Total.Errors, r.Total.LastError)
	}
	b.ReportMetric(float64(time.Duration(r.ScheduleLag.P99))/1e6, "p99-lag-ms")
}

// rawServer answers every HTTP/1.1 request on a keep-alive connection with
// "200 ok" straight from the socket, at as little cost as possible.
func rawServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	response := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r, w := bufio.NewReaderSize(c, 16<<10), bufio.NewWriterSize(c, 16<<10)
				for {
					var n int64
					for {
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
							n, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
						}
					}
					if _, err := r.Discard(int(n)); err != nil {
						return
					}
					_, _ = w.Write(response)
					if r.Buffered() == 0 && w.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
