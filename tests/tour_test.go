package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tourStep is one numbered step of the README's tour: its text and its fenced code blocks.
type tourStep struct {
	text   string
	blocks []tourBlock
}

type tourBlock struct {
	lang  string   // "console", "lua", "proto"
	lines []string // without the fences and the list indentation
}

// readTour parses the numbered steps of the README's "A five-minute tour".
func readTour(t testing.TB) []tourStep {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(built.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## A five-minute tour\n")
	if !ok {
		t.Fatal("README.md has no tour")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var steps []tourStep
	var block *tourBlock
	stepStart := regexp.MustCompile(`^\d+\. `)
	for _, line := range strings.Split(section, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case block != nil && trimmed == "```":
			steps[len(steps)-1].blocks = append(steps[len(steps)-1].blocks, *block)
			block = nil
		case block != nil:
			block.lines = append(block.lines, strings.TrimPrefix(line, "   "))
		case stepStart.MatchString(line):
			steps = append(steps, tourStep{text: line})
		case len(steps) > 0 && strings.HasPrefix(trimmed, "```"):
			block = &tourBlock{lang: strings.TrimPrefix(trimmed, "```")}
		case len(steps) > 0:
			steps[len(steps)-1].text += "\n" + line
		}
	}
	if len(steps) != 7 {
		t.Fatalf("the tour has %d steps, want 7", len(steps))
	}
	return steps
}

// TestTour follows the README's tour on a server of its own: it saves the files the tour shows,
// breaks the echo handler as step 4 says, runs every `bin/moonforge call` of the tour and
// compares its output with the README's, and checks that the last step removes every file the
// tour created.
func TestTour(t *testing.T) {
	t.Parallel()
	steps := readTour(t)
	s := startServer(t, options{})
	created := map[string]bool{}
	var fixed []byte // echo.lua before step 4 broke it
	for i, step := range steps {
		n := i + 1
		if n == 4 {
			const instruction = "change `end)` on the last line of `lua/lobby/echo.lua` to `)`"
			if !strings.Contains(step.text, instruction) {
				t.Fatalf("step 4 no longer says to %s", instruction)
			}
			path := s.path("lua/lobby/echo.lua")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fixed = b
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if lines[len(lines)-1] != "end)" {
				t.Fatalf("the last line of lua/lobby/echo.lua is %q, not end)", lines[len(lines)-1])
			}
			lines[len(lines)-1] = ")"
			prev := s.lastReload(t)
			replaceFile(t, path, strings.Join(lines, "\n")+"\n")
			r := s.nextReload(t, prev)
			where := regexp.MustCompile("`(lua/lobby/echo.lua:\\d+: [^`]*)`").FindStringSubmatch(step.text)
			if where == nil || r.Result != "rejected" || !strings.Contains(r.problems(), where[1]) {
				t.Errorf("step 4: reload %s %s; the README says %v", r.Result, r.problems(), where)
			}
		}
		prev := s.lastReload(t)
		wrote := false
		for _, b := range step.blocks {
			switch b.lang {
			case "lua", "proto":
				rel := regexp.MustCompile(`(lua|proto)/[\w/]+\.(lua|proto)`).FindString(b.lines[0])
				if rel == "" {
					t.Fatalf("step %d: a %s block whose first line names no file: %q", n, b.lang, b.lines[0])
				}
				path := s.path(rel)
				if _, err := os.Stat(filepath.Join(built.root, rel)); err != nil {
					created[rel] = true
				}
				text := strings.Join(b.lines, "\n") + "\n"
				if strings.Contains(b.lines[0], "at the end of") {
					old, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					text = string(old) + text
				}
				replaceFile(t, path, text)
				wrote = true
			case "console":
				if wrote {
					s.waitApplied(t, prev)
					wrote = false
				}
				runConsole(t, s, n, b)
			default:
				t.Fatalf("step %d: a code block of unknown kind %q", n, b.lang)
			}
		}
		if n == 4 {
			if !strings.Contains(step.text, "Put the `end` back and save: `reload: nothing changed`") {
				t.Fatal("step 4 no longer fixes the file it broke")
			}
			prev := s.lastReload(t)
			replaceFile(t, s.path("lua/lobby/echo.lua"), string(fixed))
			s.waitApplied(t, prev)
		}
	}
	last := steps[len(steps)-1].text
	if !strings.Contains(last, "git checkout -- lua proto") {
		t.Errorf("the last step does not restore lua/ and proto/ with git checkout -- lua proto: %q", last)
	}
	for rel := range created {
		if !strings.Contains(last, "rm "+rel) {
			t.Errorf("the tour creates %s, but its last step does not remove it: %q", rel, last)
		}
	}
}

// waitApplied waits until a reload after prev has been applied, or found the code it had (a save
// of several files may be rejected until the last one is there).
func (s *server) waitApplied(t testing.TB, prev reloadResult) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.nextReload(t, prev)
		if r.Result == "applied" || r.Result == "unchanged" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload applied after the tour's edits; the last: %s %s", r.Result, r.problems())
		}
		prev = r
	}
}

// runConsole runs the `$ bin/moonforge call` commands of a console block against s and compares
// their output with the lines that follow them.
func runConsole(t *testing.T, s *server, step int, b tourBlock) {
	t.Helper()
	for i := 0; i < len(b.lines); i++ {
		cmd, ok := strings.CutPrefix(b.lines[i], "$ bin/moonforge call ")
		if !ok {
			t.Fatalf("step %d: %q is not a bin/moonforge call", step, b.lines[i])
		}
		var want []string
		for i+1 < len(b.lines) && !strings.HasPrefix(b.lines[i+1], "$ ") {
			i++
			want = append(want, b.lines[i])
		}
		args := append([]string{"call", "-addr", s.tcp, "-proto", s.path("proto")}, shellWords(t, cmd)...)
		r := runMoonforge(t, s.dir, args...)
		if got := strings.TrimRight(r.stdout, "\n"); r.code != 0 || got != strings.Join(want, "\n") {
			t.Errorf("step %d: moonforge call %s\n got: %s\nwant: %s\n%s", step, cmd, got, strings.Join(want, "\n"), r)
		}
	}
}

// shellWords splits a command line as sh does for words and single-quoted strings.
func shellWords(t testing.TB, line string) []string {
	t.Helper()
	var words []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '\'' {
			end := strings.IndexByte(line[1:], '\'')
			if end < 0 {
				t.Fatalf("unclosed quote in %q", line)
			}
			words = append(words, line[1:1+end])
			line = line[2+end:]
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		words = append(words, word)
		line = rest
	}
	return words
}
