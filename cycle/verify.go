package cycle

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// verification is what probing a set of scenes found.
type verification struct {
	Verdicts    []db.Verdict
	GoneScenes  []int64 // Stash no longer knows them: drop, do not count missing
	GoneMarkers []int64
}

type probeTask struct {
	scene  int
	marker int64 // 0 for a scene resource
	res    stash.Resource
	path   string
	result stash.ProbeResult // 0 when not probed: its scene stopped at a missing file first
}

// probeGroup is probed in order by one worker; a quiet group stops at its
// first missing file.
type probeGroup struct {
	tasks []*probeTask
	quiet bool
}

// verify decides, for each scene, whether every wanted resource exists. It
// trusts nothing Stash lists: paths are reported for every scene whether
// or not the files exist, so each one is fetched (one byte). Covers and
// phashes have no file to fetch and come from is_missing filters.
// Transcodes and heatmaps cannot be checked and are never wanted here.
//
// Every probe of a missing file is a WARN line in Stash's log. So a scene
// not known to be complete (never checked, or pending) is probed quietly:
// its files one after another, the kind most often missing first, up to
// the first one missing (none when its cover or phash is already missing);
// its missing list then says what was found missing so far. A scene
// believed complete, and every scene when everything is set (after a job,
// which should have made every file), is probed on every wanted resource,
// so a scene is never marked generated without all of them answering.
func (p *pass) verify(ctx context.Context, want stash.Resources, refs []db.SceneRef, markers []db.MarkerRef, everything bool) (verification, error) {
	var v verification
	if len(refs) == 0 {
		return v, nil
	}
	lo, hi := refs[0].ID, refs[0].ID
	for _, s := range refs {
		lo, hi = min(lo, s.ID), max(hi, s.ID)
	}
	missingCover, missingPhash := map[int64]bool{}, map[int64]bool{}
	if want.Has(stash.ResCover) {
		m, err := p.missingIn(ctx, "cover", lo, hi)
		if err != nil {
			return v, err
		}
		missingCover = m
	}
	if want.Has(stash.ResPhash) {
		m, err := p.missingIn(ctx, "phash", lo, hi)
		if err != nil {
			return v, err
		}
		missingPhash = m
	}

	order, err := p.probeOrder(ctx, want, everything)
	if err != nil {
		return v, err
	}
	index := make(map[int64]int, len(refs))
	groups := make([]*probeGroup, len(refs))
	for i, s := range refs {
		index[s.ID] = i
		groups[i] = &probeGroup{quiet: !everything && !s.Generated}
	}
	for _, r := range order {
		for i, s := range refs {
			if path, ok := scenePath(s, r); ok {
				groups[i].tasks = append(groups[i].tasks, &probeTask{scene: i, res: r, path: path})
			}
		}
		for _, m := range markers {
			i, ok := index[m.SceneID]
			if !ok {
				continue
			}
			if path, ok := markerPath(m, r); ok {
				groups[i].tasks = append(groups[i].tasks, &probeTask{scene: i, marker: m.ID, res: r, path: path})
			}
		}
	}
	var work []*probeGroup
	for i, g := range groups {
		switch {
		case g.quiet && (missingCover[refs[i].ID] || missingPhash[refs[i].ID]):
			g.tasks = nil // already incomplete: no 404 needed to know it
		case g.quiet:
			work = append(work, g)
		default:
			for _, tk := range g.tasks { // each file its own group: all in parallel
				work = append(work, &probeGroup{tasks: []*probeTask{tk}})
			}
		}
	}
	if err := p.probeAll(ctx, work); err != nil {
		return v, err
	}

	gone := make([]bool, len(refs))
	goneMarker := map[int64]bool{}
	for _, g := range groups {
		for _, tk := range g.tasks {
			if tk.result != stash.Gone {
				continue
			}
			if tk.marker == 0 {
				gone[tk.scene] = true
			} else if !goneMarker[tk.marker] {
				goneMarker[tk.marker] = true
				v.GoneMarkers = append(v.GoneMarkers, tk.marker)
			}
		}
	}
	// A deleted marker's files are no longer wanted: they do not make its
	// scene incomplete.
	missing := make([][]string, len(refs))
	for _, g := range groups {
		for _, tk := range g.tasks {
			if tk.result == stash.Missing && !goneMarker[tk.marker] {
				missing[tk.scene] = append(missing[tk.scene], string(tk.res))
				p.sawMissing(tk.res)
			}
		}
	}
	for i, s := range refs {
		if gone[i] {
			v.GoneScenes = append(v.GoneScenes, s.ID)
			continue
		}
		var m []string
		if missingCover[s.ID] {
			m = append(m, string(stash.ResCover))
		}
		m = append(m, dedupe(missing[i])...)
		if missingPhash[s.ID] {
			m = append(m, string(stash.ResPhash))
		}
		v.Verdicts = append(v.Verdicts, db.Verdict{SceneID: s.ID, Complete: len(m) == 0, Missing: m})
	}
	return v, nil
}

// quietOrder is the order a quiet probe tries files in until the checks
// have found something missing: the video preview first (Stash makes it
// last of a scene's files, so it is the one a stopped job most often
// left out), then the sprite and its index, then the rest.
var quietOrder = []stash.Resource{stash.ResPreview, stash.ResSprite, stash.ResVTT, stash.ResWebp,
	stash.ResMarkerStream, stash.ResMarkerScreenshot, stash.ResMarkerPreview}

// probeOrder is the order of the wanted files: for a full probe, as
// wanted; for a quiet one, the kinds the checks found missing most first
// (what the stored checks found, then this run's own findings), ties in
// quietOrder.
func (p *pass) probeOrder(ctx context.Context, want stash.Resources, everything bool) (stash.Resources, error) {
	if everything {
		return want, nil
	}
	if p.missed == nil {
		counts, err := p.Store.MissingCounts(ctx)
		if err != nil {
			return nil, err
		}
		p.missed = map[stash.Resource]int{}
		for r, n := range counts {
			p.missed[stash.Resource(r)] = n
		}
	}
	var out stash.Resources
	for _, r := range quietOrder {
		if want.Has(r) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b stash.Resource) int { return p.missed[b] - p.missed[a] })
	return out, nil
}

// sawMissing counts a file found missing, for the next chunk's order.
func (p *pass) sawMissing(r stash.Resource) {
	if p.missed != nil {
		p.missed[r]++
	}
}

// scenePath is the stored path of a scene's file for r; ok is false when r
// is not a scene file (covers and phashes are not files, marker files
// belong to markers).
func scenePath(s db.SceneRef, r stash.Resource) (path string, ok bool) {
	switch r {
	case stash.ResPreview:
		return s.PreviewPath, true
	case stash.ResWebp:
		return s.WebpPath, true
	case stash.ResSprite:
		return s.SpritePath, true
	case stash.ResVTT:
		return s.VTTPath, true
	}
	return "", false
}

// markerPath is the stored path of a marker's file for r; ok is false when
// r is not a marker file.
func markerPath(m db.MarkerRef, r stash.Resource) (path string, ok bool) {
	switch r {
	case stash.ResMarkerStream:
		return m.StreamPath, true
	case stash.ResMarkerPreview:
		return m.PreviewPath, true
	case stash.ResMarkerScreenshot:
		return m.ScreenshotPath, true
	}
	return "", false
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// probeAll runs the probe groups with bounded concurrency, each group's
// probes in order; a quiet group stops at its first missing file. The
// first error that is not about one file (a rejected key, Stash gone)
// stops the rest.
func (p *pass) probeAll(ctx context.Context, groups []*probeGroup) error {
	if len(groups) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *probeGroup)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(p.set.Concurrency, len(groups)) {
		wg.Go(func() {
			for g := range work {
				for _, tk := range g.tasks {
					if tk.path == "" {
						tk.result = stash.Missing // Stash gave no URL for it
					} else {
						res, err := p.Stash.Probe(ctx, tk.res, tk.path)
						if err != nil {
							once.Do(func() { firstErr = err; cancel(err) })
							break
						}
						tk.result = res
						p.probes.Add(1)
						if res != stash.Present {
							p.notFound.Add(1)
						}
					}
					// Quiet: stop at the first missing file, or a scene
					// Stash no longer knows. A deleted marker is no
					// reason to stop: its scene's other files still count.
					if g.quiet && (tk.result == stash.Missing || tk.result == stash.Gone && tk.marker == 0) {
						break
					}
				}
			}
		})
	}
feed:
	for _, g := range groups {
		select {
		case work <- g:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		if errors.Is(firstErr, context.Canceled) && context.Cause(ctx) != nil {
			return context.Cause(ctx)
		}
		return firstErr
	}
	return ctx.Err()
}

// missingIn lists the scenes with ids in [lo, hi] that Stash reports as
// missing a cover or a phash.
func (p *pass) missingIn(ctx context.Context, what string, lo, hi int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	after := lo - 1
	per := p.set.PageSize
	for {
		page, err := p.Stash.SceneIDs(ctx, stash.SceneQuery{AfterID: after, UpToID: hi, IsMissing: what, PerPage: per})
		if err != nil {
			return nil, err
		}
		for _, s := range page.Scenes {
			id, err := sceneID(s.ID)
			if err != nil {
				return nil, err
			}
			out[id] = true
			after = id
		}
		if len(page.Scenes) < per {
			return out, nil
		}
	}
}

// progress logs at most every few seconds.
type progress struct {
	every time.Duration
	last  time.Time
}

func (p *progress) due() bool {
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return false
	}
	p.last = now
	return true
}
