package stream_test

import (
	"context"
	"fmt"
	"syscall"
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

// BenchmarkSinkWriteSmallBatch measures one micro-batch of 100 new pins (a
// single-pin load's 100 ms) on the embedded sink holding stored pins
// already: the batch's fixed cost, and how it grows with the table.
func BenchmarkSinkWriteSmallBatch(b *testing.B) {
	for _, stored := range []int{0, 100_000, 400_000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) {
			s := teststores.StreamSinks(b)["embedded"]
			g := synth.New(uint64(stored) + 1)
			var offset int64
			batch := func(n int) []pin.Cleaned {
				out := make([]pin.Cleaned, 0, n)
				for _, o := range pins(g, n) {
					offset++
					c, err := pin.CleanRaw(o, pin.Lineage{IngestedAt: time.Now(), Partition: 0, Offset: offset})
					if err != nil {
						b.Fatal(err)
					}
					out = append(out, c)
				}
				return out
			}
			for done := 0; done < stored; done += 10_000 {
				if err := s.Write(context.Background(), batch(10_000), nil); err != nil {
					b.Fatal(err)
				}
			}
			batches := make([][]pin.Cleaned, b.N)
			for i := range batches {
				batches[i] = batch(100)
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Write(context.Background(), batches[i], nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/batch")
		})
	}
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
