package batch

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"pinpipe/pin"
)

// A spill file of pins is a sequence of chunks, each the number of its
// pins (uvarint) and then each pin as its length (uvarint) and its fields
// in pin.Cleaned's order:
//
//   - integers as varints; an optional one as a presence byte, then the
//     varint when present;
//   - strings as their length and bytes; an optional one (and the tag list)
//     as length+1, 0 meaning nil, so a nil stays apart from a pointer to ""
//     and a nil tag list from an empty one;
//   - ingested_at as Unix seconds and nanoseconds, read back in UTC.
//
// Only the process that wrote a file reads it, so the format has no
// version. It is written by hand for speed: MessagePack's reflection was a
// third of a spilled run's CPU (bench/batch, 1M pins), and this reads a
// pin's text into one string that its fields share, one allocation a pin.

// maxSpilledPin bounds a pin's encoded length, so a damaged file cannot
// make the reader allocate without limit.
const maxSpilledPin = 1 << 30

// errDamaged is a spill file that does not decode.
var errDamaged = errors.New("damaged spill file")

// pinEncoder writes chunks of pins to w.
type pinEncoder struct {
	w   io.Writer
	buf []byte
}

// Encode writes v, a []pin.Cleaned, as one chunk.
func (e *pinEncoder) Encode(v any) error {
	pins, ok := v.([]pin.Cleaned)
	if !ok {
		return fmt.Errorf("spill: cannot encode %T", v)
	}
	b := binary.AppendUvarint(e.buf[:0], uint64(len(pins)))
	var rec []byte
	for i := range pins {
		rec = appendPin(rec[:0], &pins[i])
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

func appendPin(b []byte, p *pin.Cleaned) []byte {
	b = binary.AppendVarint(b, p.IDIndex)
	b = appendOptString(b, p.Title)
	b = appendString(b, p.Category)
	b = appendString(b, p.UniqueID)
	b = appendOptString(b, p.Description)
	b = appendOptString(b, p.PosterName)
	b = appendOptInt(b, p.FollowerCount)
	b = appendOptString(b, p.TagList)
	if p.Tags == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(p.Tags))+1)
		for _, t := range p.Tags {
			b = appendString(b, t)
		}
	}
	b = appendOptString(b, p.IsImageOrVideo)
	b = appendOptString(b, p.ImageSrc)
	if p.Downloaded == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, int64(*p.Downloaded))
	}
	b = appendOptString(b, p.SaveLocation)
	b = binary.AppendVarint(b, p.IngestedAt.Unix())
	b = binary.AppendUvarint(b, uint64(p.IngestedAt.Nanosecond()))
	b = binary.AppendVarint(b, int64(p.KafkaPartition))
	return binary.AppendVarint(b, p.KafkaOffset)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, 0)
	}
	return append(binary.AppendUvarint(b, uint64(len(*s))+1), *s...)
}

func appendOptInt(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), *n)
}

// pinDecoder reads the chunks a pinEncoder wrote.
type pinDecoder struct {
	r   *bufio.Reader
	buf []byte
}

func newPinDecoder(r io.Reader) *pinDecoder {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	return &pinDecoder{r: br}
}

// Decode reads the next chunk into v, a *[]pin.Cleaned, replacing what it
// held. Returns io.EOF at the end of the file, and an error naming the
// damage when a chunk is cut short or does not parse.
func (d *pinDecoder) Decode(v any) error {
	out, ok := v.(*[]pin.Cleaned)
	if !ok {
		return fmt.Errorf("spill: cannot decode into %T", v)
	}
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		return err // io.EOF between chunks is the file's end
	}
	if n > maxSpilledPin {
		return fmt.Errorf("%w: a chunk of %d pins", errDamaged, n)
	}
	// Grown as pins arrive: a damaged count must not allocate at once.
	pins := make([]pin.Cleaned, 0, min(n, spillChunk))
	for i := range int(n) {
		pins = append(pins, pin.Cleaned{})
		size, err := binary.ReadUvarint(d.r)
		if err == nil && size > maxSpilledPin {
			err = fmt.Errorf("%w: a pin of %d bytes", errDamaged, size)
		}
		if err == nil {
			if uint64(cap(d.buf)) < size {
				d.buf = make([]byte, size)
			}
			_, err = io.ReadFull(d.r, d.buf[:size])
		}
		if err == nil {
			err = decodePin(string(d.buf[:size]), &pins[i])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("pin %d of a chunk: %w", i, err)
		}
	}
	*out = pins
	return nil
}

// pinReader parses one encoded pin; its strings share the record's.
type pinReader struct {
	s   string
	at  int
	err error
}

// uvarint is encoding/binary's Uvarint over the record's string, which
// that function would need copied into a byte slice first.
func (r *pinReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if r.at >= len(r.s) {
			break
		}
		c := r.s[r.at]
		r.at++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.err = errDamaged
	return 0
}

func (r *pinReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *pinReader) bytes(n uint64) string {
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)-r.at) {
		r.err = errDamaged
		return ""
	}
	s := r.s[r.at : r.at+int(n)]
	r.at += int(n)
	return s
}

func (r *pinReader) string() string { return r.bytes(r.uvarint()) }

func (r *pinReader) optString() *string {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	s := r.bytes(n - 1)
	return &s
}

func (r *pinReader) present() bool {
	if r.err != nil || r.at >= len(r.s) {
		r.err = errDamaged
		return false
	}
	r.at++
	return r.s[r.at-1] != 0
}

func decodePin(s string, p *pin.Cleaned) error {
	r := &pinReader{s: s}
	p.IDIndex = r.varint()
	p.Title = r.optString()
	p.Category = r.string()
	p.UniqueID = r.string()
	p.Description = r.optString()
	p.PosterName = r.optString()
	if r.present() {
		n := r.varint()
		p.FollowerCount = &n
	}
	p.TagList = r.optString()
	if n := r.uvarint(); n > 0 && r.err == nil {
		if n-1 > uint64(len(s)) {
			return errDamaged
		}
		p.Tags = make([]string, n-1)
		for i := range p.Tags {
			p.Tags[i] = r.string()
		}
	}
	p.IsImageOrVideo = r.optString()
	p.ImageSrc = r.optString()
	if r.present() {
		n := int32(r.varint())
		p.Downloaded = &n
	}
	p.SaveLocation = r.optString()
	sec := r.varint()
	nsec := r.uvarint()
	p.IngestedAt = time.Unix(sec, int64(nsec)).UTC()
	p.KafkaPartition = int32(r.varint())
	p.KafkaOffset = r.varint()
	if r.err == nil && r.at != len(s) {
		r.err = fmt.Errorf("%w: %d bytes after a pin", errDamaged, len(s)-r.at)
	}
	return r.err
}
