package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// file is one entry read back from an archive.
type file struct {
	data []byte
	mode fs.FileMode
}

// TestPack packs a stand-in binary with the repository's files, as a tar.gz and as a zip, and
// reads both back; then checks SHA256SUMS against the archives.
func TestPack(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for _, goos := range []string{"linux", "windows"} {
		bin := filepath.Join(dir, goos, binaryName(goos))
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, []byte("binary for "+goos), 0o755); err != nil {
			t.Fatal(err)
		}
		top := topDir("v0.0.0-test", goos, "amd64")
		name := archiveName(top, goos)
		if err := pack(filepath.Join(dir, name), top, bin, "../.."); err != nil {
			t.Fatal(err)
		}
		files := checkArchive(t, filepath.Join(dir, name), top, binaryName(goos))
		if got := string(files[top+"/"+binaryName(goos)].data); got != "binary for "+goos {
			t.Errorf("%s: the binary holds %q", name, got)
		}
		names = append(names, name)
	}
	if err := writeSums(dir, names); err != nil {
		t.Fatal(err)
	}
	if got := checkSums(t, dir); strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("SHA256SUMS lists %v, want %v", got, names)
	}
	if err := os.WriteFile(filepath.Join(dir, names[0]), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sumMismatch(t, dir) != names[0] {
		t.Errorf("a changed archive still matches SHA256SUMS")
	}
}

// TestDist checks the archives of a real make release, in MOONFORGE_DIST (make test-release sets
// it, and MOONFORGE_COMMIT): every platform is there, SHA256SUMS matches, each archive has the binary for its platform
// and the repository's files, and the binary that runs here prints the stamped version and commit.
func TestDist(t *testing.T) {
	dist := os.Getenv("MOONFORGE_DIST")
	if dist == "" {
		t.Skip("MOONFORGE_DIST is not set: make test-release runs this on the output of make release")
	}
	listed := checkSums(t, dist)
	var version string
	for _, n := range listed {
		if m := regexp.MustCompile(`^moonforge-(.+)-linux-amd64\.tar\.gz$`).FindStringSubmatch(n); m != nil {
			version = m[1]
		}
	}
	if version == "" {
		t.Fatalf("no linux/amd64 archive among %v", listed)
	}
	var want []string
	for _, p := range strings.Fields(platforms) {
		goos, goarch, _ := strings.Cut(p, "/")
		top := topDir(version, goos, goarch)
		name := archiveName(top, goos)
		want = append(want, name)
		bin := top + "/" + binaryName(goos)
		files := checkArchive(t, filepath.Join(dist, name), top, binaryName(goos))
		checkBinary(t, name, files[bin].data, goos, goarch)
		if goos == runtime.GOOS && goarch == runtime.GOARCH {
			checkStamp(t, files[bin].data, version)
		}
	}
	if strings.Join(listed, " ") != strings.Join(sortedCopy(want), " ") {
		t.Errorf("SHA256SUMS lists %v, want %v", listed, want)
	}
}

// checkArchive reads an archive back and checks that it holds, under top and nothing else, the
// executable binary and every file of the contents with the repository's bytes. It returns the
// entries by name.
func checkArchive(t *testing.T, archive, top, bin string) map[string]file {
	t.Helper()
	var files map[string]file
	var err error
	if strings.HasSuffix(archive, ".zip") {
		files, err = readZip(archive)
	} else {
		files, err = readTarGz(archive)
	}
	if err != nil {
		t.Fatalf("%s: %v", archive, err)
	}
	name := filepath.Base(archive)
	want := map[string]bool{top + "/" + bin: true}
	for _, c := range contents {
		err := filepath.WalkDir(filepath.Join("../..", c), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				return err
			}
			rel, _ := filepath.Rel("../..", p)
			entry := path.Join(top, filepath.ToSlash(rel))
			want[entry] = true
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if f, ok := files[entry]; !ok || !bytes.Equal(f.data, b) {
				t.Errorf("%s: %s is missing or differs from the repository's", name, entry)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, must := range []string{"LICENSE", "README.md", "moonforge.yaml", "lua/lobby/echo.lua", "proto/moonforge/protocol.proto"} {
		if _, ok := files[top+"/"+must]; !ok {
			t.Errorf("%s: no %s", name, must)
		}
	}
	if !strings.HasPrefix(strings.TrimSpace(string(files[top+"/LICENSE"].data)), "Apache License\n                           Version 2.0, January 2004") {
		t.Errorf("%s: LICENSE is not the Apache License", name)
	}
	for entry := range files {
		if !want[entry] {
			t.Errorf("%s: unexpected entry %s", name, entry)
		}
	}
	if f := files[top+"/"+bin]; f.mode&0o111 == 0 {
		t.Errorf("%s: the binary's mode %v is not executable", name, f.mode)
	}
	return files
}

// checkSums checks every line of dir/SHA256SUMS against its file and returns the names listed.
func checkSums(t *testing.T, dir string) []string {
	t.Helper()
	if bad := sumMismatch(t, dir); bad != "" {
		t.Fatalf("%s does not match SHA256SUMS", bad)
	}
	var names []string
	for _, l := range sumLines(t, dir) {
		names = append(names, l[1])
	}
	return names
}

// sumMismatch returns the first file of dir/SHA256SUMS whose hash differs, or "".
func sumMismatch(t *testing.T, dir string) string {
	t.Helper()
	for _, l := range sumLines(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, l[1]))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != l[0] {
			return l[1]
		}
	}
	return ""
}

// sumLines parses dir/SHA256SUMS into (hash, name) pairs, in the file's order, which must be sorted.
func sumLines(t *testing.T, dir string) [][2]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("SHA256SUMS: bad line %q", sc.Text())
		}
		if len(out) > 0 && out[len(out)-1][1] >= m[2] {
			t.Fatalf("SHA256SUMS is not sorted by name at %s", m[2])
		}
		out = append(out, [2]string{m[1], m[2]})
	}
	if len(out) == 0 {
		t.Fatal("SHA256SUMS is empty")
	}
	return out
}

// checkBinary checks that b is an executable for goos/goarch.
func checkBinary(t *testing.T, name string, b []byte, goos, goarch string) {
	t.Helper()
	r := bytes.NewReader(b)
	var arch string
	switch goos {
	case "linux":
		f, err := elf.NewFile(r)
		if err != nil {
			t.Errorf("%s: not an ELF binary: %v", name, err)
			return
		}
		arch = map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
	case "darwin":
		f, err := macho.NewFile(r)
		if err != nil {
			t.Errorf("%s: not a Mach-O binary: %v", name, err)
			return
		}
		arch = map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
	case "windows":
		f, err := pe.NewFile(r)
		if err != nil {
			t.Errorf("%s: not a PE binary: %v", name, err)
			return
		}
		arch = map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64"}[f.Machine]
	}
	if arch != goarch {
		t.Errorf("%s: the binary is for %q, want %s", name, arch, goarch)
	}
}

// checkStamp runs the binary's version command: it must print the archive's version and the
// commit, MOONFORGE_COMMIT when set.
func checkStamp(t *testing.T, b []byte, version string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moonforge")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("moonforge version: %v\n%s", err, out)
	}
	commit := os.Getenv("MOONFORGE_COMMIT")
	if !strings.Contains(string(out), " "+version+" ") || strings.Contains(string(out), "unknown") || !strings.Contains(string(out), commit) {
		t.Errorf("moonforge version printed %q, want version %s and commit %q", out, version, commit)
	}
}

func readTarGz(archive string) (map[string]file, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	out := map[string]file{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[hdr.Name] = file{data: b, mode: hdr.FileInfo().Mode()}
	}
}

func readZip(archive string) (map[string]file, error) {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out := map[string]file{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out[zf.Name] = file{data: b, mode: zf.Mode()}
	}
	return out, nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
