package lake

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Prefixes returns the distinct key prefixes under prefix up to the next
// "/" (S3's common prefixes): for "raw/", every "raw/dt=YYYY-MM-DD/" that
// holds an object. It reads one entry per prefix, not per object, so it
// stays cheap however many objects each prefix holds. Returns them sorted,
// and an empty slice when there are none. The embedded server may still
// list a prefix whose objects were all deleted, so callers must cope with
// a listed prefix that holds nothing.
func (s *Store) Prefixes(ctx context.Context, prefix string) ([]string, error) {
	out := []string{}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix, Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			// The embedded server answers NoSuchBucket for a prefix
			// with no objects when a delimiter is given.
			var apiErr smithy.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket" && s.Check(ctx) == nil {
				return []string{}, nil
			}
			return nil, fmt.Errorf("lake: list the prefixes of %s: %w", prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, aws.ToString(cp.Prefix))
		}
	}
	sort.Strings(out)
	return out, nil
}
