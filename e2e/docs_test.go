package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every farewell command the README and docs/ show exists, with every flag it is shown
// with: its --help answers and names them. (What the commands do is what the other
// tests check.)
func TestDocumentedCommandsExist(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md", "../examples/hostapp/README.md", "../deploy/temporal/README.md")
	seen := 0
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		inCode := false
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "```") {
				inCode = !inCode && (line == "```sh" || line == "```console")
				continue
			}
			if !inCode {
				continue
			}
			args := documentedCommand(line)
			if args == nil {
				continue
			}
			seen++
			var words, flags []string
			for _, a := range args {
				switch {
				case strings.HasPrefix(a, "--"):
					flags = append(flags, strings.SplitN(a, "=", 2)[0])
				case strings.HasPrefix(a, "-") || len(flags) > 0:
					// a short flag, or a flag's value: the command's words come first
				default:
					words = append(words, a)
				}
			}
			code, stdout, stderr := runCLI(t, nil, append(words, "--help")...)
			if code != 0 {
				t.Errorf("%s:%d: farewell %s --help: exit %d: %s", file, n, strings.Join(words, " "), code, stderr)
				continue
			}
			for _, fl := range flags {
				if !strings.Contains(stdout, fl) {
					t.Errorf("%s:%d: %q: farewell %s has no flag %s", file, n, line, strings.Join(words, " "), fl)
				}
			}
		}
		f.Close()
	}
	if seen < 10 {
		t.Fatalf("only %d commands found in the docs: the scan is broken", seen)
	}
}

// documentedCommand returns the arguments of a farewell command line in the docs (nil
// for any other line).
func documentedCommand(line string) []string {
	line = strings.TrimPrefix(line, "$ ")
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	for _, prefix := range []string{"go run ./cmd/farewell ", "farewell ", "bin/farewell "} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}
