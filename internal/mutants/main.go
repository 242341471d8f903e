// Command mutants summarizes what gremlins (mutation testing, `make mutants`) found in
// each package: mutants killed, lived, not covered and timed out, the efficacy
// (killed ÷ killed and lived), and every living mutant by file:line:column — but those
// docs/mutants-ignored.txt says cannot matter (an equivalent mutant, a log line), so
// that a run shows only what is new.
//
//	go run ./internal/mutants [-ignored docs/mutants-ignored.txt] .farewell/mutants-*.json
//
// It exits 1 when a package's efficacy is below its target (90 % for plan and cluster,
// 80 % for the others).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// report is what gremlins writes with -o.
type report struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// targets are the efficacy each package must reach.
var targets = map[string]float64{"plan": 90, "cluster": 90}

const defaultTarget = 80

func main() {
	ignoredFile := flag.String("ignored", "docs/mutants-ignored.txt", "living mutants that cannot matter, one per line: PKG/FILE:LINE:COL TYPE reason")
	flag.Parse()
	ignored, err := readIgnored(*ignoredFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(2)
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "mutants: give gremlins' JSON reports (.farewell/mutants-PKG.json)")
		os.Exit(2)
	}
	fmt.Println("| package | killed | lived | ignored | not covered | timed out | efficacy | target |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	var living []string
	failed := false
	for _, file := range flag.Args() {
		pkg := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "mutants-"), ".json")
		b, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mutants:", err)
			os.Exit(2)
		}
		var r report
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(os.Stderr, "mutants: %s is not a gremlins report: %v\n", file, err)
			os.Exit(2)
		}
		var killed, lived, skip, uncovered, timedOut int
		for _, f := range r.Files {
			for _, m := range f.Mutations {
				id := fmt.Sprintf("%s/%s:%d:%d %s", pkg, f.Name, m.Line, m.Column, m.Type)
				switch m.Status {
				case "KILLED":
					killed++
				case "LIVED":
					if _, ok := ignored[id]; ok {
						skip++
						continue
					}
					lived++
					living = append(living, id)
				case "NOT COVERED":
					uncovered++
				case "TIMED OUT":
					timedOut++
				}
			}
		}
		eff := 100.0
		if killed+lived > 0 {
			eff = 100 * float64(killed) / float64(killed+lived)
		}
		target, ok := targets[pkg]
		if !ok {
			target = defaultTarget
		}
		mark := ""
		if eff < target {
			mark, failed = " (below)", true
		}
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %.1f %%%s | %.0f %% |\n", pkg, killed, lived, skip, uncovered, timedOut, eff, mark, target)
	}
	sort.Strings(living)
	if len(living) > 0 {
		fmt.Printf("\nLiving mutants (%d): kill each with a test, or say in %s why it cannot matter\n", len(living), *ignoredFile)
		for _, l := range living {
			fmt.Println("  " + l)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// readIgnored reads the list of mutants that cannot matter: "PKG/FILE:LINE:COL TYPE
// reason"; blank lines and # comments are skipped. A line without a reason is an error.
func readIgnored(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want PKG/FILE:LINE:COL TYPE and a reason", path, n)
		}
		out[fields[0]+" "+fields[1]] = strings.Join(fields[2:], " ")
	}
	return out, sc.Err()
}
