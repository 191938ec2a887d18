package ident

import (
	"regexp"
	"testing"
)

func TestNewHasItsFormAndDiffers(t *testing.T) {
	form := regexp.MustCompile(`^r[a-z2-7]{16}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := New("r", 16)
		if !form.MatchString(id) {
			t.Fatalf("id %q does not match %s", id, form)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}
