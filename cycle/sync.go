package cycle

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// Sync cursor names in sync_state.
const (
	cursorScenes  = "scenes"
	cursorMarkers = "markers"
)

// SyncStats is what a sync pass saw.
type SyncStats struct {
	Scenes  int // scene rows written
	Markers int // marker rows written
	Full    bool
}

// sync is once's sync step: incremental.
func (p *pass) sync(ctx context.Context) error {
	_, err := p.syncAll(ctx, false)
	return err
}

// syncAll brings the scenes and markers tables up to date with Stash, one
// page at a time (never the whole library in memory). full ignores the
// cursors and re-reads everything; a full pass records synced_at so
// deleted scenes can be swept.
func (p *pass) syncAll(ctx context.Context, full bool) (SyncStats, error) {
	p.run.SetPhase(PhaseSync)
	st := SyncStats{Full: full}
	n, err := p.syncScenes(ctx, full)
	st.Scenes = n
	if err != nil {
		return st, err
	}
	m, err := p.syncMarkers(ctx, full)
	st.Markers = m
	if err != nil {
		return st, err
	}
	p.log.Info("scenes synced from stash", "scenes", st.Scenes, "markers", st.Markers, "full", full)
	return st, nil
}

// nextCursor decides the cursor after a pass that saw changes up to
// newest. Stash's timestamps have one-second precision and the filter is
// strictly greater-than, so a change made later in the same second as
// newest would be missed by a cursor at newest. Changes made before the
// pass started (Stash's clock, from its Date header) were all read, so the
// cursor may go up to one second before the start; anything newer is read
// again next time. A large import all stamped with one second is read once,
// not on every run.
func nextCursor(old string, newest, serverStart time.Time) string {
	if newest.IsZero() {
		return old
	}
	c := newest
	if !serverStart.IsZero() {
		settled := serverStart.Truncate(time.Second).Add(-time.Second)
		if settled.Before(c) {
			c = settled
		}
	} else {
		c = c.Add(-time.Second) // no clock from Stash: always re-read the last second
	}
	if prev, err := time.Parse(time.RFC3339, old); err == nil && !c.After(prev) {
		return old
	}
	// Stash compares these as it stores them, in its own offset.
	return c.In(newest.Location()).Format(time.RFC3339)
}

func (p *pass) syncScenes(ctx context.Context, full bool) (int, error) {
	cursor := ""
	if !full {
		c, _, err := p.cursor(ctx, cursorScenes)
		if err != nil {
			return 0, err
		}
		cursor = c
	}
	per := p.set.PageSize
	var (
		after       int64
		newest      time.Time
		serverStart time.Time
		written     int
	)
	for {
		page, err := p.Stash.Scenes(ctx, stash.SceneQuery{AfterID: after, UpdatedAfter: cursor, PerPage: per})
		if err != nil {
			return written, err
		}
		if serverStart.IsZero() {
			serverStart = page.Date
		}
		rows := make([]db.SceneRow, 0, len(page.Scenes))
		for _, s := range page.Scenes {
			row, err := sceneRow(s)
			if err != nil {
				return written, err
			}
			rows = append(rows, row)
			if s.UpdatedAt.After(newest) {
				newest = s.UpdatedAt
			}
			after = row.ID
		}
		if err := p.Store.UpsertScenes(ctx, rows); err != nil {
			return written, err
		}
		written += len(rows)
		if len(page.Scenes) < per {
			break
		}
	}
	next := nextCursor(cursor, newest, serverStart)
	if next != cursor {
		if err := p.setCursor(ctx, cursorScenes, next); err != nil {
			return written, err
		}
	}
	if cursor == "" && written >= analyzeAfter {
		// A first pass just filled the table: without statistics the next
		// queries would plan as if it were empty.
		if err := p.Store.Analyze(ctx); err != nil {
			return written, err
		}
	}
	return written, nil
}

// analyzeAfter is how many rows a full pass writes before it refreshes the
// planner's statistics itself instead of waiting for autovacuum.
const analyzeAfter = 10000

// markerWindow is a range of scene ids whose markers are read together;
// hi 0 means no upper bound.
type markerWindow struct{ lo, hi int64 }

// syncMarkers reads the markers changed since the cursor. Stash has no id
// filter for markers, so its pages are numbered, and a marker inserted or
// deleted while a pass pages through them shifts the pages after it: a
// marker can be skipped without the count changing. So the pass reads
// ranges of scene ids small enough that each fits one page and comes in
// one answer: a range whose count says it needs more pages is split by
// scene id first. An idle pass is one request, as before.
func (p *pass) syncMarkers(ctx context.Context, full bool) (int, error) {
	cursor := ""
	if !full {
		c, _, err := p.cursor(ctx, cursorMarkers)
		if err != nil {
			return 0, err
		}
		cursor = c
	}
	// The first pass finds every marker; resetting their scenes would
	// throw away the check of the whole library. A full re-sync likewise.
	reset := cursor != ""
	per := p.set.PageSize
	var (
		newest      time.Time
		serverStart time.Time
		written     int
		total       int
	)
	windows := []markerWindow{{lo: 1}}
	for len(windows) > 0 {
		w := windows[0]
		windows = windows[1:]
		mp, err := p.Stash.Markers(ctx, stash.MarkerQuery{UpdatedAfter: cursor, SceneIDFrom: w.lo, SceneIDTo: w.hi, Page: 1, PerPage: per})
		if err != nil {
			return written, err
		}
		if serverStart.IsZero() {
			serverStart = mp.Date
		}
		if mp.Count > len(mp.Markers) {
			sub, err := p.splitWindow(ctx, w, mp.Count, per)
			if err != nil {
				return written, err
			}
			if len(sub) > 1 {
				windows = append(sub, windows...)
				continue
			}
			// One scene with more markers than a page: page through it.
			if mp, err = p.sceneMarkers(ctx, cursor, w.lo, mp, per); err != nil {
				return written, err
			}
		}
		total += mp.Count
		rows := make([]db.MarkerRow, 0, len(mp.Markers))
		for _, m := range mp.Markers {
			row, err := markerRow(m)
			if err != nil {
				return written, err
			}
			rows = append(rows, row)
			if m.UpdatedAt.After(newest) {
				newest = m.UpdatedAt
			}
		}
		if err := p.Store.UpsertMarkers(ctx, rows, reset); err != nil {
			return written, err
		}
		written += len(rows)
	}
	next := nextCursor(cursor, newest, serverStart)
	if next == "" && total == 0 {
		// No markers at all yet. Start incremental passes now, or the first
		// marker ever added would arrive in a "first pass" and not reset
		// its scene. Any cursor before this pass is right; the scenes'
		// cursor is one, in Stash's own offset.
		sc, _, err := p.cursor(ctx, cursorScenes)
		if err != nil {
			return written, err
		}
		next = sc
	}
	if next != cursor {
		if err := p.setCursor(ctx, cursorMarkers, next); err != nil {
			return written, err
		}
	}
	return written, nil
}

// splitWindow divides a range of scenes whose markers (count of them) do
// not fit a page into ranges that should, a quarter of a page to spare.
// An open range ends at the highest scene id stored, plus an open range
// beyond it for scenes added meanwhile. A range of one scene cannot be
// split: it comes back alone.
func (p *pass) splitWindow(ctx context.Context, w markerWindow, count, per int) ([]markerWindow, error) {
	hi := w.hi
	var tail []markerWindow
	if hi == 0 {
		top, err := p.Store.MaxSceneID(ctx)
		if err != nil {
			return nil, err
		}
		hi = top
		if hi < w.lo {
			// Scenes newer than any stored: no count of them to go by, so
			// the range doubles each time it is still too big.
			hi = 2*w.lo + int64(per)
		}
		tail = []markerWindow{{lo: hi + 1}}
	}
	n := min(int64((count*5+per*4-1)/(per*4)), hi-w.lo+1)
	if n < 2 && tail == nil {
		return []markerWindow{w}, nil
	}
	n = max(n, 1)
	out := make([]markerWindow, 0, n+1)
	span := hi - w.lo + 1
	for i := range n {
		lo := w.lo + span*i/n
		end := w.lo + span*(i+1)/n - 1
		out = append(out, markerWindow{lo: lo, hi: end})
	}
	return append(out, tail...), nil
}

// sceneMarkers reads every page of one scene's markers, first being the
// page already read. Pages of one scene can still shift if its markers
// change during the pass; the count shows a deletion, and the pages are
// read again.
func (p *pass) sceneMarkers(ctx context.Context, cursor string, scene int64, first stash.MarkerPage, per int) (stash.MarkerPage, error) {
	all := first
	for restarts := 0; ; {
		for page := 2; len(all.Markers) < all.Count; page++ {
			mp, err := p.Stash.Markers(ctx, stash.MarkerQuery{UpdatedAfter: cursor, SceneIDFrom: scene, SceneIDTo: scene, Page: page, PerPage: per})
			if err != nil {
				return all, err
			}
			if mp.Count < all.Count && restarts < 3 {
				break
			}
			all.Markers = append(all.Markers, mp.Markers...)
			if len(mp.Markers) < per {
				return all, nil
			}
		}
		if len(all.Markers) >= all.Count || restarts >= 3 {
			return all, nil
		}
		restarts++
		mp, err := p.Stash.Markers(ctx, stash.MarkerQuery{UpdatedAfter: cursor, SceneIDFrom: scene, SceneIDTo: scene, Page: 1, PerPage: per})
		if err != nil {
			return all, err
		}
		all = mp
	}
}

// sceneRow is what the database keeps of a Stash scene: its file paths
// without host or query (never the API key).
func sceneRow(s stash.Scene) (db.SceneRow, error) {
	id, err := sceneID(s.ID)
	if err != nil {
		return db.SceneRow{}, err
	}
	return db.SceneRow{
		ID: id, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		PreviewPath: stash.FilePath(s.Paths.Preview), WebpPath: stash.FilePath(s.Paths.Webp),
		SpritePath: stash.FilePath(s.Paths.Sprite), VTTPath: stash.FilePath(s.Paths.VTT),
	}, nil
}

// markerRow is what the database keeps of a Stash marker.
func markerRow(m stash.Marker) (db.MarkerRow, error) {
	id, err := sceneID(m.ID)
	if err != nil {
		return db.MarkerRow{}, fmt.Errorf("marker: %w", err)
	}
	sid, err := sceneID(m.Scene.ID)
	if err != nil {
		return db.MarkerRow{}, err
	}
	return db.MarkerRow{
		ID: id, SceneID: sid, UpdatedAt: m.UpdatedAt,
		StreamPath: stash.FilePath(m.Stream), PreviewPath: stash.FilePath(m.Preview),
		ScreenshotPath: stash.FilePath(m.Screenshot),
	}, nil
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// sceneID parses a Stash ID. Stash's ids are integers sent as strings.
func sceneID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("stash sent id %q, which is not a positive integer", s)
	}
	return id, nil
}

func idStrings(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}
