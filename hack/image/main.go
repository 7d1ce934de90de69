// Command image builds the Clearance container image offline: the static
// clearance binary on an empty base, run as the non-root user 65532. It needs
// no Docker engine and pulls nothing, because no registry is reachable where
// we build; go-containerregistry assembles the image in memory.
//
//	CGO_ENABLED=0 go build -trimpath -o bin/clearance-linux-amd64 .
//	go run ./hack/image --binary bin/clearance-linux-amd64 --version v0.1.0 --revision "$(git rev-parse HEAD)"
//
// The output is a docker-archive tarball (crane push, skopeo copy
// docker-archive:, kind load image-archive, docker load) or, with
// --oci-layout, an OCI image layout directory. The same inputs always give the
// same image digest: every timestamp comes from --created or
// SOURCE_DATE_EPOCH, and defaults to the Unix epoch.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// nonRoot is the uid and gid the operator runs as: distroless's
	// "nonroot", which the chart's securityContext also names.
	nonRoot = 65532

	// entrypoint is where the binary lives in the image.
	entrypoint = "/clearance"

	defaultRepository = "ghcr.io/clearance-dev/clearance"
	sourceURL         = "https://github.com/clearance-dev/clearance"
)

// exposedPorts are the operator's default listeners: metrics, probes, the
// verifier and the admission webhook (see the flags in main.go).
var exposedPorts = []string{"8080/tcp", "8081/tcp", "8090/tcp", "9443/tcp"}

// elfMachines maps the GOARCH values we build images for to the ELF machine
// their binaries declare, so a binary built for the wrong arch is refused
// here rather than failing with "exec format error" in the cluster.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// buildOptions is everything that goes into the image. Equal options give an
// image with an equal digest.
type buildOptions struct {
	// Binary is the path of the statically linked clearance binary.
	Binary string
	// Version and Revision become the OCI version and revision labels.
	Version  string
	Revision string
	// Arch is the GOARCH the binary was built for.
	Arch string
	// Created stamps the config, the history and every file in the layer.
	Created time.Time
}

// writeOptions says where the image goes.
type writeOptions struct {
	// Image is the name recorded in the tarball (what docker load and kind
	// load tag it as) and in the OCI layout's annotations.
	Image string
	// Out is the docker-archive tarball path; used when OCILayout is empty.
	Out string
	// OCILayout, when set, is a directory to write an OCI image layout to
	// instead of the tarball.
	OCILayout string
}

func main() {
	if err := run(os.Args[1:], os.Getenv("SOURCE_DATE_EPOCH"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string, sourceDateEpoch string, stdout io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var (
		bo      buildOptions
		wo      writeOptions
		created string
	)
	fs.StringVar(&bo.Binary, "binary", "", "Path of the clearance binary, built with CGO_ENABLED=0 for --arch (required).")
	fs.StringVar(&bo.Version, "version", "dev", "Version: the image tag and the org.opencontainers.image.version label.")
	fs.StringVar(&bo.Revision, "revision", "", "Git commit of the source: the org.opencontainers.image.revision label.")
	fs.StringVar(&bo.Arch, "arch", "amd64", "GOARCH the binary was built for.")
	fs.StringVar(&created, "created", "", "Creation time, RFC 3339 or Unix seconds. Default: $SOURCE_DATE_EPOCH, else the Unix epoch, so builds are reproducible.")
	fs.StringVar(&wo.Image, "image", "", "Image name recorded in the output. Default: "+defaultRepository+":<version>.")
	fs.StringVar(&wo.Out, "out", "bin/clearance-image.tar", "Path of the image tarball (docker-archive format).")
	fs.StringVar(&wo.OCILayout, "oci-layout", "", "Write an OCI image layout to this directory instead of the tarball.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every input is a flag", fs.Args())
	}
	if bo.Binary == "" {
		return errors.New("--binary is required: build it first with CGO_ENABLED=0 go build -o bin/clearance-linux-amd64 .")
	}
	if wo.Image == "" {
		wo.Image = defaultRepository + ":" + bo.Version
	}
	t, err := creationTime(created, sourceDateEpoch)
	if err != nil {
		return err
	}
	bo.Created = t

	img, err := build(bo)
	if err != nil {
		return err
	}
	if err := write(img, wo); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	dest := wo.Out
	if wo.OCILayout != "" {
		dest = wo.OCILayout + " (OCI layout)"
	}
	fmt.Fprintf(stdout, "wrote %s to %s\ndigest %s\n", wo.Image, dest, digest)
	return nil
}

// creationTime picks the image's timestamp: the flag, then SOURCE_DATE_EPOCH
// (https://reproducible-builds.org/specs/source-date-epoch/), then the epoch.
// Never the wall clock, so rebuilding the same commit gives the same digest.
func creationTime(flagValue, sourceDateEpoch string) (time.Time, error) {
	if flagValue != "" {
		if secs, err := strconv.ParseInt(flagValue, 10, 64); err == nil {
			return time.Unix(secs, 0).UTC(), nil
		}
		t, err := time.Parse(time.RFC3339, flagValue)
		if err != nil {
			return time.Time{}, fmt.Errorf("--created %q is neither RFC 3339 (2026-01-02T15:04:05Z) nor Unix seconds", flagValue)
		}
		return t.UTC(), nil
	}
	if sourceDateEpoch != "" {
		secs, err := strconv.ParseInt(sourceDateEpoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not Unix seconds", sourceDateEpoch)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}

// build assembles the image in memory: one layer on an empty base, and a
// config that runs the binary as 65532:65532.
func build(o buildOptions) (v1.Image, error) {
	if _, ok := elfMachines[o.Arch]; !ok {
		return nil, fmt.Errorf("--arch %q is not one of %s", o.Arch, strings.Join(supportedArches(), ", "))
	}
	binary, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	if err := checkStaticBinary(binary, o.Arch); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Binary, err)
	}

	layerTar, err := rootFS(binary, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("making the layer: %w", err)
	}

	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: o.Created},
			CreatedBy: "hack/image: /clearance, /etc/passwd, /etc/group, /home/nonroot, /tmp",
			Comment:   "static clearance binary on an empty base",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}

	// Edit the config the append produced, so its rootfs diff_ids and
	// history stay as they are.
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = o.Arch
	cfg.Created = v1.Time{Time: o.Created}
	cfg.Config.Entrypoint = []string{entrypoint}
	cfg.Config.Cmd = nil
	cfg.Config.User = fmt.Sprintf("%d:%d", nonRoot, nonRoot)
	cfg.Config.WorkingDir = "/"
	// There is no shell and nothing else to find: PATH only makes
	// "clearance" resolvable for tools that exec by name.
	cfg.Config.Env = []string{"PATH=/"}
	cfg.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range exposedPorts {
		cfg.Config.ExposedPorts[p] = struct{}{}
	}
	cfg.Config.Labels = labels(o)
	return mutate.ConfigFile(img, cfg)
}

// labels are the OCI pre-defined annotations, as image labels. An unknown
// revision is left out rather than recorded as empty.
func labels(o buildOptions) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":    "clearance",
		"org.opencontainers.image.source":   sourceURL,
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// checkStaticBinary refuses what would fail only at run time on an empty
// base: a non-ELF file, a binary for another arch, or a dynamically linked
// one (its loader, e.g. /lib64/ld-linux-x86-64.so.2, is not in the image and
// the kernel reports a baffling "no such file or directory").
func checkStaticBinary(binary []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return fmt.Errorf("not a Linux ELF executable (%v): build it with GOOS=linux CGO_ENABLED=0 go build", err)
	}
	defer f.Close()
	if want := elfMachines[arch]; f.Machine != want {
		return fmt.Errorf("built for %s, not for --arch %s (%s): build it with GOARCH=%s", f.Machine, arch, want, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return fmt.Errorf("dynamically linked (needs %s, which an empty base does not have): build it with CGO_ENABLED=0",
				strings.TrimRight(string(interp), "\x00"))
		}
	}
	return nil
}

// rootFS is the image's only layer, as an uncompressed tar. Entries are
// written in a fixed order with fixed times and owners, so equal inputs give
// equal bytes.
func rootFS(binary []byte, mtime time.Time) ([]byte, error) {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)
	group := "root:x:0:\n" +
		fmt.Sprintf("nonroot:x:%d:\n", nonRoot)

	entries := []struct {
		name     string
		mode     int64
		uid, gid int
		body     []byte // nil for a directory
	}{
		{name: "clearance", mode: 0o755, uid: nonRoot, gid: nonRoot, body: binary},
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonRoot, gid: nonRoot},
		// Sticky and world-writable, like any /tmp, for os.TempDir users.
		{name: "tmp/", mode: 0o1777},
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.body == nil {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write stores the image as a docker-archive tarball at o.Out, or as an OCI
// layout in o.OCILayout. The tarball is written beside its destination and
// renamed, so a failed run never leaves a truncated image behind.
func write(img v1.Image, o writeOptions) error {
	tag, err := name.NewTag(o.Image)
	if err != nil {
		return fmt.Errorf("--image %q is not an image name with a tag: %w", o.Image, err)
	}
	if o.OCILayout != "" {
		return writeLayout(img, tag, o.OCILayout)
	}
	if o.Out == "" {
		return errors.New("--out is empty: give a path for the tarball or use --oci-layout")
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return err
	}
	tmp := o.Out + ".partial"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", o.Out, err)
	}
	return os.Rename(tmp, o.Out)
}

// writeLayout writes a fresh OCI layout holding only this image, annotated
// with its name so skopeo (oci:DIR:TAG) and containerd (ctr import) find it.
func writeLayout(img v1.Image, tag name.Tag, dir string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating the OCI layout in %s: %w", dir, err)
	}
	err = p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.Name(),
	}))
	if err != nil {
		return fmt.Errorf("writing the image to the OCI layout in %s: %w", dir, err)
	}
	return nil
}

func supportedArches() []string {
	return []string{"amd64", "arm", "arm64", "ppc64le", "riscv64", "s390x"}
}
