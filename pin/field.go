package pin

import (
	"unicode/utf16"
	"unicode/utf8"
)

// The schema's known fields, where the scanner found their values, and how a
// string value is decoded.

// fieldID numbers the schema's fields, in Pin's order.
type fieldID int8

const (
	fIndex fieldID = iota
	fUniqueID
	fCategory
	fTitle
	fDescription
	fPosterName
	fFollowerCount
	fTagList
	fIsImageOrVideo
	fImageSrc
	fDownloaded
	fSaveLocation
	numFields
)

var fieldNames = [numFields]string{
	"index", "unique_id", "category", "title", "description", "poster_name",
	"follower_count", "tag_list", "is_image_or_video", "image_src", "downloaded",
	"save_location",
}

// lookupField returns the id of a known field name, or -1. Names match
// exactly (case-sensitive), unlike encoding/json's case-folding.
func lookupField(name []byte) fieldID {
	switch string(name) {
	case "index":
		return fIndex
	case "unique_id":
		return fUniqueID
	case "category":
		return fCategory
	case "title":
		return fTitle
	case "description":
		return fDescription
	case "poster_name":
		return fPosterName
	case "follower_count":
		return fFollowerCount
	case "tag_list":
		return fTagList
	case "is_image_or_video":
		return fIsImageOrVideo
	case "image_src":
		return fImageSrc
	case "downloaded":
		return fDownloaded
	case "save_location":
		return fSaveLocation
	}
	return -1
}

// span is where a known field's value is in the scanned text.
type span struct {
	kind       kind
	escaped    bool // a string value holds backslash escapes
	dup        bool // the key appeared more than once
	start, end int  // value bytes, quotes included for strings
}

// fields holds the spans of a record's known fields, indexed by fieldID.
type fields [numFields]span

// appendUnescaped appends the text of a string body (no quotes) that the
// scanner accepted, decoding escapes as encoding/json does: an unpaired
// UTF-16 surrogate becomes U+FFFD.
func appendUnescaped(dst, q []byte) []byte {
	for i := 0; i < len(q); {
		c := q[i]
		if c != '\\' {
			j := i + 1
			for j < len(q) && q[j] != '\\' {
				j++
			}
			dst = append(dst, q[i:j]...)
			i = j
			continue
		}
		switch c = q[i+1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(q[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(q) && q[i] == '\\' && q[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(q[i+2:])); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		i += 2
	}
	return dst
}

// hex4 decodes the four hex digits the scanner checked at the start of b.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
