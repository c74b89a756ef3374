package server

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
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

// checkTimeout bounds each readiness check.
const checkTimeout = 2 * time.Second

// handleReadyz checks every dependency at once, each within checkTimeout,
// and answers 200 when all are ok, else 503 with why each failing one is
// not. /readyz needs no key, and a failure's own text may name paths on
// the server or pin ids, so only a request with the API key sees it;
// others get a generic reason, and the log has the full one.
//
// The answer also lists the instance's roles. Once Drain was called it is
// 503 with status "shutting down", whatever the checks say.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"status": "shutting down", "roles": s.Roles, "checks": map[string]CheckResult{},
			"detail": "This instance is shutting down: it still answers requests it receives during its drain period (PINPIPE_SHUTDOWN_DRAIN), but should get no new ones.",
		})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	authorized := s.hasKey(r)
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
			err := c.Check(ctx)
			s.ready.note(s.log, c.Name, err)
			if err != nil {
				res.OK, res.Detail = false, s.readyReason(err, authorized)
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
	writeJSON(w, code, map[string]any{"status": status, "roles": s.Roles, "checks": results})
}

// readyReason is what /readyz says of a failed check: its text for a
// request with the API key, else a reason that names nothing on the server.
func (s *Server) readyReason(err error, authorized bool) string {
	switch {
	case authorized:
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("not ready: no answer within %s; the reason is in pinpipe's log", checkTimeout)
	case s.APIKey == "":
		return "not ready; the reason is in pinpipe's log (with PINPIPE_API_KEY set, /readyz shows it to requests that send the key)"
	}
	return "not ready; the reason is in pinpipe's log, or here with the API key"
}

// readyLog logs each dependency's readiness when it changes, rather than
// on every probe.
type readyLog struct {
	mu   sync.Mutex
	last map[string]string // check name → "" (ok) or its failure
}

func (l *readyLog) note(log *slog.Logger, name string, err error) {
	now := ""
	if err != nil {
		now = err.Error()
	}
	l.mu.Lock()
	if l.last == nil {
		l.last = map[string]string{}
	}
	before, seen := l.last[name]
	l.last[name] = now
	l.mu.Unlock()
	switch {
	case now == before && seen, now == "" && !seen:
	case now == "":
		log.Info("ready: dependency is back", slog.String("check", name))
	default:
		log.Warn("ready: dependency not ready", slog.String("check", name), slog.String("why", now))
	}
}

// handleOpenAPI serves the OpenAPI 3.1 document of every route.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapi)
}
