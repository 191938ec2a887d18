package source

import (
	"fmt"
	"path"
	"path/filepath"
)

// Problem is one defect found in a source file (a .proto or a .lua file), located as precisely as
// its finder knows. Schema loading, script compilation and reloads all report this type.
type Problem struct {
	File    string `json:"file,omitempty"`   // slash-separated; "" when no file applies
	Line    int    `json:"line,omitempty"`   // 1-based; 0 when unknown
	Column  int    `json:"column,omitempty"` // 1-based; 0 when unknown
	Message string `json:"message"`
}

// String formats the problem as "file:line:col: message", leaving out the parts that are unknown.
// Paths have forward slashes on every OS (lua/lobby/echo.lua:4), so the format is the same
// everywhere.
func (p Problem) String() string { return p.Location("") + p.Message }

// Location is "file:line:col: " with root prefixed to the file (root "" for none), or "" when no
// file applies.
func (p Problem) Location(root string) string {
	if p.File == "" {
		return ""
	}
	file := filepath.ToSlash(p.File)
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
