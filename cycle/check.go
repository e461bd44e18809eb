package cycle

import (
	"context"
	"time"

	"github.com/stashgen/stashgen/db"
)

// CheckStats counts what a check found.
type CheckStats struct {
	Checked     int // scenes probed
	Complete    int // every enabled resource exists
	Incomplete  int
	Gone        int // Stash no longer has them; rows removed
	GoneMarkers int
	Swept       int64 // rows removed by a full check's sweep
}

// checkChunk is how many scenes are probed between database writes.
const checkChunk = 500

// CheckScenes probes scenes and records whether each is generated. The
// incremental check looks at scenes never checked, changed since their
// check, or not generated (and not backing off or quarantined); full looks
// at every scene, quarantined ones included.
func (r *Runner) CheckScenes(ctx context.Context, run *Run, full bool) (CheckStats, error) {
	run.SetPhase("check")
	var st CheckStats
	var after int64
	started := time.Now()
	p := progress{every: 5 * time.Second, last: started}
	for {
		refs, err := r.Store.CheckCandidates(ctx, full, after, checkChunk)
		if err != nil {
			return st, err
		}
		if len(refs) == 0 {
			break
		}
		after = refs[len(refs)-1].ID
		v, err := r.verifyAndRecord(ctx, run, refs)
		if err != nil {
			return st, err
		}
		st.add(v)
		if p.due() {
			run.Log.Info("checking scenes", "checked", st.Checked, "complete", st.Complete,
				"incomplete", st.Incomplete, "elapsed", time.Since(started).Round(time.Second).String())
		}
	}
	if st.Checked > 0 || full {
		run.Log.Info("check done", "checked", st.Checked, "complete", st.Complete, "incomplete", st.Incomplete,
			"gone", st.Gone, "elapsed", time.Since(started).Round(time.Millisecond).String())
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

// verifyAndRecord probes refs and writes the verdicts, dropping what Stash
// deleted.
func (r *Runner) verifyAndRecord(ctx context.Context, run *Run, refs []db.SceneRef) (verification, error) {
	t, err := r.toggles(ctx, run)
	if err != nil {
		return verification{}, err
	}
	var markers []db.MarkerRef
	if t.Markers {
		ids := make([]int64, len(refs))
		for i, s := range refs {
			ids[i] = s.ID
		}
		if markers, err = r.Store.MarkersOf(ctx, ids); err != nil {
			return verification{}, err
		}
	}
	v, err := r.verify(ctx, t, refs, markers)
	if err != nil {
		return v, err
	}
	if err := r.Store.RecordVerdicts(ctx, v.Verdicts); err != nil {
		return v, err
	}
	if err := r.Store.DeleteScenes(ctx, v.GoneScenes); err != nil {
		return v, err
	}
	if err := r.Store.DeleteMarkers(ctx, v.GoneMarkers); err != nil {
		return v, err
	}
	if len(v.GoneScenes) > 0 {
		run.Log.Info("stash no longer has these scenes; forgot them", KeySceneCount, len(v.GoneScenes), "scene_ids", head(v.GoneScenes, 10))
	}
	return v, nil
}

// head returns at most n ids, for logs.
func head(ids []int64, n int) []int64 { return ids[:min(n, len(ids))] }
