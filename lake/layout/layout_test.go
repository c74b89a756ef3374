package layout

import (
	"math"
	"strings"
	"testing"
)

func TestFormattersWriteTheDocumentedKeys(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{RawKey("2026-11-24", 3, 0, 9), "raw/dt=2026-11-24/part-3-00000000000000000000-00000000000000000009.parquet"},
		{RawKey("2026-11-24", 12, 1234567, math.MaxInt64), "raw/dt=2026-11-24/part-12-00000000000001234567-09223372036854775807.parquet"},
		{CuratedKey("2026-11-24", "20261125T080000.000001Z-3fa2c1", 0), "curated/dt=2026-11-24/part-20261125T080000.000001Z-3fa2c1-0000.parquet"},
		{CuratedKey("2026-11-24", "r", 12345), "curated/dt=2026-11-24/part-r-12345.parquet"},
		{CommitKey("2026-11-24", "20261125T080000.000001Z-3fa2c1"), "curated/dt=2026-11-24/_committed-20261125T080000.000001Z-3fa2c1"},
		{RejectedKey("2026-11-24", "20261125T080000.000001Z-3fa2c1"), "rejected/dt=2026-11-24/20261125T080000.000001Z-3fa2c1.parquet"},
		{CuratedDayKey("2026-11-24"), "curated/dt=2026-11-24/pins.parquet"},
		{RejectedDayKey("2026-11-24"), "rejected/dt=2026-11-24/rejected.parquet"},
		{Raw.Prefix(), "raw/"},
		{Curated.DayPrefix("2026-11-24"), "curated/dt=2026-11-24/"},
		{Rejected.DayPrefix("2026-11-24"), "rejected/dt=2026-11-24/"},
		{CheckpointKey("pins", 12), "_landing/pins/p=12.json"},
		{CheckpointPrefix("pins"), "_landing/pins/"},
	} {
		if c.got != c.want {
			t.Errorf("formatted %q, want %q", c.got, c.want)
		}
	}
}

// TestRawKeysSortInOffsetOrder guards the padding the landing's resume and
// the job's reading order depend on.
func TestRawKeysSortInOffsetOrder(t *testing.T) {
	if a, b := RawKey("2026-11-24", 0, 9, 9), RawKey("2026-11-24", 0, 10, 10); a >= b {
		t.Fatalf("%s sorts after %s", a, b)
	}
}

func TestParseReadsEveryKindOfKey(t *testing.T) {
	for _, c := range []struct {
		key  string
		want Key
	}{
		{"raw/dt=2026-11-24/part-3-00000000000000000000-00000000000000000009.parquet",
			Key{Zone: Raw, DT: "2026-11-24", Name: "part-3-00000000000000000000-00000000000000000009.parquet", Kind: RawPart, Partition: 3, Last: 9}},
		{"raw/dt=2026-11-24/part-0-00000000000000000007-00000000000000000007.parquet",
			Key{Zone: Raw, DT: "2026-11-24", Name: "part-0-00000000000000000007-00000000000000000007.parquet", Kind: RawPart, First: 7, Last: 7}},
		{"curated/dt=2026-11-24/part-20261125T080000.000001Z-3fa2c1-0002.parquet",
			Key{Zone: Curated, DT: "2026-11-24", Name: "part-20261125T080000.000001Z-3fa2c1-0002.parquet", Kind: CuratedPart, Run: "20261125T080000.000001Z-3fa2c1", N: 2}},
		{"curated/dt=2026-11-24/part-r-12345.parquet",
			Key{Zone: Curated, DT: "2026-11-24", Name: "part-r-12345.parquet", Kind: CuratedPart, Run: "r", N: 12345}},
		{"curated/dt=2026-11-24/_committed-20261125T080000.000001Z-3fa2c1",
			Key{Zone: Curated, DT: "2026-11-24", Name: "_committed-20261125T080000.000001Z-3fa2c1", Kind: Commit, Run: "20261125T080000.000001Z-3fa2c1"}},
		{"curated/dt=2026-11-24/pins.parquet",
			Key{Zone: Curated, DT: "2026-11-24", Name: "pins.parquet", Kind: CuratedDay}},
		{"rejected/dt=2026-11-24/rejected.parquet",
			Key{Zone: Rejected, DT: "2026-11-24", Name: "rejected.parquet", Kind: RejectedDay}},
		{"rejected/dt=2026-11-24/20261125T080000.000001Z-3fa2c1.parquet",
			Key{Zone: Rejected, DT: "2026-11-24", Name: "20261125T080000.000001Z-3fa2c1.parquet", Kind: RejectedRun, Run: "20261125T080000.000001Z-3fa2c1"}},
	} {
		got, ok := Parse(c.key)
		if !ok || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v\nwant %+v, true", c.key, got, ok, c.want)
		}
	}
}

// TestParseCallsOtherSpellingsOther: a key in a day partition that the
// pipeline did not write, or wrote differently, is recognised as in the
// partition but is of no kind, so no reader mistakes it for its own.
func TestParseCallsOtherSpellingsOther(t *testing.T) {
	for _, key := range []string{
		"raw/dt=2026-11-24/_SUCCESS",
		"raw/dt=2026-11-24/part-3-0-9.parquet",                                          // offsets not padded
		"raw/dt=2026-11-24/part-03-00000000000000000000-00000000000000000009.parquet",   // partition padded
		"raw/dt=2026-11-24/part-+3-00000000000000000000-00000000000000000009.parquet",   // signed partition
		"raw/dt=2026-11-24/part--3-00000000000000000000-00000000000000000009.parquet",   // negative partition
		"raw/dt=2026-11-24/part-3-00000000000000000009-00000000000000000000.parquet",    // first > last
		"raw/dt=2026-11-24/part-3-+0000000000000000000-00000000000000000009.parquet",    // signed offset
		"raw/dt=2026-11-24/part-3-99999999999999999999-99999999999999999999.parquet",    // past int64
		"raw/dt=2026-11-24/part-3-00000000000000000000-00000000000000000009.parquet.gz", // other suffix
		"raw/dt=2026-11-24/part-3-00000000000000000000-00000000000000000009",
		"raw/dt=2026-11-24/part-3-00000000000000000000.parquet",
		"curated/dt=2026-11-24/legacy.parquet",
		"curated/dt=2026-11-24/part-r-0.parquet",     // part number not padded
		"curated/dt=2026-11-24/part-r-00012.parquet", // padded past 4 digits
		"curated/dt=2026-11-24/part-r-x.parquet",
		"curated/dt=2026-11-24/part--0000.parquet", // no run
		"curated/dt=2026-11-24/part-0000.parquet",  // no run
		"curated/dt=2026-11-24/_committed-",
		"curated/dt=2026-11-24/_committed",
		"curated/dt=2026-11-24/_SUCCESS",
		"rejected/dt=2026-11-24/.parquet",
		"rejected/dt=2026-11-24/run.csv",
	} {
		k, ok := Parse(key)
		if !ok || k.Kind != Other || k.String() != key || k.Run != "" || k.N != 0 || k.Partition != 0 || k.First != 0 || k.Last != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want Kind Other with only Zone, DT and Name set", key, k, ok)
		}
	}
}

func TestParseRefusesKeysOutsideADayPartition(t *testing.T) {
	for _, key := range []string{
		"",
		"raw",
		"raw/",
		"raw/dt=2026-11-24",
		"raw/dt=2026-11-24/",                     // the day prefix itself
		"raw/dt=2026-11-24/sub/part-1-0.parquet", // deeper path
		"raw/dt=2026-02-30/part-0-00000000000000000000-00000000000000000000.parquet", // no such day
		"raw/dt=2026-2-3/x.parquet",
		"raw/dt=bad/x.parquet",
		"raw/2026-11-24/x.parquet",
		"raw/DT=2026-11-24/x.parquet",
		"/raw/dt=2026-11-24/x.parquet",
		"Raw/dt=2026-11-24/x.parquet",
		"stream/dt=2026-11-24/x.parquet", // not a zone
		"curated/dt=2026-11-24//x.parquet",
		"_landing/pins/p=0.json", // a checkpoint is in no zone
	} {
		if k, ok := Parse(key); ok || k != (Key{}) {
			t.Errorf("Parse(%q) = %+v, %v; want the zero Key, false", key, k, ok)
		}
	}
}

func TestKeysRoundTrip(t *testing.T) {
	for _, k := range []Key{
		{Zone: Raw, DT: "2026-11-24", Kind: RawPart, Partition: 0, First: 0, Last: 0},
		{Zone: Raw, DT: "1999-12-31", Kind: RawPart, Partition: 2147483647, First: 5, Last: math.MaxInt64},
		{Zone: Curated, DT: "2026-11-24", Kind: CuratedPart, Run: "20261125T080000.000001Z-3fa2c1", N: 0},
		{Zone: Curated, DT: "2026-11-24", Kind: CuratedPart, Run: "a-0001", N: 9999},
		{Zone: Curated, DT: "2026-11-24", Kind: CuratedPart, Run: "run", N: 10000},
		{Zone: Curated, DT: "2024-02-29", Kind: Commit, Run: "20261125T080000.000001Z-3fa2c1"},
		{Zone: Curated, DT: "2026-11-24", Kind: Commit, Run: "with spaces and ~"},
		{Zone: Rejected, DT: "2026-11-24", Kind: RejectedRun, Run: "20261125T080000.000001Z-3fa2c1"},
		{Zone: Rejected, DT: "2026-11-24", Kind: RejectedRun, Run: "x.parquet"},
	} {
		key := k.String()
		got, ok := Parse(key)
		k.Name = key[strings.LastIndexByte(key, '/')+1:]
		if !ok || got != k {
			t.Errorf("Parse(%q) = %+v, %v\nwant %+v, true", key, got, ok, k)
		}
	}
}

func TestValidDay(t *testing.T) {
	for dt, want := range map[string]bool{
		"2026-11-24": true, "2024-02-29": true, "0001-01-01": true,
		"2023-02-29": false, "2026-13-01": false, "2026-1-01": false, "26-11-24": false,
		"2026-11-24 ": false, "2026-11-24T00:00:00Z": false, "": false,
	} {
		if ValidDay(dt) != want {
			t.Errorf("ValidDay(%q) = %v, want %v", dt, !want, want)
		}
	}
}

// FuzzParse: Parse never panics, anything it accepts formats back to the
// same key, and a key of a kind is exactly what that kind's formatter writes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		RawKey("2026-11-24", 3, 0, 9),
		CuratedKey("2026-11-24", "20261125T080000.000001Z-3fa2c1", 1),
		CommitKey("2026-11-24", "20261125T080000.000001Z-3fa2c1"),
		RejectedKey("2026-11-24", "20261125T080000.000001Z-3fa2c1"),
		"curated/dt=2026-11-24/part-r-0.parquet",
		"raw/dt=2026-11-24/_SUCCESS",
		"raw/dt=2026-11-24/sub/x.parquet",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k, ok := Parse(key)
		if !ok {
			if k != (Key{}) {
				t.Fatalf("Parse(%q) refused the key but returned %+v", key, k)
			}
			return
		}
		if got := k.String(); got != key {
			t.Fatalf("Parse(%q) = %+v, which formats as %q", key, k, got)
		}
		if !strings.HasPrefix(key, k.Zone.DayPrefix(k.DT)) || key[len(k.Zone.DayPrefix(k.DT)):] != k.Name {
			t.Fatalf("Parse(%q) = %+v: zone, day and name do not make the key", key, k)
		}
		if k.Kind != Other && !ValidRun(k.Run) && k.Kind != RawPart {
			t.Fatalf("Parse(%q) = %+v: a run kind without a valid run", key, k)
		}
		if k.Kind == RawPart && (k.Partition < 0 || k.First < 0 || k.First > k.Last) {
			t.Fatalf("Parse(%q) = %+v: offsets out of order", key, k)
		}
	})
}

// BenchmarkParse reads one key of each kind, as the landing's resume and the
// mirror's refresh do for every object they list.
func BenchmarkParse(b *testing.B) {
	keys := []string{
		RawKey("2026-11-24", 3, 0, 9999),
		CuratedKey("2026-11-24", "20261125T080000.000001Z-3fa2c1", 1),
		CommitKey("2026-11-24", "20261125T080000.000001Z-3fa2c1"),
		RejectedKey("2026-11-24", "20261125T080000.000001Z-3fa2c1"),
	}
	for i := 0; b.Loop(); i++ {
		if _, ok := Parse(keys[i%len(keys)]); !ok {
			b.Fatal("refused a key it formatted")
		}
	}
}
