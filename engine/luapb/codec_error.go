package luapb

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// codecError is a Decode or Encode failure at a field path. The path is collected innermost
// first while the failure unwinds the nested calls, and printed outermost first.
type codecError struct {
	root  string   // full name of the top message
	path  []string // segments such as ".players", "[2]", "[\"k\"]"; innermost first
	msg   string
	cause error // one of the err* kinds below, or nil
}

// Kinds of Decode failure that protobuf-go does not share: it keeps a field with an unexpected
// wire type as an unknown field, allows 10000 levels of nesting, and has no Lua tables.
var (
	errWrongWire  = errors.New("wrong wire type")
	errTooDeep    = errors.New("nested too deep")
	errSparseKeys = errors.New("integer map keys too sparse")
	errTooBig     = errors.New("decoding over budget")
)

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

// kindErrorf is errorf for a failure of one of the err* kinds, which errors.Is tells apart.
func kindErrorf(cause error, format string, args ...any) error {
	return &codecError{msg: fmt.Sprintf(format, args...), cause: cause}
}

func (e *codecError) Unwrap() error { return e.cause }

// at adds one path segment to a codecError on its way out; other errors pass unchanged.
func at(err error, segment string) error {
	if ce, ok := err.(*codecError); ok {
		ce.path = append(ce.path, segment)
	}
	return err
}

// rooted names the top message of a codecError.
func rooted(err error, root string) error {
	if ce, ok := err.(*codecError); ok {
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

// formatNumber writes integral values in full (2^63 as 9223372036854775808), others shortest.
func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
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
