package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/farewell-project/farewell/embedded"
)

// Private settings of the embedded stack.
const (
	clusterName = "active"
	// devClusterID is fixed so that a database is always reopened as the same cluster.
	devClusterID = "6a1d3b3e-64c1-4d1e-9c0e-f4e3a7c1d2b5"
	// tunedPollRPS replaces the stock 20/s limit of the history queue readers: with one
	// shard that limit adds ~47 ms to every task dispatch.
	tunedPollRPS = 1000
)

// Defaults of the embedded stack.
const (
	DefaultIP        = embedded.DefaultIP
	DefaultPort      = embedded.DefaultPort
	DefaultUIPort    = embedded.DefaultUIPort
	DefaultDBPath    = embedded.DefaultDBPath
	DefaultNamespace = embedded.DefaultNamespace
)

// ErrPortInUse is returned when a port the stack must listen on is already taken.
var ErrPortInUse = embedded.ErrPortInUse

// Options configure Start (see package embedded).
type Options = embedded.Options

// TLS of the embedded server (see package embedded).
type TLS = embedded.TLS

// Server is a running embedded Temporal server, with its UI when asked for.
type Server struct {
	opts     Options
	logLevel *slog.LevelVar
	server   temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}
	stopOnce sync.Once
}

// Embedded is Start as the CLI takes it (cli.Options.Server).
func Embedded(ctx context.Context, opts Options) (embedded.Server, error) {
	s, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

var _ embedded.Server = (*Server)(nil)

// Start runs a Temporal server (frontend, history, matching, worker) in this process and,
// unless NoUI, the Temporal UI. It returns once the frontend answers and the search
// attributes are registered. A port that is taken is an error wrapping ErrPortInUse.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts = withDefaults(opts)
	if err := checkFree(opts.IP, opts.Port, "gRPC"); err != nil {
		return nil, err
	}
	if !opts.NoUI {
		if err := checkFree(opts.IP, opts.UIPort, "UI"); err != nil {
			return nil, err
		}
	}

	sqlConf, err := prepareDB(opts)
	if err != nil {
		return nil, err
	}
	conf, err := serverConfig(opts, sqlConf)
	if err != nil {
		return nil, err
	}
	level := new(slog.LevelVar)
	level.Set(opts.LogLevel.Level())
	restoreEnv := hideTracingEnv()
	serverOpts := []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(staticHosts(conf)),
		temporal.WithLogger(serverLogger{log: opts.Logger, level: level}),
		temporal.WithDynamicConfigClient(dynamicConfig(opts)),
	}
	if len(opts.FrontendInterceptors) > 0 {
		serverOpts = append(serverOpts, temporal.WithChainedFrontendGrpcInterceptors(opts.FrontendInterceptors...))
	}
	srv, err := temporal.NewServer(serverOpts...)
	restoreEnv()
	if err != nil {
		return nil, fmt.Errorf("build temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server on %s: %w", net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port)), err)
	}
	s := &Server{opts: opts, server: srv, logLevel: level}

	if err := s.ensureSearchAttributes(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if !opts.NoUI {
		if err := s.startUI(ctx); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Address is the host:port of the gRPC frontend.
func (s *Server) Address() string {
	return net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.Port))
}

// Namespace is the namespace the server was prepared with.
func (s *Server) Namespace() string { return s.opts.Namespace }

// UIURL is the Temporal UI's base URL, or "" when the UI is off.
func (s *Server) UIURL() string {
	if s.opts.NoUI {
		return ""
	}
	return "http://" + net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort))
}

// DBPath is the SQLite file in use, or "" in memory.
func (s *Server) DBPath() string {
	if s.opts.InMemory {
		return ""
	}
	return s.opts.DBPath
}

// Stop stops the UI and the server and waits until their ports are released.
// It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		// Pollers and connections complain while the services go down one by one.
		if s.logLevel.Level() < slog.LevelError {
			s.logLevel.Set(slog.LevelError)
		}
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		s.server.Stop()
	})
}

var envMu sync.Mutex

// hideTracingEnv hides OTEL_TRACES_EXPORTER while the server is built: the server
// reads it too, to trace its own internals, and refuses values other than otlp (such
// as console) that Farewell's own telemetry takes. The embedded server's own tracing
// stays off. It returns the function that restores the variable.
func hideTracingEnv() func() {
	envMu.Lock()
	v, ok := os.LookupEnv("OTEL_TRACES_EXPORTER")
	if ok {
		os.Unsetenv("OTEL_TRACES_EXPORTER")
	}
	return func() {
		if ok {
			os.Setenv("OTEL_TRACES_EXPORTER", v)
		}
		envMu.Unlock()
	}
}

func withDefaults(o Options) Options {
	if o.IP == "" {
		o.IP = DefaultIP
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.UIPort == 0 {
		o.UIPort = DefaultUIPort
	}
	if o.DBPath == "" {
		o.DBPath = DefaultDBPath
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogLevel == nil {
		o.LogLevel = slog.LevelWarn
	}
	return o
}

func checkFree(ip string, port int, what string) error {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s port %s: %w", what, addr, ErrPortInUse)
	}
	if err != nil {
		return fmt.Errorf("%s port %s: %w", what, addr, err)
	}
	return l.Close()
}

// internalPort finds a free port for one of the server's internal services below the
// kernel's ephemeral range: the port is released before the server binds it, and a
// port from the ephemeral range could meanwhile be handed to any socket bound to port
// 0 in this process (a cluster member, say) — the server cannot survive that.
func internalPort(ip string) (int, error) {
	low := ephemeralLow()
	for range 100 {
		port := internalPortsFrom + mrand.IntN(low-internalPortsFrom)
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s between %d and %d", ip, internalPortsFrom, low)
}

// internalPortsFrom is the lowest port internalPort picks.
const internalPortsFrom = 20000

// ephemeralLow is the first port of the kernel's ephemeral range (32768 when it cannot
// be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= internalPortsFrom+1000 {
		return 32768
	}
	return n
}

func prepareDB(o Options) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if o.InMemory {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		conf.DatabaseName = "farewell-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	} else {
		// WAL with synchronous=normal survives a crash of this process and costs far
		// fewer fsyncs than the default rollback journal.
		conf.ConnectAttributes = map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal", "busy_timeout": "5000"}
		conf.DatabaseName = o.DBPath
		if err := privateFile(o.DBPath); err != nil {
			return nil, err
		}
		fi, err := os.Stat(o.DBPath)
		switch {
		case errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0):
			if err := sqliteschema.SetupSchema(conf); err != nil {
				return nil, fmt.Errorf("create schema in %s: %w", o.DBPath, err)
			}
		case err != nil:
			return nil, fmt.Errorf("database %s: %w", o.DBPath, err)
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", o.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return nil, fmt.Errorf("create namespace %s in %s: %w", o.Namespace, conf.DatabaseName, err)
	}
	return conf, nil
}

// privateFile makes the database file (and its folder, when it creates it or it is
// Farewell's own data folder) readable by this user only: it holds every shutdown's
// history. SQLite gives its journal files the database's permissions.
func privateFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create folder for database %s: %w", path, err)
	}
	if dir == filepath.Dir(DefaultDBPath) {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data folder %s: %w", dir, err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("database %s: %w", p, err)
		}
	}
	return nil
}

func serverConfig(o Options, sqlConf *config.SQL) (*config.Config, error) {
	httpPort, err := internalPort(o.IP)
	if err != nil {
		return nil, err
	}
	frontend := net.JoinHostPort(o.IP, strconv.Itoa(o.Port))

	var c config.Config
	c.Global.Membership.MaxJoinDuration = 30 * time.Second
	c.Global.Membership.BroadcastAddress = o.IP
	c.Persistence.DefaultStore = "sqlite"
	c.Persistence.VisibilityStore = "sqlite"
	c.Persistence.NumHistoryShards = 1
	c.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlConf}}
	c.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort(o.IP, strconv.Itoa(httpPort)),
				ClusterID:              devClusterID,
			},
		},
	}
	c.DCRedirectionPolicy.Policy = "noop"
	c.Services = map[string]config.Service{}
	for _, name := range temporal.DefaultServices {
		var svc config.Service
		svc.RPC.BindOnIP = o.IP
		if name == string(primitives.FrontendService) {
			svc.RPC.GRPCPort = o.Port
			svc.RPC.HTTPPort = httpPort
		} else if svc.RPC.GRPCPort, err = internalPort(o.IP); err != nil {
			return nil, err
		}
		c.Services[name] = svc
	}
	if t := o.TLS; t != nil {
		c.Global.TLS.Frontend.Server = config.ServerTLS{CertFile: t.Cert, KeyFile: t.Key}
		if t.ClientCA != "" {
			c.Global.TLS.Frontend.Server.ClientCAFiles = []string{t.ClientCA}
			c.Global.TLS.Frontend.Server.RequireClientAuth = true
		}
		client := config.ClientTLS{ServerName: t.ServerName, ForceTLS: true}
		if t.CA != "" {
			client.RootCAFiles = []string{t.CA}
		}
		c.Global.TLS.SystemWorker = config.WorkerTLS{CertFile: t.ClientCert, KeyFile: t.ClientKey, Client: client}
	}
	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	c.PublicClient.HostPort = frontend
	return &c, nil
}

func staticHosts(c *config.Config) map[primitives.ServiceName]static.Hosts {
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range c.Services {
		addr := net.JoinHostPort(svc.RPC.BindOnIP, strconv.Itoa(svc.RPC.GRPCPort))
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(addr)
	}
	return hosts
}

func dynamicConfig(o Options) dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      true,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}
	if !o.StockRates {
		dc[dynamicconfig.TransferProcessorMaxPollRPS.Key()] = tunedPollRPS
		dc[dynamicconfig.TimerProcessorMaxPollRPS.Key()] = tunedPollRPS
		dc[dynamicconfig.VisibilityProcessorMaxPollRPS.Key()] = tunedPollRPS
		// One server, one partition per task queue: with the default four a task and
		// the poller that would take it can sit on different partitions until the
		// partitions forward to each other.
		dc[dynamicconfig.MatchingNumTaskqueueReadPartitions.Key()] = 1
		dc[dynamicconfig.MatchingNumTaskqueueWritePartitions.Key()] = 1
		// A history long poll that misses a workflow's close (seen here once in a few
		// dozen runs) waits out this interval before the client polls again: 2 s, not 20.
		dc[dynamicconfig.HistoryLongPollExpirationInterval.Key()] = 2 * time.Second
	}
	for k, v := range o.DynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}

// ensureSearchAttributes adds the configured search attributes that the namespace lacks.
// A new database already has them; this covers databases made by an older version.
func (s *Server) ensureSearchAttributes(ctx context.Context) error {
	if len(s.opts.SearchAttributes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	copts := client.Options{
		HostPort:  s.Address(),
		Namespace: s.opts.Namespace,
		Logger:    sdklog.NewStructuredLogger(s.opts.Logger.With("component", "devserver")),
	}
	if s.opts.TLS != nil {
		tc, err := s.opts.TLS.ClientConfig()
		if err != nil {
			return err
		}
		copts.ConnectionOptions.TLS = tc
	}
	c, err := client.DialContext(ctx, copts)
	if err != nil {
		return fmt.Errorf("connect to embedded server at %s: %w", s.Address(), err)
	}
	defer c.Close()
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.opts.Namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range s.opts.SearchAttributes {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        s.opts.Namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

func (s *Server) startUI(ctx context.Context) error {
	// The UI server calls Fatal (exits the process) when it cannot listen; its port
	// was checked above, and it is checked again here as late as possible.
	if err := checkFree(s.opts.IP, s.opts.UIPort, "UI"); err != nil {
		return err
	}
	uc := &uiconfig.Config{
		Host:                s.opts.IP,
		Port:                s.opts.UIPort,
		TemporalGRPCAddress: s.Address(),
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}
	if t := s.opts.TLS; t != nil {
		uc.TLS = uiconfig.TLS{CaFile: t.CA, CertFile: t.ClientCert, KeyFile: t.ClientKey, ServerName: t.ServerName, EnableHostVerification: true}
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(uc))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		if err := s.ui.Start(); err != nil {
			s.opts.Logger.Error("temporal UI stopped", "error", err)
		}
	}()
	return waitHTTP(ctx, s.UIURL()+"/", 15*time.Second)
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	var lastErr error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal UI at %s did not answer within %s: %w", url, limit, lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
