// Package pin is pinpipe's domain: the pin schema that POST /pins accepts, its
// validation, and the cleaning rules both lanes apply. It does no I/O.
package pin

import "time"

// Pin is one pin as the source app sends it. Optional fields are nil when
// absent or JSON null. String fields hold the values exactly as sent (JSON
// escapes decoded, nothing trimmed); Clean normalises them.
type Pin struct {
	Index          int64   `json:"index"`
	UniqueID       string  `json:"unique_id"`
	Category       string  `json:"category"`
	Title          *string `json:"title,omitempty"`
	Description    *string `json:"description,omitempty"`
	PosterName     *string `json:"poster_name,omitempty"`
	FollowerCount  *string `json:"follower_count,omitempty"`
	TagList        *string `json:"tag_list,omitempty"`
	IsImageOrVideo *string `json:"is_image_or_video,omitempty"`
	ImageSrc       *string `json:"image_src,omitempty"`
	Downloaded     *int64  `json:"downloaded,omitempty"`
	SaveLocation   *string `json:"save_location,omitempty"`
}

// Record is one accepted pin of a request: the decoded pin and its original
// JSON object with insignificant whitespace removed. Raw keeps unknown fields,
// key order, escapes and number spellings exactly as the client sent them, so
// the raw zone holds what the client sent.
type Record struct {
	Pin Pin
	Raw []byte
}

// FieldError is one problem with one record of a request.
//
// Record is the 0-based position of the record in the request: the array
// index, 0 for a single object, and for NDJSON the position among the
// non-blank lines (Line then gives the 1-based line number). When the body
// cannot be parsed past some point, Record is the position parsing stopped
// at, which is the number of records before it. Field is the JSON field name
// (an unknown field's name longer than 40 characters is shortened, ending in
// "…"), or "" when the problem is with the whole record (malformed JSON, not
// an object) or with an unknown field named "". Message is a sentence a
// person can act on; it quotes the field's name.
type FieldError struct {
	Record  int    `json:"record"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Lineage is where a cleaned record came from: the Kafka record's timestamp
// (when pinpipe accepted the pin), partition and offset.
type Lineage struct {
	IngestedAt time.Time
	Partition  int32
	Offset     int64
}

// Cleaned is a pin after the cleaning rules, fields in the contract's column
// order (see Schema). Nil pointers are SQL NULLs. Tags is never nil, so it
// encodes as [] rather than null. The json names are the API's, the parquet
// names and types the curated zone's (docs/contracts.md).
type Cleaned struct {
	IDIndex        int64     `json:"id_index" parquet:"id_index"`
	Title          *string   `json:"title" parquet:"title"`
	Category       string    `json:"category" parquet:"category,dict"`
	UniqueID       string    `json:"unique_id" parquet:"unique_id"`
	Description    *string   `json:"description" parquet:"description"`
	PosterName     *string   `json:"poster_name" parquet:"poster_name"`
	FollowerCount  *int64    `json:"follower_count" parquet:"follower_count,dict"`
	TagList        *string   `json:"tag_list" parquet:"tag_list"`
	Tags           []string  `json:"tags" parquet:"tags,list"`
	IsImageOrVideo *string   `json:"is_image_or_video" parquet:"is_image_or_video,dict"`
	ImageSrc       *string   `json:"image_src" parquet:"image_src"`
	Downloaded     *int32    `json:"downloaded" parquet:"downloaded,dict"`
	SaveLocation   *string   `json:"save_location" parquet:"save_location,dict"`
	IngestedAt     time.Time `json:"ingested_at" parquet:"ingested_at,timestamp(microsecond)"`
	KafkaPartition int32     `json:"kafka_partition" parquet:"kafka_partition,dict"`
	KafkaOffset    int64     `json:"kafka_offset" parquet:"kafka_offset"`
}

// Schema is the cleaned record's columns in contract order, Cleaned's
// field order: each column once, with its accessors, its Kind (which gives
// each store's type, see Column) and whether it may be NULL. It has no dt:
// a store that needs the day adds it (see DT). Adding a column is a field of
// Cleaned (with its json and parquet names), its entry here, its cleaning
// rule in Clean, and a Postgres migration (docs/contracts.md).
var Schema = []Column{
	required("id_index", func(c *Cleaned) *int64 { return &c.IDIndex }),
	optional("title", func(c *Cleaned) **string { return &c.Title }),
	required("category", func(c *Cleaned) *string { return &c.Category }),
	required("unique_id", func(c *Cleaned) *string { return &c.UniqueID }),
	optional("description", func(c *Cleaned) **string { return &c.Description }),
	optional("poster_name", func(c *Cleaned) **string { return &c.PosterName }),
	optional("follower_count", func(c *Cleaned) **int64 { return &c.FollowerCount }),
	optional("tag_list", func(c *Cleaned) **string { return &c.TagList }),
	required("tags", func(c *Cleaned) *[]string { return &c.Tags }),
	optional("is_image_or_video", func(c *Cleaned) **string { return &c.IsImageOrVideo }),
	optional("image_src", func(c *Cleaned) **string { return &c.ImageSrc }),
	optional("downloaded", func(c *Cleaned) **int32 { return &c.Downloaded }),
	optional("save_location", func(c *Cleaned) **string { return &c.SaveLocation }),
	required("ingested_at", func(c *Cleaned) *time.Time { return &c.IngestedAt }),
	required("kafka_partition", func(c *Cleaned) *int32 { return &c.KafkaPartition }),
	required("kafka_offset", func(c *Cleaned) *int64 { return &c.KafkaOffset }),
}

// DT returns the day partition of a pin accepted at t: the UTC date of t as
// YYYY-MM-DD, whatever t's location.
func DT(t time.Time) string {
	return t.UTC().Format(time.DateOnly)
}
