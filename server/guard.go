package server

import (
	"crypto/subtle"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"

	"pinpipe/pin"
)

// Codes the HTTP layer alone uses; problem.go maps them to statuses.
const (
	eMisdirected = "misdirected"            // a Host this pinpipe does not answer for (421)
	eMediaType   = "unsupported_media_type" // a body type the route does not take (415)
	eSlowBody    = "request_timeout"        // the body did not arrive in time (408)
)

// hostGuard decides which Host header values the server answers. A page
// can make a browser send its requests to pinpipe under a name the page's
// owner controls (DNS rebinding); refusing names it was not told about
// stops that. IP addresses and "localhost" cannot be rebound, so they are
// always answered, on any port (a container or proxy may map the port).
type hostGuard struct {
	any   bool
	names map[string]bool // lower-case "name" (any port) and "name:port"
}

func newHostGuard(allowed []string) hostGuard {
	g := hostGuard{names: map[string]bool{}}
	for _, h := range allowed {
		if h == "*" {
			g.any = true
		}
		name, port := splitHost(h)
		if port != "" {
			name = net.JoinHostPort(name, port)
		}
		g.names[name] = true
	}
	return g
}

// allows reports whether the server answers requests for host (a Host
// header: name or name:port). An empty Host (HTTP/1.0) comes from no
// browser and is allowed.
func (g hostGuard) allows(host string) bool {
	if g.any || host == "" {
		return true
	}
	name, port := splitHost(host)
	if name == "localhost" || net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")) != nil {
		return true
	}
	return g.names[name] || (port != "" && g.names[net.JoinHostPort(name, port)])
}

// splitHost returns host's name, lower case and without a trailing dot,
// and its port ("" when it has none).
func splitHost(host string) (name, port string) {
	name = strings.ToLower(host)
	if h, p, err := net.SplitHostPort(name); err == nil {
		name, port = h, p
	}
	return strings.TrimSuffix(name, "."), port
}

// checkHost returns an eMisdirected error when r names a host the server
// does not answer for.
func (s *Server) checkHost(r *http.Request) error {
	if s.hosts.allows(r.Host) {
		return nil
	}
	return pin.Errorf(eMisdirected,
		"This pinpipe does not answer for the host %q. Address it by IP address or localhost, or add the name to PINPIPE_ALLOWED_HOSTS (comma-separated, name or name:port); unknown names are refused to stop DNS rebinding.",
		r.Host)
}

// checkOrigin refuses a request a web page on another origin made the
// browser send: net/http's cross-origin protection (Sec-Fetch-Site, else
// Origin against Host), with PINPIPE_ALLOWED_ORIGINS as trusted origins.
// Requests without either header (curl, the CLI) pass. It applies to GET
// too, as GET /query runs work for the caller like a POST does.
func (s *Server) checkOrigin(r *http.Request) error {
	c := r
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		c = r.WithContext(r.Context())
		c.Method = http.MethodPost // Check passes every safe method unchecked
	}
	if s.origins.Check(c) == nil {
		return nil
	}
	from := r.Header.Get("Origin")
	if from == "" {
		from = "another site (Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site") + ")"
	}
	return pin.Errorf(pin.EFORBIDDEN,
		"Cross-origin request refused: a page from %s asked this pinpipe (%s) to %s %s. Only pinpipe's own dashboard, clients that are not browsers, and origins listed in PINPIPE_ALLOWED_ORIGINS may.",
		from, r.Host, r.Method, r.URL.Path)
}

// guarded wraps a handler that changes state or runs a query: it refuses
// cross-origin browser requests.
func (s *Server) guarded(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkOrigin(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		next(w, r)
	}
}

// Body types the routes take. A browser sends text/plain and form bodies
// from any page without asking the server first (no CORS preflight), so
// no route takes them.
var (
	jsonTypes  = []string{"application/json"}
	pinTypes   = []string{"application/json", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines"}
	queryTypes = []string{"application/json", "application/sql"}
)

// checkContentType returns an eMediaType error naming the types to use
// when r's body is not one of types. A request without a body and without
// a Content-Type passes: there is nothing to misread.
func checkContentType(r *http.Request, types []string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, t := range types {
			if mt == t {
				return nil
			}
		}
	}
	if ct == "" {
		ct = "none"
	}
	return pin.Errorf(eMediaType, "%s %s takes a body of type %s; this one has Content-Type %q. Set the Content-Type header (curl: -H 'Content-Type: application/json').",
		r.Method, r.URL.Path, strings.Join(types, " or "), ct)
}

// requireKey refuses a request without the API key when one is configured.
// The scheme is case-insensitive ("bearer" works), as RFC 9110 says.
func (s *Server) requireKey(next http.HandlerFunc) http.HandlerFunc {
	if s.APIKey == "" {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.hasKey(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pinpipe"`)
			s.writeError(w, r, pin.Errorf(pin.EUNAUTHORIZED,
				"This pinpipe needs an API key: send the header \"Authorization: Bearer <key>\" with the key set in PINPIPE_API_KEY."))
			return
		}
		next(w, r)
	}
}

// hasKey reports whether r carries the configured API key; false when
// none is configured.
func (s *Server) hasKey(r *http.Request) bool {
	if s.APIKey == "" {
		return false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.APIKey)) == 1
}

// isLoopback reports whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnIfExposed logs a warning when the server listens beyond loopback
// without an API key: then anyone who can reach it may post pins, start
// runs and run SQL.
func (s *Server) warnIfExposed() {
	if s.Addr == "" || isLoopback(s.Addr) || s.APIKey != "" {
		return
	}
	s.log.Warn("http: listening beyond loopback without an API key: anyone who can reach this address may post pins, start batch runs and run SQL; set PINPIPE_API_KEY (and PINPIPE_ALLOWED_HOSTS for the names it is reached by)",
		slog.String("addr", s.Addr))
}
