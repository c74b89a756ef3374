// Package layout is the lake's key layout, written once: how the landing, the
// batch job and the query mirror name and recognise the objects of the raw,
// curated and rejected zones. It formats and parses keys and does nothing
// else, so any package can import it without pulling in a store or a driver.
//
// Every key the pipeline writes sits in a zone's day partition:
//
//	raw/dt=YYYY-MM-DD/part-<partition>-<first offset>-<last offset>.parquet
//	curated/dt=YYYY-MM-DD/pins.parquet
//	curated/dt=YYYY-MM-DD/_committed-<run>
//	rejected/dt=YYYY-MM-DD/rejected.parquet
//
// The partition is a decimal number without leading zeros, the offsets are
// zero-padded to 20 digits (so names sort in offset order), and a run ID is
// any non-empty text without '/'.
//
// A curated or rejected day is one object at a fixed key, so a run of the
// day replaces it with one S3 PUT (or CompleteMultipartUpload), which S3
// makes visible whole: a reader that knows nothing of pinpipe's markers
// (Spark, Trino, Athena listing the prefix) sees the day from one run or
// the other, never both and never half. Lakes written before kept a day as
// parts of runs, named by them:
//
//	curated/dt=YYYY-MM-DD/part-<run>-<n>.parquet    (n zero-padded to 4 digits)
//	rejected/dt=YYYY-MM-DD/<run>.parquet
//
// Parse still reads those names, readers take such a day from the parts of
// its newest committed run until a run of the day replaces them with the
// day's object, and no new key has these forms.
//
// Outside the zones, the landing keeps one small checkpoint per partition of
// the topic it lands, so a restart reads O(partitions) objects rather than
// listing the raw zone:
//
//	_landing/<topic>/p=<partition>.json
//
// The leading "_" keeps it out of what Spark, Trino and Athena read, and the
// query mirror copies only the zones.
package layout

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Zone is a top-level prefix of the lake.
type Zone string

// The lake's zones.
const (
	Raw      Zone = "raw"      // Kafka records as they were accepted, written by the landing
	Curated  Zone = "curated"  // cleaned pins, one row per unique_id, written by the batch job
	Rejected Zone = "rejected" // raw records that failed cleaning, with the reason
)

// Prefix returns the prefix of every key of the zone: "raw/".
func (z Zone) Prefix() string { return string(z) + "/" }

// DayPrefix returns the prefix of the zone's partition of day dt
// (YYYY-MM-DD): "raw/dt=2026-11-24/". dt is not checked; a prefix made from
// an invalid date matches no key that Parse accepts.
func (z Zone) DayPrefix(dt string) string { return string(z) + "/dt=" + dt + "/" }

// RawKey returns the raw-zone key of the records first..last of a Kafka
// partition landed on day dt:
// raw/dt=YYYY-MM-DD/part-<partition>-<first>-<last>.parquet, offsets padded
// to 20 digits. The key parses back to the same values only when dt is a
// valid date, partition ≥ 0 and 0 ≤ first ≤ last.
func RawKey(dt string, partition int, first, last int64) string {
	return fmt.Sprintf("%spart-%d-%020d-%020d.parquet", Raw.DayPrefix(dt), partition, first, last)
}

// CuratedKey returns the key of part n of run's curated objects of day dt
// in the old layout, which the pipeline reads but no longer writes:
// curated/dt=YYYY-MM-DD/part-<run>-<n>.parquet, n padded to 4 digits. The
// key parses back to the same values only when dt is a valid date, run is
// valid (ValidRun) and n ≥ 0.
func CuratedKey(dt, run string, n int) string {
	return fmt.Sprintf("%spart-%s-%04d.parquet", Curated.DayPrefix(dt), run, n)
}

// CuratedDayKey returns the key of day dt's curated object:
// curated/dt=YYYY-MM-DD/pins.parquet. Each run of the day replaces it
// whole. The key parses back (Kind CuratedDay) only when dt is a valid date.
func CuratedDayKey(dt string) string { return Curated.DayPrefix(dt) + curatedDayName }

// RejectedDayKey returns the key of day dt's rejected object:
// rejected/dt=YYYY-MM-DD/rejected.parquet. Each run of the day that
// rejects records replaces it; a run that rejects none removes it. The key
// parses back (Kind RejectedDay) only when dt is a valid date.
func RejectedDayKey(dt string) string { return Rejected.DayPrefix(dt) + rejectedDayName }

// CommitKey returns the marker run writes after its curated object of day
// dt: curated/dt=YYYY-MM-DD/_committed-<run>. It records what the run read
// of the raw zone (so late raw objects tell a stale day); readers of a day
// kept as parts (the old layout) take it from its newest run that has one.
// Spark, Trino and Athena skip names that start with "_". The key parses
// back only when dt is a valid date and run is valid (ValidRun).
func CommitKey(dt, run string) string {
	return Curated.DayPrefix(dt) + commitPrefix + run
}

// RejectedKey returns the key of run's rejected object of day dt in the
// old layout: rejected/dt=YYYY-MM-DD/<run>.parquet. The key parses back only
// when dt is a valid date, run is valid (ValidRun) and run is not
// "rejected" (that name is RejectedDayKey's).
func RejectedKey(dt, run string) string {
	return Rejected.DayPrefix(dt) + run + parquetExt
}

// ExpiredKey returns the marker raw-zone retention leaves in a day whose
// raw objects it removed after the day was curated:
// raw/dt=YYYY-MM-DD/_expired. A day with the marker can no longer be run
// again (its curated day stays); Parse reads the key as Kind Other, and
// readers of the raw zone skip it, as its name is no raw part.
func ExpiredKey(dt string) string { return Raw.DayPrefix(dt) + ExpiredName }

// ExpiredName is the last path segment of ExpiredKey.
const ExpiredName = "_expired"

// CheckpointPrefix is the prefix of every landing checkpoint of topic:
// "_landing/<topic>/".
func CheckpointPrefix(topic string) string { return "_landing/" + topic + "/" }

// CheckpointKey returns the key of the landing's checkpoint of a partition
// of topic: _landing/<topic>/p=<partition>.json. Kafka topic names hold only
// ASCII letters, digits, '.', '_' and '-', so the key needs no escaping.
func CheckpointKey(topic string, partition int) string {
	return fmt.Sprintf("%sp=%d.json", CheckpointPrefix(topic), partition)
}

const (
	partPrefix      = "part-"
	commitPrefix    = "_committed-"
	parquetExt      = ".parquet"
	offsetDigits    = 20
	curatedDayName  = "pins.parquet"
	rejectedDayName = "rejected.parquet"
)

// ValidDay reports whether dt is a date written as YYYY-MM-DD, the form of
// every day partition. Returns false for impossible dates (2026-02-30) and
// other spellings (2026-2-3).
func ValidDay(dt string) bool {
	// time.Parse takes exactly four digits of year and two of month and
	// day for this layout, so what it accepts is already in this form.
	_, err := time.Parse(time.DateOnly, dt)
	return err == nil
}

// ValidRun reports whether run can name a run in a key: it is not empty and
// holds no '/'.
func ValidRun(run string) bool { return run != "" && !strings.Contains(run, "/") }

// Kind says which of the pipeline's objects a key names.
type Kind uint8

const (
	// Other is a key in a zone's day partition whose name is none of the
	// forms below: another writer's object, a _SUCCESS marker, or a name
	// spelled differently from how the pipeline writes it (part-0-1-2.parquet
	// with unpadded offsets).
	Other       Kind = iota
	RawPart          // raw/dt=…/part-<partition>-<first>-<last>.parquet
	CuratedPart      // curated/dt=…/part-<run>-<n>.parquet (old layout)
	Commit           // curated/dt=…/_committed-<run>
	RejectedRun      // rejected/dt=…/<run>.parquet (old layout)
	CuratedDay       // curated/dt=…/pins.parquet
	RejectedDay      // rejected/dt=…/rejected.parquet
)

func (k Kind) String() string {
	switch k {
	case RawPart:
		return "raw part"
	case CuratedPart:
		return "curated part"
	case Commit:
		return "commit marker"
	case RejectedRun:
		return "rejected object"
	case CuratedDay:
		return "curated day"
	case RejectedDay:
		return "rejected day"
	}
	return "other"
}

// Key is a lake key read by Parse. Fields a kind does not use are zero.
type Key struct {
	Zone Zone
	DT   string // the day partition, YYYY-MM-DD
	Name string // the last path segment: part-….parquet, _committed-…
	Kind Kind

	Partition   int    // RawPart: the Kafka partition
	First, Last int64  // RawPart: offsets of the object's first and last records
	Run         string // CuratedPart, Commit and RejectedRun: the batch run's ID
	N           int    // CuratedPart: the part number
}

// String returns the key k names, formatted by the function that writes keys
// of its kind (RawKey, CuratedKey, CommitKey, RejectedKey), or from Zone, DT
// and Name for Other. For every key Parse accepts, Parse(key).String() == key.
func (k Key) String() string {
	switch k.Kind {
	case RawPart:
		return RawKey(k.DT, k.Partition, k.First, k.Last)
	case CuratedPart:
		return CuratedKey(k.DT, k.Run, k.N)
	case Commit:
		return CommitKey(k.DT, k.Run)
	case RejectedRun:
		return RejectedKey(k.DT, k.Run)
	case CuratedDay:
		return CuratedDayKey(k.DT)
	case RejectedDay:
		return RejectedDayKey(k.DT)
	}
	return k.Zone.DayPrefix(k.DT) + k.Name
}

// Parse reads a lake key. It returns ok=false unless key is
// <zone>/dt=<YYYY-MM-DD>/<name> with one of the three zones, a valid date and
// a non-empty name without '/' (so zone and day prefixes, deeper paths and
// keys outside the zones are refused). A key in a day partition whose name is
// not one the pipeline writes in that zone, spelled exactly as it writes it,
// returns ok=true with Kind Other and only Zone, DT and Name set. Whatever
// Parse accepts formats back to the same key with Key.String.
func Parse(key string) (k Key, ok bool) {
	zone, rest, _ := strings.Cut(key, "/")
	day, name, _ := strings.Cut(rest, "/")
	dt, hasDT := strings.CutPrefix(day, "dt=")
	switch Zone(zone) {
	case Raw, Curated, Rejected:
	default:
		return Key{}, false
	}
	if !hasDT || !ValidDay(dt) || name == "" || strings.Contains(name, "/") {
		return Key{}, false
	}
	k = Key{Zone: Zone(zone), DT: dt, Name: name}
	switch k.Zone {
	case Raw:
		k.Partition, k.First, k.Last, ok = parseRawName(name)
		k.Kind = RawPart
	case Curated:
		if name == curatedDayName {
			k.Kind, ok = CuratedDay, true
		} else if k.Run, ok = strings.CutPrefix(name, commitPrefix); ok {
			k.Kind, ok = Commit, ValidRun(k.Run)
		} else {
			k.Run, k.N, ok = parseCuratedName(name)
			k.Kind = CuratedPart
		}
	case Rejected:
		if name == rejectedDayName {
			k.Kind, ok = RejectedDay, true
			break
		}
		k.Run, ok = strings.CutSuffix(name, parquetExt)
		k.Kind, ok = RejectedRun, ok && ValidRun(k.Run)
	}
	if !ok {
		return Key{Zone: k.Zone, DT: dt, Name: name}, true
	}
	return k, true
}

// parseRawName reads part-<partition>-<first>-<last>.parquet as RawKey
// writes it. Returns ok=false for any other spelling.
func parseRawName(name string) (partition int, first, last int64, ok bool) {
	stem, ok1 := strings.CutPrefix(name, partPrefix)
	stem, ok2 := strings.CutSuffix(stem, parquetExt)
	f := strings.Split(stem, "-")
	if !ok1 || !ok2 || len(f) != 3 || len(f[1]) != offsetDigits || len(f[2]) != offsetDigits {
		return 0, 0, 0, false
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p < 0 || strconv.Itoa(p) != f[0] {
		return 0, 0, 0, false
	}
	first, ok1 = parseDigits(f[1])
	last, ok2 = parseDigits(f[2])
	if !ok1 || !ok2 || first > last {
		return 0, 0, 0, false
	}
	return p, first, last, true
}

// parseCuratedName reads part-<run>-<n>.parquet as CuratedKey writes it; the
// run is everything up to the last '-', so it may hold dashes itself.
// Returns ok=false for any other spelling.
func parseCuratedName(name string) (run string, n int, ok bool) {
	stem, ok1 := strings.CutPrefix(name, partPrefix)
	stem, ok2 := strings.CutSuffix(stem, parquetExt)
	i := strings.LastIndexByte(stem, '-')
	if !ok1 || !ok2 || i < 0 {
		return "", 0, false
	}
	run, digits := stem[:i], stem[i+1:]
	// %04d pads to four digits and never zero-pads a longer number.
	padded := len(digits) == 4 || len(digits) > 4 && digits[0] != '0'
	v, err := strconv.Atoi(digits)
	if !padded || err != nil || strings.Trim(digits, "0123456789") != "" || !ValidRun(run) {
		return "", 0, false
	}
	return run, v, true
}

// parseDigits reads a non-empty string of ASCII digits. Returns ok=false for
// anything else (signs included) and for values past int64.
func parseDigits(s string) (int64, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}
