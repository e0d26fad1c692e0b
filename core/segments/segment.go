package segments

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments/index"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// Segment is a saved audience: a name and a rule, or a static list whose members are added and removed by hand.
type Segment struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Type is TypeRule or TypeStatic.
	Type string `json:"type"`
	// Rule is the rule's canonical text (rule.Format); empty for a static list.
	Rule      string    `json:"rule"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Segment types.
const (
	// TypeRule: membership follows the rule, kept up to date by the index.
	TypeRule = "rule"
	// TypeStatic: a list; contacts are added and removed through the API or an import.
	TypeStatic = "static"
)

// Store keeps a workspace's segments. core/store implements it on the workspace's file.
type Store interface {
	contacts.Store
	MemberStore
	// PutSegment creates or replaces a segment.
	PutSegment(ctx context.Context, ws string, s Segment) error
	// DeleteSegment removes a segment (errs.ErrNotFound if there is none).
	DeleteSegment(ctx context.Context, ws, id string) error
	// ListSegments returns every segment of the workspace, in id order (creation order, to the millisecond).
	ListSegments(ctx context.Context, ws string) ([]Segment, error)
}

var idPattern = regexp.MustCompile(`^seg_[0-9a-z]{26}$`)

// compiled is a segment with its parsed rule.
type compiled struct {
	Segment
	node rule.Node
}

// catalog is a workspace's segments, parsed, by id and by lower-cased name.
type catalog struct {
	list   []compiled
	byID   map[string]int
	byName map[string]int
}

func newCatalog(list []Segment) (*catalog, error) {
	c := &catalog{byID: map[string]int{}, byName: map[string]int{}}
	for _, s := range list {
		if s.Type == "" {
			s.Type = TypeRule // stored before static lists existed
		}
		var n rule.Node
		if s.Type == TypeRule {
			var err error
			if n, err = rule.Parse(s.Rule); err != nil {
				return nil, fmt.Errorf("stored segment %s does not parse: %w", s.ID, err)
			}
		}
		c.byID[s.ID] = len(c.list)
		c.byName[strings.ToLower(s.Name)] = len(c.list)
		c.list = append(c.list, compiled{Segment: s, node: n})
	}
	return c, nil
}

func (c compiled) static() bool { return c.Type == TypeStatic }

// def is the segment as the index takes it.
func (c compiled) def() index.Def { return index.Def{ID: c.ID, Name: c.Name, Rule: c.node} }

// ids returns every segment id.
func (c *catalog) ids() []string {
	out := make([]string, len(c.list))
	for i, s := range c.list {
		out[i] = s.ID
	}
	return out
}

// find returns the segment a reference names: an id, or a name (case-insensitive).
func (c *catalog) find(ref string) (compiled, bool) {
	if i, ok := c.byID[ref]; ok {
		return c.list[i], true
	}
	if i, ok := c.byName[strings.ToLower(ref)]; ok {
		return c.list[i], true
	}
	return compiled{}, false
}

// check refuses references to unknown segments and cycles, for a rule saved as segment self ("" for a preview).
func (c *catalog) check(self string, n rule.Node) error {
	v := &errs.ValidationError{}
	for _, ref := range rule.Segments(n) {
		s, ok := c.find(ref)
		if !ok {
			v.Add("rule", "unknown segment %q: in_segment takes the name or id of a saved segment", ref)
			continue
		}
		if path := c.cycle(self, s, nil); path != nil {
			v.Add("rule", "in_segment(%q) would make segments depend on themselves: %s", ref, strings.Join(path, " -> "))
		}
	}
	return v.OrNil()
}

// cycle returns the path of names back to self from s, or nil.
func (c *catalog) cycle(self string, s compiled, seen []string) []string {
	if self == "" {
		return nil
	}
	path := append(seen, s.Name)
	if s.ID == self {
		return path
	}
	if len(path) > len(c.list)+1 {
		return nil
	}
	for _, ref := range rule.Segments(s.node) {
		if next, ok := c.find(ref); ok {
			if p := c.cycle(self, next, path); p != nil {
				return p
			}
		}
	}
	return nil
}

// dependants names the segments whose rules reference s.
func (c *catalog) dependants(s compiled) []string {
	var out []string
	for _, other := range c.list {
		if other.ID == s.ID {
			continue
		}
		for _, ref := range rule.Segments(other.node) {
			if found, ok := c.find(ref); ok && found.ID == s.ID {
				out = append(out, other.Name)
				break
			}
		}
	}
	return out
}
