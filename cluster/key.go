package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"slolab.dev/slolab"
)

// KeySize is the size of the keys GenerateKey makes (AES-256).
const KeySize = 32

// ParseKey reads a shared cluster key: the base64 encoding of 16, 24 or 32
// random bytes, as GenerateKey or `openssl rand -base64 32` make it.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, slolab.Errorf(slolab.Invalid, "the cluster key is empty")
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, slolab.Errorf(slolab.Invalid, "the cluster key is not base64: want 32 random bytes encoded, from 'slolab cluster keygen' or 'openssl rand -base64 32'")
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, slolab.Errorf(slolab.Invalid, "the cluster key holds %d bytes: want 16, 24 or 32 (AES-128, -192 or -256), e.g. from 'slolab cluster keygen'", len(key))
}

// GenerateKey returns a new random key, base64-encoded.
func GenerateKey() (string, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// hostname names a member that was given no name: the machine's host name
// (a Kubernetes pod's name).
func hostname() (string, error) {
	h, err := os.Hostname()
	if err != nil || h == "" {
		var b [4]byte
		if _, rerr := rand.Read(b[:]); rerr != nil {
			return "", fmt.Errorf("naming the cluster member: %w", err)
		}
		return "slolab-" + hex.EncodeToString(b[:]), nil
	}
	return h, nil
}

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into
// structured records at the matching level.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelDebug, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			line, level = strings.TrimSpace(rest), l
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.Log(context.Background(), level, "cluster: "+line)
	return len(p), nil
}
