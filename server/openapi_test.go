package server_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPIDocumentsEveryRoute parses the OpenAPI document and checks that
// every route the server registers is in it with its method, and that every
// $ref resolves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`(?:auth|open|Handle)\("(GET|POST) (/[^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 15 {
		t.Fatalf("found %d routes in server.go, want every route", len(routes))
	}
	for _, r := range routes {
		method, path := strings.ToLower(r[1]), r[2]
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("%s %s is served but not in openapi.json", r[1], path)
		}
	}
	for _, ref := range regexp.MustCompile(`"\$ref": "#/components/schemas/(\w+)"`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := doc.Components.Schemas[ref[1]]; !ok {
			t.Errorf("$ref to missing schema %s", ref[1])
		}
	}
}

// TestOpenAPIDeclaresTagsHeadersAndWhoNeedsTheKey: every operation is in
// one declared tag, every 429 and 503 problem declares Retry-After, the
// queued run its Location, the server URL is relative, and the routes
// server.go serves without the key (open) are exactly those the document
// says need none (security: []).
func TestOpenAPIDeclaresTagsHeadersAndWhoNeedsTheKey(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	type response struct {
		Headers map[string]json.RawMessage `json:"headers"`
		Content map[string]json.RawMessage `json:"content"`
	}
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Tags []struct {
			Name string `json:"name"`
		} `json:"tags"`
		Paths map[string]map[string]struct {
			Tags      []string            `json:"tags"`
			Security  *[]json.RawMessage  `json:"security"`
			Responses map[string]response `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers %+v, want the one relative URL /", doc.Servers)
	}
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = true
	}
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]bool{}
	for _, m := range regexp.MustCompile(`open\("(GET|POST) (/[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		open[strings.ToLower(m[1])+" "+m[2]] = true
	}
	open["get /metrics"], open["get /"] = true, true // handled outside auth() too
	for path, ops := range doc.Paths {
		for method, op := range ops {
			name := method + " " + path
			if len(op.Tags) != 1 || !declared[op.Tags[0]] {
				t.Errorf("%s: tags %v, want one of the declared tags", name, op.Tags)
			}
			noKey := op.Security != nil && len(*op.Security) == 0
			if noKey != open[name] {
				t.Errorf("%s: the document says no key needed = %v, server.go serves it without the key = %v", name, noKey, open[name])
			}
			for status, r := range op.Responses {
				if _, problem := r.Content["application/problem+json"]; problem && (status == "429" || status == "503") {
					if _, ok := r.Headers["Retry-After"]; !ok {
						t.Errorf("%s %s: Retry-After is not declared", name, status)
					}
				}
				if status == "401" {
					if _, ok := r.Headers["WWW-Authenticate"]; !ok {
						t.Errorf("%s 401: WWW-Authenticate is not declared", name)
					}
				}
			}
		}
	}
	if _, ok := doc.Paths["/batch/runs"]["post"].Responses["202"].Headers["Location"]; !ok {
		t.Error("POST /batch/runs 202: Location is not declared")
	}
}
