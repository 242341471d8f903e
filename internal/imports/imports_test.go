// Package imports holds the test of Farewell's import rules: what a client links, what
// a host application links, and what each library package stands on.
package imports

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/farewell-project/farewell"

// deps lists every package pkg links, itself excluded.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	list := strings.Fields(string(out))
	return slices.DeleteFunc(list, func(p string) bool { return p == module+"/"+pkg })
}

func TestImportRules(t *testing.T) {
	memberlist := "github.com/hashicorp/memberlist"
	server := "go.temporal.io/server"
	viper := "github.com/spf13/viper"
	rules := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{"plan", []string{module + "/", "go.temporal.io/", memberlist}, "the plan contract imports nothing of Farewell"},
		{"workflows", []string{memberlist, module + "/cluster", server}, "workflow code and its wire types are what clients link"},
		{"activities", []string{memberlist, module + "/cluster", server}, "activity payloads are part of the history format"},
		{"starter", []string{memberlist, module + "/cluster", server, module + "/devserver", module + "/config", viper}, "ops tooling links the starter: it takes its own options"},
		{"history", []string{memberlist, module + "/cluster", server, viper}, "replay links only what the history needs"},
		{"workflows", []string{viper}, "clients link the workflows' types"},
		{"cluster", []string{module + "/config", "go.temporal.io/", module + "/plan"}, "the memberlist wrapper stands alone"},
		{"agent", []string{server, module + "/devserver"}, "a host application must not link the Temporal server"},
		{"worker", []string{server, module + "/devserver"}, "workers run against any Temporal"},
		{"config", []string{memberlist, "go.temporal.io/"}, "configuration is plain data"},
		{"embedded", []string{server, module + "/devserver"}, "the embedded server's contract is not the server"},
		{"cli", []string{server, module + "/devserver"}, "the CLI takes its server from the binary that has one"},
		{"cmd/farewell-node", []string{server, module + "/devserver"}, "what runs on a node carries no server"},
		{"examples/hostapp", []string{server, module + "/devserver"}, "a host application must not link the Temporal server"},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			for _, dep := range deps(t, r.pkg) {
				for _, bad := range r.forbidden {
					if dep == strings.TrimSuffix(bad, "/") || strings.HasPrefix(dep, bad) {
						t.Errorf("%s links %s: %s", r.pkg, dep, r.why)
					}
				}
			}
		})
	}
}

// The rules must be able to fail: the full binary links the server, the agent viper.
func TestImportRulesSeeTheServer(t *testing.T) {
	for pkg, dep := range map[string]string{"devserver": "go.temporal.io/server", "cmd/farewell": "go.temporal.io/server", "agent": "github.com/spf13/viper"} {
		if !slices.ContainsFunc(deps(t, pkg), func(p string) bool { return strings.HasPrefix(p, dep) }) {
			t.Fatalf("go list -deps does not show %s under %s: the rules above prove nothing", dep, pkg)
		}
	}
}
