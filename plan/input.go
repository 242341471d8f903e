package plan

import (
	"fmt"
	"slices"
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

// Tag bounds: tags travel in every member's signed metadata, which memberlist caps at
// 512 bytes, most of it taken by the key and signature.
const (
	// MaxTag is the longest tag key or value, in bytes.
	MaxTag = 32
	// MaxTags is the most a member's tags may take, keys and values together.
	MaxTags = 160
)

// ValidateTag checks one metadata tag: a key of lower-case letters, digits, '.', '-' and
// '_' (configuration keys are read lower-case), a value of letters, digits, '.', '-'
// and '_'; each 1 to MaxTag bytes.
func ValidateTag(key, value string) error {
	for _, s := range []string{key, value} {
		if s == "" || len(s) > MaxTag {
			return fmt.Errorf("tag %q=%q: keys and values are 1 to %d bytes", key, value, MaxTag)
		}
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("tag key %q: lower-case letters, digits, '.', '-' and '_' only", key)
		}
	}
	if err := ValidateNodeName(value); err != nil {
		return fmt.Errorf("tag %s: value %q: letters, digits, '.', '-' and '_' only", key, value)
	}
	return nil
}

// ValidateTags checks a member's tags, one by one and together.
func ValidateTags(tags map[string]string) error {
	total := 0
	for k, v := range tags {
		if err := ValidateTag(k, v); err != nil {
			return err
		}
		total += len(k) + len(v)
	}
	if total > MaxTags {
		return fmt.Errorf("tags take %d bytes; at most %d", total, MaxTags)
	}
	return nil
}

// SortedKeys returns m's keys in order. Workflow code goes through it: the order it
// sees must not be Go's random map order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	//workflowcheck:ignore the keys are sorted before anyone sees them
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
