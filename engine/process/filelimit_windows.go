//go:build windows

package process

// FileLimit returns 0 and false: Windows has no per-process limit on open files or sockets; only
// memory bounds the number of handles. Safe for concurrent use.
func FileLimit() (int, bool) { return 0, false }
