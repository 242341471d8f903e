package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid matches every error that is the user's input being wrong (as opposed to
// the machine failing): a bad value, an unknown key, a missing file.
var ErrInvalid = errors.New("invalid configuration")

// FieldError is one bad setting.
type FieldError struct {
	// Key is the dotted configuration key (or the flag) that holds the bad value.
	Key string
	// Msg says what is wrong with it, quoting the value.
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Validate reports every bad or conflicting value, each naming its key. The error
// matches ErrInvalid.
func (c Config) Validate() error {
	var v validator

	v.hostPort("temporal.address", c.Temporal.Address, false)
	v.nonEmpty("temporal.namespace", c.Temporal.Namespace)
	if (c.Temporal.TLS.Cert == "") != (c.Temporal.TLS.Key == "") {
		v.add("temporal.tls.cert", "cert and key go together: set both temporal.tls.cert and temporal.tls.key, or neither")
	}
	v.readable("temporal.tls.ca", c.Temporal.TLS.CA)
	v.readable("temporal.tls.cert", c.Temporal.TLS.Cert)
	v.readable("temporal.tls.key", c.Temporal.TLS.Key)

	v.nonEmpty("cluster.name", c.Cluster.Name)
	v.hostPort("cluster.bind", c.Cluster.Bind, false)
	if c.Cluster.Advertise != "" {
		v.hostPort("cluster.advertise", c.Cluster.Advertise, false)
	}
	for i, addr := range c.Cluster.Join {
		v.hostPort(fmt.Sprintf("cluster.join[%d]", i), addr, true)
	}
	if c.Cluster.SecretKey != "" {
		if _, err := SecretKeyBytes(c.Cluster.SecretKey); err != nil {
			v.add("cluster.secret_key", err.Error())
		}
	}
	v.oneOf("cluster.profile", c.Cluster.Profile, ProfileLocal, ProfileLAN, ProfileWAN)
	v.positive("cluster.heartbeat_interval", c.Cluster.HeartbeatInterval)
	v.positive("cluster.heartbeat_expiration", c.Cluster.HeartbeatExpiration)
	if c.Cluster.HeartbeatInterval > 0 && c.Cluster.HeartbeatExpiration > 0 && c.Cluster.HeartbeatExpiration <= c.Cluster.HeartbeatInterval {
		v.add("cluster.heartbeat_expiration", fmt.Sprintf("%s must be longer than cluster.heartbeat_interval (%s), or every node looks blocked", c.Cluster.HeartbeatExpiration, c.Cluster.HeartbeatInterval))
	}

	if _, err := c.Shutdown.Plan(); err != nil {
		v.problems = append(v.problems, leaves(err)...)
	}
	if c.Shutdown.GracePeriod < 5*time.Second {
		v.add("shutdown.grace_period", fmt.Sprintf("%s is less than 5s: too short to leave a cluster in", c.Shutdown.GracePeriod))
	}

	v.positive("watchdog.interval", c.Watchdog.Interval)
	v.positive("watchdog.blocked_after", c.Watchdog.BlockedAfter)
	v.positive("watchdog.leaving_after", c.Watchdog.LeavingAfter)
	v.positive("watchdog.evicted_after", c.Watchdog.EvictedAfter)
	v.oneOf("watchdog.action", c.Watchdog.Action, WatchdogReport, WatchdogShutdown)
	if c.Watchdog.Interval > 0 && c.Watchdog.Interval < time.Second {
		v.add("watchdog.interval", fmt.Sprintf("%s is less than a second: a sweep every second is the most Temporal schedules", c.Watchdog.Interval))
	}

	v.port("dev.port", c.Dev.Port)
	v.port("dev.ui_port", c.Dev.UIPort)
	if c.Dev.Port == c.Dev.UIPort {
		v.add("dev.ui_port", fmt.Sprintf("%d is also dev.port", c.Dev.UIPort))
	}
	if c.Dev.Nodes < 0 {
		v.add("dev.nodes", fmt.Sprintf("%d is negative", c.Dev.Nodes))
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	return errors.Join(v.problems...)
}

// SecretKeyBytes decodes a cluster.secret_key value: base64 of 16, 24 or 32 bytes
// (AES-128, AES-192 or AES-256).
func SecretKeyBytes(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64 (make one with: head -c 32 /dev/urandom | base64)")
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("decodes to %d bytes; it must be 16, 24 or 32", len(b))
}

type validator struct{ problems []error }

func (v *validator) add(key, msg string) {
	v.problems = append(v.problems, &FieldError{Key: key, Msg: msg})
}

func (v *validator) nonEmpty(key, val string) {
	if strings.TrimSpace(val) == "" {
		v.add(key, "must not be empty")
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, fmt.Sprintf("%s is not a positive duration", d))
	}
}

func (v *validator) port(key string, p int) {
	if p < 1 || p > 65535 {
		v.add(key, fmt.Sprintf("%d is not a port (1-65535)", p))
	}
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.add(key, fmt.Sprintf("%q is not one of %s", val, strings.Join(allowed, ", ")))
	}
}

func (v *validator) readable(key, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		v.add(key, fmt.Sprintf("cannot read %s", path))
	}
}

// hostPort checks a host:port; with portOptional a bare host is accepted too.
func (v *validator) hostPort(key, val string, portOptional bool) {
	if msg := hostPortProblem(val, portOptional); msg != "" {
		v.add(key, msg)
	}
}

func hostPortProblem(val string, portOptional bool) string {
	host, port, err := net.SplitHostPort(val)
	if err != nil {
		if portOptional && val != "" && !strings.Contains(val, ":") {
			host, port = val, ""
		} else {
			return fmt.Sprintf("%q is not host:port", val)
		}
	}
	if host == "" {
		return fmt.Sprintf("%q has no host", val)
	}
	if strings.ContainsAny(host, " /\\") {
		return fmt.Sprintf("%q has a bad host %q", val, host)
	}
	if port == "" {
		return ""
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q has a bad port %q", val, port)
	}
	return ""
}
