// Package synth makes synthetic pins shaped like the source app's real ones,
// quirks included (placeholder values, "26k"-style follower counts, story
// pages with no data), for demos, load and benchmarks.
package synth

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/google/uuid"
)

var categories = []string{
	"art", "beauty", "christmas", "diy-and-crafts", "education", "event-planning",
	"finance", "home-decor", "mens-fashion", "quotes", "tattoos", "travel", "vehicles",
}

var words = strings.Fields(`summer vintage cozy minimal rustic modern easy quick budget home garden
	kitchen wedding party travel road trip beach mountain city street style outfit hair nail art tattoo
	quote motivation money saving plan craft paper kids gift holiday christmas winter autumn spring car
	classic design idea inspiration decor living room bedroom diy project`)

// Generator makes pins from a seeded source, so a seed gives the same pins.
type Generator struct {
	rng   *rand.Rand
	index int64
}

// New returns a Generator seeded with seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Pin is a synthetic pin in the source app's JSON shape.
type Pin map[string]any

// Next returns the next pin. About one in eight is a story page with the
// source app's placeholders instead of data.
func (g *Generator) Next() Pin {
	g.index++
	cat := categories[g.rng.IntN(len(categories))]
	id := uuid.UUID{}
	for i := range id {
		id[i] = byte(g.rng.UintN(256))
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	p := Pin{
		"index":         g.index,
		"unique_id":     id.String(),
		"category":      cat,
		"downloaded":    1,
		"save_location": "Local save in /data/" + cat,
	}
	if g.rng.IntN(8) == 0 {
		p["title"] = "No Title Data Available"
		p["description"] = "No description available Story format"
		p["poster_name"] = "User Info Error"
		p["follower_count"] = "User Info Error"
		p["tag_list"] = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
		p["is_image_or_video"] = "multi-video(story page format)"
		p["image_src"] = "Image src error."
		p["downloaded"] = 0
		return p
	}
	p["title"] = g.phrase(2, 6)
	p["description"] = g.phrase(6, 24)
	p["poster_name"] = g.phrase(1, 3)
	p["follower_count"] = g.followers()
	tags := make([]string, 3+g.rng.IntN(7))
	for i := range tags {
		tags[i] = g.phrase(1, 3)
	}
	p["tag_list"] = strings.Join(tags, ",")
	if g.rng.IntN(10) == 0 {
		p["is_image_or_video"] = "video"
	} else {
		p["is_image_or_video"] = "image"
	}
	p["image_src"] = fmt.Sprintf("https://i.pinimg.com/originals/%02x/%02x/%02x/%s.jpg",
		g.rng.IntN(256), g.rng.IntN(256), g.rng.IntN(256), strings.ReplaceAll(id.String(), "-", ""))
	return p
}

// followers returns a count the way the source app spells it.
func (g *Generator) followers() string {
	switch g.rng.IntN(10) {
	case 0:
		return "User Info Error"
	case 1, 2, 3:
		return fmt.Sprint(g.rng.IntN(1000))
	case 4, 5, 6, 7:
		return fmt.Sprintf("%dk", 1+g.rng.IntN(999))
	case 8:
		return fmt.Sprintf("%d.%dk", 1+g.rng.IntN(9), g.rng.IntN(10))
	default:
		return fmt.Sprintf("%dM", 1+g.rng.IntN(9))
	}
}

func (g *Generator) phrase(minWords, maxWords int) string {
	n := minWords + g.rng.IntN(maxWords-minWords+1)
	ws := make([]string, n)
	for i := range ws {
		ws[i] = words[g.rng.IntN(len(words))]
	}
	ws[0] = strings.ToUpper(ws[0][:1]) + ws[0][1:]
	return strings.Join(ws, " ")
}

// NDJSON returns n pins as newline-delimited JSON.
func (g *Generator) NDJSON(n int) []byte {
	var b []byte
	for range n {
		line, _ := json.Marshal(g.Next())
		b = append(append(b, line...), '\n')
	}
	return b
}
