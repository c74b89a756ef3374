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
// order (see Columns). Nil pointers are SQL NULLs. Tags is never nil, so it
// encodes as [] rather than null.
type Cleaned struct {
	IDIndex        int64     `json:"id_index"`
	Title          *string   `json:"title"`
	Category       string    `json:"category"`
	UniqueID       string    `json:"unique_id"`
	Description    *string   `json:"description"`
	PosterName     *string   `json:"poster_name"`
	FollowerCount  *int64    `json:"follower_count"`
	TagList        *string   `json:"tag_list"`
	Tags           []string  `json:"tags"`
	IsImageOrVideo *string   `json:"is_image_or_video"`
	ImageSrc       *string   `json:"image_src"`
	Downloaded     *int32    `json:"downloaded"`
	SaveLocation   *string   `json:"save_location"`
	IngestedAt     time.Time `json:"ingested_at"`
	KafkaPartition int32     `json:"kafka_partition"`
	KafkaOffset    int64     `json:"kafka_offset"`
}

// Columns lists the cleaned record's column names in contract order; they
// are also Cleaned's JSON names, and Values returns the values in this order.
var Columns = []string{
	"id_index", "title", "category", "unique_id", "description", "poster_name",
	"follower_count", "tag_list", "tags", "is_image_or_video", "image_src",
	"downloaded", "save_location", "ingested_at", "kafka_partition", "kafka_offset",
}

// Values returns the cleaned record's values in Columns order, ready for a
// row writer (pgx CopyFrom, a CQL insert). Absent values are typed nil
// pointers, which database drivers write as NULL.
func (c Cleaned) Values() []any {
	return []any{
		c.IDIndex, c.Title, c.Category, c.UniqueID, c.Description, c.PosterName,
		c.FollowerCount, c.TagList, c.Tags, c.IsImageOrVideo, c.ImageSrc,
		c.Downloaded, c.SaveLocation, c.IngestedAt, c.KafkaPartition, c.KafkaOffset,
	}
}

// DT returns the day partition of a pin accepted at t: the UTC date of t as
// YYYY-MM-DD, whatever t's location.
func DT(t time.Time) string {
	return t.UTC().Format(time.DateOnly)
}
