package db_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stashgen/stashgen/db"
)

var updated0 = time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC)

func sceneRow(id int64, updated time.Time) db.SceneRow {
	return db.SceneRow{
		ID: id, CreatedAt: updated0.Add(-time.Hour), UpdatedAt: updated,
		PreviewPath: "/scene/1/preview", WebpPath: "/scene/1/webp", SpritePath: "/scene/1/sprite", VTTPath: "/scene/1/vtt",
	}
}

// addScenes upserts scenes with the given ids, all updated at updated0.
func addScenes(t *testing.T, e env, ids ...int64) {
	t.Helper()
	rows := make([]db.SceneRow, len(ids))
	for i, id := range ids {
		rows[i] = sceneRow(id, updated0)
	}
	if err := e.s.UpsertScenes(t.Context(), rows); err != nil {
		t.Fatalf("UpsertScenes: %v", err)
	}
}

// sceneState is what the scheduling columns of one scene say.
type sceneState struct {
	Generated   bool
	NeedsCheck  bool
	Attempts    int
	Backoff     bool // next_attempt_at in the future
	Quarantined bool
	Missing     []string
}

func stateOf(t *testing.T, e env, id int64) sceneState {
	t.Helper()
	var s sceneState
	err := e.raw.QueryRow(t.Context(), `SELECT generated, needs_check, attempts, coalesce(next_attempt_at > now(), false),
		quarantined_at IS NOT NULL, missing FROM scenes WHERE stash_id = $1`, id).
		Scan(&s.Generated, &s.NeedsCheck, &s.Attempts, &s.Backoff, &s.Quarantined, &s.Missing)
	if err != nil {
		t.Fatalf("read scene %d: %v", id, err)
	}
	return s
}

func (s sceneState) equal(o sceneState) bool {
	return s.Generated == o.Generated && s.NeedsCheck == o.NeedsCheck && s.Attempts == o.Attempts &&
		s.Backoff == o.Backoff && s.Quarantined == o.Quarantined && slices.Equal(s.Missing, o.Missing)
}

func complete(ids ...int64) []db.Verdict {
	vs := make([]db.Verdict, len(ids))
	for i, id := range ids {
		vs[i] = db.Verdict{SceneID: id, Complete: true}
	}
	return vs
}

func TestStore_UpsertScenesNew(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	addScenes(t, e, 1, 2)
	for _, id := range []int64{1, 2} {
		if got, want := stateOf(t, e, id), (sceneState{NeedsCheck: true, Missing: []string{}}); !got.equal(want) {
			t.Errorf("new scene %d = %+v, want %+v", id, got, want)
		}
	}
	refs, err := e.s.ScenesByID(ctx, []int64{2, 1, 99})
	if err != nil {
		t.Fatal(err)
	}
	want := db.SceneRef{ID: 1, PreviewPath: "/scene/1/preview", WebpPath: "/scene/1/webp", SpritePath: "/scene/1/sprite", VTTPath: "/scene/1/vtt"}
	if len(refs) != 2 || refs[0] != want || refs[1].ID != 2 {
		t.Fatalf("ScenesByID = %+v", refs)
	}
	if got := scalar[time.Time](t, e, `SELECT stash_updated_at FROM scenes WHERE stash_id = 1`); !got.Equal(updated0.Truncate(time.Microsecond)) {
		t.Errorf("stash_updated_at = %v, want %v", got, updated0)
	}
}

func TestStore_UpsertScenesKeepsVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		updated time.Time
		want    sceneState
	}{
		{"same updated_at", updated0, sceneState{Generated: true, Missing: []string{}}},
		{"changed updated_at", updated0.Add(time.Minute), sceneState{Generated: true, NeedsCheck: true, Missing: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			e := newEnv(t)
			addScenes(t, e, 1)
			if err := e.s.RecordVerdicts(ctx, complete(1), testKinds); err != nil {
				t.Fatal(err)
			}
			row := sceneRow(1, tt.updated)
			row.PreviewPath = "/scene/1/preview?new"
			if err := e.s.UpsertScenes(ctx, []db.SceneRow{row}); err != nil {
				t.Fatal(err)
			}
			if got := stateOf(t, e, 1); !got.equal(tt.want) {
				t.Errorf("scene = %+v, want %+v", got, tt.want)
			}
			if got := scalar[string](t, e, `SELECT preview_path FROM scenes WHERE stash_id = 1`); got != row.PreviewPath {
				t.Errorf("preview_path = %q, want %q", got, row.PreviewPath)
			}
		})
	}
}

func TestStore_UpsertScenesRefreshesSyncedAt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addScenes(t, e, 1)
	e.exec(t, `UPDATE scenes SET synced_at = now() - interval '1 day'`)
	addScenes(t, e, 1)
	if stale := scalar[bool](t, e, `SELECT synced_at < now() - interval '1 hour' FROM scenes WHERE stash_id = 1`); stale {
		t.Fatal("re-upsert did not move synced_at")
	}
}

func TestStore_UpsertMarkers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reset bool
		want  sceneState
	}{
		{false, sceneState{Generated: true, Missing: []string{}}},
		{true, sceneState{Generated: false, NeedsCheck: true, Missing: []string{}}},
	}
	for _, tt := range tests {
		name := "keep"
		if tt.reset {
			name = "reset"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			e := newEnv(t)
			addScenes(t, e, 1, 2)
			if err := e.s.RecordVerdicts(ctx, complete(1, 2), testKinds); err != nil {
				t.Fatal(err)
			}
			m := db.MarkerRow{ID: 10, SceneID: 1, UpdatedAt: updated0, StreamPath: "/m/10/stream",
				PreviewPath: "/m/10/preview", ScreenshotPath: "/m/10/shot"}
			if err := e.s.UpsertMarkers(ctx, []db.MarkerRow{m}, tt.reset); err != nil {
				t.Fatalf("UpsertMarkers: %v", err)
			}
			if got := stateOf(t, e, 1); !got.equal(tt.want) {
				t.Errorf("scene of the marker = %+v, want %+v", got, tt.want)
			}
			if got, want := stateOf(t, e, 2), (sceneState{Generated: true, Missing: []string{}}); !got.equal(want) {
				t.Errorf("other scene = %+v, want %+v", got, want)
			}
			refs, err := e.s.MarkersOf(ctx, []int64{1, 2})
			want := db.MarkerRef{ID: 10, SceneID: 1, StreamPath: "/m/10/stream", PreviewPath: "/m/10/preview", ScreenshotPath: "/m/10/shot"}
			if err != nil || len(refs) != 1 || refs[0] != want {
				t.Fatalf("MarkersOf = %+v, %v; want %+v", refs, err, want)
			}

			// A marker moving to another scene is updated in place.
			m.SceneID = 2
			if err := e.s.UpsertMarkers(ctx, []db.MarkerRow{m}, tt.reset); err != nil {
				t.Fatal(err)
			}
			if refs, err := e.s.MarkersOf(ctx, []int64{2}); err != nil || len(refs) != 1 || refs[0].SceneID != 2 {
				t.Fatalf("MarkersOf(2) after the move = %+v, %v", refs, err)
			}
			if got := stateOf(t, e, 2).Generated; got == tt.reset {
				t.Errorf("new scene of a moved marker: generated = %v with reset %v", got, tt.reset)
			}
		})
	}
}

// Only a marker that is new, moved or changed resets its scene; one read
// again as it is stored resets nothing.
func TestStore_UpsertMarkersResetsOnlyForChanges(t *testing.T) {
	t.Parallel()
	base := db.MarkerRow{ID: 10, SceneID: 1, UpdatedAt: updated0, StreamPath: "/m/10/stream"}
	tests := []struct {
		name  string
		again db.MarkerRow
		reset []int64 // scenes that must end not generated
	}{
		{"unchanged", base, nil},
		{"same time, new paths", db.MarkerRow{ID: 10, SceneID: 1, UpdatedAt: updated0, StreamPath: "/other"}, nil},
		{"changed", db.MarkerRow{ID: 10, SceneID: 1, UpdatedAt: updated0.Add(time.Second)}, []int64{1}},
		{"moved", db.MarkerRow{ID: 10, SceneID: 2, UpdatedAt: updated0}, []int64{2}},
		{"new", db.MarkerRow{ID: 11, SceneID: 2, UpdatedAt: updated0}, []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			e := newEnv(t)
			addScenes(t, e, 1, 2)
			if err := e.s.UpsertMarkers(ctx, []db.MarkerRow{base}, false); err != nil {
				t.Fatal(err)
			}
			if err := e.s.RecordVerdicts(ctx, complete(1, 2), testKinds); err != nil {
				t.Fatal(err)
			}
			if err := e.s.UpsertMarkers(ctx, []db.MarkerRow{tt.again}, true); err != nil {
				t.Fatal(err)
			}
			for _, id := range []int64{1, 2} {
				want := !slices.Contains(tt.reset, id)
				if got := stateOf(t, e, id).Generated; got != want {
					t.Errorf("scene %d generated = %v, want %v", id, got, want)
				}
			}
		})
	}
}

func TestStore_DeleteMarkers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	addScenes(t, e, 1)
	if err := e.s.UpsertMarkers(ctx, []db.MarkerRow{{ID: 10, SceneID: 1}, {ID: 11, SceneID: 1}}, false); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteMarkers(ctx, []int64{10}); err != nil {
		t.Fatal(err)
	}
	if got := column[int64](t, e, `SELECT stash_id FROM markers ORDER BY 1`); !equalIDs(got, []int64{11}) {
		t.Fatalf("markers left = %v, want [11]", got)
	}
}

func TestStore_Cursor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	if c, err := e.s.Cursors(ctx); err != nil || len(c) != 0 {
		t.Fatalf("Cursors before SetCursor = %q, %v; want none", c, err)
	}
	for _, c := range []string{"2025-01-02T03:04:05Z", "2025-02-01T00:00:00Z"} {
		if err := e.s.SetCursor(ctx, "scenes", c); err != nil {
			t.Fatal(err)
		}
		got, err := e.s.Cursors(ctx)
		if err != nil || got["scenes"] != c {
			t.Fatalf("Cursors = %q, %v; want scenes %q", got, err, c)
		}
		if m, ok := got["markers"]; ok {
			t.Fatalf("Cursors has markers %q; only scenes was set", m)
		}
	}
}

// Scenes of the scheduling fixture, one per state.
const (
	sNew             = 1 // not generated, never checked: pending and to check
	sGenerated       = 2 // generated and checked
	sBackoff         = 3 // not generated, waiting for its next attempt
	sBackoffOver     = 4 // not generated, next attempt is due
	sQuarantined     = 5
	sChanged         = 6 // generated, changed since its check
	sIncomplete      = 7 // checked, not generated, never attempted
	sQuarantinedEdit = 8 // quarantined and changed since
)

// scheduling sets up one scene in each state, out of id order on purpose.
func scheduling(t *testing.T) env {
	t.Helper()
	e := newEnv(t)
	addScenes(t, e, 8, 7, 6, 5, 4, 3, 2, 1)
	e.exec(t, `UPDATE scenes SET needs_check = false WHERE stash_id <> ALL($1)`, []int64{sNew, sChanged, sQuarantinedEdit})
	e.exec(t, `UPDATE scenes SET generated = true WHERE stash_id = ANY($1)`, []int64{sGenerated, sChanged})
	e.exec(t, `UPDATE scenes SET attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE stash_id = $1`, sBackoff)
	e.exec(t, `UPDATE scenes SET attempts = 2, next_attempt_at = now() - interval '1 minute' WHERE stash_id = $1`, sBackoffOver)
	e.exec(t, `UPDATE scenes SET attempts = 5, next_attempt_at = now() + interval '1 day', quarantined_at = now()
		WHERE stash_id = ANY($1)`, []int64{sQuarantined, sQuarantinedEdit})
	return e
}

func TestStore_PendingCounts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := scheduling(t)
	c, err := e.s.PendingCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (db.Counts{Pending: 3, Backoff: 1, Quarantined: 2}); c != want {
		t.Fatalf("PendingCounts = %+v, want %+v", c, want)
	}
	all, err := e.s.CountAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ToCheck: the new and the changed scene; the quarantined one that
	// changed is left to check --full or a reset.
	if want := (db.Counts{Pending: 3, Backoff: 1, Quarantined: 2, Generated: 2, ToCheck: 2}); all != want {
		t.Fatalf("CountAll = %+v, want %+v", all, want)
	}
}

func TestStore_PendingScenes(t *testing.T) {
	t.Parallel()
	e := scheduling(t)
	tests := []struct {
		limit int
		want  []int64
	}{
		{1, []int64{sNew}},
		{2, []int64{sNew, sBackoffOver}},
		{100, []int64{sNew, sBackoffOver, sIncomplete}},
	}
	for _, tt := range tests {
		got, err := e.s.PendingScenes(t.Context(), tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(got, tt.want) {
			t.Errorf("PendingScenes(%d) = %v, want %v", tt.limit, got, tt.want)
		}
	}
}

// WaitingScenes are the pending scenes a check already found incomplete:
// not the new one, nor the changed one (both still to check).
func TestStore_WaitingScenes(t *testing.T) {
	t.Parallel()
	e := scheduling(t)
	e.exec(t, `UPDATE scenes SET generated = false WHERE stash_id = $1`, sChanged)
	for limit, want := range map[int][]int64{1: {sBackoffOver}, 100: {sBackoffOver, sIncomplete}} {
		got, err := e.s.WaitingScenes(t.Context(), limit)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(got, want) {
			t.Errorf("WaitingScenes(%d) = %v, want %v", limit, got, want)
		}
	}
}

// UnchangedScenes are the stored rows the sync would leave as they are.
func TestStore_UnchangedScenes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addScenes(t, e, 1, 2)
	rows := []db.SceneRow{sceneRow(1, updated0), sceneRow(2, updated0.Add(time.Second)), sceneRow(3, updated0)}
	got, err := e.s.UnchangedScenes(t.Context(), rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[1] {
		t.Fatalf("UnchangedScenes = %v, want only scene 1 (2 changed, 3 new)", got)
	}
}

// candidates pages through CheckCandidates like the check does.
func candidates(t *testing.T, e env, full bool, limit int) []db.SceneRef {
	t.Helper()
	var out []db.SceneRef
	var after int64
	for page := 0; ; page++ {
		refs, err := e.s.CheckCandidates(t.Context(), full, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) > limit {
			t.Fatalf("CheckCandidates(limit %d) returned %d", limit, len(refs))
		}
		if len(refs) == 0 {
			return out
		}
		if page > 20 {
			t.Fatal("CheckCandidates does not advance")
		}
		for _, r := range refs {
			if r.ID <= after {
				t.Fatalf("CheckCandidates(after %d) returned %d", after, r.ID)
			}
			after = r.ID
		}
		out = append(out, refs...)
	}
}

func TestStore_CheckCandidates(t *testing.T) {
	t.Parallel()
	e := scheduling(t)
	tests := []struct {
		full bool
		want []int64
	}{
		// Incremental: new or changed scenes only. A scene a check found
		// incomplete (sIncomplete, sBackoffOver) waits for its batch and is
		// verified after the job, not probed again every run.
		{false, []int64{sNew, sChanged}},
		{true, []int64{1, 2, 3, 4, 5, 6, 7, 8}},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 2, 3, 500} {
			refs := candidates(t, e, tt.full, limit)
			var ids []int64
			for _, r := range refs {
				ids = append(ids, r.ID)
				wantGen := r.ID == sGenerated || r.ID == sChanged
				wantQ := r.ID == sQuarantined || r.ID == sQuarantinedEdit
				if r.Generated != wantGen || r.Quarantined != wantQ || r.PreviewPath != "/scene/1/preview" || r.VTTPath != "/scene/1/vtt" {
					t.Errorf("full %v: ref %+v", tt.full, r)
				}
			}
			if !equalIDs(ids, tt.want) {
				t.Errorf("CheckCandidates(full %v, limit %d) = %v, want %v", tt.full, limit, ids, tt.want)
			}
		}
	}
}

func TestStore_RecordVerdicts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := scheduling(t)
	vs := []db.Verdict{
		{SceneID: sQuarantined, Complete: true},
		{SceneID: sBackoff, Complete: true},
		{SceneID: sChanged, Complete: false, Missing: []string{"preview", "sprite"}},
		{SceneID: sBackoffOver, Complete: false, Missing: []string{"vtt"}},
		{SceneID: sNew, Complete: false},
		{SceneID: 999, Complete: true}, // gone meanwhile: nothing to write
	}
	if err := e.s.RecordVerdicts(ctx, vs, testKinds); err != nil {
		t.Fatalf("RecordVerdicts: %v", err)
	}
	done := sceneState{Generated: true, Missing: []string{}}
	tests := []struct {
		id   int64
		want sceneState
	}{
		{sQuarantined, done},
		{sBackoff, done},
		{sChanged, sceneState{Missing: []string{"preview", "sprite"}}},
		{sBackoffOver, sceneState{Attempts: 2, Missing: []string{"vtt"}}},
		{sNew, sceneState{Missing: []string{}}},
		{sQuarantinedEdit, sceneState{NeedsCheck: true, Attempts: 5, Backoff: true, Quarantined: true, Missing: []string{}}},
	}
	for _, tt := range tests {
		if got := stateOf(t, e, tt.id); !got.equal(tt.want) {
			t.Errorf("scene %d = %+v, want %+v", tt.id, got, tt.want)
		}
	}
	gen := column[int64](t, e, `SELECT stash_id FROM scenes WHERE generated_at IS NOT NULL AND checked_at IS NOT NULL ORDER BY 1`)
	if want := []int64{sBackoff, sQuarantined}; !equalIDs(gen, want) {
		t.Errorf("scenes with generated_at = %v, want %v", gen, want)
	}
	if err := e.s.RecordVerdicts(ctx, nil, testKinds); err != nil {
		t.Errorf("RecordVerdicts(nil) = %v", err)
	}
}

func TestStore_RecordAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		maxAttempts int
		base        time.Duration
	}{
		{3, time.Hour},
		{1, time.Hour},
		{4, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max %d base %v", tt.maxAttempts, tt.base), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			e := newEnv(t)
			addScenes(t, e, 1, 2)
			if err := e.s.RecordVerdicts(ctx, complete(2), testKinds); err != nil {
				t.Fatal(err)
			}
			for n := 1; n <= tt.maxAttempts; n++ {
				got, err := e.s.RecordAttempts(ctx, []int64{1, 2, 999}, tt.maxAttempts, tt.base)
				if err != nil {
					t.Fatalf("RecordAttempts #%d: %v", n, err)
				}
				quarantined := n == tt.maxAttempts
				if len(got) != 1 || got[0].SceneID != 1 || got[0].Attempts != n || got[0].Quarantined != quarantined || got[0].NextAt == nil {
					t.Fatalf("RecordAttempts #%d = %+v; want scene 1 at %d attempts, quarantined %v", n, got, n, quarantined)
				}
				// base·2^(n-1) from the database's clock; the tolerance covers
				// the time between the two statements, not the arithmetic.
				want := tt.base * time.Duration(1<<(n-1))
				off := scalar[float64](t, e, `SELECT extract(epoch FROM next_attempt_at - now()) - $1::float8
					FROM scenes WHERE stash_id = 1`, want.Seconds())
				if off > 0.5 || off < -30 {
					t.Errorf("attempt %d: next attempt in base·2^%d %+.3fs; want base·2^%d = %v", n, n-1, off, n-1, want)
				}
				st := stateOf(t, e, 1)
				if st.Attempts != n || st.Quarantined != quarantined || st.Generated {
					t.Errorf("attempt %d: scene = %+v", n, st)
				}
				if n < tt.maxAttempts {
					if pend, _ := e.s.PendingScenes(ctx, 10); len(pend) != 0 {
						t.Errorf("attempt %d: scene still pending while backing off: %v", n, pend)
					}
				}
			}
			c, err := e.s.PendingCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := (db.Counts{Quarantined: 1}); c != want {
				t.Errorf("PendingCounts after %d attempts = %+v, want %+v", tt.maxAttempts, c, want)
			}
			if got := stateOf(t, e, 2); got.Attempts != 0 || !got.Generated {
				t.Errorf("generated scene was counted: %+v", got)
			}
		})
	}
}

func TestStore_RecordAttemptsNone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if got, err := e.s.RecordAttempts(t.Context(), nil, 3, time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("RecordAttempts(nil) = %v, %v", got, err)
	}
}

func TestStore_DeleteScenes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	addScenes(t, e, 1, 2, 3)
	markers := []db.MarkerRow{{ID: 10, SceneID: 1}, {ID: 11, SceneID: 1}, {ID: 20, SceneID: 2}, {ID: 30, SceneID: 3}}
	if err := e.s.UpsertMarkers(ctx, markers, false); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteScenes(ctx, []int64{1, 3, 999}); err != nil {
		t.Fatalf("DeleteScenes: %v", err)
	}
	if got := column[int64](t, e, `SELECT stash_id FROM scenes ORDER BY 1`); !equalIDs(got, []int64{2}) {
		t.Errorf("scenes left = %v, want [2]", got)
	}
	if got := column[int64](t, e, `SELECT stash_id FROM markers ORDER BY 1`); !equalIDs(got, []int64{20}) {
		t.Errorf("markers left = %v, want [20]", got)
	}
	if err := e.s.DeleteScenes(ctx, nil); err != nil {
		t.Errorf("DeleteScenes(nil) = %v", err)
	}
}

func TestStore_SweepScenes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	addScenes(t, e, 1, 2, 3)
	if err := e.s.UpsertMarkers(ctx, []db.MarkerRow{{ID: 10, SceneID: 1}, {ID: 30, SceneID: 3}}, false); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `UPDATE scenes SET synced_at = now() - interval '1 day' WHERE stash_id IN (1, 2)`)
	now, err := e.s.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.s.SweepScenes(ctx, now.Add(-time.Hour))
	if err != nil {
		t.Fatalf("SweepScenes: %v", err)
	}
	if n != 2 {
		t.Errorf("SweepScenes = %d, want 2", n)
	}
	if got := column[int64](t, e, `SELECT stash_id FROM scenes ORDER BY 1`); !equalIDs(got, []int64{3}) {
		t.Errorf("scenes left = %v, want [3]", got)
	}
	if got := column[int64](t, e, `SELECT stash_id FROM markers ORDER BY 1`); !equalIDs(got, []int64{30}) {
		t.Errorf("markers left = %v, want [30]", got)
	}
}

func TestStore_ResetScenes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := scheduling(t)
	got, err := e.s.ResetScenes(ctx, []int64{sQuarantined, sBackoff, 999})
	if err != nil {
		t.Fatalf("ResetScenes: %v", err)
	}
	slices.Sort(got)
	if want := []int64{sBackoff, sQuarantined}; !equalIDs(got, want) {
		t.Fatalf("ResetScenes = %v, want %v", got, want)
	}
	for _, id := range []int64{sQuarantined, sBackoff} {
		if st, want := stateOf(t, e, id), (sceneState{NeedsCheck: true, Missing: []string{}}); !st.equal(want) {
			t.Errorf("reset scene %d = %+v, want %+v", id, st, want)
		}
	}
	if st := stateOf(t, e, sQuarantinedEdit); !st.Quarantined {
		t.Errorf("ResetScenes touched scene %d: %+v", sQuarantinedEdit, st)
	}
	if got, err := e.s.ResetScenes(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("ResetScenes(nil) = %v, %v", got, err)
	}
}

// testKinds is what a check in these tests was made for.
var testKinds = []string{"cover", "phash", "preview", "sprite", "vtt"}
