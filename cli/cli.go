package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/embedded"
	"github.com/farewell-project/farewell/starter"
	"github.com/farewell-project/farewell/telemetry"
)

// Exit codes shared by every command.
const (
	ExitOK      = 0
	ExitFailure = 1 // the machine failed: Temporal unreachable, a port taken, …
	ExitUsage   = 2 // the input was wrong: bad flag, bad config, unknown node, …
)

// Options are everything a run of the CLI reads from its surroundings, so that commands
// run in-process in tests exactly as they do from a shell.
type Options struct {
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Env is the environment as KEY=VALUE pairs; nil means os.Environ().
	Env []string
	// ConfigDirs replaces the folders searched for farewell.yaml; nil means the defaults.
	ConfigDirs []string
	// Server starts the embedded Temporal server and UI that dev and demo run on
	// (devserver.Embedded); nil builds a CLI without them, which links no server.
	Server embedded.Start
	// NodeOnly makes the node command the whole CLI (farewell-node).
	NodeOnly bool
	// ReplayWorkflow replaces the workflow code `farewell replay` replays against; nil
	// means the current GracefulShutdown. Tests use it to replay changed code.
	ReplayWorkflow any
	// DialRetry is how long a command keeps trying a Temporal that refuses connections;
	// 0 means 5s.
	DialRetry time.Duration
}

// Execute runs the command line in o.Args and returns the process exit code.
func Execute(ctx context.Context, o Options) int {
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	a := &app{opts: o, bindings: map[*cobra.Command]map[string]string{}}
	root := a.rootCommand()
	root.SetArgs(o.Args)
	root.SetIn(o.Stdin)
	root.SetOut(o.Stdout)
	root.SetErr(o.Stderr)

	_, err := root.ExecuteContextC(ctx)
	if a.tel != nil {
		// Flush before exiting: a CLI that exits must not lose its spans.
		if terr := a.tel.Shutdown(context.WithoutCancel(ctx)); terr != nil && a.logger != nil {
			a.logger.Warn("telemetry not flushed", "error", terr)
		}
	}
	if err == nil {
		return ExitOK
	}
	code := exitCode(err, a.started)
	var quiet *exitError
	if !errors.As(err, &quiet) || quiet.err != nil {
		fmt.Fprintf(o.Stderr, "%s: %v\n", root.Name(), err)
	}
	if code == ExitUsage && !a.started {
		fmt.Fprintf(o.Stderr, "Run '%s --help' for usage.\n", root.Name())
	}
	return code
}

// exitError makes a command end with a given code. A nil err means the command has
// already said everything.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks bad input: it ends the command with ExitUsage.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// refusals are the starter's answers that say the input was wrong — a node nobody
// knows, a request the workflow refused, nothing to retry — rather than that something
// failed: they end a command with ExitUsage wherever they come from.
var refusals = []error{starter.ErrUnknownNode, starter.ErrBadRequest, starter.ErrNoShutdown, starter.ErrRejected,
	starter.ErrNothingToRetry, starter.ErrNoDrain, starter.ErrDrainRunning}

func exitCode(err error, started bool) int {
	var e *exitError
	switch {
	case errors.As(err, &e):
		return e.code
	case errors.Is(err, config.ErrInvalid) || slices.ContainsFunc(refusals, func(r error) bool { return errors.Is(err, r) }):
		return ExitUsage
	case !started:
		// Cobra failed before any command ran: unknown command, bad flag, wrong args.
		return ExitUsage
	default:
		return ExitFailure
	}
}

// app is the state shared by the commands of one Execute call.
type app struct {
	opts    Options
	cfgFile string
	started bool
	cfg     config.Config
	logger  *slog.Logger
	tel     *telemetry.Telemetry
	// bindings maps, per command, configuration keys to the flags that set them.
	bindings map[*cobra.Command]map[string]string
}

// skipConfig marks commands that must run without loading the configuration.
const skipConfig = "farewell/skip-config"

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "farewell",
		Short: "Graceful, durable shutdown of memberlist cluster nodes on Temporal",
		Long: `Farewell runs the graceful shutdown of a node in a hashicorp/memberlist cluster as a
durable Temporal workflow: every step under a timeout, a failed step never blocking the
next, a forced eviction when the graceful steps fail, and the whole journal kept.

Configuration comes from defaults, a file (--config, else farewell.yaml in ., 
$XDG_CONFIG_HOME/farewell/ or /etc/farewell/), FAREWELL_* environment variables (and the
standard TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY), then flags.

Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.started = true
			if cmd.Annotations[skipConfig] == "true" {
				a.logger = newLogger(a.opts.Stderr, config.DefaultConfig().Log)
				return nil
			}
			if err := a.loadConfig(cmd, ""); err != nil {
				return err
			}
			if quietCommands[cmd.Name()] && !cmd.Flags().Changed("log-level") && a.cfg.Log.Level == "info" {
				// A command whose output people read prints its result, not its progress.
				quiet := a.cfg.Log
				quiet.Level = "warn"
				a.logger = newLogger(a.opts.Stderr, quiet)
			}
			return a.setupTelemetry(cmd)
		},
	}
	root.PersistentFlags().StringVar(&a.cfgFile, "config", "", "configuration file (default: farewell.yaml in ., $XDG_CONFIG_HOME/farewell/, /etc/farewell/)")
	root.PersistentFlags().String("log-level", "", "log level: debug, info, warn or error (log.level)")
	root.PersistentFlags().String("log-format", "", "log format: text or json (log.format)")
	a.bind(root, "log.level", "log-level")
	a.bind(root, "log.format", "log-format")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	root.CompletionOptions.DisableDefaultCmd = true
	if a.opts.NodeOnly {
		return a.nodeRoot(root)
	}

	root.AddCommand(
		a.devCommand(),
		a.nodeCommand(),
		a.membersCommand(),
		a.shutdownCommand(),
		a.statusCommand(),
		a.listCommand(),
		a.workerCommand(),
		a.demoCommand(),
		a.historyCommand(),
		a.replayCommand(),
		a.retryCommand(),
		a.signalCommand(),
		a.cancelCommand(),
		a.watchdogCommand(),
		a.drainCommand(),
		a.budgetCommand(),
		a.keysCommand(),
		a.configCommand(),
		a.versionCommand(),
	)
	if a.opts.Server == nil {
		for _, c := range root.Commands() {
			if c.Name() == "dev" || c.Name() == "demo" {
				root.RemoveCommand(c)
			}
		}
	}
	return root
}

// nodeRoot makes root the node command: the CLI of farewell-node.
func (a *app) nodeRoot(root *cobra.Command) *cobra.Command {
	node := a.nodeCommand()
	root.Use, root.Short, root.Args, root.RunE = "farewell-node", node.Short, node.Args, node.RunE
	root.Long = node.Long + `

farewell-node is what runs on a node: "farewell node" without the embedded Temporal
server and the commands of ops tooling (about a fifth of farewell's size). It takes the
same configuration (farewell.yaml, FAREWELL_* and TEMPORAL_* variables, the flags below).`
	root.Flags().AddFlagSet(node.Flags())
	for key, flag := range a.bindings[node] {
		a.bind(root, key, flag)
	}
	// What a node's host needs beside the node: its version, and its configuration
	// checked and its grace period (for the process manager) printed.
	root.AddCommand(a.versionCommand(), a.configCommand())
	return root
}

// bind records that flag sets configuration key on cmd (and its subcommands).
func (a *app) bind(cmd *cobra.Command, key, flag string) {
	if a.bindings[cmd] == nil {
		a.bindings[cmd] = map[string]string{}
	}
	a.bindings[cmd][key] = flag
}

// loadConfig loads the configuration with the flags bound on cmd and its parents, and
// sets up logging from it. file, when set, replaces --config.
func (a *app) loadConfig(cmd *cobra.Command, file string) error {
	if file == "" {
		file = a.cfgFile
	}
	flags := map[string]*pflag.Flag{}
	for c := cmd; c != nil; c = c.Parent() {
		for key, name := range a.bindings[c] {
			if _, seen := flags[key]; seen {
				continue
			}
			if f := cmd.Flags().Lookup(name); f != nil {
				flags[key] = f
			}
		}
	}
	cfg, _, err := config.Load(config.Source{File: file, SearchDirs: a.opts.ConfigDirs, Env: a.opts.Env, Flags: flags})
	if err != nil {
		return err
	}
	a.cfg = cfg
	a.logger = newLogger(a.opts.Stderr, cfg.Log)
	env := a.opts.Env
	if env == nil {
		env = os.Environ()
	}
	for _, w := range config.UnknownEnv(env) {
		a.logger.Warn(w + ": ignored")
	}
	return nil
}

// logToFile sends this run's logs to path (created 0600, its folder 0700) and returns
// the path written to and a function that closes it.
func (a *app) logToFile(path string) (string, func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", nil, fmt.Errorf("log folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("log file: %w", err)
	}
	a.logger = newLogger(f, a.cfg.Log)
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return abs, func() { f.Close() }, nil
}

// quietCommands log only warnings and errors unless --log-level says otherwise.
var quietCommands = map[string]bool{"members": true, "shutdown": true, "status": true, "list": true, "retry": true,
	"signal": true, "cancel": true, "replay": true, "export": true, "run-once": true, "drain": true, "budget": true,
	"pause": true, "resume": true, "abort": true, "skip": true, "set-max-parallel": true}

// longRunning are the commands that export metrics (and serve /metrics with
// OTEL_METRICS_EXPORTER=prometheus); one-shot commands only trace.
var longRunning = map[string]bool{"dev": true, "demo": true, "worker": true, "node": true}

// setupTelemetry configures OpenTelemetry from the OTEL_* environment for this command.
func (a *app) setupTelemetry(cmd *cobra.Command) error {
	role := a.role(cmd)
	node := ""
	if role == "node" {
		node = a.cfg.Cluster.Name
	}
	// An in-process run (its environment given) keeps the machine's OTEL_* settings
	// and the process's global providers out.
	tel, err := telemetry.Setup(cmd.Context(), telemetry.Options{
		Role: role, Node: node, Logger: a.logger, Metrics: longRunning[role], Global: a.opts.Env == nil, Env: a.opts.Env,
	})
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	a.tel = tel
	if tel.MetricsAddr != "" {
		a.logger.Info("serving metrics", "url", "http://"+tel.MetricsAddr+"/metrics")
	}
	return nil
}

// role is the command as telemetry names it: farewell-node's root is the node command.
func (a *app) role(cmd *cobra.Command) string {
	if a.opts.NodeOnly && !cmd.HasParent() {
		return "node"
	}
	return cmd.Name()
}

// dialOptions give a Temporal client this process's logger, tracing and metrics.
func (a *app) dialOptions() (starter.DialOptions, error) {
	interceptors, err := a.tel.ClientInterceptors()
	if err != nil {
		return starter.DialOptions{}, err
	}
	return starter.DialOptions{Logger: a.logger, Interceptors: interceptors, MetricsHandler: a.tel.MetricsHandler()}, nil
}
