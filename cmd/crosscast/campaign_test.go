package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The exactly-once promise, tested as a crash would break it: a campaign to 3,000 contacts through the bundled
// capture channel (its outbox stands for the provider, and keeps one message per idempotency key as providers
// do), with the server killed with SIGKILL several times while it sends, and restarted. Every contact must end up
// with exactly one message, and the campaign must count exactly 3,000 sent.
func TestCampaignSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills the server several times")
	}
	const contacts = 3000
	data := filepath.Join(t.TempDir(), "data")
	s := start(t, nil, "serve", "-listen", "127.0.0.1:0", "-data", data)
	m := tokenRE.FindStringSubmatch(s.output())
	if m == nil {
		t.Fatalf("no token:\n%s", s.output())
	}
	token := m[1]
	ws := "/api/v1/workspaces/default"
	mustCall := func(s *server, method, path, body string, want int) string {
		t.Helper()
		code, out := s.call(t, method, path, token, body)
		if code != want {
			t.Fatalf("%s %s: %d %s", method, path, code, out)
		}
		return out
	}

	// The audience: 3,000 subscribed contacts in France, imported as a CSV file.
	var csv strings.Builder
	csv.WriteString("email,consent.email,country,first_name\n")
	for i := range contacts {
		fmt.Fprintf(&csv, "k%04d@example.com,subscribed,FR,Name%d\n", i, i)
	}
	var job struct {
		Job struct{ ID string } `json:"job"`
	}
	code, out := callCSV(t, s, token, ws+"/contacts/import", csv.String())
	if code != 202 || json.Unmarshal([]byte(out), &job) != nil {
		t.Fatalf("import: %d %s", code, out)
	}
	eventually(t, 60*time.Second, "the import to finish", func() bool {
		return strings.Contains(mustCall(s, "GET", "/api/v1/jobs/"+job.Job.ID, "", 200), `"status":"succeeded"`)
	})
	var seg struct{ ID string }
	if err := json.Unmarshal([]byte(mustCall(s, "POST", ws+"/segments", `{"name":"France","rule":"country = \"FR\""}`, 201)), &seg); err != nil {
		t.Fatal(err)
	}
	var camp struct{ ID string }
	body := fmt.Sprintf(`{"name":"Crash test","audience":{"include":[%q]},"channels":[{"plugin":"capture","content":{"subject":"Hello {{ contact.first_name }}","text":"Hi"}}]}`, seg.ID)
	if err := json.Unmarshal([]byte(mustCall(s, "POST", ws+"/campaigns", body, 201)), &camp); err != nil {
		t.Fatal(err)
	}
	mustCall(s, "POST", ws+"/campaigns/"+camp.ID+"/launch", "", 200)

	// Kill it while it sends, a few times, at random moments; restart each time.
	r := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for kills < 4 {
		time.Sleep(time.Duration(50+r.IntN(300)) * time.Millisecond)
		status := campaignStatus(t, s, token, ws+"/campaigns/"+camp.ID)
		if status.Status == "completed" {
			break
		}
		if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.wait(t)
		kills++
		s = start(t, nil, "serve", "-listen", "127.0.0.1:0", "-data", data)
		// What the killed process had claimed and not recorded is sent again (logged at start, once the
		// engine has read the outbox).
		eventually(t, 10*time.Second, "the restart to read the outbox", func() bool {
			return campaignStatus(t, s, token, ws+"/campaigns/"+camp.ID).Progress.Planned > 0
		})
		resent := ""
		if m := resentRE.FindStringSubmatch(s.output()); m != nil {
			resent = m[1]
		}
		t.Logf("killed at %d sent of %d planned; left sending and sent again: %q", status.Progress.Sent, status.Progress.Planned, resent)
	}
	if kills == 0 {
		t.Fatal("the campaign completed before the first kill: make it longer")
	}
	eventually(t, 120*time.Second, "the campaign to complete", func() bool {
		return campaignStatus(t, s, token, ws+"/campaigns/"+camp.ID).Status == "completed"
	})
	final := campaignStatus(t, s, token, ws+"/campaigns/"+camp.ID)
	if p := final.Progress; p.Planned != contacts || p.Sent != contacts || p.Remaining != 0 {
		t.Fatalf("progress after %d kills: %+v", kills, p)
	}

	// The provider's side: one message per contact, with its own name.
	perContact := map[string]int{}
	subjects := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Items []struct {
				ContactID string            `json:"contact_id"`
				To        string            `json:"to"`
				Fields    map[string]string `json:"fields"`
			} `json:"items"`
			Next string `json:"next"`
		}
		out := mustCall(s, "GET", ws+"/outbox?plugin=capture&limit=1000&cursor="+url.QueryEscape(cursor), "", 200)
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			perContact[it.ContactID]++
			subjects[it.To+" "+it.Fields["subject"]] = true
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(perContact) != contacts {
		t.Fatalf("%d contacts received a message, want %d", len(perContact), contacts)
	}
	for id, n := range perContact {
		if n != 1 {
			t.Fatalf("contact %s received %d messages", id, n)
		}
	}
	if !subjects["k0042@example.com Hello Name42"] || len(subjects) != contacts {
		t.Fatalf("messages not rendered for their contact (%d distinct)", len(subjects))
	}
	t.Logf("%d kills; every one of %d contacts got exactly one message", kills, contacts)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

var resentRE = regexp.MustCompile(`will be sent again.* messages=(\d+)`)

type campaignView struct {
	Status   string `json:"status"`
	Progress struct {
		Planned, Sent, Remaining int
	} `json:"progress"`
}

func campaignStatus(t *testing.T, s *server, token, path string) campaignView {
	t.Helper()
	code, out := s.call(t, "GET", path, token, "")
	var v campaignView
	if code != 200 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("GET %s: %d %s", path, code, out)
	}
	return v
}

func callCSV(t *testing.T, s *server, token, path, body string) (int, string) {
	t.Helper()
	return s.callWith(t, "POST", path, token, body, "text/csv")
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
