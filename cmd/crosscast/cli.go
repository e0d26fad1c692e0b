package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes shared by every command.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed: data dir in use, port taken, server unreachable
	exitUsage = 2 // the command line or the configuration is wrong
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "run the server", serveCmd},
		{"config", "validate a configuration file or print the annotated example", configCmd},
		{"backup", "write a consistent backup of a data dir (offline) or of a running server", backupCmd},
		{"restore", "restore a backup into a new data dir", restoreCmd},
		{"plugin", "build, inspect and try plugins", pluginCmd},
		{"healthcheck", "exit 0 if a running server reports healthy (for container health checks)", healthcheckCmd},
		{"version", "print version, commit and Go version", versionCmd},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "crosscast: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Crosscast: a self-hosted cross-channel campaign manager.")
	fmt.Fprintln(w, "\nUsage: crosscast <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'crosscast <command> -h' for a command's flags. With no configuration file, 'crosscast serve'")
	fmt.Fprintln(w, "listens on 127.0.0.1:8080 and keeps its data in ./data.")
}

// newFlags returns a flag set that reports errors on stderr and prints a command's usage for -h.
func newFlags(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: crosscast %s\n\n%s\n", synopsis, strings.TrimSpace(about))
		if hasFlags(fs) {
			fmt.Fprintln(out, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args; it returns the exit code to stop with, or -1 to go on. -h prints usage on stdout and
// exits 0; a bad flag prints the problem and usage on stderr and exits 2.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) int {
	stderr := fs.Output()
	fs.SetOutput(io.Discard) // the flag package would print usage itself; print it once, on the right stream
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	case err != nil:
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "crosscast %s: %v\n\n", fs.Name(), err)
		fs.Usage()
		return exitUsage
	}
	fs.SetOutput(stderr)
	return -1
}
