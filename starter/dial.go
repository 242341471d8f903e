package starter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
)

// Connection says how to reach Temporal. The starter takes its own options (a client
// links no configuration loader); the application maps its configuration to them.
type Connection struct {
	// Address is the frontend's host:port.
	Address string
	// Namespace holds Farewell's workflows.
	Namespace string
	// APIKey authenticates to Temporal Cloud or a server that takes API keys; setting it
	// turns TLS on.
	APIKey string
	TLS    TLS
}

// TLS for the connection. It is used when Enabled, when any file is set, or when an
// API key is set.
type TLS struct {
	// Enabled turns TLS on with the system's root CAs when no CA file is given.
	Enabled bool
	// CA is a PEM file of the CAs that sign the server's certificate.
	CA string
	// Cert and Key are the PEM client certificate and key for mTLS; both or neither.
	Cert, Key string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
}

// DialOptions add to what the Connection says.
type DialOptions struct {
	// Logger receives the SDK's logs; nil means slog.Default().
	Logger *slog.Logger
	// Interceptors (tracing) are given to the client; workers built on it inherit them.
	Interceptors []interceptor.ClientInterceptor
	// MetricsHandler, if set, receives the SDK's metrics.
	MetricsHandler client.MetricsHandler
}

// ClientOptions builds the SDK client options from a Connection: address, namespace, API
// key, TLS and mTLS.
func ClientOptions(c Connection, o DialOptions) (client.Options, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	opts := client.Options{
		HostPort:       c.Address,
		Namespace:      c.Namespace,
		Logger:         sdklog.NewStructuredLogger(o.Logger.With("component", "temporal-sdk")),
		Interceptors:   o.Interceptors,
		MetricsHandler: o.MetricsHandler,
	}
	if c.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	if c.TLS.Enabled || c.TLS.CA != "" || c.TLS.Cert != "" || c.TLS.ServerName != "" || c.APIKey != "" {
		tc := &tls.Config{ServerName: c.TLS.ServerName, MinVersion: tls.VersionTLS12}
		if c.TLS.CA != "" {
			pem, err := os.ReadFile(c.TLS.CA)
			if err != nil {
				return opts, fmt.Errorf("TLS CA (temporal.tls.ca): %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, fmt.Errorf("TLS CA (temporal.tls.ca): %s holds no PEM certificate", c.TLS.CA)
			}
			tc.RootCAs = pool
		}
		if c.TLS.Cert != "" {
			cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
			if err != nil {
				return opts, fmt.Errorf("client certificate (temporal.tls.cert/key): %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts.ConnectionOptions.TLS = tc
	}
	return opts, nil
}

// Dial connects to Temporal as c says, failing when it cannot be reached.
func Dial(ctx context.Context, c Connection, o DialOptions) (client.Client, error) {
	opts, err := ClientOptions(c, o)
	if err != nil {
		return nil, err
	}
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", c.Address, c.Namespace, err)
	}
	return cl, nil
}

// Unavailable reports whether err says Temporal could not be reached at all (refused,
// reset, no route): worth trying again in a moment, unlike a refusal of the request.
func Unavailable(err error) bool {
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) || status.Code(errors.Unwrap(err)) == codes.Unavailable {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "no route to host") || strings.Contains(msg, "failed reaching server")
}
