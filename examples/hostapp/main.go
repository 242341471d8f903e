// Command hostapp is a small service that embeds Farewell the way an integrator would:
// an HTTP server whose in-flight requests finish before it stops, and a background job,
// both registered with the node's agent; a step of its own (drain-connections) runs in
// the durable shutdown right after the node is marked leaving. SIGTERM runs that
// shutdown; the process exits 0 once the node is out. See README.md beside it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/buildinfo"
	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/plan"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfgFile := flag.String("config", "", "farewell.yaml to read (default: ./farewell.yaml, $XDG_CONFIG_HOME/farewell/, /etc/farewell/)")
	addr := flag.String("http", "127.0.0.1:8080", "address the HTTP server listens on")
	work := flag.Duration("work", 300*time.Millisecond, "how long each request works (/work)")
	without := flag.Bool("without-farewell", false, "run the same app without Farewell (SIGTERM stops the HTTP server and the job): the baseline of its cost")
	grace := flag.Bool("grace-period", false, "print the grace period (seconds) its process manager should allow, from its plan's budget, and exit")
	version := flag.Bool("version", false, "print the version and commit it was built from, and exit")
	flag.Parse()
	if *version {
		fmt.Println("hostapp", buildinfo.Read())
		return 0
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	if *without {
		return runWithout(*addr, *work, log)
	}
	// Configured like every Farewell process: the file, then FAREWELL_* and TEMPORAL_*.
	cfg, _, err := config.Load(config.Source{File: *cfgFile, Env: os.Environ()})
	if err != nil {
		log.Error("configuration", "error", err)
		return 2
	}
	app := &app{}
	steps := []agent.Step{{
		Name:  "drain-connections",
		After: plan.SetGracefullyLeft, // peers stop sending work first; then what is in flight finishes
		Run:   func(ctx context.Context) error { return app.stopHTTP(ctx) },
		// Requests are short; a retry resumes the wait.
		StartToClose: 15 * time.Second,
	}}
	if *grace {
		p, err := agent.LocalPlan(cfg, steps)
		if err != nil {
			log.Error("plan", "error", err)
			return 2
		}
		fmt.Println(int(p.GracePeriod().Seconds()))
		return 0
	}

	if err := app.start(*addr, *work, log); err != nil {
		log.Error("start", "error", err)
		return 1
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ag, err := agent.Start(context.Background(), agent.Options{Config: cfg, Logger: log, Steps: steps})
	if err != nil {
		log.Error("farewell agent", "error", err)
		if errors.Is(err, config.ErrInvalid) {
			return 2
		}
		return 1
	}
	defer ag.Close()
	ag.Member().Services().Register("http", app.stopHTTP, 15*time.Second)
	ag.Member().Services().Register("job", app.stopJob, 5*time.Second)
	fmt.Printf("ready http=%s node=%s cluster=%s instance=%s\n", app.addr, ag.Member().Name(), ag.Member().Addr(), ag.Member().Instance())

	for {
		select {
		case <-sigs:
			// The durable shutdown (or, without Temporal, the same plan run here). A
			// second signal exits at once.
			go func() {
				<-sigs
				log.Warn("second signal: exiting now")
				os.Exit(1)
			}()
			r := ag.Shutdown(context.Background(), "SIGTERM", "hostapp")
			log.Info("shutdown ended", "outcome", r.Outcome, "took", r.Total)
		case <-ag.Done():
			e := ag.Exit()
			log.Info("node is out", "outcome", e.Outcome, "why", e.Why)
			if e.Clean() {
				return 0
			}
			return 1
		}
	}
}

// app is the host's own work: an HTTP server and a background job.
type app struct {
	addr     string
	srv      *http.Server
	jobStop  chan struct{}
	jobOnce  sync.Once
	jobDone  chan struct{}
	inFlight atomic.Int64
	served   atomic.Int64
	jobTicks atomic.Int64
}

// runWithout is the same app without Farewell: SIGTERM stops the HTTP server (waiting
// for what is in flight) and the job. It is the baseline of what the agent costs.
func runWithout(addr string, work time.Duration, log *slog.Logger) int {
	a := &app{}
	if err := a.start(addr, work, log); err != nil {
		log.Error("start", "error", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	fmt.Printf("ready http=%s farewell=off\n", a.addr)
	<-sigs
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := errors.Join(a.stopHTTP(ctx), a.stopJob(ctx)); err != nil {
		log.Error("stop", "error", err)
		return 1
	}
	return 0
}

// start listens on addr and starts the job.
func (a *app) start(addr string, work time.Duration, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	a.addr, a.jobStop, a.jobDone = ln.Addr().String(), make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		d := work
		if v, err := time.ParseDuration(r.URL.Query().Get("d")); err == nil && v >= 0 && v <= time.Minute {
			d = v
		}
		a.inFlight.Add(1)
		defer a.inFlight.Add(-1)
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		n := a.served.Add(1)
		fmt.Fprintf(w, "done %d\n", n)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok in_flight=%d served=%d job_ticks=%d\n", a.inFlight.Load(), a.served.Load(), a.jobTicks.Load())
	})
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "error", err)
		}
	}()
	go a.job()
	return nil
}

// job is the background work: a tick every 100ms until stopped.
func (a *app) job() {
	defer close(a.jobDone)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.jobStop:
			return
		case <-t.C:
			a.jobTicks.Add(1)
		}
	}
}

// stopHTTP stops taking connections and waits for the requests in flight. It is safe
// to call again: a second call finds the server closed.
func (a *app) stopHTTP(ctx context.Context) error {
	return a.srv.Shutdown(ctx)
}

// stopJob stops the background job and waits for its last tick.
func (a *app) stopJob(ctx context.Context) error {
	a.jobOnce.Do(func() { close(a.jobStop) })
	select {
	case <-a.jobDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("job did not stop: %w", ctx.Err())
	}
}
