package agent

import (
	"fmt"
	"net"
	"strconv"

	"github.com/farewell-project/farewell/cluster"
	"github.com/farewell-project/farewell/config"
)

// MemberOptions maps the cluster.* settings to a cluster member's own options (name,
// addresses, key, profile, heartbeat timings). Role, logger and hooks are the
// caller's to set.
func MemberOptions(c config.Cluster) (cluster.Options, error) {
	o := cluster.Options{
		Name:                c.Name,
		Profile:             cluster.Profile(c.Profile),
		HeartbeatInterval:   c.HeartbeatInterval,
		HeartbeatExpiration: c.HeartbeatExpiration,
	}
	var err error
	if o.BindAddr, o.BindPort, err = hostPort(c.Bind); err != nil {
		return o, fmt.Errorf("%w: cluster.bind: %w", config.ErrInvalid, err)
	}
	if c.Advertise != "" {
		if o.AdvertiseAddr, o.AdvertisePort, err = hostPort(c.Advertise); err != nil {
			return o, fmt.Errorf("%w: cluster.advertise: %w", config.ErrInvalid, err)
		}
	}
	if c.SecretKey != "" {
		if o.SecretKey, err = config.SecretKeyBytes(c.SecretKey); err != nil {
			return o, fmt.Errorf("%w: cluster.secret_key: %w", config.ErrInvalid, err)
		}
	}
	return o, nil
}

func hostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q has a bad port", s)
	}
	return host, port, nil
}
