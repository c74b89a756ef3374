package standin

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pinpipe/internal/duckfile/duckfiletest"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/synth"
)

// A day larger than the stand-in's memory limit is written whole: DuckDB
// spills under the limit instead of growing the process, and the limit is
// the one Open was given.
func TestReplaceDayLargerThanTheMemoryLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const limit = 64 << 20
	s, err := Open(ctx, t.TempDir(), limit, nil)
	testenv.Must(t, err)
	defer s.Close()

	var got string
	testenv.Must(t, s.db.QueryRowContext(ctx, `SELECT current_setting('memory_limit')`).Scan(&got))
	if got != "64.0 MiB" {
		t.Fatalf("memory_limit is %q, want 64.0 MiB", got)
	}

	const n = 400_000 // about 130 MB as staged rows, twice the limit; a keyed pins table fails here
	gen := synth.New(11)
	at := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	pins := make([]pin.Cleaned, n)
	for i := range pins {
		b, _ := json.Marshal(gen.Next())
		pins[i], err = pin.CleanRaw(b, pin.Lineage{IngestedAt: at, Partition: 0, Offset: int64(i)})
		testenv.Must(t, err)
	}
	testenv.Must(t, s.ReplaceDay(ctx, "2024-01-15", pins, nil))

	for _, table := range []string{"pins", "pins_by_category"} {
		var rows int
		testenv.Must(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&rows))
		if rows != n {
			t.Fatalf("%s holds %d rows, want %d", table, rows, n)
		}
	}
}

// A file made when pins and pins_by_category declared primary keys opens
// with the same rows and no keys, and takes a newer version of a pin.
func TestOpenDropsTheKeysOfAnEarlierFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	s, err := Open(ctx, dir, 0, nil)
	testenv.Must(t, err)
	at := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	old := cleaned(t, "Old title", at, 5)
	testenv.Must(t, s.ReplaceDay(ctx, "2024-01-15", []pin.Cleaned{old}, nil))
	// Make the tables what an earlier version created: keyed.
	for _, table := range []string{"pins", "pins_by_category"} {
		key := "unique_id"
		if table == "pins_by_category" {
			key = "category, dt, follower_count, unique_id"
		}
		_, err := s.db.ExecContext(ctx, `CREATE TABLE keyed AS SELECT * FROM `+table+` LIMIT 0;
ALTER TABLE keyed ADD PRIMARY KEY (`+key+`);
INSERT INTO keyed SELECT * FROM `+table+`;
DROP TABLE `+table+`;
ALTER TABLE keyed RENAME TO `+table)
		testenv.Must(t, err)
	}
	if n := keys(t, s); n != 2 {
		t.Fatalf("set-up: %d primary keys on the pin tables, want 2", n)
	}
	testenv.Must(t, s.Close())

	s, err = Open(ctx, dir, 0, nil)
	testenv.Must(t, err)
	defer s.Close()
	if n := keys(t, s); n != 0 {
		t.Fatalf("%d primary keys left on the pin tables", n)
	}
	got, err := s.Pin(ctx, old.UniqueID)
	testenv.Must(t, err)
	if *got.Title != "Old title" {
		t.Fatalf("after the rebuild the pin's title is %q", *got.Title)
	}
	newer := cleaned(t, "New title", at.Add(time.Minute), 6)
	testenv.Must(t, s.ReplaceDay(ctx, "2024-01-15", []pin.Cleaned{newer}, nil))
	got, err = s.Pin(ctx, old.UniqueID)
	testenv.Must(t, err)
	var rows int
	testenv.Must(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM pins`).Scan(&rows))
	if *got.Title != "New title" || rows != 1 {
		t.Fatalf("after a newer version: title %q, %d rows in pins; want New title, 1", *got.Title, rows)
	}
}

func keys(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	testenv.Must(t, s.db.QueryRow(`SELECT count(*) FROM duckdb_constraints()
WHERE table_name IN ('pins', 'pins_by_category') AND constraint_type = 'PRIMARY KEY'`).Scan(&n))
	return n
}

func cleaned(t *testing.T, title string, at time.Time, offset int64) pin.Cleaned {
	t.Helper()
	b, _ := json.Marshal(map[string]any{
		"index": 1, "unique_id": "00000000-0000-4000-8000-000000000001", "category": "art", "title": title,
		"description": "d", "follower_count": "10k", "tag_list": "a,b", "is_image_or_video": "image",
		"downloaded": 1, "save_location": "Local save in /data/art",
	})
	c, err := pin.CleanRaw(b, pin.Lineage{IngestedAt: at, Partition: 0, Offset: offset})
	testenv.Must(t, err)
	return c
}

// A process killed inside a checkpoint's metadata write leaves the file
// with a torn block that DuckDB refuses to open, and the copy the
// checkpoint kept: Open puts the copy back and its log replays the day the
// file did not hold yet.
func TestOpenPutsBackTheCopyOfACutShortCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "serving.duckdb")
	day := func(dt string, seed uint64) []pin.Cleaned {
		gen := synth.New(seed)
		at, _ := time.Parse(time.DateOnly, dt)
		out := make([]pin.Cleaned, 1000)
		for i := range out {
			b, _ := json.Marshal(gen.Next())
			c, err := pin.CleanRaw(b, pin.Lineage{IngestedAt: at, Partition: 0, Offset: int64(i)})
			testenv.Must(t, err)
			out[i] = c
		}
		return out
	}
	s, err := Open(ctx, dir, 0, nil)
	testenv.Must(t, err)
	testenv.Must(t, s.ReplaceDay(ctx, "2024-01-15", day("2024-01-15", 1), nil))
	testenv.Must(t, s.Close()) // a checkpoint: the file holds the 15th
	s, err = Open(ctx, dir, 0, nil)
	testenv.Must(t, err)
	testenv.Must(t, s.ReplaceDay(ctx, "2024-01-16", day("2024-01-16", 2), nil)) // in the log only
	duckfiletest.CutShort(t, path, s.Close)

	s, err = Open(ctx, dir, 0, nil)
	testenv.Must(t, err)
	defer s.Close()
	for _, dt := range []string{"2024-01-15", "2024-01-16"} {
		var n int
		testenv.Must(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM pins WHERE dt = CAST(? AS DATE)`, dt).Scan(&n))
		if n != 1000 {
			t.Errorf("%s: %d pins, want 1000", dt, n)
		}
	}
	duckfiletest.Checkpointed(t, path, "the reopen")
}

// Once the log passes duckfile.LogLimit, a write checkpoints.
func TestAWriteCheckpointsWhenTheLogGrows(t *testing.T) {
	duckfiletest.LogLimit(t, 1)
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, 0, nil)
	testenv.Must(t, err)
	defer s.Close()
	testenv.Must(t, s.SaveRun(ctx, pin.Run{ID: "r1", Date: "2024-01-15", Trigger: "manual", Status: "running"}))
	duckfiletest.Checkpointed(t, filepath.Join(dir, "serving.duckdb"), "a write")
}

// A second Open of the same directory is refused with what to do, and
// nothing of the first store's files is touched.
func TestOpenRefusesADirectoryInUse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, 0, nil)
	testenv.Must(t, err)
	defer s.Close()
	testenv.Must(t, s.SaveRun(ctx, pin.Run{ID: "r1", Date: "2024-01-15", Trigger: "manual", Status: "running"}))
	if _, err := Open(ctx, dir, 0, nil); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v, want an error saying the directory is in use", err)
	}
	if _, err := s.Run(ctx, "r1"); err != nil {
		t.Errorf("the first store after a refused second Open: %v", err)
	}
}
