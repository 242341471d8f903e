// Package devserver runs a Temporal server and the Temporal UI inside this process, with
// SQLite persistence, so that Farewell needs nothing but its own binary on a fresh machine.
//
// Only the CLI and tests import this package: it links the whole Temporal server, which
// makes binaries large and slow to build. Host applications embed package agent instead.
package devserver
