package lake_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"

	"pinpipe/internal/testenv"
	"pinpipe/lake"
)

// embedded starts the in-process S3 over a fresh directory and returns a
// store on it with the directory the server keeps its part files in.
func embedded(t *testing.T) (*lake.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "s3")
	e, err := lake.StartEmbedded(dir, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	testenv.Must(t, err)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	s, err := lake.Open(context.Background(), lake.Options{Endpoint: e.Endpoint, Bucket: "b", Region: "us-east-1",
		AccessKey: lake.EmbeddedKey, SecretKey: lake.EmbeddedSecret})
	testenv.Must(t, err)
	return s, dir + ".uploads"
}

// noise is n pseudo-random bytes made as they are read, so the test itself
// holds none of them.
type noise struct {
	r *rand.ChaCha8
	n int64
}

func (z *noise) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	z.r.Read(p)
	z.n -= int64(len(p))
	return len(p), nil
}

func seeded(n int64) *noise { return &noise{r: rand.NewChaCha8([32]byte{7}), n: n} }

// The embedded S3 used to keep a multipart upload's parts in memory and
// join them to complete it, so a 1 GB curated day cost 2–3 GB of RSS.
// Parts now go to files: what the whole upload allocates, client included,
// stays far below the object's size.
func TestEmbeddedS3CompletesALargeUploadWithoutHoldingIt(t *testing.T) {
	ctx := context.Background()
	s, _ := embedded(t)
	const size = 256 << 20 // 16 parts of 16 MiB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	testenv.Must(t, s.Put(ctx, "curated/dt=2026-11-24/pins.parquet", seeded(size)))
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Errorf("uploading %d MiB allocated %d MiB: the parts are held in memory", size>>20, alloc>>20)
	}

	r, err := s.Get(ctx, "curated/dt=2026-11-24/pins.parquet")
	testenv.Must(t, err)
	defer r.Close()
	got, want := sha256.New(), sha256.New()
	n, err := io.Copy(got, r)
	testenv.Must(t, err)
	_, _ = io.Copy(want, seeded(size))
	if n != size || string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("read back %d bytes (sha256 match %v), want the %d put", n, string(got.Sum(nil)) == string(want.Sum(nil)), size)
	}
}

type failAfter struct {
	r io.Reader
	n int64
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the writer gave up")
	}
	p = p[:min(int64(len(p)), f.n)]
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

// An upload the client abandons leaves neither an object nor part files.
func TestEmbeddedS3AbortedUploadLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, parts := embedded(t)
	err := s.Put(ctx, "curated/dt=2026-11-24/pins.parquet", &failAfter{r: seeded(64 << 20), n: 40 << 20})
	if err == nil {
		t.Fatal("Put of a body that fails half way succeeded")
	}
	if _, err := s.Get(ctx, "curated/dt=2026-11-24/pins.parquet"); !errors.Is(err, lake.ErrNotFound) {
		t.Errorf("after the aborted upload, Get: %v, want ErrNotFound", err)
	}
	var left []string
	testenv.Must(t, filepath.WalkDir(parts, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return err
	}))
	if len(left) > 0 {
		t.Errorf("the aborted upload left part files: %q", left)
	}
}
