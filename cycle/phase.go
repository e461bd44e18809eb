package cycle

import "github.com/stashgen/stashgen/stash"

// Phase is what a run is doing, as the heartbeat row and `status` show it.
// The README's database contract lists these values.
type Phase string

// The phases, in the order a run goes through them.
const (
	PhaseStart     Phase = "start"      // the audit row exists, the locks are being taken
	PhaseReconcile Phase = "reconcile"  // dealing with what a dead run left
	PhaseBusyCheck Phase = "busy-check" // deciding whether to stand aside
	PhaseSync      Phase = "sync"       // reading scenes and markers from Stash
	PhaseCheck     Phase = "check"      // probing which scenes have their files
	PhaseGenerate  Phase = "generate"   // launching a batch
	PhaseMonitor   Phase = "monitor"    // following a Stash job
	PhaseVerify    Phase = "verify"     // checking a batch's files after its job
	PhaseDone      Phase = "done"       // the run has ended
)

// IsWork reports whether a run in this phase is doing its work rather than
// deciding whether to: the first such phase sends the /start ping, so a run
// that stands aside at its busy check pings nothing (unless asked to).
func (p Phase) IsWork() bool {
	switch p {
	case PhaseSync, PhaseCheck, PhaseGenerate, PhaseMonitor, PhaseVerify:
		return true
	}
	return false
}

// Observer sees a run from outside: main's session turns what it sees into
// the healthchecks pings, the metrics file and the terminal's progress
// line. Started, Phase and Progress must not block; Finished is the run's
// last act and may take its time (the final ping retries).
type Observer interface {
	// Started is called once the audit row exists, with its id.
	Started(runID int64)
	// Phase is called as the run enters each phase.
	Phase(p Phase)
	// Progress is called with each state of the Stash job the run follows.
	Progress(job stash.Job)
	// Finished is called with the result once the audit row is written,
	// while the database is still open.
	Finished(res Result)
}

// nobody is the Observer of a run that has none.
type nobody struct{}

func (nobody) Started(int64)      {}
func (nobody) Phase(Phase)        {}
func (nobody) Progress(stash.Job) {}
func (nobody) Finished(Result)    {}
