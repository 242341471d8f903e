package netbed

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TemporalOptions say how to run Temporal on a bed as production runs it: PostgreSQL on
// a host of its own, each of the server's services (frontend, matching, worker, and
// several history hosts) in a process on a host of its own.
type TemporalOptions struct {
	// Net is the net the services and PostgreSQL are on.
	Net string
	// Server and SQLTool are the pinned temporal-server and temporal-sql-tool binaries.
	Server, SQLTool string
	// Config and DynamicConfig are the server's configuration template and its dynamic
	// configuration (deploy/temporal/); SchemaScript sets the schema up
	// (deploy/temporal/setup-schema.sh).
	Config, DynamicConfig, SchemaScript string
	// PostgresBin is the folder of PostgreSQL's programs (initdb, postgres, psql).
	PostgresBin string
	// Histories is how many history hosts run (2 unless set); Shards how many shards
	// they share (4 unless set).
	Histories, Shards int
	// LogDir receives each process's log.
	LogDir string
}

// Temporal is a Temporal cluster running on a bed.
type Temporal struct {
	opts TemporalOptions
	bed  *Bed

	mu     sync.Mutex
	pg     *Proc
	pgData string
	procs  map[string]*Proc // by service host name: frontend, matching, worker, history-1, …
	hosts  map[string]*Host
}

// Temporal's ports on each host (deploy/temporal/temporal.yaml).
const (
	FrontendPort = 7233
	postgresPort = 5432
	// PostgresUser and PostgresPassword are the role the services use.
	PostgresUser     = "temporal"
	PostgresPassword = "farewell-bed"
)

// Services lists the service hosts in the order they start.
func (t *Temporal) Services() []string {
	out := []string{"frontend", "matching", "worker"}
	for i := range t.opts.Histories {
		out = append(out, fmt.Sprintf("history-%d", i+1))
	}
	return out
}

// serviceOf names the server service a host runs.
func serviceOf(host string) string {
	s, _, _ := strings.Cut(host, "-")
	return s
}

// StartTemporal sets PostgreSQL up on a host "postgres", creates the schema, and starts
// each service on a host of its own, one after another (started at once on an empty
// database, two services race to write the cluster's metadata). It returns once every
// service listens; the frontend may still need a moment before it answers.
func StartTemporal(b *Bed, o TemporalOptions) (*Temporal, error) {
	if o.Histories == 0 {
		o.Histories = 2
	}
	if o.Shards == 0 {
		o.Shards = 4
	}
	t := &Temporal{opts: o, bed: b, procs: map[string]*Proc{}, hosts: map[string]*Host{}}
	pg, err := b.AddHost("postgres", o.Net)
	if err != nil {
		return nil, err
	}
	t.hosts["postgres"] = pg
	if err := t.setupPostgres(); err != nil {
		return nil, err
	}
	if err := t.StartPostgres(); err != nil {
		return nil, err
	}
	if err := t.schema(); err != nil {
		return nil, err
	}
	for _, name := range t.Services() {
		h, err := b.AddHost(name, o.Net)
		if err != nil {
			return nil, err
		}
		t.hosts[name] = h
		if err := t.Start(name); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Frontend is the frontend's host:port: all a client of the cluster needs.
func (t *Temporal) Frontend() string {
	return fmt.Sprintf("%s:%d", t.hosts["frontend"].Addr(t.opts.Net), FrontendPort)
}

// Host returns the host a service (or "postgres") runs on.
func (t *Temporal) Host(name string) *Host { return t.hosts[name] }

// Proc returns the process of a service (or "postgres") as it runs now.
func (t *Temporal) Proc(name string) *Proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	if name == "postgres" {
		return t.pg
	}
	return t.procs[name]
}

func (t *Temporal) setupPostgres() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("PostgreSQL runs as user postgres (apt-get install postgresql makes it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Outside the test's own temporary folders: those are private to root.
	dir, err := os.MkdirTemp("", "farewell-bed-postgres-")
	if err != nil {
		return err
	}
	t.pgData = filepath.Join(dir, "data")
	b := t.bed
	b.mu.Lock()
	b.cleanups = append(b.cleanups, func() { _ = os.RemoveAll(dir) })
	b.mu.Unlock()
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	if err := t.runOnce("postgres", "initdb", Spec{Path: filepath.Join(t.opts.PostgresBin, "initdb"), User: "postgres",
		Args: []string{"-D", t.pgData, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"},
		Env:  []string{"LANG=C", "PATH=/usr/bin:/bin"}, Dir: dir}); err != nil {
		return err
	}
	hba, err := os.OpenFile(filepath.Join(t.pgData, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer hba.Close()
	_, err = fmt.Fprintf(hba, "host all all %s scram-sha-256\n", b.nets[t.opts.Net].Subnet())
	return err
}

// socketDir is where PostgreSQL puts its Unix socket: the data folder, private to it.
func (t *Temporal) socketDir() string { return t.pgData }

// StartPostgres starts PostgreSQL (again, after a stop) and waits until it accepts
// connections; the first time it also makes the services' role.
func (t *Temporal) StartPostgres() error {
	t.mu.Lock()
	first := t.pg == nil
	t.mu.Unlock()
	h := t.hosts["postgres"]
	p, err := h.Start(Spec{Name: "postgres", Path: filepath.Join(t.opts.PostgresBin, "postgres"), User: "postgres",
		Args: []string{"-D", t.pgData, "-p", strconv.Itoa(postgresPort), "-k", t.socketDir(),
			"-c", "listen_addresses=" + h.Addr(t.opts.Net), "-c", "fsync=off", "-c", "max_connections=300"},
		Env: []string{"LANG=C"}, Dir: t.pgData, LogDir: t.opts.LogDir})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.pg = p
	t.mu.Unlock()
	if err := waitFor(time.Minute, "PostgreSQL to accept connections", p, func() bool {
		return t.runOnce("postgres", "pg_isready", Spec{Path: filepath.Join(t.opts.PostgresBin, "pg_isready"),
			Args: []string{"-q", "-h", t.socketDir(), "-p", strconv.Itoa(postgresPort)}, User: "postgres"}) == nil
	}); err != nil {
		return err
	}
	if !first {
		return nil
	}
	return t.runOnce("postgres", "psql", Spec{Path: filepath.Join(t.opts.PostgresBin, "psql"), User: "postgres",
		Args: []string{"-q", "-h", t.socketDir(), "-p", strconv.Itoa(postgresPort), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
			"-c", fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'", PostgresUser, PostgresPassword)}})
}

// StopPostgres stops PostgreSQL: fast (SIGINT: it rolls back open transactions and
// closes connections) or, with kill, SIGKILL (as a crash or a lost host).
func (t *Temporal) StopPostgres(kill bool) error {
	p := t.Proc("postgres")
	if kill {
		p.Kill()
	} else if err := p.Signal(syscall.SIGINT); err != nil {
		return err
	}
	if p.WaitFor(30*time.Second) == -1 && !p.Exited() {
		return errors.New("PostgreSQL did not stop within 30s")
	}
	if kill {
		// Its backends outlive the postmaster for a moment; a new postmaster refuses to
		// start while they hold the shared memory.
		killIn(t.hosts["postgres"].NS)
	}
	return nil
}

func (t *Temporal) schema() error {
	h := t.hosts["postgres"]
	return t.runOnce("postgres", "setup-schema", Spec{Path: "/bin/bash", Args: []string{t.opts.SchemaScript},
		Env: []string{"PATH=/usr/bin:/bin", "SQL_HOST=" + h.Addr(t.opts.Net), "SQL_PORT=" + strconv.Itoa(postgresPort),
			"SQL_USER=" + PostgresUser, "SQL_PASSWORD=" + PostgresPassword, "TEMPORAL_SQL_TOOL=" + t.opts.SQLTool},
		LogDir: t.opts.LogDir})
}

// Start starts the service that runs on host name (again, after Kill or Stop) and
// waits until it listens.
func (t *Temporal) Start(name string) error {
	h := t.hosts[name]
	pg := t.hosts["postgres"]
	p, err := h.Start(Spec{Name: name, Path: t.opts.Server,
		Args: []string{"--config-file", t.opts.Config, "--allow-no-auth", "start", "--service", serviceOf(name)},
		Env: []string{
			"BIND_ON_IP=" + h.Addr(t.opts.Net),
			"POSTGRES_SEEDS=" + pg.Addr(t.opts.Net), "DB_PORT=" + strconv.Itoa(postgresPort),
			"POSTGRES_USER=" + PostgresUser, "POSTGRES_PWD=" + PostgresPassword,
			"NUM_HISTORY_SHARDS=" + strconv.Itoa(t.opts.Shards),
			"PUBLIC_FRONTEND_ADDRESS=" + t.Frontend(),
			"DYNAMIC_CONFIG_FILE_PATH=" + t.opts.DynamicConfig,
			"LOG_LEVEL=warn",
		},
		Dir: filepath.Dir(t.opts.Config), LogDir: t.opts.LogDir})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.procs[name] = p
	t.mu.Unlock()
	ports := map[string]int{"frontend": FrontendPort, "matching": 7235, "history": 7234, "worker": 7239}
	return waitFor(2*time.Minute, name+" to listen", p, func() bool { return Listening(p.PID(), ports[serviceOf(name)]) })
}

// Kill SIGKILLs the service on host name.
func (t *Temporal) Kill(name string) {
	if p := t.Proc(name); p != nil {
		p.Kill()
		p.WaitFor(10 * time.Second)
	}
}

// Stop stops the service on host name gracefully (SIGTERM), bounded.
func (t *Temporal) Stop(name string) error {
	p := t.Proc(name)
	if p == nil {
		return fmt.Errorf("no service %s", name)
	}
	_ = p.Signal(syscall.SIGTERM)
	if p.WaitFor(30*time.Second) == -1 && !p.Exited() {
		p.Kill()
		p.WaitFor(10 * time.Second)
	}
	return nil
}

// runOnce runs spec on host and waits for it to succeed.
func (t *Temporal) runOnce(host, name string, spec Spec) error {
	spec.Name = name
	p, err := t.hosts[host].Start(spec)
	if err != nil {
		return err
	}
	if code := p.WaitFor(2 * time.Minute); code != 0 {
		return fmt.Errorf("%s on %s: exit %d: %s", name, host, code, tail(p.Log(), 2000))
	}
	return nil
}

// waitFor polls cond until it holds, p ends, or limit passes.
func waitFor(limit time.Duration, what string, p *Proc, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if p.Exited() {
			return fmt.Errorf("%s: %s ended first: %s", what, p.Spec.Name, tail(p.Log(), 3000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// Listening reports whether the process pid's network namespace has a TCP socket
// listening on port (from /proc/PID/net/tcp: no process needs to run in the namespace).
func Listening(pid, port int) bool {
	for _, file := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		want := fmt.Sprintf(":%04X", port)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st …; st 0A is LISTEN.
			if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// HistoryHosts lists the history service hosts.
func (t *Temporal) HistoryHosts() []string {
	return slices.DeleteFunc(t.Services(), func(s string) bool { return serviceOf(s) != "history" })
}
