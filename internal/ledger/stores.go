package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"pinpipe/batch"
	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// RawZone reads the raw zone, loading each object once: the landing never
// rewrites an object.
type RawZone struct {
	Lake   *lake.Store
	loaded map[string][]batch.RawRecord
}

// Records returns every record of the raw zone now. Returns an error when
// the zone cannot be listed or an object cannot be read.
func (z *RawZone) Records(ctx context.Context) ([]batch.RawRecord, error) {
	if z.loaded == nil {
		z.loaded = map[string][]batch.RawRecord{}
	}
	objs, err := batch.RawObjects(ctx, z.Lake, "")
	if err != nil {
		return nil, fmt.Errorf("raw zone: list: %w", err)
	}
	var out []batch.RawRecord
	for _, o := range objs {
		recs, ok := z.loaded[o.Key]
		if !ok {
			recs, err = batch.LoadRaw(ctx, z.Lake, o.Key)
			if err != nil {
				return nil, fmt.Errorf("raw zone: read %s: %w", o.Key, err)
			}
			z.loaded[o.Key] = recs
		}
		out = append(out, recs...)
	}
	return out, nil
}

// Rows returns the raw zone's records by key, each with its pin's title,
// and the partition/offsets it holds more than once (a defect that cannot
// heal: the landing must write each record once).
func (z *RawZone) Rows(ctx context.Context) (Rows, []string, error) {
	recs, err := z.Records(ctx)
	if err != nil {
		return nil, nil, err
	}
	at := map[string]bool{}
	var twice []string
	rows := Rows{}
	for _, r := range recs {
		po := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
		if at[po] {
			twice = append(twice, po)
		}
		at[po] = true
		rows[r.Key] = append(rows[r.Key], titleOf(r.Value))
	}
	return rows, twice, nil
}

// Landed returns the day each version in the raw zone landed on.
func (z *RawZone) Landed(ctx context.Context) (Landed, error) {
	recs, err := z.Records(ctx)
	if err != nil {
		return nil, err
	}
	out := Landed{}
	for _, r := range recs {
		if out[r.Key] == nil {
			out[r.Key] = map[string][]string{}
		}
		title, dt := titleOf(r.Value), r.Timestamp.UTC().Format(time.DateOnly)
		if !slices.Contains(out[r.Key][title], dt) {
			out[r.Key][title] = append(out[r.Key][title], dt)
		}
	}
	return out, nil
}

// titleOf is the title of the pin whose JSON is value ("" when it has none).
func titleOf(value string) string {
	var p struct{ Title *string }
	_ = json.Unmarshal([]byte(value), &p)
	if p.Title == nil {
		return ""
	}
	return *p.Title
}

// Postgres returns the stream lane's pins table at url (schema pinterest).
// Returns empty rows, not an error, while the table does not exist yet (the
// lane creates it when it first starts).
func Postgres(ctx context.Context, url string) (Rows, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('pinterest.pins') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return Rows{}, err
	}
	return scanRows(conn.Query(ctx, `SELECT unique_id, coalesce(title, '') FROM pinterest.pins`))
}

// PostgresHas returns which of ids the stream lane's pins table holds, with
// their titles.
func PostgresHas(ctx context.Context, conn *pgx.Conn, ids []string) (Rows, error) {
	return scanRows(conn.Query(ctx, `SELECT unique_id, coalesce(title, '') FROM pinterest.pins WHERE unique_id = ANY($1)`, ids))
}

func scanRows(rows pgx.Rows, err error) (Rows, error) {
	if err != nil {
		return nil, fmt.Errorf("postgres: query: %w", err)
	}
	out := Rows{}
	for rows.Next() {
		var id, title string
		if err := rows.Scan(&id, &title); err != nil {
			return nil, fmt.Errorf("postgres: scan: %w", err)
		}
		out[id] = append(out[id], title)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read: %w", err)
	}
	return out, nil
}

// Cassandra returns the serving table pins of keyspace: one row per
// unique_id (its primary key), unless the read is wrong.
func Cassandra(ctx context.Context, hosts []string, keyspace string) (Rows, error) {
	cluster := gocql.NewCluster(hosts...)
	cluster.Keyspace = keyspace
	cluster.Timeout = 30 * time.Second
	s, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra: connect: %w", err)
	}
	defer s.Close()
	out := Rows{}
	it := s.Query(`SELECT unique_id, title FROM pins`).WithContext(ctx).PageSize(5000).Iter()
	var id string
	var title *string
	for it.Scan(&id, &title) {
		t := ""
		if title != nil {
			t = *title
		}
		out[id] = append(out[id], t)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("cassandra: read pins: %w", err)
	}
	return out, nil
}

// Curated returns, for every day of the curated zone, its rows as readers
// take the zone: the day's object (layout.CuratedDayKey), or for a day kept
// as parts (the old layout) the parts of its newest committed run, keyed
// by DayKey: a pin sent on two days has a row in each.
func Curated(ctx context.Context, s *lake.Store) (Rows, error) {
	objs, err := s.List(ctx, layout.Curated.Prefix())
	if err != nil {
		return nil, fmt.Errorf("curated zone: list: %w", err)
	}
	newest := map[string]string{} // dt → run
	whole := map[string]bool{}    // dt → the day's object is there
	for _, o := range objs {
		k, ok := layout.Parse(o.Key)
		if ok && k.Kind == layout.Commit && k.Run > newest[k.DT] {
			newest[k.DT] = k.Run
		}
		if ok && k.Kind == layout.CuratedDay {
			whole[k.DT] = true
		}
	}
	out := Rows{}
	for _, o := range objs {
		k, ok := layout.Parse(o.Key)
		switch {
		case !ok:
			continue
		case whole[k.DT]:
			if k.Kind != layout.CuratedDay {
				continue
			}
		case k.Kind != layout.CuratedPart || k.Run != newest[k.DT]:
			continue
		}
		body, err := s.Get(ctx, o.Key)
		if err != nil {
			return nil, fmt.Errorf("curated zone: get %s: %w", o.Key, err)
		}
		b, err := io.ReadAll(body)
		_ = body.Close()
		if err != nil {
			return nil, fmt.Errorf("curated zone: read %s: %w", o.Key, err)
		}
		rows, err := parquet.Read[struct {
			UniqueID string  `parquet:"unique_id"`
			Title    *string `parquet:"title,optional"`
		}](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("curated zone: decode %s: %w", o.Key, err)
		}
		for _, r := range rows {
			t := ""
			if r.Title != nil {
				t = *r.Title
			}
			out[DayKey(r.UniqueID, k.DT)] = append(out[DayKey(r.UniqueID, k.DT)], t)
		}
	}
	return out, nil
}

// PinsLive returns the pins_live view as the pinpipe at base answers POST
// /query, keyed by DayKey (the view has a row per pin and day), page rows
// at a time (the answer's pages are ordered, so paging
// with offset reads each row once while the view does not change).
// Returns an error when an answer is not 200.
func PinsLive(ctx context.Context, base string, page int) (Rows, error) {
	out := Rows{}
	for offset := 0; ; offset += page {
		rows, truncated, err := pinsLivePage(ctx, base, offset, page)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if len(r) == 3 {
				out[DayKey(r[0], r[2])] = append(out[DayKey(r[0], r[2])], r[1])
			}
		}
		if !truncated {
			return out, nil
		}
	}
}

// pinsLivePage returns limit rows of pins_live from offset on, and whether
// more follow.
func pinsLivePage(ctx context.Context, base string, offset, limit int) ([][]string, bool, error) {
	body, _ := json.Marshal(map[string]any{"sql": "SELECT unique_id, coalesce(title, '') AS title, CAST(dt AS VARCHAR) AS dt FROM pins_live ORDER BY unique_id, dt, title",
		"limit": limit, "offset": offset})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("pins_live: POST /query: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("pins_live: POST /query: %s %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var res struct {
		Rows      [][]string `json:"rows"`
		Truncated bool       `json:"truncated"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, false, fmt.Errorf("pins_live: decode the answer: %w", err)
	}
	return res.Rows, res.Truncated, nil
}
