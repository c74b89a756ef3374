// Package config reads pinpipe's configuration once, at start, from the
// environment and from flags of the same names.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/spf13/pflag"
)

// Config is everything pinpipe reads from its environment. The only other
// read is the client commands' --api-key (load, emulate), whose default is
// PINPIPE_API_KEY (cmd/client.go).
type Config struct {
	Addr    string // HTTP listen address
	DataDir string // root of every embedded default's data
	APIKey  string // when set, API routes need "Authorization: Bearer <key>"

	// AllowedHosts are the Host header values the server answers besides
	// IP addresses and localhost: "name" (any port) or "name:port"; "*"
	// for any.
	AllowedHosts []string
	// AllowedOrigins are the web origins ("https://app.example.com") whose
	// pages may post and query, besides pinpipe's own.
	AllowedOrigins []string

	KafkaBrokers []string // empty: the embedded Kafka-protocol broker
	Topic        string
	GroupPrefix  string // consumer groups are <prefix>-landing and <prefix>-stream

	S3Endpoint     string // empty: the embedded S3 server
	S3Bucket       string
	AWSAccessKeyID string
	AWSSecretKey   string
	AWSRegion      string

	CassandraHosts    []string // empty: the embedded stand-in tables
	CassandraKeyspace string

	PostgresURL string // empty: the embedded stand-in tables

	BatchCron        string
	BatchWait        time.Duration // how long the scheduled run waits for its day to be complete
	BatchConcurrency int           // batch runs one process runs at once; a backfill's days at a time
	// BatchMemory is the memory one batch run may hold; a day that would
	// need more is spilled to disk under DataDir.
	BatchMemory       int64
	LateCheckInterval time.Duration // how often the late-data checker runs
	LateLookback      int           // days back from yesterday the checker looks at
	RawRetention      time.Duration // raw and rejected days older than this are removed once curated; 0 keeps them
	LandingMaxRecords int
	LandingInterval   time.Duration
	// LateGrace is how long after a day's end records stamped that day may
	// still arrive: the day is complete only once the landing stored past
	// its end plus this.
	LateGrace time.Duration

	StreamMaxRecords int
	StreamInterval   time.Duration
	StreamLinger     time.Duration // 0: micro-batches wait for StreamInterval

	MaxBodyBytes  int64
	MaxFieldBytes int // the most bytes one field of a POST /pins record may hold

	QueryTimeout       time.Duration
	QueryMemoryLimit   string
	QueryThreads       int
	QueryMaxConcurrent int
	QueryMaxResult     int64
	QueryMaxSpill      int64
	ExportMaxRows      int
	ExportMaxBytes     int64
	ExportTimeout      time.Duration
	MirrorMaxBytes     int64
	MirrorStaleness    time.Duration

	LogLevel  string
	LogFormat string // LogText or LogJSON
	// AccessLog turns on one log line per HTTP request.
	AccessLog bool

	TopicPartitions  int // partitions of a topic pinpipe creates
	TopicReplication int // replicas of a topic pinpipe creates, capped at the broker count
	// Roles are the parts of the pipeline this instance runs; see Roles.
	Roles Roles
	// ShutdownDrain is how long a stopping instance keeps serving with
	// /readyz unready, so a load balancer moves traffic away first.
	ShutdownDrain time.Duration
}

// The roles an instance may run (PINPIPE_ROLES).
const (
	RoleAPI     = "api"     // POST /pins (the producer) and the read routes
	RoleLanding = "landing" // the landing consumer: topic → raw zone
	RoleStream  = "stream"  // the stream consumer: topic → Postgres
	RoleBatch   = "batch"   // the daily schedule and on-demand runs
	RoleQuery   = "query"   // DuckDB over the lake mirror, for /query
)

// AllRoles is every role, in the order they are listed.
var AllRoles = Roles{RoleAPI, RoleLanding, RoleStream, RoleBatch, RoleQuery}

// Roles is a set of roles in AllRoles order, without repeats.
type Roles []string

// Has reports whether role is in r.
func (r Roles) Has(role string) bool { return slices.Contains(r, role) }

// ParseRoles reads a comma-separated list of roles, or "all". Returns an
// error naming the unknown role, or saying the list is empty.
func ParseRoles(v string) (Roles, error) {
	if strings.TrimSpace(v) == "all" {
		return slices.Clone(AllRoles), nil
	}
	want := list(v)
	for _, r := range want {
		if !AllRoles.Has(r) {
			return nil, fmt.Errorf("unknown role %q: want all, or a comma-separated list of %s", r, strings.Join(AllRoles, ", "))
		}
	}
	var out Roles
	for _, r := range AllRoles {
		if slices.Contains(want, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no role given: want all, or a comma-separated list of %s", strings.Join(AllRoles, ", "))
	}
	return out, nil
}

// setting ties one environment variable to its flag, its default and the
// Config field it fills.
type setting struct {
	env   string
	def   string
	usage string
	set   func(c *Config, v string) error
}

// Flag returns the flag name for an environment variable name:
// PINPIPE_KAFKA_BROKERS → kafka-brokers, AWS_REGION → aws-region.
func Flag(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, "PINPIPE_"), "_", "-"))
}

var settings = []setting{
	{"PINPIPE_ADDR", "127.0.0.1:8000", "HTTP listen address", func(c *Config, v string) error { c.Addr = v; return nil }},
	{"PINPIPE_DATA_DIR", "./data", "directory for the embedded defaults' data and the lake mirror", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"PINPIPE_API_KEY", "", "when set, API routes need 'Authorization: Bearer <key>'", func(c *Config, v string) error { c.APIKey = v; return nil }},
	{"PINPIPE_ALLOWED_HOSTS", "", "comma-separated host names (name or name:port, * for any) the server answers besides IP addresses and localhost", func(c *Config, v string) error {
		c.AllowedHosts = list(v)
		return validHosts(c.AllowedHosts)
	}},
	{"PINPIPE_ALLOWED_ORIGINS", "", "comma-separated origins (scheme://host[:port]) whose web pages may post and query, besides pinpipe's own", func(c *Config, v string) error {
		c.AllowedOrigins = list(v)
		return validOrigins(c.AllowedOrigins)
	}},
	{"PINPIPE_KAFKA_BROKERS", "", "comma-separated Kafka bootstrap brokers (empty: embedded broker)", func(c *Config, v string) error { c.KafkaBrokers = list(v); return nil }},
	{"PINPIPE_TOPIC", "pins", "Kafka topic of accepted pins", func(c *Config, v string) error { c.Topic = v; return nil }},
	{"PINPIPE_GROUP_PREFIX", "pinpipe", "prefix of the lanes' Kafka consumer groups (<prefix>-landing, <prefix>-stream)", func(c *Config, v string) error { c.GroupPrefix = v; return nil }},
	{"PINPIPE_S3_ENDPOINT", "", "S3 endpoint URL (empty: embedded S3 server)", func(c *Config, v string) error { c.S3Endpoint = v; return nil }},
	{"PINPIPE_S3_BUCKET", "pinpipe", "S3 bucket of the raw, curated and rejected zones", func(c *Config, v string) error { c.S3Bucket = v; return nil }},
	{"AWS_ACCESS_KEY_ID", "", "S3 access key", func(c *Config, v string) error { c.AWSAccessKeyID = v; return nil }},
	{"AWS_SECRET_ACCESS_KEY", "", "S3 secret key", func(c *Config, v string) error { c.AWSSecretKey = v; return nil }},
	{"AWS_REGION", "us-east-1", "S3 region", func(c *Config, v string) error { c.AWSRegion = v; return nil }},
	{"PINPIPE_CASSANDRA_HOSTS", "", "comma-separated Cassandra hosts, host:port (empty: embedded stand-in)", func(c *Config, v string) error { c.CassandraHosts = list(v); return nil }},
	{"PINPIPE_CASSANDRA_KEYSPACE", "pinterest", "Cassandra keyspace", func(c *Config, v string) error { c.CassandraKeyspace = v; return nil }},
	{"PINPIPE_POSTGRES_URL", "", "Postgres connection URL (empty: embedded stand-in)", func(c *Config, v string) error { c.PostgresURL = v; return nil }},
	{"PINPIPE_BATCH_CRON", "0 8 * * *", "cron schedule (UTC) of the daily batch run, for yesterday", func(c *Config, v string) error { c.BatchCron = v; return validCron(v) }},
	{"PINPIPE_BATCH_WAIT", "2h", "how long the scheduled run waits for its day to be complete (every partition landed past the day's end) before it records a failed run; it then goes on asking every 30s and runs by itself within 30s of the day becoming complete", durSetter(func(c *Config, d time.Duration) { c.BatchWait = d })},
	{"PINPIPE_BATCH_CONCURRENCY", "1", "batch runs one instance runs at once; a backfill runs its days this many at a time", intSetter(func(c *Config, n int) { c.BatchConcurrency = n })},
	{"PINPIPE_BATCH_MEMORY", "1GiB", "memory one batch run may use (bytes, or with KiB, MiB, GiB, KB, MB, GB); a larger day is deduplicated through spill files in the data dir", func(c *Config, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		if n < 1<<20 {
			return fmt.Errorf("want at least 1MiB, got %q", v)
		}
		c.BatchMemory = n
		return nil
	}},
	{"PINPIPE_LATE_CHECK_INTERVAL", "10m", "how often one instance re-runs curated days whose raw zone gained late records (trigger late-data), runs days whose scheduled run gave up once they are complete, and applies PINPIPE_RAW_RETENTION; at least 1m", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			return fmt.Errorf("want a duration of at least 1m, such as 10m or 1h, got %q", v)
		}
		c.LateCheckInterval = d
		return nil
	}},
	{"PINPIPE_LATE_LOOKBACK", "7", "how many days back from yesterday the late-data check looks (a whole number of days)", func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
		if err != nil || n <= 0 || n > 366 {
			return fmt.Errorf("want a whole number of days from 1 to 366, such as 7, got %q", v)
		}
		c.LateLookback = n
		return nil
	}},
	{"PINPIPE_RAW_RETENTION", "0", "how long raw and rejected days are kept once a run curated them, such as 90d or 2160h (0: forever); older ones are removed by the late-data check", func(c *Config, v string) error {
		d, err := dayDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want 0 (keep forever) or a duration such as 90d, 30d or 720h, got %q", v)
		}
		c.RawRetention = d
		return nil
	}},
	{"PINPIPE_LANDING_MAX_RECORDS", "10000", "raw-zone object size in records", intSetter(func(c *Config, n int) { c.LandingMaxRecords = n })},
	{"PINPIPE_LANDING_INTERVAL", "60s", "longest wait before a raw-zone object is written", durSetter(func(c *Config, d time.Duration) { c.LandingInterval = d })},
	{"PINPIPE_LATE_GRACE", "10m", "how long after a UTC day ends its records may still arrive; the day is complete once the landing stored past its end plus this", durSetter(func(c *Config, d time.Duration) { c.LateGrace = d })},
	{"PINPIPE_STREAM_MAX_RECORDS", "5000", "stream micro-batch size in records", intSetter(func(c *Config, n int) { c.StreamMaxRecords = n })},
	{"PINPIPE_STREAM_INTERVAL", "100ms", "longest wait before a stream micro-batch is written", durSetter(func(c *Config, d time.Duration) { c.StreamInterval = d })},
	{"PINPIPE_STREAM_LINGER", "5ms", "a stream micro-batch is also written once no record came for this long (0: off); Postgres only, the embedded stand-in waits for the interval", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 5ms, or 0 to turn it off, got %q", v)
		}
		c.StreamLinger = d
		return nil
	}},
	{"PINPIPE_MAX_BODY_BYTES", "16777216", "largest POST /pins body in bytes", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive number of bytes, got %q", v)
		}
		c.MaxBodyBytes = n
		return nil
	}},
	{"PINPIPE_QUERY_TIMEOUT", "30s", "longest run of one SQL query", durSetter(func(c *Config, d time.Duration) { c.QueryTimeout = d })},
	{"PINPIPE_QUERY_MEMORY_LIMIT", "2GB", "DuckDB memory limit", func(c *Config, v string) error { c.QueryMemoryLimit = v; return nil }},
	{"PINPIPE_QUERY_THREADS", "2", "DuckDB threads", intSetter(func(c *Config, n int) { c.QueryThreads = n })},
	{"PINPIPE_QUERY_MAX_CONCURRENT", "4", "queries running at once; more get 429", intSetter(func(c *Config, n int) { c.QueryMaxConcurrent = n })},
	{"PINPIPE_QUERY_MAX_RESULT_BYTES", "67108864", "largest answer of one SQL query in bytes; more gets 413", bytesSetter(func(c *Config, n int64) { c.QueryMaxResult = n })},
	{"PINPIPE_QUERY_MAX_SPILL", "4294967296", "disk DuckDB may spill to, in bytes", bytesSetter(func(c *Config, n int64) { c.QueryMaxSpill = n })},
	{"PINPIPE_EXPORT_MAX_ROWS", "10000000", "most rows of one full export (/query/export); more gets 413", intSetter(func(c *Config, n int) { c.ExportMaxRows = n })},
	{"PINPIPE_EXPORT_MAX_BYTES", "1GiB", "largest file of one full export (/query/export), written to the data dir before it is sent (bytes, or with KiB, MiB, GiB, KB, MB, GB); more gets 413", func(c *Config, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		c.ExportMaxBytes = n
		return nil
	}},
	{"PINPIPE_EXPORT_TIMEOUT", "5m", "longest run of one full export's query, and again of sending its file", durSetter(func(c *Config, d time.Duration) { c.ExportTimeout = d })},
	{"PINPIPE_MIRROR_MAX_BYTES", "10737418240", "disk the local lake mirror may use", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive number of bytes, got %q", v)
		}
		c.MirrorMaxBytes = n
		return nil
	}},
	{"PINPIPE_MIRROR_STALENESS", "2s", "how old the lake mirror's listing may be when a query runs", durSetter(func(c *Config, d time.Duration) { c.MirrorStaleness = d })},
	{"PINPIPE_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("want debug, info, warn or error, got %q", v)
	}},
	{"PINPIPE_LOG_FORMAT", "text", "log line format: text (key=value) or json (one object per line)", func(c *Config, v string) error {
		switch v {
		case LogText, LogJSON:
			c.LogFormat = v
			return nil
		}
		return fmt.Errorf("want text or json, got %q", v)
	}},
	{"PINPIPE_ACCESS_LOG", "on", "one log line per HTTP request (method, route, status, bytes, duration, remote address, X-Request-Id): on or off", func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "1":
			c.AccessLog = true
		case "off", "false", "0":
			c.AccessLog = false
		default:
			return fmt.Errorf("want on or off, got %q", v)
		}
		return nil
	}},
	{"PINPIPE_MAX_FIELD_BYTES", "65536", "most bytes one field of a POST /pins record may hold; a longer one makes the request 400", intSetter(func(c *Config, n int) { c.MaxFieldBytes = n })},
	{"PINPIPE_TOPIC_PARTITIONS", "3", "partitions of the topic when pinpipe creates it (an existing topic is kept)", intSetter(func(c *Config, n int) { c.TopicPartitions = n })},
	{"PINPIPE_TOPIC_REPLICATION", "3", "replicas of the topic when pinpipe creates it, capped at the broker count (an existing topic with fewer gets a warning)", intSetter(func(c *Config, n int) { c.TopicReplication = n })},
	{"PINPIPE_ROLES", "all", "what this instance runs: all, or a comma-separated list of api (POST /pins and the reads), landing, stream, batch (the schedule and on-demand runs), query (/query)", func(c *Config, v string) error {
		r, err := ParseRoles(v)
		c.Roles = r
		return err
	}},
	{"PINPIPE_SHUTDOWN_DRAIN", "5s", "on SIGTERM, how long /readyz answers 503 while requests are still served, before the server stops accepting (0s: none)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 0s, 5s or 30s, got %q", v)
		}
		c.ShutdownDrain = d
		return nil
	}},
}

// Load reads the configuration: each setting's default, overridden by its
// environment variable (looked up with getenv), overridden by its flag in
// args. It registers the flags on fs, parses args and returns the
// remaining arguments. Returns an error naming the setting when a value is
// invalid.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (*Config, []string, error) {
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		values[s.env] = fs.String(Flag(s.env), "", fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c, err := resolve(getenv, func(env string) (string, bool) { return *values[env], set[Flag(env)] })
	if err != nil {
		return nil, nil, err
	}
	return c, fs.Args(), nil
}

// Bind registers a --flag per setting on fs, a pflag set such as a cobra
// command's, with the setting's default and its environment variable in
// the help; hidden hides them from the help (a command that reads the
// settings but points to `pinpipe serve --help` for them). Call the
// returned function once fs is parsed: it reads the configuration as Load
// does (flag over environment over default) and returns an error naming
// the setting when a value is invalid.
func Bind(fs *pflag.FlagSet, hidden bool) func(getenv func(string) string) (*Config, error) {
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		values[s.env] = fs.String(Flag(s.env), s.def, fmt.Sprintf("%s (env %s)", s.usage, s.env))
		if hidden {
			_ = fs.MarkHidden(Flag(s.env))
		}
	}
	return func(getenv func(string) string) (*Config, error) {
		return resolve(getenv, func(env string) (string, bool) { return *values[env], fs.Changed(Flag(env)) })
	}
}

// resolve builds the Config from each setting's default, its environment
// variable and its flag (flag returns the value and whether it was given).
func resolve(getenv func(string) string, flag func(env string) (string, bool)) (*Config, error) {
	c := &Config{}
	for _, s := range settings {
		v, from := s.def, "default"
		if e := getenv(s.env); e != "" {
			v, from = e, s.env
		}
		if fv, ok := flag(s.env); ok {
			v, from = fv, "--"+Flag(s.env)
		}
		if err := s.set(c, strings.TrimSpace(v)); err != nil {
			return nil, fmt.Errorf("config: %s (from %s): %w", s.env, from, err)
		}
	}
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if keep := time.Duration(c.LateLookback+1) * 24 * time.Hour; c.RawRetention > 0 && c.RawRetention < keep {
		return nil, fmt.Errorf("config: PINPIPE_RAW_RETENTION (%s) must be at least PINPIPE_LATE_LOOKBACK + 1 days (%dd): the late-data check may still re-run those days, and a re-run needs the day's raw zone", c.RawRetention, c.LateLookback+1)
	}
	if c.S3Endpoint != "" && (c.AWSAccessKeyID == "" || c.AWSSecretKey == "") {
		return nil, errors.New("config: PINPIPE_S3_ENDPOINT is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not; set both to the S3 server's credentials")
	}
	return c, nil
}

// Usage writes the table of settings: environment variable, flag, default.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "\nSettings (environment variable, or the flag of the same name):")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(w, "  %-28s --%-22s %-16s %s\n", s.env, Flag(s.env), def, s.usage)
	}
}

// Embedded reports which dependencies run as embedded defaults.
func (c *Config) Embedded() (kafka, s3, cassandra, postgres bool) {
	return len(c.KafkaBrokers) == 0, c.S3Endpoint == "", len(c.CassandraHosts) == 0, c.PostgresURL == ""
}

func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// bytesSetter returns a setter for a positive number of bytes.
// ParseSize reads a number of bytes: a whole number, optionally followed
// by a unit (KiB, MiB, GiB, TiB in powers of 1024; KB, MB, GB, TB in powers
// of 1000; B). Returns an error saying what it wants when v is not one, is
// not positive or overflows.
func ParseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("want a positive size such as 1GiB, 512MiB or 1073741824, got %q", v)
	}
	return n * mult, nil
}

func bytesSetter(set func(*Config, int64)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive number of bytes, got %q", v)
		}
		set(c, n)
		return nil
	}
}

func intSetter(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive whole number, got %q", v)
		}
		f(c, n)
		return nil
	}
}

func durSetter(f func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 500ms, 60s or 5m, got %q", v)
		}
		f(c, d)
		return nil
	}
}

// dayDuration reads a duration as time.ParseDuration does, or a whole
// number of days written as "90d"; "0" is zero.
func dayDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*366 {
			return 0, fmt.Errorf("bad number of days %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// validHosts checks each entry is "*", a host name or IP, or one of those
// with a port.
func validHosts(hosts []string) error {
	for _, h := range hosts {
		if h == "*" {
			continue
		}
		name := h
		if host, port, err := net.SplitHostPort(h); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%q: the port must be a number from 1 to 65535", h)
			}
			name = host
		}
		name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
		if name == "" || strings.ContainsAny(name, "/:@ *") && net.ParseIP(name) == nil {
			return fmt.Errorf("%q: want a host name such as pinpipe.example.com or pinpipe.example.com:8000, without a scheme or path", h)
		}
	}
	return nil
}

// validOrigins checks each entry is an http or https origin,
// scheme://host[:port], as browsers send it in the Origin header.
func validOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%q: want an origin such as https://dash.example.com or http://localhost:3000 (scheme, host and port only, no trailing slash)", o)
		}
	}
	return nil
}

func validCron(v string) error {
	if _, err := cron.ParseStandard(v); err != nil {
		return fmt.Errorf("want a 5-field cron expression such as \"0 8 * * *\": %v", err)
	}
	return nil
}
