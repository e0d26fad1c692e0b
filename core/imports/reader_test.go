package imports_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/imports"
)

// render shows a row's fields compactly and deterministically: email=a@x.io attrs{age:42(float64)} ...
func render(f contacts.Fields) string {
	var parts []string
	str := func(name string, p *string) {
		if p != nil {
			parts = append(parts, name+"="+*p)
		}
	}
	str("email", f.Email)
	str("phone", f.Phone)
	str("user_id", f.UserID)
	str("timezone", f.Timezone)
	str("locale", f.Locale)
	if f.Tags != nil {
		parts = append(parts, "tags="+strings.Join(f.Tags, "|"))
	}
	if f.RemoveTags != nil {
		parts = append(parts, "remove_tags="+strings.Join(f.RemoveTags, "|"))
	}
	var keys []string
	for k := range f.Consent {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, "consent."+k+"="+string(f.Consent[k]))
	}
	keys = keys[:0]
	for k := range f.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := f.Attributes[k]
		switch x := v.(type) {
		case time.Time:
			v = x.Format(time.RFC3339)
		case []string:
			v = strings.Join(x, "|")
		}
		parts = append(parts, fmt.Sprintf("%s=%v(%T)", k, v, f.Attributes[k]))
	}
	return strings.Join(parts, " ")
}

// readAll reads every row: "L<line>: <fields>" for good rows, "L<line>! <error>" for bad ones, and "FATAL <error>"
// for an error that stops reading.
func readAll(t *testing.T, input string, opts imports.Options) []string {
	t.Helper()
	rd, err := imports.NewReader(strings.NewReader(input), opts)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var out []string
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		var bad *imports.RowError
		switch {
		case errors.As(err, &bad):
			if bad.Line != row.Line {
				t.Errorf("row error on line %d, row says %d", bad.Line, row.Line)
			}
			out = append(out, fmt.Sprintf("L%d! %s", bad.Line, problems(bad)))
		case err != nil:
			return append(out, "FATAL "+err.Error())
		default:
			out = append(out, fmt.Sprintf("L%d: %s", row.Line, render(row.Fields)))
		}
		if len(out) > 10000 {
			t.Fatal("reader does not stop")
		}
	}
}

func problems(e *imports.RowError) string {
	var parts []string
	for _, p := range e.Problems {
		parts = append(parts, fmt.Sprintf("[%s|%s] %s", p.Column, p.Field, p.Message))
	}
	return strings.Join(parts, "; ")
}

func TestCSVReader(t *testing.T) {
	csvOpts := imports.Options{Format: imports.CSV, Channels: contacts.DefaultChannels}
	tests := []struct {
		name  string
		input string
		opts  *imports.Options
		want  []string // exact rows, or substrings when a row has a "~" prefix
	}{
		{
			name: "default mapping by header",
			input: "Email,Phone,user_id,Time Zone,locale,tags,consent.email,First Name,Age,VIP,Signup,Zip\n" +
				"Ann@Example.com,+33612345678,u1,Europe/Paris,fr-FR,a| b ||c,yes,Ann,42,TRUE,2026-01-02T03:04:05Z,01234\n",
			want: []string{"L2: email=Ann@Example.com phone=+33612345678 user_id=u1 timezone=Europe/Paris locale=fr-FR tags=a|b|c " +
				"consent.email=subscribed Age=42(float64) First Name=Ann(string) Signup=2026-01-02T03:04:05Z(string) VIP=true(bool) Zip=01234(string)"},
		},
		{
			name:  "UTF-8 BOM is accepted",
			input: "\xEF\xBB\xBFemail,name\na@x.io,Zoë\n",
			want:  []string{"L2: email=a@x.io name=Zoë(string)"},
		},
		{
			name:  "CRLF line ends",
			input: "email,name\r\na@x.io,A\r\n\r\nb@x.io,B\r\n",
			want:  []string{"L2: email=a@x.io name=A(string)", "L4: email=b@x.io name=B(string)"},
		},
		{
			name:  "quoted cells with line breaks, delimiters and quotes keep line numbers",
			input: "email,notes\na@x.io,\"line one\nline two, with \"\"quotes\"\"\"\nb@x.io,plain\n",
			want:  []string{"L2: email=a@x.io notes=line one\nline two, with \"quotes\"(string)", "L4: email=b@x.io notes=plain(string)"},
		},
		{
			name:  "wrong column counts are row errors; the rows around them are kept",
			input: "email,name,city\na@x.io,A,Lyon\nb@x.io,B\nc@x.io,C,Paris,extra\nd@x.io,D,Nice",
			want: []string{
				"L2: email=a@x.io city=Lyon(string) name=A(string)",
				"L3! [|] the row has 2 cells; the header has 3",
				"L4! [|] the row has 4 cells; the header has 3",
				"L5: email=d@x.io city=Nice(string) name=D(string)",
			},
		},
		{
			name:  "invalid UTF-8 is a row error naming the column and the byte",
			input: "email,city\na@x.io,Montr\xe9al\nb@x.io,Lyon\n",
			want: []string{
				"L2! [city|attributes.city] is not valid UTF-8 text (byte 0xE9 at position 6 of the cell); save the file as UTF-8 and import it again",
				"L3: email=b@x.io city=Lyon(string)",
			},
		},
		{
			name:  "bare quote is a row error with its position",
			input: "email,name\na@x.io,A \"the\" B\nb@x.io,B\n",
			want:  []string{"~L2! [|] bare \" in non-quoted-field at line 2, column 10", "L3: email=b@x.io name=B(string)"},
		},
		{
			name:  "a quote never closed ends the file with a row error at the row's first line",
			input: "email,name\na@x.io,A\nb@x.io,\"B\nc@x.io,C\n",
			want:  []string{"L2: email=a@x.io name=A(string)", "~L3! [|] extraneous or missing \" in quoted-field"},
		},
		{
			name:  "empty cells leave values unchanged",
			input: "email,phone,name\na@x.io,, \n",
			want:  []string{"L2: email=a@x.io"},
		},
		{
			name:  "semicolon delimiter detected",
			input: "email;name;score\na@x.io;A, Jr.;1.5\n",
			want:  []string{"L2: email=a@x.io name=A, Jr.(string) score=1.5(float64)"},
		},
		{
			name:  "tab delimiter detected",
			input: "email\tname\na@x.io\tA\n",
			want:  []string{"L2: email=a@x.io name=A(string)"},
		},
		{
			name:  "explicit delimiter",
			input: "email|name\na@x.io|A\n",
			opts:  &imports.Options{Format: imports.CSV, Delimiter: '|'},
			want:  []string{"L2: email=a@x.io name=A(string)"},
		},
		{
			name:  "mapping with types, skips and consent",
			input: "E-Mail Addr,Age,Notes,Born,Newsletter,Interests,Member\na@x.io,42,secret,1990-05-06,no,x|y,1\nb@x.io,old,,yesterday,maybe,,perhaps\n",
			opts: &imports.Options{Format: imports.CSV, Channels: contacts.DefaultChannels, Mapping: imports.Mapping{
				"E-Mail Addr": "email", "Age": "attributes.age:number", "Notes": "-", "Born": "attributes.born:date",
				"Newsletter": "consent.email", "Interests": "attributes.interests:list", "Member": "attributes.member:bool",
			}},
			want: []string{
				"L2: email=a@x.io consent.email=unsubscribed age=42(float64) born=1990-05-06T00:00:00Z(time.Time) interests=x|y([]string) member=true(bool)",
				"L3! [Age|attributes.age] \"old\" is not a number; " +
					"[Born|attributes.born] \"yesterday\" is not a date: use 2026-03-01, 2026-03-01 14:30:00 or RFC 3339 (2026-03-01T14:30:00Z); " +
					"[Newsletter|consent.email] \"maybe\" is not a consent status: use subscribed, unsubscribed or unknown (or yes/no); " +
					"[Member|attributes.member] \"perhaps\" is not a boolean: use true/false, yes/no or 1/0",
			},
		},
		{
			name:  "inference keeps leading zeros, signs and long digit runs as text",
			input: "email,a,b,c,d,e,f,g\nx@x.io,0612345678,+33,1234567890123456,-3.5e2,0,0.25,false\n",
			want:  []string{"L2: email=x@x.io a=0612345678(string) b=+33(string) c=1234567890123456(string) d=-350(float64) e=0(float64) f=0.25(float64) g=false(bool)"},
		},
		{
			name:  "id column of an export is skipped; attributes.<name> headers name attributes",
			input: "id,email,attributes.email,attributes.tags\n01abc,a@x.io,work@x.io,vip\n",
			want:  []string{"L2: email=a@x.io email=work@x.io(string) tags=vip(string)"},
		},
		{
			name:  "header only",
			input: "email,name\n",
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := csvOpts
			if tt.opts != nil {
				opts = *tt.opts
			}
			got := readAll(t, tt.input, opts)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				want, partial := strings.CutPrefix(tt.want[i], "~")
				if partial && !strings.Contains(got[i], want) || !partial && got[i] != want {
					t.Errorf("row %d:\n got  %s\n want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCSVHeaderProblems(t *testing.T) {
	tests := []struct {
		name  string
		input string
		opts  imports.Options
		want  []string // field: message substring
	}{
		{"empty file", "", imports.Options{}, []string{"file: the file is empty"}},
		{"UTF-16", "\xFF\xFEe\x00m\x00", imports.Options{}, []string{"file: the file is UTF-16"}},
		{"no identifier", "name,city\nA,Lyon\n", imports.Options{}, []string{`header: no column maps to email, phone or user_id`, `"name", "city"`}},
		{"duplicate header", "email,name,name\n", imports.Options{}, []string{`header: columns 2 and 3 are both named "name"`}},
		{"two columns to one field", "email,E-mail\n", imports.Options{}, []string{`columns.E-mail: columns "email" and "E-mail" both map to email`}},
		{"mapping names a missing column", "email\n", imports.Options{Mapping: imports.Mapping{"Mail": "email"}}, []string{`mapping.Mail: the header has no column "Mail" (it has "email")`}},
		{"unknown consent channel", "email,consent.fax\n", imports.Options{Channels: contacts.DefaultChannels}, []string{"columns.consent.fax: unknown channel \"fax\""}},
		{"invalid header bytes", "email,caf\xe9\n", imports.Options{}, []string{"header: column 2's header is not valid UTF-8"}},
		{"bad quote in header", "email,\"name\n", imports.Options{}, []string{"header: extraneous or missing \" in quoted-field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format = imports.CSV
			_, err := imports.NewReader(strings.NewReader(tt.input), tt.opts)
			var v *errs.ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("NewReader = %v, want a validation error", err)
			}
			var all []string
			for _, f := range v.Fields {
				all = append(all, f.Field+": "+f.Message)
			}
			joined := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(joined, w) {
					t.Errorf("problems lack %q:\n%s", w, joined)
				}
			}
		})
	}
}

func TestParseMapping(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{`{"E-mail":"email","Age":"attributes.age:number","Notes":"-","Opt":"consent.sms"}`, ""},
		{``, ""},
		{`{"a":"emial"}`, `mapping.a: unknown target "emial"`},
		{`{"a":"attributes.age:numbr"}`, `mapping.a: unknown type "numbr"`},
		{`{"a":"consent."}`, `mapping.a: "consent." names no channel`},
		{`{"a":"attributes."}`, `mapping.a: "attributes.": attribute names are 1-128 bytes`},
		{`["email"]`, `mapping: must be a JSON object`},
		{`{"a":"email"} x`, `mapping: has data after the JSON object`},
	} {
		_, err := imports.ParseMapping(tt.in)
		if tt.want == "" {
			if err != nil {
				t.Errorf("ParseMapping(%s) = %v", tt.in, err)
			}
			continue
		}
		var v *errs.ValidationError
		if !errors.As(err, &v) || !strings.Contains(v.Fields[0].Field+": "+v.Fields[0].Message, tt.want) {
			t.Errorf("ParseMapping(%s) = %v, want %s", tt.in, err, tt.want)
		}
	}
}

// The effective mapping is reported, so that a user can see how each column was read.
func TestColumnsDescribeTheMapping(t *testing.T) {
	rd, err := imports.NewReader(strings.NewReader("id,Email,Age,Notes,\n"), imports.Options{
		Format: imports.CSV, Mapping: imports.Mapping{"Age": "attributes.age:number"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(rd.Columns())
	if string(got) != `{"Age":"attributes.age:number","Email":"email","Notes":"attributes.Notes","id":"-"}` {
		t.Fatalf("Columns = %s", got)
	}
	if rd.Column("attributes.age") != "Age" || rd.Column("email") != "Email" || rd.Column("nope") != "" {
		t.Fatalf("Column lookups wrong")
	}
}

// A quote that is never closed must not make the reader gather the rest of a large file in memory: reading stops
// with an error at the row's line once the row passes MaxRowBytes.
func TestCSVUnclosedQuoteIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("email,notes\na@x.io,ok\nb@x.io,\"oops\n")
	for b.Len() < 3*imports.MaxRowBytes {
		b.WriteString("c@x.io,more text that the open quote swallows\n")
	}
	got := readAll(t, b.String(), imports.Options{Format: imports.CSV})
	if len(got) != 2 || got[0] != "L2: email=a@x.io notes=ok(string)" || !strings.HasPrefix(got[1], "FATAL line 3: the row starting here runs past") {
		t.Fatalf("got %q", got)
	}
}

func TestJSONLReader(t *testing.T) {
	long := `{"email":"a@x.io","attributes":{"blob":"` + strings.Repeat("x", imports.MaxRowBytes) + `"}}`
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{
			name:  "rows, blank lines, CRLF and a BOM",
			input: "\xEF\xBB\xBF{\"email\":\"a@x.io\",\"attributes\":{\"age\":42,\"address\":{\"city\":\"Lyon\"}}}\r\n\n   \n{\"phone\":\"+33612345678\",\"tags\":[\"vip\"],\"consent\":{\"sms\":\"subscribed\"}}",
			want: []string{
				"L1: email=a@x.io address=map[city:Lyon](map[string]interface {}) age=42(json.Number)",
				"L4: phone=+33612345678 tags=vip consent.sms=subscribed",
			},
		},
		{
			name:  "syntax error with its column",
			input: "{\"email\":\"a@x.io\",}\n{\"email\":\"b@x.io\"}\n",
			want:  []string{"~L1! [|] not valid JSON at column 19", "L2: email=b@x.io"},
		},
		{
			name:  "unknown field",
			input: "{\"emial\":\"a@x.io\"}\n",
			want:  []string{"~L1! [|emial] unknown field"},
		},
		{
			name:  "wrong type names the field",
			input: "{\"email\":5}\n",
			want:  []string{"L1! [|email] must be a string, not number"},
		},
		{
			name:  "not an object",
			input: "[1,2]\n",
			want:  []string{"L1! [|] a line must be a JSON object, not array"},
		},
		{
			name:  "data after the object",
			input: "{\"email\":\"a@x.io\"} {}\n",
			want:  []string{"L1! [|] data after the JSON object at column 20: a line holds one object"},
		},
		{
			name:  "cut short",
			input: "{\"email\":\"a@x.io\"\n",
			want:  []string{"L1! [|] the JSON object is cut short"},
		},
		{
			name:  "invalid UTF-8",
			input: "{\"email\":\"a@x.io\",\"attributes\":{\"city\":\"Montr\xe9al\"}}\n{\"email\":\"b@x.io\"}\n",
			want:  []string{"~L1! [|] the line is not valid UTF-8 text (byte 0xE9", "L2: email=b@x.io"},
		},
		{
			name:  "a line too long is skipped and reading goes on",
			input: long + "\n{\"email\":\"b@x.io\"}\n",
			want:  []string{"~L1! [|] the line is longer than", "L2: email=b@x.io"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.input, imports.Options{Format: imports.JSONL})
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				want, partial := strings.CutPrefix(tt.want[i], "~")
				if partial && !strings.Contains(got[i], want) || !partial && got[i] != want {
					t.Errorf("row %d:\n got  %.300s\n want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// The counter run while an upload is spooled agrees with what the reader reads, for every shape of input.
func TestCounterAgreesWithReader(t *testing.T) {
	for _, tt := range []struct {
		format imports.Format
		input  string
		want   int64
	}{
		{imports.CSV, "email\na@x.io\nb@x.io\n", 2},
		{imports.CSV, "email\na@x.io\nb@x.io", 2},
		{imports.CSV, "email\r\n\r\na@x.io\r\n\r\n\r\nb@x.io\r\n", 2},
		{imports.CSV, "email,notes\na@x.io,\"x\n\ny\"\nb@x.io,\"\"\"q\"\"\"\n", 2},
		{imports.CSV, "email,n\na@x.io\nb@x.io,1,2\n", 2},
		{imports.CSV, "email\n", 0},
		{imports.CSV, "", 0},
		{imports.JSONL, "{\"email\":\"a@x.io\"}\n\n  \n{\"email\":\"b@x.io\"}", 2},
		{imports.JSONL, "{}\r\n{}\r\n", 2},
		{imports.JSONL, "", 0},
	} {
		c := imports.NewCounter(tt.format)
		// Feed byte by byte: counts must not depend on how writes split the input.
		for i := 0; i < len(tt.input); i++ {
			_, _ = c.Write([]byte{tt.input[i]})
		}
		if c.Rows() != tt.want {
			t.Errorf("%s %q: counter says %d rows, want %d", tt.format, tt.input, c.Rows(), tt.want)
		}
		whole := imports.NewCounter(tt.format)
		_, _ = whole.Write([]byte(tt.input))
		if whole.Rows() != tt.want {
			t.Errorf("%s %q: counter (one write) says %d rows, want %d", tt.format, tt.input, whole.Rows(), tt.want)
		}
		if tt.input == "" && tt.format == imports.CSV {
			continue
		}
		if n := int64(len(readAll(t, tt.input, imports.Options{Format: tt.format}))); n != tt.want {
			t.Errorf("%s %q: reader read %d rows, want %d", tt.format, tt.input, n, tt.want)
		}
	}
}

func TestFormatAndDelimiter(t *testing.T) {
	for _, tt := range []struct {
		query, contentType string
		want               imports.Format
		bad                bool
	}{
		{"", "text/csv; charset=utf-8", imports.CSV, false},
		{"", "application/x-ndjson", imports.JSONL, false},
		{"", "application/jsonl", imports.JSONL, false},
		{"jsonl", "text/csv", imports.JSONL, false},
		{"CSV", "", imports.CSV, false},
		{"", "application/json", "", true},
		{"xml", "", "", true},
	} {
		got, err := imports.FormatFrom(tt.query, tt.contentType)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("FormatFrom(%q, %q) = %q, %v", tt.query, tt.contentType, got, err)
		}
	}
	for in, want := range map[string]rune{"": 0, ",": ',', ";": ';', "tab": '\t', "\t": '\t', "|": '|'} {
		if got, err := imports.ParseDelimiter(in); err != nil || got != want {
			t.Errorf("ParseDelimiter(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := imports.ParseDelimiter("::"); err == nil {
		t.Errorf("ParseDelimiter(::) accepted")
	}
}
