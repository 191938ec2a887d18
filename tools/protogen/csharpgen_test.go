package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moonforge/moonforge/engine/schema"
)

func TestCSharpNames(t *testing.T) {
	pascal := map[string]string{
		"room_id": "RoomId", "i32_leaf": "I32Leaf", "max_field": "MaxField", "fixed64": "Fixed64",
		"x": "X", "new_room": "NewRoom", "a__b": "AB", "_x": "X", "2d": "_2D",
	}
	for in, want := range pascal {
		if got := csPascal(in); got != want {
			t.Errorf("csPascal(%q) = %q, want %q", in, got, want)
		}
	}
	values := []struct{ enum, value, want string }{
		{"Color", "COLOR_UNSPECIFIED", "Unspecified"},
		{"Color", "RED", "Red"},
		{"Kind", "KIND_UNSPECIFIED", "Unspecified"},
		{"ErrorCode", "ERROR_CODE_NOT_FOUND", "NotFound"},
		{"Color", "COLOR_2D", "Color2D"}, // a digit after the prefix keeps the prefix
		{"Color", "COLORFUL", "Ful"},
		{"Mode", "MODE", "Mode"},
	}
	for _, v := range values {
		if got := csEnumValueName(v.enum, v.value); got != v.want {
			t.Errorf("csEnumValueName(%q, %q) = %q, want %q", v.enum, v.value, got, v.want)
		}
	}
	if csIdent("event") != "@event" || csIdent("Event") != "Event" || csIdent("in") != "@in" || csIdent("int32") != "int32" {
		t.Error("csIdent escapes exactly C#'s keywords")
	}
}

func loadTestSchema(t *testing.T, files map[string]string) *schema.Schema {
	t.Helper()
	fsys := fstest.MapFS{}
	for p, src := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(src)}
	}
	sch, err := schema.LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func TestCSharpRefusals(t *testing.T) {
	wkt := loadTestSchema(t, map[string]string{"game/game.proto": `syntax = "proto3"; package game;
import "google/protobuf/timestamp.proto";
message Event { google.protobuf.Timestamp at = 1; }`})
	if _, err := generateCSharp(wkt, "game/game.proto"); err == nil || !strings.Contains(err.Error(), "well-known type") {
		t.Errorf("a well-known type field: err = %v, want a well-known type error", err)
	}
	clash := loadTestSchema(t, map[string]string{"game/game.proto": `syntax = "proto3"; package game;
message GameMessages { int32 a = 1; }`})
	if _, err := generateCSharp(clash, "game/game.proto"); err == nil || !strings.Contains(err.Error(), "GameMessages") {
		t.Errorf("a message named like the file class: err = %v", err)
	}
	nestedTypes := loadTestSchema(t, map[string]string{"game/game.proto": `syntax = "proto3"; package game;
message Hero { message Types { int32 x = 1; } }`})
	if _, err := generateCSharp(nestedTypes, "game/game.proto"); err == nil || !strings.Contains(err.Error(), "Types") {
		t.Errorf("a nested message named Types: err = %v", err)
	}
	sameBase := loadTestSchema(t, map[string]string{
		"a/items.proto": `syntax = "proto3"; package a; message A { int32 a = 1; }`,
		"b/Items.proto": `syntax = "proto3"; package b; message B { int32 b = 1; }`,
	})
	if _, err := outputs(sameBase); err == nil || !strings.Contains(err.Error(), "a/items.proto") || !strings.Contains(err.Error(), "b/Items.proto") {
		t.Errorf("two .proto files with one base name: err = %v", err)
	}
}

func TestCSharpMembers(t *testing.T) {
	sch := loadTestSchema(t, map[string]string{"game/game.proto": `syntax = "proto3"; package game.v1;
message Hero {
  message Gear { int32 x = 1; }
  string hero = 1;
  string types = 2;
  optional int32 level = 3;
  oneof weapon { string sword = 4; int32 bow = 5; }
  map<string, Hero> friends = 6;
  string write_to = 7;
}`})
	src, err := generateCSharp(sch, "game/game.proto")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	for _, want := range []string{
		"namespace Game.V1",
		"public string Hero_",  // a property may not share its class's name
		"public string Types_", // nor the nested Types class
		"public bool HasLevel",
		"public WeaponOneofCase WeaponCase",
		"public void ClearWeapon()",
		"global::System.Collections.Generic.Dictionary<string, global::Game.V1.Hero> Friends",
		"public string WriteTo_", // nor a method of IMessage
		"public static class GameMessages",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("generated C# lacks %q", want)
		}
	}
	compileWithRuntime(t, src)
}

// compileWithRuntime compiles generated C# with the SDK's runtime at C# 7.2, when mono's mcs is
// installed (sdk/csharp's tests say how to get it).
func compileWithRuntime(t *testing.T, src []byte) {
	t.Helper()
	mcs, err := exec.LookPath("mcs")
	if err != nil {
		t.Log("mcs not installed: the generated C# was not compiled")
		return
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "Generated.cs")
	if err := os.WriteFile(gen, src, 0o644); err != nil {
		t.Fatal(err)
	}
	runtime, err := filepath.Glob("../../sdk/csharp/Runtime/*/*.cs")
	if err != nil || len(runtime) == 0 {
		t.Fatalf("no runtime sources: %v", err)
	}
	args := append([]string{"-langversion:7.2", "-warnaserror+", "-nologo", "-target:library", "-out:" + filepath.Join(dir, "g.dll"), gen}, runtime...)
	if out, err := exec.Command(mcs, args...).CombinedOutput(); err != nil {
		t.Fatalf("mcs: %v\n%s\n%s", err, out, src)
	}
}
