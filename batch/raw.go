package batch

import "time"

// RawRecord is one row of the raw zone: a Kafka record exactly as it was
// accepted, with where it came from. Value is the original message bytes
// (the pin's JSON object as the client sent it). The lineage columns are
// named kafka_* as no word Trino, Athena or Spark SQL reserves
// (partition, offset and timestamp are).
type RawRecord struct {
	Topic     string    `parquet:"topic,dict"`
	Partition int32     `parquet:"kafka_partition"`
	Offset    int64     `parquet:"kafka_offset"`
	Timestamp time.Time `parquet:"kafka_timestamp,timestamp(millisecond)"`
	Key       string    `parquet:"key"`
	Value     string    `parquet:"value"`
}

// rawRecordV1 is a raw-zone row as the landing wrote it before the
// lineage columns were renamed: partition, offset, timestamp.
type rawRecordV1 struct {
	Topic     string    `parquet:"topic"`
	Partition int32     `parquet:"partition"`
	Offset    int64     `parquet:"offset"`
	Timestamp time.Time `parquet:"timestamp,timestamp(millisecond)"`
	Key       string    `parquet:"key"`
	Value     string    `parquet:"value"`
}
