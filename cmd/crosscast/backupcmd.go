package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/store"
)

const backupAbout = `Writes a consistent backup (tar.gz) of every file of a data dir.

Offline, from a data dir no server is using:
  crosscast backup -data ./data -out backup.tar.gz
From a running server, while it keeps serving and writing (needs a server-wide owner token in $CROSSCAST_TOKEN):
  crosscast backup -url http://127.0.0.1:8080 -out backup.tar.gz
Restore with 'crosscast restore'.`

func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("backup", "backup (-data DIR | -url URL) -out FILE", backupAbout, stderr)
	dataDir := fs.String("data", "", "data `DIR` of a stopped server")
	url := fs.String("url", "", "base `URL` of a running server")
	token := fs.String("token", "", "owner API `token` for -url; prefer setting $CROSSCAST_TOKEN, which keeps it out of ps")
	out := fs.String("out", "", "archive `FILE` to write, - for standard output")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if *token == "" {
		*token = os.Getenv("CROSSCAST_TOKEN")
	}
	if *out == "" || (*dataDir == "") == (*url == "") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "crosscast backup: give -out and exactly one of -data or -url (see -h)")
		return exitUsage
	}
	write := func(w io.Writer) error {
		if *dataDir != "" {
			err := store.BackupDir(ctx, *dataDir, time.Second, w)
			if errors.Is(err, store.ErrInUse) {
				return fmt.Errorf("data dir %s is in use by a running crosscast: back it up through the server with -url and -token", *dataDir)
			}
			return err
		}
		return backupFromServer(ctx, *url, *token, w)
	}
	if err := writeAtomically(*out, stdout, write); err != nil {
		fmt.Fprintf(stderr, "crosscast backup: %v\n", err)
		return exitError
	}
	if *out != "-" {
		fmt.Fprintf(stderr, "backup written to %s\n", *out)
	}
	return exitOK
}

func backupFromServer(ctx context.Context, base, token string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/api/v1/backup", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// writeAtomically writes to path through a temporary file renamed into place on success, so a failed backup
// never leaves a truncated archive that looks complete. "-" writes to stdout.
func writeAtomically(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" {
		return write(stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

const restoreAbout = `Restores a backup made by 'crosscast backup' into a data dir that holds no data yet, and verifies every
file. Then start the server on it: crosscast serve -data DIR.`

func restoreCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("restore", "restore -in FILE -data DIR", restoreAbout, stderr)
	in := fs.String("in", "", "backup `FILE` (tar.gz), - for standard input")
	dataDir := fs.String("data", "", "new data `DIR` to restore into")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if *in == "" || *dataDir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "crosscast restore: give -in FILE and -data DIR (see -h)")
		return exitUsage
	}
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintf(stderr, "crosscast restore: %v\n", err)
			return exitError
		}
		defer f.Close()
		r = f
	}
	m, err := store.Restore(r, *dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "crosscast restore: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "restored backup of %s (%d workspaces) into %s\n", m.CreatedAt.Format(time.RFC3339), len(m.Workspaces), *dataDir)
	return exitOK
}

func healthcheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("healthcheck", "healthcheck [-url URL]", "Exits 0 if GET URL answers 200, 1 otherwise. Used by the Docker HEALTHCHECK.", stderr)
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "health `URL` to check")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this `duration`")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "crosscast healthcheck: %v\n", err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "crosscast healthcheck: %v\n", err)
		return exitError
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "crosscast healthcheck: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return exitError
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return exitOK
}
