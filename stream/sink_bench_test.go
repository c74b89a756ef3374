package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"pinpipe/internal/teststores"
	"pinpipe/pin"
	"pinpipe/synth"
)

// BenchmarkSinkWrite measures one micro-batch transaction of new pins per
// op, on each available sink; pins/s is the sink's ceiling for the lane.
func BenchmarkSinkWrite(b *testing.B) {
	for _, size := range []int{500, 5000} {
		for name, s := range teststores.StreamSinks(b) {
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
