package cycle

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// DryRunInfo is what main knows about the lock file without creating it.
type DryRunInfo struct {
	LockFile  string
	LockState string
	LockHeld  bool // another run holds it: a real run would stand aside
}

// Plan is what a dry run found: what a real run would do, and why. It
// writes nothing anywhere to find it: no Stash mutation, no database write,
// no migration, no lock file. cycle/report renders it as text or JSON; the
// JSON field names are a contract for scripts.
type Plan struct {
	Command       string `json:"command"` // once or check
	Full          bool   `json:"full"`    // check --full
	LockFile      string `json:"lock_file,omitempty"`
	LockState     string `json:"lock_state,omitempty"`
	Database      string `json:"database"`
	SchemaVersion int    `json:"schema_version"` // 0: absent, a real run creates it
	Stash         string `json:"stash"`
	// Stage is how far the plan got before an error, if one came: a
	// renderer shows only what is known.
	Stage PlanStage `json:"-"`

	// StandAside is why a real run would stand aside now, before its busy
	// check (the lock held, outside the window, below the free-space
	// floor); "" when it would not.
	StandAside string    `json:"stand_aside,omitempty"`
	Busy       []PlanJob `json:"busy"` // active jobs that make a run stand aside

	ToSync int `json:"to_sync"` // scenes new or changed in Stash since the last sync
	// Recorded are the not-generated scenes in the database before the
	// plan's probes.
	Recorded        PlanCounts `json:"recorded"`
	Checked         int        `json:"checked"`          // scenes the plan probed
	Complete        int        `json:"complete"`         // of those, every file present
	Incomplete      int        `json:"incomplete"`       // of those, something missing
	Gone            int        `json:"gone"`             // of those, deleted in Stash
	BecomeGenerated int        `json:"become_generated"` // recorded not generated (or new), found complete
	NewlyIncomplete int        `json:"newly_incomplete"` // recorded generated (or new), found incomplete

	Reprobe PlanReprobe `json:"reprobe"`
	Cost    PlanCost    `json:"cost"`

	Batch     []int64              `json:"batch"` // the first batch a run would send
	BatchSize int                  `json:"batch_size"`
	Input     *stash.GenerateInput `json:"input"` // what metadataGenerate would get

	Outcome  db.Outcome `json:"outcome"`
	ExitCode int        `json:"exit_code"`
}

// PlanStage is how far a dry run got.
type PlanStage int

const (
	PlanStarted PlanStage = iota // the lock, the database and Stash are named
	PlanBusy                     // the busy check is done
	PlanDone                     // the plan is complete
)

// PlanJob is one active job.
type PlanJob struct {
	Source      string `json:"source"` // stash or ledger
	ID          string `json:"id"`
	Description string `json:"description"` // Stash's description, or the ledger row's type
	Status      string `json:"status"`
	CreatedBy   string `json:"created_by,omitempty"`
	Error       string `json:"error,omitempty"` // the ledger could not be read
}

// PlanReprobe are the generated scenes a run would probe again, and why.
type PlanReprobe struct {
	// ForToggles were verified before a resource kind now wanted (Added)
	// was: turned on in the config or in Stash's settings.
	ForToggles int      `json:"for_toggles"`
	Added      []string `json:"added"`
	// ForAge are this run's share of the scenes whose check is older than
	// reverify_after.
	ForAge               int `json:"for_age"`
	ReverifyAfterSeconds int `json:"reverify_after_seconds"`
}

// PlanCost is what the plan's probes cost Stash: the same file requests a
// run's check would send, each a line in Stash's log when it logs HTTP
// access (its default), a 404 at WARN level.
type PlanCost struct {
	FileRequests int64 `json:"file_requests"`
	NotFound     int64 `json:"not_found"` // of those, files missing (404)
}

// PlanCounts are not-generated scenes by state.
type PlanCounts struct {
	Pending     int `json:"pending"`
	Backoff     int `json:"backoff"`
	Quarantined int `json:"quarantined"`
}

// DryRun plans what `once` would do. It still reads (the queue, the
// ledger, and one-byte probes of the files), because the plan is only
// honest if it is checked. Its outcome and exit code are the real run's up
// to the generate step: skipped_locked, skipped_window or
// skipped_low_space (75) when the lock or the fence would stop a real run,
// skipped_busy (75) when busy, else 0.
func (r *Runner) DryRun(ctx context.Context, info DryRunInfo) (Plan, error) {
	p := r.newPass(&Run{Log: r.Log})
	plan := Plan{Command: "once", LockFile: info.LockFile, LockState: info.LockState, BatchSize: p.set.BatchSize}
	if err := p.planHeader(ctx, &plan); err != nil {
		return plan, err
	}
	if stand, err := p.planStandAside(info); err != nil || stand != nil {
		if stand != nil {
			plan.StandAside, plan.Outcome, plan.ExitCode, plan.Stage = stand.err.Error(), stand.outcome, stand.code, PlanDone
		}
		return plan, err
	}
	a, err := p.activity(ctx)
	if err != nil {
		return plan, err
	}
	plan.Busy = planJobs(a)
	plan.Stage = PlanBusy
	if a.busy() {
		plan.Outcome, plan.ExitCode, plan.Stage = db.OutcomeSkippedBusy, ExitTempFail, PlanDone
		return plan, nil
	}
	if err := p.plan(ctx, &plan, false, p.set.BatchSize); err != nil {
		return plan, err
	}
	if plan.SchemaVersion > 0 {
		// Scenes an earlier check found incomplete wait for their batch
		// without being probed again (nor by this plan): the real batch
		// is the oldest of them and of what the plan found incomplete.
		waiting, err := p.Store.WaitingScenes(ctx, p.set.BatchSize)
		if err != nil {
			return plan, err
		}
		plan.Batch = oldestFirst(p.set.BatchSize, waiting, plan.Batch)
	}
	if len(plan.Batch) > 0 {
		keep, _, _, err := p.knownOnly(ctx, plan.Batch)
		if err != nil {
			return plan, err
		}
		plan.Batch = keep
	}
	plan.Outcome, plan.ExitCode, plan.Stage = db.OutcomeNothingToDo, ExitOK, PlanDone
	if len(plan.Batch) == 0 {
		return plan, nil
	}
	t, err := p.wanted(ctx)
	if err != nil {
		return plan, err
	}
	plan.Input = &stash.GenerateInput{Toggles: t, SceneIDs: idStrings(plan.Batch)}
	plan.Outcome = db.OutcomeGenerated
	return plan, nil
}

// planStandAside is what would stop a real run before its busy check: the
// lock another run holds, then the fence (in the run's order), as the
// stop the run would end with. A fence that cannot be measured is an
// error, as in the run.
func (p *pass) planStandAside(info DryRunInfo) (*stop, error) {
	if info.LockHeld {
		return &stop{outcome: db.OutcomeSkippedLocked, code: ExitTempFail,
			err: errors.New("another stashgen run holds the lock file " + info.LockFile)}, nil
	}
	return p.fenceVerdict(fenceAtStart)
}

// oldestFirst merges sorted id lists into the first limit distinct ids.
func oldestFirst(limit int, lists ...[]int64) []int64 {
	var all []int64
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	return all[:min(limit, len(all))]
}

// CheckDryRun plans what `check` would change, writing nothing.
func (r *Runner) CheckDryRun(ctx context.Context, full bool) (Plan, error) {
	p := r.newPass(&Run{Log: r.Log})
	plan := Plan{Command: "check", Full: full}
	if err := p.planHeader(ctx, &plan); err != nil {
		return plan, err
	}
	plan.Stage = PlanBusy
	if err := p.plan(ctx, &plan, full, -1); err != nil {
		return plan, err
	}
	plan.Batch = nil // check sends nothing: there is no batch
	plan.Outcome, plan.ExitCode, plan.Stage = db.OutcomeChecked, ExitOK, PlanDone
	return plan, nil
}

// planHeader names where the plan's facts come from. Without a schema
// there is nothing to read: the plan starts from empty tables.
func (p *pass) planHeader(ctx context.Context, plan *Plan) error {
	plan.Database, plan.Stash = p.Store.Host(), p.Stash.URL()
	v, err := p.Store.SchemaVersion(ctx)
	plan.SchemaVersion = v
	if v == 0 {
		p.ledgerFresh = true // no ledger yet: nothing in it
		p.cursors, p.missed = map[string]string{}, map[stash.Resource]int{}
	}
	return err
}

func planJobs(a activity) []PlanJob {
	out := []PlanJob{}
	for _, j := range a.stash {
		out = append(out, PlanJob{Source: "stash", ID: j.ID, Description: j.Description, Status: string(j.Status)})
	}
	if a.ledgerErr != nil {
		out = append(out, PlanJob{Source: "ledger", Error: a.ledgerErr.Error()})
	}
	for _, j := range a.ledger {
		out = append(out, PlanJob{Source: "ledger", ID: itoa(j.ID), Description: j.Type, Status: string(j.Status), CreatedBy: j.CreatedBy})
	}
	return out
}

// plan probes, read-only, what a real run would check: the recorded
// candidates, then the scenes Stash has new or changed since the last
// sync. It stops once limit incomplete scenes are found (limit < 0: never).
func (p *pass) plan(ctx context.Context, plan *Plan, full bool, limit int) error {
	schema := plan.SchemaVersion > 0
	cursor := ""
	if schema {
		c, err := p.Store.PendingCounts(ctx)
		if err != nil {
			return err
		}
		plan.Recorded = PlanCounts{Pending: c.Pending, Backoff: c.Backoff, Quarantined: c.Quarantined}
		if !full {
			if cursor, _, err = p.cursor(ctx, cursorScenes); err != nil {
				return err
			}
		}
	}
	first, err := p.Stash.Scenes(ctx, stash.SceneQuery{UpdatedAfter: cursor, PerPage: 1})
	if err != nil {
		return err
	}
	plan.ToSync = first.Count
	t, err := p.wanted(ctx)
	if err != nil {
		return err
	}
	batchFull := func() bool { return limit >= 0 && len(plan.Batch) >= limit }
	tally := func(v verification, recorded map[int64]bool) {
		plan.Gone += len(v.GoneScenes)
		plan.Checked += len(v.Verdicts) + len(v.GoneScenes)
		for _, vd := range v.Verdicts {
			gen, known := recorded[vd.SceneID]
			if vd.Complete {
				plan.Complete++
				if !known || !gen {
					plan.BecomeGenerated++
				}
				continue
			}
			plan.Incomplete++
			if !known || gen {
				plan.NewlyIncomplete++
			}
			if limit < 0 || len(plan.Batch) < limit {
				plan.Batch = append(plan.Batch, vd.SceneID)
			}
		}
	}
	seen := map[int64]bool{}
	// probe probes stored scenes not seen yet, as the run's check would.
	probe := func(refs []db.SceneRef) (int, error) {
		recorded := map[int64]bool{}
		var fresh []db.SceneRef
		for _, s := range refs {
			if !seen[s.ID] {
				seen[s.ID], recorded[s.ID] = true, s.Generated
				fresh = append(fresh, s)
			}
		}
		v, err := p.probeStored(ctx, fresh, false)
		if err != nil {
			return 0, err
		}
		tally(v, recorded)
		return len(fresh), nil
	}
	if schema {
		var after int64
		for !batchFull() {
			refs, err := p.Store.CheckCandidates(ctx, full, after, checkChunk)
			if err != nil || len(refs) == 0 {
				if err != nil {
					return err
				}
				break
			}
			after = refs[len(refs)-1].ID
			if _, err := probe(refs); err != nil {
				return err
			}
		}
		if err := p.planReprobes(ctx, plan, full, t.Wanted().Strings(), probe, batchFull); err != nil {
			return err
		}
	}
	// Scenes the sync would bring in: probe them straight from Stash.
	var after int64
	for !batchFull() {
		page, err := p.Stash.Scenes(ctx, stash.SceneQuery{AfterID: after, UpdatedAfter: cursor, PerPage: checkChunk})
		if err != nil {
			return err
		}
		rows := make([]db.SceneRow, 0, len(page.Scenes))
		for _, s := range page.Scenes {
			row, err := sceneRow(s)
			if err != nil {
				return err
			}
			after = row.ID
			rows = append(rows, row)
		}
		// The sync re-reads the cursor's last second: a scene stored
		// unchanged stays as it is, and the run does not probe it.
		unchanged := map[int64]bool{}
		if schema && cursor != "" && len(rows) > 0 {
			if unchanged, err = p.Store.UnchangedScenes(ctx, rows); err != nil {
				return err
			}
		}
		var refs []db.SceneRef
		for _, row := range rows {
			if !seen[row.ID] && !unchanged[row.ID] {
				refs = append(refs, row.Ref())
			}
		}
		if len(refs) > 0 {
			markers, err := p.stashMarkers(ctx, t.Wanted(), refs)
			if err != nil {
				return err
			}
			v, err := p.verify(ctx, t.Wanted(), refs, markers, false)
			if err != nil {
				return err
			}
			tally(v, map[int64]bool{})
		}
		if len(page.Scenes) < checkChunk {
			break
		}
	}
	plan.Cost = PlanCost{FileRequests: p.probes.Load(), NotFound: p.notFound.Load()}
	return nil
}

// planReprobes probes, read-only, the generated scenes a run would send to
// a check again: those verified before a kind now wanted (the run's
// noteWanted would mark them), and the run's share of those checked longer
// ago than reverify_after (not with --full, which probes everything).
func (p *pass) planReprobes(ctx context.Context, plan *Plan, full bool, want []string,
	probe func([]db.SceneRef) (int, error), batchFull func() bool) error {
	added, _, known, err := p.wantedChange(ctx, want)
	if err != nil {
		return err
	}
	if known && len(added) > 0 && plan.SchemaVersion >= 2 {
		plan.Reprobe.Added = added
		var after int64
		for !batchFull() {
			refs, err := p.Store.StaleRefs(ctx, want, after, checkChunk)
			if err != nil || len(refs) == 0 {
				if err != nil {
					return err
				}
				break
			}
			after = refs[len(refs)-1].ID
			n, err := probe(refs)
			if err != nil {
				return err
			}
			plan.Reprobe.ForToggles += n
		}
	}
	if full || p.set.ReverifyAfter <= 0 || plan.SchemaVersion < 2 || batchFull() {
		return nil
	}
	plan.Reprobe.ReverifyAfterSeconds = int(p.set.ReverifyAfter / time.Second)
	due, err := p.dueForReverify(ctx)
	if err != nil {
		return err
	}
	for start := 0; start < len(due) && !batchFull(); start += checkChunk {
		n, err := probe(due[start:min(start+checkChunk, len(due))])
		if err != nil {
			return err
		}
		plan.Reprobe.ForAge += n
	}
	return nil
}

// stashMarkers reads the markers of a range of scenes from Stash, for
// scenes not in the database yet.
func (p *pass) stashMarkers(ctx context.Context, want stash.Resources, refs []db.SceneRef) ([]db.MarkerRef, error) {
	if !want.Has(stash.ResMarkerStream) {
		return nil, nil
	}
	lo, hi := refs[0].ID, refs[len(refs)-1].ID
	var out []db.MarkerRef
	per := p.set.PageSize
	for page := 1; ; page++ {
		mp, err := p.Stash.Markers(ctx, stash.MarkerQuery{SceneIDFrom: lo, SceneIDTo: hi, Page: page, PerPage: per})
		if err != nil {
			return nil, err
		}
		for _, m := range mp.Markers {
			row, err := markerRow(m)
			if err != nil {
				return nil, err
			}
			out = append(out, row.Ref())
		}
		if len(mp.Markers) < per {
			return out, nil
		}
	}
}
