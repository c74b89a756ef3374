package stream

import (
	"context"
	"fmt"
	"strings"
	"time"

	"pinpipe/pin"
)

// Sink stores the lane's micro-batches and answers the real-time view: Postgres,
// or the embedded DuckDB stand-in. Both keep the same tables (migrations/) and
// run the same statements (below), so they give the same answers.
type Sink interface {
	// Write stores one micro-batch in one transaction: pins upserted by
	// unique_id (at most one pin per unique_id; a pin only replaces an older
	// record of itself, so writing a batch twice changes nothing), the
	// aggregates moved by exactly the rows that changed, and the rejected
	// records. Returns an error, and stores nothing, when the store is
	// unreachable; the caller retries.
	Write(ctx context.Context, pins []pin.Cleaned, rejected []Rejected) error
	// Recent returns the n newest pins by ingested_at (then partition and
	// offset), newest first; empty when there are none.
	Recent(ctx context.Context, n int) ([]pin.Cleaned, error)
	// Stats returns Total, ByCategory and PerMinute (Lag and Freshness are
	// the lane's). PerMinute has the 60 minutes up to and including the
	// current one, oldest first, 0 for minutes without pins.
	Stats(ctx context.Context) (pin.Stats, error)
	// Check returns nil when the store answers and its schema is migrated.
	Check(ctx context.Context) error
	Close() error
}

// Rejected is a record of the topic that is not a valid pin.
type Rejected struct {
	Topic      string
	Partition  int32
	Offset     int64
	IngestedAt time.Time
	Reason     string
	Raw        []byte
}

// columns are pins' columns in order: the cleaned record's, then dt.
var columns = append(append([]string{}, pin.Columns...), "dt")

// values returns c's row for pinterest.pins, in columns order.
func values(c *pin.Cleaned) []any {
	dt, _ := time.Parse(time.DateOnly, pin.DT(c.IngestedAt))
	return append(c.Values(), dt)
}

// The statements both sinks run. The micro-batch is first loaded into the
// temporary table stream_batch (pins' columns, at most one row per
// unique_id). Then, with no other writer running (the sinks serialise this
// part), deltaSelect finds the batch rows the upsert will add or let replace
// a stored row, with the replaced row's keys, into the temporary table
// stream_delta; the aggregates move by it; and the upsert runs. A batch row
// replaces a stored one only when it is a later version of the pin
// (pin.Newer, as SQL). So a replay, which brings equal records, changes no
// row and no count.

// deltaSelect is the body of stream_delta: one row per batch row that will
// change pins, with its unique_id, category and minute, and those of the row
// it replaces (NULL for a new pin).
var deltaSelect = deltaFrom("pinterest.pins")

// deltaFrom returns deltaSelect with the stored pins read from stored (a
// table or a CTE holding at least pins' key, category and lineage).
func deltaFrom(stored string) string {
	return `SELECT b.unique_id, b.category, date_trunc('minute', b.ingested_at) AS minute,
       p.category AS old_category, date_trunc('minute', p.ingested_at) AS old_minute
FROM stream_batch b LEFT JOIN ` + stored + ` p ON p.unique_id = b.unique_id
WHERE p.unique_id IS NULL OR ` + pin.NewerSQL("b", "p")
}

// applyDelta moves the aggregate table's counts by stream_delta: +1 under
// each changing row's key, -1 under the key of the row it replaces.
func applyDelta(table, key string) string {
	return `INSERT INTO pinterest.` + table + ` (` + key + `, pins)
SELECT k, sum(n) FROM (
    SELECT ` + key + ` AS k, 1 AS n FROM stream_delta
    UNION ALL
    SELECT old_` + key + `, -1 FROM stream_delta WHERE old_` + key + ` IS NOT NULL
) d
GROUP BY k HAVING sum(n) <> 0 ORDER BY k
ON CONFLICT (` + key + `) DO UPDATE SET pins = ` + table + `.pins + EXCLUDED.pins`
}

// mergeStatements follow the sink's statement that fills stream_delta.
var mergeStatements = []string{
	applyDelta("pins_by_category", "category"),
	applyDelta("pins_by_minute", "minute"),
	upsert(),
}

func upsert() string {
	var set []string
	for _, c := range columns {
		if c != "unique_id" {
			set = append(set, c+" = EXCLUDED."+c)
		}
	}
	list := strings.Join(columns, ", ")
	return `INSERT INTO pinterest.pins (` + list + `)
SELECT ` + list + ` FROM stream_batch ORDER BY unique_id
ON CONFLICT (unique_id) DO UPDATE SET ` + strings.Join(set, ", ") + `
WHERE ` + pin.NewerSQL("EXCLUDED", "pins")
}

const insertRejected = `INSERT INTO pinterest.rejected (topic, kafka_partition, kafka_offset, ingested_at, reason, raw)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`

// The reads.
var (
	selectRecent = `SELECT ` + strings.Join(pin.Columns, ", ") + ` FROM pinterest.pins
ORDER BY ingested_at DESC, kafka_partition DESC, kafka_offset DESC LIMIT $1`
	selectByCategory = `SELECT category, pins FROM pinterest.pins_by_category WHERE pins <> 0 ORDER BY category`
	selectByMinute   = `SELECT minute, pins FROM pinterest.pins_by_minute WHERE minute >= $1 AND minute < $2 ORDER BY minute`
)

// scanDest returns the scan destinations of selectRecent's columns into c;
// tags is where the list columns go (the drivers return lists differently).
func scanDest(c *pin.Cleaned, tags any) []any {
	dest := c.Fields()
	for i, col := range pin.Schema {
		if col.Kind == pin.TextList {
			dest[i] = tags
		}
	}
	return dest
}

// lastHour returns the window of Stats.PerMinute: from 59 minutes before
// now's minute to the end of now's minute.
func lastHour(now time.Time) (from, to time.Time) {
	cur := now.UTC().Truncate(time.Minute)
	return cur.Add(-59 * time.Minute), cur.Add(time.Minute)
}

// perMinute returns the 60 minutes from from, oldest first, with the counts
// of got (minute's Unix time → pins) and 0 for the others.
func perMinute(from time.Time, got map[int64]int64) []pin.MinuteCount {
	out := make([]pin.MinuteCount, 60)
	for i := range out {
		m := from.Add(time.Duration(i) * time.Minute)
		out[i] = pin.MinuteCount{Minute: m, Pins: got[m.Unix()]}
	}
	return out
}

// statsOf assembles Stats from the aggregate rows.
func statsOf(byCategory map[string]int64, from time.Time, byMinute map[int64]int64) pin.Stats {
	st := pin.Stats{ByCategory: byCategory, PerMinute: perMinute(from, byMinute)}
	for _, n := range byCategory {
		st.Total += n
	}
	return st
}

// unavailable is the error users see when the store cannot answer.
func unavailable(what string, err error) error {
	return fmt.Errorf("%w (%v)", pin.Errorf(pin.EUNAVAILABLE,
		"%s is not reachable, so the real-time view cannot be read; it comes back on its own once it is.", what), err)
}
