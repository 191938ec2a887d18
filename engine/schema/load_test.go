package schema

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadRealProtoDir(t *testing.T) {
	s, err := Load("../../proto")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint16{"Ping": 1, "Pong": 2, "Error": 3, "Kick": 4, "LoginReq": 10, "LoginAck": 11, "ResumeReq": 12, "ResumeAck": 13}
	for name, id := range want {
		m := s.ByName("moonforge." + name)
		if m == nil || m.ID != id || m.Name != name || m.FullName != "moonforge."+name {
			t.Fatalf("ByName(moonforge.%s) = %+v, want id %d", name, m, id)
		}
		if s.ByID(id) != m {
			t.Errorf("ByID(%d) = %v, want %s", id, s.ByID(id), name)
		}
		if string(m.Desc.FullName()) != m.FullName {
			t.Errorf("Desc of %s is %s", m.FullName, m.Desc.FullName())
		}
	}
	if s.ByID(0) != nil || s.ByID(999) != nil {
		t.Error("ByID found an undeclared id")
	}
	msgs := s.Messages()
	for i := 1; i < len(msgs); i++ {
		if msgs[i-1].ID >= msgs[i].ID {
			t.Fatalf("Messages not sorted by id: %d before %d", msgs[i-1].ID, msgs[i].ID)
		}
	}
	for _, m := range msgs {
		if m.ID < firstAppID && m.Desc.ParentFile().Package() != "moonforge" {
			t.Errorf("%s has framework id %d", m.FullName, m.ID)
		}
	}
	var paths []string
	for _, f := range s.Files() {
		paths = append(paths, f.Path())
	}
	if !strings.Contains(strings.Join(paths, " "), "moonforge/protocol.proto") {
		t.Errorf("Files() = %v, want moonforge/protocol.proto among them", paths)
	}
	for i := 1; i < len(paths); i++ {
		if paths[i-1] >= paths[i] {
			t.Errorf("Files not sorted: %v", paths)
		}
	}
	if len(s.Hash()) != 64 {
		t.Errorf("Hash() = %q, want 64 hex digits", s.Hash())
	}
	s2, err := Load("../../proto")
	if err != nil {
		t.Fatal(err)
	}
	if s2.Hash() != s.Hash() {
		t.Error("two loads of the same directory hash differently")
	}
	if s.Describe("moonforge.Ping") == nil || s.Describe("google.protobuf.MessageOptions") == nil {
		t.Error("Describe misses a loaded or an imported message")
	}
	if s.Describe("moonforge.Nope") != nil {
		t.Error("Describe found an undeclared message")
	}
}

func TestLoadTestSchema(t *testing.T) {
	s := testSchema(t)
	if m := s.ByName("Scalars"); m == nil || m.ID != 1001 || m.FullName != "test.Scalars" {
		t.Fatalf("ByName(Scalars) = %+v", m)
	}
	nested := s.ByID(1010)
	if nested == nil || nested.Name != "Ping" || nested.FullName != "test.Outer.Ping" {
		t.Fatalf("ByID(1010) = %+v, want the nested test.Outer.Ping", nested)
	}
	if s.ByName("Ping") != nil {
		t.Error("ByName(Ping) resolved a short name that two messages share")
	}
	if s.ByName("moonforge.Ping").ID != 1 || s.ByName("test.Outer.Ping").ID != 1010 {
		t.Error("full names of messages sharing a short name do not resolve")
	}
	if s.ByName("Point") != nil || s.ByName("test.Point") != nil {
		t.Error("ByName found a message without an id")
	}
	if s.Describe("test.Point") == nil || s.Describe("test.Nested.Inner") == nil {
		t.Error("Describe misses messages without ids")
	}
}

func TestLoadHashFollowsContent(t *testing.T) {
	fsys := testFS(t)
	a, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	fsys["test/kinds.proto"].Data = append(fsys["test/kinds.proto"].Data, "\n// edited\n"...)
	b, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() == b.Hash() {
		t.Error("hash did not change with the content")
	}
	fsys["test/moved.proto"] = fsys["test/kinds.proto"]
	delete(fsys, "test/kinds.proto")
	c, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() == b.Hash() {
		t.Error("hash did not change with the path")
	}
}

// appFS is the framework proto plus the given application files.
func appFS(t *testing.T, files map[string]string) fstest.MapFS {
	t.Helper()
	protocol, err := os.ReadFile("../../proto/moonforge/protocol.proto")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"moonforge/protocol.proto": {Data: protocol}}
	for name, src := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(src)}
	}
	return fsys
}

const header = "syntax = \"proto3\";\npackage demo;\nimport \"moonforge/protocol.proto\";\n"

func TestLoadProblems(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  [][]string // per problem line, substrings it must contain
	}{
		{
			name: "duplicate id",
			files: map[string]string{
				"demo/a.proto": header + "message Foo { option (moonforge.msg_id) = 2001; }\n",
				"demo/b.proto": header + "\nmessage Bar { option (moonforge.msg_id) = 2001; }\n",
			},
			want: [][]string{{"demo/b.proto:5:", "demo.Bar", "msg_id 2001", "demo.Foo", "demo/a.proto:4"}},
		},
		{
			name:  "framework id in an application package",
			files: map[string]string{"demo/a.proto": header + "message Foo { option (moonforge.msg_id) = 5; }\n"},
			want:  [][]string{{"demo/a.proto:4:", "demo.Foo", "msg_id 5", "framework", "1000"}},
		},
		{
			name:  "id 0",
			files: map[string]string{"demo/a.proto": header + "message Foo {\n  option (moonforge.msg_id) = 0;\n}\n"},
			want:  [][]string{{"demo/a.proto:5:3:", "demo.Foo", "msg_id 0 is invalid"}},
		},
		{
			name:  "id above 65535",
			files: map[string]string{"demo/a.proto": header + "message Foo { option (moonforge.msg_id) = 65536; }\n"},
			want:  [][]string{{"demo/a.proto:4:", "demo.Foo", "msg_id 65536", "65535"}},
		},
		{
			name: "every id problem is reported",
			files: map[string]string{
				"demo/a.proto": header + "message A { option (moonforge.msg_id) = 0; }\nmessage B { option (moonforge.msg_id) = 70000; }\n" +
					"message C { option (moonforge.msg_id) = 3000; }\nmessage D { option (moonforge.msg_id) = 3000; }\nmessage E { option (moonforge.msg_id) = 999; }\n",
			},
			want: [][]string{
				{"demo/a.proto:4:", "demo.A", "msg_id 0"},
				{"demo/a.proto:5:", "demo.B", "msg_id 70000"},
				{"demo/a.proto:7:", "demo.D", "demo.C", "msg_id 3000"},
				{"demo/a.proto:8:", "demo.E", "msg_id 999"},
			},
		},
		{
			name:  "syntax error",
			files: map[string]string{"demo/a.proto": header + "message Foo {\n  strin x = 1\n}\n"},
			want:  [][]string{{"demo/a.proto:6:1:", "syntax error"}},
		},
		{
			name:  "missing import",
			files: map[string]string{"demo/a.proto": header + "import \"demo/missing.proto\";\nmessage Foo { option (moonforge.msg_id) = 2001; }\n"},
			want:  [][]string{{"demo/a.proto:4:", "demo/missing.proto"}},
		},
		{
			name:  "unknown type",
			files: map[string]string{"demo/a.proto": header + "message Foo { Bar bar = 1; }\n"},
			want:  [][]string{{"demo/a.proto:4:", "Bar"}},
		},
		{
			name:  "proto2 file",
			files: map[string]string{"demo/a.proto": "syntax = \"proto2\";\npackage demo;\nmessage Foo { optional int32 x = 1; }\n"},
			want:  [][]string{{"demo/a.proto:1:1:", "proto3", "proto2"}},
		},
		{
			name:  "proto2 field type",
			files: map[string]string{"demo/a.proto": header + "import \"google/protobuf/descriptor.proto\";\nmessage Foo {\n  google.protobuf.FileOptions opts = 1;\n}\n"},
			want:  [][]string{{"demo/a.proto:6:3:", "demo.Foo.opts", "google.protobuf.FileOptions", "proto3"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadFS(appFS(t, tc.files))
			if err == nil {
				t.Fatalf("loaded %d messages, want an error", len(s.Messages()))
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v, want *LoadError", err, err)
			}
			t.Log(err)
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) || len(le.Problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, subs := range tc.want {
				for _, sub := range subs {
					if !strings.Contains(lines[i], sub) {
						t.Errorf("problem %d %q lacks %q", i, lines[i], sub)
					}
				}
			}
		})
	}
}

func TestLoadFrameworkMayUseFrameworkIDs(t *testing.T) {
	s, err := LoadFS(appFS(t, map[string]string{
		"moonforge/extra.proto": "syntax = \"proto3\";\npackage moonforge;\nimport \"moonforge/protocol.proto\";\nmessage Extra { option (msg_id) = 20; }\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if m := s.ByID(20); m == nil || m.FullName != "moonforge.Extra" {
		t.Fatalf("ByID(20) = %v", m)
	}
}

func TestLoadWithoutFrameworkHasNoIDs(t *testing.T) {
	s, err := LoadFS(fstest.MapFS{"a.proto": {Data: []byte("syntax = \"proto3\";\nmessage A { int32 x = 1; }\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Messages()) != 0 || s.Describe("A") == nil {
		t.Fatalf("messages %v, Describe(A) %v", s.Messages(), s.Describe("A"))
	}
}

func TestLoadEmpty(t *testing.T) {
	_, err := LoadFS(fstest.MapFS{"readme.txt": {Data: []byte("hi")}})
	if err == nil || !strings.Contains(err.Error(), "no .proto files") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadSkipsHiddenNames(t *testing.T) {
	fsys := appFS(t, map[string]string{
		"demo/a.proto":          header + "message A { option (moonforge.msg_id) = 2001; }\n",
		"demo/.#a.proto":        "garbage",
		".git/x.proto":          "garbage",
		"..data/demo/a.proto":   "garbage",
		"demo/notes.proto.orig": "garbage",
	})
	s, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files()) != 2 {
		t.Fatalf("loaded %d files, want 2", len(s.Files()))
	}
}

func TestLoadDirErrorsNameTheDirAndFollowSymlinks(t *testing.T) {
	root := t.TempDir()
	protocol, err := os.ReadFile("../../proto/moonforge/protocol.proto")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	mustWrite(t, filepath.Join(root, "moonforge", "protocol.proto"), string(protocol))
	mustWrite(t, filepath.Join(elsewhere, "a.proto"), header+"message A { option (moonforge.msg_id) = 2001; }\n")
	if err := os.Symlink(elsewhere, filepath.Join(root, "demo")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	s, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if m := s.ByName("demo.A"); m == nil || m.ID != 2001 {
		t.Fatalf("the file behind a symlinked directory did not load: %v", m)
	}
	mustWrite(t, filepath.Join(elsewhere, "a.proto"), header+"message A { option (moonforge.msg_id) = 0; }\n")
	_, err = Load(root)
	if err == nil || !strings.HasPrefix(err.Error(), "schema: "+filepath.ToSlash(filepath.Join(root, "demo", "a.proto"))+":4:") {
		t.Fatalf("err = %v, want it to start with the file's path under %s", err, root)
	}
	if _, err := Load(filepath.Join(root, "nope")); err == nil {
		t.Fatal("Load of a missing directory succeeded")
	}
}

func mustWrite(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
