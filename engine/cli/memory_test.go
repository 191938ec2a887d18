package cli

import (
	"errors"
	"testing"
)

func fixed(n uint64, err error) func() (uint64, error) {
	return func() (uint64, error) { return n, err }
}

func TestDefaultMemoryLimit(t *testing.T) {
	none := errors.New("no limit")
	for _, c := range []struct {
		name       string
		configured int64
		gomemlimit string
		src        memorySources
		want       int64
	}{
		{"the container's limit, under the machine's memory", 0, "", memorySources{fixed(4<<30, nil), fixed(16<<30, nil)}, 3 << 30},
		{"the machine's memory, under a container limit above it", 0, "", memorySources{fixed(64<<30, nil), fixed(8<<30, nil)}, 6 << 30},
		{"no container limit", 0, "", memorySources{fixed(0, none), fixed(8<<30, nil)}, 6 << 30},
		{"nothing readable", 0, "", memorySources{fixed(0, none), fixed(0, none)}, 0},
		{"memory_limit set", 1 << 30, "", memorySources{fixed(4<<30, nil), fixed(16<<30, nil)}, 0},
		{"GOMEMLIMIT set", 0, "2GiB", memorySources{fixed(4<<30, nil), fixed(16<<30, nil)}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", c.gomemlimit)
			if got := defaultMemoryLimit(c.configured, c.src); got != c.want {
				t.Fatalf("got %d, want %d", got, c.want)
			}
		})
	}
}

// On this machine the real sources give a limit below its memory.
func TestDefaultMemoryLimitOfThisMachine(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	machine, err := hostMemory.machine()
	if err != nil {
		t.Skipf("the machine's memory cannot be read here: %v", err)
	}
	if got := defaultMemoryLimit(0, hostMemory); got <= 0 || uint64(got) > machine {
		t.Fatalf("limit %d with %d bytes of memory", got, machine)
	}
}
