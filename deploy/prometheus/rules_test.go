// Package prometheus_test checks the shipped alerting rules with Prometheus' own parser.
package prometheus_test

import (
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func TestAlertRulesParse(t *testing.T) {
	groups, errs := rulefmt.ParseFile("farewell-rules.yml", false, model.UTF8Validation,
		parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("farewell-rules.yml: %v", err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	want := map[string]bool{"FarewellShutdownSlow": false, "FarewellShutdownFailed": false, "FarewellShutdownForced": false,
		"FarewellMemberBlocked": false, "FarewellMemberLeavingTooLong": false}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if _, ok := want[r.Alert]; ok {
				want[r.Alert] = true
			}
		}
	}
	for alert, found := range want {
		if !found {
			t.Errorf("alert %s missing", alert)
		}
	}
}

// promtool checks the rules and runs their unit tests (farewell-rules_test.yml): each
// alert fires on the series that should fire it, not on a near miss. CI installs
// Prometheus (promtool) and sets FAREWELL_PROMETHEUS=require.
func TestRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("FAREWELL_PROMETHEUS") == "require" {
			t.Fatalf("promtool is required (FAREWELL_PROMETHEUS=require): %v", err)
		}
		t.Skip("promtool is not installed (apt-get install -y prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "farewell-rules.yml"}, {"test", "rules", "farewell-rules_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
