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
	Warning  Level = 1 // the last run failed or stood aside for low disk space, or no heartbeat for 2 intervals
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
// aside: exit 0, and exit 75 for another run, a busy Stash, a scan first,
// or the maintenance window (the schedule working as configured). The
// free-space floor's exit 75 is not here: a full disk does not empty
// itself, so those runs neither went well nor failed (see lowSpace).
var wentWell = []db.Outcome{
	db.OutcomeGenerated, db.OutcomeNothingToDo, db.OutcomeChecked, db.OutcomeAdopted,
	db.OutcomeSkippedLocked, db.OutcomeSkippedBusy, db.OutcomeCancelledForScan,
	db.OutcomeSkippedWindow, db.OutcomeCancelledForWindow,
}

// Failed reports whether an outcome is a failed run.
func Failed(o db.Outcome) bool {
	switch o {
	case db.OutcomeFailed, db.OutcomeError, db.OutcomeInterrupted, db.OutcomeAbandoned:
		return true
	}
	return false
}

// lowSpace reports whether a run stood aside, or stopped, because the
// free space was below min_free_space. It is not a failure (it does not
// feed the failure streak), but it will not clear until someone frees
// space, so it warns until a run gets past the floor.
func lowSpace(o db.Outcome) bool {
	return o == db.OutcomeSkippedLowSpace || o == db.OutcomeCancelledForLowSpace
}

// blindToDisk are the outcomes of runs that never got to measure the free
// space: outside the window (the window is checked first), another run
// holding the lock, and `stashgen check`, which generates nothing. They
// neither raise nor clear the low-space warning, so a disk that filled up
// at night still warns through the day's skipped_window runs.
var blindToDisk = []db.Outcome{db.OutcomeSkippedWindow, db.OutcomeSkippedLocked, db.OutcomeChecked}

// sawDisk are the outcomes of the runs the low-space rule looks at: every
// finished outcome but blindToDisk.
func sawDisk() []db.Outcome {
	var out []db.Outcome
	for _, o := range finishedOutcomes {
		if !slices.Contains(blindToDisk, o) {
			out = append(out, o)
		}
	}
	return out
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
	// sawDisk is the newest finished run that may have measured the free
	// space (outcome not in blindToDisk); nil when there is none.
	sawDisk *RunInfo
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
	if r := f.sawDisk; r != nil && lowSpace(db.Outcome(r.Outcome)) {
		did := "stood aside"
		if r.Outcome == string(db.OutcomeCancelledForLowSpace) {
			did = "stopped"
		}
		raise(Warning, "%s %s for low disk space; it will not fix itself: free space on the disk Stash "+
			"writes generated files to, or lower min_free_space%s", r.lastToSeeDisk(f.finished), did, parenthesised(r.Error))
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

// lastToSeeDisk names r as the low-space reason does: "the last run (#12)"
// when no run finished after it, else "the last run to check the disk
// space (#12)", since the runs after it stood aside without looking.
func (r *RunInfo) lastToSeeDisk(finished []RunInfo) string {
	if len(finished) == 0 || finished[0].ID == r.ID {
		return fmt.Sprintf("the last run (#%d)", r.ID)
	}
	return fmt.Sprintf("the last run to check the disk space (#%d)", r.ID)
}

// parenthesised is " (s)", or "" for an empty s.
func parenthesised(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
