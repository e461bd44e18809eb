// Package report is the operator's view of stashgen: `stashgen status` and
// its health verdict, `stashgen history`, and the Prometheus textfile. It
// reads the database (and, for status, Stash's job queue) through small
// interfaces declared here, and renders for a terminal or as JSON. It
// decides nothing about runs and writes nothing but the metrics file.
package report

import (
	"fmt"
	"slices"
	"time"

	"github.com/stashgen/stashgen/db"
)

// Level is a health verdict. Its value is the exit code of `stashgen
// status`, as Nagios-style checks expect: 0 OK, 1 WARNING, 2 CRITICAL,
// 3 UNKNOWN.
type Level int

const (
	Healthy  Level = 0 // the last run went well and runs keep coming
	Warning  Level = 1 // the last run failed, or no heartbeat for 2 intervals
	Critical Level = 2 // nothing went well for 6 intervals, or 3 failures in a row
	Unknown  Level = 3 // the database cannot be read
)

func (l Level) String() string {
	switch l {
	case Healthy:
		return "healthy"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return "unknown"
}

// MarshalText makes the JSON form the word, not the number.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads the word back.
func (l *Level) UnmarshalText(b []byte) error {
	for _, c := range []Level{Healthy, Warning, Critical, Unknown} {
		if c.String() == string(b) {
			*l = c
			return nil
		}
	}
	return fmt.Errorf("health level %q: want healthy, warning, critical or unknown", b)
}

// Health is the verdict with the reasons for it, worst first.
type Health struct {
	Level    Level    `json:"level"`
	ExitCode int      `json:"exit_code"`
	Reasons  []string `json:"reasons"`
}

// The thresholds, in multiples of job_interval_seconds.
const (
	staleBeatIntervals = 2 // heartbeat older than this: warning
	noGoodIntervals    = 6 // no run that ended well within this: critical
	failStreak         = 3 // this many failed runs in a row: critical
)

// wentWell are the outcomes of a run that did its job or rightly stood
// aside: exit 0, and exit 75 (another run, a busy Stash, a scan first).
var wentWell = []db.Outcome{
	db.OutcomeGenerated, db.OutcomeNothingToDo, db.OutcomeChecked, db.OutcomeAdopted,
	db.OutcomeSkippedLocked, db.OutcomeSkippedBusy, db.OutcomeCancelledForScan,
}

// WentWell lists the outcomes that count as a run that went well, for the
// health verdict and stashgen_last_success_timestamp_seconds.
func WentWell() []db.Outcome { return append([]db.Outcome(nil), wentWell...) }

// Failed reports whether an outcome is a failed run.
func Failed(o db.Outcome) bool {
	switch o {
	case db.OutcomeFailed, db.OutcomeError, db.OutcomeInterrupted, db.OutcomeAbandoned:
		return true
	}
	return false
}

// facts is what the verdict is decided from.
type facts struct {
	now      time.Time
	interval time.Duration
	finished []RunInfo  // newest first, runs still marked running left out
	oldest   *time.Time // when the oldest run read started; nil when there is none
	lastGood *RunInfo
	beat     *HeartbeatInfo
	dead     *RunInfo // a run marked running whose process is gone
}

// assess applies the rules. Every rule that fires adds a reason; the level
// is the worst of them.
func assess(f facts) Health {
	type reason struct {
		level Level
		msg   string
	}
	var reasons []reason
	raise := func(l Level, format string, args ...any) {
		reasons = append(reasons, reason{l, fmt.Sprintf(format, args...)})
	}
	window := noGoodIntervals * f.interval
	switch {
	case f.oldest == nil:
		raise(Critical, "no run recorded yet: is the timer or cron job installed?")
	case f.lastGood == nil && f.now.Sub(*f.oldest) > window:
		// A fresh install gets 6 intervals before its first good run.
		raise(Critical, "no run went well in the last %s (%d × job_interval_seconds), nor ever", human(window), noGoodIntervals)
	case f.lastGood != nil && f.now.Sub(f.lastGood.ended()) > window:
		raise(Critical, "no run went well in the last %s (%d × job_interval_seconds); the last good one was %s ago",
			human(window), noGoodIntervals, human(f.now.Sub(f.lastGood.ended())))
	}
	if len(f.finished) >= failStreak {
		streak := true
		for _, r := range f.finished[:failStreak] {
			streak = streak && Failed(db.Outcome(r.Outcome))
		}
		if streak {
			raise(Critical, "the last %d runs failed", failStreak)
		}
	}
	if len(f.finished) > 0 && Failed(db.Outcome(f.finished[0].Outcome)) {
		last := f.finished[0]
		raise(Warning, "the last run (#%d) failed: %s", last.ID, last.outcomeText())
	}
	switch {
	case f.beat == nil && len(f.finished) > 0:
		raise(Warning, "no heartbeat recorded: no run has held the locks yet")
	case f.beat != nil && f.now.Sub(f.beat.BeatAt) > staleBeatIntervals*f.interval:
		raise(Warning, "the last heartbeat is %s old (more than %d × job_interval_seconds): are runs starting?",
			human(f.now.Sub(f.beat.BeatAt)), staleBeatIntervals)
	}
	if f.dead != nil {
		raise(Warning, "run #%d is marked running but its process (pid %d on %s) is gone; the next run marks it abandoned",
			f.dead.ID, f.dead.PID, f.dead.Host)
	}
	slices.SortStableFunc(reasons, func(a, b reason) int { return int(b.level - a.level) })
	h := Health{Reasons: []string{}}
	for _, r := range reasons {
		h.Level = max(h.Level, r.level)
		h.Reasons = append(h.Reasons, r.msg)
	}
	h.ExitCode = int(h.Level)
	return h
}
