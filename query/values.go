package query

import (
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// jsonValue converts a value from the DuckDB driver into one that encodes
// as JSON as users expect, for a column of DuckDB type typ: strings,
// booleans and numbers as they are (integers of any size as JSON numbers,
// NaN and infinities as strings), DATE as "2006-01-02", TIME as
// "15:04:05.999999", timestamps as RFC 3339 in UTC, UUID as its text,
// BLOB as text (bytes that are not UTF-8 as \xNN), INTERVAL as
// "1 month 2 days 03:00:00", lists as arrays, structs and maps as objects.
// scrub rewrites strings (it hides server paths). nil stays nil.
func jsonValue(v driver.Value, typ string, scrub func(string) string) any {
	switch x := v.(type) {
	case nil, bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, int, uint:
		return x
	case string:
		return scrub(x)
	case float64:
		return jsonFloat(x)
	case float32:
		return jsonFloat(float64(x))
	case *big.Int:
		return json.Number(x.String())
	case duckdb.Decimal:
		return json.Number(x.String())
	case time.Time:
		return timeText(x, typ)
	case []byte:
		if typ == "UUID" && len(x) == 16 {
			return uuidText(x)
		}
		return blobText(x)
	case []any:
		out := make([]any, len(x))
		elem := strings.TrimSuffix(typ, "[]")
		for i, e := range x {
			out[i] = jsonValue(e, elem, scrub)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e, "", scrub)
		}
		return out
	case duckdb.OrderedMap:
		out := make(map[string]any, x.Len())
		vals := x.Values()
		for i, k := range x.Keys() {
			key, ok := k.(string)
			if !ok {
				b, _ := json.Marshal(jsonValue(k, "", scrub))
				key = string(b)
			}
			out[key] = jsonValue(vals[i], "", scrub)
		}
		return out
	case duckdb.Interval:
		return intervalText(x)
	case duckdb.Union:
		return jsonValue(x.Value, "", scrub)
	default:
		return scrub(fmt.Sprint(x))
	}
}

func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// timeText formats a DATE, TIME or TIMESTAMP; the driver gives all three as
// time.Time (a TIME on 0001-01-01).
func timeText(t time.Time, typ string) string {
	switch {
	case typ == "DATE":
		return t.Format(time.DateOnly)
	case strings.HasPrefix(typ, "TIME") && !strings.HasPrefix(typ, "TIMESTAMP"),
		typ == "" && t.Year() == 1 && t.YearDay() == 1:
		if _, off := t.Zone(); off != 0 || strings.Contains(typ, "TZ") || strings.Contains(typ, "TIME ZONE") {
			return t.Format("15:04:05.999999Z07:00")
		}
		return t.Format("15:04:05.999999")
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func uuidText(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// blobText returns b as text, escaping bytes that are not valid UTF-8 the
// way DuckDB prints blobs (\xNN).
func blobText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var s strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			fmt.Fprintf(&s, `\x%02X`, b[0])
			b = b[1:]
			continue
		}
		s.Write(b[:n])
		b = b[n:]
	}
	return s.String()
}

func intervalText(iv duckdb.Interval) string {
	var parts []string
	unit := func(n int64, name string) {
		if n != 0 {
			s := strconv.FormatInt(n, 10) + " " + name
			if n != 1 && n != -1 {
				s += "s"
			}
			parts = append(parts, s)
		}
	}
	unit(int64(iv.Months)/12, "year")
	unit(int64(iv.Months)%12, "month")
	unit(int64(iv.Days), "day")
	if iv.Micros != 0 || len(parts) == 0 {
		d := time.Duration(iv.Micros) * time.Microsecond
		sign := ""
		if d < 0 {
			sign, d = "-", -d
		}
		h, rest := d/time.Hour, d%time.Hour
		clock := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, rest/time.Minute, (rest%time.Minute)/time.Second)
		if us := rest % time.Second / time.Microsecond; us != 0 {
			clock += strings.TrimRight(fmt.Sprintf(".%06d", us), "0")
		}
		parts = append(parts, clock)
	}
	return strings.Join(parts, " ")
}
