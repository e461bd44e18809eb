package cycle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// DryRunInfo is what main knows about the lock file without creating it.
type DryRunInfo struct {
	LockFile  string
	LockState string
}

// DryRun prints what `once` would do and writes nothing anywhere: no Stash
// mutation, no database write, no migration, no lock file. It still reads
// (the queue, the ledger, and one-byte probes of the files), because the
// plan is only honest if it is checked. It exits as the real run would up
// to the generate step: 75 when busy, else 0.
func (r *Runner) DryRun(ctx context.Context, w io.Writer, info DryRunInfo) Result {
	run := &Run{Log: r.Log}
	fmt.Fprintln(w, "stashgen once --dry-run: nothing is written, nothing is started")
	fmt.Fprintf(w, "lock file:  %s: %s\n", info.LockFile, info.LockState)
	schema, err := r.Store.SchemaVersion(ctx)
	if err != nil {
		return failure(ctx, err)
	}
	if schema == 0 {
		fmt.Fprintf(w, "database:   %s: schema absent (a real run creates it); planning against empty tables\n", r.Store.Host())
	} else {
		fmt.Fprintf(w, "database:   %s: schema version %d\n", r.Store.Host(), schema)
	}
	fmt.Fprintf(w, "stash:      %s\n", r.Stash.URL())

	jobs, err := r.Stash.JobQueue(ctx)
	if err != nil {
		return failure(ctx, err)
	}
	var busy []string
	for _, j := range jobs {
		busy = append(busy, fmt.Sprintf("stash job %s: %s %s", j.ID, j.Description, j.Status))
	}
	if schema > 0 {
		ledger, err := r.Store.ActiveJobs(ctx)
		if err != nil {
			busy = append(busy, "job ledger unreadable: "+err.Error())
		}
		for _, j := range ledger {
			busy = append(busy, fmt.Sprintf("ledger job %d: %s %s (by %s)", j.ID, j.Type, j.Status, j.CreatedBy))
		}
	}
	if len(busy) > 0 {
		fmt.Fprintln(w, "busy:       yes")
		for _, b := range busy {
			fmt.Fprintf(w, "  - %s\n", b)
		}
		fmt.Fprintln(w, "plan:       stand aside (skipped_busy, exit 75)")
		return result(db.OutcomeSkippedBusy, ExitTempFail)
	}
	fmt.Fprintln(w, "busy:       no")

	p, err := r.plan(ctx, run, schema > 0, false, r.settings().BatchSize)
	if err != nil {
		return failure(ctx, err)
	}
	fmt.Fprintf(w, "sync:       %d scenes new or changed in stash since the last sync\n", p.toSync)
	fmt.Fprintf(w, "pending:    %d recorded (backing off %d, quarantined %d); %d more found incomplete by this plan's probes\n",
		p.counts.Pending, p.counts.Backoff, p.counts.Quarantined, p.newlyIncomplete)
	if len(p.batch) > 0 {
		known, err := r.Stash.KnownScenes(ctx, idStrings(p.batch))
		if err != nil {
			return failure(ctx, err)
		}
		var keep []int64
		for _, id := range p.batch {
			if known[fmt.Sprint(id)] {
				keep = append(keep, id)
			}
		}
		p.batch = keep
	}
	if len(p.batch) == 0 {
		fmt.Fprintln(w, "plan:       nothing to generate (nothing_to_do, exit 0)")
		return result(db.OutcomeNothingToDo, ExitOK)
	}
	t, err := r.toggles(ctx, run)
	if err != nil {
		return failure(ctx, err)
	}
	in := t
	in.SceneIDs = idStrings(p.batch)
	fmt.Fprintf(w, "plan:       generate %d scenes in the first batch (batch_size %d); first ids: %s\n",
		len(p.batch), r.settings().BatchSize, strings.Join(in.SceneIDs[:min(10, len(in.SceneIDs))], ", "))
	b, _ := json.MarshalIndent(map[string]any{"input": in}, "  ", "  ")
	fmt.Fprintf(w, "metadataGenerate:\n  %s\n", b)
	return result(db.OutcomeGenerated, ExitOK)
}

// CheckDryRun prints what `check` would change, writing nothing.
func (r *Runner) CheckDryRun(ctx context.Context, w io.Writer, full bool) Result {
	run := &Run{Log: r.Log}
	schema, err := r.Store.SchemaVersion(ctx)
	if err != nil {
		return failure(ctx, err)
	}
	p, err := r.plan(ctx, run, schema > 0, full, -1)
	if err != nil {
		return failure(ctx, err)
	}
	fmt.Fprintln(w, "stashgen check --dry-run: nothing is written")
	fmt.Fprintf(w, "would sync:   %d scenes new or changed in stash\n", p.toSync)
	fmt.Fprintf(w, "would check:  %d scenes\n", p.checked)
	fmt.Fprintf(w, "  complete (generated=true):      %d (%d of them change)\n", p.complete, p.becomeGenerated)
	fmt.Fprintf(w, "  incomplete (generated=false):   %d (%d of them change)\n", p.incomplete, p.newlyIncomplete)
	fmt.Fprintf(w, "  gone from stash (rows removed): %d\n", p.gone)
	return result(db.OutcomeChecked, ExitOK)
}

type plan struct {
	counts          db.Counts
	toSync          int
	checked         int
	complete        int
	incomplete      int
	gone            int
	becomeGenerated int     // recorded not generated, found complete
	newlyIncomplete int     // recorded generated (or new), found incomplete
	batch           []int64 // incomplete scenes, oldest first, up to the limit
}

// plan probes, read-only, what a real run would check: the recorded
// candidates, then the scenes Stash has new or changed since the last
// sync. It stops once limit incomplete scenes are found (limit < 0: never).
func (r *Runner) plan(ctx context.Context, run *Run, schema, full bool, limit int) (plan, error) {
	var p plan
	cursor := ""
	if schema {
		var err error
		if p.counts, err = r.Store.PendingCounts(ctx); err != nil {
			return p, err
		}
		if !full {
			if cursor, err = r.Store.Cursor(ctx, cursorScenes); err != nil {
				return p, err
			}
		}
	}
	first, err := r.Stash.Scenes(ctx, stash.SceneQuery{UpdatedAfter: cursor, PerPage: 1})
	if err != nil {
		return p, err
	}
	p.toSync = first.Count
	t, err := r.toggles(ctx, run)
	if err != nil {
		return p, err
	}
	batchFull := func() bool { return limit >= 0 && len(p.batch) >= limit }
	seen := map[int64]bool{}
	tally := func(v verification, recorded map[int64]bool) {
		p.gone += len(v.GoneScenes)
		p.checked += len(v.Verdicts) + len(v.GoneScenes)
		for _, vd := range v.Verdicts {
			gen, known := recorded[vd.SceneID]
			if vd.Complete {
				p.complete++
				if !known || !gen {
					p.becomeGenerated++
				}
				continue
			}
			p.incomplete++
			if !known || gen {
				p.newlyIncomplete++
			}
			if limit < 0 || len(p.batch) < limit {
				p.batch = append(p.batch, vd.SceneID)
			}
		}
	}
	if schema {
		var after int64
		for !batchFull() {
			refs, err := r.Store.CheckCandidates(ctx, full, after, checkChunk)
			if err != nil {
				return p, err
			}
			if len(refs) == 0 {
				break
			}
			after = refs[len(refs)-1].ID
			ids := make([]int64, len(refs))
			recorded := map[int64]bool{}
			for i, s := range refs {
				ids[i] = s.ID
				seen[s.ID] = true
				recorded[s.ID] = s.Generated
			}
			var markers []db.MarkerRef
			if t.Markers {
				if markers, err = r.Store.MarkersOf(ctx, ids); err != nil {
					return p, err
				}
			}
			v, err := r.verify(ctx, t, refs, markers)
			if err != nil {
				return p, err
			}
			tally(v, recorded)
		}
	}
	// Scenes the sync would bring in: probe them straight from Stash.
	var after int64
	for !batchFull() {
		page, err := r.Stash.Scenes(ctx, stash.SceneQuery{AfterID: after, UpdatedAfter: cursor, PerPage: checkChunk})
		if err != nil {
			return p, err
		}
		var refs []db.SceneRef
		for _, s := range page.Scenes {
			id, err := sceneID(s.ID)
			if err != nil {
				return p, err
			}
			after = id
			if seen[id] {
				continue
			}
			refs = append(refs, db.SceneRef{ID: id, PreviewPath: stash.FilePath(s.Paths.Preview),
				WebpPath: stash.FilePath(s.Paths.Webp), SpritePath: stash.FilePath(s.Paths.Sprite), VTTPath: stash.FilePath(s.Paths.VTT)})
		}
		if len(refs) > 0 {
			markers, err := r.stashMarkers(ctx, t, refs)
			if err != nil {
				return p, err
			}
			v, err := r.verify(ctx, t, refs, markers)
			if err != nil {
				return p, err
			}
			tally(v, map[int64]bool{})
		}
		if len(page.Scenes) < checkChunk {
			break
		}
	}
	return p, nil
}

// stashMarkers reads the markers of a range of scenes from Stash, for
// scenes not in the database yet.
func (r *Runner) stashMarkers(ctx context.Context, t stash.GenerateInput, refs []db.SceneRef) ([]db.MarkerRef, error) {
	if !t.Markers {
		return nil, nil
	}
	lo, hi := refs[0].ID, refs[len(refs)-1].ID
	var out []db.MarkerRef
	per := r.settings().PageSize
	for page := 1; ; page++ {
		mp, err := r.Stash.Markers(ctx, stash.MarkerQuery{SceneIDFrom: lo, SceneIDTo: hi, Page: page, PerPage: per})
		if err != nil {
			return nil, err
		}
		for _, m := range mp.Markers {
			id, err := sceneID(m.ID)
			if err != nil {
				return nil, err
			}
			sid, err := sceneID(m.Scene.ID)
			if err != nil {
				return nil, err
			}
			out = append(out, db.MarkerRef{ID: id, SceneID: sid, StreamPath: stash.FilePath(m.Stream),
				PreviewPath: stash.FilePath(m.Preview), ScreenshotPath: stash.FilePath(m.Screenshot)})
		}
		if len(mp.Markers) < per {
			return out, nil
		}
	}
}
