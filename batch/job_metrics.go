package batch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// JobMetrics are the daily job's Prometheus metrics.
type JobMetrics struct {
	RunSeconds   prometheus.Histogram   // pinpipe_batch_run_seconds
	Rows         *prometheus.CounterVec // pinpipe_batch_rows_total{kind="in|out|rejected"}
	LastSuccess  prometheus.Gauge       // pinpipe_batch_last_success_timestamp_seconds
	Runs         *prometheus.CounterVec // pinpipe_batch_runs_total{status="succeeded|failed"}
	ServingWrite prometheus.Histogram   // pinpipe_batch_cassandra_write_seconds

	// The last finished run, for "how did the last run go" panels: a
	// histogram's sum cannot say, and a rate of the row counters counts a
	// re-run of a day twice. No series until a run finished in this process,
	// so an instance that never ran one does not report a zero run.
	LastRunSeconds    *prometheus.GaugeVec   // pinpipe_batch_last_run_seconds
	LastRunRows       *prometheus.GaugeVec   // pinpipe_batch_last_run_rows{kind="in|out|rejected"}
	LastRunFinishedAt *prometheus.GaugeVec   // pinpipe_batch_last_run_timestamp_seconds
	StaleDays         prometheus.Gauge       // pinpipe_batch_stale_days
	IncompleteDays    prometheus.Gauge       // pinpipe_batch_incomplete_days
	Waiting           prometheus.Gauge       // pinpipe_batch_waiting_days
	Started           *prometheus.CounterVec // pinpipe_batch_runs_started_total{trigger}
	Expired           *prometheus.CounterVec // pinpipe_batch_retention_deleted_objects_total{zone="raw|rejected"}
	ExpiredDays       prometheus.Counter     // pinpipe_batch_retention_deleted_days_total
}

// NewJobMetrics registers the job's metrics with reg.
func NewJobMetrics(reg prometheus.Registerer) *JobMetrics {
	f := promauto.With(reg)
	m := &JobMetrics{
		RunSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "pinpipe_batch_run_seconds",
			Help:    "Duration of finished daily batch runs, succeeded or failed.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1s .. ~2h
		}),
		Rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pinpipe_batch_rows_total",
			Help: "Rows of finished batch runs: in (raw records read), out (curated pins), rejected (failed cleaning).",
		}, []string{"kind"}),
		LastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "pinpipe_batch_last_success_timestamp_seconds",
			Help: "Unix time the last successful batch run finished.",
		}),
		Runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pinpipe_batch_runs_total",
			Help: "Finished batch runs by status.",
		}, []string{"status"}),
		ServingWrite: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "pinpipe_batch_cassandra_write_seconds",
			Help:    "Latency of one write to the serving tables (Cassandra, or its embedded stand-in): a statement, a batch or a chunk.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. ~16s
		}),
		LastRunSeconds: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pinpipe_batch_last_run_seconds",
			Help: "Duration of the last batch run this instance finished, succeeded or failed (no series before its first run).",
		}, nil),
		LastRunRows: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pinpipe_batch_last_run_rows",
			Help: "Rows of the last batch run this instance finished: in (raw records read), out (curated pins), rejected (failed cleaning); a re-run replaces, never adds.",
		}, []string{"kind"}),
		LastRunFinishedAt: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pinpipe_batch_last_run_timestamp_seconds",
			Help: "Unix time the last batch run this instance finished ended, succeeded or failed (no series before its first run).",
		}, nil),
		StaleDays: f.NewGauge(prometheus.GaugeOpts{
			Name: "pinpipe_batch_stale_days",
			Help: "Curated days within PINPIPE_LATE_LOOKBACK whose raw zone gained records after their newest committed run, at the last late-data check.",
		}),
		IncompleteDays: f.NewGauge(prometheus.GaugeOpts{
			Name: "pinpipe_batch_incomplete_days",
			Help: "Days within PINPIPE_LATE_LOOKBACK that are over but whose raw zone is not complete yet, at the last late-data check.",
		}),
		Waiting: f.NewGauge(prometheus.GaugeOpts{
			Name: "pinpipe_batch_waiting_days",
			Help: "Scheduled runs of this instance waiting for their day to be complete (at most PINPIPE_BATCH_WAIT).",
		}),
		Started: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pinpipe_batch_runs_started_total",
			Help: "Batch runs queued, by trigger (schedule, api, cli, late-data, completed).",
		}, []string{"trigger"}),
		Expired: f.NewCounterVec(prometheus.CounterOpts{
			Name: "pinpipe_batch_retention_deleted_objects_total",
			Help: "Objects PINPIPE_RAW_RETENTION removed from the raw and rejected zones.",
		}, []string{"zone"}),
		ExpiredDays: f.NewCounter(prometheus.CounterOpts{
			Name: "pinpipe_batch_retention_deleted_days_total",
			Help: "Curated days whose raw and rejected objects PINPIPE_RAW_RETENTION removed.",
		}),
	}
	for _, z := range []string{"raw", "rejected"} {
		m.Expired.WithLabelValues(z)
	}
	for _, tr := range []string{TriggerSchedule, TriggerAPI, TriggerCLI, TriggerLateData, TriggerCompleted} {
		m.Started.WithLabelValues(tr)
	}
	for _, k := range []string{"in", "out", "rejected"} {
		m.Rows.WithLabelValues(k)
	}
	for _, s := range []string{StatusSucceeded, StatusFailed} {
		m.Runs.WithLabelValues(s)
	}
	return m
}

// lastRun records run, just finished, as the last run.
func (m *JobMetrics) lastRun(run Run) {
	end := time.Now()
	if run.FinishedAt != nil {
		end = *run.FinishedAt
	}
	if run.StartedAt != nil {
		m.LastRunSeconds.WithLabelValues().Set(end.Sub(*run.StartedAt).Seconds())
	}
	m.LastRunRows.WithLabelValues("in").Set(float64(run.RowsIn))
	m.LastRunRows.WithLabelValues("out").Set(float64(run.RowsOut))
	m.LastRunRows.WithLabelValues("rejected").Set(float64(run.RowsRejected))
	m.LastRunFinishedAt.WithLabelValues().Set(float64(end.UnixNano()) / 1e9)
}
