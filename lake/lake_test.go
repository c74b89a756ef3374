package lake_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"pinpipe/internal/testenv"
	"pinpipe/lake"
)

func open(t *testing.T) *lake.Store {
	t.Helper()
	s, err := lake.Open(context.Background(), testenv.S3(t))
	testenv.Must(t, err)
	return s
}

func TestStorePutsListsGetsAndDeletesObjects(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	objects := map[string]string{
		"raw/dt=2026-11-24/part-0-00000000000000000000-00000000000000000009.parquet": "zero",
		"raw/dt=2026-11-24/part-1-00000000000000000000-00000000000000000004.parquet": "one",
		"curated/dt=2026-11-24/part-a-0.parquet":                                     "curated",
	}
	for k, v := range objects {
		testenv.Must(t, s.Put(ctx, k, bytes.NewReader([]byte(v))))
	}
	raw, err := s.List(ctx, "raw/")
	testenv.Must(t, err)
	if len(raw) != 2 || raw[0].Key >= raw[1].Key {
		t.Fatalf("List(raw/) = %+v, want the 2 raw objects in key order", raw)
	}
	for _, o := range raw {
		if o.Size != int64(len(objects[o.Key])) || o.ETag == "" {
			t.Errorf("%s: size %d etag %q, want size %d and an ETag", o.Key, o.Size, o.ETag, len(objects[o.Key]))
		}
	}
	r, err := s.Get(ctx, "curated/dt=2026-11-24/part-a-0.parquet")
	testenv.Must(t, err)
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "curated" {
		t.Errorf("Get = %q, want %q", got, "curated")
	}
	testenv.Must(t, s.Delete(ctx, raw[0].Key, raw[1].Key, "raw/never-existed"))
	if left, _ := s.List(ctx, "raw/"); len(left) != 0 {
		t.Errorf("after Delete, raw/ holds %+v", left)
	}
	if _, err := s.Get(ctx, raw[0].Key); !errors.Is(err, lake.ErrNotFound) {
		t.Errorf("Get of a deleted object: %v, want ErrNotFound", err)
	}
}

func TestStoreUploadsALargeObjectWhole(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	big := make([]byte, 40<<20) // past the 16 MiB part size: a multipart upload
	_, _ = rand.Read(big)
	testenv.Must(t, s.Put(ctx, "raw/big.parquet", bytes.NewReader(big)))
	r, err := s.Get(ctx, "raw/big.parquet")
	testenv.Must(t, err)
	defer r.Close()
	got, err := io.ReadAll(r)
	testenv.Must(t, err)
	if !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, not the %d put", len(got), len(big))
	}
}

func TestOpenNamesTheEndpointWhenS3IsUnreachable(t *testing.T) {
	_, err := lake.Open(context.Background(), lake.Options{Endpoint: "http://127.0.0.1:1", Bucket: "b", Region: "us-east-1", AccessKey: "k", SecretKey: "s"})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("127.0.0.1:1")) {
		t.Fatalf("Open of a dead endpoint: %v, want an error naming it", err)
	}
}

func TestStoreListsEachDayPrefixOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	for _, k := range []string{
		"raw/dt=2026-11-24/part-0-00000000000000000000-00000000000000000009.parquet",
		"raw/dt=2026-11-24/part-1-00000000000000000000-00000000000000000004.parquet",
		"raw/dt=2026-11-23/part-0-00000000000000000000-00000000000000000001.parquet",
		"curated/dt=2026-11-25/_committed-a",
	} {
		testenv.Must(t, s.Put(ctx, k, bytes.NewReader([]byte("x"))))
	}
	got, err := s.Prefixes(ctx, "raw/")
	testenv.Must(t, err)
	if want := []string{"raw/dt=2026-11-23/", "raw/dt=2026-11-24/"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Prefixes(raw/) = %q, want %q", got, want)
	}
	if got, err := s.Prefixes(ctx, "rejected/"); err != nil || len(got) != 0 {
		t.Fatalf("Prefixes(rejected/) = %q, %v; want none", got, err)
	}
}
