// Command crosscast is the Crosscast server and its operator tools: serve, config validate/example, backup, restore,
// healthcheck and version. main only wires: each command lives in its own file and returns an exit code.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
