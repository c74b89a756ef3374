package batch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"pinpipe/batch"
	"pinpipe/batch/cassandra"
	"pinpipe/batch/standin"
	"pinpipe/internal/testenv"
	"pinpipe/pin"
)

// cleanedPin returns a cleaned pin made by pin.Clean from a raw pin, so
// the tests hold exactly what the job would write.
func cleanedPin(t *testing.T, id, category string, followers any, at time.Time, offset int64) pin.Cleaned {
	t.Helper()
	raw := map[string]any{
		"index": offset, "unique_id": id, "category": category, "title": "Title " + id,
		"description": "No description available", "follower_count": followers,
		"tag_list": "a, b,,c", "is_image_or_video": "image", "downloaded": 1,
		"save_location": "Local save in /data/" + category,
	}
	b, _ := json.Marshal(raw)
	c, err := pin.CleanRaw(b, pin.Lineage{IngestedAt: at, Partition: 1, Offset: offset})
	testenv.Must(t, err)
	return c
}

func testPinID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func assertPins(t *testing.T, what string, got, want []pin.Cleaned) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d pins, want %d: %s", what, len(got), len(want), pinIDs(got))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Fatalf("%s: pin %d:\n got %s\nwant %s", what, i, g, w)
		}
	}
}

func pinIDs(pins []pin.Cleaned) []string {
	out := make([]string, len(pins))
	for i, p := range pins {
		out[i] = p.UniqueID
	}
	return out
}

// eachServing runs test on every serving store backend: the embedded
// stand-in always, and Cassandra when PINPIPE_CASSANDRA_HOSTS is set. open
// returns a fresh, empty store of the backend.
func eachServing(t *testing.T, test func(t *testing.T, open func(*testing.T) batch.ServingStore)) {
	backends := map[string]func(ctx context.Context, t *testing.T) (batch.ServingStore, error){
		"standin": func(ctx context.Context, t *testing.T) (batch.ServingStore, error) {
			return standin.Open(ctx, t.TempDir(), 0, nil)
		},
	}
	if hosts, _ := testenv.Cassandra(t); hosts != nil {
		backends["cassandra"] = func(ctx context.Context, t *testing.T) (batch.ServingStore, error) {
			_, ks := testenv.Cassandra(t)
			return cassandra.Open(ctx, cassandra.Options{Hosts: hosts, Keyspace: ks, Log: testenv.Log(t)})
		}
	}
	for name, openBackend := range backends {
		t.Run(name, func(t *testing.T) {
			test(t, func(t *testing.T) batch.ServingStore {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				s, err := openBackend(ctx, t)
				testenv.Must(t, err)
				t.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}

func TestServingStoreReplacesADayAndARerunChangesNothing(t *testing.T) {
	eachServing(t, func(t *testing.T, open func(*testing.T) batch.ServingStore) {
		ctx := context.Background()
		s := open(t)
		at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
		day := []pin.Cleaned{
			cleanedPin(t, testPinID(1), "art", "26k", at, 1),
			cleanedPin(t, testPinID(2), "art", "User Info Error", at.Add(time.Millisecond), 2), // no follower count
			cleanedPin(t, testPinID(3), "art", "6M", at.Add(2*time.Millisecond), 3),
			cleanedPin(t, testPinID(4), "travel", "437", at.Add(3*time.Millisecond), 4),
			cleanedPin(t, testPinID(5), "art", "26k", at.Add(4*time.Millisecond), 5), // ties testPinID(1), sorts after it
		}
		day[3].Tags, day[3].TagList = []string{}, nil

		for run := range 2 {
			testenv.Must(t, s.ReplaceDay(ctx, "2024-05-01", day, nil))
			top, err := s.TopByCategory(ctx, "art", "2024-05-01", 10)
			testenv.Must(t, err)
			assertPins(t, fmt.Sprintf("run %d: top art", run), top, []pin.Cleaned{day[2], day[0], day[4], day[1]})
			top, err = s.TopByCategory(ctx, "art", "2024-05-01", 2)
			testenv.Must(t, err)
			assertPins(t, fmt.Sprintf("run %d: top 2 art", run), top, []pin.Cleaned{day[2], day[0]})
			for _, want := range day {
				got, err := s.Pin(ctx, want.UniqueID)
				testenv.Must(t, err)
				assertPins(t, fmt.Sprintf("run %d: pin", run), []pin.Cleaned{got}, []pin.Cleaned{want})
			}
		}

		// A day rerun with fewer pins loses the others' partitions, even a whole category.
		testenv.Must(t, s.ReplaceDay(ctx, "2024-05-01", day[:2], nil))
		top, err := s.TopByCategory(ctx, "art", "2024-05-01", 10)
		testenv.Must(t, err)
		assertPins(t, "after the smaller rerun: top art", top, []pin.Cleaned{day[0], day[1]})
		top, err = s.TopByCategory(ctx, "travel", "2024-05-01", 10)
		testenv.Must(t, err)
		assertPins(t, "after the smaller rerun: top travel", top, []pin.Cleaned{})
	})
}

func TestServingStoreKeepsTheLaterVersionOfAPinWhateverTheOrderOfRuns(t *testing.T) {
	eachServing(t, func(t *testing.T, open func(*testing.T) batch.ServingStore) {
		ctx := context.Background()
		s := open(t)
		v1 := cleanedPin(t, testPinID(7), "art", "1k", time.Date(2024, 5, 1, 23, 59, 0, 0, time.UTC), 3)
		v2 := cleanedPin(t, testPinID(7), "quotes", "2k", time.Date(2024, 5, 2, 0, 1, 0, 0, time.UTC), 10)
		testenv.Must(t, s.ReplaceDay(ctx, "2024-05-02", []pin.Cleaned{v2}, nil))
		testenv.Must(t, s.ReplaceDay(ctx, "2024-05-01", []pin.Cleaned{v1}, nil))

		got, err := s.Pin(ctx, testPinID(7))
		testenv.Must(t, err)
		assertPins(t, "pin", []pin.Cleaned{got}, []pin.Cleaned{v2})
		top, err := s.TopByCategory(ctx, "art", "2024-05-01", 10)
		testenv.Must(t, err)
		assertPins(t, "top art of the first day", top, []pin.Cleaned{v1})
	})
}

// A producer's clock can stamp a later record of a partition earlier than
// an earlier one: the offset decides, in either order of the runs, and the
// stored write time (Cassandra's own "last write wins") does not.
func TestServingStoreKeepsTheHigherOffsetWhenTimestampsDisagree(t *testing.T) {
	eachServing(t, func(t *testing.T, open func(*testing.T) batch.ServingStore) {
		ctx := context.Background()
		for _, order := range []string{"older offset first", "newer offset first"} {
			t.Run(order, func(t *testing.T) {
				s := open(t)
				older := cleanedPin(t, testPinID(8), "art", "1k", time.Date(2024, 5, 2, 0, 1, 0, 0, time.UTC), 3)
				newer := cleanedPin(t, testPinID(8), "quotes", "2k", time.Date(2024, 5, 1, 23, 59, 0, 0, time.UTC), 10)
				runs := []struct {
					dt string
					p  pin.Cleaned
				}{{"2024-05-02", older}, {"2024-05-01", newer}}
				if order == "newer offset first" {
					runs[0], runs[1] = runs[1], runs[0]
				}
				for _, r := range append(runs, runs...) { // and each day once more
					testenv.Must(t, s.ReplaceDay(ctx, r.dt, []pin.Cleaned{r.p}, nil))
					got, err := s.Pin(ctx, testPinID(8))
					testenv.Must(t, err)
					if got.KafkaOffset != 10 && r.p.KafkaOffset == 10 {
						t.Fatalf("after the run of %s the pin is offset %d, want 10", r.dt, got.KafkaOffset)
					}
				}
				got, err := s.Pin(ctx, testPinID(8))
				testenv.Must(t, err)
				assertPins(t, "pin", []pin.Cleaned{got}, []pin.Cleaned{newer})
			})
		}
	})
}

func TestServingStoreAnswersNotFoundForAnUnknownPinOrRun(t *testing.T) {
	eachServing(t, func(t *testing.T, open func(*testing.T) batch.ServingStore) {
		ctx := context.Background()
		s := open(t)
		if _, err := s.Pin(ctx, testPinID(404)); pin.ErrorCode(err) != pin.ENOTFOUND {
			t.Fatalf("Pin of an unknown id: got %v, want code %s", err, pin.ENOTFOUND)
		}
		if _, err := s.Run(ctx, "nope"); pin.ErrorCode(err) != pin.ENOTFOUND {
			t.Fatalf("Run of an unknown id: got %v, want code %s", err, pin.ENOTFOUND)
		}
		top, err := s.TopByCategory(ctx, "art", "2024-05-01", 10)
		testenv.Must(t, err)
		if top == nil || len(top) != 0 {
			t.Fatalf("TopByCategory of an empty day: got %#v, want an empty slice", top)
		}
	})
}

func TestServingStoreListsRunsNewestFirst(t *testing.T) {
	eachServing(t, func(t *testing.T, open func(*testing.T) batch.ServingStore) {
		ctx := context.Background()
		s := open(t)
		started := time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)
		finished := started.Add(90 * time.Second)
		runs := []batch.Run{
			{ID: "20240502T080000.000001Z-aa", Date: "2024-05-01", Trigger: batch.TriggerSchedule, Status: batch.StatusRunning, StartedAt: &started},
			{ID: "20240502T090000.000001Z-bb", Date: "2024-04-30", Trigger: batch.TriggerAPI, Status: batch.StatusQueued},
			{ID: "20240502T100000.000001Z-cc", Date: "2024-05-01", Trigger: batch.TriggerCLI, Status: batch.StatusFailed,
				StartedAt: &started, FinishedAt: &finished, RowsIn: 10, Error: "cassandra is down"},
		}
		for _, r := range runs {
			testenv.Must(t, s.SaveRun(ctx, r))
		}
		runs[0].Status, runs[0].FinishedAt, runs[0].RowsIn, runs[0].RowsOut, runs[0].RowsRejected = batch.StatusSucceeded, &finished, 5, 3, 1
		testenv.Must(t, s.SaveRun(ctx, runs[0]))

		got, err := s.Runs(ctx, 2)
		testenv.Must(t, err)
		if want := []batch.Run{runs[2], runs[1]}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Runs(2): got %+v, want %+v", got, want)
		}
		one, err := s.Run(ctx, runs[0].ID)
		testenv.Must(t, err)
		if !reflect.DeepEqual(one, runs[0]) {
			t.Fatalf("Run: got %+v, want %+v", one, runs[0])
		}
	})
}
