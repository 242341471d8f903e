package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ServiceStatus is how stopping one service ended.
type ServiceStatus string

const (
	ServiceStopped  ServiceStatus = "ok"
	ServiceFailed   ServiceStatus = "failed"
	ServiceTimedOut ServiceStatus = "timed_out"
)

// ServiceResult reports the stop of one service.
type ServiceResult struct {
	Name     string        `json:"name"`
	Status   ServiceStatus `json:"status"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
	// AlreadyStopped is set when an earlier call stopped it; nothing was run again.
	AlreadyStopped bool `json:"already_stopped,omitempty"`
}

// StopFunc stops a service. It should return when ctx ends; if it does not, it is left
// running in the background and the stop is reported timed out.
type StopFunc func(ctx context.Context) error

type service struct {
	name    string
	stop    StopFunc
	timeout time.Duration

	stopped  bool
	inflight chan struct{} // closed when a running stop returns
	lastErr  error
}

// Services is a registry of named services that a node stops on its way out, in reverse
// order of registration, each under its own timeout. Stops that succeeded are remembered,
// so that a second StopAll (a retry) resumes with what is left. Safe for concurrent use.
type Services struct {
	mu   sync.Mutex
	list []*service
	// stopAll serializes StopAll calls.
	stopAll sync.Mutex
}

// Register adds a service. timeout bounds its stop.
func (s *Services) Register(name string, stop StopFunc, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, &service{name: name, stop: stop, timeout: timeout})
}

// Names lists the registered services in registration order.
func (s *Services) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.list))
	for i, svc := range s.list {
		out[i] = svc.name
	}
	return out
}

// Running lists the services not yet stopped, in registration order.
func (s *Services) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, svc := range s.list {
		if !svc.stopped {
			out = append(out, svc.name)
		}
	}
	return out
}

// StopAll stops every service in reverse registration order. A failure or timeout never
// stops the rest. progress, if set, is called after each service. When ctx ends, the
// services not yet reached are reported failed with ctx's error.
func (s *Services) StopAll(ctx context.Context, progress func(ServiceResult)) []ServiceResult {
	s.stopAll.Lock()
	defer s.stopAll.Unlock()
	s.mu.Lock()
	list := make([]*service, len(s.list))
	copy(list, s.list)
	s.mu.Unlock()

	results := make([]ServiceResult, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		r := s.stopOne(ctx, list[i])
		results = append(results, r)
		if progress != nil {
			progress(r)
		}
	}
	return results
}

// Failed reports whether any result is not a successful stop.
func Failed(results []ServiceResult) error {
	var errs []error
	for _, r := range results {
		if r.Status != ServiceStopped {
			errs = append(errs, fmt.Errorf("%s %s: %s", r.Name, r.Status, r.Error))
		}
	}
	return errors.Join(errs...)
}

func (s *Services) stopOne(ctx context.Context, svc *service) ServiceResult {
	start := time.Now()
	s.mu.Lock()
	if svc.stopped {
		s.mu.Unlock()
		return ServiceResult{Name: svc.name, Status: ServiceStopped, AlreadyStopped: true}
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return ServiceResult{Name: svc.name, Status: ServiceFailed, Error: "not stopped: " + err.Error()}
	}
	done := svc.inflight
	if done == nil {
		// No stop running from an earlier, timed-out call: start one.
		done = make(chan struct{})
		svc.inflight = done
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), svc.timeout)
		go func() {
			defer cancel()
			err := svc.stop(stopCtx)
			s.mu.Lock()
			svc.inflight = nil
			svc.lastErr = err
			if err == nil {
				svc.stopped = true
			}
			s.mu.Unlock()
			close(done)
		}()
	}
	s.mu.Unlock()

	timer := time.NewTimer(svc.timeout)
	defer timer.Stop()
	select {
	case <-done:
		s.mu.Lock()
		err := svc.lastErr
		s.mu.Unlock()
		r := ServiceResult{Name: svc.name, Status: ServiceStopped, Duration: time.Since(start)}
		if err != nil {
			r.Status, r.Error = ServiceFailed, err.Error()
			if errors.Is(err, context.DeadlineExceeded) {
				r.Status = ServiceTimedOut
			}
		}
		return r
	case <-timer.C:
		return ServiceResult{Name: svc.name, Status: ServiceTimedOut, Duration: time.Since(start),
			Error: fmt.Sprintf("did not stop within %s", svc.timeout)}
	case <-ctx.Done():
		return ServiceResult{Name: svc.name, Status: ServiceFailed, Duration: time.Since(start),
			Error: "not stopped: " + ctx.Err().Error()}
	}
}
