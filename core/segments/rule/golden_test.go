package rule

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected outputs in testdata/*.txt")

// A golden archive holds cases as sections: "-- name --" followed by the input, then "-- name.want --" followed by
// the expected output. Lines before the first section are comments. The input loses its final line break.
type goldenCase struct {
	name, input, want string
}

func readGolden(t testing.TB, path string) (header string, cases []goldenCase) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type section struct {
		name string
		body strings.Builder
	}
	var sections []*section
	var head strings.Builder
	for line := range strings.SplitAfterSeq(string(data), "\n") {
		marker := strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(marker, "-- ") && strings.HasSuffix(marker, " --") && len(marker) > 6 {
			sections = append(sections, &section{name: marker[3 : len(marker)-3]})
			continue
		}
		if len(sections) == 0 {
			head.WriteString(line)
			continue
		}
		sections[len(sections)-1].body.WriteString(line)
	}
	for i := 0; i < len(sections); i++ {
		s := sections[i]
		c := goldenCase{name: s.name, input: strings.TrimSuffix(s.body.String(), "\n")}
		if i+1 < len(sections) && sections[i+1].name == s.name+".want" {
			i++
			c.want = strings.TrimSuffix(sections[i].body.String(), "\n")
		}
		cases = append(cases, c)
	}
	return head.String(), cases
}

// runGolden runs fn on each case's input and compares its output with the case's want; with -update it writes the
// outputs back as the new wants.
func runGolden(t *testing.T, path string, fn func(t *testing.T, input string) string) {
	t.Helper()
	header, cases := readGolden(t, path)
	if len(cases) == 0 {
		t.Fatalf("%s has no cases", path)
	}
	var out strings.Builder
	out.WriteString(header)
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Errorf("%s: case %q appears twice", path, c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			got := fn(t, c.input)
			if !*update && got != c.want {
				t.Errorf("input:\n%s\ngot:\n%s\nwant:\n%s", c.input, got, c.want)
			}
			out.WriteString("-- " + c.name + " --\n" + c.input + "\n-- " + c.name + ".want --\n" + got + "\n")
		})
	}
	if *update {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sameRule reports whether two rules are the same tree, positions aside.
func sameRule(a, b Node) bool {
	return reflect.DeepEqual(stripPositions(a), stripPositions(b))
}

// stripPositions returns a deep copy of n with every Pos zeroed.
func stripPositions(n Node) Node {
	if n == nil {
		return nil
	}
	v := reflect.ValueOf(n)
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	zeroPos(c.Elem())
	return c.Interface().(Node)
}

var posType = reflect.TypeFor[Pos]()

func zeroPos(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == posType {
			v.SetZero()
			return
		}
		for i := range v.NumField() {
			zeroPos(v.Field(i))
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		c := reflect.New(v.Elem().Type())
		c.Elem().Set(v.Elem())
		zeroPos(c.Elem())
		v.Set(c)
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		c := reflect.New(v.Elem().Type()).Elem()
		c.Set(v.Elem())
		zeroPos(c)
		v.Set(c)
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		for i := range c.Len() {
			zeroPos(c.Index(i))
		}
		v.Set(c)
	}
}
