// Package period reads the durations operators and marketers write in settings and campaigns: a Go duration
// ("48h", "90m") or a number of days ("7d"), between a second and 365 days.
//
// It imports the standard library only.
package period

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Max is the longest period accepted.
const Max = 365 * 24 * time.Hour

// Parse reads a period; the error says what is accepted.
func Parse(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("is required (a duration such as 7d or 48h)")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || strconv.Itoa(n) != days {
			return 0, fmt.Errorf("%q is not a duration such as 7d or 48h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 7d or 48h", s)
		}
	}
	if d < time.Second || d > Max {
		return 0, fmt.Errorf("%q must be between 1 second and 365 days", s)
	}
	return d, nil
}
