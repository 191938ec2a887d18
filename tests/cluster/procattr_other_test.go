//go:build !linux

package cluster

import "syscall"

// procAttr is nil where the kernel has no parent-death signal: a node left by an interrupted run
// ends with its test's cleanup only.
func procAttr() *syscall.SysProcAttr { return nil }
