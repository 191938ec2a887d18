package cluster

import "syscall"

// procAttr makes the kernel kill a started node when the test process dies, so that an
// interrupted run leaves no node behind.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
