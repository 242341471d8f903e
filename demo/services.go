// Package demo holds the services that demo and test nodes run, so that a shutdown has
// something real to stop and a test can tell whether a node still serves.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/farewell-project/farewell/cluster"
)

// StopTimeout bounds the stop of each demo service.
const StopTimeout = 2 * time.Second

// Services are a node's demo services, once registered.
type Services struct {
	// HTTPAddr is where the HTTP service answers while it runs.
	HTTPAddr string
}

// Register starts the demo services of member and registers them for the shutdown:
// "http" (answers GET / with 200 and the node's name while running, and GET /members
// with the member's view of the cluster, on httpAddr, "127.0.0.1:0" for any free port)
// and "ticker" (a background loop). They are
// stopped in reverse order: ticker first, then http.
func Register(member *cluster.Member, httpAddr string, log *slog.Logger) (Services, error) {
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return Services{}, fmt.Errorf("demo http service on %s: %w", httpAddr, err)
	}
	name := member.Name()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s serving\n", name)
	})
	mux.Handle("/members", member.ViewHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo http service failed", "error", err)
		}
	}()
	member.Services().Register("http", func(ctx context.Context) error {
		return srv.Shutdown(ctx)
	}, StopTimeout)

	stop := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				log.Debug("tick")
			}
		}
	}()
	member.Services().Register("ticker", func(ctx context.Context) error {
		once.Do(func() { close(stop) })
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, StopTimeout)
	return Services{HTTPAddr: l.Addr().String()}, nil
}

// Serving reports whether the demo HTTP service at addr answers.
func Serving(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
