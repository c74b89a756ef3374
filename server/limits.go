package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"pinpipe/pin"
)

// Time limits of one request. A client that sends slowly, or stops
// reading the answer, loses its connection at these deadlines instead of
// holding a goroutine, its memory or a query slot for as long as it likes.
const (
	// HeaderTimeout bounds reading a request's line and headers.
	HeaderTimeout = 10 * time.Second
	// BodyTimeout bounds reading a request body, from the end of the
	// headers (a 16 MiB POST /pins needs ~2.2 Mbit/s).
	BodyTimeout = time.Minute
	// WriteTimeout bounds the time from the end of the headers to the last
	// byte of an answer, but for queries, which get PINPIPE_QUERY_TIMEOUT
	// from the end of their body instead.
	WriteTimeout = time.Minute
	// IdleTimeout closes a kept-alive connection that sends no request.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
)

// HTTPServer returns an http.Server for s with the header and idle limits
// set. The body and write deadlines are set per request (ServeHTTP), as a
// server-wide ReadTimeout would also cancel a long query once its time
// passed.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.limits.header,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// limits are a server's time limits: the constants above, shorter in
// tests.
type limits struct {
	header, body, write time.Duration
}

var defaultLimits = limits{header: HeaderTimeout, body: BodyTimeout, write: WriteTimeout}

// setDeadlines gives the request its write deadline and, when it has a
// body, a read deadline for the body, lifted once the body is read: an
// expired read deadline would otherwise cancel the request's context while
// its handler still works. A request without a body needs none: the
// server reads nothing more until the handler returns.
func (s *Server) setDeadlines(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	now := time.Now()
	_ = rc.SetWriteDeadline(now.Add(s.limits.write))
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	_ = rc.SetReadDeadline(now.Add(s.limits.body))
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// deadlineBody lifts the connection's read deadline when the whole body
// was read. After any other error it stays: net/http reads what is left of
// a body before the next request, and that must end too.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	}
	return n, err
}

// readError is the problem for an error reading a request body: 408 when
// the body did not arrive within the body time limit, else EINVALID.
func (s *Server) readError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return pin.Errorf(eSlowBody, "The request body did not arrive within %s; send it faster, or in smaller requests.", s.limits.body)
	}
	return pin.Errorf(pin.EINVALID, "The request body could not be read: %v.", err)
}
