// Package workspaces owns the tenants of a Crosscast server: one workspace per client of an agency, each with its
// own data file, write key and settings. It validates ids and write keys, creates, renames and deletes workspaces,
// and reconciles the workspaces declared in the operator's file.
//
// It imports only the standard library, go-hclog and core/errs. Storage is reached through the Store interface,
// implemented in core/store.
package workspaces

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/internal/period"
	"github.com/hashicorp/go-hclog"
)

// DefaultID is the workspace created on first start when none exists.
const DefaultID = "default"

// Workspace is one tenant.
type Workspace struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	WriteKey string `json:"write_key"`
	// Managed is true when the workspace is declared in the configuration file; its name can only be changed there
	// and the API cannot delete it.
	Managed bool `json:"managed"`
	// ManagedWriteKey is true when the file also declares the write key; only then does the API refuse to change or
	// rotate it.
	ManagedWriteKey bool      `json:"managed_write_key"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	Settings        Settings  `json:"settings"`
}

// Settings are a workspace's choices about its contacts' data. Empty fields take the defaults the contacts package
// documents (consent kept for email, sms, push, webhook and whatsapp; email and phone masked; IPs stored).
type Settings struct {
	// PII names what tokens without PII permission (the viewer role) see masked: attribute names (an object's name
	// covers its dotted children), "email", "phone", "user_id".
	PII []string `json:"pii,omitempty"`
	// IP is what the tracking API keeps of a sender's IP address: "store", "anonymize" or "drop".
	IP string `json:"ip,omitempty"`
	// Channels are the channels consent is kept for.
	Channels []string `json:"channels,omitempty"`
	// Campaigns are the rules every campaign of the workspace follows.
	Campaigns CampaignRules `json:"campaigns,omitzero"`
}

// CampaignRules are a workspace's sending rules across its campaigns. They apply to marketing messages, not to
// transactional ones.
type CampaignRules struct {
	// FrequencyCap limits the messages a contact gets, across campaigns and channels ("pression marketing").
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	// QuietHours holds messages back at night, in each contact's timezone.
	QuietHours *QuietHours `json:"quiet_hours,omitempty"`
	// Topics are what contacts can unsubscribe from one by one on the preference page (a newsletter, offers), each
	// campaign naming its topic; a contact's unsubscribed topics are its unsubscribed_topics attribute.
	Topics []Topic `json:"topics,omitempty"`
}

// Topic is a subject of campaigns contacts can opt out of.
type Topic struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// FrequencyCap is at most Messages in any Period ("7d", "24h").
type FrequencyCap struct {
	Messages int    `json:"messages"`
	Period   string `json:"period"`
}

// QuietHours are from Start to End ("21:00" to "08:00": over midnight), in the contact's timezone, or in Timezone
// (default UTC) for contacts without one. A message due then waits for End.
type QuietHours struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	Timezone string `json:"timezone,omitempty"`
}

// ClockTime reads "HH:MM" as a time of day.
func ClockTime(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q is not a time of day such as 21:00", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

var channelPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate reports every problem of the settings, under field paths starting with "settings.".
func (st Settings) Validate(v *errs.ValidationError) {
	switch st.IP {
	case "", "store", "anonymize", "drop":
	default:
		v.Add("settings.ip", "%q must be store, anonymize or drop", st.IP)
	}
	if len(st.PII) > 500 {
		v.Add("settings.pii", "names at most 500 fields")
	}
	for i, name := range st.PII {
		if name == "" || len(name) > 128 || strings.ContainsAny(name, "\x00\n\r") {
			v.Add(fmt.Sprintf("settings.pii.%d", i), "%q is not a field name (1-128 bytes)", name)
		}
	}
	if len(st.Channels) > 64 {
		v.Add("settings.channels", "names at most 64 channels")
	}
	for i, ch := range st.Channels {
		if !channelPattern.MatchString(ch) {
			v.Add(fmt.Sprintf("settings.channels.%d", i), "%q is not a channel name: 1-32 lower-case letters, digits, _ or -", ch)
		}
	}
	if fc := st.Campaigns.FrequencyCap; fc != nil {
		if fc.Messages < 1 || fc.Messages > 1000 {
			v.Add("settings.campaigns.frequency_cap.messages", "%d must be between 1 and 1000", fc.Messages)
		}
		if _, err := period.Parse(fc.Period); err != nil {
			v.Add("settings.campaigns.frequency_cap.period", "%s", err.Error())
		}
	}
	if len(st.Campaigns.Topics) > 50 {
		v.Add("settings.campaigns.topics", "at most 50 topics")
	}
	topicIDs := map[string]bool{}
	for i, t := range st.Campaigns.Topics {
		if !channelPattern.MatchString(t.ID) || topicIDs[t.ID] {
			v.Add(fmt.Sprintf("settings.campaigns.topics.%d.id", i), "%q is not a unique topic id: 1-32 lower-case letters, digits, _ or -", t.ID)
		}
		topicIDs[t.ID] = true
		if t.Name == "" || len(t.Name) > 100 {
			v.Add(fmt.Sprintf("settings.campaigns.topics.%d.name", i), "is required: 1-100 bytes")
		}
	}
	if q := st.Campaigns.QuietHours; q != nil {
		start, err1 := ClockTime(q.Start)
		if err1 != nil {
			v.Add("settings.campaigns.quiet_hours.start", "%s", err1.Error())
		}
		end, err2 := ClockTime(q.End)
		if err2 != nil {
			v.Add("settings.campaigns.quiet_hours.end", "%s", err2.Error())
		}
		if err1 == nil && err2 == nil && start == end {
			v.Add("settings.campaigns.quiet_hours", "start and end are the same time")
		}
		if q.Timezone != "" {
			if _, err := time.LoadLocation(q.Timezone); err != nil {
				v.Add("settings.campaigns.quiet_hours.timezone", "%q is not an IANA time zone", q.Timezone)
			}
		}
	}
}

// Store persists workspaces. Implementations must make CreateWorkspace fail with errs.ErrConflict when the id or the
// write key is taken, return errs.ErrNotFound for unknown ids, and make DeleteWorkspace remove the workspace's data
// and every API token scoped to it.
type Store interface {
	CreateWorkspace(ctx context.Context, w Workspace) error
	GetWorkspace(ctx context.Context, id string) (Workspace, error)
	// ListWorkspaces returns up to limit workspaces (all when limit is 0) with an id greater than after, in id
	// order.
	ListWorkspaces(ctx context.Context, after string, limit int) ([]Workspace, error)
	// UpdateWorkspace applies fn to the stored workspace and stores the result, in one transaction, so concurrent
	// updates never undo each other; the write key index follows. fn may run more than once and must depend only on
	// the workspace it is given; its error aborts the update and is returned. ErrConflict if the new write key is
	// taken by another workspace.
	UpdateWorkspace(ctx context.Context, id string, fn func(*Workspace) error) (Workspace, error)
	DeleteWorkspace(ctx context.Context, id string) error
}

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$`)
	writeKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
)

// ValidateID reports whether id can name a workspace: 1 to 48 characters of lower-case letters, digits and inner
// dashes. Ids appear in URLs and file names, so nothing else is allowed.
func ValidateID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%q is not a valid workspace id: use 1-48 lower-case letters, digits or dashes, not starting or ending with a dash", id)
	}
	return nil
}

// ValidateName reports whether name (already trimmed) can be a workspace's display name.
func ValidateName(name string) error {
	if len(name) > 200 {
		return fmt.Errorf("must be at most 200 characters")
	}
	return nil
}

// ValidateWriteKey reports whether key can be a tracking write key: 16 to 128 letters, digits, '_' or '-'.
func ValidateWriteKey(key string) error {
	if !writeKeyPattern.MatchString(key) {
		return fmt.Errorf("write key must be 16-128 letters, digits, '_' or '-'")
	}
	return nil
}

// NewWriteKey returns a fresh random write key ("wk_" and 26 base32 characters: 128 random bits).
func NewWriteKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "wk_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Service is the workspace use-case layer on top of a Store.
type Service struct {
	store Store
	log   hclog.Logger
	now   func() time.Time
}

// NewService returns a Service. now may be nil for time.Now.
func NewService(store Store, log hclog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, log: log.Named("workspaces"), now: now}
}

// CreateInput is what a caller may set when creating a workspace.
type CreateInput struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	WriteKey string `json:"write_key"`
}

// Create validates in and creates the workspace. An empty name defaults to the id, an empty write key is generated.
func (s *Service) Create(ctx context.Context, in CreateInput) (Workspace, error) {
	w, err := s.build(in, false)
	if err != nil {
		return Workspace{}, err
	}
	if err := s.store.CreateWorkspace(ctx, w); err != nil {
		return Workspace{}, fmt.Errorf("creating workspace %q: %w", w.ID, err)
	}
	s.log.Info("workspace created", "workspace", w.ID)
	return w, nil
}

// normalize trims and validates what a caller or the configuration file sets. An empty name or write key stays
// empty: the caller decides the default.
func normalize(in CreateInput) (CreateInput, error) {
	v := &errs.ValidationError{}
	if err := ValidateID(in.ID); err != nil {
		v.Add("id", "%s", err)
	}
	in.Name = strings.TrimSpace(in.Name)
	if err := ValidateName(in.Name); err != nil {
		v.Add("name", "%s", err)
	}
	if in.WriteKey != "" {
		if err := ValidateWriteKey(in.WriteKey); err != nil {
			v.Add("write_key", "%s", err)
		}
	}
	return in, v.OrNil()
}

func (s *Service) build(in CreateInput, managed bool) (Workspace, error) {
	in, err := normalize(in)
	if err != nil {
		return Workspace{}, err
	}
	if in.Name == "" {
		in.Name = in.ID
	}
	keyGiven := in.WriteKey != ""
	if !keyGiven {
		in.WriteKey = NewWriteKey()
	}
	now := s.now().UTC()
	return Workspace{
		ID: in.ID, Name: in.Name, WriteKey: in.WriteKey, Managed: managed, ManagedWriteKey: managed && keyGiven,
		CreatedAt: now, UpdatedAt: now,
	}, nil
}

// Get returns one workspace.
func (s *Service) Get(ctx context.Context, id string) (Workspace, error) {
	w, err := s.store.GetWorkspace(ctx, id)
	if err != nil {
		return Workspace{}, fmt.Errorf("getting workspace %q: %w", id, err)
	}
	return w, nil
}

// List returns up to limit workspaces after the cursor (an id), and the cursor of the next page ("" at the end).
func (s *Service) List(ctx context.Context, after string, limit int) ([]Workspace, string, error) {
	if limit <= 0 || limit > 1000 {
		return nil, "", errs.Invalid("limit", "must be between 1 and 1000")
	}
	items, err := s.store.ListWorkspaces(ctx, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("listing workspaces: %w", err)
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].ID
	}
	return items, next, nil
}

// UpdateInput holds the fields a PATCH may change; nil means unchanged.
type UpdateInput struct {
	Name     *string `json:"name"`
	WriteKey *string `json:"write_key"`
	// Settings replaces the settings as a whole.
	Settings *Settings `json:"settings"`
}

// Update applies in to the workspace, atomically with respect to other updates. A workspace declared in the
// configuration file refuses name changes, and write key changes when the file declares the key: the file is their
// source of truth.
func (s *Service) Update(ctx context.Context, id string, in UpdateInput) (Workspace, error) {
	v := &errs.ValidationError{}
	var name string
	if in.Name != nil {
		name = strings.TrimSpace(*in.Name)
		if name == "" {
			v.Add("name", "must not be empty")
		} else if err := ValidateName(name); err != nil {
			v.Add("name", "%s", err)
		}
	}
	if in.WriteKey != nil {
		if err := ValidateWriteKey(*in.WriteKey); err != nil {
			v.Add("write_key", "%s", err)
		}
	}
	if in.Settings != nil {
		in.Settings.Validate(v)
	}
	if err := v.OrNil(); err != nil {
		return Workspace{}, err
	}
	now := s.now().UTC()
	w, err := s.store.UpdateWorkspace(ctx, id, func(w *Workspace) error {
		if in.Settings != nil {
			w.Settings = *in.Settings
		}
		if in.Name != nil {
			if w.Managed {
				return fmt.Errorf("workspace %q is declared in the configuration file; change its name there: %w", id, errs.ErrConflict)
			}
			w.Name = name
		}
		if in.WriteKey != nil {
			if w.ManagedWriteKey {
				return fmt.Errorf("the write key of workspace %q is declared in the configuration file; change it there: %w", id, errs.ErrConflict)
			}
			w.WriteKey = *in.WriteKey
		}
		w.UpdatedAt = now
		return nil
	})
	if err != nil {
		return Workspace{}, fmt.Errorf("updating workspace %q: %w", id, err)
	}
	return w, nil
}

// RotateWriteKey gives the workspace a new random write key and returns the updated workspace. The old key stops
// working at once.
func (s *Service) RotateWriteKey(ctx context.Context, id string) (Workspace, error) {
	key := NewWriteKey()
	return s.Update(ctx, id, UpdateInput{WriteKey: &key})
}

// Delete removes the workspace, its data file and its tokens. confirm must equal the id: deleting a client's data is
// not something to do by accident. Workspaces declared in the file are refused.
func (s *Service) Delete(ctx context.Context, id, confirm string) error {
	if confirm != id {
		return errs.Invalid("confirm", "deleting workspace %q removes all its data: repeat its id as ?confirm=%s", id, id)
	}
	w, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if w.Managed {
		return fmt.Errorf("workspace %q is declared in the configuration file; remove it there first: %w", id, errs.ErrConflict)
	}
	if err := s.store.DeleteWorkspace(ctx, id); err != nil {
		return fmt.Errorf("deleting workspace %q: %w", id, err)
	}
	s.log.Info("workspace deleted", "workspace", id)
	return nil
}

// Declared is a workspace as the configuration file declares it.
type Declared struct {
	ID       string
	Name     string
	WriteKey string
}

// Reconcile makes the store match the declared workspaces: creates missing ones, updates the declared fields of
// existing ones and marks them managed; workspaces that were managed but are no longer declared become ordinary
// (API-managed) workspaces, never deleted. If after that no workspace exists at all, the default workspace is
// created so that a fresh install is usable at once.
func (s *Service) Reconcile(ctx context.Context, declared []Declared) error {
	seen := make(map[string]bool, len(declared))
	for _, decl := range declared {
		d, err := normalize(CreateInput(decl))
		if err != nil {
			return fmt.Errorf("declared workspace %q: %w", decl.ID, err)
		}
		seen[d.ID] = true
		now := s.now().UTC()
		_, err = s.store.UpdateWorkspace(ctx, d.ID, func(w *Workspace) error {
			changed := !w.Managed || w.ManagedWriteKey != (d.WriteKey != "")
			if d.Name != "" && d.Name != w.Name {
				w.Name, changed = d.Name, true
			}
			if d.WriteKey != "" && d.WriteKey != w.WriteKey {
				w.WriteKey, changed = d.WriteKey, true
			}
			w.Managed, w.ManagedWriteKey = true, d.WriteKey != ""
			if changed {
				w.UpdatedAt = now
			}
			return nil
		})
		switch {
		case err == nil:
		case isNotFound(err):
			w, err := s.build(d, true)
			if err != nil {
				return fmt.Errorf("declared workspace %q: %w", d.ID, err)
			}
			if err := s.store.CreateWorkspace(ctx, w); err != nil {
				return fmt.Errorf("creating declared workspace %q: %w", d.ID, err)
			}
			s.log.Info("declared workspace created", "workspace", d.ID)
		default:
			return fmt.Errorf("updating declared workspace %q: %w", d.ID, err)
		}
	}
	all, err := s.store.ListWorkspaces(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("listing workspaces: %w", err)
	}
	for _, w := range all {
		if w.Managed && !seen[w.ID] {
			now := s.now().UTC()
			_, err := s.store.UpdateWorkspace(ctx, w.ID, func(w *Workspace) error {
				w.Managed, w.ManagedWriteKey, w.UpdatedAt = false, false, now
				return nil
			})
			if err != nil {
				return fmt.Errorf("releasing workspace %q: %w", w.ID, err)
			}
			s.log.Info("workspace no longer declared in the file; now managed through the API", "workspace", w.ID)
		}
	}
	if len(all) == 0 {
		if _, err := s.Create(ctx, CreateInput{ID: DefaultID, Name: "Default"}); err != nil {
			return err
		}
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, errs.ErrNotFound) }
