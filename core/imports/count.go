package imports

import (
	"bytes"
	"fmt"
	"io"
)

// csvScan follows record boundaries in CSV bytes the way encoding/csv reads them: a line end ends a record unless
// it is inside double quotes, and empty lines are no records. It reads no cells, so it runs at memory speed.
type csvScan struct {
	inQuote bool
	data    bool  // the current record has bytes
	records int64 // records ended so far
	lines   int64 // line ends seen
	start   int64 // line ends seen before the current record began
	size    int64 // bytes in the current record
}

// feed scans p; it fails when a record grows past MaxRowBytes.
func (s *csvScan) feed(p []byte) error {
	for len(p) > 0 {
		if !s.inQuote && !s.data {
			// Between records: skip empty lines quickly.
			if p[0] == '\n' {
				s.lines++
				s.start = s.lines
				p = p[1:]
				continue
			}
			if p[0] == '\r' {
				p = p[1:]
				continue
			}
		}
		// Jump to the next byte that matters.
		i := bytes.IndexAny(p, "\"\n")
		if i < 0 {
			s.size += int64(len(p))
			if len(p) > 0 {
				s.data = true
			}
			p = nil
		} else {
			s.size += int64(i) + 1
			if i > 0 {
				s.data = true
			}
			if p[i] == '"' {
				s.inQuote = !s.inQuote
				s.data = true
			} else {
				s.lines++
				if !s.inQuote {
					if s.data {
						s.records++
					}
					s.data, s.size, s.start = false, 0, s.lines
				}
			}
			p = p[i+1:]
		}
		if s.size > MaxRowBytes {
			return &tooLongError{line: s.start + 1}
		}
	}
	return nil
}

// end counts a last record without a final line end.
func (s *csvScan) end() int64 {
	if s.data {
		return s.records + 1
	}
	return s.records
}

// tooLongError is a CSV record longer than MaxRowBytes: the import cannot go on.
type tooLongError struct{ line int64 }

func (e *tooLongError) Error() string {
	return fmt.Sprintf("line %d: the row starting here runs past %d bytes without ending: a quoted cell is probably "+
		"not closed (a cell that starts with \" must end with \", and quotes inside it are doubled \"\"); the rows "+
		"before it were imported", e.line, MaxRowBytes)
}

// guardReader stops a CSV input at a record longer than MaxRowBytes, so that an unclosed quote cannot make
// encoding/csv gather the rest of a large file into one cell in memory.
type guardReader struct {
	r    io.Reader
	scan csvScan
}

func (g *guardReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if n > 0 {
		if ferr := g.scan.feed(p[:n]); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

// Counter counts the rows of an input as it is written through it, so that an upload is spooled and counted in
// one pass.
type Counter struct {
	format Format
	csv    csvScan
	lines  int64 // JSON Lines: non-blank lines ended
	data   bool  // JSON Lines: the current line has a non-blank byte
}

// NewCounter returns a counter for an input of format f.
func NewCounter(f Format) *Counter { return &Counter{format: f} }

// Write counts p; it never fails (a CSV record too long is found again, and reported, when the import reads it).
func (c *Counter) Write(p []byte) (int, error) {
	if c.format == CSV {
		_ = c.csv.feed(p)
		return len(p), nil
	}
	for _, b := range p {
		switch b {
		case '\n':
			if c.data {
				c.lines++
			}
			c.data = false
		case ' ', '\t', '\r':
		default:
			c.data = true
		}
	}
	return len(p), nil
}

// Rows is the number of data rows written so far: CSV records after the header row, or non-blank JSON lines.
func (c *Counter) Rows() int64 {
	if c.format == CSV {
		if n := c.csv.end(); n > 0 {
			return n - 1
		}
		return 0
	}
	if c.data {
		return c.lines + 1
	}
	return c.lines
}
