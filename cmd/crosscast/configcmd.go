package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	crosscast "github.com/crosscast/crosscast"
	"github.com/crosscast/crosscast/core/config"
)

const configUsage = `Usage: crosscast config validate FILE | crosscast config example

Subcommands:
  validate FILE   check FILE; print every problem as FILE:LINE:COL: message and exit 2, or exit 0
  example         print the annotated example configuration (every key, with its default)
`

func configCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, configUsage)
		return exitOK
	case "validate":
		fs := newFlags("config validate", "config validate FILE", "Checks a configuration file: syntax, unknown keys, types, env() variables and values.", stderr)
		if code := parseFlags(fs, args[1:], stdout); code >= 0 {
			return code
		}
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "crosscast config validate: give exactly one FILE")
			return exitUsage
		}
		path := fs.Arg(0)
		if _, err := config.Load(path, nil); err != nil {
			var ps config.Problems
			if n := printProblems(stderr, "crosscast config validate", err); errors.As(err, &ps) {
				fmt.Fprintf(stderr, "%s: %d problem(s)\n", path, n)
			}
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s: ok\n", path)
		return exitOK
	case "example":
		fs := newFlags("config example", "config example", "Prints the annotated example configuration.", stderr)
		if code := parseFlags(fs, args[1:], stdout); code >= 0 {
			return code
		}
		fmt.Fprint(stdout, crosscast.ExampleConfig())
		return exitOK
	}
	fmt.Fprintf(stderr, "crosscast config: unknown subcommand %q\n\n%s", args[0], configUsage)
	return exitUsage
}
