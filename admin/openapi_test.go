package admin_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"
)

// openAPIDoc is the part of docs/openapi.json the test reads; the rest stays raw for the $ref walk.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Paths map[string]map[string]json.RawMessage `json:"paths"`
	// Security is the default of every operation: the API's bearer token.
	Security   []map[string][]string `json:"security"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

// documentedRoute reports whether a registered route belongs to what docs/openapi.json describes: the campaign API
// and the public routes of messages' signed links.
func documentedRoute(path string) bool {
	return strings.Contains(path, "/campaigns") ||
		strings.HasPrefix(path, "/u/") || strings.HasPrefix(path, "/o/") || strings.HasPrefix(path, "/c/")
}

var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// openAPIPath turns fiber's "/workspaces/:id" into OpenAPI's "/workspaces/{id}".
func openAPIPath(path string) string { return fiberParam.ReplaceAllString(path, "{$1}") }

func readOpenAPI(t *testing.T) (openAPIDoc, any) {
	t.Helper()
	raw, err := os.ReadFile("../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	return doc, tree
}

// registeredRoutes are the method and OpenAPI path of every campaign and link route the server registers.
func registeredRoutes(t *testing.T) map[[2]string]bool {
	t.Helper()
	// The routes are registered whatever services are wired: a logger and metrics are all New needs.
	srv := admin.New(admin.Deps{Logger: hclog.NewNullLogger(), Metrics: metrics.NewRegistry()}, admin.Options{})
	out := map[[2]string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method == fiber.MethodHead || !documentedRoute(r.Path) {
			continue
		}
		out[[2]string{strings.ToLower(r.Method), openAPIPath(r.Path)}] = true
	}
	// Guard against a filter that silently keeps nothing: 14 campaign routes and 4 link routes exist today.
	if len(out) < 18 {
		t.Fatalf("found only %d campaign and link routes: %v", len(out), out)
	}
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	doc, _ := readOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi is %q, want 3.1.x", doc.OpenAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("info.title %q and info.version %q must both be set", doc.Info.Title, doc.Info.Version)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("security is %v, want the bearer token by default", doc.Security)
	}
	if sc := doc.Components.SecuritySchemes["bearerAuth"]; sc.Type != "http" || sc.Scheme != "bearer" {
		t.Errorf("components.securitySchemes.bearerAuth is %+v, want http bearer", sc)
	}
}

// TestOpenAPIRoutes fails when a campaign or link route is added without being described, and when the document
// describes a campaign or link operation the server does not serve.
func TestOpenAPIRoutes(t *testing.T) {
	doc, _ := readOpenAPI(t)
	routes := registeredRoutes(t)
	for r := range routes {
		method, path := r[0], r[1]
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("%s %s is served but docs/openapi.json does not describe it (paths[%q][%q])", strings.ToUpper(method), path, path, method)
			continue
		}
		// /api/v1 takes the default bearer token; the link routes are public (an explicit empty security).
		var op struct {
			Security *[]map[string][]string `json:"security"`
		}
		if err := json.Unmarshal(doc.Paths[path][method], &op); err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			continue
		}
		public := !strings.HasPrefix(path, "/api/v1/")
		if public && (op.Security == nil || len(*op.Security) != 0) {
			t.Errorf("%s %s needs no token: its operation must say \"security\": []", strings.ToUpper(method), path)
		}
		if !public && op.Security != nil {
			t.Errorf("%s %s needs the bearer token: its operation must not override security", strings.ToUpper(method), path)
		}
	}
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	for path, item := range doc.Paths {
		for method := range item {
			if !slices.Contains(methods, method) || !documentedRoute(path) {
				continue // parameters, summary, ...
			}
			if !routes[[2]string{method, path}] {
				t.Errorf("docs/openapi.json describes %s %s, which the server does not serve", strings.ToUpper(method), path)
			}
		}
	}
}

// TestOpenAPIRefs checks that every $ref points at an entry of the document's components.
func TestOpenAPIRefs(t *testing.T) {
	_, tree := readOpenAPI(t)
	n := 0
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "$ref" {
					n++
					ref, _ := child.(string)
					if !strings.HasPrefix(ref, "#/components/") {
						t.Errorf("%s: $ref %q is not local to #/components/", where, ref)
					} else if resolve(tree, ref) == nil {
						t.Errorf("%s: $ref %q resolves to nothing", where, ref)
					}
					continue
				}
				walk(where+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(where+"/"+strconv.Itoa(i), child)
			}
		}
	}
	walk("#", tree)
	if n == 0 {
		t.Fatal("no $ref at all: the walk is broken")
	}
	schemas := resolve(tree, "#/components/schemas")
	for _, name := range []string{"Campaign", "Input", "View", "Counts", "Message", "AuditEntry", "Rendered", "TestInput", "Stats", "VariantStats", "Rates", "Error"} {
		if m, _ := schemas.(map[string]any); m[name] == nil {
			t.Errorf("components.schemas has no %s", name)
		}
	}
}

// resolve follows a local JSON pointer ("#/components/schemas/Campaign") in tree; nil when it leads nowhere.
func resolve(tree any, ref string) any {
	cur := tree
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[tok]; !ok {
			return nil
		}
	}
	return cur
}
