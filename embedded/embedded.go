// Package embedded is the contract of the in-process Temporal server and UI that
// `farewell dev` and `farewell demo` run on: its options, and what a started one offers.
// The server itself is package devserver, which links the whole Temporal server; this
// package does not, so that the CLI can be built with the server (farewell) or without
// it (farewell-node, what runs on a node).
package embedded

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/grpc"
)

// Defaults of the embedded stack.
const (
	DefaultIP        = "127.0.0.1"
	DefaultPort      = 7233
	DefaultUIPort    = 8233
	DefaultDBPath    = ".farewell/temporal.db"
	DefaultNamespace = "default"
)

// ErrPortInUse is returned when a port the stack must listen on is already taken.
var ErrPortInUse = errors.New("port already in use")

// Options configure an embedded server's start. The zero value serves namespace "default" on
// 127.0.0.1:7233 with the UI on 127.0.0.1:8233 and persists to .farewell/temporal.db.
type Options struct {
	// IP the gRPC frontend and the UI bind to.
	IP string
	// Port of the gRPC frontend; 0 means DefaultPort.
	Port int
	// UIPort of the Temporal UI; 0 means DefaultUIPort. Ignored when NoUI is set.
	UIPort int
	// NoUI skips the Temporal UI.
	NoUI bool
	// DBPath is the SQLite file; its folder is created when missing. "" means DefaultDBPath.
	DBPath string
	// InMemory keeps everything in memory and ignores DBPath.
	InMemory bool
	// Namespace served; "" means DefaultNamespace.
	Namespace string
	// SearchAttributes are registered in Namespace: at creation for a new database,
	// added when missing for an existing one.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// LogLevel filters the server's logs; nil means warn.
	LogLevel slog.Leveler
	// StockRates leaves the history queue readers at their stock poll-rate limits.
	// Only benchmarks want this.
	StockRates bool
	// DynamicConfig overrides server dynamic config keys.
	DynamicConfig map[string]any
	// TLS, when set, makes the frontend serve TLS (and, with ClientCA, require client
	// certificates); the server's own clients — its system worker, the UI, the check of
	// search attributes — then connect with the client certificate given.
	TLS *TLS
	// FrontendInterceptors run on every call to the frontend (authorization checks).
	FrontendInterceptors []grpc.UnaryServerInterceptor
}

// TLS of the embedded server. Files are PEM.
type TLS struct {
	// Cert and Key are the frontend's certificate and key.
	Cert, Key string
	// ClientCA, when set, is the CA client certificates must be signed by: mutual TLS.
	ClientCA string
	// ClientCert and ClientKey are what the server's own clients present (needed with
	// ClientCA); CA is what they check the frontend's certificate against, and
	// ServerName the name they expect in it.
	ClientCert, ClientKey, CA, ServerName string
}

// ClientConfig is the TLS the server's own clients use.
func (t *TLS) ClientConfig() (*tls.Config, error) {
	c := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("dev TLS CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("dev TLS CA %s holds no PEM certificate", t.CA)
		}
	}
	if t.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("dev TLS client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Server is a running embedded server.
type Server interface {
	// Address is the gRPC frontend's host:port.
	Address() string
	// Namespace served.
	Namespace() string
	// UIURL is the Temporal UI's address, "" without the UI.
	UIURL() string
	// DBPath is the SQLite file, "" in memory.
	DBPath() string
	// Stop stops the UI and the server; it is safe to call twice.
	Stop()
}

// Start starts an embedded server; a binary without one has none.
type Start func(ctx context.Context, o Options) (Server, error)
