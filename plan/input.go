package plan

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Bounds of what people write into a shutdown.
const (
	// MaxNodeName is the longest node name, in bytes.
	MaxNodeName = 128
	// MaxReason is the longest reason, in bytes.
	MaxReason = 1024
)

// ValidateNodeName checks a node's name: 1 to MaxNodeName letters, digits, dots, dashes
// and underscores (what host names and pod names use). It goes into workflow IDs, task
// queue names, the UI and terminals, so nothing else is let in.
func ValidateNodeName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty")
	case len(name) > MaxNodeName:
		return fmt.Errorf("%d bytes long; at most %d", len(name), MaxNodeName)
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%q has %q at byte %d: a node name has letters, digits, '.', '-' and '_' only", name, r, i)
		}
	}
	return nil
}

// ValidateText checks a reason or a requester: at most MaxReason bytes of UTF-8 with no
// control characters (one line, nothing a terminal or the UI would act on).
func ValidateText(s string) error {
	if len(s) > MaxReason {
		return fmt.Errorf("%d bytes long; at most %d", len(s), MaxReason)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("has a control character (%U) at byte %d", r, i)
		}
	}
	return nil
}
