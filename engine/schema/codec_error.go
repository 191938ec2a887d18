package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// codecError is a Decode or Encode failure at a field path. The path is collected innermost
// first while the failure unwinds the nested calls, and printed outermost first.
type codecError struct {
	root string   // full name of the top message
	path []string // segments such as ".players", "[2]", "[\"k\"]"; innermost first
	msg  string
}

func (e *codecError) Error() string {
	var b strings.Builder
	b.WriteString(e.root)
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteString(e.path[i])
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

func errorf(format string, args ...any) error {
	return &codecError{msg: fmt.Sprintf(format, args...)}
}

// at adds one path segment to a codecError on its way out; other errors pass unchanged.
func at(err error, segment string) error {
	var ce *codecError
	if errors.As(err, &ce) {
		ce.path = append(ce.path, segment)
	}
	return err
}

// rooted names the top message of a codecError.
func rooted(err error, root string) error {
	var ce *codecError
	if errors.As(err, &ce) {
		ce.root = root
	}
	return err
}

func fieldSegment(f *field) string { return "." + f.name }

func indexSegment(i int) string { return "[" + strconv.Itoa(i) + "]" }

// keySegment formats a map key or table key the way Lua source would write it.
func keySegment(k lua.LValue) string {
	switch k := k.(type) {
	case lua.LString:
		return "[" + strconv.Quote(string(k)) + "]"
	case lua.LNumber:
		return "[" + formatNumber(float64(k)) + "]"
	default:
		return "[" + k.String() + "]"
	}
}

func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// describe formats a Lua value for an error message: strings quoted and cut short, numbers
// exactly, other values by type.
func describe(v lua.LValue) string {
	switch v := v.(type) {
	case lua.LString:
		s := string(v)
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return strconv.Quote(s)
	case lua.LNumber:
		return formatNumber(float64(v))
	case lua.LBool:
		return v.String()
	default:
		return v.Type().String()
	}
}
