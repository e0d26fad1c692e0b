package auth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

// tokenFormat is the documented shape of an issued secret: "cct_", a 16 character id, "_", the secret.
var tokenFormat = regexp.MustCompile(`^cct_([a-z2-7]{16})_([a-z2-7]{32,64})$`)

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Debug})
}

// env is a real store in a temporary data dir with an auth service on top and a server-wide owner token.
type env struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	store *store.Store
	svc   *auth.Service
	owner auth.Principal
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), store.Options{Dir: dir, LockTimeout: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("store.Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return st
}

// newEnv opens a store, creates the given workspaces and, unless bootstrap is set, an owner token through
// EnsureOwner. With a bootstrap token, the owner is the bootstrap principal.
func newEnv(t *testing.T, bootstrap string, workspaceIDs ...string) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st := openStore(t, dir)
	wsSvc := workspaces.NewService(st, testLogger(t), nil)
	for _, id := range workspaceIDs {
		if _, err := wsSvc.Create(ctx, workspaces.CreateInput{ID: id}); err != nil {
			t.Fatalf("creating workspace %q: %v", id, err)
		}
	}
	e := &env{t: t, ctx: ctx, dir: dir, store: st, svc: auth.NewService(st, bootstrap, testLogger(t), func() time.Time { return fixedNow })}
	var secret string
	if bootstrap != "" {
		secret = bootstrap
	} else {
		var err error
		secret, err = e.svc.EnsureOwner(ctx)
		if err != nil || secret == "" {
			t.Fatalf("EnsureOwner on an empty store = %q, %v; want a secret", secret, err)
		}
	}
	e.owner = e.authenticate(secret)
	if e.owner.Role != auth.RoleOwner || e.owner.Workspace != "" {
		t.Fatalf("owner principal = %+v, want a server-wide owner", e.owner)
	}
	return e
}

func (e *env) authenticate(secret string) auth.Principal {
	e.t.Helper()
	p, err := e.svc.Authenticate(e.ctx, secret)
	if err != nil {
		e.t.Fatalf("Authenticate(%q): %v", secret, err)
	}
	return p
}

// issued is a token created in a test, with its secret and the principal it authenticates as.
type issued struct {
	token  auth.Token
	secret string
	p      auth.Principal
}

// issue creates a token as the server-wide owner.
func (e *env) issue(name string, role auth.Role, ws string) issued {
	e.t.Helper()
	tok, secret, err := e.svc.Issue(e.ctx, e.owner, auth.IssueInput{Name: name, Role: role, Workspace: ws})
	if err != nil {
		e.t.Fatalf("Issue(%s, %s, %q): %v", name, role, ws, err)
	}
	return issued{token: tok, secret: secret, p: e.authenticate(secret)}
}

func (e *env) tokenExists(id string) bool {
	e.t.Helper()
	_, err := e.store.GetToken(e.ctx, id)
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		e.t.Fatalf("GetToken(%q): %v", id, err)
	}
	return err == nil
}

// wantValidation fails unless err is an *errs.ValidationError naming field.
func wantValidation(t *testing.T, err error, field string) {
	t.Helper()
	var v *errs.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("err = %v (%T), want *errs.ValidationError on %q", err, err, field)
	}
	for _, f := range v.Fields {
		if f.Field == field {
			if f.Message == "" {
				t.Errorf("field %q has an empty message", field)
			}
			return
		}
	}
	t.Fatalf("validation error %v does not name field %q", v, field)
}

func TestIssueAndAuthenticate(t *testing.T) {
	e := newEnv(t, "", "acme")
	tok, secret, err := e.svc.Issue(e.ctx, e.owner, auth.IssueInput{Name: "  ci pipeline  ", Role: auth.RoleEditor, Workspace: "acme"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	m := tokenFormat.FindStringSubmatch(secret)
	if m == nil {
		t.Fatalf("secret %q does not match %s", secret, tokenFormat)
	}
	if m[1] != tok.ID {
		t.Errorf("id in secret = %q, token id = %q", m[1], tok.ID)
	}
	if tok.Name != "ci pipeline" || tok.Role != auth.RoleEditor || tok.Workspace != "acme" ||
		tok.CreatedBy != e.owner.TokenID || !tok.CreatedAt.Equal(fixedNow) {
		t.Errorf("issued token = %+v", tok)
	}
	revoked := e.issue("revoked", auth.RoleViewer, "acme")
	if err := e.svc.Revoke(e.ctx, e.owner, revoked.token.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}

	// A wrong secret of the right shape for the real id: flip the last character.
	last := secret[len(secret)-1]
	flip := byte('a')
	if last == 'a' {
		flip = 'b'
	}
	wrongSecret := secret[:len(secret)-1] + string(flip)
	unknownID := "cct_" + strings.Repeat("a", 16) + "_" + strings.Repeat("b", 32)
	if tok.ID == strings.Repeat("a", 16) {
		t.Fatal("random id collided with the test's unknown id")
	}

	tests := []struct {
		name   string
		bearer string
		want   auth.Principal // zero: want ErrUnauthorized
	}{
		{"valid", secret, auth.Principal{TokenID: tok.ID, Name: "ci pipeline", Role: auth.RoleEditor, Workspace: "acme"}},
		{"wrong secret valid id", wrongSecret, auth.Principal{}},
		{"secret of another token", "cct_" + tok.ID + "_" + strings.Split(revoked.secret, "_")[2], auth.Principal{}},
		{"unknown id", unknownID, auth.Principal{}},
		{"revoked", revoked.secret, auth.Principal{}},
		{"empty", "", auth.Principal{}},
		{"no prefix", strings.TrimPrefix(secret, "cct_"), auth.Principal{}},
		{"upper-case prefix", "CCT_" + strings.TrimPrefix(secret, "cct_"), auth.Principal{}},
		{"with Bearer", "Bearer " + secret, auth.Principal{}},
		{"trailing space", secret + " ", auth.Principal{}},
		{"no secret part", "cct_" + tok.ID, auth.Principal{}},
		{"short id", "cct_abc_" + strings.Repeat("b", 32), auth.Principal{}},
		{"short secret", "cct_" + tok.ID + "_" + strings.Repeat("b", 31), auth.Principal{}},
		{"long secret", "cct_" + tok.ID + "_" + strings.Repeat("b", 65), auth.Principal{}},
		{"garbage", "not a token", auth.Principal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.svc.Authenticate(e.ctx, tt.bearer)
			if tt.want == (auth.Principal{}) {
				if !errors.Is(err, errs.ErrUnauthorized) {
					t.Fatalf("Authenticate(%q) = %+v, %v; want ErrUnauthorized", tt.bearer, got, err)
				}
				if got != (auth.Principal{}) {
					t.Errorf("principal on failure = %+v, want zero", got)
				}
				if strings.Contains(err.Error(), tt.bearer) && tt.bearer != "" {
					t.Errorf("error %q echoes the bearer token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if got != tt.want {
				t.Errorf("principal = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIssueSecretsAreUnique(t *testing.T) {
	e := newEnv(t, "")
	ids, secrets := map[string]bool{}, map[string]bool{}
	for range 50 {
		it := e.issue("t", auth.RoleViewer, "")
		if ids[it.token.ID] || secrets[it.secret] {
			t.Fatalf("duplicate token id or secret: %s", it.token.ID)
		}
		ids[it.token.ID], secrets[it.secret] = true, true
	}
}

func TestStoredTokenHasOnlyTheHash(t *testing.T) {
	e := newEnv(t, "", "acme")
	it := e.issue("integration", auth.RoleAdmin, "acme")
	secretPart := tokenFormat.FindStringSubmatch(it.secret)[2]
	wantHash := sha256.Sum256([]byte(secretPart))

	check := func(t *testing.T, where string, tok auth.Token) {
		t.Helper()
		if !bytes.Equal(tok.SecretHash, wantHash[:]) {
			t.Errorf("%s: SecretHash = %x, want sha256 of the secret %x", where, tok.SecretHash, wantHash)
		}
		for _, f := range []string{tok.ID, tok.Name, string(tok.Role), tok.Workspace, tok.CreatedBy} {
			if strings.Contains(f, secretPart) {
				t.Errorf("%s: field %q contains the secret", where, f)
			}
		}
		data, err := json.Marshal(tok)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(secretPart)) {
			t.Errorf("%s: JSON %s contains the secret", where, data)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			if strings.Contains(strings.ToLower(k), "secret") || strings.Contains(strings.ToLower(k), "hash") {
				t.Errorf("%s: JSON exposes key %q", where, k)
			}
		}
	}

	t.Run("issue result", func(t *testing.T) { check(t, "Issue", it.token) })
	t.Run("GetToken", func(t *testing.T) {
		tok, err := e.store.GetToken(e.ctx, it.token.ID)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "GetToken", tok)
	})
	t.Run("ListTokens", func(t *testing.T) {
		all, err := e.store.ListTokens(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, tok := range all {
			if tok.ID == it.token.ID {
				found = true
				check(t, "ListTokens", tok)
			}
		}
		if !found {
			t.Fatalf("ListTokens has no token %s", it.token.ID)
		}
	})
	t.Run("List", func(t *testing.T) {
		toks, _, err := e.svc.List(e.ctx, e.owner, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range toks {
			if tok.ID == it.token.ID {
				check(t, "List", tok)
			}
		}
	})
	t.Run("data file", func(t *testing.T) {
		if err := e.store.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(e.dir, "system.db"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte(it.token.ID)) {
			t.Fatalf("system.db does not contain token id %s: wrong file?", it.token.ID)
		}
		if bytes.Contains(raw, []byte(secretPart)) {
			t.Error("system.db contains the token secret in clear")
		}
	})
}

func TestBootstrapToken(t *testing.T) {
	const bootstrap = "bootstrap-0123456789abcdefghijkl"
	e := newEnv(t, bootstrap, "acme")
	sameLength := bootstrap[:len(bootstrap)-1] + "m"
	if len(sameLength) != len(bootstrap) || sameLength == bootstrap {
		t.Fatal("test setup: sameLength must differ from the bootstrap token at equal length")
	}
	tests := []struct {
		name   string
		bearer string
		ok     bool
	}{
		{"configured token", bootstrap, true},
		{"same length, last char differs", sameLength, false},
		{"same length, first char differs", "B" + bootstrap[1:], false},
		{"prefix", bootstrap[:len(bootstrap)-1], false},
		{"longer", bootstrap + "x", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.svc.Authenticate(e.ctx, tt.bearer)
			if !tt.ok {
				if !errors.Is(err, errs.ErrUnauthorized) {
					t.Fatalf("Authenticate(%q) = %+v, %v; want ErrUnauthorized", tt.bearer, p, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Role != auth.RoleOwner || p.Workspace != "" || p.TokenID == "" {
				t.Fatalf("bootstrap principal = %+v, want server-wide owner", p)
			}
			for _, ws := range []string{"", "acme", "anything"} {
				if !p.Allows(auth.RoleOwner, ws) {
					t.Errorf("bootstrap principal does not allow owner on %q", ws)
				}
			}
		})
	}
	t.Run("can issue server-wide owner tokens", func(t *testing.T) {
		it := e.issue("second owner", auth.RoleOwner, "")
		if it.p.Role != auth.RoleOwner || it.p.Workspace != "" || it.token.CreatedBy != "bootstrap" {
			t.Errorf("token issued by bootstrap = %+v, principal %+v", it.token, it.p)
		}
	})
}

func TestIssuePermissions(t *testing.T) {
	e := newEnv(t, "", "a", "b")
	principals := map[string]auth.Principal{
		"owner":   e.owner,
		"ownerA":  e.issue("owner a", auth.RoleOwner, "a").p,
		"adminA":  e.issue("admin a", auth.RoleAdmin, "a").p,
		"adminG":  e.issue("admin global", auth.RoleAdmin, "").p,
		"editorA": e.issue("editor a", auth.RoleEditor, "a").p,
		"viewerA": e.issue("viewer a", auth.RoleViewer, "a").p,
		"editorG": e.issue("editor global", auth.RoleEditor, "").p,
	}
	tests := []struct {
		name    string
		by      string
		in      auth.IssueInput
		wantErr error  // nil: success
		field   string // want a validation error on this field
	}{
		{"owner: owner server-wide", "owner", auth.IssueInput{Name: "n", Role: auth.RoleOwner}, nil, ""},
		{"owner: owner for b", "owner", auth.IssueInput{Name: "n", Role: auth.RoleOwner, Workspace: "b"}, nil, ""},
		{"owner: admin for a", "owner", auth.IssueInput{Name: "n", Role: auth.RoleAdmin, Workspace: "a"}, nil, ""},
		{"owner: editor server-wide", "owner", auth.IssueInput{Name: "n", Role: auth.RoleEditor}, nil, ""},
		{"owner: viewer for b", "owner", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "b"}, nil, ""},
		{"owner: unknown workspace", "owner", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "nope"}, errs.ErrNotFound, ""},
		{"scoped owner: owner for own", "ownerA", auth.IssueInput{Name: "n", Role: auth.RoleOwner, Workspace: "a"}, nil, ""},
		{"scoped owner: server-wide", "ownerA", auth.IssueInput{Name: "n", Role: auth.RoleViewer}, errs.ErrForbidden, ""},
		{"adminA: admin for a", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleAdmin, Workspace: "a"}, nil, ""},
		{"adminA: editor for a", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleEditor, Workspace: "a"}, nil, ""},
		{"adminA: viewer for a", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "a"}, nil, ""},
		{"adminA: owner for a", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleOwner, Workspace: "a"}, errs.ErrForbidden, ""},
		{"adminA: admin for b", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleAdmin, Workspace: "b"}, errs.ErrForbidden, ""},
		{"adminA: viewer for b", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "b"}, errs.ErrForbidden, ""},
		{"adminA: admin server-wide", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleAdmin}, errs.ErrForbidden, ""},
		{"adminA: viewer server-wide", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleViewer}, errs.ErrForbidden, ""},
		{"adminA: unknown workspace is forbidden, not found", "adminA", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "nope"}, errs.ErrForbidden, ""},
		{"server-wide admin: admin for b", "adminG", auth.IssueInput{Name: "n", Role: auth.RoleAdmin, Workspace: "b"}, nil, ""},
		{"server-wide admin: owner", "adminG", auth.IssueInput{Name: "n", Role: auth.RoleOwner}, errs.ErrForbidden, ""},
		{"editorA: viewer for a", "editorA", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "a"}, errs.ErrForbidden, ""},
		{"editorA: editor for a", "editorA", auth.IssueInput{Name: "n", Role: auth.RoleEditor, Workspace: "a"}, errs.ErrForbidden, ""},
		{"viewerA: viewer for a", "viewerA", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "a"}, errs.ErrForbidden, ""},
		{"server-wide editor: viewer for a", "editorG", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "a"}, errs.ErrForbidden, ""},
		{"unauthenticated zero principal", "", auth.IssueInput{Name: "n", Role: auth.RoleViewer, Workspace: "a"}, errs.ErrForbidden, ""},
		{"invalid role", "owner", auth.IssueInput{Name: "n", Role: "superuser"}, nil, "role"},
		{"empty role", "owner", auth.IssueInput{Name: "n"}, nil, "role"},
		{"empty name", "owner", auth.IssueInput{Name: "", Role: auth.RoleViewer}, nil, "name"},
		{"blank name", "owner", auth.IssueInput{Name: "   ", Role: auth.RoleViewer}, nil, "name"},
		{"name too long", "owner", auth.IssueInput{Name: strings.Repeat("x", 101), Role: auth.RoleViewer}, nil, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			by := principals[tt.by]
			before, err := e.store.ListTokens(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			tok, secret, err := e.svc.Issue(e.ctx, by, tt.in)
			switch {
			case tt.field != "":
				wantValidation(t, err, tt.field)
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Issue = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				p, err := e.svc.Authenticate(e.ctx, secret)
				if err != nil {
					t.Fatalf("authenticating the issued token: %v", err)
				}
				want := auth.Principal{TokenID: tok.ID, Name: strings.TrimSpace(tt.in.Name), Role: tt.in.Role, Workspace: tt.in.Workspace}
				if p != want {
					t.Errorf("issued principal = %+v, want %+v", p, want)
				}
				if tok.CreatedBy != by.TokenID {
					t.Errorf("CreatedBy = %q, want %q", tok.CreatedBy, by.TokenID)
				}
				return
			}
			if tok.ID != "" || secret != "" {
				t.Errorf("failed Issue returned token %+v / secret %q", tok, secret)
			}
			after, err := e.store.ListTokens(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Errorf("failed Issue changed the token count from %d to %d", len(before), len(after))
			}
		})
	}
}

func ids(toks []auth.Token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

func TestList(t *testing.T) {
	e := newEnv(t, "", "a", "b")
	adminA := e.issue("admin a", auth.RoleAdmin, "a")
	ownerA := e.issue("owner a", auth.RoleOwner, "a")
	editorA := e.issue("editor a", auth.RoleEditor, "a")
	viewerA := e.issue("viewer a", auth.RoleViewer, "a")
	for i := range 4 {
		e.issue("more a", []auth.Role{auth.RoleViewer, auth.RoleEditor}[i%2], "a")
	}
	for range 3 {
		e.issue("b", auth.RoleAdmin, "b")
	}
	e.issue("global viewer", auth.RoleViewer, "")
	adminG := e.issue("global admin", auth.RoleAdmin, "")

	all, err := e.store.ListTokens(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var allIDs, aIDs []string
	for _, tok := range all {
		allIDs = append(allIDs, tok.ID)
		if tok.Workspace == "a" {
			aIDs = append(aIDs, tok.ID)
		}
	}
	slices.Sort(allIDs)
	slices.Sort(aIDs)
	if len(allIDs) != 14 || len(aIDs) != 8 {
		t.Fatalf("setup: %d tokens, %d in a; want 14 and 8", len(allIDs), len(aIDs))
	}

	tests := []struct {
		name    string
		by      auth.Principal
		want    []string
		wantErr error
	}{
		{"server-wide owner sees all", e.owner, allIDs, nil},
		{"server-wide admin sees all", adminG.p, allIDs, nil},
		{"scoped admin sees its workspace", adminA.p, aIDs, nil},
		{"scoped owner sees its workspace", ownerA.p, aIDs, nil},
		{"scoped editor forbidden", editorA.p, nil, errs.ErrForbidden},
		{"scoped viewer forbidden", viewerA.p, nil, errs.ErrForbidden},
		{"zero principal forbidden", auth.Principal{}, nil, errs.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantErr != nil {
				got, next, err := e.svc.List(e.ctx, tt.by, "", 100)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("List = %v, %q, %v; want %v", ids(got), next, err, tt.wantErr)
				}
				if len(got) != 0 || next != "" {
					t.Errorf("forbidden List returned %v, %q", ids(got), next)
				}
				return
			}
			for _, limit := range []int{1, 2, 3, 4, 7, 8, 9, 13, 14, 15, 1000} {
				var seen []string
				after, pages := "", 0
				for {
					page, next, err := e.svc.List(e.ctx, tt.by, after, limit)
					if err != nil {
						t.Fatalf("limit %d after %q: %v", limit, after, err)
					}
					pages++
					if len(page) > limit {
						t.Fatalf("limit %d: page of %d", limit, len(page))
					}
					seen = append(seen, ids(page)...)
					if next == "" {
						break
					}
					if len(page) != limit {
						t.Fatalf("limit %d: a non-final page has %d items", limit, len(page))
					}
					if next != page[len(page)-1].ID {
						t.Fatalf("limit %d: next cursor %q is not the last id of the page %q", limit, next, page[len(page)-1].ID)
					}
					if pages > len(allIDs)+1 {
						t.Fatalf("limit %d: paging does not end", limit)
					}
					after = next
				}
				if !slices.Equal(seen, tt.want) {
					t.Errorf("limit %d: visited %v, want each of %v once in id order", limit, seen, tt.want)
				}
				if wantPages := max(1, (len(tt.want)+limit-1)/limit); pages != wantPages {
					t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
				}
			}
		})
	}

	for _, limit := range []int{0, -1, 1001} {
		t.Run("invalid limit", func(t *testing.T) {
			_, _, err := e.svc.List(e.ctx, e.owner, "", limit)
			wantValidation(t, err, "limit")
		})
	}
}

func TestRevoke(t *testing.T) {
	type spec struct {
		role auth.Role
		ws   string
	}
	tests := []struct {
		name    string
		by      spec // auth.Role "" means the server-wide owner of the env
		target  spec
		self    bool
		wantErr error
	}{
		{"self viewer", spec{auth.RoleViewer, "a"}, spec{}, true, nil},
		{"self editor", spec{auth.RoleEditor, "a"}, spec{}, true, nil},
		{"self scoped admin", spec{auth.RoleAdmin, "a"}, spec{}, true, nil},
		{"self server-wide viewer", spec{auth.RoleViewer, ""}, spec{}, true, nil},
		{"self server-wide owner", spec{auth.RoleOwner, ""}, spec{}, true, nil},
		{"owner revokes scoped admin", spec{}, spec{auth.RoleAdmin, "b"}, false, nil},
		{"owner revokes server-wide owner", spec{}, spec{auth.RoleOwner, ""}, false, nil},
		{"scoped admin revokes viewer of its workspace", spec{auth.RoleAdmin, "a"}, spec{auth.RoleViewer, "a"}, false, nil},
		{"scoped admin revokes admin of its workspace", spec{auth.RoleAdmin, "a"}, spec{auth.RoleAdmin, "a"}, false, nil},
		{"scoped admin cannot revoke owner of its workspace", spec{auth.RoleAdmin, "a"}, spec{auth.RoleOwner, "a"}, false, errs.ErrForbidden},
		{"scoped admin does not see a server-wide viewer", spec{auth.RoleAdmin, "a"}, spec{auth.RoleViewer, ""}, false, errs.ErrNotFound},
		{"scoped admin does not see a server-wide owner", spec{auth.RoleAdmin, "a"}, spec{auth.RoleOwner, ""}, false, errs.ErrNotFound},
		{"scoped admin does not see another workspace's viewer", spec{auth.RoleAdmin, "a"}, spec{auth.RoleViewer, "b"}, false, errs.ErrNotFound},
		{"editor cannot revoke a viewer", spec{auth.RoleEditor, "a"}, spec{auth.RoleViewer, "a"}, false, errs.ErrForbidden},
		{"viewer cannot revoke another viewer", spec{auth.RoleViewer, "a"}, spec{auth.RoleViewer, "a"}, false, errs.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "", "a", "b")
			by := issued{p: e.owner}
			if tt.by.role != "" {
				by = e.issue("by", tt.by.role, tt.by.ws)
			}
			target := by
			if !tt.self {
				target = e.issue("target", tt.target.role, tt.target.ws)
			}
			err := e.svc.Revoke(e.ctx, by.p, target.token.ID)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Revoke = %v, want %v", err, tt.wantErr)
				}
				if !e.tokenExists(target.token.ID) {
					t.Error("refused Revoke deleted the token")
				}
				if _, err := e.svc.Authenticate(e.ctx, target.secret); err != nil {
					t.Errorf("token no longer authenticates after a refused Revoke: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if e.tokenExists(target.token.ID) {
				t.Error("token still stored after Revoke")
			}
			if _, err := e.svc.Authenticate(e.ctx, target.secret); !errors.Is(err, errs.ErrUnauthorized) {
				t.Errorf("revoked token authenticates: %v", err)
			}
			if target.token.ID != by.p.TokenID {
				if _, err := e.svc.Authenticate(e.ctx, by.secret); by.secret != "" && err != nil {
					t.Errorf("revoking another token broke the caller's own: %v", err)
				}
			}
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		e := newEnv(t, "")
		before, err := e.store.ListTokens(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{strings.Repeat("a", 16), "", "bootstrap"} {
			if err := e.svc.Revoke(e.ctx, e.owner, id); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("Revoke(%q) = %v, want ErrNotFound", id, err)
			}
		}
		after, err := e.store.ListTokens(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Errorf("token count changed from %d to %d", len(before), len(after))
		}
	})
	t.Run("twice", func(t *testing.T) {
		e := newEnv(t, "")
		it := e.issue("x", auth.RoleViewer, "")
		if err := e.svc.Revoke(e.ctx, e.owner, it.token.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Revoke(e.ctx, e.owner, it.token.ID); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("second Revoke = %v, want ErrNotFound", err)
		}
	})
}

func TestEnsureOwner(t *testing.T) {
	newSvc := func(t *testing.T, st *store.Store, bootstrap string) *auth.Service {
		return auth.NewService(st, bootstrap, testLogger(t), nil)
	}
	wantOwner := func(t *testing.T, svc *auth.Service, secret string) auth.Principal {
		t.Helper()
		if !tokenFormat.MatchString(secret) {
			t.Fatalf("EnsureOwner secret %q does not match %s", secret, tokenFormat)
		}
		p, err := svc.Authenticate(t.Context(), secret)
		if err != nil {
			t.Fatalf("generated owner token does not authenticate: %v", err)
		}
		if p.Role != auth.RoleOwner || p.Workspace != "" {
			t.Fatalf("generated token principal = %+v, want server-wide owner", p)
		}
		return p
	}
	countTokens := func(t *testing.T, st *store.Store) int {
		t.Helper()
		all, err := st.ListTokens(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}

	t.Run("empty store then second call", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		svc := newSvc(t, st, "")
		secret, err := svc.EnsureOwner(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p := wantOwner(t, svc, secret)
		tok, err := st.GetToken(t.Context(), p.TokenID)
		if err != nil {
			t.Fatal(err)
		}
		if tok.CreatedBy != "system" {
			t.Errorf("CreatedBy = %q, want system", tok.CreatedBy)
		}
		again, err := svc.EnsureOwner(t.Context())
		if err != nil || again != "" {
			t.Fatalf("second EnsureOwner = %q, %v; want \"\"", again, err)
		}
		if n := countTokens(t, st); n != 1 {
			t.Errorf("%d tokens after two calls, want 1", n)
		}
	})
	t.Run("survives a restart", func(t *testing.T) {
		dir := t.TempDir()
		st, err := store.Open(t.Context(), store.Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		secret, err := newSvc(t, st, "").EnsureOwner(t.Context())
		if err != nil || secret == "" {
			t.Fatalf("EnsureOwner = %q, %v", secret, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = openStore(t, dir)
		svc := newSvc(t, st, "")
		if again, err := svc.EnsureOwner(t.Context()); err != nil || again != "" {
			t.Fatalf("EnsureOwner after restart = %q, %v; want \"\"", again, err)
		}
		wantOwner(t, svc, secret)
	})
	t.Run("bootstrap configured", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		svc := newSvc(t, st, "configured-bootstrap-token-0123456789")
		secret, err := svc.EnsureOwner(t.Context())
		if err != nil || secret != "" {
			t.Fatalf("EnsureOwner = %q, %v; want \"\"", secret, err)
		}
		if n := countTokens(t, st); n != 0 {
			t.Errorf("%d tokens stored, want 0", n)
		}
	})
	t.Run("after revoking the only owner", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		svc := newSvc(t, st, "")
		first, err := svc.EnsureOwner(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p := wantOwner(t, svc, first)
		if err := svc.Revoke(t.Context(), p, p.TokenID); err != nil {
			t.Fatal(err)
		}
		second, err := svc.EnsureOwner(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if second == "" || second == first {
			t.Fatalf("EnsureOwner after revocation = %q, want a new secret", second)
		}
		wantOwner(t, svc, second)
		if _, err := svc.Authenticate(t.Context(), first); !errors.Is(err, errs.ErrUnauthorized) {
			t.Errorf("revoked owner token: %v, want ErrUnauthorized", err)
		}
	})
	t.Run("scoped owners and server-wide admins do not count", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		if _, err := workspaces.NewService(st, testLogger(t), nil).Create(t.Context(), workspaces.CreateInput{ID: "a"}); err != nil {
			t.Fatal(err)
		}
		svc := newSvc(t, st, "")
		first, err := svc.EnsureOwner(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p := wantOwner(t, svc, first)
		for _, in := range []auth.IssueInput{{Name: "o", Role: auth.RoleOwner, Workspace: "a"}, {Name: "g", Role: auth.RoleAdmin}} {
			if _, _, err := svc.Issue(t.Context(), p, in); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.Revoke(t.Context(), p, p.TokenID); err != nil {
			t.Fatal(err)
		}
		second, err := svc.EnsureOwner(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wantOwner(t, svc, second)
	})
}

func TestPrincipalAllowsRequire(t *testing.T) {
	owner := auth.Principal{TokenID: "o", Role: auth.RoleOwner}
	viewerG := auth.Principal{TokenID: "vg", Role: auth.RoleViewer}
	adminA := auth.Principal{TokenID: "aa", Role: auth.RoleAdmin, Workspace: "a"}
	editorA := auth.Principal{TokenID: "ea", Role: auth.RoleEditor, Workspace: "a"}
	viewerA := auth.Principal{TokenID: "va", Role: auth.RoleViewer, Workspace: "a"}
	ownerA := auth.Principal{TokenID: "oa", Role: auth.RoleOwner, Workspace: "a"}
	zero := auth.Principal{}
	bogus := auth.Principal{TokenID: "x", Role: "superuser"}

	tests := []struct {
		name string
		p    auth.Principal
		min  auth.Role
		ws   string
		want bool
	}{
		{"owner: owner server-wide", owner, auth.RoleOwner, "", true},
		{"owner: owner on a", owner, auth.RoleOwner, "a", true},
		{"owner: viewer on b", owner, auth.RoleViewer, "b", true},
		{"server-wide viewer: viewer server-wide", viewerG, auth.RoleViewer, "", true},
		{"server-wide viewer: viewer on a", viewerG, auth.RoleViewer, "a", true},
		{"server-wide viewer: editor on a", viewerG, auth.RoleEditor, "a", false},
		{"adminA: admin on a", adminA, auth.RoleAdmin, "a", true},
		{"adminA: editor on a", adminA, auth.RoleEditor, "a", true},
		{"adminA: viewer on a", adminA, auth.RoleViewer, "a", true},
		{"adminA: owner on a", adminA, auth.RoleOwner, "a", false},
		{"adminA: viewer on b", adminA, auth.RoleViewer, "b", false},
		{"adminA: viewer server-wide", adminA, auth.RoleViewer, "", false},
		{"editorA: editor on a", editorA, auth.RoleEditor, "a", true},
		{"editorA: admin on a", editorA, auth.RoleAdmin, "a", false},
		{"viewerA: viewer on a", viewerA, auth.RoleViewer, "a", true},
		{"viewerA: editor on a", viewerA, auth.RoleEditor, "a", false},
		{"ownerA: owner on a", ownerA, auth.RoleOwner, "a", true},
		{"ownerA: owner server-wide", ownerA, auth.RoleOwner, "", false},
		{"ownerA: viewer on b", ownerA, auth.RoleViewer, "b", false},
		{"zero principal: viewer server-wide", zero, auth.RoleViewer, "", false},
		{"zero principal: viewer on a", zero, auth.RoleViewer, "a", false},
		{"unknown role: viewer on a", bogus, auth.RoleViewer, "a", false},
		{"scoped viewer: workspace prefix is not its workspace", viewerA, auth.RoleViewer, "ab", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Allows(tt.min, tt.ws); got != tt.want {
				t.Errorf("%+v.Allows(%s, %q) = %v, want %v", tt.p, tt.min, tt.ws, got, tt.want)
			}
			err := tt.p.Require(tt.min, tt.ws)
			if tt.want {
				if err != nil {
					t.Errorf("Require = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, errs.ErrForbidden) {
				t.Fatalf("Require = %v, want ErrForbidden", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, string(tt.min)) {
				t.Errorf("Require error %q does not name the role %s", msg, tt.min)
			}
			wantScope := "server-wide"
			if tt.ws != "" {
				wantScope = `on workspace "` + tt.ws + `"`
			}
			if !strings.Contains(msg, wantScope) {
				t.Errorf("Require error %q does not say %s", msg, wantScope)
			}
		})
	}
}
