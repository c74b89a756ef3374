package config_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"pinpipe/config"
)

func TestLogFormatAndAccessLogSettings(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LogFormat != config.LogText || !c.AccessLog {
		t.Errorf("defaults: LogFormat %q AccessLog %v, want text and on", c.LogFormat, c.AccessLog)
	}
	c, err = load(t, map[string]string{"PINPIPE_LOG_FORMAT": "json", "PINPIPE_ACCESS_LOG": "off"})
	if err != nil {
		t.Fatal(err)
	}
	if c.LogFormat != config.LogJSON || c.AccessLog {
		t.Errorf("json/off: LogFormat %q AccessLog %v", c.LogFormat, c.AccessLog)
	}
	for env, v := range map[string]string{"PINPIPE_LOG_FORMAT": "xml", "PINPIPE_ACCESS_LOG": "sometimes"} {
		if _, err := load(t, map[string]string{env: v}); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: err %v, want an error naming the setting", env, v, err)
		}
	}
}

func TestNewLoggerWritesJSONOrText(t *testing.T) {
	var b bytes.Buffer
	config.NewLogger(&b, "warn", config.LogJSON).Info("hidden below warn")
	config.NewLogger(&b, "warn", config.LogJSON).Warn("lag", slog.Int("partition", 2))
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("json format wrote %q, not one JSON object: %v", b.String(), err)
	}
	if line["msg"] != "lag" || line["level"] != "WARN" || line["partition"] != float64(2) {
		t.Errorf("json line %v, want msg lag, level WARN, partition 2", line)
	}
	b.Reset()
	config.NewLogger(&b, "info", config.LogText).Info("lag", slog.Int("partition", 2))
	if s := b.String(); !strings.Contains(s, "level=INFO msg=lag partition=2") {
		t.Errorf("text format wrote %q, want key=value", s)
	}
}
