package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	categorySQL  = "SELECT category, count(*) AS pins FROM pins GROUP BY 1 ORDER BY 1"
	forbiddenSQL = "COPY pins TO '/tmp/x.csv'"
	wait         = time.Minute // the longest any one browser step may take
)

// The dashboard, driven by Debian's chromium against a real pinpipe holding
// 300 known pins: the status cards and the stream chart show them, the SQL
// editor answers the per-category counts those pins imply (run with
// Ctrl+Enter and with the button), draws them as a chart, refuses a write
// with the server's 403, and the batch form starts a run that succeeds;
// the page writes no error to its console throughout. Screenshots at
// desktop and phone widths are kept under artifacts/.
func TestDashboardShowsPipelineDataAndAnswersQueries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole pinpipe and a browser")
	}
	chromium(t) // skip (or fail) before starting anything
	d := startDashboard(t, 300)
	browser := newBrowser(t)

	t.Run("desktop", func(t *testing.T) {
		tb := newTab(t, browser)
		tb.do(t, "load the dashboard", wait,
			chromedp.EmulateViewport(1440, 1000),
			chromedp.Navigate(d.base+"/"),
			chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)))

		tb.do(t, fmt.Sprintf("await #stat-total = %d", d.total), wait,
			chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`#stat-total[data-value="%d"]`, d.total))))
		for _, dep := range []string{"kafka", "s3"} {
			tb.do(t, "await the "+dep+" pill ok", wait,
				chromedp.WaitVisible(chromedp.CSS(`#health .pill.ok[data-check="`+dep+`"][data-ok="1"]`)))
		}
		t.Logf("health pills: %v", eval[[]string](t, tb, `[...document.querySelectorAll('#health .pill')].map((p) => p.dataset.check + '=' + (p.dataset.ok === '1' ? 'ok' : 'NOT OK: ' + p.title))`))

		// The stream view's chart: one bar per category, titled "category: count".
		bars := eval[[]string](t, tb, `[...document.querySelectorAll('#category-chart svg g.bar-row > title')].map((t) => t.textContent)`)
		if got, want := barCounts(t, bars), d.want; !maps.Equal(got, want) {
			t.Errorf("#category-chart bars = %v, want %v", got, want)
		}

		// Ctrl+Enter in the editor runs the query.
		tb.do(t, "type the category query and press Ctrl+Enter", wait,
			chromedp.Focus(chromedp.CSS("#sql")),
			chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), // select all: typing replaces it
			chromedp.SendKeys(chromedp.CSS("#sql"), categorySQL),
			chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
			chromedp.WaitReady(chromedp.CSS("#results table tbody tr")))
		checkCategoryResult(t, tb, d)

		// A write is refused by the server, and the page says so.
		tb.do(t, "run the forbidden query with the button", wait,
			chromedp.SetValue(chromedp.CSS("#sql"), forbiddenSQL),
			chromedp.Click(chromedp.CSS("#run-query")),
			chromedp.WaitVisible(chromedp.CSS(`#query-error[data-status="403"]`)),
			chromedp.WaitReady(chromedp.CSS("#results.stale table"))) // the last good result stays, marked
		t.Logf("forbidden query: %q", eval[string](t, tb, `document.querySelector('#query-error').innerText`))

		// The button runs a query too, and a success clears the error.
		tb.do(t, "run the category query with the button", wait,
			chromedp.SetValue(chromedp.CSS("#sql"), categorySQL),
			chromedp.Click(chromedp.CSS("#run-query")),
			chromedp.WaitReady(chromedp.CSS("#results table tbody tr")),
			chromedp.WaitNotVisible(chromedp.CSS("#query-error")))
		checkCategoryResult(t, tb, d)

		// The batch form re-runs today's day; the re-run replaces the
		// curated partition, so the counts stay exact.
		today := time.Now().UTC().Format(time.DateOnly)
		tb.do(t, "start a batch run for "+today+" with the form", 3*time.Minute,
			chromedp.SetValue(chromedp.CSS("#batch-date"), today),
			chromedp.Click(chromedp.CSS("#run-batch")),
			chromedp.WaitReady(chromedp.CSS(`#batch-message[data-tone="ok"]`)),
			chromedp.WaitReady(chromedp.CSS(`#batch-runs tbody tr.mine[data-status="succeeded"]`)),
			chromedp.WaitReady(chromedp.CSS(`#stat-batch[data-status="succeeded"]`)))
		t.Logf("batch form: %q", eval[string](t, tb, `document.querySelector('#batch-message').innerText`))
		if got := eval[string](t, tb, `document.querySelector('#batch-runs tbody tr.mine td:nth-child(4)').textContent`); got != "api" {
			t.Errorf("the run's trigger column says %q, want api", got)
		}
		// The Days panel: today is not over, curated by the run just made,
		// not stale, and its newest run says why it happened.
		day := `#batch-days tbody tr[data-day="` + today + `"]`
		tb.do(t, "await today in the Days panel", wait,
			chromedp.WaitReady(chromedp.CSS(day+`[data-trigger="api"][data-status="succeeded"][data-stale="0"]`)))
		cells := eval[[][]string](t, tb, fmt.Sprintf(cellsText, day))
		if len(cells) != 1 || len(cells[0]) != 7 || cells[0][1] != "not over" || cells[0][3] != "curated" || cells[0][4] != "succeeded" || cells[0][5] != "api" || digits(cells[0][6]) != fmt.Sprint(d.total) {
			t.Errorf("the Days panel's row for %s = %q, want not over, curated, api, %d rows out", today, cells, d.total)
		}
		tb.do(t, "re-run the category query after the batch re-run", wait,
			chromedp.Click(chromedp.CSS("#run-query")),
			chromedp.WaitReady(chromedp.CSS("#results table tbody tr")))
		checkCategoryResult(t, tb, d)

		for _, sel := range []string{".table-scroll.recent", ".table-scroll.runs", ".table-scroll.results"} {
			if over := eval[int](t, tb, `(() => { const el = document.querySelector('`+sel+`'); return el.scrollWidth - el.clientWidth; })()`); over > 0 {
				t.Logf("%s scrolls sideways by %d px at 1440 px", sel, over)
			}
		}
		shoot(t, tb, "dashboard.png")
		if p := tb.problems("/query"); len(p) > 0 {
			t.Errorf("the page wrote %d console errors:\n%s", len(p), strings.Join(p, "\n"))
		}
	})

	t.Run("phone", func(t *testing.T) {
		tb := newTab(t, browser)
		tb.do(t, "load the dashboard at 390 px", wait,
			chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
			chromedp.Navigate(d.base+"/"),
			chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)),
			chromedp.WaitReady(chromedp.CSS(fmt.Sprintf(`#stat-total[data-value="%d"]`, d.total))),
			chromedp.SetValue(chromedp.CSS("#sql"), categorySQL),
			chromedp.Click(chromedp.CSS("#run-query")),
			chromedp.WaitReady(chromedp.CSS("#results table tbody tr")))
		checkCategoryResult(t, tb, d)
		// Nothing but the scrolling tables may be wider than the screen.
		if w := eval[int](t, tb, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the page is %d px wide on a 390 px screen", w)
		}
		shoot(t, tb, "dashboard-phone.png")
		if p := tb.problems(); len(p) > 0 {
			t.Errorf("the page wrote %d console errors:\n%s", len(p), strings.Join(p, "\n"))
		}
	})

	t.Run("long fields", func(t *testing.T) {
		// A pin whose title is 55 000 characters (under the 64 KiB a field may
		// hold): the list polls it cut.
		const uid = "0b5c6a44-1f7e-4c1e-9a59-5d0c1f6b2a11"
		title := strings.Repeat("long title ", 5000)
		body, _ := json.Marshal(map[string]any{"index": 1, "unique_id": uid, "category": "travel", "title": title})
		var accepted struct{ Accepted int }
		if status := d.call(t, "POST", "/pins", "application/json", body, &accepted); status != http.StatusAccepted {
			t.Fatalf("POST /pins with a long title = %d", status)
		}
		tb := newTab(t, browser)
		row := `#recent-pins tbody tr[data-uid="` + uid + `"]`
		tb.do(t, "await the long pin in the newest pins", wait,
			chromedp.Navigate(d.base+"/"),
			chromedp.WaitReady(chromedp.CSS(row)))
		shown := eval[string](t, tb, `document.querySelector('`+row+` td.title').textContent`)
		if want := title[:200] + "\u2026"; shown != want {
			t.Errorf("the list shows a title of %d characters (%.30q…), want the first 200 and an ellipsis", len([]rune(shown)), shown)
		}
		tb.do(t, "open the long pin", wait,
			chromedp.Click(chromedp.CSS(row)),
			chromedp.WaitVisible(chromedp.CSS("#pin-dialog[open]")))
		if n := eval[int](t, tb, `document.querySelector('#pin-dialog').textContent.length`); n > 5000 {
			t.Errorf("the pin's dialog holds %d characters, want the title cut", n)
		}
		if p := tb.problems(); len(p) > 0 {
			t.Errorf("the page wrote %d console errors:\n%s", len(p), strings.Join(p, "\n"))
		}
	})
}

// checkCategoryResult checks that the result table, its meta line and its
// chart show exactly the per-category counts of the posted pins, in
// category order.
func checkCategoryResult(t *testing.T, tb *tab, d *dashboard) {
	t.Helper()
	head := eval[[][]string](t, tb, fmt.Sprintf(cellsText, "#results table thead tr"))
	if len(head) != 1 || !slices.Equal(head[0], []string{"category", "pins"}) {
		t.Errorf("result header = %q, want [[category pins]]", head)
	}
	rows := eval[[][]string](t, tb, fmt.Sprintf(cellsText, "#results table tbody tr"))
	cats := slices.Sorted(maps.Keys(d.want))
	var want [][]string
	for _, c := range cats {
		want = append(want, []string{c, fmt.Sprint(d.want[c])})
	}
	var got [][]string
	for _, r := range rows {
		if len(r) == 2 {
			r = []string{r[0], digits(r[1])}
		}
		got = append(got, r)
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("result table = %q,\nwant %q", got, want)
	}
	if n := eval[string](t, tb, `document.querySelector('#result-meta').dataset.rows`); n != fmt.Sprint(len(cats)) {
		t.Errorf("#result-meta data-rows = %q, want %d", n, len(cats))
	}
	if !eval[bool](t, tb, `!!document.querySelector('#result-chart:not([hidden]) svg')`) {
		t.Fatal("#result-chart shows no svg for a two-column result")
	}
	bars := eval[[]string](t, tb, `[...document.querySelectorAll('#result-chart svg g.bar-row > title')].map((t) => t.textContent)`)
	if got := barCounts(t, bars); !maps.Equal(got, d.want) {
		t.Errorf("#result-chart bars = %v, want %v", got, d.want)
	}
}

// barCounts reads bar titles such as "travel: 23" into counts.
func barCounts(t *testing.T, titles []string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, s := range titles {
		label, value, ok := strings.Cut(s, ": ")
		var n int64
		if _, err := fmt.Sscan(digits(value), &n); !ok || err != nil {
			t.Errorf("bar title %q is not \"label: count\"", s)
			continue
		}
		out[label] = n
	}
	return out
}

// shoot saves a full-page screenshot of the tab under artifacts/ and logs
// where. It scrolls to the top first: the sticky top bar would otherwise
// be drawn at the scroll position, over the middle of the page.
func shoot(t *testing.T, tb *tab, name string) {
	t.Helper()
	eval[int](t, tb, `window.scrollTo(0, 0), window.scrollY`)
	png := func() []byte {
		ctx, cancel := context.WithTimeout(tb.ctx, wait)
		defer cancel()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("browser: screenshot %s: %v", name, err)
		}
		return b
	}()
	t.Logf("screenshot: %s", saveArtifact(t, name, png))
}
