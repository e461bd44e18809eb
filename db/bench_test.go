package db_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/db"
)

// benchLibrary is a migrated store holding a million scenes, one in a
// thousand not generated: a large library with a little pending work.
func benchLibrary(b *testing.B) env {
	b.Helper()
	e := newEnv(b)
	e.exec(b, `INSERT INTO scenes (stash_id, generated, needs_check, synced_at)
		SELECT g, g % 1000 <> 0, false, now() FROM generate_series(1, 1000000) AS g`)
	e.exec(b, `VACUUM ANALYZE scenes`)
	if n := scalar[int](b, e, `SELECT count(*) FROM scenes WHERE NOT generated`); n != 1000 {
		b.Fatalf("set up %d pending scenes, want 1000", n)
	}
	return e
}

// explain returns the plan of q run with the given SQL literals as its
// parameters, as PostgreSQL picks it with plan_cache_mode set to mode:
// force_custom_plan is what the first executions of a prepared statement
// get, force_generic_plan what pgx's cached statement may switch to.
func explain(b *testing.B, e env, mode, q string, literals ...string) string {
	b.Helper()
	e.exec(b, `SET plan_cache_mode = `+mode)
	defer e.exec(b, `RESET plan_cache_mode`)
	e.exec(b, `PREPARE explained AS `+q)
	defer e.exec(b, `DEALLOCATE explained`)
	execute := `EXPLAIN (ANALYZE off) EXECUTE explained`
	if len(literals) > 0 {
		execute += `(` + strings.Join(literals, ", ") + `)`
	}
	return strings.Join(column[string](b, e, execute), "\n")
}

// requireIndex logs the plans of q and fails unless both use index.
func requireIndex(b *testing.B, e env, name, index, q string, literals ...string) {
	b.Helper()
	custom := explain(b, e, "force_custom_plan", q, literals...)
	generic := explain(b, e, "force_generic_plan", q, literals...)
	b.Logf("EXPLAIN %s, custom plan:\n%s\ngeneric plan:\n%s", name, custom, generic)
	if !strings.Contains(custom, index) || !strings.Contains(generic, index) {
		b.Fatalf("%s does not use %s", name, index)
	}
}

func BenchmarkPendingScenes(b *testing.B) {
	e := benchLibrary(b)
	ctx := b.Context()
	requireIndex(b, e, "db.PendingSelect", "scenes_pending_idx", db.PendingSelect, "500")
	for b.Loop() {
		ids, err := e.s.PendingScenes(ctx, 500)
		if err != nil {
			b.Fatal(err)
		}
		if len(ids) != 500 {
			b.Fatalf("PendingScenes(500) = %d ids", len(ids))
		}
	}
}

func BenchmarkPendingCounts(b *testing.B) {
	e := benchLibrary(b)
	ctx := b.Context()
	for b.Loop() {
		c, err := e.s.PendingCounts(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if c.Pending != 1000 {
			b.Fatalf("PendingCounts = %+v", c)
		}
	}
}

// BenchmarkReverifyNothingDue is the re-verification query of a run where
// no check is old enough, over a million checked scenes: one probe of
// scenes_reverify_idx, never a count of the table.
//
//	go test ./db -run '^$' -bench 'BenchmarkReverifyNothingDue' -count 5 -v
func BenchmarkReverifyNothingDue(b *testing.B) {
	e := benchLibrary(b)
	e.exec(b, `UPDATE scenes SET checked_at = now(), checked_for = '{cover,phash,preview,sprite,vtt}'`)
	e.exec(b, `VACUUM ANALYZE scenes`)
	ctx := b.Context()
	requireIndex(b, e, "db.ReverifySelect", "scenes_reverify_idx", db.ReverifySelect, "'7 days'", "0.006")
	for b.Loop() {
		refs, err := e.s.DueForReverify(ctx, 7*24*time.Hour, 0.006)
		if err != nil {
			b.Fatal(err)
		}
		if len(refs) != 0 {
			b.Fatalf("due = %d", len(refs))
		}
	}
}
