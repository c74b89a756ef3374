//go:build linux

package stream_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pinpipe/internal/duckfile/duckfiletest"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
	"pinpipe/stream"
)

// The crash test runs the embedded stand-in in a child process (this test
// binary again, in crashChild mode) that writes micro-batches the way the
// lane does, kills it at random points, and checks what a restart finds.
const (
	crashDirEnv  = "PINPIPE_TEST_CRASH_DIR"  // the child's data dir; set only in the child
	crashFromEnv = "PINPIPE_TEST_CRASH_FROM" // the first batch the child has not written
	crashSeed    = 9
	crashCats    = 7
)

// The workload: batches of up to crashMaxBatch pins over crashPool
// unique_ids, their ingested_at on one of crashStamps instants (a POST's pins
// share one Kafka timestamp, so an index on it holds long runs of equal
// keys); the child closes and reopens the store after every crashReopen-th
// batch.
const (
	crashPool     = 600
	crashMaxBatch = 300
	crashStamps   = 3
	crashReopen   = 4
)

// crashBatch returns micro-batch i of the crash test, the same in every
// process: up to 300 pins drawn from crashPool unique_ids (at most one
// record per unique_id, as the lane sends), each a later record than any
// earlier batch's (a higher offset of the pin's fixed partition), with a
// category and minute that change from batch to batch; and one rejected
// record.
func crashBatch(i int) ([]pin.Cleaned, []stream.Rejected) {
	rng := rand.New(rand.NewPCG(crashSeed, uint64(i)))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * 13 * time.Second)
	n := min(crashPool, 20+rng.IntN(crashMaxBatch))
	var out []pin.Cleaned
	for j, k := range rng.Perm(crashPool)[:n] {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", k, k)
		cat := fmt.Sprintf("cat%d", rng.IntN(crashCats))
		at := base.Add(time.Duration(rng.IntN(crashStamps)) * time.Millisecond)
		out = append(out, cleaned(id, cat, at, int32(k%4), int64(i)<<20+int64(j), fmt.Sprintf("batch %d", i)))
	}
	rej := []stream.Rejected{{Topic: "pins", Partition: int32(i % 4), Offset: int64(i)<<20 + 1<<20 - 1, IngestedAt: base, Reason: "not json", Raw: []byte("{" + strconv.Itoa(i))}}
	return out, rej
}

// crashExpected returns the rows pinterest.pins must hold once batches
// 0..last are stored: the latest record of each unique_id.
func crashExpected(last int) map[string]pin.Cleaned {
	out := map[string]pin.Cleaned{}
	for i := 0; i <= last; i++ {
		ps, _ := crashBatch(i)
		for _, p := range ps {
			out[p.UniqueID] = p
		}
	}
	return out
}

// TestCrashChild is the child process of
// TestEmbeddedStreamStoreSurvivesKills; it skips unless run as one. It opens
// the stand-in, re-writes the two batches before PINPIPE_TEST_CRASH_FROM (a
// restarted lane is redelivered what it had not committed), then writes
// batch after batch, printing "ack N" once batch N's Write returned, while
// another goroutine reads the real-time view as the server would. It exits
// on a failure, saying so on stdout.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child of TestEmbeddedStreamStoreSurvivesKills")
	}
	from, err := strconv.Atoi(os.Getenv(crashFromEnv))
	if err != nil {
		fmt.Printf("fail bad %s: %v\n", crashFromEnv, err)
		os.Exit(3)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := stream.OpenDuckDB(ctx, dir, log)
	if err != nil {
		fmt.Printf("fail open: %v\n", err)
		os.Exit(3)
	}
	fmt.Println("open")
	var mu sync.RWMutex // held to swap s
	go func() {
		for {
			mu.RLock()
			_, err := s.Stats(ctx)
			if err == nil {
				_, err = s.Recent(ctx, 20)
			}
			mu.RUnlock()
			if err != nil {
				fmt.Printf("fail read: %v\n", err)
				os.Exit(3)
			}
			time.Sleep(5 * time.Millisecond) // a dashboard's pace, not a busy loop
		}
	}()
	for i := max(0, from-2); i < from+100_000; i++ {
		ps, rej := crashBatch(i)
		if err := s.Write(ctx, ps, rej); err != nil {
			fmt.Printf("fail write %d: %v\n", i, err)
			os.Exit(3)
		}
		if i >= from {
			fmt.Printf("ack %d\n", i)
		}
		// A clean stop now and then, so kills also land in the checkpoint
		// of a close and in the open that follows.
		if i%crashReopen == crashReopen-1 {
			mu.Lock()
			err := s.Close()
			if err == nil {
				s, err = stream.OpenDuckDB(ctx, dir, log)
			}
			mu.Unlock()
			if err != nil {
				fmt.Printf("fail reopen: %v\n", err)
				os.Exit(3)
			}
		}
	}
	os.Exit(0)
}

// TestEmbeddedStreamStoreSurvivesKills kills a process writing to the
// stand-in with SIGKILL and SIGABRT at random points of its writes, and
// after each kill either restarts the writer on the same files or reopens
// the store here, re-writes the batches a restarted lane would be
// redelivered, and checks that the store answers and holds exactly the
// latest record of every pin written, with aggregates equal to the rows.
func TestEmbeddedStreamStoreSurvivesKills(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	iterations := 16
	if testing.Short() {
		iterations = 4
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(crashSeed, 1))
	var logged []string // what the writers warned of, for a failure's report
	defer func() {
		if t.Failed() {
			files, _ := os.ReadDir(dir)
			var names []string
			for _, f := range files {
				names = append(names, f.Name())
			}
			t.Logf("files in the data dir: %q\nthe writers' warnings:\n%s", names, strings.Join(logged, "\n"))
		}
	}()
	next := 0 // the first batch not known to be stored
	for it := range iterations {
		sig := syscall.SIGKILL
		if it%2 == 1 {
			sig = syscall.SIGABRT
		}
		last, stderr := crashRun(t, dir, next, 1+rng.IntN(5), rng, sig)
		for l := range strings.Lines(stderr) {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				logged = append(logged, fmt.Sprintf("writer %d: %s", it, strings.TrimSpace(l)))
			}
		}
		// The batch in flight at the kill may or may not be stored; a
		// restarted lane writes it again, as it does the acknowledged
		// batches whose offsets it had not committed.
		next = last + 2
		if it%3 == 2 || it == iterations-1 {
			crashVerify(t, dir, max(0, last-1), last+1)
		}
	}
	t.Logf("%d kills, %d batches", iterations, next)
}

// crashRun starts a child writing from batch from on dir, waits for acks
// acknowledged batches, kills it with sig within about one batch's time, and
// returns the last batch acknowledged and what the child wrote to stderr.
// Fails the test if the child reports a failure.
func crashRun(t *testing.T, dir string, from, acks int, rng *rand.Rand, sig syscall.Signal) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashFromEnv+"="+strconv.Itoa(from), "GOTRACEBACK=single")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &limited{w: &stderr, n: 64 << 10}
	out, err := cmd.StdoutPipe()
	testenv.Must(t, err)
	testenv.Must(t, cmd.Start())
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	fail := func(format string, args ...any) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("writer from batch %d: "+format+"\nstderr:\n%s", append([]any{from}, append(args, stderr.String())...)...)
	}
	last := from - 1
	var first time.Time
	for last < from-1+acks {
		select {
		case l, ok := <-lines:
			if !ok {
				fail("exited early")
			}
			switch {
			case l == "open":
				first = time.Now()
			case strings.HasPrefix(l, "ack "):
				last, _ = strconv.Atoi(l[4:])
			case strings.HasPrefix(l, "fail "):
				fail("%s", l)
			}
		case <-time.After(2 * time.Minute):
			fail("no progress in 2 minutes")
		}
	}
	// A random point of the next batch's write: the average batch time so
	// far bounds the delay.
	per := time.Since(first) / time.Duration(acks)
	time.Sleep(time.Duration(rng.Int64N(int64(per) + 1)))
	testenv.Must(t, cmd.Process.Signal(sig))
	for l := range lines {
		if strings.HasPrefix(l, "ack ") {
			last, _ = strconv.Atoi(l[4:])
		}
		if strings.HasPrefix(l, "fail ") {
			fail("%s", l)
		}
	}
	err = cmd.Wait()
	if err == nil {
		t.Fatalf("writer from batch %d exited cleanly before the kill", from)
	}
	return last, stderr.String()
}

// crashVerify reopens the store on dir, re-writes batches redo..last, and
// checks that it holds exactly the latest record of each pin of batches
// 0..last, in its rows and in its aggregates.
func crashVerify(t *testing.T, dir string, redo, last int) {
	t.Helper()
	ctx := context.Background()
	s, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
	if err != nil {
		t.Fatalf("reopen after a kill: %v", err)
	}
	defer s.Close()
	for i := redo; i <= last; i++ {
		ps, rej := crashBatch(i)
		if err := s.Write(ctx, ps, rej); err != nil {
			t.Fatalf("re-write batch %d after a kill: %v", i, err)
		}
	}
	testenv.Must(t, s.Check(ctx))
	want := crashExpected(last)
	got, err := s.Recent(ctx, 10*crashPool)
	testenv.Must(t, err)
	if len(got) != len(want) {
		t.Errorf("after batches 0..%d: %d rows, want %d (one per unique_id written)", last, len(got), len(want))
	}
	byCat := map[string]int64{}
	for _, w := range want {
		byCat[w.Category]++
	}
	seen := map[string]bool{}
	for _, g := range got {
		w, ok := want[g.UniqueID]
		switch {
		case seen[g.UniqueID]:
			t.Errorf("unique_id %s has two rows", g.UniqueID)
		case !ok:
			t.Errorf("unique_id %s was never written", g.UniqueID)
		case g.KafkaOffset != w.KafkaOffset || g.Category != w.Category || !g.IngestedAt.Equal(w.IngestedAt) || *g.Title != *w.Title:
			t.Errorf("unique_id %s: offset %d %s %s %q, want its latest record: offset %d %s %s %q",
				g.UniqueID, g.KafkaOffset, g.Category, g.IngestedAt, *g.Title, w.KafkaOffset, w.Category, w.IngestedAt, *w.Title)
		}
		seen[g.UniqueID] = true
	}
	st, err := s.Stats(ctx)
	testenv.Must(t, err)
	if st.Total != int64(len(want)) || !maps.Equal(st.ByCategory, byCat) {
		t.Errorf("stats: total %d by_category %v, want %d %v", st.Total, st.ByCategory, len(want), byCat)
	}
	testenv.Must(t, s.Close())

	db, err := sql.Open("duckdb", filepath.Join(dir, "stream.duckdb"))
	testenv.Must(t, err)
	defer db.Close()
	assertAggregatesMatchRows(t, db)
	if n := count(t, db, `SELECT count(*) FROM pinterest.rejected`); n != int64(last+1) {
		t.Errorf("%d rejected rows, want %d (one per batch)", n, last+1)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// limited writes at most n bytes to w and drops the rest: a child's goroutine
// dump can be long.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		_, _ = l.w.Write(p[:k])
	}
	return len(p), nil
}

// TestEmbeddedStreamStoreRepairsItselfOnOpen breaks the stand-in's file the
// ways an unclean stop can (a duplicate row, aggregates that disagree with
// the rows), reopens it, and checks the store is exact again and without
// indexes.
func TestEmbeddedStreamStoreRepairsItselfOnOpen(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
	testenv.Must(t, err)
	for i := range 3 {
		ps, rej := crashBatch(i)
		testenv.Must(t, s.Write(ctx, ps, rej))
	}
	testenv.Must(t, s.Close())

	db, err := sql.Open("duckdb", filepath.Join(dir, "stream.duckdb"))
	testenv.Must(t, err)
	for _, q := range []string{
		`INSERT INTO pinterest.pins SELECT * FROM pinterest.pins LIMIT 5`,
		`UPDATE pinterest.pins_by_category SET pins = pins + 7`,
		`DELETE FROM pinterest.pins_by_minute WHERE minute = (SELECT min(minute) FROM pinterest.pins_by_minute)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	testenv.Must(t, db.Close())

	crashVerify(t, dir, 2, 2)
	db, err = sql.Open("duckdb", filepath.Join(dir, "stream.duckdb"))
	testenv.Must(t, err)
	defer db.Close()
	if n := count(t, db, `SELECT count(*) FROM duckdb_indexes() WHERE schema_name = 'pinterest'`); n != 0 {
		t.Errorf("%d indexes on the stand-in's tables, want none", n)
	}
}

// TestEmbeddedStreamStoreMovesAnUnreadableFileAside checks that a store
// file DuckDB cannot open is moved aside and replaced, and that a write-ahead
// log it cannot replay costs only what the log held.
func TestEmbeddedStreamStoreMovesAnUnreadableFileAside(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "stream.duckdb")
		testenv.Must(t, os.WriteFile(path, []byte("not a database, but written over one by accident of a crash"), 0o644))
		crashVerify(t, dir, 0, 1) // a new store, then batches 0 and 1
		aside, _ := filepath.Glob(path + ".broken-*")
		if len(aside) != 1 {
			t.Fatalf("moved aside: %q, want the one broken file", aside)
		}
	})
	t.Run("log", func(t *testing.T) {
		dir := t.TempDir()
		s, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
		testenv.Must(t, err)
		for i := range 2 {
			ps, rej := crashBatch(i)
			testenv.Must(t, s.Write(ctx, ps, rej))
		}
		testenv.Must(t, s.Close()) // a checkpoint: the file holds both batches
		wal := filepath.Join(dir, "stream.duckdb.wal")
		testenv.Must(t, os.WriteFile(wal, []byte("\x01\x02garbage where a log was"), 0o644))
		crashVerify(t, dir, 2, 2) // the file's batches 0 and 1 survive
	})
}

// TestEmbeddedStreamStorePutsBackTheCopyOfACutShortCheckpoint leaves the
// stand-in's files as a process killed inside a checkpoint's metadata write
// leaves them: the copy from before the checkpoint (the file and its
// write-ahead log, holding one batch the file does not), and the file with
// a torn block that DuckDB refuses to open. A reopen must put the copy back
// and replay its log: every batch, nothing moved aside.
func TestEmbeddedStreamStorePutsBackTheCopyOfACutShortCheckpoint(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "stream.duckdb")
	s, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
	testenv.Must(t, err)
	for i := range 2 {
		ps, rej := crashBatch(i)
		testenv.Must(t, s.Write(ctx, ps, rej))
	}
	testenv.Must(t, s.Close()) // a checkpoint: the file holds batches 0 and 1
	s, err = stream.OpenDuckDB(ctx, dir, testenv.Log(t))
	testenv.Must(t, err)
	ps, rej := crashBatch(2)
	testenv.Must(t, s.Write(ctx, ps, rej)) // in the log only
	duckfiletest.CutShort(t, path, s.Close)
	testenv.Must(t, os.WriteFile(path+".wal.checkpoint", []byte("what the checkpoint's own log had begun"), 0o644))

	crashVerify(t, dir, 3, 2) // batches 0..2, none written again
	if aside, _ := filepath.Glob(path + ".broken-*"); len(aside) != 0 {
		t.Errorf("moved aside: %q, want nothing: the copy was whole", aside)
	}
	duckfiletest.Checkpointed(t, path, "the reopen")
}

// TestEmbeddedStreamStoreCheckpointsWhenItsLogGrows lowers the log size
// that makes a write checkpoint to one byte and checks that every write
// leaves an empty log and no copy behind, and the store exact.
func TestEmbeddedStreamStoreCheckpointsWhenItsLogGrows(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	duckfiletest.LogLimit(t, 1)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "stream.duckdb")
	s, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
	testenv.Must(t, err)
	for i := range 4 {
		ps, rej := crashBatch(i)
		testenv.Must(t, s.Write(ctx, ps, rej))
		duckfiletest.Checkpointed(t, path, fmt.Sprintf("batch %d", i))
	}
	testenv.Must(t, s.Close())
	crashVerify(t, dir, 4, 3) // batches 0..3, none written again
}

// TestEmbeddedStreamStoreReportsWhenUnusable opens the stand-in where no
// file can be made and checks that it says so through Check and EUNAVAILABLE
// reads instead of failing only in the lane's retries.
func TestEmbeddedStreamStoreReportsWhenUnusable(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	s, err := stream.OpenDuckDB(ctx, "/proc/self/fdinfo", testenv.Log(t)) // even root cannot create files here
	testenv.Must(t, err)
	defer s.Close()
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Errorf("Check = %v, want an error saying the store is unusable", err)
	}
	if _, err := s.Stats(ctx); pin.ErrorCode(err) != pin.EUNAVAILABLE {
		t.Errorf("Stats: %v, want code %s", err, pin.EUNAVAILABLE)
	}
	ps, rej := crashBatch(0)
	if err := s.Write(ctx, ps, rej); err == nil {
		t.Error("Write succeeded on an unusable store")
	}
}

// TestEmbeddedStreamStoreRefusesADataDirInUse opens the stand-in twice on
// one directory: the second is refused, saying why.
func TestEmbeddedStreamStoreRefusesADataDirInUse(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
	testenv.Must(t, err)
	defer s.Close()
	if _, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t)); err == nil || !strings.Contains(err.Error(), "another pinpipe") {
		t.Fatalf("second open: %v, want an error asking whether another pinpipe uses the data dir", err)
	}
	testenv.Must(t, s.Check(ctx))
}

// TestEmbeddedStreamStoreFinishesACutShortRebuild leaves the files as a
// process killed inside a rebuild leaves them, and checks that the next open
// loses nothing: killed after the broken file was moved aside, with a new
// file begun, the rebuild runs again from the broken file; killed after its
// log was moved but before the file, the log goes back.
func TestEmbeddedStreamStoreFinishesACutShortRebuild(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	ctx := context.Background()
	// store writes batches 0..2 to dir, the last in the log only, and
	// returns the file and its log as they were before the close.
	store := func(t *testing.T, dir string) (file, log []byte) {
		s, err := stream.OpenDuckDB(ctx, dir, testenv.Log(t))
		testenv.Must(t, err)
		for i := range 3 {
			if i == 2 {
				testenv.Must(t, s.Close())
				s, err = stream.OpenDuckDB(ctx, dir, testenv.Log(t))
				testenv.Must(t, err)
			}
			ps, rej := crashBatch(i)
			testenv.Must(t, s.Write(ctx, ps, rej))
		}
		path := filepath.Join(dir, "stream.duckdb")
		file, err = os.ReadFile(path)
		testenv.Must(t, err)
		log, err = os.ReadFile(path + ".wal")
		testenv.Must(t, err)
		testenv.Must(t, s.Close())
		return file, log
	}
	const aside = "stream.duckdb.broken-20260301T120000.000Z"
	t.Run("after the move", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "stream.duckdb")
		file, log := store(t, dir)
		testenv.Must(t, os.WriteFile(filepath.Join(dir, aside), file, 0o644))
		testenv.Must(t, os.WriteFile(filepath.Join(dir, aside+".wal"), log, 0o644))
		// The new file the cut-short rebuild had begun: an empty store.
		empty := t.TempDir()
		s, err := stream.OpenDuckDB(ctx, empty, testenv.Log(t))
		testenv.Must(t, err)
		testenv.Must(t, s.Close())
		b, err := os.ReadFile(filepath.Join(empty, "stream.duckdb"))
		testenv.Must(t, err)
		testenv.Must(t, os.WriteFile(path, b, 0o644)) // a clean close left no log
		testenv.Must(t, os.WriteFile(path+".rebuilding", []byte(aside), 0o644))

		crashVerify(t, dir, 3, 2) // batches 0..2, none written again
		if _, err := os.Stat(path + ".rebuilding"); err == nil {
			t.Error("the rebuild's marker is still there")
		}
		if _, err := os.Stat(filepath.Join(dir, aside)); err != nil {
			t.Errorf("the broken file is not kept: %v", err)
		}
	})
	t.Run("before the file moved", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "stream.duckdb")
		file, log := store(t, dir)
		testenv.Must(t, os.WriteFile(path, file, 0o644)) // a clean close left no log
		testenv.Must(t, os.WriteFile(filepath.Join(dir, aside+".wal"), log, 0o644))
		testenv.Must(t, os.WriteFile(path+".rebuilding", []byte(aside), 0o644))

		crashVerify(t, dir, 3, 2) // batches 0..2: batch 2 came from the log put back
		if left, _ := filepath.Glob(filepath.Join(dir, "stream.duckdb.*")); len(left) != 0 {
			t.Errorf("left behind: %q", left)
		}
	})
}
