package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"pinpipe/internal/testenv"
)

// runOutage posts o.outageRate pins/s throughout, cuts Postgres (through a
// proxy) for o.outage, brings it back, and reports whether every accepted
// pin reached Postgres exactly once and how long the backlog took to store.
func runOutage(o *options) {
	u, err := url.Parse(o.pgURL)
	check(err)
	proxy, err := testenv.StartProxy(u.Host)
	check(err)
	defer proxy.Close()
	u.Host = proxy.Addr
	cfg := *o.cfg
	cfg.PostgresURL = u.String()
	p := start(&cfg)
	defer stop(p)

	l := newLoader(p.Addr, o.perReq, 4, true)
	ctx, cancel := context.WithCancel(context.Background())
	posting := make(chan struct{})
	go func() { l.steady(ctx, o.outageRate); close(posting) }()
	pr := watch(ctx, p.Addr, "outage", l)
	const warmup, after = 5 * time.Second, 5 * time.Second

	time.Sleep(warmup)
	fmt.Fprintf(os.Stderr, "cutting Postgres for %s\n", o.outage)
	proxy.Down()
	time.Sleep(min(3*time.Second, o.outage))
	readyDown := !postgresReady(p.Addr)
	time.Sleep(o.outage - min(3*time.Second, o.outage))
	backlog := l.accepted.Load()
	proxy.Up()
	upAt := time.Now()
	fmt.Fprintf(os.Stderr, "Postgres is back; %d pins accepted so far\n", backlog)

	// The backlog is stored when Postgres holds every pin accepted before
	// it came back (posting goes on meanwhile).
	var catchUp time.Duration
	for {
		st, err := statsOf(p.Addr)
		if err == nil && st.Total >= backlog {
			catchUp = time.Since(upAt)
			break
		}
		if time.Since(upAt) > 5*time.Minute {
			catchUp = -1
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(after)
	cancel()
	<-posting
	_, stored := waitStored(p.Addr, l.accepted.Load(), 5*time.Minute)

	accepted := l.acceptedIDs()
	inPG, extra, aggOK := verify(o.pgURL, accepted)
	missing := len(accepted) - (inPG - extra)
	fmt.Printf("\nstream lane, Postgres cut for %s under %d pins/s: %s\n\n", o.outage, o.outageRate, o.description)
	catch := "not within 5 min"
	if catchUp >= 0 {
		catch = catchUp.Round(100 * time.Millisecond).String()
	}
	table([]string{"measure", "value"}, [][]string{
		{"pins accepted (202)", fmt.Sprint(len(accepted))},
		{"requests refused", fmt.Sprint(l.failed.Load())},
		{"rows in pinterest.pins", fmt.Sprint(inPG)},
		{"accepted pins missing", fmt.Sprint(missing)},
		{"rows never accepted", fmt.Sprint(extra)},
		{"every accepted pin exactly once", yes(missing == 0 && extra == 0 && inPG == len(accepted) && stored)},
		{"aggregates equal counts over pins", yes(aggOK)},
		{"/readyz said postgres down during the cut", yes(readyDown)},
		{"largest lag seen (records)", fmt.Sprint(pr.maxLag())},
		{"backlog stored after Postgres returned", catch},
	})
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func postgresReady(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var r struct {
		Checks map[string]struct {
			OK bool `json:"ok"`
		} `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r.Checks["postgres"].OK
}

// verify reads the pins straight from Postgres: how many rows, how many of
// them were never accepted, and whether the aggregates equal counts over
// the rows.
func verify(pgURL string, accepted map[string]bool) (rows, extra int, aggOK bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	check(err)
	defer conn.Close(ctx)
	r, err := conn.Query(ctx, `SELECT unique_id FROM pinterest.pins`)
	check(err)
	var id string
	_, err = pgx.ForEachRow(r, []any{&id}, func() error {
		rows++
		if !accepted[id] {
			extra++
		}
		return nil
	})
	check(err)
	var bad int
	err = conn.QueryRow(ctx, `SELECT
	  (SELECT count(*) FROM (SELECT category, count(*) AS n FROM pinterest.pins GROUP BY category) a
	   FULL JOIN (SELECT category, pins FROM pinterest.pins_by_category WHERE pins <> 0) b USING (category)
	   WHERE a.n IS DISTINCT FROM b.pins)
	+ (SELECT count(*) FROM (SELECT date_trunc('minute', ingested_at) AS minute, count(*) AS n FROM pinterest.pins GROUP BY 1) a
	   FULL JOIN (SELECT minute, pins FROM pinterest.pins_by_minute WHERE pins <> 0) b USING (minute)
	   WHERE a.n IS DISTINCT FROM b.pins)`).Scan(&bad)
	check(err)
	return rows, extra, bad == 0
}
