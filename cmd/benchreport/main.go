// Benchreport turns the output of `go test -bench` into a readable table and
// a JSON report. It is the tool behind `make bench`:
//
//	go test -run '^$' -bench . -benchmem -count 1 ./... | tee bench/raw.txt
//	go run ./cmd/benchreport -in bench/raw.txt -out bench/results.json
//
// The table is printed to stdout, grouped by package. The JSON report (see
// [Report]) adds a description of the machine, the Go version and the git
// commit, so results from different runs can be compared.
//
// Because the pipe through tee hides the exit status of go test, benchreport
// exits non-zero, without writing a report, if the input shows a failure
// (a line starting with "--- FAIL" or "FAIL") or holds no benchmark results.
//
// Flags:
//
//	-in file       go test -bench output to read; "-" reads stdin (default "-")
//	-out file      JSON report to write, creating parent directories;
//	               empty writes no report (default "")
//	-command text  command recorded in the report (default "make bench")
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the process exit code: 0 on success,
// 1 if the input shows a failure or cannot be read or the report cannot be
// written, and 2 on bad usage.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "-", `go test -bench output to read; "-" reads stdin`)
	out := fs.String("out", "", "JSON report to write, creating parent directories; empty writes no report")
	command := fs.String("command", "make bench", "command recorded in the report")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "benchreport: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return 2
	}

	rep, err := parseInput(*in, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "benchreport: %v\n", err)
		return 1
	}
	describeEnvironment(rep, *command, time.Now())

	if err := Render(stdout, rep); err != nil {
		fmt.Fprintf(stderr, "benchreport: writing table: %v\n", err)
		return 1
	}
	if *out != "" {
		if err := writeJSON(*out, rep); err != nil {
			fmt.Fprintf(stderr, "benchreport: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", *out)
	}
	return 0
}

// parseInput parses the file named by in, or stdin if in is "-".
func parseInput(in string, stdin io.Reader) (*Report, error) {
	if in == "-" {
		rep, err := Parse(stdin)
		if err != nil {
			return nil, fmt.Errorf("stdin: %w", err)
		}
		return rep, nil
	}
	f, err := os.Open(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rep, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	return rep, nil
}

// describeEnvironment fills in the parts of rep that do not come from the
// go test output: the time, the machine, the Go version, the commit and the
// command. Header values already parsed from the input are kept.
func describeEnvironment(rep *Report, command string, now time.Time) {
	rep.GeneratedAt = now.UTC().Truncate(time.Second)
	rep.GoVersion = runtime.Version()
	rep.Commit = gitCommit()
	rep.Command = command

	m := &rep.Machine
	if m.GOOS == "" {
		m.GOOS = runtime.GOOS
	}
	if m.GOARCH == "" {
		m.GOARCH = runtime.GOARCH
	}
	if m.CPU == "" {
		m.CPU = cpuModel(readFile("/proc/cpuinfo"))
	}
	m.Cores = runtime.NumCPU()
	m.MemoryBytes = memTotal(readFile("/proc/meminfo"))
	m.Kernel = strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
}

// readFile returns the contents of name, or "" if it cannot be read.
func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	return string(b)
}

// cpuModel returns the first "model name" in the text of /proc/cpuinfo,
// or "" if there is none.
func cpuModel(cpuinfo string) string {
	for line := range strings.Lines(cpuinfo) {
		key, val, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// memTotal returns MemTotal in bytes from the text of /proc/meminfo,
// or 0 if it is missing or malformed.
func memTotal(meminfo string) int64 {
	for line := range strings.Lines(meminfo) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "MemTotal:" || f[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || kb < 0 {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// gitCommit returns the short hash of HEAD, or "" if git is unavailable or
// the working directory is not in a repository with commits.
func gitCommit() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// writeJSON writes rep as indented JSON to name, creating parent directories.
func writeJSON(name string, rep *Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, data, 0o644)
}
