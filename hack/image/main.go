// Command image builds a container image from one static binary, without a
// container engine, and writes it as a docker-archive tarball (manifest.json
// plus blobs, go-containerregistry's tarball format), which both
// `docker load` and `ctr -n k8s.io images import` accept.
//
// The image has the layout of gcr.io/distroless/static:nonroot, which the
// Dockerfile uses: a base layer with /etc/passwd and /etc/group (user and
// group nonroot, 65532), the build machine's CA bundle at
// /etc/ssl/certs/ca-certificates.crt (HTTPS to AWS), /tmp (mode 1777) and
// /home/nonroot, then a layer with the binary alone, run as 65532:65532.
// Every timestamp is fixed, so the same binary and labels give the same image
// id and digest, and the base layer is shared by every image built here.
//
//	go run . -binary ../../bin/manager -tag kms-operator:dev -out ../../bin/images/kms-operator.tar
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is every file's and the image's creation time: a fixed one makes the
// build reproducible.
var epoch = time.Unix(0, 0).UTC()

const (
	nonroot = 65532
	// caBundlePath is where Go's crypto/x509 (and distroless) look first.
	caBundlePath = "etc/ssl/certs/ca-certificates.crt"
)

type options struct {
	binary, tag, out, caBundle, source, version string
	// args are appended to the entrypoint, as the Dockerfile's ENTRYPOINT does.
	args []string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "static linux/amd64 binary to ship; it becomes /<its file name> and the entrypoint")
	flag.StringVar(&o.tag, "tag", "", "image reference written into the tarball, e.g. kms-operator:dev")
	flag.StringVar(&o.out, "out", "", "tarball to write (replaced atomically)")
	flag.StringVar(&o.caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image (Debian: package ca-certificates)")
	flag.StringVar(&o.source, "source", "https://github.com/kmsoperator/kms-operator", "label org.opencontainers.image.source")
	flag.StringVar(&o.version, "version", "dev", "label org.opencontainers.image.version")
	flag.Func("arg", "argument appended to the entrypoint (repeatable)", func(s string) error {
		o.args = append(o.args, s)
		return nil
	})
	flag.Parse()
	if o.binary == "" || o.tag == "" || o.out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	id, size, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("image: %s %s id %s (%.1f MiB)\n", o.out, o.tag, id, float64(size)/(1<<20))
}

// build writes the image to o.out and returns its id and the tarball's size.
func build(o options) (v1.Hash, int64, error) {
	ref, err := name.NewTag(o.tag)
	if err != nil {
		return v1.Hash{}, 0, fmt.Errorf("tag: %w", err)
	}
	img, err := image(o)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	// The config's digest is the image id `docker load` and containerd show
	// (the manifest digest exists only once pushed: each importer writes its
	// own manifest).
	id, err := img.ConfigName()
	if err != nil {
		return v1.Hash{}, 0, err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return v1.Hash{}, 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.out), filepath.Base(o.out)+".*")
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(ref, img, tmp); err != nil {
		tmp.Close()
		return v1.Hash{}, 0, fmt.Errorf("writing %s: %w", o.out, err)
	}
	if err := tmp.Close(); err != nil {
		return v1.Hash{}, 0, err
	}
	fi, err := os.Stat(tmp.Name())
	if err != nil {
		return v1.Hash{}, 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return v1.Hash{}, 0, err
	}
	return id, fi.Size(), os.Rename(tmp.Name(), o.out)
}

func image(o options) (v1.Image, error) {
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s is not an ELF binary", o.binary)
	}
	ca, err := os.ReadFile(o.caBundle)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no CA bundle at %s: install Debian's ca-certificates (apt-get install ca-certificates)", o.caBundle)
	}
	if err != nil {
		return nil, err
	}
	entry := "/" + filepath.Base(o.binary)

	base, err := layer(baseFiles(ca))
	if err != nil {
		return nil, err
	}
	app, err := layer([]file{{name: strings.TrimPrefix(entry, "/"), mode: 0o755, data: bin}})
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/image: passwd, group, CA bundle, /tmp", Comment: "distroless-like base"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/image: " + entry}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: epoch}
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Entrypoint: append([]string{entry}, o.args...),
		WorkingDir: "/",
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"SSL_CERT_FILE=/" + caBundlePath,
		},
		Labels: map[string]string{
			"org.opencontainers.image.source":  o.source,
			"org.opencontainers.image.version": o.version,
		},
	}
	return mutate.ConfigFile(img, cf)
}

// file is one tar entry; a name ending in "/" is a directory.
type file struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

func baseFiles(ca []byte) []file {
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caBundlePath, mode: 0o644, data: ca},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonroot, gid: nonroot},
		{name: "tmp/", mode: 0o1777},
	}
}

// layer makes a gzip'ed layer of files, in order, all dated epoch.
func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: epoch,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
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
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompressionLevel(gzip.DefaultCompression), tarball.WithCompressedCaching)
}
