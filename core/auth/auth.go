// Package auth owns who may call Crosscast: API tokens (stored hashed, scoped to one workspace or to all, each with
// a role), the optional bootstrap token from the configuration, and the permission checks every request goes
// through.
//
// It imports only the standard library, go-hclog and core/errs. Tokens are persisted through the Store interface,
// implemented in core/store.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/hashicorp/go-hclog"
)

// Role is what a token may do inside its scope. Roles are ordered: each includes the rights of the ones below.
type Role string

// The roles, from most to least powerful.
const (
	// RoleOwner may do everything, including creating and deleting workspaces (when its scope is global) and
	// issuing owner tokens.
	RoleOwner Role = "owner"
	// RoleAdmin manages a workspace: settings, write keys, tokens up to admin.
	RoleAdmin Role = "admin"
	// RoleEditor changes a workspace's data: contacts, segments, campaigns.
	RoleEditor Role = "editor"
	// RoleViewer reads a workspace's data.
	RoleViewer Role = "viewer"
)

func (r Role) rank() int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleEditor:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// Token is an API token as stored: its secret only as a SHA-256 hash.
type Token struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Workspace is the only workspace the token can act on; "" means every workspace.
	Workspace  string    `json:"workspace"`
	SecretHash []byte    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	// CreatedBy is the id of the token that issued this one ("bootstrap" for the configured bootstrap token,
	// "system" for the token generated on first start).
	CreatedBy string `json:"created_by"`
}

// Store persists tokens. CreateToken must fail with errs.ErrNotFound when the token's workspace does not exist
// (checked in the same transaction, so a token can never outlive its workspace).
type Store interface {
	CreateToken(ctx context.Context, t Token) error
	GetToken(ctx context.Context, id string) (Token, error)
	// ListTokens returns every token in id order. Tokens are few (people and integrations), so no paging here.
	ListTokens(ctx context.Context) ([]Token, error)
	DeleteToken(ctx context.Context, id string) error
}

// Principal is the authenticated caller of a request.
type Principal struct {
	TokenID   string `json:"token_id"`
	Name      string `json:"name"`
	Role      Role   `json:"role"`
	Workspace string `json:"workspace"`
}

// Allows reports whether p holds at least role min on workspace ws. ws == "" asks for a server-wide right, which
// only tokens scoped to every workspace have.
func (p Principal) Allows(min Role, ws string) bool {
	if !min.Valid() {
		return false // fail closed on a programming error
	}
	if p.Workspace != "" && p.Workspace != ws {
		return false
	}
	return p.Role.rank() >= min.rank()
}

// SeesPII reports whether p may read contacts' personal data unmasked: editors and above may; viewers see the
// fields their workspace marks as PII masked.
func (p Principal) SeesPII() bool { return p.Role.rank() >= RoleEditor.rank() }

// Require returns errs.ErrForbidden, with what was missing, unless p.Allows(min, ws).
func (p Principal) Require(min Role, ws string) error {
	if p.Allows(min, ws) {
		return nil
	}
	scope := "server-wide"
	if ws != "" {
		scope = fmt.Sprintf("on workspace %q", ws)
	}
	return fmt.Errorf("this needs the %s role %s: %w", min, scope, errs.ErrForbidden)
}

const tokenPrefix = "cct_"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(b32.EncodeToString(b))
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Service issues, authenticates, lists and revokes tokens.
type Service struct {
	store     Store
	bootstrap []byte // hash of the configured bootstrap token, nil if none
	log       hclog.Logger
	now       func() time.Time
}

// NewService returns a Service. bootstrapToken is the configured owner token ("" for none); now may be nil.
func NewService(store Store, bootstrapToken string, log hclog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{store: store, log: log.Named("auth"), now: now}
	if bootstrapToken != "" {
		s.bootstrap = hashSecret(bootstrapToken)
	}
	return s
}

// Authenticate resolves a bearer token to its Principal, or errs.ErrUnauthorized. The configured bootstrap token
// is an owner of every workspace. Secrets are compared in constant time.
func (s *Service) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	if bearer == "" {
		return Principal{}, fmt.Errorf("missing bearer token (send Authorization: Bearer <token>): %w", errs.ErrUnauthorized)
	}
	if s.bootstrap != nil && subtle.ConstantTimeCompare(hashSecret(bearer), s.bootstrap) == 1 {
		return Principal{TokenID: "bootstrap", Name: "bootstrap token (config)", Role: RoleOwner}, nil
	}
	id, secret, ok := parseToken(bearer)
	if !ok {
		return Principal{}, fmt.Errorf("malformed token: %w", errs.ErrUnauthorized)
	}
	t, err := s.store.GetToken(ctx, id)
	if errors.Is(err, errs.ErrNotFound) {
		return Principal{}, fmt.Errorf("unknown or revoked token: %w", errs.ErrUnauthorized)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("reading token: %w", err)
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), t.SecretHash) != 1 {
		return Principal{}, fmt.Errorf("unknown or revoked token: %w", errs.ErrUnauthorized)
	}
	return Principal{TokenID: t.ID, Name: t.Name, Role: t.Role, Workspace: t.Workspace}, nil
}

// parseToken splits "cct_<id>_<secret>".
func parseToken(s string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(s, tokenPrefix)
	if !found {
		return "", "", false
	}
	id, secret, found = strings.Cut(rest, "_")
	if !found || len(id) != 16 || len(secret) < 32 || len(secret) > 64 {
		return "", "", false
	}
	return id, secret, true
}

// IssueInput is what a caller asks for when creating a token.
type IssueInput struct {
	Name      string `json:"name"`
	Role      Role   `json:"role"`
	Workspace string `json:"workspace"`
}

// Issue creates a token and returns it with its secret, which is shown this once and never stored. A caller may
// only issue tokens within its own scope and up to its own role, and needs at least admin to issue any.
func (s *Service) Issue(ctx context.Context, by Principal, in IssueInput) (Token, string, error) {
	v := &errs.ValidationError{}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 100 {
		v.Add("name", "must be 1 to 100 characters")
	}
	if !in.Role.Valid() {
		v.Add("role", "%q must be one of owner, admin, editor, viewer", in.Role)
	}
	if err := v.OrNil(); err != nil {
		return Token{}, "", err
	}
	if err := by.Require(RoleAdmin, in.Workspace); err != nil {
		return Token{}, "", err
	}
	if in.Role.rank() > by.Role.rank() {
		return Token{}, "", fmt.Errorf("cannot issue a %s token with a %s token: %w", in.Role, by.Role, errs.ErrForbidden)
	}
	return s.issue(ctx, in, by.TokenID)
}

func (s *Service) issue(ctx context.Context, in IssueInput, createdBy string) (Token, string, error) {
	id := randomString(10) // 16 base32 characters
	secret := randomString(20)
	t := Token{
		ID: id, Name: in.Name, Role: in.Role, Workspace: in.Workspace,
		SecretHash: hashSecret(secret), CreatedAt: s.now().UTC(), CreatedBy: createdBy,
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return Token{}, "", fmt.Errorf("creating token: %w", err)
	}
	s.log.Info("token issued", "token", id, "role", in.Role, "workspace", in.Workspace, "by", createdBy)
	return t, tokenPrefix + id + "_" + secret, nil
}

// List returns the tokens by may see, in id order, after the cursor: every token for a server-wide owner,
// otherwise the tokens of by's workspace (admin role needed). The next cursor is "" on the last page.
func (s *Service) List(ctx context.Context, by Principal, after string, limit int) ([]Token, string, error) {
	if limit <= 0 || limit > 1000 {
		return nil, "", errs.Invalid("limit", "must be between 1 and 1000")
	}
	if err := by.Require(RoleAdmin, by.Workspace); err != nil {
		return nil, "", err
	}
	all, err := s.store.ListTokens(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("listing tokens: %w", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	var out []Token
	for _, t := range all {
		if t.ID <= after || !by.Allows(RoleAdmin, t.Workspace) {
			continue
		}
		if len(out) == limit {
			return out, out[limit-1].ID, nil
		}
		out = append(out, t)
	}
	return out, "", nil
}

// Revoke deletes a token. A caller may revoke its own token and any token it could have issued.
func (s *Service) Revoke(ctx context.Context, by Principal, id string) error {
	t, err := s.store.GetToken(ctx, id)
	if err != nil {
		return fmt.Errorf("revoking token %q: %w", id, err)
	}
	if t.ID != by.TokenID {
		if by.Workspace != "" && t.Workspace != by.Workspace {
			// Tokens of other workspaces do not exist for a scoped caller: saying "forbidden" would name the workspace.
			return fmt.Errorf("revoking token %q: %w", id, errs.ErrNotFound)
		}
		if err := by.Require(RoleAdmin, t.Workspace); err != nil {
			return err
		}
		if t.Role.rank() > by.Role.rank() {
			return fmt.Errorf("cannot revoke a %s token with a %s token: %w", t.Role, by.Role, errs.ErrForbidden)
		}
	}
	if err := s.store.DeleteToken(ctx, id); err != nil {
		return fmt.Errorf("revoking token %q: %w", id, err)
	}
	s.log.Info("token revoked", "token", id, "by", by.TokenID)
	return nil
}

// EnsureOwner makes sure someone can administer the server. When no bootstrap token is configured and no
// server-wide owner token exists (a first start, or every owner token was revoked), it issues one and returns its
// secret for the caller to print once. Otherwise it returns "".
func (s *Service) EnsureOwner(ctx context.Context) (string, error) {
	if s.bootstrap != nil {
		return "", nil
	}
	all, err := s.store.ListTokens(ctx)
	if err != nil {
		return "", fmt.Errorf("listing tokens: %w", err)
	}
	for _, t := range all {
		if t.Role == RoleOwner && t.Workspace == "" {
			return "", nil
		}
	}
	_, secret, err := s.issue(ctx, IssueInput{Name: "bootstrap (generated on first start)", Role: RoleOwner}, "system")
	return secret, err
}
