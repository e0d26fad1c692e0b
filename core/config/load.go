package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Problem is one configuration problem at a position in a file. File is empty for problems in values that did not
// come from a file (defaults, flags).
type Problem struct {
	File    string
	Line    int
	Column  int
	Message string
}

// String renders the problem as FILE:LINE:COL: message, the format editors and CI logs link to.
func (p Problem) String() string {
	if p.File == "" {
		return p.Message
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
}

// Problems is every problem found in a configuration. It is an error.
type Problems []Problem

// Error renders one problem per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Lookup resolves an environment variable; os.LookupEnv in production, a map in tests.
type Lookup func(name string) (string, bool)

// Load reads the HCL file at path over DefaultConfig() and validates it. Every problem (syntax, unknown key, wrong
// type, missing env var, invalid value) is returned at once as Problems with file:line:col.
func Load(path string, lookup Lookup) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(src, path, lookup)
}

// Parse is Load for a file already in memory; filename is used in positions.
func Parse(src []byte, filename string, lookup Lookup) (*Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	cfg := DefaultConfig()
	cfg.Source = filename
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, fromDiagnostics(diags, positions{})
	}
	idx := indexPositions(file.Body.(*hclsyntax.Body))
	ctx := EvalContext(lookup)
	diags = gohcl.DecodeBody(file.Body, ctx, cfg)
	problems := fromDiagnostics(diags, idx)
	// Blocks absent from the file keep their DefaultConfig values: gohcl leaves non-nil block pointers alone.
	problems = append(problems, positioned(cfg.Validate(), idx, filename)...)
	if len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// EvalContext is the evaluation context of every expression in the file: today the env() function. The plugin
// platform uses it too when it decodes a plugin's config block, so env() works there as well.
func EvalContext(lookup Lookup) *hcl.EvalContext {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": envFunction(lookup)}}
}

// envFunction is env("NAME") and env("NAME", "default"): the value of an environment variable, an error naming the
// variable when it is unset and no default is given.
func envFunction(lookup Lookup) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or the default when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a variable name and at most one default")
			}
			name := args[0].AsString()
			if v, ok := lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, function.NewArgErrorf(0, "environment variable %s is not set (give a default: env(%q, \"...\"))", name, name)
		},
	})
}

// fromDiagnostics converts HCL diagnostics. A diagnostic about an attribute's value (wrong type, failing env()) is
// prefixed with the attribute's key path, since HCL's own text does not always name it.
func fromDiagnostics(diags hcl.Diagnostics, idx positions) Problems {
	var ps Problems
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		p := Problem{Message: msg}
		if d.Subject != nil {
			p.File, p.Line, p.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
			if key := idx.keyAt(d.Subject.Start); key != "" {
				p.Message = key + ": " + p.Message
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// positions records where each key path is written: attribute values ("server.listen") and block headers
// ("workspace.acme"), so that Validate, which knows nothing of HCL, still yields file:line:col problems.
type positions struct {
	values map[string]hcl.Range
	blocks map[string]hcl.Range
}

func indexPositions(body *hclsyntax.Body) positions {
	idx := positions{values: map[string]hcl.Range{}, blocks: map[string]hcl.Range{}}
	var walk func(prefix string, b *hclsyntax.Body)
	walk = func(prefix string, b *hclsyntax.Body) {
		for name, a := range b.Attributes {
			idx.values[prefix+name] = a.Expr.Range()
		}
		for _, blk := range b.Blocks {
			path := prefix + strings.Join(append([]string{blk.Type}, blk.Labels...), ".")
			if _, dup := idx.blocks[path]; !dup {
				idx.blocks[path] = blk.DefRange()
			}
			walk(path+".", blk.Body)
		}
	}
	walk("", body)
	return idx
}

// of returns where path, or its nearest written ancestor, is written: a missing attribute is reported at its block.
func (idx positions) of(path string) (hcl.Range, bool) {
	for ; path != ""; path = parent(path) {
		if r, ok := idx.values[path]; ok {
			return r, true
		}
		if r, ok := idx.blocks[path]; ok {
			return r, true
		}
	}
	return hcl.Range{}, false
}

// keyAt returns the path of the attribute whose value contains pos, or "".
func (idx positions) keyAt(pos hcl.Pos) string {
	for path, r := range idx.values {
		if r.ContainsOffset(pos.Byte) {
			return path
		}
	}
	return ""
}

func positioned(err error, idx positions, filename string) Problems {
	if err == nil {
		return nil
	}
	var v *errs.ValidationError
	if !errors.As(err, &v) {
		return Problems{{File: filename, Line: 1, Column: 1, Message: err.Error()}}
	}
	var ps Problems
	for _, f := range v.Fields {
		p := Problem{Message: f.Field + ": " + f.Message}
		if r, ok := idx.of(f.Field); ok {
			p.File, p.Line, p.Column = r.Filename, r.Start.Line, r.Start.Column
		} else {
			p.Message += " (default value)"
		}
		ps = append(ps, p)
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
	return ps
}

func parent(path string) string {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return ""
	}
	return path[:i]
}
