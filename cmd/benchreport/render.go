package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Render writes rep to w as plain-text tables, one per package in order of
// first appearance. Each table has a column for the benchmark name (without
// the -GOMAXPROCS suffix), the iterations, and every unit any benchmark of
// the package reported, ns/op first; "-" marks a unit a benchmark lacks.
func Render(w io.Writer, rep *Report) error {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "%s/%s, %s, %d cores, %s", m.GOOS, m.GOARCH, m.CPU, m.Cores, rep.GoVersion)
	if rep.Commit != "" {
		fmt.Fprintf(&b, ", commit %s", rep.Commit)
	}
	b.WriteString("\n")

	var pkgs []string
	byPkg := map[string][]Benchmark{}
	for _, bm := range rep.Benchmarks {
		if _, seen := byPkg[bm.Package]; !seen {
			pkgs = append(pkgs, bm.Package)
		}
		byPkg[bm.Package] = append(byPkg[bm.Package], bm)
	}
	for _, pkg := range pkgs {
		label := pkg
		if label == "" {
			label = "(no pkg: header)"
		}
		fmt.Fprintf(&b, "\npkg: %s\n", label)
		writeTable(&b, table(byPkg[pkg]))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table lays out benchmarks as rows of cells, the first row being the header.
func table(bms []Benchmark) [][]string {
	var units []string
	for _, bm := range bms {
		for u := range bm.Metrics {
			if !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	slices.SortFunc(units, compareUnits)

	rows := [][]string{append([]string{"benchmark", "iterations"}, units...)}
	for _, bm := range bms {
		row := []string{bm.Name, strconv.FormatInt(bm.Iterations, 10)}
		for _, u := range units {
			cell := "-"
			if v, ok := bm.Metrics[u]; ok {
				cell = strconv.FormatFloat(v, 'f', -1, 64)
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	return rows
}

// compareUnits orders units as go test prints them: ns/op, MB/s, custom
// units alphabetically, B/op, allocs/op.
func compareUnits(a, b string) int {
	rank := func(u string) int {
		switch u {
		case "ns/op":
			return 0
		case "MB/s":
			return 1
		case "B/op":
			return 3
		case "allocs/op":
			return 4
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a, b)
}

// writeTable writes rows with the first column left-aligned and the others
// right-aligned, separated by two spaces.
func writeTable(b *strings.Builder, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		b.WriteString("\n")
	}
}
