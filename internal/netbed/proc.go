package netbed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec says how to start a process on a host.
type Spec struct {
	// Name tells the process apart in logs and in the bed's log folder.
	Name string
	// Path and Args are the program and its arguments.
	Path string
	Args []string
	// Env is the whole environment (nothing is inherited).
	Env []string
	// Dir is the working directory.
	Dir string
	// User, if set, runs the process as that user (its primary group too).
	User string
	// LogDir, if set, receives NAME.log: the process's stdout and stderr as they come.
	LogDir string
}

// Proc is a process running on a host of the bed.
type Proc struct {
	Host *Host
	Spec Spec

	cmd     *exec.Cmd
	stdout  lines
	stderr  lockedWriter // without a log file
	errBuf  bytes.Buffer
	log     *os.File
	logPath string
	done    chan struct{}
	err     error
}

// Start runs spec on h, inside its namespace (nsenter --net: it shares the machine's
// process table and files, and sees only the host's network). The bed kills it on Close.
func (h *Host) Start(spec Spec) (*Proc, error) {
	args := []string{"--net=" + filepath.Join("/run/netns", h.NS)}
	if spec.User != "" {
		u, err := user.Lookup(spec.User)
		if err != nil {
			return nil, fmt.Errorf("start %s on %s: %w", spec.Name, h.Name, err)
		}
		args = append(args, "--setuid", u.Uid, "--setgid", u.Gid)
	}
	args = append(append(args, "--", spec.Path), spec.Args...)
	p := &Proc{Host: h, Spec: spec, done: make(chan struct{})}
	p.cmd = exec.Command("nsenter", args...)
	p.cmd.Env = spec.Env
	p.cmd.Dir = spec.Dir
	// A process group of its own: Ctrl-C on the test does not reach it behind the bed's
	// back (Close, or the next run's Sweep, ends it), and Kill takes its children
	// (PostgreSQL's backends) too.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var sinks []io.Writer
	if spec.LogDir != "" {
		f, err := os.OpenFile(filepath.Join(spec.LogDir, spec.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		p.log, p.logPath = f, f.Name()
		fmt.Fprintf(f, "=== %s start on %s: %s %s\n", time.Now().Format(time.RFC3339Nano), h.Name, spec.Path, strings.Join(spec.Args, " "))
		sinks = append(sinks, &lockedWriter{w: f})
	} else {
		p.stderr.w = &p.errBuf
		sinks = append(sinks, &p.stderr)
	}
	p.cmd.Stderr = io.MultiWriter(sinks...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", spec.Name, h.Name, err)
	}
	h.bed.mu.Lock()
	h.bed.procs = append(h.bed.procs, p)
	h.bed.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			p.stdout.add(line)
			if p.log != nil {
				fmt.Fprintln(sinks[0], line)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.err = p.cmd.Wait()
		if p.log != nil {
			fmt.Fprintf(p.log, "=== %s exit: %v\n", time.Now().Format(time.RFC3339Nano), p.err)
			p.log.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// PID is the process's ID (the program's own: nsenter execs it).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return errors.New(p.Spec.Name + " has exited")
	}
	return p.cmd.Process.Signal(sig)
}

// Kill SIGKILLs the process and its group.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGCONT) // a frozen group dies too, but wakes its children's waits
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WaitFor waits up to limit for the process to end and returns its exit code: -1 when
// it did not end (or was killed by a signal).
func (p *Proc) WaitFor(limit time.Duration) int {
	select {
	case <-p.done:
	case <-time.After(limit):
		return -1
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// ExitCode is the process's exit code once it ended: -1 while it runs, or when a signal
// ended it.
func (p *Proc) ExitCode() int {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stdout is what the process printed on stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Line returns the first stdout line starting with prefix, if one came.
func (p *Proc) Line(prefix string) (string, bool) { return p.stdout.find(prefix) }

// Log is everything the process wrote so far (stdout and stderr), from its log file.
func (p *Proc) Log() string {
	if p.logPath == "" {
		p.stderr.mu.Lock()
		defer p.stderr.mu.Unlock()
		return p.Stdout() + p.errBuf.String()
	}
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// LogPath is the process's log file ("" without a LogDir).
func (p *Proc) LogPath() string { return p.logPath }

// State is the process's state in the process table: R, S, D (running or waiting), T
// (stopped), Z (a zombie not yet reaped), or "" when there is no such process.
func (p *Proc) State() string { return ProcState(p.PID()) }

// ProcState reads a process's state letter from /proc ("" when it is gone).
func ProcState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// pid (comm) S ...: comm may hold spaces and parentheses; the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// lines is a process's stdout, line by line.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	l.all = append(l.all, s)
	l.mu.Unlock()
}

func (l *lines) find(prefix string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.all {
		if strings.HasPrefix(s, prefix) {
			return s, true
		}
	}
	return "", false
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return ""
	}
	return strings.Join(l.all, "\n") + "\n"
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}
