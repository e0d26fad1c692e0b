package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time by the Makefile (-ldflags "-X main.version=..."); it is the one package-level
// variable, written only by the linker.
var version = "dev"

// buildInfo returns the version, the commit the binary was built from ("unknown" outside a git checkout; with
// "+dirty" for uncommitted changes) and the Go version.
func buildInfo() (ver, commit, goVersion string) {
	commit = "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
				if len(commit) > 12 {
					commit = commit[:12]
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit != "unknown" {
			commit += "+dirty"
		}
	}
	return version, commit, runtime.Version()
}

func versionCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version", "Prints the version, the commit it was built from and the Go version.", stderr)
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "crosscast version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	v, c, g := buildInfo()
	fmt.Fprintf(stdout, "crosscast %s\ncommit %s\n%s %s/%s\n", v, c, g, runtime.GOOS, runtime.GOARCH)
	return exitOK
}
