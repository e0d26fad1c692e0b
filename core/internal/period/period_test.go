package period

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"7d", 7 * 24 * time.Hour, ""},
		{"365d", Max, ""},
		{"48h", 48 * time.Hour, ""},
		{"1s", time.Second, ""},
		{"", 0, "is required"},
		{"366d", 0, "between 1 second and 365 days"},
		{"0d", 0, "between 1 second and 365 days"},
		{"500ms", 0, "between 1 second and 365 days"},
		{"-1h", 0, "between 1 second and 365 days"},
		{"07d", 0, "not a duration"},
		{"d", 0, "not a duration"},
		{"forever", 0, "not a duration"},
		{"1.5d", 0, "not a duration"},
	} {
		got, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
