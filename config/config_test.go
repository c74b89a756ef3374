package config_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"pinpipe/config"
	"pinpipe/pin"
)

func load(t *testing.T, env map[string]string, args ...string) (*config.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, _, err := config.Load(fs, args, func(k string) string { return env[k] })
	return c, err
}

func TestLoadGivesDesignDefaults(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8000" || c.Topic != "pins" || c.CassandraKeyspace != "pinterest" || c.BatchCron != "0 8 * * *" ||
		c.LandingMaxRecords != 10000 || c.LandingInterval != 60*time.Second || len(c.KafkaBrokers) != 0 || c.S3Endpoint != "" {
		t.Fatalf("defaults = %+v", c)
	}
	if k, s, cas, pg := c.Embedded(); !k || !s || !cas || !pg {
		t.Errorf("Embedded() = %v %v %v %v, want all embedded", k, s, cas, pg)
	}
}

func TestFlagOverridesEnvironmentOverridesDefault(t *testing.T) {
	env := map[string]string{"PINPIPE_TOPIC": "from-env", "PINPIPE_KAFKA_BROKERS": "a:9092, b:9092", "PINPIPE_LANDING_INTERVAL": "5s"}
	c, err := load(t, env, "--topic", "from-flag")
	if err != nil {
		t.Fatal(err)
	}
	if c.Topic != "from-flag" || strings.Join(c.KafkaBrokers, "|") != "a:9092|b:9092" || c.LandingInterval != 5*time.Second {
		t.Fatalf("got topic %q brokers %q interval %s", c.Topic, c.KafkaBrokers, c.LandingInterval)
	}
}

func TestLoadNamesTheSettingOfABadValue(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"PINPIPE_LANDING_INTERVAL": "soon"}, nil, "PINPIPE_LANDING_INTERVAL (from PINPIPE_LANDING_INTERVAL)"},
		{nil, []string{"--landing-max-records", "-3"}, "PINPIPE_LANDING_MAX_RECORDS (from --landing-max-records)"},
		{map[string]string{"PINPIPE_BATCH_CRON": "every day"}, nil, "PINPIPE_BATCH_CRON"},
		{map[string]string{"PINPIPE_S3_ENDPOINT": "http://s3:9000"}, nil, "AWS_ACCESS_KEY_ID"},
		{map[string]string{"PINPIPE_ALLOWED_HOSTS": "https://pinpipe.example.com"}, nil, "PINPIPE_ALLOWED_HOSTS"},
		{map[string]string{"PINPIPE_ALLOWED_HOSTS": "pinpipe.example.com:99999"}, nil, "PINPIPE_ALLOWED_HOSTS"},
		{map[string]string{"PINPIPE_ALLOWED_ORIGINS": "https://dash.example.com/"}, nil, "PINPIPE_ALLOWED_ORIGINS"},
		{map[string]string{"PINPIPE_ALLOWED_ORIGINS": "dash.example.com"}, nil, "PINPIPE_ALLOWED_ORIGINS"},
		{map[string]string{"PINPIPE_ALLOWED_ORIGINS": "ftp://dash.example.com"}, nil, "PINPIPE_ALLOWED_ORIGINS"},
		{map[string]string{"PINPIPE_RAW_RETENTION": "ninety days"}, nil, "PINPIPE_RAW_RETENTION"},
		{map[string]string{"PINPIPE_RAW_RETENTION": "5d"}, nil, "at least PINPIPE_LATE_LOOKBACK + 1 days (8d)"},
		{map[string]string{"PINPIPE_LATE_CHECK_INTERVAL": "10s"}, nil, "PINPIPE_LATE_CHECK_INTERVAL"},
		{map[string]string{"PINPIPE_LATE_LOOKBACK": "a week"}, nil, "PINPIPE_LATE_LOOKBACK"},
	} {
		_, err := load(t, tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v args %v: error %v, want one naming %q", tt.env, tt.args, err, tt.want)
		}
	}
}

func TestLoadReadsAllowedHostsAndOrigins(t *testing.T) {
	env := map[string]string{
		"PINPIPE_ALLOWED_HOSTS":   "pinpipe.example.com, pinpipe.lan:8000,[::1]:8000,*",
		"PINPIPE_ALLOWED_ORIGINS": "https://dash.example.com,http://localhost:3000",
	}
	c, err := load(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AllowedHosts, "|"); got != "pinpipe.example.com|pinpipe.lan:8000|[::1]:8000|*" {
		t.Errorf("AllowedHosts = %q", got)
	}
	if got := strings.Join(c.AllowedOrigins, "|"); got != "https://dash.example.com|http://localhost:3000" {
		t.Errorf("AllowedOrigins = %q", got)
	}
	if c, err := load(t, nil); err != nil || c.AllowedHosts != nil || c.AllowedOrigins != nil {
		t.Errorf("defaults: hosts %q origins %q err %v, want none", c.AllowedHosts, c.AllowedOrigins, err)
	}
}

func TestLoadReadsTheMaxFieldBytes(t *testing.T) {
	c, err := load(t, nil)
	if err != nil || c.MaxFieldBytes != pin.DefaultMaxFieldBytes {
		t.Fatalf("default MaxFieldBytes = %d (%v), want pin's default %d", c.MaxFieldBytes, err, pin.DefaultMaxFieldBytes)
	}
	if c, err := load(t, map[string]string{"PINPIPE_MAX_FIELD_BYTES": "1024"}); err != nil || c.MaxFieldBytes != 1024 {
		t.Fatalf("from the environment: %v, %v", c, err)
	}
	if _, err := load(t, nil, "--max-field-bytes", "0"); err == nil || !strings.Contains(err.Error(), "PINPIPE_MAX_FIELD_BYTES (from --max-field-bytes)") {
		t.Fatalf("a limit of 0: %v", err)
	}
}

func TestLoadReadsTheBatchScheduleSettings(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchWait != 2*time.Hour || c.LateCheckInterval != 10*time.Minute || c.LateLookback != 7 || c.RawRetention != 0 || c.BatchConcurrency != 1 {
		t.Fatalf("defaults: wait %s check %s lookback %d retention %s concurrency %d", c.BatchWait, c.LateCheckInterval, c.LateLookback, c.RawRetention, c.BatchConcurrency)
	}
	c, err = load(t, map[string]string{"PINPIPE_RAW_RETENTION": "90d", "PINPIPE_LATE_LOOKBACK": "14d"}, "--batch-concurrency", "2")
	if err != nil {
		t.Fatal(err)
	}
	if c.RawRetention != 90*24*time.Hour || c.LateLookback != 14 || c.BatchConcurrency != 2 {
		t.Fatalf("retention %s lookback %d concurrency %d", c.RawRetention, c.LateLookback, c.BatchConcurrency)
	}
	if c, err = load(t, map[string]string{"PINPIPE_RAW_RETENTION": "2160h"}); err != nil || c.RawRetention != 90*24*time.Hour {
		t.Fatalf("PINPIPE_RAW_RETENTION=2160h: %v, %v", c, err)
	}
}

func TestLoadReadsTheBatchMemoryAsASize(t *testing.T) {
	c, err := load(t, nil)
	if err != nil || c.BatchMemory != 1<<30 {
		t.Fatalf("default BatchMemory = %d (%v), want 1GiB", c.BatchMemory, err)
	}
	for v, want := range map[string]int64{"512MiB": 512 << 20, "2GB": 2e9, "1073741824": 1 << 30, "64 MiB": 64 << 20} {
		if c, err := load(t, map[string]string{"PINPIPE_BATCH_MEMORY": v}); err != nil || c.BatchMemory != want {
			t.Fatalf("PINPIPE_BATCH_MEMORY=%s: %v, %v; want %d", v, c, err, want)
		}
	}
	for _, v := range []string{"1x", "-1GiB", "100KiB", "99999999999TiB"} {
		if _, err := load(t, map[string]string{"PINPIPE_BATCH_MEMORY": v}); err == nil || !strings.Contains(err.Error(), "PINPIPE_BATCH_MEMORY") {
			t.Fatalf("PINPIPE_BATCH_MEMORY=%s: %v, want an error naming the setting", v, err)
		}
	}
}
