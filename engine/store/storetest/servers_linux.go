package storetest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server die with the test binary, even when a
// timeout kills it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
