package contacts

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
)

// ExportSection adds one part to a contact's GDPR export: deliveries (campaigns), segment memberships (segments),
// scores... Each package that keeps data about contacts registers one, so the export stays complete as features
// arrive. fn returns the section's content (any JSON-encodable value).
type ExportSection struct {
	Name string
	Fn   func(ctx context.Context, ws, contactID string) (any, error)
}

// AddExportSection registers a section of the GDPR export.
func (s *Service) AddExportSection(sec ExportSection) {
	s.sectionsMu.Lock()
	defer s.sectionsMu.Unlock()
	s.sections = append(s.sections, sec)
}

// GDPRDocument is everything stored about one contact.
type GDPRDocument struct {
	Workspace string         `json:"workspace"`
	Contact   Contact        `json:"contact"`
	Events    []events.Event `json:"events"`
	// Merges are the identities folded into this contact.
	Merges []Merge `json:"merges"`
	// Sections are the other features' data (deliveries, segment memberships...), by name.
	Sections map[string]any `json:"sections"`
}

// GDPRExport returns everything stored about contact id: its profile and consents, every event, the merges that
// formed it, and each registered section.
func (s *Service) GDPRExport(ctx context.Context, ws, id string) (GDPRDocument, error) {
	if !ValidID(id) {
		return GDPRDocument{}, fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	doc := GDPRDocument{Workspace: ws, Events: []events.Event{}, Merges: []Merge{}, Sections: map[string]any{}}
	err := s.store.ViewContacts(ctx, ws, func(tx Tx) error {
		target := follow(tx, id)
		c, ok, err := tx.Get(target)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
		}
		doc.Contact = c
		err = tx.Events(target, "", func(e events.Event, _ string) bool {
			doc.Events = append(doc.Events, e)
			return true
		})
		if err != nil {
			return err
		}
		doc.Merges, err = tx.MergesInto(target)
		if doc.Merges == nil {
			doc.Merges = []Merge{}
		}
		return err
	})
	if err != nil {
		return GDPRDocument{}, err
	}
	s.sectionsMu.RLock()
	secs := slices.Clone(s.sections)
	s.sectionsMu.RUnlock()
	for _, sec := range secs {
		v, err := sec.Fn(ctx, ws, doc.Contact.ID)
		if err != nil {
			return GDPRDocument{}, fmt.Errorf("exporting %s: %w", sec.Name, err)
		}
		doc.Sections[sec.Name] = v
	}
	return doc, nil
}

// ExportPage is how many contacts Export reads per snapshot: a long read transaction would keep bbolt from growing
// its file for writers, so the export takes short ones.
const ExportPage = 1000

// Export calls fn with every contact of the workspace in id order. It reads in pages of short snapshots, so a
// contact written during the export may or may not appear; none appears twice.
func (s *Service) Export(ctx context.Context, ws string, fn func(Contact) error) error {
	after := ""
	for {
		page := make([]Contact, 0, ExportPage)
		err := s.store.ViewContacts(ctx, ws, func(tx Tx) error {
			return tx.Scan(after, func(c Contact) bool {
				page = append(page, c)
				return len(page) < ExportPage
			})
		})
		if err != nil {
			return err
		}
		for _, c := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(page) < ExportPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// Masked is the text that replaces a masked value.
const Masked = "***"

// Mask returns c with what pii names hidden: "email" keeps its first character and domain ("a***@example.com"),
// "phone" its last two digits, "user_id", "anonymous_id" and attributes become "***". It is for callers without PII permission.
func Mask(c Contact, pii []string) Contact {
	if len(pii) == 0 {
		return c
	}
	c = c.Clone()
	for _, name := range pii {
		switch name {
		case "email":
			c.Email = maskEmail(c.Email)
		case "phone":
			if len(c.Phone) > 2 {
				c.Phone = Masked + c.Phone[len(c.Phone)-2:]
			}
		case "user_id":
			if c.UserID != "" {
				c.UserID = Masked
			}
		case "anonymous_id":
			for i := range c.AnonymousIDs {
				c.AnonymousIDs[i] = Masked
			}
		default:
			if _, ok := c.Attributes[name]; ok {
				c.Attributes[name] = StringValue(Masked)
			}
			// A PII object flattened into dotted names ("address" covers "address.city").
			for k := range c.Attributes {
				if strings.HasPrefix(k, name+".") {
					c.Attributes[k] = StringValue(Masked)
				}
			}
		}
	}
	return c
}

func maskEmail(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at <= 0 {
		if e == "" {
			return ""
		}
		return Masked
	}
	return e[:1] + Masked + e[at:]
}

// AuditLog returns a page of the workspace's audit log (merges, deletions, erasures), newest first, and the cursor of
// the next page.
func (s *Service) AuditLog(ctx context.Context, ws, cursor string, limit int) ([]AuditEntry, string, error) {
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 1000 {
		return nil, "", errs.Invalid("limit", "must be between 1 and 1000")
	}
	var out []AuditEntry
	next, last := "", ""
	err := s.store.ViewContacts(ctx, ws, func(tx Tx) error {
		return tx.AuditLog(cursor, func(e AuditEntry, cur string) bool {
			if len(out) == limit {
				next = last
				return false
			}
			out = append(out, e)
			last = cur
			return true
		})
	})
	return out, next, err
}
