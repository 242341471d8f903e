package starter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClientOptionsTurnTLSOnForAnyOfItsSettings(t *testing.T) {
	caFile, certFile, keyFile := writeCert(t)
	for _, tc := range []struct {
		name string
		c    Connection
		tls  bool
	}{
		{"plain", Connection{}, false},
		{"enabled", Connection{TLS: TLS{Enabled: true}}, true},
		{"a CA", Connection{TLS: TLS{CA: caFile}}, true},
		{"a client certificate", Connection{TLS: TLS{Cert: certFile, Key: keyFile}}, true},
		{"a server name", Connection{TLS: TLS{ServerName: "temporal.internal"}}, true},
		{"an API key", Connection{APIKey: "secret"}, true},
	} {
		tc.c.Address, tc.c.Namespace = "127.0.0.1:7233", "ops"
		opts, err := ClientOptions(tc.c, DialOptions{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if opts.HostPort != "127.0.0.1:7233" || opts.Namespace != "ops" || opts.Logger == nil {
			t.Errorf("%s: %+v", tc.name, opts)
		}
		got := opts.ConnectionOptions.TLS
		if (got != nil) != tc.tls {
			t.Errorf("%s: TLS %v, want %v", tc.name, got != nil, tc.tls)
			continue
		}
		if (opts.Credentials != nil) != (tc.c.APIKey != "") {
			t.Errorf("%s: credentials %v", tc.name, opts.Credentials)
		}
		if got == nil {
			continue
		}
		if got.MinVersion != tls.VersionTLS12 || got.ServerName != tc.c.TLS.ServerName {
			t.Errorf("%s: TLS %+v", tc.name, got)
		}
		if (got.RootCAs != nil) != (tc.c.TLS.CA != "") || len(got.Certificates) != map[bool]int{true: 1}[tc.c.TLS.Cert != ""] {
			t.Errorf("%s: roots %v, %d certificates", tc.name, got.RootCAs != nil, len(got.Certificates))
		}
	}
}

func TestClientOptionsNameTheBadFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tls  TLS
		want string
	}{
		{TLS{CA: filepath.Join(dir, "missing.pem")}, "TLS CA (temporal.tls.ca)"},
		{TLS{CA: notPEM}, "holds no PEM certificate"},
		{TLS{Cert: filepath.Join(dir, "missing.pem"), Key: filepath.Join(dir, "missing.key")}, "client certificate (temporal.tls.cert/key)"},
	} {
		if _, err := ClientOptions(Connection{TLS: tc.tls}, DialOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.tls, err, tc.want)
		}
	}
}

// writeCert writes a self-signed certificate and its key, and returns the CA file (the
// certificate itself), the certificate and the key.
func writeCert(t *testing.T) (string, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "farewell-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, cert, keyFile
}
