package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	crosscast "github.com/crosscast/crosscast"
	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/plugins/manager"
)

const configUsage = `Usage: crosscast config validate FILE | crosscast config example

Subcommands:
  validate FILE   check FILE, and load the plugins it declares to check their grants and config blocks; print
                  every problem as FILE:LINE:COL: message and exit 2, or exit 0
  example         print the annotated example configuration (every key, with its default)
`

func configCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
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
		cfg, err := config.Load(path, nil)
		if err != nil {
			var ps config.Problems
			if n := printProblems(stderr, "crosscast config validate", err); errors.As(err, &ps) {
				fmt.Fprintf(stderr, "%s: %d problem(s)\n", path, n)
			}
			return exitUsage
		}
		// Plugin blocks can only be checked against the plugins themselves: load them as serve would (sources,
		// checksums, manifests, grants, config blocks), then close them.
		if len(cfg.Plugins) > 0 {
			mailers, closeMailers, err := newMailers(cfg, nil)
			if err != nil {
				fmt.Fprintf(stderr, "%v\n", err)
				return exitUsage
			}
			defer closeMailers()
			plugins, err := manager.New(ctx, manager.Options{CacheDir: userPluginCache(), Mailers: mailers}, cfg.Plugins)
			if err != nil {
				fmt.Fprintf(stderr, "%v\n", err)
				return exitUsage
			}
			_ = plugins.Close(ctx)
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

// userPluginCache is where CLI commands keep compiled plugins between runs ($XDG_CACHE_HOME/crosscast/plugin-cache
// or the platform's equivalent), so a second validation skips compiling; "" (in memory) when there is none.
func userPluginCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "crosscast", "plugin-cache")
}
