package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromStampedBuild(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/farewell-project/farewell", Version: "v0.0.0-20261206141500-073885e1a2b3+dirty"},
		Deps:      []*debug.Module{{Path: "go.temporal.io/sdk", Version: "v1.50.0"}},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "073885e1a2b3c4d5e6f708192a3b4c5d6e7f8091"},
			{Key: "vcs.time", Value: "2026-12-06T14:15:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := From(bi, true)
	if got.Revision != "073885e1a2b3c4d5e6f708192a3b4c5d6e7f8091" || !got.Modified || got.Platform != "linux/arm64" || got.Go != "go1.26.8" {
		t.Fatalf("From = %+v", got)
	}
	if got.Dep("go.temporal.io/sdk") != "v1.50.0" || got.Dep("example.com/none") != "unknown" {
		t.Errorf("deps: %v", got.Deps)
	}
	want := "v0.0.0-20261206141500-073885e1a2b3+dirty (commit 073885e1a2b3, modified, 2026-12-06T14:15:00Z, go1.26.8 linux/arm64)"
	if s := got.String(); s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
}

func TestFromUnstampedBuild(t *testing.T) {
	got := From(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true)
	if got.Version != "dev" || got.Revision != "" || got.Modified {
		t.Fatalf("From = %+v", got)
	}
	if s := got.String(); !strings.HasPrefix(s, "dev (no commit stamped, ") {
		t.Errorf("String() = %q", s)
	}
	clean := From(&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, true)
	if s := clean.String(); !strings.HasPrefix(s, "v1.2.3 (commit abc, go") || strings.Contains(s, "modified") {
		t.Errorf("String() = %q", s)
	}
}

func TestVersionStampedAtLinkTimeWins(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v9.9.9"
	if got := From(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true); got.Version != "v9.9.9" {
		t.Errorf("Version = %q", got.Version)
	}
	if got := From(nil, false); got.Version != "v9.9.9" || got.Go == "" {
		t.Errorf("without build info: %+v", got)
	}
}
