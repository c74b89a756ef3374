package pin

import (
	"math"
	"strconv"
	"strings"
)

// Placeholders the source app sends instead of a value; Clean makes them NULL.
const (
	noTitle            = "No Title Data Available"
	noDescriptionStory = "No description available Story format"
	noDescription      = "No description available"
	userInfoError      = "User Info Error"
	noTags             = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
	imageSrcError      = "Image src error."
	saveLocationPrefix = "Local save in"
)

// cleanedValues backs a cleaned pin's optional fields, so cleaning one pin
// costs one allocation for them rather than one per field.
type cleanedValues struct {
	s          [7]string
	followers  int64
	downloaded int32
}

// Clean applies the cleaning rules (docs/contracts.md) to a valid pin (see Validate) and
// stamps it with its lineage. Every text field has surrounding Unicode
// whitespace trimmed (the scraped descriptions end in U+00A0); then a value
// that is empty or a placeholder becomes nil. Placeholders match exactly,
// after trimming:
//   - title "No Title Data Available";
//   - description "No description available Story format" and
//     "No description available";
//   - poster_name "User Info Error";
//   - tag_list "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e";
//   - image_src "Image src error.".
//
// follower_count becomes ParseFollowerCount's number, or nil when it does not
// parse ("User Info Error" included). save_location loses the source app's
// "Local save in " prefix ("Local save in /data/travel" → "/data/travel").
// Tags is tag_list split at commas, each tag trimmed, empty ones dropped, order
// and repeats kept; it is empty, never nil, when there is no tag_list.
// unique_id is lowercased so both spellings of a UUID are one record;
// category is trimmed; ingested_at is converted to UTC.
func Clean(p Pin, lin Lineage) Cleaned {
	v := new(cleanedValues)
	c := Cleaned{
		IDIndex:        p.Index,
		Title:          text(p.Title, &v.s[0], noTitle, ""),
		Category:       strings.TrimSpace(p.Category),
		UniqueID:       strings.ToLower(p.UniqueID),
		Description:    text(p.Description, &v.s[1], noDescriptionStory, noDescription),
		PosterName:     text(p.PosterName, &v.s[2], userInfoError, ""),
		TagList:        text(p.TagList, &v.s[3], noTags, ""),
		IsImageOrVideo: text(p.IsImageOrVideo, &v.s[4], "", ""),
		ImageSrc:       text(p.ImageSrc, &v.s[5], imageSrcError, ""),
		SaveLocation:   saveLocation(p.SaveLocation, &v.s[6]),
		IngestedAt:     lin.IngestedAt.UTC(),
		KafkaPartition: lin.Partition,
		KafkaOffset:    lin.Offset,
	}
	if p.FollowerCount != nil {
		if n, ok := ParseFollowerCount(*p.FollowerCount); ok {
			v.followers = n
			c.FollowerCount = &v.followers
		}
	}
	if p.Downloaded != nil {
		v.downloaded = int32(*p.Downloaded)
		c.Downloaded = &v.downloaded
	}
	c.Tags = splitTags(c.TagList)
	return c
}

// text trims *s into *dst and returns dst, or nil when s is nil, blank or
// one of the placeholders ("" stands for none).
func text(s *string, dst *string, placeholder1, placeholder2 string) *string {
	if s == nil {
		return nil
	}
	t := strings.TrimSpace(*s)
	if t == "" || t == placeholder1 || t == placeholder2 {
		return nil
	}
	*dst = t
	return dst
}

func saveLocation(s *string, dst *string) *string {
	if text(s, dst, "", "") == nil {
		return nil
	}
	// *dst is trimmed, so "Local save in " with nothing after is just the prefix.
	if rest, ok := strings.CutPrefix(*dst, saveLocationPrefix); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		if *dst = strings.TrimSpace(rest); *dst == "" {
			return nil
		}
	}
	return dst
}

// splitTags returns the non-empty trimmed tags of a cleaned tag_list.
func splitTags(list *string) []string {
	if list == nil {
		return []string{}
	}
	tags := make([]string, 0, strings.Count(*list, ",")+1)
	for tag := range strings.SplitSeq(*list, ",") {
		if tag = strings.TrimSpace(tag); tag != "" {
			tags = append(tags, tag)
		}
	}
	return tags
}

// CleanRaw validates one raw message (a pin's JSON object as stored in Kafka
// and the raw zone) and cleans it. Returns Validate's *Error (code EINVALID,
// the reason in its Message) when the message is not a valid pin.
func CleanRaw(raw []byte, lin Lineage) (Cleaned, error) {
	p, err := Validate(raw)
	if err != nil {
		return Cleaned{}, err
	}
	return Clean(p, lin), nil
}

// ParseFollowerCount reads a follower count as Pinterest shows it: digits,
// optionally with a decimal fraction and a suffix k or K (thousand), m or M
// (million), b or B (billion): "437" → 437, "26k" → 26000, "6M" → 6000000,
// "1.5k" → 1500. Surrounding whitespace is ignored. A fraction finer than one
// follower is rounded half up ("1.2345k" → 1235). Returns ok=false for
// anything else: empty, a sign, a fraction without a suffix ("1.5"), thousands
// separators ("1,234"), a space before the suffix, a value above MaxInt64.
func ParseFollowerCount(s string) (n int64, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	var scale int64 = 1
	digits := 0 // decimal places of scale
	switch s[len(s)-1] {
	case 'k', 'K':
		scale, digits = 1e3, 3
	case 'm', 'M':
		scale, digits = 1e6, 6
	case 'b', 'B':
		scale, digits = 1e9, 9
	}
	if scale > 1 {
		s = s[:len(s)-1]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !allDigits(whole) || hasFrac && (scale == 1 || !allDigits(frac)) {
		return 0, false
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || n > math.MaxInt64/scale {
		return 0, false
	}
	n *= scale
	if hasFrac {
		// The first `digits` fraction digits are whole followers; the next
		// one decides the rounding.
		var part int64
		for i := range digits {
			part *= 10
			if i < len(frac) {
				part += int64(frac[i] - '0')
			}
		}
		if len(frac) > digits && frac[digits] >= '5' {
			part++
		}
		if n > math.MaxInt64-part {
			return 0, false
		}
		n += part
	}
	return n, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
