package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesIndexAtRootWithoutCaching(t *testing.T) {
	rec := get(t, Handler(), "/", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/html; charset=utf-8", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", got)
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Error("index.html has no Content-Security-Policy")
	}
	if !strings.Contains(rec.Body.String(), `id="sql"`) {
		t.Error("GET / did not return the dashboard page")
	}
}

func TestHandlerServesAssetsUnderStaticWithTheirTypes(t *testing.T) {
	for path, want := range map[string]string{
		"/static/app.js":      "text/javascript; charset=utf-8",
		"/static/style.css":   "text/css; charset=utf-8",
		"/static/favicon.svg": "image/svg+xml",
	} {
		rec := get(t, Handler(), path, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != want {
			t.Errorf("GET %s Content-Type = %q, want %q", path, got, want)
		}
	}
}

func TestHandlerAnswersMatchingETagWithNotModified(t *testing.T) {
	h := Handler()
	etag := get(t, h, "/static/app.js", nil).Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on /static/app.js")
	}
	rec := get(t, h, "/static/app.js", http.Header{"If-None-Match": {etag}})
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation = %d, want 304", rec.Code)
	}
}

func TestHandlerRejectsUnknownPathsAndMethods(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/nope", "/static/nope.js", "/static/index.html", "/index.html"} {
		if rec := get(t, h, path, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", rec.Code)
	}
}

// Every asset the page or a module names must be embedded, or the browser
// gets a 404 that no Go test would otherwise notice.
func TestEveryReferencedAssetIsServed(t *testing.T) {
	h := Handler()
	refs := regexp.MustCompile(`(?:href|src)="(static/[^"]+)"|from '\./([^']+)'`)
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".js")) {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range refs.FindAllStringSubmatch(string(body), -1) {
			url := "/" + m[1]
			if m[2] != "" {
				url = "/static/" + m[2]
			}
			if rec := get(t, h, url, nil); rec.Code != http.StatusOK {
				t.Errorf("%s refers to %s, which answers %d", p, url, rec.Code)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
