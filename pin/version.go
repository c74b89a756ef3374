package pin

import "strings"

// Newer reports whether a is a later version of a pin than b. It is the one
// version order of every store (docs/contracts.md, "Version order"):
//
//  1. In the same partition the higher offset wins, whatever the timestamps
//     say. Records are keyed by the lower-case unique_id, so all versions of
//     a pin share a partition, and there the offset order is the order in
//     which pinpipe accepted them; the timestamps come from the producing
//     processes' clocks, which can disagree with it.
//  2. In different partitions (the topic's partition count changed) the later
//     Kafka timestamp wins, then the higher partition.
//
// A record is not newer than itself (same partition and offset), so a
// replayed record changes nothing. Returns false for two equal lineages.
//
// The order is total on the versions of a pin as long as each partition's
// timestamps rise with its offsets. When they do not and the pin also has
// versions in another partition, the two rules can form a cycle, and a store
// that keeps only its current winner then keeps whichever the arrival order
// leaves; NewerSQL is the same predicate, so every store decides each
// comparison alike.
func Newer(a, b Lineage) bool {
	if a.Partition == b.Partition {
		return a.Offset > b.Offset
	}
	if !a.IngestedAt.Equal(b.IngestedAt) {
		return a.IngestedAt.After(b.IngestedAt)
	}
	return a.Partition > b.Partition
}

// Lineage returns where c came from, for Newer.
func (c *Cleaned) Lineage() Lineage {
	return Lineage{IngestedAt: c.IngestedAt, Partition: c.KafkaPartition, Offset: c.KafkaOffset}
}

// NewerSQL returns Newer as a SQL predicate over two rows holding the
// contract's lineage columns (ingested_at, kafka_partition, kafka_offset):
// true when the row named a is a later version than the row named b. a and
// b are table names or aliases ("EXCLUDED", "pins", "b"), used as given.
// The text keeps to SQL that Postgres and DuckDB both accept; none of the
// columns may be NULL.
func NewerSQL(a, b string) string {
	return strings.NewReplacer("{a}", a, "{b}", b).Replace(newerSQL)
}

const newerSQL = `({a}.kafka_partition = {b}.kafka_partition AND {a}.kafka_offset > {b}.kafka_offset` +
	` OR {a}.kafka_partition <> {b}.kafka_partition AND ({a}.ingested_at > {b}.ingested_at` +
	` OR {a}.ingested_at = {b}.ingested_at AND {a}.kafka_partition > {b}.kafka_partition))`

// NewestSQL returns a SQL query over the relation rows (a table, a view or
// a parenthesised subquery with an alias) that keeps, of each group of rows
// with equal keys (a comma-separated column list, such as "dt, unique_id"),
// the one version no other row of the group is newer than by Newer. It
// follows Newer's two rules as two steps: in each partition the row with
// the highest offset, then among those the latest ingested_at, then the
// highest partition. Each group gives exactly one row, also when two rows
// share a partition and offset (one of them, either) and in the corner
// where Newer forms a cycle (see Newer), where it keeps the per-partition
// winner with the latest timestamp. The result has rows' columns plus two
// of its own, pinpipe_top and pinpipe_rank, which the caller leaves out by
// naming its columns. The text keeps to SQL that Postgres and DuckDB both
// accept; none of the lineage columns may be NULL.
func NewestSQL(rows, keys string) string {
	return strings.NewReplacer("{rows}", rows, "{keys}", keys).Replace(newestSQL)
}

const newestSQL = `SELECT * FROM (` +
	`SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY ingested_at DESC, kafka_partition DESC) AS pinpipe_rank FROM (` +
	`SELECT *, max(kafka_offset) OVER (PARTITION BY {keys}, kafka_partition) AS pinpipe_top FROM {rows}` +
	`) AS pinpipe_versions WHERE kafka_offset = pinpipe_top` +
	`) AS pinpipe_ranked WHERE pinpipe_rank = 1`
