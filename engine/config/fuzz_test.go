package config

import (
	"os"
	"testing"
)

// FuzzParse: any bytes give a configuration or an error, never a panic.
func FuzzParse(f *testing.F) {
	ref, err := os.ReadFile("../../moonforge.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(ref), "", "gate:\n  heartbeat: 10\n", "a: &x {b: 1}\nc: *x\n", "gate: *y\n",
		"<<: {dev: true}\n", "gate:\n  disabled_login_methods: [guest, {a: b}]\n", "- 1\n- 2\n", "dev: !!binary aGk=\n", "lua: [1]\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = Parse(raw)
	})
}
