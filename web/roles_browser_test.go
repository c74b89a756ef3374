package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"pinpipe/config"
	"pinpipe/internal/testenv"
	"pinpipe/pipeline"
)

// TestDashboardOnAnInstanceWithTheAPIAndQueryRolesOnly loads the dashboard
// from an instance without the lanes: the header shows its roles, a query
// runs, and the batch form says which role is missing instead of failing
// the page.
func TestDashboardOnAnInstanceWithTheAPIAndQueryRolesOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a pinpipe and a browser")
	}
	chromium(t)
	cfg := testenv.Config(t)
	cfg.Roles = config.Roles{config.RoleAPI, config.RoleQuery}
	p, err := pipeline.Start(context.Background(), cfg, testenv.Log(t))
	testenv.Must(t, err)
	defer p.Stop(context.Background())
	base := "http://" + p.Addr

	tb := newTab(t, newBrowser(t))
	tb.do(t, "load the dashboard and await the roles badge", wait,
		chromedp.EmulateViewport(1440, 1000),
		chromedp.Navigate(base+"/"),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#health .pill.roles[data-roles="api,query"]`)))
	tb.do(t, "run a query", wait,
		chromedp.SetValue(chromedp.CSS("#sql"), "SELECT 42 AS answer"),
		chromedp.Click(chromedp.CSS("#run-query")),
		chromedp.WaitReady(chromedp.CSS("#results table tbody tr")))
	today := time.Now().UTC().Format(time.DateOnly)
	tb.do(t, "start a batch run with the form", wait,
		chromedp.SetValue(chromedp.CSS("#batch-date"), today),
		chromedp.Click(chromedp.CSS("#run-batch")),
		chromedp.WaitReady(chromedp.CSS(`#batch-message[data-tone="bad"]`)))
	if msg := eval[string](t, tb, `document.querySelector('#batch-message').innerText`); !strings.Contains(msg, "batch role") {
		t.Fatalf("the batch form says %q, want the missing batch role named", msg)
	}
	if p := tb.problems("/batch/runs"); len(p) > 0 {
		t.Errorf("the page wrote %d console errors:\n%s", len(p), strings.Join(p, "\n"))
	}
}
