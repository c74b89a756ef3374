package query

import (
	"strings"
	"testing"

	"pinpipe/lake"
)

func TestChooseReadsTheNewestCommittedRunOfADay(t *testing.T) {
	listing := []lake.Object{
		// Day 20: run A committed; run B is still writing its parts.
		{Key: "curated/dt=2026-11-20/_committed-20261121T080000Z-a"},
		{Key: "curated/dt=2026-11-20/part-20261121T080000Z-a-0000.parquet"},
		{Key: "curated/dt=2026-11-20/part-20261121T080000Z-a-0001.parquet"},
		{Key: "curated/dt=2026-11-20/part-20261122T090000Z-b-0000.parquet"},
		// Day 21: run C committed and the old run D's objects not yet deleted.
		{Key: "curated/dt=2026-11-21/_committed-20261121T070000Z-d"},
		{Key: "curated/dt=2026-11-21/part-20261121T070000Z-d-0000.parquet"},
		{Key: "curated/dt=2026-11-21/_committed-20261122T080000Z-c"},
		{Key: "curated/dt=2026-11-21/part-20261122T080000Z-c-0000.parquet"},
		// Day 22: no marker at all: the newest run by name.
		{Key: "curated/dt=2026-11-22/part-20261123T080000Z-e-0000.parquet"},
		{Key: "curated/dt=2026-11-22/part-20261122T080000Z-f-0000.parquet"},
		{Key: "raw/dt=2026-11-20/part-0-00000000000000000000-00000000000000000009.parquet"},
	}
	var got []string
	for _, o := range choose(listing) {
		got = append(got, o.Key)
	}
	want := []string{
		"curated/dt=2026-11-20/part-20261121T080000Z-a-0000.parquet",
		"curated/dt=2026-11-20/part-20261121T080000Z-a-0001.parquet",
		"curated/dt=2026-11-21/part-20261122T080000Z-c-0000.parquet",
		"curated/dt=2026-11-22/part-20261123T080000Z-e-0000.parquet",
		"raw/dt=2026-11-20/part-0-00000000000000000000-00000000000000000009.parquet",
	}
	if len(got) != len(want) {
		t.Fatalf("choose = %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("choose = %v\nwant %v", got, want)
		}
	}
}

func TestChooseReadsADayObjectAloneWhileItsOldPartsAreRemoved(t *testing.T) {
	listing := []lake.Object{
		// Day 20: a run of the day replaced the old layout's parts with
		// the day's object and has not removed them yet.
		{Key: "curated/dt=2026-11-20/_committed-20261121T080000Z-a"},
		{Key: "curated/dt=2026-11-20/part-20261121T080000Z-a-0000.parquet"},
		{Key: "curated/dt=2026-11-20/pins.parquet"},
		// Day 21: the day's object and its marker only.
		{Key: "curated/dt=2026-11-21/_committed-20261122T080000Z-c"},
		{Key: "curated/dt=2026-11-21/pins.parquet"},
	}
	var got []string
	for _, o := range choose(listing) {
		got = append(got, o.Key)
	}
	want := []string{"curated/dt=2026-11-20/pins.parquet", "curated/dt=2026-11-21/pins.parquet"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("choose = %v\nwant %v", got, want)
	}
}
