package metrics

import (
	"bufio"
	"strconv"
)

// textWriter writes families in the text exposition format. Write errors
// are kept by the bufio.Writer and reported by Flush.
type textWriter struct {
	bw      *bufio.Writer
	buf     []byte
	family  *family
	started bool // HELP and TYPE lines of family written
}

// header writes the HELP and TYPE lines of the current family once, before
// its first sample.
func (w *textWriter) header() {
	if w.started {
		return
	}
	w.started = true
	f := w.family
	b := w.buf[:0]
	if f.help != "" {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.help...)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.typ...)
	b = append(b, '\n')
	w.buf = b
	w.bw.Write(b)
}

// sample writes one sample line with a float value.
func (w *textWriter) sample(name, suffix string, labelNames, labelValues []string, extraName, extraValue string, v float64) {
	w.header()
	b := appendSeries(w.buf[:0], name, suffix, labelNames, labelValues, extraName, extraValue)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	b = append(b, '\n')
	w.buf = b
	w.bw.Write(b)
}

// sampleUint writes one sample line with an integer value.
func (w *textWriter) sampleUint(name, suffix string, labelNames, labelValues []string, extraName, extraValue string, v uint64) {
	w.header()
	b := appendSeries(w.buf[:0], name, suffix, labelNames, labelValues, extraName, extraValue)
	b = strconv.AppendUint(b, v, 10)
	b = append(b, '\n')
	w.buf = b
	w.bw.Write(b)
}

// appendSeries appends `name{l1="v1",...} ` to b.
func appendSeries(b []byte, name, suffix string, labelNames, labelValues []string, extraName, extraValue string) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(labelNames) > 0 || extraName != "" {
		b = append(b, '{')
		for i, l := range labelNames {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, l, labelValues[i])
		}
		if extraName != "" {
			if len(labelNames) > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, extraName, extraValue)
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

// appendLabel appends name="value" to b, escaping backslash, double quote
// and newline in value.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
