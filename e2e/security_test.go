package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/farewell-project/farewell/activities"
	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/devserver"
	"github.com/farewell-project/farewell/plan"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/workflows"
)

// pki is a CA and the certificates it signed, as PEM files.
type pki struct {
	dir                string
	ca                 *x509.Certificate
	caKey              *ecdsa.PrivateKey
	caFile             string
	serverCert, server string // server certificate and key files
	clientCert, client string // client certificate and key files
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serverCert, p.server = p.issue(t, "server", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	p.clientCert, p.client = p.issue(t, "client", x509.ExtKeyUsageClientAuth)
	return p
}

func (p *pki) issue(t *testing.T, name string, usage ...x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: usage, KeyUsage: x509.KeyUsageDigitalSignature,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// A shutdown runs end to end over mutual TLS, and a client without a certificate the
// server's CA signed is refused.
func TestShutdownOverMutualTLS(t *testing.T) {
	ca := newPKI(t, "farewell")
	cfg := testConfig()
	cfg.Temporal.TLS = config.TLS{CA: ca.caFile, Cert: ca.clientCert, Key: ca.client, ServerName: "localhost"}
	s := newStackOn(t, cfg, 2, devserver.Options{TLS: &devserver.TLS{Cert: ca.serverCert, Key: ca.server, ClientCA: ca.caFile,
		ClientCert: ca.clientCert, ClientKey: ca.client, CA: ca.caFile, ServerName: "localhost"}}, nil)
	r := s.shutdown(t, "node-1")
	if r.Outcome != plan.Graceful {
		t.Fatalf("over mTLS: %s (%s)", r.Outcome, r.Error)
	}
	s.assertInvariant(t, "node-1", r)

	stranger := newPKI(t, "stranger")
	for name, tc := range map[string]config.TLS{
		"no client certificate":          {CA: ca.caFile, ServerName: "localhost"},
		"a certificate of another CA":    {CA: ca.caFile, Cert: stranger.clientCert, Key: stranger.client, ServerName: "localhost"},
		"no TLS at all (plaintext gRPC)": {},
	} {
		t.Run(name, func(t *testing.T) {
			c := s.cfg.Temporal // the server's address
			c.TLS = tc
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cl, err := starter.Dial(ctx, agent.Connection(c), starter.DialOptions{Logger: testLogger(t)})
			if err == nil {
				defer cl.Close()
				_, err = starter.New(cl, starter.Options{}).Shutdown(ctx, workflows.ShutdownRequest{Node: "node-2"})
			}
			if err == nil {
				t.Fatal("the server took a shutdown from a client it should have refused")
			}
			t.Logf("refused: %v", err)
		})
	}
	if st, err := s.starter.Status(context.Background(), "node-2"); err == nil {
		t.Errorf("a refused client started a shutdown: %+v", st)
	}
}

// The API key reaches the server: a server that takes Farewell's shutdowns only with
// the key refuses them without it.
func TestAPIKeyReachesTheServer(t *testing.T) {
	const key = "farewell-test-key"
	ca := newPKI(t, "farewell")
	requireKey := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if start, ok := req.(*workflowservice.StartWorkflowExecutionRequest); ok && start.GetWorkflowType().GetName() == workflows.WorkflowName {
			md, _ := metadata.FromIncomingContext(ctx)
			if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+key {
				return nil, serviceerror.NewPermissionDenied("no valid API key", "")
			}
		}
		return next(ctx, req)
	}
	cfg := testConfig()
	cfg.Temporal.APIKey = key
	cfg.Temporal.TLS = config.TLS{CA: ca.caFile, ServerName: "localhost"}
	s := newStackOn(t, cfg, 1, devserver.Options{TLS: &devserver.TLS{Cert: ca.serverCert, Key: ca.server, CA: ca.caFile, ServerName: "localhost"},
		FrontendInterceptors: []grpc.UnaryServerInterceptor{requireKey}}, nil)
	env := []string{"TEMPORAL_ADDRESS=" + s.srv.Address(), "TEMPORAL_TLS_SERVER_CA_CERT_PATH=" + ca.caFile, "TEMPORAL_TLS_SERVER_NAME=localhost"}
	code, _, stderr := runCLI(t, env, "shutdown", "node-1", "--wait")
	if code != 1 || !strings.Contains(stderr, "API key") {
		t.Errorf("without the key: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, append(env, "TEMPORAL_API_KEY="+key), "shutdown", "node-1", "--wait")
	if code != 0 || !strings.Contains(stdout, "GRACEFUL") {
		t.Errorf("with the key: exit %d\n%s%s", code, stdout, stderr)
	}
}

// Only a node's own shutdown runs its steps: another workflow that knows the task
// queue's name is refused, and the node is not touched.
func TestNodeStepsRefuseOtherWorkflows(t *testing.T) {
	s := newStack(t, testConfig(), 1)
	n := s.nodes["node-1"]
	intruder := func(ctx workflow.Context, in activities.StepInput) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: workflows.NodeTaskQueue(in.Node),
			StartToCloseTimeout: 10 * time.Second})
		return workflow.ExecuteActivity(ctx, "StopHeartbeat", in).Get(ctx, nil)
	}
	w := sdkworker.New(s.client, "intruders", sdkworker.Options{})
	w.RegisterWorkflowWithOptions(intruder, workflow.RegisterOptions{Name: "Intruder"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	for _, id := range []string{"intruder", workflows.WorkflowID("node-1")} {
		run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "intruders"}, "Intruder",
			activities.StepInput{Node: "node-1", Instance: n.member().Instance(), Step: plan.StopHeartbeat})
		if err != nil {
			t.Fatal(err)
		}
		err = run.Get(ctx, nil)
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("workflow %s ran a step of node-1: %v", id, err)
		}
	}
	if !n.member().HeartbeatRunning() {
		t.Error("the node's heartbeat was stopped by another workflow")
	}
}

// Off loopback a member will not start without a gossip key, unless told it may.
func TestExposedMemberNeedsKeys(t *testing.T) {
	args := []string{"node", "--name", "exposed", "--bind", "127.0.0.1:0", "--offline"}
	exposed := []string{"FAREWELL_CLUSTER_ADVERTISE=192.0.2.1:7946"} // a documentation address: nothing is sent there
	code, _, stderr := runCLI(t, exposed, args...)
	if code != 2 || !strings.Contains(stderr, "cluster.secret_key") {
		t.Errorf("off loopback without a key: exit %d\n%s", code, stderr)
	}
	keys := gossipAndEvictKeys(t)
	code, _, stderr = runCLI(t, append(exposed, keys[0]), args...)
	if code != 2 || !strings.Contains(stderr, "cluster.evict_verify_key") {
		t.Errorf("off loopback with a gossip key but no eviction key: exit %d\n%s", code, stderr)
	}
	for name, env := range map[string][]string{
		"with the keys": append(exposed, keys...),
		"insecure":      append(exposed, "FAREWELL_CLUSTER_INSECURE=true"),
	} {
		t.Run(name, func(t *testing.T) {
			run := startCLI(t, env, args...)
			eventually(t, time.Minute, "the node to serve", func() bool { return strings.Contains(run.Stdout.String(), "ready ") })
			if name == "insecure" && !strings.Contains(run.Stderr.String(), "insecure cluster membership") {
				t.Errorf("insecure without a warning:\n%s", run.Stderr.String())
			}
			run.cancel()
			run.wait(t, time.Minute)
		})
	}
	code, _, stderr = runCLI(t, nil, "node", "--name", "bad;name", "--offline")
	if code != 2 || !strings.Contains(stderr, "cluster.name") {
		t.Errorf("a bad node name: exit %d\n%s", code, stderr)
	}
}

// gossipAndEvictKeys makes keys with `farewell keys` and returns them as environment.
func gossipAndEvictKeys(t *testing.T) []string {
	t.Helper()
	value := func(out, key string) string {
		for _, l := range strings.Split(out, "\n") {
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
			if v, ok := strings.CutPrefix(l, key+": "); ok {
				return v
			}
		}
		return ""
	}
	_, gossip, _ := runCLI(t, nil, "keys", "gossip")
	_, evict, _ := runCLI(t, nil, "keys", "evict")
	lines := strings.Split(gossip, "\n")
	g := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[len(lines)-2]), "- "))
	v := value(evict, "evict_verify_key")
	if g == "" || v == "" {
		t.Fatalf("farewell keys printed:\n%s\n%s", gossip, evict)
	}
	return []string{"FAREWELL_CLUSTER_SECRET_KEYS=" + g, "FAREWELL_CLUSTER_EVICT_VERIFY_KEY=" + v}
}

// What people write is checked before anything is done.
func TestBadInputIsRefused(t *testing.T) {
	env := []string{"TEMPORAL_ADDRESS=127.0.0.1:1"} // never reached: the input is refused first
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"shutdown", "node;rm -rf /"}, "node:"},
		{[]string{"shutdown", strings.Repeat("n", 200)}, "node:"},
		{[]string{"shutdown", "node-1\x1b[31m"}, "node:"},
		{[]string{"shutdown", "node\n1"}, "node:"},
		{[]string{"drain", "node-1", "node\x01"}, "node:"},
		{[]string{"shutdown", "node-1", "--reason", "line\nbreak"}, "reason:"},
		{[]string{"shutdown", "node-1", "--reason", "\x1b[31mred"}, "reason:"},
		{[]string{"shutdown", "node-1", "--reason", strings.Repeat("r", 1025)}, "reason:"},
		{[]string{"shutdown", "node-1", "--set", "steps.deregister.max_attempts=zero"}, "max_attempts"},
		{[]string{"status", "../etc"}, "NODE"},
		{[]string{"signal", "node-1", "force-now", "--reason", "\x07"}, "--reason"},
	} {
		code, _, stderr := runCLI(t, env, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, want 2 naming %s:\n%s", tt.args, code, tt.want, stderr)
		}
	}
}
