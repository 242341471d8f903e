// Package e2e holds every test that links the Temporal server: the embedded dev server,
// the CLI run in-process, and end-to-end shutdowns on a real cluster with real workers.
// Keeping them in one package keeps to one ~200 MB test binary.
package e2e
