package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	staticOnce sync.Once
	staticDir  string
	staticErr  error
)

// staticBinary builds a tiny linux/amd64 program with CGO_ENABLED=0 once per
// test run: a real static ELF, like the clearance binary make image packs.
func staticBinary(t *testing.T) string {
	t.Helper()
	staticOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clearance-image-test")
		if err != nil {
			staticErr = err
			return
		}
		staticDir = dir
		src := "package main\n\nfunc main() { println(\"clearance\") }\n"
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			staticErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644); err != nil {
			staticErr = err
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", "tiny", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = errors.New("go build of the test binary: " + err.Error() + "\n" + string(out))
		}
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return filepath.Join(staticDir, "tiny")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if staticDir != "" {
		_ = os.RemoveAll(staticDir)
	}
	os.Exit(code)
}

func testOptions(t *testing.T) buildOptions {
	return buildOptions{
		Binary:   staticBinary(t),
		Version:  "v1.2.3",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Arch:     "amd64",
		Created:  time.Unix(0, 0).UTC(),
	}
}

func buildAndWrite(t *testing.T, o buildOptions) (v1.Image, string) {
	t.Helper()
	img, err := build(o)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	out := filepath.Join(t.TempDir(), "bin", "clearance-image.tar")
	if err := write(img, writeOptions{Image: "ghcr.io/clearance-dev/clearance:v1.2.3", Out: out}); err != nil {
		t.Fatalf("write: %v", err)
	}
	return img, out
}

// layerFile is one entry of the image's single layer, by absolute path.
type layerFile struct {
	hdr  *tar.Header
	body []byte
}

func layerFiles(t *testing.T, img v1.Image) map[string]layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want exactly 1 on an empty base", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/"), "/")
		files[p] = layerFile{hdr: hdr, body: body}
	}
	return files
}

func TestTarballRunsTheStaticBinaryAsNonRoot(t *testing.T) {
	o := testOptions(t)
	_, out := buildAndWrite(t, o)

	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatalf("reading the tarball back: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if got := cfg.Config.User; got != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", got)
	}
	if got := cfg.Config.Entrypoint; !slices.Equal(got, []string{"/clearance"}) {
		t.Errorf("entrypoint %q, want [/clearance]", got)
	}
	if len(cfg.Config.Cmd) != 0 {
		t.Errorf("cmd %q, want none", cfg.Config.Cmd)
	}
	if cfg.Config.WorkingDir != "/" {
		t.Errorf("working dir %q, want /", cfg.Config.WorkingDir)
	}
	if !slices.Equal(cfg.Config.Env, []string{"PATH=/"}) {
		t.Errorf("env %q, want [PATH=/]", cfg.Config.Env)
	}
	for _, p := range []string{"8080/tcp", "8081/tcp", "8090/tcp", "9443/tcp"} {
		if _, ok := cfg.Config.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed; exposed: %v", p, cfg.Config.ExposedPorts)
		}
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    "clearance",
		"org.opencontainers.image.source":   "https://github.com/clearance-dev/clearance",
		"org.opencontainers.image.version":  "v1.2.3",
		"org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	for k, want := range wantLabels {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cfg.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v, want the Unix epoch", cfg.Created.Time)
	}

	files := layerFiles(t, img)
	bin, ok := files["/clearance"]
	if !ok {
		t.Fatalf("no /clearance in the layer; have %v", keys(files))
	}
	if bin.hdr.Typeflag != tar.TypeReg || bin.hdr.Mode&0o7777 != 0o755 {
		t.Errorf("/clearance type %q mode %o, want a regular file with mode 0755", bin.hdr.Typeflag, bin.hdr.Mode)
	}
	if bin.hdr.Uid != 65532 || bin.hdr.Gid != 65532 {
		t.Errorf("/clearance owned by %d:%d, want 65532:65532", bin.hdr.Uid, bin.hdr.Gid)
	}
	want, err := os.ReadFile(o.Binary)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bin.body, want) {
		t.Errorf("/clearance differs from the binary given (%d bytes, want %d)", len(bin.body), len(want))
	}
	if passwd := string(files["/etc/passwd"].body); !strings.Contains(passwd, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
	if group := string(files["/etc/group"].body); !strings.Contains(group, "nonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot group 65532:\n%s", group)
	}
	tmp, ok := files["/tmp"]
	if !ok || tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp missing or not a 1777 directory: %+v", tmp.hdr)
	}
	for _, shell := range []string{"/bin/sh", "/bin/bash", "/bin/busybox"} {
		if _, ok := files[shell]; ok {
			t.Errorf("%s is in the image; it must have no shell", shell)
		}
	}
}

func TestSameInputsGiveTheSameDigest(t *testing.T) {
	o := testOptions(t)
	_, first := buildAndWrite(t, o)
	_, second := buildAndWrite(t, o)
	a, b := digestOf(t, first), digestOf(t, second)
	if a != b {
		t.Fatalf("two builds of the same inputs differ: %s and %s", a, b)
	}
	tarA, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	tarB, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tarA, tarB) {
		t.Error("the two tarballs are not byte-identical")
	}

	o.Revision = "fedcba9876543210fedcba9876543210fedcba98"
	_, other := buildAndWrite(t, o)
	if digestOf(t, other) == a {
		t.Error("a different revision gave the same digest: the label is not in the config")
	}
}

func digestOf(t *testing.T, path string) v1.Hash {
	t.Helper()
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOCILayoutHoldsTheSameImage(t *testing.T) {
	img, err := build(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := write(img, writeOptions{Image: "ghcr.io/clearance-dev/clearance:v1.2.3", OCILayout: dir}); err != nil {
		t.Fatalf("write: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("layout has %d manifests, want 1", len(m.Manifests))
	}
	if got := m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "v1.2.3" {
		t.Errorf("ref.name annotation %q, want v1.2.3", got)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Manifests[0].Digest != want {
		t.Errorf("layout holds %s, built %s", m.Manifests[0].Digest, want)
	}
}

func TestBinariesThatCannotRunOnAnEmptyBaseAreRefused(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "clearance")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		binary  string
		arch    string
		wantErr string
	}{
		{name: "script", binary: fake, arch: "amd64", wantErr: "not a Linux ELF executable"},
		{name: "wrong arch", binary: staticBinary(t), arch: "arm64", wantErr: "build it with GOARCH=arm64"},
		{name: "unknown arch", binary: staticBinary(t), arch: "mips", wantErr: `--arch "mips"`},
		{name: "missing", binary: filepath.Join(t.TempDir(), "nope"), arch: "amd64", wantErr: "reading the binary"},
	}
	// A dynamically linked amd64 program from the host, when there is one.
	if f, err := elf.Open("/bin/ls"); err == nil {
		if f.Machine == elf.EM_X86_64 && slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
			cases = append(cases, struct {
				name    string
				binary  string
				arch    string
				wantErr string
			}{name: "dynamic", binary: "/bin/ls", arch: "amd64", wantErr: "dynamically linked"})
		}
		f.Close()
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t)
			o.Binary, o.Arch = tc.binary, tc.arch
			_, err := build(o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("build error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCreationTimeIsNeverTheWallClock(t *testing.T) {
	cases := []struct {
		flag, env string
		want      time.Time
		wantErr   bool
	}{
		{want: time.Unix(0, 0)},
		{env: "1700000000", want: time.Unix(1700000000, 0)},
		{flag: "2026-01-02T03:04:05Z", env: "1700000000", want: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{flag: "1234", want: time.Unix(1234, 0)},
		{flag: "yesterday", wantErr: true},
		{env: "soon", wantErr: true},
	}
	for _, tc := range cases {
		got, err := creationTime(tc.flag, tc.env)
		if (err != nil) != tc.wantErr {
			t.Errorf("creationTime(%q, %q) error %v, wantErr %v", tc.flag, tc.env, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !got.Equal(tc.want) {
			t.Errorf("creationTime(%q, %q) = %v, want %v", tc.flag, tc.env, got, tc.want)
		}
	}
}

func TestRunRequiresTheBinaryAndWritesTheDefaultName(t *testing.T) {
	if err := run(nil, "", io.Discard); err == nil || !strings.Contains(err.Error(), "--binary is required") {
		t.Fatalf("run without --binary: %v", err)
	}
	out := filepath.Join(t.TempDir(), "img.tar")
	var stdout bytes.Buffer
	if err := run([]string{"--binary", staticBinary(t), "--out", out, "--version", "v9.9.9"}, "", &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "ghcr.io/clearance-dev/clearance:v9.9.9") {
		t.Errorf("output %q does not name the default image", stdout.String())
	}
	tag, err := nameTagOf(out)
	if err != nil {
		t.Fatal(err)
	}
	if tag != "ghcr.io/clearance-dev/clearance:v9.9.9" {
		t.Errorf("tarball tagged %q", tag)
	}
}

// nameTagOf reads the RepoTags docker load and kind load would apply.
func nameTagOf(path string) (string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return "", err
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 {
		return "", errors.New("want one image with one tag in manifest.json")
	}
	return m[0].RepoTags[0], nil
}

func keys(m map[string]layerFile) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
