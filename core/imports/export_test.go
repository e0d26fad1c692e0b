package imports_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/imports"
	"github.com/crosscast/crosscast/core/workspaces"
)

func seedExport(t *testing.T, w *world) {
	t.Helper()
	rows := []contacts.Fields{
		{Email: ptr("a@x.io"), Phone: ptr("+33612345678"), Timezone: ptr("Europe/Paris"), Locale: ptr("fr-FR"),
			Tags: []string{"vip", "beta"}, Consent: map[string]contacts.ConsentStatus{"email": contacts.Subscribed},
			Attributes: map[string]any{"plan": "pro", "seats": 3, "trial": false, "signup": "2026-01-02T03:04:05Z", "email": "work@x.io",
				"note": "line one\nline two, \"quoted\""}},
		{UserID: ptr("u2"), Consent: map[string]contacts.ConsentStatus{"sms": contacts.Unsubscribed},
			Attributes: map[string]any{"plan": "free", "Tags": "not the tags"}},
	}
	outs, err := w.svc.UpsertMany(context.Background(), "acme", rows, "api")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
	}
}

func exportCSV(t *testing.T, w *world, ws string) string {
	t.Helper()
	attrs, chans, err := imports.Columns(context.Background(), w.svc, ws, []string{"email", "sms"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cw, err := imports.NewCSVWriter(&buf, chans, attrs)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.Export(context.Background(), ws, cw.Write); err != nil {
		t.Fatal(err)
	}
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestCSVExportColumnsAndRoundTrip(t *testing.T) {
	w := newWorld(t)
	seedExport(t, w)
	out := exportCSV(t, w, "acme")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("export is not valid CSV: %v\n%s", err, out)
	}
	header := strings.Join(recs[0], ",")
	want := "id,email,phone,user_id,timezone,locale,tags,consent.email,consent.sms,attributes.Tags,attributes.email,note,plan,seats,signup,trial"
	if header != want {
		t.Fatalf("header\n got  %s\n want %s", header, want)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	row := recs[1]
	if row[1] != "a@x.io" {
		row = recs[2]
	}
	first := strings.Join(row[1:], ",")
	if first != "a@x.io,+33612345678,,Europe/Paris,fr-FR,beta|vip,subscribed,,,work@x.io,line one\nline two, \"quoted\",pro,3,2026-01-02T03:04:05Z,false" {
		t.Fatalf("first row: %q", first)
	}

	// The export imports back into another workspace as it was.
	if _, err := w.ws.Create(context.Background(), workspaces.CreateInput{ID: "copy"}); err != nil {
		t.Fatal(err)
	}
	rd, err := imports.NewReader(strings.NewReader(out), imports.Options{Format: imports.CSV, Channels: contacts.DefaultChannels})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := imports.Run(context.Background(), w.svc, "copy", rd, rec, 0); err != nil || rec.created != 2 || rec.failed != 0 {
		t.Fatalf("re-import: %v %+v", err, rec)
	}
	again := exportCSV(t, w, "copy")
	strip := func(s string) string { // ids differ between workspaces
		recs, _ := csv.NewReader(strings.NewReader(s)).ReadAll()
		var lines []string
		for _, r := range recs {
			lines = append(lines, strings.Join(r[1:], ","))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	if strip(again) != strip(out) {
		t.Fatalf("round trip changed the data:\n%s\n---\n%s", out, again)
	}
}

func TestJSONLExport(t *testing.T) {
	w := newWorld(t)
	seedExport(t, w)
	var buf bytes.Buffer
	jw := imports.NewJSONLWriter(&buf)
	if err := w.svc.Export(context.Background(), "acme", jw.Write); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		var c contacts.Contact
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		stored, err := w.svc.Get(context.Background(), "acme", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(stored)
		b, _ := json.Marshal(c)
		if !bytes.Equal(a, b) {
			t.Fatalf("line %d differs from the stored contact:\n%s\n%s", n+1, a, b)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d lines", n)
	}
}
