package schema

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// Problem is one defect found while loading a schema.
type Problem struct {
	File    string // slash-separated path relative to the schema root; "" when no file applies
	Line    int    // 1-based; 0 when unknown
	Column  int    // 1-based; 0 when unknown
	Message string
}

// String formats the problem as "file:line:col: message", leaving out the parts that are unknown.
// Paths have forward slashes on every OS.
func (p Problem) String() string {
	return p.location("") + p.Message
}

func (p Problem) location(root string) string {
	if p.File == "" {
		return ""
	}
	file := p.File
	if root != "" {
		file = path.Join(filepath.ToSlash(root), file)
	}
	switch {
	case p.Line > 0 && p.Column > 0:
		return fmt.Sprintf("%s:%d:%d: ", file, p.Line, p.Column)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: ", file, p.Line)
	default:
		return file + ": "
	}
}

// LoadError reports every problem that stopped a schema from loading.
// Its Error text has one line per problem, in the order they were found.
type LoadError struct {
	// Root, when set, is prefixed to each problem's file when printing (Load sets it to its dir).
	Root     string
	Problems []Problem
}

// Error prints one line per problem.
func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("schema: ")
		b.WriteString(p.location(e.Root))
		b.WriteString(p.Message)
	}
	return b.String()
}
