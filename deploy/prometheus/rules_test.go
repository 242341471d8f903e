// Package prometheus_test checks the shipped alerting rules with Prometheus' own parser.
package prometheus_test

import (
	"log/slog"
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
