package cycle

import (
	"context"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// CheckStats counts what a check found.
type CheckStats struct {
	Checked     int // scenes probed
	Complete    int // every enabled resource exists
	Incomplete  int
	Gone        int // Stash no longer has them; rows removed
	GoneMarkers int
	Reverified  int // of Checked, scenes re-verified for their age
}

// checkChunk is how many scenes are probed between database writes.
const checkChunk = 500

// check is once's check step: incremental.
func (p *pass) check(ctx context.Context) error {
	_, err := p.checkScenes(ctx, false)
	return err
}

// checkScenes probes scenes and records whether each is generated. The
// incremental check looks at scenes never checked, changed since their
// check, or not generated (and not backing off or quarantined); full looks
// at every scene, quarantined ones included.
func (p *pass) checkScenes(ctx context.Context, full bool) (CheckStats, error) {
	p.run.SetPhase(PhaseCheck)
	var st CheckStats
	var after int64
	started := time.Now()
	every := progress{every: 5 * time.Second, last: started}
	for {
		refs, err := p.Store.CheckCandidates(ctx, full, after, checkChunk)
		if err != nil {
			return st, err
		}
		if len(refs) == 0 {
			break
		}
		after = refs[len(refs)-1].ID
		v, err := p.verifyAndRecord(ctx, refs, false)
		if err != nil {
			return st, err
		}
		st.add(v)
		if every.due() {
			p.log.Info("checking scenes", "checked", st.Checked, "complete", st.Complete,
				"incomplete", st.Incomplete, "elapsed", time.Since(started).Round(time.Second).String())
		}
	}
	if !full {
		if err := p.reverify(ctx, &st); err != nil {
			return st, err
		}
	}
	if st.Checked > 0 || full {
		p.log.Info("check done", "checked", st.Checked, "complete", st.Complete, "incomplete", st.Incomplete,
			"gone", st.Gone, "reverified", st.Reverified, "file_requests", p.probes.Load(), "not_found", p.notFound.Load(),
			"elapsed", elapsed(started))
	}
	return st, nil
}

func (st *CheckStats) add(v verification) {
	st.Checked += len(v.Verdicts) + len(v.GoneScenes)
	for _, vd := range v.Verdicts {
		if vd.Complete {
			st.Complete++
		} else {
			st.Incomplete++
		}
	}
	st.Gone += len(v.GoneScenes)
	st.GoneMarkers += len(v.GoneMarkers)
}

// dueForReverify is this run's share of the generated scenes whose check
// is older than reverify_after, oldest first: ceil(N × job_interval /
// reverify_after) of the N scenes. None when re-verification is off.
func (p *pass) dueForReverify(ctx context.Context) ([]db.SceneRef, error) {
	if p.set.ReverifyAfter <= 0 {
		return nil, nil
	}
	return p.Store.DueForReverify(ctx, p.set.ReverifyAfter, float64(p.set.JobInterval)/float64(p.set.ReverifyAfter))
}

// reverify probes this run's share of the generated scenes whose check is
// older than reverify_after, oldest first: ceil(N × job_interval /
// reverify_after) of the N scenes, so that a library checked all at once
// comes due a share a run, spread over the period. A scene found complete
// gets a fresh check time; one found incomplete is pending as usual.
func (p *pass) reverify(ctx context.Context, st *CheckStats) error {
	due, err := p.dueForReverify(ctx)
	if err != nil || len(due) == 0 {
		return err
	}
	p.log.Info("re-verifying scenes whose last check is older than reverify_after", KeySceneCount, len(due),
		"reverify_after", p.set.ReverifyAfter.String())
	for start := 0; start < len(due); start += checkChunk {
		v, err := p.verifyAndRecord(ctx, due[start:min(start+checkChunk, len(due))], false)
		if err != nil {
			return err
		}
		st.add(v)
		st.Reverified += len(v.Verdicts) + len(v.GoneScenes)
	}
	return nil
}

// probeStored probes scenes read from the database, with their markers;
// everything probes every wanted file of every scene (see verify).
func (p *pass) probeStored(ctx context.Context, refs []db.SceneRef, everything bool) (verification, error) {
	t, err := p.wanted(ctx)
	if err != nil {
		return verification{}, err
	}
	var markers []db.MarkerRef
	if t.Wanted().Has(stash.ResMarkerStream) {
		ids := make([]int64, len(refs))
		for i, s := range refs {
			ids[i] = s.ID
		}
		if markers, err = p.Store.MarkersOf(ctx, ids); err != nil {
			return verification{}, err
		}
	}
	return p.verify(ctx, t.Wanted(), refs, markers, everything)
}

// verifyAndRecord probes refs and writes the verdicts, dropping what Stash
// deleted.
func (p *pass) verifyAndRecord(ctx context.Context, refs []db.SceneRef, everything bool) (verification, error) {
	v, err := p.probeStored(ctx, refs, everything)
	if err != nil {
		return v, err
	}
	if err := p.Store.RecordVerdicts(ctx, v.Verdicts, p.toggles.Wanted().Strings()); err != nil {
		return v, err
	}
	if err := p.Store.DeleteScenes(ctx, v.GoneScenes); err != nil {
		return v, err
	}
	if err := p.Store.DeleteMarkers(ctx, v.GoneMarkers); err != nil {
		return v, err
	}
	if len(v.GoneScenes) > 0 {
		p.log.Info("stash no longer has these scenes; forgot them", KeySceneCount, len(v.GoneScenes), "scene_ids", head(v.GoneScenes, 10))
	}
	return v, nil
}

// head returns at most n ids, for logs.
func head(ids []int64, n int) []int64 { return ids[:min(n, len(ids))] }
