package lake

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// diskMultipart serves the multipart upload calls of the embedded S3 with
// parts kept in files, and hands every other request to gofakes3.
//
// gofakes3 keeps every part of a multipart upload in memory and joins them
// into one slice to complete it (a documented limitation of the library),
// so a day's curated object of a gigabyte cost the process two or three
// gigabytes of RSS. Here a part is streamed to a file as it arrives, and a
// completed upload is streamed from the part files into the backend, so
// memory stays one copy buffer whatever the object's size.
type diskMultipart struct {
	next    http.Handler
	backend gofakes3.Backend
	dir     string // part files: <dir>/<upload id>/<part number>

	mu      sync.Mutex
	uploads map[string]*upload
}

type upload struct {
	bucket, key string
	meta        map[string]string
	etags       map[int]string // part number → ETag (quoted hex MD5)
}

// newDiskMultipart keeps part files in a directory of its own under root,
// so processes sharing a data directory (serve and a query) never touch
// each other's uploads. Directories left under root by a process that died
// more than a day ago are removed: S3 too forgets uploads never completed.
func newDiskMultipart(next http.Handler, backend gofakes3.Backend, root string) (*diskMultipart, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
				os.RemoveAll(filepath.Join(root, e.Name()))
			}
		}
	}
	dir, err := os.MkdirTemp(root, "uploads-")
	if err != nil {
		return nil, err
	}
	return &diskMultipart{next: next, backend: backend, dir: dir, uploads: map[string]*upload{}}, nil
}

// Close removes the part files of uploads never completed.
func (d *diskMultipart) Close() error { return os.RemoveAll(d.dir) }

func (d *diskMultipart) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	_, initiate := q["uploads"]
	id := q.Get("uploadId")
	switch {
	case initiate && r.Method == http.MethodPost:
		d.initiate(w, r)
	case id != "" && r.Method == http.MethodPut:
		d.part(w, r, id, q.Get("partNumber"))
	case id != "" && r.Method == http.MethodPost:
		d.complete(w, r, id)
	case id != "" && r.Method == http.MethodDelete:
		d.abort(w, id)
	case id != "":
		s3Error(w, http.StatusNotImplemented, "NotImplemented", "the embedded S3 does not list the parts of an upload")
	default:
		d.next.ServeHTTP(w, r)
	}
}

// bucketKey splits a path-style request path into bucket and key.
func bucketKey(r *http.Request) (bucket, key string, ok bool) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return bucket, key, bucket != "" && key != ""
}

func (d *diskMultipart) initiate(w http.ResponseWriter, r *http.Request) {
	bucket, key, ok := bucketKey(r)
	if !ok {
		s3Error(w, http.StatusBadRequest, "InvalidRequest", "a multipart upload needs a bucket and a key")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := os.Mkdir(filepath.Join(d.dir, id), 0o755); err != nil {
		s3Error(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	meta := map[string]string{}
	for name, v := range r.Header {
		if name == "Content-Type" || strings.HasPrefix(name, "X-Amz-Meta-") {
			meta[name] = v[0]
		}
	}
	d.mu.Lock()
	d.uploads[id] = &upload{bucket: bucket, key: key, meta: meta, etags: map[int]string{}}
	d.mu.Unlock()
	writeXML(w, gofakes3.InitiateMultipartUploadResult{Bucket: bucket, Key: key, UploadID: gofakes3.UploadID(id)})
}

func (d *diskMultipart) lookup(w http.ResponseWriter, id string) *upload {
	d.mu.Lock()
	u := d.uploads[id]
	d.mu.Unlock()
	if u == nil {
		s3Error(w, http.StatusNotFound, "NoSuchUpload", "no multipart upload "+id)
	}
	return u
}

func (d *diskMultipart) part(w http.ResponseWriter, r *http.Request, id, number string) {
	n, err := strconv.Atoi(number)
	if err != nil || n < 1 || n > gofakes3.MaxUploadPartNumber {
		s3Error(w, http.StatusBadRequest, "InvalidArgument", "partNumber must be 1 to 10000")
		return
	}
	u := d.lookup(w, id)
	if u == nil {
		return
	}
	name := filepath.Join(d.dir, id, strconv.Itoa(n))
	f, err := os.Create(name)
	if err != nil {
		s3Error(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	h := md5.New()
	size, err := io.Copy(io.MultiWriter(f, h), r.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && r.ContentLength >= 0 && size != r.ContentLength {
		err = fmt.Errorf("part %d: got %d bytes of %d", n, size, r.ContentLength)
	}
	if err != nil {
		os.Remove(name)
		s3Error(w, http.StatusBadRequest, "IncompleteBody", err.Error())
		return
	}
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	d.mu.Lock()
	u.etags[n] = etag
	d.mu.Unlock()
	w.Header().Set("ETag", etag)
}

func (d *diskMultipart) complete(w http.ResponseWriter, r *http.Request, id string) {
	u := d.lookup(w, id)
	if u == nil {
		return
	}
	var in gofakes3.CompleteMultipartUploadRequest
	if err := xml.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil || len(in.Parts) == 0 {
		s3Error(w, http.StatusBadRequest, "MalformedXML", "the completion must list the upload's parts")
		return
	}
	d.mu.Lock()
	files, size, etag, err := d.assemble(id, u, in.Parts)
	if err == nil {
		delete(d.uploads, id) // a second completion of the same upload finds none
	}
	d.mu.Unlock()
	if err != nil {
		s3Error(w, http.StatusBadRequest, "InvalidPart", err.Error())
		return
	}
	readers := make([]io.Reader, len(files))
	for i, f := range files {
		readers[i] = f
	}
	_, err = d.backend.PutObject(u.bucket, u.key, u.meta, io.MultiReader(readers...), size, nil)
	for _, f := range files {
		f.Close()
	}
	os.RemoveAll(filepath.Join(d.dir, id))
	if err != nil {
		s3Error(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	writeXML(w, gofakes3.CompleteMultipartUploadResult{Bucket: u.bucket, Key: u.key, ETag: etag})
}

// assemble opens the listed parts in order, checking each against the ETag
// it was given, and returns them with their total size and the MD5 of
// their MD5s (S3's multipart ETag). Called with d.mu held.
func (d *diskMultipart) assemble(id string, u *upload, parts []gofakes3.CompletedPart) ([]*os.File, int64, string, error) {
	var files []*os.File
	var size int64
	whole := md5.New()
	fail := func(err error) ([]*os.File, int64, string, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, 0, "", err
	}
	for i, p := range parts {
		if i > 0 && p.PartNumber <= parts[i-1].PartNumber {
			return fail(errors.New("parts must be listed in ascending order"))
		}
		etag, ok := u.etags[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != strings.Trim(etag, `"`) {
			return fail(fmt.Errorf("part %d was not uploaded with ETag %s", p.PartNumber, p.ETag))
		}
		sum, _ := hex.DecodeString(strings.Trim(etag, `"`))
		whole.Write(sum)
		f, err := os.Open(filepath.Join(d.dir, id, strconv.Itoa(p.PartNumber)))
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
		st, err := f.Stat()
		if err != nil {
			return fail(err)
		}
		size += st.Size()
	}
	return files, size, fmt.Sprintf(`"%x-%d"`, whole.Sum(nil), len(parts)), nil
}

func (d *diskMultipart) abort(w http.ResponseWriter, id string) {
	d.mu.Lock()
	_, ok := d.uploads[id]
	delete(d.uploads, id)
	d.mu.Unlock()
	if !ok {
		s3Error(w, http.StatusNotFound, "NoSuchUpload", "no multipart upload "+id)
		return
	}
	os.RemoveAll(filepath.Join(d.dir, id))
	w.WriteHeader(http.StatusNoContent)
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(v)
}

func s3Error(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
	}{Code: code, Message: message})
}
