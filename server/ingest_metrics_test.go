package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/ingest"
	"pinpipe/server"
)

// TestRejectedPinsCountPinsNotFieldErrors: pinpipe_ingest_pins_rejected_total
// counts every pin of a refused request (none of it was accepted), and
// pinpipe_ingest_pins_invalid_total the bad pins, each once however many of
// its fields are wrong.
func TestRejectedPinsCountPinsNotFieldErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	// The requests are refused before anything is produced, so no broker
	// is ever dialled.
	prod := ingest.NewProducer([]string{"127.0.0.1:1"}, "pins", reg)
	defer prod.Close()
	base, _ := serve(t, server.Options{Producer: prod}, nil)

	threeBadFields := `{"index":"x","unique_id":5,"category":""}`
	a := send(t, base, req{method: "POST", path: "/pins", contentType: "application/json", body: threeBadFields})
	if d := problemDetail(t, a, 400); !strings.Contains(d, "index") || !strings.Contains(d, "unique_id") || !strings.Contains(d, "category") {
		t.Fatalf("detail %q, want the three bad fields named", d)
	}
	assertCounter(t, reg, "pinpipe_ingest_pins_rejected_total", 1)
	assertCounter(t, reg, "pinpipe_ingest_pins_invalid_total", 1)

	var pins []string
	for i := range 40 {
		pins = append(pins, fmt.Sprintf(`{"index":%d,"unique_id":"%08d-3442-4773-b19e-d3ec6f54dddf","category":"travel"}`, i, i))
	}
	pins = append(pins, threeBadFields)
	a = send(t, base, req{method: "POST", path: "/pins", contentType: "application/json", body: "[" + strings.Join(pins, ",") + "]"})
	if d := problemDetail(t, a, 400); !strings.Contains(d, "1 of 41 pins is invalid") {
		t.Fatalf("detail %q, want 1 of 41 pins invalid", d)
	}
	assertCounter(t, reg, "pinpipe_ingest_pins_rejected_total", 1+41)
	assertCounter(t, reg, "pinpipe_ingest_pins_invalid_total", 1+1)
	assertCounter(t, reg, "pinpipe_ingest_pins_accepted_total", 0)
}

// assertCounter fails the test unless reg's counter name (without labels)
// has value want.
func assertCounter(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
			return
		}
	}
	t.Errorf("%s is not registered", name)
}
