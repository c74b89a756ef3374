// Package lake is pinpipe's object store: the S3 bucket that holds the raw,
// curated and rejected zones. Everything talks to it through the AWS SDK, so
// the embedded default and a real S3 server are used by the same code.
package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Object describes one stored object.
type Object struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// ErrNotFound is returned by Get when the key does not exist.
var ErrNotFound = errors.New("lake: object not found")

// Options locate an S3 bucket.
type Options struct {
	Endpoint  string // http(s)://host:port; path-style addressing is used
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
}

// Store is an S3 bucket.
type Store struct {
	client   *s3.Client
	uploader *manager.Uploader
	bucket   string
	endpoint string
}

// Open returns a Store for the bucket and creates the bucket when it does not
// exist. Returns an error naming the endpoint when S3 cannot be reached.
func Open(ctx context.Context, o Options) (*Store, error) {
	client := s3.New(s3.Options{
		Region:       o.Region,
		BaseEndpoint: aws.String(o.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, ""),
		// Checksums only when an operation needs them: S3-compatible servers
		// differ in which of the newer flexible checksums they accept.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           4,
	})
	s := &Store{
		client: client,
		uploader: manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = 16 << 20
			u.Concurrency = 2
		}),
		bucket:   o.Bucket,
		endpoint: o.Endpoint,
	}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) ensureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode() != "NotFound" && apiErr.ErrorCode() != "NoSuchBucket") {
		return fmt.Errorf("lake: S3 at %s is not reachable (bucket %q): %w", s.endpoint, s.bucket, err)
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.bucket})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("lake: create bucket %q at %s: %w", s.bucket, s.endpoint, err)
	}
	return nil
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// Check reports whether the bucket answers.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("S3 bucket %q at %s: %w", s.bucket, s.endpoint, err)
	}
	return nil
}

// Put stores body under key. Large bodies go up as a multipart upload.
func (s *Store) Put(ctx context.Context, key string, body io.Reader) error {
	_, err := s.uploader.Upload(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: body})
	if err != nil {
		return fmt.Errorf("lake: put %s: %w", key, err)
	}
	return nil
}

// Get opens the object at key. Returns ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		var nsk *types.NoSuchKey
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &nsk) || (errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("lake: get %s: %w", key, err)
	}
	return out.Body, nil
}

// List returns every object whose key starts with prefix, sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("lake: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, Object{
				Key:          aws.ToString(o.Key),
				Size:         aws.ToInt64(o.Size),
				ETag:         strings.Trim(aws.ToString(o.ETag), `"`),
				LastModified: aws.ToTime(o.LastModified),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the objects at keys; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &s.bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("lake: delete %d objects: %w", n, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("lake: delete %s: %s", aws.ToString(e.Key), aws.ToString(e.Message))
		}
		keys = keys[n:]
	}
	return nil
}
