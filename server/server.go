// Package server is pinpipe's HTTP layer: every route of the API, the
// dashboard, health, metrics and the OpenAPI document. It maps application
// errors to problem+json responses in one place and calls the lanes through
// small interfaces.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"pinpipe/pin"
	"pinpipe/web"
)

// Producer hands accepted pins to Kafka.
type Producer interface {
	// Produce returns once Kafka acknowledged every record, or an error
	// with code EUNAVAILABLE.
	Produce(ctx context.Context, recs []pin.Record) error
	// Rejected counts a request refused as invalid: every pin of it, and
	// how many were invalid.
	Rejected(c pin.Counts)
}

// Check is one dependency's readiness check.
type Check struct {
	Name     string // kafka, s3, cassandra, postgres
	Embedded bool   // true when the dependency is pinpipe's embedded default
	Check    func(ctx context.Context) error
}

// Options are what the server serves.
type Options struct {
	Log          *slog.Logger
	Registry     *prometheus.Registry
	APIKey       string
	MaxBodyBytes int64
	// MaxFieldBytes is the most bytes one field of a POST /pins record may
	// hold; 0 means pin.DefaultMaxFieldBytes.
	MaxFieldBytes int
	// Addr is the address the server listens on; beyond loopback without
	// an API key, New logs a warning.
	Addr string
	// AllowedHosts are Host names answered besides IP addresses and
	// localhost ("name", "name:port" or "*"); AllowedOrigins are web
	// origins trusted besides the server's own (PINPIPE_ALLOWED_*).
	AllowedHosts   []string
	AllowedOrigins []string
	// QueryTimeout bounds a query request from its body read to its last
	// byte written (PINPIPE_QUERY_TIMEOUT); 0 means 30 s.
	QueryTimeout time.Duration
	// ExportMaxBytes bounds one export file (PINPIPE_EXPORT_MAX_BYTES),
	// ExportTimeout the time to make it and again to send it
	// (PINPIPE_EXPORT_TIMEOUT); ExportDir is where it is made ("" for the
	// system's temporary directory). 0 means DefaultExport….
	ExportMaxBytes int64
	ExportTimeout  time.Duration
	ExportDir      string
	Producer       Producer
	Batch          BatchService  // nil: the batch routes answer 503
	Serving        Serving       // nil: the serving routes answer 503
	Stream         StreamService // nil: the stream routes answer 503
	Query          Querier       // nil: the query routes answer 503
	Checks         []Check
	// AccessLog logs one line per request (PINPIPE_ACCESS_LOG).
	AccessLog bool
	// Roles are the roles this instance runs (PINPIPE_ROLES); a route
	// whose role is missing answers 503 naming it. Empty means all.
	Roles []string
}

// Server answers pinpipe's HTTP API.
type Server struct {
	Options
	log      *slog.Logger
	mux      *http.ServeMux
	hosts    hostGuard
	origins  *http.CrossOriginProtection
	ready    readyLog
	draining atomic.Bool
	limits   limits
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New returns a Server. Its routes are the HTTP API of docs/api.md and openapi.json.
func New(o Options) *Server {
	f := promauto.With(o.Registry)
	s := &Server{
		Options: o,
		log:     o.Log,
		mux:     http.NewServeMux(),
		hosts:   newHostGuard(o.AllowedHosts),
		origins: http.NewCrossOriginProtection(),
		limits:  defaultLimits,
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pinpipe_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "code"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pinpipe_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
	}
	if s.QueryTimeout <= 0 {
		s.QueryTimeout = 30 * time.Second
	}
	if s.ExportMaxBytes <= 0 {
		s.ExportMaxBytes = DefaultExportMaxBytes
	}
	if s.ExportTimeout <= 0 {
		s.ExportTimeout = DefaultExportTimeout
	}
	for _, origin := range o.AllowedOrigins {
		if err := s.origins.AddTrustedOrigin(origin); err != nil {
			s.log.Error("http: PINPIPE_ALLOWED_ORIGINS: origin ignored", slog.Any("err", err))
		}
	}
	s.warnIfExposed()
	open := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.instrument(pattern, h)) }
	auth := func(pattern string, h http.HandlerFunc) {
		s.mux.Handle(pattern, s.instrument(pattern, s.requireKey(h)))
	}

	// guarded: routes that change state or run a query refuse
	// cross-origin browser requests.
	// needs: the roles (any of) an instance must run to answer a route.
	auth("POST /pins", s.needs(s.guarded(s.handlePostPins), "api"))
	auth("GET /pins/{unique_id}", s.needs(s.handleGetPin, "api", "batch"))
	auth("GET /categories/{category}/top", s.needs(s.handleTopByCategory, "api", "batch"))
	auth("POST /batch/runs", s.needs(s.guarded(s.handleStartRun), "batch"))
	auth("GET /batch/runs", s.needs(s.handleListRuns, "api", "batch"))
	auth("GET /batch/runs/{id}", s.needs(s.handleGetRun, "api", "batch"))
	auth("GET /batch/days", s.needs(s.handleListDays, "api", "batch"))
	auth("GET /stream/recent", s.needs(s.handleStreamRecent, "api", "stream"))
	auth("GET /stream/stats", s.needs(s.handleStreamStats, "api", "stream"))
	auth("POST /query", s.needs(s.guarded(s.handleQuery), "query"))
	auth("GET /query", s.needs(s.guarded(s.handleQuery), "query"))
	auth("POST /query/export", s.needs(s.guarded(s.handleExport), "query"))
	auth("GET /query/export", s.needs(s.guarded(s.handleExport), "query"))
	auth("GET /query/schema", s.needs(s.guarded(s.handleSchema), "query"))
	open("GET /openapi.json", s.handleOpenAPI) // documentation: no key needed
	open("GET /healthz", s.handleHealthz)
	open("GET /readyz", s.handleReadyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	s.mux.Handle("GET /", web.Handler())
	s.registerRoles(o.Registry)
	return s
}

// ServeHTTP implements http.Handler: it serves r, and with AccessLog logs
// one line for it once answered (see access.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.AccessLog {
		s.accessLog(s.serve)(w, r)
		return
	}
	s.serve(w, r)
}

// serve routes r. Every request gets its deadlines (see limits.go), and is
// refused with 421 when it names a host the server does not answer for; the
// probes and metrics (/healthz, /readyz, /metrics) answer under any name, as
// orchestrators and scrapers address the service by names of their own.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.setDeadlines(w, r)
	if s.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
	default:
		if err := s.checkHost(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// instrument counts and times requests by route, and turns a panic into a
// 500 problem instead of a dropped connection.
func (s *Server) instrument(route string, next http.HandlerFunc) http.Handler {
	latency := s.latency.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", slog.String("route", route), slog.Any("panic", v))
				if !sw.wrote {
					s.writeError(sw, r, pin.Errorf(pin.EINTERNAL, "Internal error."))
				}
			}
			latency.Observe(time.Since(start).Seconds())
			s.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		}()
		next(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush lets streamed responses (query results) reach the client as they
// are written.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// queryInt reads a positive integer query parameter, def when absent.
// Returns an EINVALID error naming the parameter when it is not a whole
// number in [1, max].
func queryInt(r *http.Request, name string, def, max int) (int, error) {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, pin.Errorf(pin.EINVALID, "Query parameter %q must be a whole number from 1 to %d, got %q.", name, max, v)
	}
	return n, nil
}
