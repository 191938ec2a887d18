package schema

import (
	"strings"

	"github.com/moonforge/moonforge/engine/source"
)

// LoadError reports every problem that stopped a schema from loading.
// Its Error text has one line per problem, in the order they were found.
type LoadError struct {
	// Root, when set, is prefixed to each problem's file when printing (Load sets it to its dir).
	Root     string
	Problems []source.Problem
}

// Error prints one line per problem.
func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("schema: ")
		b.WriteString(p.Location(e.Root))
		b.WriteString(p.Message)
	}
	return b.String()
}
