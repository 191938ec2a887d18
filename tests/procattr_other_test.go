//go:build !linux

package tests

import "syscall"

// procAttr is nil where the kernel has no parent-death signal: a server left by an interrupted
// run ends with its test's cleanup only.
func procAttr() *syscall.SysProcAttr { return nil }
