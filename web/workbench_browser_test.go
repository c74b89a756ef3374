package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/parquet-go/parquet-go"

	"pinpipe/internal/testenv"
)

// bulkRows is how many rows the export checks download: fifty pages of
// the table view.
const bulkRows = 50000

var bulkSQL = fmt.Sprintf("SELECT range AS id, 'pin ' || range AS label FROM range(%d) ORDER BY id", bulkRows)

func TestWorkbenchKeepsHistoryURLAndResultsAndExportsWholeAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole pinpipe and a browser")
	}
	chromium(t)
	d := startDashboard(t, 30)
	browser := newBrowser(t)
	tb := newTab(t, browser)

	// The query in the URL: the editor gets it and runs it.
	tb.do(t, "open the dashboard with a query in its URL", wait,
		chromedp.EmulateViewport(1440, 1000),
		chromedp.Navigate(d.base+"/#sql="+url.PathEscape(bulkSQL)),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)),
		chromedp.WaitReady(chromedp.CSS(`#result-meta[data-rows="1000"][data-offset="0"][data-truncated="1"]`)))
	if got := eval[string](t, tb, `document.querySelector('#sql').value`); got != bulkSQL {
		t.Fatalf("the editor holds %q, want the URL's %q", got, bulkSQL)
	}
	if got := eval[string](t, tb, `document.querySelector('#results tbody tr:last-child td').textContent`); got != "999" {
		t.Errorf("the first page ends with id = %q, want 999", got)
	}

	// The batch form starts on the newest day with raw data: today's pins.
	tb.do(t, "await the batch form's day", wait, chromedp.WaitReady(chromedp.CSS(`#batch-date[data-source="raw"]`)))
	if got, today := eval[string](t, tb, `document.querySelector('#batch-date').value`), time.Now().UTC().Format(time.DateOnly); got != today {
		t.Errorf("the batch form starts on %q, want %s, the day of the pins posted", got, today)
	}

	// The next page, and back.
	tb.do(t, "page forward", wait,
		chromedp.Click(chromedp.CSS("#page-next")),
		chromedp.WaitReady(chromedp.CSS(`#result-meta[data-offset="1000"][data-rows="1000"]`)))
	// An id is shown as it is, without thousands separators.
	if got := eval[string](t, tb, `document.querySelector('#results tbody tr td').textContent`); got != "1000" {
		t.Errorf("the second page starts with id = %q, want 1000", got)
	}
	tb.do(t, "page back", wait,
		chromedp.Click(chromedp.CSS("#page-prev")),
		chromedp.WaitReady(chromedp.CSS(`#result-meta[data-offset="0"]`)))

	// The schema browser lists the views with their columns and types;
	// a click inserts a name at the cursor.
	tb.do(t, "await the pins view's columns", wait,
		chromedp.WaitReady(chromedp.CSS(`#schema-views details[data-view="pins"] li[data-column="follower_count"]`)))
	cols := eval[[][]string](t, tb, `[...document.querySelectorAll('#schema-views details[data-view="pins"] li')].map((li) => [li.dataset.column, li.querySelector('.schema-type').textContent])`)
	types := map[string]string{}
	for _, c := range cols {
		types[c[0]] = c[1]
	}
	for col, want := range map[string]string{"id_index": "BIGINT", "unique_id": "VARCHAR", "tags": "VARCHAR[]", "dt": "DATE"} {
		if types[col] != want {
			t.Errorf("the schema browser shows pins.%s as %q, want %q (all: %v)", col, types[col], want, cols)
		}
	}
	for _, v := range []string{"pins_live", "pins_raw"} {
		if n := eval[int](t, tb, `document.querySelectorAll('#schema-views details[data-view="`+v+`"] li').length`); n == 0 {
			t.Errorf("the schema browser lists no columns of %s", v)
		}
	}
	tb.do(t, "insert a column name", wait,
		chromedp.SetValue(chromedp.CSS("#sql"), "SELECT  FROM pins"),
		chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector('#sql'); e.focus(); e.setSelectionRange(7, 7); })()`),
		chromedp.Click(chromedp.CSS(`#schema-views details[data-view="pins"] li[data-column="category"] button`)))
	if got := eval[string](t, tb, `document.querySelector('#sql').value`); got != "SELECT category FROM pins" {
		t.Errorf("after clicking category the editor holds %q", got)
	}

	// History: the query run is listed; a click puts it back in the editor.
	tb.do(t, "restore the query from the history", wait,
		chromedp.SetValue(chromedp.CSS("#sql"), "something else"),
		chromedp.Click(chromedp.CSS("#history > summary")),
		chromedp.Click(chromedp.CSS(`#history-list li:first-child button.memory-item`)))
	if got := eval[string](t, tb, `document.querySelector('#sql').value`); got != bulkSQL {
		t.Errorf("the history restored %q, want %q", got, bulkSQL)
	}

	// A failing query shows its error above the previous result, which stays.
	tb.do(t, "run a query DuckDB refuses", wait,
		chromedp.SetValue(chromedp.CSS("#sql"), "SELECT no_such_column FROM pins"),
		chromedp.Click(chromedp.CSS("#run-query")),
		chromedp.WaitVisible(chromedp.CSS(`#query-error[data-status="400"]`)),
		chromedp.WaitReady(chromedp.CSS(`#results.stale table tbody tr`)))
	if got := eval[int](t, tb, `document.querySelectorAll('#results tbody tr').length`); got != 1000 {
		t.Errorf("after the failed query the table shows %d rows, want the previous 1000", got)
	}
	if !strings.Contains(eval[string](t, tb, `document.querySelector('#query-error').innerText`), "no_such_column") {
		t.Errorf("the error does not name the column: %q", eval[string](t, tb, `document.querySelector('#query-error').innerText`))
	}
	// A one-day result charts as one bar labelled with its ISO date.
	tb.do(t, "chart a one-day result", wait,
		chromedp.SetValue(chromedp.CSS("#sql"), "SELECT DATE '2026-11-20' AS dt, 30 AS pins"),
		chromedp.Click(chromedp.CSS("#run-query")),
		chromedp.WaitReady(chromedp.CSS(`#result-meta[data-rows="1"]`)),
		chromedp.WaitReady(chromedp.CSS(`#result-chart svg`)))
	if bars := eval[[]string](t, tb, `[...document.querySelectorAll('#result-chart svg g.bar-row > title')].map((t) => t.textContent)`); len(bars) != 1 || !strings.HasPrefix(bars[0], "2026-11-20") {
		t.Errorf("the one-day chart's bars are %q, want one labelled 2026-11-20", bars)
	}

	// The URL holds the last query run.
	if got := eval[string](t, tb, `decodeURIComponent(location.hash.slice(5))`); got != "SELECT DATE '2026-11-20' AS dt, 30 AS pins" {
		t.Errorf("the URL holds %q", got)
	}

	// The whole answer, not the page, in each format.
	tb.do(t, "run the bulk query again", wait,
		chromedp.SetValue(chromedp.CSS("#sql"), bulkSQL),
		chromedp.Click(chromedp.CSS("#run-query")),
		chromedp.WaitNotVisible(chromedp.CSS("#query-error")),
		chromedp.WaitReady(chromedp.CSS(`#result-meta[data-rows="1000"][data-truncated="1"]`)))
	dir := t.TempDir()
	for _, format := range []string{"csv", "jsonl", "parquet"} {
		file := download(t, tb, dir, "#download-"+format)
		if n := countRows(t, format, file); n != bulkRows {
			t.Errorf("the %s download holds %d rows, want %d", format, n, bulkRows)
		} else {
			t.Logf("%s: %d rows, %d bytes", format, n, len(file))
		}
	}
	if p := tb.problems("/query"); len(p) > 0 {
		t.Errorf("the page wrote %d console errors:\n%s", len(p), strings.Join(p, "\n"))
	}
}

// download clicks the button sel in the tab and returns the file the
// browser saved in dir.
func download(t *testing.T, tb *tab, dir, sel string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Minute)
	defer cancel()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			events := true
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events,
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: download with %s: %v", sel, err)
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("browser: download with %s: %v", sel, err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCanceled:
			t.Fatalf("browser: the download with %s was cancelled", sel)
		case browser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			testenv.Must(t, err)
			return b
		}
	}
	t.Fatalf("browser: the download with %s never completed", sel)
	return nil
}

// countRows counts the rows of a downloaded export, checking each row's
// label matches its number.
func countRows(t *testing.T, format string, file []byte) int {
	t.Helper()
	switch format {
	case "csv":
		recs, err := csv.NewReader(bytes.NewReader(file)).ReadAll()
		testenv.Must(t, err)
		if len(recs) == 0 || strings.Join(recs[0], ",") != "id,label" {
			t.Fatalf("the CSV download starts %q", recs[:min(len(recs), 1)])
		}
		for _, r := range recs[1:] {
			if r[1] != "pin "+r[0] {
				t.Fatalf("CSV row %v", r)
			}
		}
		return len(recs) - 1
	case "jsonl":
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(file))
		for sc.Scan() {
			if want := fmt.Sprintf(`{"id":%d,"label":"pin %d"}`, n, n); sc.Text() != want {
				t.Fatalf("JSON Lines line %d = %s, want %s", n+1, sc.Text(), want)
			}
			n++
		}
		return n
	case "parquet":
		f, err := parquet.OpenFile(bytes.NewReader(file), int64(len(file)))
		testenv.Must(t, err)
		var names []string
		for _, c := range f.Schema().Fields() {
			names = append(names, c.Name())
		}
		if strings.Join(names, ",") != "id,label" {
			t.Fatalf("the Parquet download has the columns %v", names)
		}
		return int(f.NumRows())
	}
	t.Fatalf("no format %s", format)
	return 0
}
