//go:build unix

package process

import "syscall"

// FileLimit returns how many files, sockets included, this process may hold open, and true. It is
// the soft RLIMIT_NOFILE, which Go's runtime has already raised to the hard limit at start (on
// macOS capped at kern.maxfilesperproc); only the hard limit (ulimit -Hn, systemd's
// LimitNOFILE) raises it further. Safe for concurrent use.
func FileLimit() (int, bool) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, false
	}
	return int(min(l.Cur, 1<<30)), true
}
