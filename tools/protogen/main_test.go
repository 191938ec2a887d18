package main

import "testing"

// TestGeneratedFilesAreFresh fails when a .proto changed without `make generate`.
func TestGeneratedFilesAreFresh(t *testing.T) {
	if err := run("../../proto", "../..", true); err != nil {
		t.Fatal(err)
	}
}
