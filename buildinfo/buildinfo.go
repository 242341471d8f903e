// Package buildinfo says which build of a binary is running — Farewell's, or that of a
// host app that embeds the agent: its module version or the commit it was built from, and
// whether that tree had uncommitted changes. Go stamps both into a binary built from a
// checkout (go build -buildvcs, as make build and make release do) or installed with
// go install …@version; where neither applies, stamp Version by hand:
// -ldflags "-X github.com/farewell-project/farewell/buildinfo.Version=v1.2.3".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version, when set at link time, is the version reported instead of the module's.
var Version = ""

// Info is what one binary knows about its build.
type Info struct {
	// Version is the module version (v1.2.3, or a pseudo-version naming the commit,
	// with +dirty for a modified tree), or "dev" when the build was not stamped.
	Version string `json:"version"`
	// Revision is the commit the binary was built from; "" when the build did not
	// stamp it.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time (RFC 3339), when stamped.
	Time string `json:"time,omitempty"`
	// Modified says the checkout had uncommitted changes; meaningful with a Revision.
	Modified bool `json:"modified"`
	// Go is the toolchain, Platform the GOOS/GOARCH it was built for.
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// Deps are the versions of the modules Farewell is built on, by module path.
	Deps map[string]string `json:"deps,omitempty"`
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return From(bi, ok)
}

// From reads bi (as debug.ReadBuildInfo returned it, with ok).
func From(bi *debug.BuildInfo, ok bool) Info {
	info := Info{Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok && bi != nil {
		info.Version = bi.Main.Version
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
		var goos, goarch string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
		if goos != "" && goarch != "" {
			info.Platform = goos + "/" + goarch
		}
		for _, d := range bi.Deps {
			if info.Deps == nil {
				info.Deps = map[string]string{}
			}
			info.Deps[d.Path] = d.Version
		}
	}
	if Version != "" {
		info.Version = Version
	}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "dev"
	}
	return info
}

// String is the one line `farewell version` prints, for example
// "v0.0.0-20261206141500-073885e1a2b3 (commit 073885e1a2b3, 2026-12-06T14:15:00Z, go1.26.8 linux/amd64)"
// or "dev (commit 073885e1a2b3, modified, …)" or "dev (no commit stamped, …)".
func (i Info) String() string {
	var parts []string
	switch {
	case i.Revision == "":
		parts = append(parts, "no commit stamped")
	default:
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		parts = append(parts, "commit "+rev)
		if i.Modified {
			parts = append(parts, "modified")
		}
		if i.Time != "" {
			parts = append(parts, i.Time)
		}
	}
	parts = append(parts, i.Go+" "+i.Platform)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, ", "))
}

// Dep is the version of module path this binary was built with, or "unknown".
func (i Info) Dep(path string) string {
	if v := i.Deps[path]; v != "" {
		return v
	}
	return "unknown"
}
