package cycle

import (
	"context"
	"errors"
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
	result stash.ProbeResult
}

// verify decides, for each scene, whether every wanted resource exists. It
// trusts nothing Stash lists: paths are reported for every scene whether
// or not the files exist, so each one is fetched (one byte). Covers and
// phashes have no file to fetch and come from is_missing filters.
// Transcodes and heatmaps cannot be checked and are never wanted here.
func (p *pass) verify(ctx context.Context, want stash.Resources, refs []db.SceneRef, markers []db.MarkerRef) (verification, error) {
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

	index := make(map[int64]int, len(refs))
	var tasks []*probeTask
	add := func(scene int, marker int64, res stash.Resource, path string) {
		tasks = append(tasks, &probeTask{scene: scene, marker: marker, res: res, path: path})
	}
	for i, s := range refs {
		index[s.ID] = i
		for _, r := range want {
			if path, ok := scenePath(s, r); ok {
				add(i, 0, r, path)
			}
		}
	}
	for _, m := range markers {
		i, ok := index[m.SceneID]
		if !ok {
			continue
		}
		for _, r := range want {
			if path, ok := markerPath(m, r); ok {
				add(i, m.ID, r, path)
			}
		}
	}
	if err := p.probeAll(ctx, tasks); err != nil {
		return v, err
	}

	gone := make([]bool, len(refs))
	goneMarker := map[int64]bool{}
	for _, tk := range tasks {
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
	// A deleted marker's files are no longer wanted: they do not make its
	// scene incomplete.
	missing := make([][]string, len(refs))
	for _, tk := range tasks {
		if tk.result == stash.Missing && !goneMarker[tk.marker] {
			missing[tk.scene] = append(missing[tk.scene], string(tk.res))
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

// probeAll runs the probes with bounded concurrency. The first error that
// is not about one file (a rejected key, Stash gone) stops the rest.
func (p *pass) probeAll(ctx context.Context, tasks []*probeTask) error {
	if len(tasks) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *probeTask)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(p.set.Concurrency, len(tasks)) {
		wg.Go(func() {
			for tk := range work {
				if tk.path == "" {
					tk.result = stash.Missing // Stash gave no URL for it
					continue
				}
				res, err := p.Stash.Probe(ctx, tk.res, tk.path)
				if err != nil {
					once.Do(func() { firstErr = err; cancel(err) })
					continue
				}
				tk.result = res
			}
		})
	}
feed:
	for _, tk := range tasks {
		select {
		case work <- tk:
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
