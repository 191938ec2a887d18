// Command release writes the release archives of moonforge (make release): for each platform, the
// binary built with CGO off and the version stamped in, with lua/, proto/, moonforge.yaml,
// README.md and LICENSE, under one top directory moonforge-<version>-<os>-<arch>/, as a .tar.gz
// (Linux, macOS) or a .zip (Windows); and SHA256SUMS beside them, in the format sha256sum -c
// reads. Run it from the module root.
//
//	go run ./tools/release -version v1.2.0 -ldflags "-X main.version=v1.2.0 -X main.commit=abc1234" -out dist
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// platforms is the default of -platforms: the targets a release ships for.
const platforms = "linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"

// contents are the files and directories of the source tree that every archive carries beside
// the binary.
var contents = []string{"lua", "proto", "moonforge.yaml", "README.md", "LICENSE"}

func main() {
	version := flag.String("version", "dev", "version, in the archive names")
	ldflags := flag.String("ldflags", "", "linker flags of go build (the Makefile's LDFLAGS stamp the version and commit)")
	out := flag.String("out", "dist", "output directory; its archives and SHA256SUMS are replaced")
	targets := flag.String("platforms", platforms, "GOOS/GOARCH pairs, separated by spaces")
	goBin := flag.String("go", "go", "the go command")
	flag.Parse()
	if err := release(*goBin, *version, *ldflags, *out, strings.Fields(*targets)); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func release(goBin, version, ldflags, out string, targets []string) error {
	if len(targets) == 0 {
		return errors.New("no platforms")
	}
	for _, c := range contents {
		if _, err := os.Stat(c); err != nil {
			return fmt.Errorf("run from the module root: %w", err)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "moonforge-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var archives []string
	for _, p := range targets {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok {
			return fmt.Errorf("platform %q is not GOOS/GOARCH", p)
		}
		bin := filepath.Join(tmp, goos+"-"+goarch, binaryName(goos))
		fmt.Println("building", p)
		cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build for %s: %w", p, err)
		}
		top := topDir(version, goos, goarch)
		name := archiveName(top, goos)
		if err := pack(filepath.Join(out, name), top, bin, "."); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		archives = append(archives, name)
		fmt.Println("wrote", filepath.Join(out, name))
	}
	if err := writeSums(out, archives); err != nil {
		return err
	}
	fmt.Println("wrote", filepath.Join(out, "SHA256SUMS"))
	return nil
}

// binaryName is the name of the moonforge binary on goos.
func binaryName(goos string) string {
	if goos == "windows" {
		return "moonforge.exe"
	}
	return "moonforge"
}

// topDir is the directory that holds everything in a platform's archive.
func topDir(version, goos, goarch string) string {
	return fmt.Sprintf("moonforge-%s-%s-%s", version, goos, goarch)
}

// archiveName is the file name of the archive of top: a zip for Windows, a tar.gz elsewhere.
func archiveName(top, goos string) string {
	if goos == "windows" {
		return top + ".zip"
	}
	return top + ".tar.gz"
}

// entry is one file of an archive.
type entry struct {
	name string // slash-separated, under the archive's top directory
	src  string // file on disk
	mode fs.FileMode
}

// pack writes the archive file (.zip or .tar.gz, by its name) holding bin and the contents of
// root, all under the directory top. Names starting with "." are left out.
func pack(file, top, bin, root string) error {
	entries := []entry{{name: path.Join(top, filepath.Base(bin)), src: bin, mode: 0o755}}
	for _, c := range contents {
		err := filepath.WalkDir(filepath.Join(root, c), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			entries = append(entries, entry{name: path.Join(top, filepath.ToSlash(rel)), src: p, mode: 0o644})
			return nil
		})
		if err != nil {
			return err
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if strings.HasSuffix(file, ".zip") {
		err = writeZip(f, entries)
	} else {
		err = writeTarGz(f, entries)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
	}
	return err
}

// modTime is the time every entry carries, so that an archive's bytes depend on its contents only.
var modTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func writeTarGz(w io.Writer, entries []entry) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		b, err := os.ReadFile(e.src)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: int64(e.mode), Size: int64(len(b)), ModTime: modTime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(w io.Writer, entries []entry) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		b, err := os.ReadFile(e.src)
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: modTime}
		hdr.SetMode(e.mode)
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := fw.Write(b); err != nil {
			return err
		}
	}
	return zw.Close()
}

// writeSums writes dir/SHA256SUMS for the named files of dir: one "<hex>  <name>" line each,
// sorted by name, as sha256sum writes and checks them.
func writeSums(dir string, names []string) error {
	names = append([]string(nil), names...)
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, n)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
