// Package web serves pinpipe's browser dashboard.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Mounting: the server hands Handler every GET (and HEAD) request that no API
// route matched, with the path unchanged. index.html refers to its assets
// relatively, as "static/<name>", and to the API relatively too ("stream/stats",
// "query", …), so with the page at "/" every asset lives under the one prefix
// "/static/" and every API call goes to the server's root. The same relative
// links keep working if a reverse proxy serves pinpipe under a sub-path.
//
//go:embed static
var files embed.FS

// indexCSP keeps the page to its own origin: no inline script, no third-party
// fetches, so user-supplied pin text can never pull in or run anything.
const indexCSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type asset struct {
	name string // for the Content-Type, by extension
	body []byte
	etag string
}

// Handler returns the dashboard handler. It answers "/" with index.html and
// "/static/<name>" with an embedded asset; any other path gets 404 and any
// method other than GET or HEAD gets 405.
//
// Assets have no fingerprinted names (there is no build step), so every
// response says "Cache-Control: no-cache" and carries a strong ETag of its
// content: browsers revalidate on each load and get a 304 while nothing changed.
func Handler() http.Handler {
	assets := make(map[string]asset)
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		assets[strings.TrimPrefix(p, "static/")] = asset{
			name: path.Base(p),
			body: body,
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a build defect.
		panic("web: reading embedded files: " + err.Error())
	}
	index := assets["index.html"]
	delete(assets, "index.html") // one URL per page: "/", not also "/static/index.html"

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", indexCSP)
		w.Header().Set("Referrer-Policy", "same-origin")
		serve(w, r, index)
	})
	mux.HandleFunc("GET /static/{name...}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		serve(w, r, a)
	})
	return mux
}

func serve(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	// A zero modtime makes ServeContent rely on the ETag alone for 304s.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
