//go:build !linux

package storetest

import "os/exec"

// dieWithParent does nothing where the OS cannot tie a child's life to its
// parent's: a killed test binary leaves its servers running there.
func dieWithParent(*exec.Cmd) {}
