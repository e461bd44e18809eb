package report

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
)

// MetricsStore is what the metrics read from the database.
type MetricsStore interface {
	LastRunWith(ctx context.Context, outcomes []db.Outcome) (db.Run, error)
	CountAll(ctx context.Context) (db.Counts, error)
	RunCounts(ctx context.Context) (map[db.Outcome]int64, error)
}

// Metrics is what one run writes to the Prometheus textfile.
type Metrics struct {
	End      time.Time     // when the run ended
	Duration time.Duration // how long it took
	ExitCode int
	// ScenesGenerated is the scenes the run's jobs (launched or adopted)
	// left verified complete.
	ScenesGenerated int
	// FreeSpace is free_space_path measured when the file is written
	// (MeasureFence); nil when no floor is configured or it could not be
	// measured, and stashgen_free_space_bytes is then left out.
	FreeSpace *fence.Space
	// DB holds what comes from the database; nil when it could not be
	// read (the metrics that need it are then left out).
	DB *DBMetrics
}

// MeasureFence measures the free space of f.Path for the metrics file:
// nil when f has no floor, or when measuring fails (the run's own fence
// check reports that failure; the metrics only leave the series out).
func MeasureFence(f fence.Fence) *fence.Space {
	if f.Floor.IsZero() {
		return nil
	}
	s, err := f.Space()
	if err != nil {
		return nil
	}
	return &s
}

// DBMetrics are the metrics read from the database.
type DBMetrics struct {
	LastSuccess *time.Time // nil when no run ever went well
	Scenes      db.Counts
	Runs        map[db.Outcome]int64
}

// GatherMetrics reads the database part of the metrics.
func GatherMetrics(ctx context.Context, store MetricsStore) (*DBMetrics, error) {
	m := &DBMetrics{}
	good, err := store.LastRunWith(ctx, wentWell)
	switch {
	case err == nil:
		t := good.StartedAt
		if good.FinishedAt != nil {
			t = *good.FinishedAt
		}
		m.LastSuccess = &t
	case !errors.Is(err, db.ErrNotFound):
		return nil, err
	}
	if m.Scenes, err = store.CountAll(ctx); err != nil {
		return nil, err
	}
	if m.Runs, err = store.RunCounts(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// finishedOutcomes are every outcome a finished run can have: each gets a
// stashgen_runs_total series, zero or not, so rate() sees the first one.
var finishedOutcomes = []db.Outcome{
	db.OutcomeGenerated, db.OutcomeNothingToDo, db.OutcomeChecked, db.OutcomeAdopted,
	db.OutcomeFailed, db.OutcomeError, db.OutcomeSkippedLocked, db.OutcomeSkippedBusy,
	db.OutcomeCancelledForScan, db.OutcomeInterrupted, db.OutcomeAbandoned,
	db.OutcomeSkippedWindow, db.OutcomeCancelledForWindow, db.OutcomeSkippedLowSpace, db.OutcomeCancelledForLowSpace,
}

// Text renders the metrics in Prometheus' text exposition format, as
// node_exporter's textfile collector reads it.
func (m Metrics) Text() string {
	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name string, labels [][2]string, v float64) {
		b.WriteString(name)
		if len(labels) > 0 {
			b.WriteByte('{')
			for i, l := range labels {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=\"%s\"", l[0], escapeLabel(l[1]))
			}
			b.WriteByte('}')
		}
		b.WriteString(" " + strconv.FormatFloat(v, 'f', -1, 64) + "\n")
	}
	unix := func(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

	family("stashgen_last_run_timestamp_seconds", "gauge", "Unix time the last stashgen run ended.")
	sample("stashgen_last_run_timestamp_seconds", nil, unix(m.End))
	family("stashgen_last_run_duration_seconds", "gauge", "How long the last stashgen run took.")
	sample("stashgen_last_run_duration_seconds", nil, m.Duration.Round(time.Millisecond).Seconds())
	family("stashgen_last_run_exit_code", "gauge", "Exit code of the last stashgen run (0 done, 75 stood aside; see the README).")
	sample("stashgen_last_run_exit_code", nil, float64(m.ExitCode))
	family("stashgen_last_run_scenes_generated", "gauge", "Scenes the last run's generation jobs (launched or adopted) left verified complete.")
	sample("stashgen_last_run_scenes_generated", nil, float64(m.ScenesGenerated))
	if s := m.FreeSpace; s != nil {
		family("stashgen_free_space_bytes", "gauge",
			"Bytes an unprivileged user may still write on the filesystem of free_space_path, when the metrics were written.")
		sample("stashgen_free_space_bytes", [][2]string{{"path", s.Path}}, float64(s.Free))
	}
	if m.DB == nil {
		return b.String()
	}
	family("stashgen_last_success_timestamp_seconds", "gauge",
		"Unix time the last run that went well (exit 0, or 75: stood aside, but not for low disk space) ended; 0 if none ever did.")
	var last float64
	if m.DB.LastSuccess != nil {
		last = unix(*m.DB.LastSuccess)
	}
	sample("stashgen_last_success_timestamp_seconds", nil, last)
	family("stashgen_scenes", "gauge", "Scenes in stashgen's database by state.")
	c := m.DB.Scenes
	for _, s := range []struct {
		state string
		n     int
	}{{"pending", c.Pending}, {"backoff", c.Backoff}, {"quarantined", c.Quarantined}, {"generated", c.Generated}} {
		sample("stashgen_scenes", [][2]string{{"state", s.state}}, float64(s.n))
	}
	family("stashgen_runs_total", "counter", "Finished stashgen runs by outcome, from the runs table.")
	outcomes := slices.Clone(finishedOutcomes)
	for _, o := range slices.Sorted(maps.Keys(m.DB.Runs)) {
		if !slices.Contains(outcomes, o) {
			outcomes = append(outcomes, o)
		}
	}
	slices.Sort(outcomes)
	for _, o := range outcomes {
		sample("stashgen_runs_total", [][2]string{{"outcome", string(o)}}, float64(m.DB.Runs[o]))
	}
	return b.String()
}

// escapeLabel escapes a label value as the exposition format wants:
// backslash, double quote and newline.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// WriteMetricsFile replaces path with the metrics atomically: a temporary
// file in the same directory (its name does not end in .prom, so the
// collector never reads it half-written), then a rename.
func WriteMetricsFile(path string, m Metrics) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("write metrics file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("write metrics file %s: %w", path, err)
		}
	}()
	if _, err = f.WriteString(m.Text()); err != nil {
		return err
	}
	// node_exporter usually runs as another user.
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
