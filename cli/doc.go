// Package cli implements the farewell command line with cobra. Every command takes its
// IO streams, arguments and environment from Options, so tests run commands in-process.
// Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage; commands may add their own.
package cli
