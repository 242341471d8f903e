package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/farewell-project/farewell/plan"
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
	for i, k := range c.Cluster.SecretKeys {
		if _, err := SecretKeyBytes(k); err != nil {
			v.add(fmt.Sprintf("cluster.secret_keys[%d]", i), err.Error())
		}
	}
	if c.Cluster.SecretKey != "" && len(c.Cluster.SecretKeys) > 0 {
		v.add("cluster.secret_keys", "set cluster.secret_key or cluster.secret_keys, not both")
	}
	if c.Cluster.EvictSigningKey != "" {
		if _, err := EvictSigningKey(c.Cluster.EvictSigningKey); err != nil {
			v.add("cluster.evict_signing_key", err.Error())
		}
	}
	if c.Cluster.EvictVerifyKey != "" {
		if _, err := EvictVerifyKey(c.Cluster.EvictVerifyKey); err != nil {
			v.add("cluster.evict_verify_key", err.Error())
		}
	}
	if err := plan.ValidateNodeName(c.Cluster.Name); err != nil && strings.TrimSpace(c.Cluster.Name) != "" {
		v.add("cluster.name", err.Error())
	}
	if err := plan.ValidateTags(c.Cluster.Tags); err != nil {
		v.add("cluster.tags", err.Error())
	}
	if err := c.Budget.Limits().Validate(); err != nil {
		var fe *plan.FieldError
		if errors.As(err, &fe) {
			v.add("budget."+fe.Field, fe.Msg)
		} else {
			v.add("budget", err.Error())
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
	if (c.Dev.TLS.Cert == "") != (c.Dev.TLS.Key == "") {
		v.add("dev.tls.cert", "cert and key go together: set both dev.tls.cert and dev.tls.key, or neither")
	}
	v.readable("dev.tls.cert", c.Dev.TLS.Cert)
	v.readable("dev.tls.key", c.Dev.TLS.Key)
	v.readable("dev.tls.client_ca", c.Dev.TLS.ClientCA)
	if c.Dev.TLS.ClientCA != "" && c.Dev.TLS.Cert == "" {
		v.add("dev.tls.client_ca", "requiring client certificates needs TLS: set dev.tls.cert and dev.tls.key")
	}
	if c.Dev.TLS.ClientCA != "" && c.Temporal.TLS.Cert == "" {
		v.add("temporal.tls.cert", "the embedded server requires client certificates (dev.tls.client_ca): its own workers need one, temporal.tls.cert and temporal.tls.key")
	}
	if c.Dev.Nodes < 0 {
		v.add("dev.nodes", fmt.Sprintf("%d is negative", c.Dev.Nodes))
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	return errors.Join(v.problems...)
}

// GossipKeys decodes the gossip keys of cluster.secret_key or cluster.secret_keys (the
// first encrypts, all decrypt); none means gossip is not encrypted.
func (c Cluster) GossipKeys() ([][]byte, error) {
	raw := c.SecretKeys
	if c.SecretKey != "" {
		raw = append([]string{c.SecretKey}, raw...)
	}
	var keys [][]byte
	for _, k := range raw {
		b, err := SecretKeyBytes(k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// EvictSigningKey decodes a cluster.evict_signing_key: base64 of an ed25519 private key
// (64 bytes) or its seed (32 bytes).
func EvictSigningKey(s string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64 (make a key pair with: farewell keys evict)")
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	}
	return nil, fmt.Errorf("decodes to %d bytes; an ed25519 private key is %d (or its seed, %d)", len(b), ed25519.PrivateKeySize, ed25519.SeedSize)
}

// EvictVerifyKey decodes a cluster.evict_verify_key: base64 of an ed25519 public key.
func EvictVerifyKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64 (make a key pair with: farewell keys evict)")
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("decodes to %d bytes; an ed25519 public key is %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
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
