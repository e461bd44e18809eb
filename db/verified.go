package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The queries that keep "generated" true over time: what each scene was
// verified for (scenes.checked_for) and how old its last check is.

// WantedCursor is the sync_state row that holds the resource kinds the
// last run wanted, comma-separated.
const WantedCursor = "wanted"

// Wanted records a change of the wanted resource kinds, in one
// transaction with the cursor that remembers them:
//   - first (no kinds recorded yet: a new database, or the first run after
//     the upgrade that added checked_for): the checks already made are
//     taken as made for wanted;
//   - otherwise a generated scene whose last check did not cover a kind
//     wanted now needs a check;
//   - a not-generated scene that lacked a kind no longer wanted
//     (removed) needs a check too: it may be complete now. Turning a
//     resource off never makes a scene pending.
//
// It returns how many scenes now need a check.
func (s *Store) Wanted(ctx context.Context, wanted, removed []string, first bool) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if first {
			if _, err := tx.Exec(ctx, `UPDATE scenes SET checked_for = $1 WHERE checked_for IS NULL AND checked_at IS NOT NULL`, wanted); err != nil {
				return err
			}
		} else {
			tag, err := tx.Exec(ctx, `UPDATE scenes SET needs_check = true
				WHERE generated AND NOT needs_check AND NOT (coalesce(checked_for, '{}') @> $1)`, wanted)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
		}
		if len(removed) > 0 {
			tag, err := tx.Exec(ctx, `UPDATE scenes SET needs_check = true
				WHERE NOT generated AND NOT needs_check AND quarantined_at IS NULL AND missing && $1`, removed)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		_, err := tx.Exec(ctx, `INSERT INTO sync_state (name, cursor, updated_at) VALUES ($1, $2, now())
			ON CONFLICT (name) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()`, WantedCursor, joinMissing(wanted))
		return err
	})
	return n, s.wrap("record the wanted resources", err)
}

// StaleRefs lists, in id order after afterID, the generated scenes whose
// last check did not cover every kind in wanted (what Wanted would send to
// a check), for the dry run, which writes nothing.
func (s *Store) StaleRefs(ctx context.Context, wanted []string, afterID int64, limit int) ([]SceneRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+refColumns+` FROM scenes
		WHERE generated AND checked_for IS NOT NULL AND NOT (checked_for @> $1) AND stash_id > $2
		ORDER BY stash_id LIMIT $3`, wanted, afterID, limit)
	if err != nil {
		return nil, s.wrap("list scenes checked for fewer resources", err)
	}
	out, err := pgx.CollectRows(rows, scanRef)
	return out, s.wrap("list scenes checked for fewer resources", err)
}

// ReverifySelect picks the due scenes, oldest check first: generated, not
// quarantined, last checked more than $1 ago by the database's clock (which
// stamped checked_at). At most ceil(N × $2) of them, N being the scenes in
// the table; the table is counted only when one is due, so a run where
// nothing is due reads one entry of scenes_reverify_idx (its oldest). Exported so a
// benchmark can EXPLAIN it.
const ReverifySelect = `SELECT ` + refColumns + ` FROM scenes
	WHERE generated AND quarantined_at IS NULL AND checked_at < now() - $1::interval
	ORDER BY checked_at, stash_id
	LIMIT CASE WHEN (SELECT min(checked_at) FROM scenes WHERE generated AND quarantined_at IS NULL) < now() - $1::interval
		THEN (SELECT ceil(count(*) * $2::float8)::bigint FROM scenes) ELSE 0 END`

// DueForReverify returns the scenes whose last check is older than age,
// oldest first, at most share × (scenes in the table), rounded up: one
// run's part of the rolling re-verification.
func (s *Store) DueForReverify(ctx context.Context, age time.Duration, share float64) ([]SceneRef, error) {
	rows, err := s.pool.Query(ctx, ReverifySelect, age, share)
	if err != nil {
		return nil, s.wrap("list scenes due for re-verification", err)
	}
	out, err := pgx.CollectRows(rows, scanRef)
	return out, s.wrap("list scenes due for re-verification", err)
}

// CheckAge is how old the checks of generated scenes are.
type CheckAge struct {
	Oldest *time.Time // the oldest check of a generated scene; nil when none
	Due    int        // generated scenes checked longer ago than the age asked about
}

// CheckAges reads how old the generated scenes' checks are, for status:
// due are those checked more than age ago.
func (s *Store) CheckAges(ctx context.Context, age time.Duration) (CheckAge, error) {
	var a CheckAge
	err := s.pool.QueryRow(ctx, `SELECT min(checked_at), count(*) FILTER (WHERE checked_at < now() - $1::interval)
		FROM scenes WHERE generated AND quarantined_at IS NULL`, age).Scan(&a.Oldest, &a.Due)
	return a, s.wrap("read check ages", err)
}

// MissingCounts counts, over the not-generated scenes, how often each
// resource kind was found missing: what the checks find missing most.
func (s *Store) MissingCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT r, count(*) FROM scenes, unnest(missing) AS r WHERE NOT generated GROUP BY r`)
	if err != nil {
		return nil, s.wrap("count missing resources", err)
	}
	out := map[string]int{}
	var r string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&r, &n}, func() error {
		out[r] = n
		return nil
	})
	return out, s.wrap("count missing resources", err)
}
