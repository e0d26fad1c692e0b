package campaigns

import (
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/workspaces"
)

func TestQuietUntil(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	night := readRules(workspaces.CampaignRules{QuietHours: &workspaces.QuietHours{Start: "21:00", End: "08:00"}})
	lunch := readRules(workspaces.CampaignRules{QuietHours: &workspaces.QuietHours{Start: "12:00", End: "14:00"}})
	at := func(h, m int, loc *time.Location) time.Time { return time.Date(2026, 11, 22, h, m, 0, 0, loc) }
	for _, tt := range []struct {
		name  string
		r     rules
		now   time.Time
		loc   *time.Location
		until time.Time
	}{
		{"evening", night, at(22, 30, time.UTC), time.UTC, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)},
		{"early morning", night, at(7, 59, time.UTC), time.UTC, at(8, 0, time.UTC)},
		{"daytime", night, at(12, 0, time.UTC), time.UTC, time.Time{}},
		{"at the start", night, at(21, 0, time.UTC), time.UTC, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)},
		{"at the end", night, at(8, 0, time.UTC), time.UTC, time.Time{}},
		{"in the contact's zone", night, at(21, 30, time.UTC), paris, time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)}, // 22:30 in Paris
		{"same-day window", lunch, at(13, 0, time.UTC), time.UTC, at(14, 0, time.UTC)},
		{"outside a same-day window", lunch, at(15, 0, time.UTC), time.UTC, time.Time{}},
		{"no quiet hours", rules{}, at(3, 0, time.UTC), time.UTC, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.quietUntil(tt.now, tt.loc); !got.Equal(tt.until) {
				t.Fatalf("quietUntil(%s in %s) = %s, want %s", tt.now, tt.loc, got, tt.until)
			}
		})
	}
}
