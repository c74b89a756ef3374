package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"pinpipe/internal/dirlock"
	"pinpipe/lake"
)

// downloadPrefix starts the names of files being downloaded; they are
// renamed into place when complete and removed when found at start.
const downloadPrefix = ".download-"

// downloadConcurrency bounds the objects fetched at once.
const downloadConcurrency = 4

// scan registers the copies already in the mirror directory (from an
// earlier run) and removes half-downloaded files and anything else the
// mirror did not make. Returns the copies as lake objects, newest file last,
// so choose prefers it when two copies claim one key.
func (m *Mirror) scan() ([]lake.Object, error) {
	if err := os.MkdirAll(m.o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: create %s: %w", m.o.Dir, err)
	}
	type found struct {
		obj lake.Object
		mod int64
	}
	var out []found
	err := filepath.WalkDir(m.o.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == filepath.Join(m.o.Dir, dirlock.Name) {
			return err
		}
		rel, _ := filepath.Rel(m.o.Dir, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		o, ok := parseLocal(rel, info.Size())
		if !ok {
			if strings.HasPrefix(d.Name(), downloadPrefix) {
				return os.Remove(p)
			}
			m.log.Debug("mirror: ignoring a file it did not make", slog.String("file", p))
			return nil
		}
		m.files[rel] = &localFile{object: o}
		if t := info.ModTime(); t.After(m.used[o.DT]) {
			m.used[o.DT] = t
		}
		if o.Zone == liveZone { // a cleaned copy: no lake object of its own
			return nil
		}
		out = append(out, found{lake.Object{Key: o.Key, ETag: o.ETag, Size: o.Size}, info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mirror: scan %s: %w", m.o.Dir, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].mod < out[j].mod })
	objs := make([]lake.Object, len(out))
	for i, f := range out {
		objs[i] = f.obj
	}
	// choose keeps the first copy of a key; reverse so the newest comes first.
	for i, j := 0, len(objs)-1; i < j; i, j = i+1, j-1 {
		objs[i], objs[j] = objs[j], objs[i]
	}
	m.updateBytesLocked()
	return objs, nil
}

// downloadAll fetches objs into the mirror, a few at a time, registering
// each as it lands. Returns the first error; copies already complete stay
// for the next refresh.
func (m *Mirror) downloadAll(ctx context.Context, objs []object) error {
	if len(objs) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(downloadConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			if err := m.download(gctx, o); err != nil {
				return err
			}
			m.mu.Lock()
			m.files[o.Rel] = &localFile{object: o}
			m.updateBytesLocked()
			m.mu.Unlock()
			m.downloads.Inc()
			return nil
		})
	}
	return g.Wait()
}

// download copies one object to its local path through a temporary file,
// so a reader never sees a partial copy. Returns errRaced when the object
// is gone or not the size the listing said.
func (m *Mirror) download(ctx context.Context, o object) error {
	dst := filepath.Join(m.o.Dir, filepath.FromSlash(o.Rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	body, err := m.store.Get(ctx, o.Key)
	if errors.Is(err, lake.ErrNotFound) {
		return fmt.Errorf("mirror: %s vanished: %w", o.Key, errRaced)
	} else if err != nil {
		return fmt.Errorf("mirror: download %s: %w", o.Key, err)
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), downloadPrefix+"*")
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	n, err := io.Copy(tmp, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		err = fmt.Errorf("mirror: download %s: %w", o.Key, err)
	case n != o.Size:
		err = fmt.Errorf("mirror: %s is %d bytes, the listing said %d: %w", o.Key, n, o.Size, errRaced)
	default:
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// remove deletes one copy, and its day directory once empty.
func (m *Mirror) remove(rel string) error {
	p := filepath.Join(m.o.Dir, filepath.FromSlash(rel))
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_ = os.Remove(filepath.Dir(p)) // fails while other copies remain: fine
	return nil
}
