package tests

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// symlink creates link pointing at target, failing the test on error.
func symlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// swapSymlink re-points link to target atomically, as deploy tools and Kubernetes do: a new link
// renamed over the old one.
func swapSymlink(t testing.TB, target, link string) {
	t.Helper()
	symlink(t, target, link+".tmp")
	if err := os.Rename(link+".tmp", link); err != nil {
		t.Fatal(err)
	}
}

// move renames a path, failing the test on error.
func move(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// TestSymlinkedScripts serves scripts and schema reached through symlinks, as releases and
// Kubernetes ConfigMaps deploy them (DESIGN.md: hot reload includes ConfigMap symlink swaps), and
// swaps the symlink to a new version without a restart.
func TestSymlinkedScripts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		prepare func(t testing.TB, dir string)
		// update writes a new echo.lua and swaps it in.
		update func(t testing.TB, dir string)
	}{
		{
			name: "release symlink",
			prepare: func(t testing.TB, dir string) {
				move(t, filepath.Join(dir, "lua"), filepath.Join(dir, "releases", "v1"))
				symlink(t, filepath.Join("releases", "v1"), filepath.Join(dir, "lua"))
			},
			update: func(t testing.TB, dir string) {
				copyTree(t, filepath.Join(dir, "releases", "v1"), filepath.Join(dir, "releases", "v2"))
				writeFile(t, filepath.Join(dir, "releases", "v2", "lobby", "echo.lua"), echoLua(5))
				swapSymlink(t, filepath.Join("releases", "v2"), filepath.Join(dir, "lua"))
			},
		},
		{
			// The layout of a ConfigMap volume: the files live in a timestamped directory, ..data
			// points at it, and each entry of the mount is a symlink through ..data.
			name: "configmap",
			prepare: func(t testing.TB, dir string) {
				lua := filepath.Join(dir, "lua")
				move(t, lua, filepath.Join(dir, "staging"))
				move(t, filepath.Join(dir, "staging"), filepath.Join(lua, "..2026_01_01_00_00_00.1"))
				symlink(t, "..2026_01_01_00_00_00.1", filepath.Join(lua, "..data"))
				for _, role := range []string{"game", "lobby", "login", "shared"} {
					symlink(t, filepath.Join("..data", role), filepath.Join(lua, role))
				}
			},
			update: func(t testing.TB, dir string) {
				lua := filepath.Join(dir, "lua")
				next := filepath.Join(lua, "..2026_01_01_00_01_00.2")
				copyTree(t, filepath.Join(lua, "..2026_01_01_00_00_00.1"), next)
				writeFile(t, filepath.Join(next, "lobby", "echo.lua"), echoLua(5))
				swapSymlink(t, "..2026_01_01_00_01_00.2", filepath.Join(lua, "..data"))
			},
		},
		{
			name: "proto release symlink",
			prepare: func(t testing.TB, dir string) {
				move(t, filepath.Join(dir, "proto"), filepath.Join(dir, "schemas", "v1"))
				symlink(t, filepath.Join("schemas", "v1"), filepath.Join(dir, "proto"))
			},
			update: func(t testing.TB, dir string) {
				// The new schema adds a message that the scripts do not use: the version changes.
				copyTree(t, filepath.Join(dir, "schemas", "v1"), filepath.Join(dir, "schemas", "v2"))
				writeFile(t, filepath.Join(dir, "schemas", "v2", "demo", "extra.proto"), "syntax = \"proto3\";\npackage extra;\nmessage Unused { int32 x = 1; }\n")
				writeFile(t, filepath.Join(dir, "lua", "lobby", "echo.lua"), echoLua(5))
				swapSymlink(t, filepath.Join("schemas", "v2"), filepath.Join(dir, "proto"))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, options{prepare: tc.prepare})
			c := s.dial(t, "tcp")
			guest(t, c, "linked")
			s.mustEcho(t, c, 1, 1)
			tc.update(t, s.dir)
			deadline := time.Now().Add(5 * time.Second)
			for {
				got, err := s.echo(timeout(t, 5*time.Second), c, 1)
				if err != nil {
					t.Fatalf("echo after the swap: %v", err)
				}
				if got == 6 {
					break
				}
				if got != 1 || time.Now().After(deadline) {
					t.Fatalf("echo 1 answered %d; want 6 within 5s of the swap", got)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
