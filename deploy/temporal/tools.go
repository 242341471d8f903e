//go:build tools

// Package temporal pins the Temporal server and its SQL schema tool at the version
// Farewell embeds, so that a production-shaped Temporal is built from the same code:
//
//	go build -o temporal-server go.temporal.io/server/cmd/server
//	go build -o temporal-sql-tool go.temporal.io/server/cmd/tools/sql
//
// (run in this folder). It is a module of its own so that the product's go.mod does not
// carry the server's command-line dependencies.
package temporal

import (
	_ "go.temporal.io/server/cmd/server"
	_ "go.temporal.io/server/cmd/tools/sql"
)
