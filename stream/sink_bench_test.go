package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/stream"
	"pinpipe/synth"
)

// BenchmarkSinkWrite measures one micro-batch transaction of new pins per
// op, on each available sink; pins/s is the sink's ceiling for the lane.
func BenchmarkSinkWrite(b *testing.B) {
	for _, size := range []int{500, 5000} {
		for name, s := range benchSinks(b) {
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				g := synth.New(uint64(size))
				var offset int64
				batches := make([][]pin.Cleaned, b.N)
				for i := range batches {
					for _, o := range pins(g, size) {
						offset++
						c, err := pin.CleanRaw(o, pin.Lineage{IngestedAt: time.Now(), Partition: 0, Offset: offset})
						if err != nil {
							b.Fatal(err)
						}
						batches[i] = append(batches[i], c)
					}
				}
				b.ResetTimer()
				for i := range b.N {
					if err := s.Write(context.Background(), batches[i], nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "pins/s")
			})
		}
	}
}

func benchSinks(b *testing.B) map[string]stream.Sink {
	ctx := context.Background()
	out := map[string]stream.Sink{}
	d, err := stream.OpenDuckDB(ctx, b.TempDir(), testenv.Log(b))
	testenv.Must(b, err)
	b.Cleanup(func() { d.Close() })
	out["embedded"] = d
	if url := testenv.Postgres(b); url != "" {
		p, err := stream.OpenPostgres(ctx, url, testenv.Log(b))
		testenv.Must(b, err)
		b.Cleanup(func() { p.Close() })
		out["postgres"] = p
	}
	return out
}
