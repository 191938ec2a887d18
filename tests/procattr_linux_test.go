package tests

import "syscall"

// procAttr makes the kernel kill a started server when the test process dies, so that an
// interrupted run leaves no server behind.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
