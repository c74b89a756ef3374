package server

import (
	"context"
	_ "embed"
	"net/http"
	"sync"
	"time"
)

//go:embed openapi.json
var openapi []byte

// handleHealthz answers 200 while the process is alive.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// CheckResult is one dependency's state in /readyz.
type CheckResult struct {
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
	Default string `json:"default"` // "embedded" or "external"
}

// handleReadyz checks every dependency at once, each within 2 s, and answers
// 200 when all are ok, else 503 with why each failing one is not.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	results := make(map[string]CheckResult, len(s.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range s.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := CheckResult{OK: true, Detail: "ok", Default: "external"}
			if c.Embedded {
				res.Default = "embedded"
			}
			if err := c.Check(ctx); err != nil {
				res.OK, res.Detail = false, err.Error()
			}
			mu.Lock()
			results[c.Name] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	status, code := "ok", http.StatusOK
	for _, res := range results {
		if !res.OK {
			status, code = "degraded", http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}

// handleOpenAPI serves the OpenAPI 3.1 document of every route.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapi)
}
