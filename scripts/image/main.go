// Command image builds slolab's OCI image without a Docker daemon: a static
// linux binary, the example specs, CA certificates and a non-root user on an
// empty base. It writes one tarball that is both an OCI image layout
// (index.json, blobs/) and a `docker save` archive (manifest.json), so
// `docker load -i`, `podman load -i`, `crane push` and `skopeo copy
// oci-archive:` all take it. Built twice from the same commit, the image
// has the same digest: every file time is SOURCE_DATE_EPOCH (default 0).
//
//	go run ./scripts/image -o bin/slolab-image.tar    (make image)
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's layout.
const (
	binPath      = "/usr/local/bin/slolab"
	examplesPath = "/usr/share/slolab/examples"
	workDir      = "/data" // the audit log and the store land here by default
	uid          = 65532   // "nonroot", as distroless images name it
	caBundle     = "/etc/ssl/certs/ca-certificates.crt"
)

// Options configure a build.
type Options struct {
	Out     string // the tarball to write
	Arch    string // GOARCH of the binary and the image
	Tag     string // the reference the tarball names, e.g. slolab:v1.2.3
	Version string // slolab version, stamped into the binary
	Root    string // the module's directory
	Epoch   time.Time
	CAFile  string // the CA bundle to copy in ("" for none)
}

func main() {
	o := Options{}
	flag.StringVar(&o.Out, "o", "bin/slolab-image.tar", "the image tarball to write")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "the image's architecture (GOARCH)")
	flag.StringVar(&o.Tag, "tag", "", "the image reference the tarball names (default slolab:VERSION)")
	flag.StringVar(&o.Version, "version", "", "the version stamped into the binary (default git describe)")
	flag.StringVar(&o.CAFile, "ca", caBundle, "CA certificates to copy into the image (\"\" for none), for https upstreams")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options) error {
	if o.Root == "" {
		o.Root = "."
	}
	if o.Version == "" {
		o.Version = gitVersion(ctx, o.Root)
	}
	if o.Tag == "" {
		o.Tag = "slolab:" + strings.TrimPrefix(o.Version, "v")
	}
	if o.Epoch.IsZero() {
		o.Epoch = time.Unix(0, 0).UTC()
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
			}
			o.Epoch = time.Unix(n, 0).UTC()
		}
	}
	if o.CAFile != "" {
		if _, err := os.Stat(o.CAFile); err != nil {
			fmt.Fprintf(os.Stderr, "image: no CA certificates at %s: the image can only reach http upstreams (give -ca FILE)\n", o.CAFile)
			o.CAFile = ""
		}
	}
	tmp, err := os.MkdirTemp("", "slolab-image-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	bin := filepath.Join(tmp, "slolab")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin,
		"-ldflags", "-s -w -X slolab.dev/slolab/internal/cli.version="+o.Version, "./cmd/slolab")
	build.Dir = o.Root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	layerTar, err := rootfs(o, bin)
	if err != nil {
		return err
	}
	img, err := image(o, layerTar)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return err
	}
	if err := write(img, o, filepath.Join(tmp, "layout")); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("%s: %s (%s, linux/%s) %s\n", o.Out, o.Tag, o.Version, o.Arch, d)
	return nil
}

func gitVersion(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return "dev"
	}
	return string(bytes.TrimSpace(out))
}

// file is one entry of the image's only layer.
type file struct {
	name string // without the leading slash
	mode int64
	dir  bool
	uid  int
	data []byte
}

// rootfs returns the layer: the binary, the examples, the user, CA
// certificates and the writable directories.
func rootfs(o Options, bin string) ([]byte, error) {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	files := []file{
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/data:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: strings.TrimPrefix(binPath, "/"), mode: 0o755, data: exe},
		{name: "tmp", mode: 0o1777, dir: true},
		{name: strings.TrimPrefix(workDir, "/"), mode: 0o755, dir: true, uid: uid},
	}
	if o.CAFile != "" {
		ca, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, err
		}
		files = append(files, file{name: strings.TrimPrefix(caBundle, "/"), mode: 0o644, data: ca})
	}
	examples := filepath.Join(o.Root, "examples")
	err = filepath.WalkDir(examples, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(examples, p)
		files = append(files, file{name: path.Join(strings.TrimPrefix(examplesPath, "/"), filepath.ToSlash(rel)), mode: 0o644, data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Parent directories first, every entry in name order: the same inputs
	// give the same bytes.
	dirs := map[string]bool{}
	for _, f := range files {
		if f.dir {
			dirs[f.name] = true
		}
	}
	for _, f := range files {
		for d := path.Dir(f.name); d != "."; d = path.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				files = append(files, file{name: d, mode: 0o755, dir: true})
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: o.Epoch, Format: tar.FormatPAX}
		if f.uid != 0 {
			h.Uname, h.Gname = "nonroot", "nonroot"
		}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// image puts the layer on an empty base with a non-root user.
func image(o Options, layerTar []byte) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: o.Epoch}, CreatedBy: "go run ./scripts/image", Comment: "slolab " + o.Version,
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Created = v1.Time{Time: o.Epoch}
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint: []string{binPath},
		Cmd:        []string{"--help"},
		WorkingDir: workDir,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caBundle},
		ExposedPorts: map[string]struct{}{
			"8080/tcp": {}, "9090/tcp": {}, "7946/tcp": {}, "7946/udp": {},
		},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "slolab",
			"org.opencontainers.image.version": o.Version,
			"org.opencontainers.image.source":  "https://slolab.dev",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// write lays the image out as an OCI layout in dir, adds a docker-save
// manifest.json beside it, and tars the directory into o.Out.
func write(img v1.Image, o Options, dir string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Tag,
		"io.containerd.image.name":          o.Tag,
	})); err != nil {
		return err
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: blob(cfg), RepoTags: []string{o.Tag}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		entry.Layers = append(entry.Layers, blob(d))
	}
	manifest, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifest, 0o644); err != nil {
		return err
	}
	return tarDir(dir, o.Out, o.Epoch)
}

func blob(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

// tarDir writes dir's files into a tarball, in name order, with one time.
func tarDir(dir, out string, epoch time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range names {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
		if st.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Size = tar.TypeReg, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
