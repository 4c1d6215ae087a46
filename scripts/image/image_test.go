package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestTheImageRunsSlolab builds the image, reads the tarball both as a
// docker-save archive and as an OCI layout (the same image either way),
// unpacks its filesystem and runs `slolab version` from it: as the image's
// non-root user inside the image's root (chroot) when the test runs as
// root, as CI does, else directly.
func TestTheImageRunsSlolab(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a linux binary")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "slolab-image.tar")
	o := Options{Out: out, Arch: runtime.GOARCH, Version: "v0.0.0-test", Root: "../..", CAFile: caBundle}
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}

	docker, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatalf("reading the tarball as docker load does: %v", err)
	}
	untar(t, out, filepath.Join(dir, "layout"))
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatalf("reading the tarball as an OCI layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "slolab:0.0.0-test" {
		t.Fatalf("index: %+v %v", im, err)
	}
	oci, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	// docker load's view has a manifest of its own making; the config and
	// the layer are the same blobs.
	dc, _ := docker.ConfigName()
	oc, _ := oci.ConfigName()
	dl, _ := docker.Layers()
	ol, _ := oci.Layers()
	if dc != oc || len(dl) != 1 || len(ol) != 1 {
		t.Fatalf("the docker view has config %s and %d layers, the OCI view %s and %d", dc, len(dl), oc, len(ol))
	}
	if a, b := digest(t, dl[0]), digest(t, ol[0]); a != b {
		t.Errorf("the docker view's layer is %s, the OCI view's %s", a, b)
	}
	dd, _ := oci.Digest()
	mt, _ := oci.MediaType()
	if !strings.Contains(string(mt), "oci") {
		t.Errorf("manifest media type %s, want OCI's", mt)
	}
	cf, err := oci.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != binPath || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("config: %+v", cf)
	}

	root := filepath.Join(dir, "rootfs")
	rc := mutate.Extract(oci)
	untarReader(t, rc, root)
	rc.Close()
	for _, p := range []string{"usr/share/slolab/examples/chat.yaml", "usr/share/slolab/examples/chat-experiments.yaml", "etc/passwd", "data", "tmp"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("the image lacks /%s: %v", p, err)
		}
	}
	if _, err := os.Stat(caBundle); err == nil {
		if _, err := os.Stat(filepath.Join(root, caBundle)); err != nil {
			t.Errorf("the image lacks the CA certificates: %v", err)
		}
	}

	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command(binPath, "version")
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Dir = "/"
	} else {
		cmd = exec.Command(filepath.Join(root, binPath), "version")
	}
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "slolab v0.0.0-test (go") {
		t.Fatalf("slolab version from the image: %v\n%s", err, got)
	}
	t.Logf("%s", got)

	// The same inputs give the same image.
	again := filepath.Join(dir, "again.tar")
	o.Out = again
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	untar(t, again, filepath.Join(dir, "again"))
	idx2, err := layout.ImageIndexFromPath(filepath.Join(dir, "again"))
	if err != nil {
		t.Fatal(err)
	}
	im2, _ := idx2.IndexManifest()
	if d2 := im2.Manifests[0].Digest; d2 != dd {
		t.Errorf("two builds: %s and %s", dd, d2)
	}
}

func digest(t *testing.T, l interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func untar(t *testing.T, path, dst string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	untarReader(t, f, dst)
}

// untarReader unpacks directories and regular files with their modes.
func untarReader(t *testing.T, r io.Reader, dst string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, filepath.Clean(dst)+string(filepath.Separator)) {
			t.Fatalf("entry %q escapes the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, os.FileMode(h.Mode)&os.ModePerm|sticky(h.Mode))
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&os.ModePerm)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		if os.Geteuid() == 0 {
			os.Lchown(p, h.Uid, h.Gid)
		}
		os.Chtimes(p, time.Now(), h.ModTime)
	}
}

func sticky(mode int64) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
