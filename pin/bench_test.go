package pin

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// reportPins reports the throughput of a benchmark that handled pins pins
// per iteration.
func reportPins(b *testing.B, pins int) {
	b.ReportMetric(float64(b.N*pins)/b.Elapsed().Seconds(), "pins/s")
}

// ndjson1000 is 1000 real pins (the samples, repeated) as NDJSON.
func ndjson1000(b testing.TB) []byte {
	lines := samplePins(b)
	var body bytes.Buffer
	for i := range 1000 {
		body.Write(lines[i%len(lines)])
		body.WriteByte('\n')
	}
	return body.Bytes()
}

func BenchmarkParseRequestSingle(b *testing.B) {
	body := samplePins(b)[2] // a full pin with escapes, as the source app sends it
	benchParse(b, body, false, 1)
}

func BenchmarkParseRequestNDJSON1000(b *testing.B) {
	body := ndjson1000(b)
	benchParse(b, body, true, 1000)
}

// BenchmarkParseRequestNDJSON1000UnknownFields is the NDJSON benchmark with
// two unknown fields per pin, a string and a nested object, whose sizes the
// field limit measures.
func BenchmarkParseRequestNDJSON1000UnknownFields(b *testing.B) {
	body := bytes.ReplaceAll(ndjson1000(b), []byte("}\n"),
		[]byte(`, "source": "scraper-7", "scraped": {"at": "2021-01-01T00:00:00Z", "ids": [1, 2, 3], "ok": true}}`+"\n"))
	benchParse(b, body, true, 1000)
}

func BenchmarkParseRequestArray1000(b *testing.B) {
	body := bytes.ReplaceAll(bytes.TrimSuffix(ndjson1000(b), []byte("\n")), []byte("\n"), []byte(",\n"))
	body = append(append([]byte("[\n"), body...), "\n]"...)
	benchParse(b, body, false, 1000)
}

// BenchmarkEncodingJSONBaseline is the standard library doing less than
// ParseRequest does per pin (decode to raw fields and compact, no checks,
// no string decoding): the bar the hand-written scanner has to beat.
func BenchmarkEncodingJSONBaseline(b *testing.B) {
	body := ndjson1000(b)
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		for _, l := range lines {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(l, &m); err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			if err := json.Compact(&buf, l); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportPins(b, 1000)
}

func BenchmarkClean(b *testing.B) {
	p, err := Validate(samplePins(b)[2])
	if err != nil {
		b.Fatal(err)
	}
	lin := Lineage{IngestedAt: time.Now(), Partition: 1, Offset: 42}
	b.ReportAllocs()
	for b.Loop() {
		Clean(p, lin)
	}
	reportPins(b, 1)
}

func BenchmarkCleanRaw(b *testing.B) {
	raw := samplePins(b)[2]
	lin := Lineage{IngestedAt: time.Now(), Partition: 1, Offset: 42}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CleanRaw(raw, lin); err != nil {
			b.Fatal(err)
		}
	}
	reportPins(b, 1)
}

// benchParse measures ParseRequest over body, reporting bytes, allocations
// and the time per pin of a body of pins pins.
func benchParse(b *testing.B, body []byte, ndjson bool, pins int) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(body, ndjson); err != nil {
			b.Fatal(err)
		}
	}
	reportPins(b, pins)
}
