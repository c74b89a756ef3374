package pin

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"pinpipe/internal/sample"
)

func str(s string) *string { return &s }
func i64(n int64) *int64   { return &n }
func i32(n int32) *int32   { return &n }

// samplePins reads the real records of the repository's sample pins, one line each.
func samplePins(t testing.TB) [][]byte {
	t.Helper()
	return sample.Lines(t)
}

// sampleLineage is the lineage the sample tests stamp record i with.
func sampleLineage(i int) Lineage {
	return Lineage{
		IngestedAt: time.Date(2026, 11, 25, 18, 30, 0, 0, time.FixedZone("CET", 3600)),
		Partition:  int32(i % 3),
		Offset:     int64(1000 + i),
	}
}

// wantSample is the cleaned form of each record of sample_pins.jsonl.
func wantSample(i int, c Cleaned) Cleaned {
	c.IngestedAt = time.Date(2026, 11, 25, 17, 30, 0, 0, time.UTC)
	c.KafkaPartition = int32(i % 3)
	c.KafkaOffset = int64(1000 + i)
	return c
}

var sampleCleaned = []Cleaned{
	wantSample(0, Cleaned{
		IDIndex:        7528,
		Category:       "mens-fashion",
		UniqueID:       "fbe53c66-3442-4773-b19e-d3ec6f54dddf",
		Tags:           []string{},
		IsImageOrVideo: str("multi-video(story page format)"),
		Downloaded:     i32(0),
		SaveLocation:   str("/data/mens-fashion"),
	}),
	wantSample(1, Cleaned{
		IDIndex:        10794,
		Title:          str("TireBuyer"),
		Category:       "vehicles",
		UniqueID:       "c4bd2577-a7bb-4409-bb7a-17d5ed7e1cf1",
		Description:    str("Nissan GT-R. Sick."),
		PosterName:     str("Ray Uyemura"),
		FollowerCount:  i64(437),
		TagList:        str("Lowrider,Old Vintage Cars,Antique Cars,Austin Martin,Nissan Gtr Black,Jaguar,1959 Cadillac,Cadillac Ct6,Old School Cars"),
		Tags:           []string{"Lowrider", "Old Vintage Cars", "Antique Cars", "Austin Martin", "Nissan Gtr Black", "Jaguar", "1959 Cadillac", "Cadillac Ct6", "Old School Cars"},
		IsImageOrVideo: str("image"),
		ImageSrc:       str("https://i.pinimg.com/originals/0d/29/9f/0d299f3df020395aa7ce8387f40fbeed.jpg"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/vehicles"),
	}),
	wantSample(2, Cleaned{
		IDIndex:        5494,
		Title:          str("Dave Ramsey's 7 Baby Steps: What Are They And Will They Work For You"),
		Category:       "finance",
		UniqueID:       "8fb2af68-543b-4639-8119-de33d28706ed",
		Description:    str("If you love budgeting, make sure to give Dave Ramsey's 7 Baby Steps a try. Follow these steps to begin your debt snowball, build an emergency fund, invest and reach riches. I ca\u2026"),
		PosterName:     str("Living Low Key | Save Money, Make Money, & Frugal Living"),
		FollowerCount:  i64(26000),
		TagList:        str("Financial Peace,Financial Tips,Saving Money Quotes,Total Money Makeover,Budgeting Finances,Money Management,Wealth Management,Personal Finance,Making Ideas"),
		Tags:           []string{"Financial Peace", "Financial Tips", "Saving Money Quotes", "Total Money Makeover", "Budgeting Finances", "Money Management", "Wealth Management", "Personal Finance", "Making Ideas"},
		IsImageOrVideo: str("image"),
		ImageSrc:       str("https://i.pinimg.com/originals/1e/9d/90/1e9d906e4e150e3b95187f3b76ea7c71.png"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/finance"),
	}),
	wantSample(3, Cleaned{
		IDIndex:        5069,
		Title:          str("The Vault: Curated & Refined Wedding Inspiration"),
		Category:       "event-planning",
		UniqueID:       "b75b6f87-deb3-444f-b29e-ce9161b2df49",
		Description:    str("Sacramento California Wedding 2 Chic Events & Design Jodi Yorston Photography Wilson Vineyards Barn Miosa Couture Yellow Barn Vineyard Outdoor Candles DIY"),
		PosterName:     str("Style Me Pretty"),
		FollowerCount:  i64(6000000),
		TagList:        str("60th Anniversary Parties,Anniversary Decorations,Golden Anniversary,25th Wedding Anniversary,Anniversary Pictures,Anniversary Ideas,Birthday Decorations,Event Planning Design,Event Design"),
		Tags:           []string{"60th Anniversary Parties", "Anniversary Decorations", "Golden Anniversary", "25th Wedding Anniversary", "Anniversary Pictures", "Anniversary Ideas", "Birthday Decorations", "Event Planning Design", "Event Design"},
		IsImageOrVideo: str("image"),
		ImageSrc:       str("https://i.pinimg.com/originals/7e/45/90/7e45905fefa36347e83333fd6d091140.jpg"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/event-planning"),
	}),
	wantSample(4, Cleaned{
		IDIndex:        2923,
		Title:          str("UFO Paper Plate Craft"),
		Category:       "diy-and-crafts",
		UniqueID:       "52fa3af5-24a4-4ccb-8f17-9c3eb12327ee",
		Description:    str("A fun space activity for kids. Preshoolers and kindergartners will love making their own alien spacecraft!"),
		PosterName:     str("The Crafting Chicks"),
		FollowerCount:  i64(192000),
		TagList:        str("Paper Plate Crafts For Kids,Fun Crafts For Kids,Summer Crafts,Toddler Crafts,Art For Kids,Outer Space Crafts For Kids,Kid Crafts,Space Kids,Back To School Crafts For Kids"),
		Tags:           []string{"Paper Plate Crafts For Kids", "Fun Crafts For Kids", "Summer Crafts", "Toddler Crafts", "Art For Kids", "Outer Space Crafts For Kids", "Kid Crafts", "Space Kids", "Back To School Crafts For Kids"},
		IsImageOrVideo: str("image"),
		ImageSrc:       str("https://i.pinimg.com/originals/6f/e8/aa/6fe8aa405513c6d2f77b5f47d17cdce8.jpg"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/diy-and-crafts"),
	}),
	wantSample(5, Cleaned{
		IDIndex:        3089,
		Category:       "diy-and-crafts",
		UniqueID:       "88f9227e-88d0-4b1c-b0be-bcfc3028b8e2",
		Tags:           []string{},
		IsImageOrVideo: str("multi-video(story page format)"),
		Downloaded:     i32(0),
		SaveLocation:   str("/data/diy-and-crafts"),
	}),
	wantSample(6, Cleaned{
		IDIndex:        7554,
		Title:          str("Craig Style"),
		Category:       "mens-fashion",
		UniqueID:       "c6fa12f4-0d4a-4b07-a335-5bf9f37f8281",
		Description:    str("imgentleboss: \u201c - More about men\u2019s fashion at @Gentleboss - GB\u2019s Facebook - \u201d"),
		PosterName:     str("iElylike ..\u273f\u25d5\u203f\u25d5\u273f\u0b90\u273f\u25d5\u203f\u25d5\u273f"),
		FollowerCount:  i64(940),
		TagList:        str("Mens Fashion Blog,Look Fashion,Autumn Fashion,Fashion News,Fashion Sale,80s Fashion,Paris Fashion,Runway Fashion,Fashion Trends"),
		Tags:           []string{"Mens Fashion Blog", "Look Fashion", "Autumn Fashion", "Fashion News", "Fashion Sale", "80s Fashion", "Paris Fashion", "Runway Fashion", "Fashion Trends"},
		IsImageOrVideo: str("image"),
		ImageSrc:       str("https://i.pinimg.com/originals/e7/6e/8e/e76e8ed6cc838b84a934c6948a5caff7.jpg"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/mens-fashion"),
	}),
	wantSample(7, Cleaned{
		IDIndex:        9672,
		Title:          str("Lake Moraine, Banff, Canada"),
		Category:       "travel",
		UniqueID:       "1a5050a4-ac82-472c-aeff-3457de8bbee9",
		Description:    str("On our Calgary to Vancouver road trip we got to spend time in Banff, Canada. We visited the stunning Lake Moraine as well as Lake Louise and plenty of other of Canada's natural\u2026"),
		PosterName:     str("Travel Mad Mum"),
		FollowerCount:  i64(7000),
		TagList:        str("Beautiful Places To Travel,Cool Places To Visit,Beautiful Roads,Beautiful Scenery,Wonderful Places,Lac Moraine,Moraine Lake,Lac Louise,Natur Wallpaper"),
		Tags:           []string{"Beautiful Places To Travel", "Cool Places To Visit", "Beautiful Roads", "Beautiful Scenery", "Wonderful Places", "Lac Moraine", "Moraine Lake", "Lac Louise", "Natur Wallpaper"},
		IsImageOrVideo: str("video"),
		ImageSrc:       str("https://i.pinimg.com/videos/thumbnails/originals/57/9d/52/579d52242ae5609978c754d393e44e81.0000001.jpg"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/travel"),
	}),
	wantSample(8, Cleaned{
		IDIndex:        1014,
		Title:          str("Hairstyles & Beauty"),
		Category:       "beauty",
		UniqueID:       "9ac94307-bb27-410e-b554-0a0ab6c19847",
		Description:    str("Untitled"),
		PosterName:     str("Grecia Perales"),
		FollowerCount:  i64(0),
		TagList:        str("Hair Inspo,Hair Inspiration,Motivation Inspiration,Cl Rapper,Foto Glamour,Kreative Portraits,Classy Aesthetic,Pretty Hairstyles,Hair Looks"),
		Tags:           []string{"Hair Inspo", "Hair Inspiration", "Motivation Inspiration", "Cl Rapper", "Foto Glamour", "Kreative Portraits", "Classy Aesthetic", "Pretty Hairstyles", "Hair Looks"},
		IsImageOrVideo: str("image"),
		ImageSrc:       str("https://i.pinimg.com/originals/af/c4/59/afc459bd6e1fd8f9aef212504afebf3a.jpg"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/beauty"),
	}),
	wantSample(9, Cleaned{
		IDIndex:        7166,
		Title:          str("The Killers - Mr. Brightside - Women's T-Shirt - Heather Dark Grey / S"),
		Category:       "mens-fashion",
		UniqueID:       "4a844b03-e161-47a1-904b-591eb5dc4fb1",
		Description:    str("Women's T-shirt. Design inspired by the rock band The Killers' hit \"Mr. Brightside\". One of the greatest song from the album Hot Fuss released in 2004. Soft and light, 100% cott\u2026"),
		PosterName:     str("Mala Rock | Rock T-shirts"),
		FollowerCount:  i64(27),
		TagList:        str("Mr Brightside,Rock T Shirts,Greatest Songs,Timeless Classic,Rock Bands,Album,T Shirts For Women,Inspired,Hot"),
		Tags:           []string{"Mr Brightside", "Rock T Shirts", "Greatest Songs", "Timeless Classic", "Rock Bands", "Album", "T Shirts For Women", "Inspired", "Hot"},
		IsImageOrVideo: str("image"),
		ImageSrc:       str("https://i.pinimg.com/originals/8c/42/39/8c42391d35fcad51a4a79f7cd81bf26d.jpg"),
		Downloaded:     i32(1),
		SaveLocation:   str("/data/mens-fashion"),
	}),
}

// assertCleaned fails with both values as JSON when got differs from want.
func assertCleaned(t *testing.T, got, want Cleaned) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("cleaned pin differs\n got: %s\nwant: %s", g, w)
	}
}

func TestCleanRawCleansEverySamplePin(t *testing.T) {
	lines := samplePins(t)
	if len(lines) != len(sampleCleaned) {
		t.Fatalf("sample_pins.jsonl has %d records, the table %d", len(lines), len(sampleCleaned))
	}
	for i, line := range lines {
		got, err := CleanRaw(line, sampleLineage(i))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		assertCleaned(t, got, sampleCleaned[i])
	}
}

func TestParseRequestThenCleanGivesTheSameAsCleanRaw(t *testing.T) {
	body := bytes.Join(samplePins(t), []byte("\n"))
	recs, err := ParseRequest(body, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(sampleCleaned) {
		t.Fatalf("got %d records, want %d", len(recs), len(sampleCleaned))
	}
	for i, r := range recs {
		assertCleaned(t, Clean(r.Pin, sampleLineage(i)), sampleCleaned[i])
	}
}

func TestParseFollowerCount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"437", 437, true},
		{"0", 0, true},
		{"26k", 26000, true},
		{"26K", 26000, true},
		{"6M", 6000000, true},
		{"6m", 6000000, true},
		{"2B", 2000000000, true},
		{"1.5k", 1500, true},
		{"1.25M", 1250000, true},
		{"1.2345k", 1235, true}, // rounded half up
		{"1.2344k", 1234, true}, // rounded down
		{" 26k\t", 26000, true}, // surrounding whitespace ignored
		{"007", 7, true},        // leading zeros are harmless
		{"9223372036854775807", 9223372036854775807, true},
		{"User Info Error", 0, false},
		{"", 0, false},
		{"  ", 0, false},
		{"garbage", 0, false},
		{"1.2.3k", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"k", 0, false},
		{".5k", 0, false},
		{"5.k", 0, false},
		{"1.5", 0, false}, // a fraction of a follower
		{"1,234", 0, false},
		{"26 k", 0, false},
		{"26kk", 0, false},
		{"9223372036854775808", 0, false},
		{"9223372036854776k", 0, false},
		{"9223372036854775.808k", 0, false},
	} {
		n, ok := ParseFollowerCount(tc.in)
		if n != tc.want || ok != tc.ok {
			t.Errorf("ParseFollowerCount(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
	}
}

func TestCleanTurnsPlaceholdersAndBlanksIntoNull(t *testing.T) {
	for _, tc := range []struct {
		name string
		pin  Pin
	}{
		{"placeholders", Pin{
			Title:          str("No Title Data Available"),
			Description:    str("No description available"),
			PosterName:     str("User Info Error"),
			FollowerCount:  str("User Info Error"),
			TagList:        str("N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"),
			ImageSrc:       str("Image src error."),
			IsImageOrVideo: nil,
		}},
		{"placeholders with whitespace around", Pin{
			Title:       str(" No Title Data Available\n"),
			Description: str("No description available Story format\u00a0"),
			PosterName:  str("\tUser Info Error"),
			ImageSrc:    str("Image src error. "),
		}},
		{"empty strings", Pin{
			Title: str(""), Description: str(""), PosterName: str(""), FollowerCount: str(""),
			TagList: str(""), IsImageOrVideo: str(""), ImageSrc: str(""), SaveLocation: str(""),
		}},
		{"blank strings", Pin{
			Title: str(" "), Description: str("\n\t"), PosterName: str("\u00a0"), FollowerCount: str("  "),
			TagList: str(" , ,"), IsImageOrVideo: str(" "), ImageSrc: str(" "), SaveLocation: str("Local save in  "),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pin.Index, tc.pin.UniqueID, tc.pin.Category = 1, "fbe53c66-3442-4773-b19e-d3ec6f54dddf", "travel"
			got := Clean(tc.pin, Lineage{})
			want := Cleaned{IDIndex: 1, UniqueID: "fbe53c66-3442-4773-b19e-d3ec6f54dddf", Category: "travel", Tags: []string{}}
			if tc.name == "blank strings" {
				want.TagList = str(", ,") // trimmed, but not blank: it is kept; it yields no tags
			}
			assertCleaned(t, got, want)
		})
	}
}

func TestCleanTrimsTextAndSplitsTags(t *testing.T) {
	p := Pin{
		Index:          42,
		UniqueID:       "FBE53C66-3442-4773-B19E-D3EC6F54DDDF",
		Category:       " travel ",
		Title:          str("  A title\u00a0"),
		Description:    str("No description available here"), // not exactly a placeholder
		PosterName:     str("Someone "),
		FollowerCount:  str("1.5k"),
		TagList:        str(" Lakes, Mountains ,,Lakes, "),
		IsImageOrVideo: str("video"),
		ImageSrc:       str("https://i.pinimg.com/x.jpg"),
		Downloaded:     i64(0),
		SaveLocation:   str("Local save in /data/travel"),
	}
	lin := Lineage{IngestedAt: time.Date(2026, 1, 2, 0, 30, 0, 0, time.FixedZone("PST", -8*3600)), Partition: 2, Offset: 77}
	assertCleaned(t, Clean(p, lin), Cleaned{
		IDIndex:        42,
		Title:          str("A title"),
		Category:       "travel",
		UniqueID:       "fbe53c66-3442-4773-b19e-d3ec6f54dddf",
		Description:    str("No description available here"),
		PosterName:     str("Someone"),
		FollowerCount:  i64(1500),
		TagList:        str("Lakes, Mountains ,,Lakes,"),
		Tags:           []string{"Lakes", "Mountains", "Lakes"},
		IsImageOrVideo: str("video"),
		ImageSrc:       str("https://i.pinimg.com/x.jpg"),
		Downloaded:     i32(0),
		SaveLocation:   str("/data/travel"),
		IngestedAt:     time.Date(2026, 1, 2, 8, 30, 0, 0, time.UTC),
		KafkaPartition: 2,
		KafkaOffset:    77,
	})
}

func TestCleanKeepsSaveLocationWithoutThePrefix(t *testing.T) {
	got := Clean(Pin{SaveLocation: str("/mnt/pins")}, Lineage{})
	if got.SaveLocation == nil || *got.SaveLocation != "/mnt/pins" {
		t.Errorf("save_location = %v, want /mnt/pins", got.SaveLocation)
	}
}

func TestCleanDoesNotShareMemoryWithThePin(t *testing.T) {
	p := Pin{Title: str("A title")}
	c := Clean(p, Lineage{})
	*c.Title = "changed"
	if *p.Title != "A title" {
		t.Errorf("changing the cleaned title changed the pin's to %q", *p.Title)
	}
}

func TestCleanedJSONShowsNullsAndEmptyTags(t *testing.T) {
	c := Clean(Pin{Index: 3, UniqueID: "fbe53c66-3442-4773-b19e-d3ec6f54dddf", Category: "art"},
		Lineage{IngestedAt: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), Partition: 1, Offset: 9})
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id_index":3,"title":null,"category":"art","unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf",` +
		`"description":null,"poster_name":null,"follower_count":null,"tag_list":null,"tags":[],` +
		`"is_image_or_video":null,"image_src":null,"downloaded":null,"save_location":null,` +
		`"ingested_at":"2026-03-04T05:06:07Z","kafka_partition":1,"kafka_offset":9}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestDTIsTheUTCDate(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 25, 23, 59, 59, 0, time.UTC), "2026-11-25"},
		{time.Date(2026, 11, 26, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "2026-11-25"},
		{time.Date(2026, 12, 31, 20, 0, 0, 0, time.FixedZone("EST", -5*3600)), "2027-01-01"},
	} {
		if got := DT(tc.t); got != tc.want {
			t.Errorf("DT(%v) = %s, want %s", tc.t, got, tc.want)
		}
	}
}

func TestCleanRawRejectsAnInvalidMessageWithItsReason(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{`{"index": "7", "unique_id": "fbe53c66-3442-4773-b19e-d3ec6f54dddf", "category": "art"}`,
			`field "index" must be an integer >= 0, got string "7"`},
		{`{"index": 7, "category": ""}`,
			`missing required field "unique_id"; field "category" must be a non-empty string, got string ""`},
		{`not json`,
			`malformed JSON at byte offset 1 (line 1, column 2): invalid character 'o' in literal null (expecting 'u')`},
		{`[1]`, `record must be a JSON object, got an array`},
		{`{"index": 7, "unique_id": "fbe53c66-3442-4773-b19e-d3ec6f54dddf", "category": "art"} {}`,
			`malformed JSON at byte offset 85 (line 1, column 86): unexpected data after the JSON object`},
	} {
		c, err := CleanRaw([]byte(tc.raw), Lineage{})
		if ErrorCode(err) != EINVALID || ErrorMessage(err) != tc.want {
			t.Errorf("CleanRaw(%s) error = %v\nwant message %s", tc.raw, err, tc.want)
		}
		if !reflect.DeepEqual(c, Cleaned{}) {
			t.Errorf("CleanRaw(%s) returned a cleaned pin with its error: %+v", tc.raw, c)
		}
	}
}
