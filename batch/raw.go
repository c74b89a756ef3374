package batch

import "time"

// RawRecord is one row of the raw zone: a Kafka record exactly as it was
// accepted, with where it came from. Value is the original message bytes
// (the pin's JSON object as the client sent it).
type RawRecord struct {
	Topic     string    `parquet:"topic,dict"`
	Partition int32     `parquet:"partition"`
	Offset    int64     `parquet:"offset"`
	Timestamp time.Time `parquet:"timestamp,timestamp(millisecond)"`
	Key       string    `parquet:"key"`
	Value     string    `parquet:"value"`
}
