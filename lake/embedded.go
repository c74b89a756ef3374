package lake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// Embedded is an in-process S3 server whose objects live as files under a
// directory, for running pinpipe with nothing else installed.
type Embedded struct {
	Endpoint string // http://127.0.0.1:port
	srv      *http.Server
	parts    *diskMultipart
}

// EmbeddedKey and EmbeddedSecret are the embedded server's credentials; it
// accepts any, these are what pinpipe sends.
const (
	EmbeddedKey    = "pinpipe"
	EmbeddedSecret = "pinpipe-embedded"
)

// StartEmbedded serves S3 on addr (127.0.0.1:0 for any free port) with
// objects stored under dir. Returns an error when dir cannot be created or
// addr cannot be bound.
func StartEmbedded(dir, addr string, log *slog.Logger) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	fs := afero.NewBasePathFs(afero.NewOsFs(), dir)
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithAutoBucket(true), gofakes3.WithoutVersioning(),
		gofakes3.WithLogger(gofakes3.DiscardLog()))
	// Multipart uploads keep their parts on disk beside the objects, not in
	// gofakes3's memory (see diskMultipart).
	handler, err := newDiskMultipart(faker.Server(), backend, filepath.Clean(dir)+".uploads")
	if err != nil {
		return nil, fmt.Errorf("embedded s3: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = handler.Close()
		return nil, fmt.Errorf("embedded s3: listen %s: %w", addr, err)
	}
	e := &Embedded{Endpoint: "http://" + ln.Addr().String(), srv: &http.Server{Handler: handler}, parts: handler}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("embedded s3 stopped", slog.Any("err", err))
		}
	}()
	return e, nil
}

// Close stops the server after in-flight requests finish or ctx ends.
func (e *Embedded) Close(ctx context.Context) error {
	return errors.Join(e.srv.Shutdown(ctx), e.parts.Close())
}
