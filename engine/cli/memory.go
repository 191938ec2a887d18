package cli

import (
	"os"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memorySources are where the memory a process may use is read: its container's limit (cgroup;
// an error when there is none or no cgroups) and the machine's memory.
type memorySources struct {
	container, machine func() (uint64, error)
}

var hostMemory = memorySources{container: memlimit.FromCgroup, machine: memlimit.FromSystem}

// defaultMemoryLimit returns the Go soft memory limit run sets when memory_limit is 0: three
// quarters of the container's memory limit or of the machine's memory, whichever is smaller; 0
// (none) when GOMEMLIMIT is set, memoryLimit is, or neither source can be read. With gc_percent
// at its default the heap may grow to many times the live data between collections; this limit
// makes the collector run sooner as the heap nears the memory there is, instead of the process
// being killed. It sheds no load: only memory_limit does (memory_high_water).
func defaultMemoryLimit(memoryLimit int64, src memorySources) int64 {
	if memoryLimit != 0 || os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	var total uint64
	for _, read := range []func() (uint64, error){src.container, src.machine} {
		if n, err := read(); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return int64(total / 4 * 3)
}
