package rule

import (
	"errors"
	"testing"
)

// addSeeds adds the inputs of the golden archives to a fuzz corpus.
func addSeeds(f *testing.F, paths ...string) {
	for _, path := range paths {
		_, cases := readGolden(f, path)
		for _, c := range cases {
			f.Add(c.input)
		}
	}
}

// FuzzParse checks that Parse never panics, that its errors have positions, and that every rule it accepts
// formats to text that reads back as the same rule, and to JSON that decodes to it.
func FuzzParse(f *testing.F) {
	addSeeds(f, "testdata/format.txt", "testdata/parse_errors.txt", "testdata/check.txt")
	subject := sampleSubject()
	f.Fuzz(func(t *testing.T, text string) {
		n, err := Parse(text)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 || len(errs) > maxErrors {
				t.Fatalf("error %T %v", err, err)
			}
			for _, e := range errs {
				if e.Line < 1 || e.Column < 1 || e.Message == "" {
					t.Fatalf("error without position or message: %#v", e)
				}
			}
			return
		}
		out := Format(n)
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("the canonical text does not parse: %v\n%s", err, out)
		}
		if !sameRule(n, back) {
			t.Fatalf("the canonical text reads as another rule:\n%s\n%s", out, Format(back))
		}
		if Format(back) != out {
			t.Fatalf("Format is not stable:\n%s\n%s", out, Format(back))
		}
		data, err := marshalNode(n)
		if err != nil {
			t.Fatalf("encoding: %v", err)
		}
		decoded, err := DecodeJSON(data)
		if err != nil || !sameRule(n, decoded) {
			t.Fatalf("the JSON form does not read back (%v): %s", err, data)
		}
		Check(n, testSchema)
		Eval(n, subject, evalNow)
		NextChange(n, subject, evalNow)
		Dependencies(n)
	})
}

// FuzzDecodeJSON checks that DecodeJSON never panics and that every rule it accepts has a text form that parses
// back to it.
func FuzzDecodeJSON(f *testing.F) {
	_, cases := readGolden(f, "testdata/json_errors.txt")
	for _, c := range cases {
		f.Add([]byte(c.input))
	}
	_, cases = readGolden(f, "testdata/format.txt")
	for _, c := range cases {
		if n, err := Parse(c.input); err == nil {
			data, _ := marshalNode(n)
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := DecodeJSON(data)
		if err != nil {
			return
		}
		text := Format(n)
		back, err := Parse(text)
		if err != nil || !sameRule(n, back) {
			t.Fatalf("the text form does not read back (%v): %s", err, text)
		}
	})
}
