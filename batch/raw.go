package batch

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RawRecord is one row of the raw zone: a Kafka record exactly as it was
// accepted, with where it came from. Value is the original message bytes
// (the pin's JSON object as the client sent it).
type RawRecord struct {
	Topic     string    `parquet:"topic"`
	Partition int32     `parquet:"partition"`
	Offset    int64     `parquet:"offset"`
	Timestamp time.Time `parquet:"timestamp,timestamp(millisecond)"`
	Key       string    `parquet:"key"`
	Value     string    `parquet:"value"`
}

// RawKey returns the raw-zone object name for the records first..last of a
// partition on day dt: raw/dt=YYYY-MM-DD/part-<partition>-<first>-<last>.parquet.
// Offsets are zero-padded to 20 digits so names sort in offset order.
func RawKey(dt string, partition int, first, last int64) string {
	return fmt.Sprintf("raw/dt=%s/part-%d-%020d-%020d.parquet", dt, partition, first, last)
}

// ParseRawKey reads a name made by RawKey. Returns ok=false for any other
// name.
func ParseRawKey(key string) (dt string, partition int, first, last int64, ok bool) {
	rest, found := strings.CutPrefix(key, "raw/dt=")
	if !found {
		return "", 0, 0, 0, false
	}
	dt, name, found := strings.Cut(rest, "/part-")
	if !found || len(dt) != len("2006-01-02") {
		return "", 0, 0, 0, false
	}
	name, found = strings.CutSuffix(name, ".parquet")
	parts := strings.Split(name, "-")
	if !found || len(parts) != 3 {
		return "", 0, 0, 0, false
	}
	p, err1 := strconv.Atoi(parts[0])
	f, err2 := strconv.ParseInt(parts[1], 10, 64)
	l, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || f > l {
		return "", 0, 0, 0, false
	}
	return dt, p, f, l, true
}
