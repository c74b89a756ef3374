package batch

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"pinpipe/pin"
)

// A spilled pin comes back as it went: nil apart from a pointer to zero,
// a nil tag list apart from an empty one, and the same instant in UTC.
func TestSpilledPinsComeBackUnchanged(t *testing.T) {
	zero32, zero64, empty := int32(0), int64(0), ""
	title := "A title, “quoted”"
	at := time.Date(2024, 1, 15, 23, 59, 59, 123456789, time.UTC)
	pins := []pin.Cleaned{
		{IDIndex: 1, Title: &title, Category: "art", UniqueID: "a", FollowerCount: &zero64, Downloaded: &zero32,
			Tags: []string{}, SaveLocation: &empty, IngestedAt: at, KafkaPartition: 2, KafkaOffset: 9},
		{IDIndex: 0, Category: "diy", UniqueID: "b", Tags: nil, IngestedAt: at.Add(-time.Hour)},
		{IDIndex: -5, Category: "", UniqueID: "c", Tags: []string{"x", ""}, IngestedAt: time.Unix(0, 0).UTC()},
	}
	var buf bytes.Buffer
	enc := pinCodec.enc(&buf)
	if err := enc.Encode(pins); err != nil {
		t.Fatal(err)
	}
	var got []pin.Cleaned
	if err := pinCodec.dec(&buf).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for i := range pins {
		if !reflect.DeepEqual(got[i], pins[i]) {
			t.Fatalf("pin %d:\n got %#v\nwant %#v", i, got[i], pins[i])
		}
	}
}

// A spill file cut anywhere, or with a byte changed, gives an error or
// other pins, never a panic or a huge allocation; cut between chunks, it
// ends cleanly.
func TestDamagedSpillFileIsAnError(t *testing.T) {
	title := "t"
	pins := []pin.Cleaned{
		{IDIndex: 7, Title: &title, Category: "art", UniqueID: "a", Tags: []string{"x", "yz"}, IngestedAt: time.Unix(1700000000, 5).UTC()},
		{IDIndex: 8, Category: "diy", UniqueID: "b", IngestedAt: time.Unix(1700000001, 0).UTC()},
	}
	var buf bytes.Buffer
	if err := pinCodec.enc(&buf).Encode(pins); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	for cut := 1; cut < len(whole); cut++ {
		var got []pin.Cleaned
		if err := pinCodec.dec(bytes.NewReader(whole[:cut])).Decode(&got); err == nil {
			t.Fatalf("cut at %d of %d: no error", cut, len(whole))
		}
	}
	for i := range whole {
		for _, b := range []byte{0x00, 0x7f, 0xff} {
			damaged := bytes.Clone(whole)
			damaged[i] = b
			var got []pin.Cleaned
			_ = pinCodec.dec(bytes.NewReader(damaged)).Decode(&got) // must not panic
		}
	}
	var got []pin.Cleaned
	dec := pinCodec.dec(bytes.NewReader(whole))
	if err := dec.Decode(&got); err != nil || len(got) != 2 {
		t.Fatalf("whole: %d pins, %v", len(got), err)
	}
	if err := dec.Decode(&got); err != io.EOF {
		t.Fatalf("after the last chunk: %v, want io.EOF", err)
	}
}

// prefetch gives next's chunks in order, then its end; its error once
// met; and stop returns whether or not the source was read to the end.
func TestPrefetchKeepsOrderErrorsAndStops(t *testing.T) {
	chunks := func(n int, fail error) func([]pin.Cleaned) ([]pin.Cleaned, error) {
		i := 0
		return func(buf []pin.Cleaned) ([]pin.Cleaned, error) {
			if i == n {
				return buf[:0], fail
			}
			i++
			buf = buf[:0]
			for k := range 3 {
				buf = append(buf, pin.Cleaned{KafkaOffset: int64(i*10 + k)})
			}
			return buf, nil
		}
	}
	next, stop := prefetch(chunks(50, nil))
	want := int64(10)
	for {
		c, err := next(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) == 0 {
			break
		}
		for _, p := range c {
			if p.KafkaOffset != want {
				t.Fatalf("got offset %d, want %d", p.KafkaOffset, want)
			}
			want++
			if want%10 == 3 {
				want += 7
			}
		}
	}
	if want != 510 {
		t.Fatalf("ended before offset %d, want 510", want)
	}
	if c, err := next(nil); len(c) != 0 || err != nil {
		t.Fatalf("after the end: %d pins, %v", len(c), err)
	}
	stop()

	boom := errors.New("boom")
	next, stop = prefetch(chunks(2, boom))
	var err error
	for range 4 {
		if _, err = next(nil); err != nil {
			break
		}
	}
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if _, err := next(nil); !errors.Is(err, boom) {
		t.Fatalf("after the error: %v, want boom again", err)
	}
	stop()

	_, stop = prefetch(chunks(1000, nil)) // never read
	stop()
}
