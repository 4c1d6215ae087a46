package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// copyBody streams the response body as the upstream frames it. upErr is
// the upstream's failure (it broke off), cErr the client's (it left).
func (c *conn) copyBody(bw *bufio.Writer, uc *upConn) (upErr, cErr error) {
	switch c.resp.framing {
	case framingLength:
		return c.copyLength(bw, uc, c.resp.contentLength)
	case framingChunked:
		return c.copyChunked(bw, uc)
	case framingClose:
		for {
			if err := c.fill(bw, uc); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, nil // the end of a body delimited by the connection's end
				}
				return c.classify(err)
			}
			b, _ := uc.br.Peek(uc.br.Buffered())
			c.keepSample(b)
			if _, err := bw.Write(b); err != nil {
				return nil, err
			}
			_, _ = uc.br.Discard(len(b))
		}
	}
	return nil, nil
}

// keepSample keeps what fits of b in the error response's sample, while
// there is one.
func (c *conn) keepSample(b []byte) {
	if c.sample != nil {
		*c.sample = keepBytes(*c.sample, b)
	}
}

// copyLength copies n bytes of body. Large bodies go straight from one
// connection to the other through a 32 KiB buffer.
func (c *conn) copyLength(bw *bufio.Writer, uc *upConn, n int64) (upErr, cErr error) {
	br := uc.br
	for n > 0 {
		if br.Buffered() == 0 && n >= copyBufSize {
			if err := bw.Flush(); err != nil {
				return nil, err
			}
			return c.copyDirect(uc, n)
		}
		if err := c.fill(bw, uc); err != nil {
			return c.classify(err)
		}
		b, _ := br.Peek(int(min(int64(br.Buffered()), n)))
		c.keepSample(b)
		if _, err := bw.Write(b); err != nil {
			return nil, err
		}
		_, _ = br.Discard(len(b))
		n -= int64(len(b))
	}
	return nil, nil
}

const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyDirect copies n bytes from the upstream connection (its buffer
// empty) to the client connection.
func (c *conn) copyDirect(uc *upConn, n int64) (upErr, cErr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for n > 0 {
		var m int
		err := c.readUpstream(uc, func() (err error) {
			m, err = uc.nc.Read(buf[:min(int64(len(buf)), n)])
			return err
		})
		if m > 0 {
			c.keepSample(buf[:m])
			if _, werr := c.w.Write(buf[:m]); werr != nil {
				return nil, werr
			}
			n -= int64(m)
		}
		if err != nil && n > 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return c.classify(err)
		}
	}
	return nil, nil
}

// copyChunked copies a chunked body as it comes, chunk by chunk, its
// framing checked and kept: chunk extensions and trailers pass as sent.
func (c *conn) copyChunked(bw *bufio.Writer, uc *upConn) (upErr, cErr error) {
	for {
		line, err := c.readLine(bw, uc)
		if err != nil {
			return c.classify(err)
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return errors.New("malformed chunk size line"), nil
		}
		bw.Write(line)
		if _, err := bw.WriteString("\r\n"); err != nil {
			return nil, err
		}
		if size == 0 {
			for { // the trailer section, up to an empty line
				line, err := c.readLine(bw, uc)
				if err != nil {
					return c.classify(err)
				}
				bw.Write(line)
				if _, err := bw.WriteString("\r\n"); err != nil {
					return nil, err
				}
				if len(line) == 0 {
					return nil, nil
				}
			}
		}
		if upErr, cErr := c.copyLength(bw, uc, size); upErr != nil || cErr != nil {
			return upErr, cErr
		}
		if line, err := c.readLine(bw, uc); err != nil || len(line) != 0 {
			if err == nil {
				err = errors.New("chunk data longer than its size")
			}
			return c.classify(err)
		}
		if _, err := bw.WriteString("\r\n"); err != nil {
			return nil, err
		}
	}
}

// readLine reads one line of chunked framing (without its CRLF), at most 4 KiB.
func (c *conn) readLine(bw *bufio.Writer, uc *upConn) ([]byte, error) {
	for {
		buf, _ := uc.br.Peek(uc.br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := buf[:i+1]
			_, _ = uc.br.Discard(i + 1)
			if !bytes.HasSuffix(line, []byte("\r\n")) {
				return nil, errors.New("chunked framing: a line without CRLF")
			}
			return line[:len(line)-2], nil
		}
		if len(buf) == uc.br.Size() {
			return nil, errors.New("chunked framing: a line over 4 KiB")
		}
		if len(buf) > 0 {
			err := c.readUpstream(uc, func() error { _, err := uc.br.Peek(len(buf) + 1); return err })
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := c.fill(bw, uc); err != nil {
			return nil, err
		}
	}
}

// parseChunkSize reads a chunk-size line: hexadecimal digits, then
// optionally chunk extensions after ';'.
func parseChunkSize(line []byte) (int64, bool) {
	digits, _, _ := bytes.Cut(line, []byte(";"))
	digits = bytes.TrimRight(digits, " \t")
	if len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(digits), 16, 64)
	return n, err == nil && digits[0] != '+' && digits[0] != '-'
}

// fill makes sure the upstream's buffer holds a byte, flushing what the
// client has not yet received first: a response streams as it comes.
func (c *conn) fill(bw *bufio.Writer, uc *upConn) error {
	if uc.br.Buffered() > 0 {
		return nil
	}
	if err := bw.Flush(); err != nil {
		return clientError{err}
	}
	err := c.readUpstream(uc, func() error { _, err := uc.br.Peek(1); return err })
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readUpstream runs one read of the body that may block. While it blocks
// longer than watchAfter the client is watched, and a client that leaves
// cuts the read short.
func (c *conn) readUpstream(uc *upConn, read func() error) error {
	if c.watch.running || c.upload != nil {
		uc.setDeadline(time.Time{})
		return read()
	}
	uc.setDeadline(time.Now().Add(watchAfter))
	err := read()
	if !isTimeout(err) {
		return err
	}
	c.watch.interrupt.Store(uc)
	c.watch.start(c)
	uc.setDeadline(time.Time{})
	if !c.watch.goneAt().IsZero() {
		return clientError{io.ErrClosedPipe}
	}
	return read()
}

// clientError is the client's failure in the middle of a copy.
type clientError struct{ err error }

func (e clientError) Error() string { return e.err.Error() }
func (e clientError) Unwrap() error { return e.err }

// classify tells the client's failures from the upstream's.
func (c *conn) classify(err error) (upErr, cErr error) {
	var ce clientError
	if errors.As(err, &ce) || !c.watch.goneAt().IsZero() {
		return nil, err
	}
	return err, nil
}

// upload sends a request body that had not arrived with its head, while
// the response is awaited (an upstream may answer before it has read all
// of it).
type upload struct {
	left    int64 // the body's bytes to send
	sent    atomic.Int64
	done    chan struct{}
	readErr error // the client's: it left or broke off the body
	err     error // the upstream's
}

var errClientBody = errors.New("the client broke off the request body")

func (c *conn) startUpload(uc *upConn, timeout time.Duration) *upload {
	n := c.bodyLeft
	u := &upload{left: n, done: make(chan struct{})}
	c.upload = u
	c.setDeadline(time.Time{}) // a long upload is not an idle connection
	go func() {
		defer close(u.done)
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		buf := *bp
		for u.sent.Load() < n {
			m, err := c.br.Read(buf[:min(int64(len(buf)), n-u.sent.Load())])
			if m > 0 {
				if _, werr := uc.nc.Write(buf[:m]); werr != nil {
					u.err = werr
					return
				}
				u.sent.Add(int64(m))
			}
			if err != nil && u.sent.Load() < n {
				u.readErr = err
				_ = uc.nc.SetReadDeadline(aLongTimeAgo) // stop waiting for a response
				return
			}
		}
		// The request is out: the upstream has its timeout to answer.
		_ = uc.nc.SetReadDeadline(time.Now().Add(timeout))
	}()
	return u
}

// complete reports whether the whole body went out.
func (u *upload) complete() bool { return u.sent.Load() == u.left }

// finishUpload ends the upload: it waits for it when the whole body went
// out, and stops it otherwise (the upstream answered without reading it
// all, or failed). It returns errClientBody when the client broke the body
// off.
func (c *conn) finishUpload(uc *upConn) error {
	u := c.upload
	if u == nil {
		return nil
	}
	if !u.complete() {
		select {
		case <-u.done:
		default:
			uc.nc.Close()
			_ = c.nc.SetReadDeadline(aLongTimeAgo)
			<-u.done
			c.setDeadline(time.Time{})
		}
	}
	<-u.done
	c.upload = nil
	c.bodyLeft = u.left - u.sent.Load()
	switch {
	case u.readErr != nil:
		return errClientBody
	case u.err != nil:
		return u.err
	case c.bodyLeft > 0:
		return errors.New("request body not sent whole")
	}
	return nil
}
