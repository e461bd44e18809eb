package db_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stashgen/stashgen/db"
)

var (
	withWebp = []string{"cover", "phash", "preview", "webp", "sprite", "vtt"}
	noWebp   = []string{"cover", "phash", "preview", "sprite", "vtt"}
)

// checkedFor sets what scene id's last check covered, and when it was.
func checkedFor(t *testing.T, e env, id int64, generated bool, kinds []string, missing []string, ago time.Duration) {
	t.Helper()
	if missing == nil {
		missing = []string{}
	}
	e.exec(t, `UPDATE scenes SET generated = $2, needs_check = false, checked_for = $3, missing = $4,
		checked_at = now() - $5::interval WHERE stash_id = $1`, id, generated, kinds, missing, ago)
}

func refIDs(refs []db.SceneRef) []int64 {
	var ids []int64
	for _, r := range refs {
		ids = append(ids, r.ID)
	}
	return ids
}

func needsCheck(t *testing.T, e env) []int64 {
	t.Helper()
	return column[int64](t, e, `SELECT stash_id FROM scenes WHERE needs_check ORDER BY stash_id`)
}

func TestStore_WantedFirstAdoptsTheChecksMade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addScenes(t, e, 1, 2)
	e.exec(t, `UPDATE scenes SET generated = true, needs_check = false, checked_at = now() WHERE stash_id = 1`)
	n, err := e.s.Wanted(t.Context(), withWebp, nil, true)
	if err != nil || n != 0 {
		t.Fatalf("Wanted(first) = %d, %v", n, err)
	}
	if got := scalar[[]string](t, e, `SELECT checked_for FROM scenes WHERE stash_id = 1`); !slices.Equal(got, withWebp) {
		t.Fatalf("checked_for = %v, want %v", got, withWebp)
	}
	if got := scalar[bool](t, e, `SELECT checked_for IS NULL FROM scenes WHERE stash_id = 2`); !got {
		t.Fatal("a scene never checked got a checked_for")
	}
	if got := scalar[string](t, e, `SELECT cursor FROM sync_state WHERE name = 'wanted'`); got != "cover,phash,preview,webp,sprite,vtt" {
		t.Fatalf("wanted cursor = %q", got)
	}
}

func TestStore_WantedGrownChecksOnlyGeneratedScenesThatLackIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addScenes(t, e, 1, 2, 3, 4)
	checkedFor(t, e, 1, true, noWebp, nil, time.Hour)                 // lacks the new kind: check
	checkedFor(t, e, 2, true, withWebp, nil, time.Hour)               // covered it already
	checkedFor(t, e, 3, false, noWebp, []string{"sprite"}, time.Hour) // pending: its job verifies it
	checkedFor(t, e, 4, true, noWebp, nil, time.Hour)
	e.exec(t, `UPDATE scenes SET quarantined_at = now() WHERE stash_id = 4`) // generated wins: still checked

	n, err := e.s.Wanted(t.Context(), withWebp, nil, false)

	if err != nil || n != 2 {
		t.Fatalf("Wanted = %d, %v; want 2 scenes sent to a check", n, err)
	}
	if got := needsCheck(t, e); !slices.Equal(got, []int64{1, 4}) {
		t.Fatalf("needs_check = %v, want [1 4]", got)
	}
	// The dry run, which writes nothing, finds the same scenes, in pages.
	if got, err := e.s.StaleRefs(t.Context(), withWebp, 0, 100); err != nil || !equalIDs(refIDs(got), []int64{1, 4}) {
		t.Fatalf("StaleRefs = %v, %v; want scenes 1 and 4 (what a dry run reports)", refIDs(got), err)
	}
	if got, err := e.s.StaleRefs(t.Context(), withWebp, 1, 1); err != nil || !equalIDs(refIDs(got), []int64{4}) {
		t.Fatalf("StaleRefs after 1, limit 1 = %v, %v; want [4]", refIDs(got), err)
	}
}

func TestStore_WantedShrunkMakesNothingPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addScenes(t, e, 1, 2, 3)
	checkedFor(t, e, 1, true, withWebp, nil, time.Hour)
	checkedFor(t, e, 2, false, withWebp, []string{"webp"}, time.Hour)   // lacked only what is dropped
	checkedFor(t, e, 3, false, withWebp, []string{"sprite"}, time.Hour) // lacks something still wanted

	if _, err := e.s.Wanted(t.Context(), noWebp, []string{"webp"}, false); err != nil {
		t.Fatal(err)
	}

	if got := needsCheck(t, e); !slices.Equal(got, []int64{2}) {
		t.Fatalf("needs_check = %v, want [2]: only the scene pending for the dropped kind", got)
	}
	if n := scalar[int](t, e, `SELECT count(*) FROM scenes WHERE NOT generated`); n != 2 {
		t.Fatalf("not generated = %d: turning a kind off changed the flag", n)
	}
}

func TestStore_DueForReverifyTakesAShareOldestFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := make([]int64, 10)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	addScenes(t, e, ids...)
	for _, id := range ids {
		checkedFor(t, e, id, true, noWebp, nil, time.Duration(id)*24*time.Hour) // scene 10 the oldest
	}
	e.exec(t, `UPDATE scenes SET quarantined_at = now() WHERE stash_id = 9`)

	tests := []struct {
		age   time.Duration
		share float64
		want  []int64
	}{
		{7*24*time.Hour - time.Minute, 0.25, []int64{10, 8, 7}}, // ceil(10 × 0.25) = 3 of the 3 due, 9 quarantined
		{2*24*time.Hour - time.Minute, 0.25, []int64{10, 8, 7}},
		{2*24*time.Hour - time.Minute, 0.01, []int64{10}}, // at least one
		{30 * 24 * time.Hour, 1, nil},                     // nothing due
		{math.MaxInt64, 1, nil},                           // reverify_after beyond a duration: never
	}
	for _, tt := range tests {
		refs, err := e.s.DueForReverify(t.Context(), tt.age, tt.share)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range refs {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("DueForReverify(%s, %v) = %v, want %v", tt.age, tt.share, got, tt.want)
		}
	}
	a, err := e.s.CheckAges(t.Context(), 7*24*time.Hour-time.Minute)
	if err != nil || a.Due != 3 || a.Oldest == nil || time.Since(*a.Oldest) < 10*24*time.Hour-time.Minute {
		t.Fatalf("CheckAges = %+v, %v; want 3 due, the oldest 10 days ago", a, err)
	}
}

func TestStore_MissingCountsAndCursors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addScenes(t, e, 1, 2, 3)
	checkedFor(t, e, 1, false, noWebp, []string{"preview"}, 0)
	checkedFor(t, e, 2, false, noWebp, []string{"sprite", "vtt"}, 0)
	checkedFor(t, e, 3, false, noWebp, []string{"preview"}, 0)
	got, err := e.s.MissingCounts(t.Context())
	if err != nil || got["preview"] != 2 || got["sprite"] != 1 || got["vtt"] != 1 || len(got) != 3 {
		t.Fatalf("MissingCounts = %v, %v", got, err)
	}
	for name, v := range map[string]string{"scenes": "2024-01-01T00:00:00Z", "markers": "x"} {
		if err := e.s.SetCursor(t.Context(), name, v); err != nil {
			t.Fatal(err)
		}
	}
	c, err := e.s.Cursors(t.Context())
	if err != nil || len(c) != 2 || c["scenes"] != "2024-01-01T00:00:00Z" || c["markers"] != "x" {
		t.Fatalf("Cursors = %v, %v", c, err)
	}
}
