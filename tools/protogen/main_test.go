package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedFilesAreFresh fails when a .proto changed without `make generate`.
func TestGeneratedFilesAreFresh(t *testing.T) {
	if err := run("../../proto", "../..", true); err != nil {
		t.Fatal(err)
	}
}

// TestNewProtoNeedsNoCodeChange adds a .proto to a copy of the tree: generation writes its SDK
// files, registers it in the C# index, removes the files of a .proto that is gone, and -check is
// then clean.
func TestNewProtoNeedsNoCodeChange(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "../../proto", filepath.Join(root, "proto"))
	copyTree(t, "../../tests/vectors", filepath.Join(root, "tests/vectors"))
	copyTree(t, "../../engine/bus/schema", filepath.Join(root, "engine/bus/schema"))
	for _, dir := range []string{"engine/protocol", "engine/bus", luaGeneratedDir, "sdk/lua/test", csharpRuntimeDir, csharpTestsDir} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(root, "proto/quest/quest.proto"), `syntax = "proto3";
package quest;
import "moonforge/protocol.proto";
message QuestListReq { option (moonforge.msg_id) = 4101; }
message QuestListAck { option (moonforge.msg_id) = 4102; repeated string names = 1; }
`)
	stale := filepath.Join(root, luaGeneratedDir, "gone.lua")
	write(t, stale, "-- from a .proto that was deleted\n")

	proto := filepath.Join(root, "proto")
	if err := run(proto, root, true); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("-check before generating: err = %v, want stale files", err)
	}
	if err := run(proto, root, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{luaGeneratedDir + "/quest.lua", csharpRuntimeDir + "/Quest.cs", csharpRuntimeDir + "/Quest.cs.meta"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("no generated %s: %v", p, err)
		}
	}
	lua, _ := os.ReadFile(filepath.Join(root, luaGeneratedDir, "quest.lua"))
	if !strings.Contains(string(lua), "quest.QuestListReq") {
		t.Errorf("quest.lua does not describe quest.QuestListReq")
	}
	index, _ := os.ReadFile(filepath.Join(root, csharpRuntimeDir, "GeneratedMessages.cs"))
	if !strings.Contains(string(index), "global::Quest.QuestMessages.Register(table);") {
		t.Errorf("GeneratedMessages.cs does not register quest.proto:\n%s", index)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("%s was not removed: %v", stale, err)
	}
	if err := run(proto, root, true); err != nil {
		t.Errorf("-check after generating: %v", err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		write(t, filepath.Join(to, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
