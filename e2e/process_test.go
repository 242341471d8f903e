package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// process is farewell running as a subprocess (the test binary in farewell mode).
type process struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
	err    error
}

// startProcess runs farewell args in a subprocess with a clean environment plus env.
func startProcess(t testing.TB, env []string, args ...string) *process {
	t.Helper()
	return startExecutable(t, os.Args[0], append([]string{execEnv + "=1"}, env...), args...)
}

// startExecutable runs the program at path with args, a clean environment plus env, in
// a temporary home.
func startExecutable(t testing.TB, path string, env []string, args ...string) *process {
	t.Helper()
	home := t.TempDir()
	p := &process{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Dir = home
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", path, args, err)
	}
	go func() {
		r := bufio.NewReader(io.TeeReader(stdout, &p.stdout))
		_, _ = io.Copy(io.Discard, r)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %v stderr:\n%s", path, args, p.stderr.String())
		}
	})
	return p
}

// waitLine waits for a stdout line starting with prefix and returns it.
func (p *process) waitLine(prefix string, limit time.Duration) string {
	p.t.Helper()
	var line string
	eventually(p.t, limit, "a line starting with "+prefix, func() bool {
		for _, l := range strings.Split(p.stdout.String(), "\n") {
			if strings.HasPrefix(l, prefix) {
				line = l
				return true
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("process ended before printing %q: %v\nstderr:\n%s", prefix, p.err, p.stderr.String())
		default:
		}
		return false
	})
	return line
}

// field returns the value of key=value in a line of space-separated pairs.
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
}

// wait waits for the process to end and returns its exit code.
func (p *process) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.t.Fatalf("process did not end within %s\nstderr:\n%s", limit, p.stderr.String())
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}
