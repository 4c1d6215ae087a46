package demoapp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BlobServer is the chat service's dependency: a small blob store spoken to
// over TCP, one request per connection, so that a TCP proxy between the app
// and the store (latency, resets, a black hole) shows as failed or slow
// uploads in the upload CUJ.
//
// The protocol, in ASCII lines:
//
//	PUT <size>\n<size bytes>   →  OK <key>\n
//	GET <key>\n                →  OK <size>\n<size bytes>  |  ERR <message>\n
type BlobServer struct {
	mu    sync.Mutex
	blobs map[string][]byte
	order []string // keys, oldest first
	keep  int
	next  uint64
}

// MaxBlobBytes bounds one blob, like the app's upload limit.
const MaxBlobBytes = 1 << 20

// NewBlobServer returns a store holding at most keep blobs (default
// 10,000), dropping the oldest beyond that.
func NewBlobServer(keep int) *BlobServer {
	if keep <= 0 {
		keep = 10_000
	}
	return &BlobServer{blobs: map[string][]byte{}, keep: keep}
}

// Serve answers connections on ln until ctx ends; it then closes ln and waits
// for the connections being served.
func (b *BlobServer) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("blob store: %w", err)
		}
		wg.Go(func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a failed deadline only leaves the conn without one
			b.serve(conn)
		})
	}
}

func (b *BlobServer) serve(conn net.Conn) {
	r := bufio.NewReader(io.LimitReader(conn, MaxBlobBytes+256))
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch verb {
	case "PUT":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 || n > MaxBlobBytes {
			fmt.Fprintf(conn, "ERR size must be 0..%d bytes\n", MaxBlobBytes)
			return
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return
		}
		fmt.Fprintf(conn, "OK %s\n", b.put(data))
	case "GET":
		data, ok := b.get(arg)
		if !ok {
			fmt.Fprintf(conn, "ERR no blob %q\n", arg)
			return
		}
		fmt.Fprintf(conn, "OK %d\n", len(data))
		conn.Write(data) //nolint:errcheck // the client sees a short read
	default:
		fmt.Fprintf(conn, "ERR unknown request %q: want PUT or GET\n", verb)
	}
}

func (b *BlobServer) put(data []byte) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	key := "b" + strconv.FormatUint(b.next, 10)
	b.blobs[key] = data
	b.order = append(b.order, key)
	if len(b.order) > b.keep {
		delete(b.blobs, b.order[0])
		b.order = b.order[1:]
	}
	return key
}

func (b *BlobServer) get(key string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.blobs[key]
	return data, ok
}

// blobClient calls the blob store, one connection per call.
type blobClient struct {
	addr    string
	timeout time.Duration
}

// errBlobUnavailable: the dependency failed; the app answers 502.
var errBlobUnavailable = errors.New("the blob store is unavailable")

func (c *blobClient) call(ctx context.Context, req []byte) (string, *bufio.Reader, net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w: %w", errBlobUnavailable, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline) //nolint:errcheck // a failed deadline only leaves the conn without one
	if _, err := conn.Write(req); err != nil {
		conn.Close()
		return "", nil, nil, fmt.Errorf("%w: %w", errBlobUnavailable, err)
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		conn.Close()
		return "", nil, nil, fmt.Errorf("%w: %w", errBlobUnavailable, err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		conn.Close()
		return "", nil, nil, fmt.Errorf("blob store: %s", msg)
	}
	rest, ok := strings.CutPrefix(line, "OK ")
	if !ok {
		conn.Close()
		return "", nil, nil, fmt.Errorf("%w: unexpected answer %q", errBlobUnavailable, line)
	}
	return rest, r, conn, nil
}

func (c *blobClient) put(ctx context.Context, data []byte) (string, error) {
	req := append([]byte(fmt.Sprintf("PUT %d\n", len(data))), data...)
	key, _, conn, err := c.call(ctx, req)
	if err != nil {
		return "", err
	}
	conn.Close()
	return key, nil
}

func (c *blobClient) get(ctx context.Context, key string) ([]byte, error) {
	size, r, conn, err := c.call(ctx, []byte("GET "+key+"\n"))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	n, err := strconv.Atoi(size)
	if err != nil || n < 0 || n > MaxBlobBytes {
		return nil, fmt.Errorf("%w: bad size %q", errBlobUnavailable, size)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("%w: %w", errBlobUnavailable, err)
	}
	return data, nil
}
