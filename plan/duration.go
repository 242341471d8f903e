package plan

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that travels as a string ("2s", "1m30s") in JSON, so
// that inputs, results and reports read well in the Temporal UI and in files. Decoding
// also accepts a number of nanoseconds, the shape earlier versions recorded.
type Duration time.Duration

// Std is d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("duration %q: write it like 500ms, 5s or 1m30s", str)
		}
		*d = Duration(v)
		return nil
	}
	var ns int64
	if err := json.Unmarshal(b, &ns); err != nil {
		return fmt.Errorf("duration %s: not a string like \"5s\" nor a number of nanoseconds", s)
	}
	*d = Duration(ns)
	return nil
}

// Millis rounds d to the millisecond, the precision reports keep.
func Millis(d time.Duration) Duration { return Duration(d.Round(time.Millisecond)) }
