package cycle

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// Built-in generate toggles, used for a key neither the config file nor
// Stash's own settings give.
var builtinToggles = stash.GenerateInput{
	Covers: true, Sprites: true, Previews: true, ImagePreviews: false,
	Markers: true, MarkerImagePreviews: false, MarkerScreenshots: true,
	Phashes: true, Transcodes: false, InteractiveHeatmapsSpeeds: false,
}

// Effective merges the toggles: the config file first, then what the user
// chose in Stash's settings, then the built-in defaults.
func Effective(cfg, fromStash stash.GenerateOptions) stash.GenerateInput {
	pick := func(c, s *bool, def bool) bool {
		if c != nil {
			return *c
		}
		if s != nil {
			return *s
		}
		return def
	}
	b := builtinToggles
	return stash.GenerateInput{
		Covers:                    pick(cfg.Covers, fromStash.Covers, b.Covers),
		Sprites:                   pick(cfg.Sprites, fromStash.Sprites, b.Sprites),
		Previews:                  pick(cfg.Previews, fromStash.Previews, b.Previews),
		ImagePreviews:             pick(cfg.ImagePreviews, fromStash.ImagePreviews, b.ImagePreviews),
		Markers:                   pick(cfg.Markers, fromStash.Markers, b.Markers),
		MarkerImagePreviews:       pick(cfg.MarkerImagePreviews, fromStash.MarkerImagePreviews, b.MarkerImagePreviews),
		MarkerScreenshots:         pick(cfg.MarkerScreenshots, fromStash.MarkerScreenshots, b.MarkerScreenshots),
		Phashes:                   pick(cfg.Phashes, fromStash.Phashes, b.Phashes),
		Transcodes:                pick(cfg.Transcodes, fromStash.Transcodes, b.Transcodes),
		InteractiveHeatmapsSpeeds: pick(cfg.InteractiveHeatmapsSpeeds, fromStash.InteractiveHeatmapsSpeeds, b.InteractiveHeatmapsSpeeds),
	}
}

func allSet(o stash.GenerateOptions) bool {
	for _, p := range []*bool{o.Covers, o.Sprites, o.Previews, o.ImagePreviews, o.Markers, o.MarkerImagePreviews,
		o.MarkerScreenshots, o.Phashes, o.Transcodes, o.InteractiveHeatmapsSpeeds} {
		if p == nil {
			return false
		}
	}
	return true
}

// toggles resolves the effective toggles once per run, asking Stash only
// when the config leaves a key out, and logs them.
func (r *Runner) toggles(ctx context.Context, run *Run) (stash.GenerateInput, error) {
	run.mu.Lock()
	cached := run.toggles
	run.mu.Unlock()
	if cached != nil {
		return *cached, nil
	}
	cfg := r.settings().Toggles
	var fromStash stash.GenerateOptions
	if !allSet(cfg) {
		d, err := r.Stash.GenerateDefaults(ctx)
		if err != nil {
			return stash.GenerateInput{}, err
		}
		fromStash = d
	}
	t := Effective(cfg, fromStash)
	run.Log.Info("generate toggles", "covers", t.Covers, "sprites", t.Sprites, "previews", t.Previews,
		"image_previews", t.ImagePreviews, "markers", t.Markers, "marker_image_previews", t.MarkerImagePreviews,
		"marker_screenshots", t.MarkerScreenshots, "phashes", t.Phashes, "transcodes", t.Transcodes,
		"interactive_heatmaps_speeds", t.InteractiveHeatmapsSpeeds)
	if t.ImagePreviews && !t.Previews {
		run.Log.Warn("image_previews is on but previews is off: Stash builds the webp only together with the video preview, so none will be made")
	}
	run.mu.Lock()
	run.toggles = &t
	run.mu.Unlock()
	return t, nil
}

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

// verify decides, for each scene, whether every enabled resource that can
// be checked exists. It trusts nothing Stash lists: paths are reported for
// every scene whether or not the files exist, so each one is fetched (one
// byte). Covers and phashes have no file to fetch and come from is_missing
// filters. Transcodes and heatmaps cannot be checked and do not count.
func (r *Runner) verify(ctx context.Context, t stash.GenerateInput, refs []db.SceneRef, markers []db.MarkerRef) (verification, error) {
	var v verification
	if len(refs) == 0 {
		return v, nil
	}
	lo, hi := refs[0].ID, refs[0].ID
	for _, s := range refs {
		lo, hi = min(lo, s.ID), max(hi, s.ID)
	}
	missingCover, missingPhash := map[int64]bool{}, map[int64]bool{}
	if t.Covers {
		m, err := r.missingIn(ctx, "cover", lo, hi)
		if err != nil {
			return v, err
		}
		missingCover = m
	}
	if t.Phashes {
		m, err := r.missingIn(ctx, "phash", lo, hi)
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
		if t.Previews {
			add(i, 0, stash.ResPreview, s.PreviewPath)
			if t.ImagePreviews {
				add(i, 0, stash.ResWebp, s.WebpPath)
			}
		}
		if t.Sprites {
			add(i, 0, stash.ResSprite, s.SpritePath)
			add(i, 0, stash.ResVTT, s.VTTPath)
		}
	}
	if t.Markers {
		for _, m := range markers {
			i, ok := index[m.SceneID]
			if !ok {
				continue
			}
			add(i, m.ID, stash.ResMarkerStream, m.StreamPath)
			if t.MarkerImagePreviews {
				add(i, m.ID, stash.ResMarkerPreview, m.PreviewPath)
			}
			if t.MarkerScreenshots {
				add(i, m.ID, stash.ResMarkerScreenshot, m.ScreenshotPath)
			}
		}
	}
	if err := r.probeAll(ctx, tasks); err != nil {
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
func (r *Runner) probeAll(ctx context.Context, tasks []*probeTask) error {
	if len(tasks) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *probeTask)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(r.settings().Concurrency, len(tasks)) {
		wg.Go(func() {
			for tk := range work {
				if tk.path == "" {
					tk.result = stash.Missing // Stash gave no URL for it
					continue
				}
				res, err := r.Stash.Probe(ctx, tk.res, tk.path)
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
func (r *Runner) missingIn(ctx context.Context, what string, lo, hi int64) (map[int64]bool, error) {
	out := map[int64]bool{}
	after := lo - 1
	per := r.settings().PageSize
	for {
		page, err := r.Stash.SceneIDs(ctx, stash.SceneQuery{AfterID: after, UpToID: hi, IsMissing: what, PerPage: per})
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
