package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SceneRow is what sync writes for one Stash scene. Paths are stored
// without host or query (never the API key).
type SceneRow struct {
	ID          int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	PreviewPath string
	WebpPath    string
	SpritePath  string
	VTTPath     string
}

// UpsertScenes writes one page of synced scenes in a single statement. New
// scenes arrive with generated=false and needs_check=true. A scene whose
// updated_at moved is re-checked, but its generated flag is left alone:
// editing a title or a cover does not make previews disappear.
func (s *Store) UpsertScenes(ctx context.Context, rows []SceneRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	ids := make([]int64, n)
	created := make([]time.Time, n)
	updated := make([]time.Time, n)
	preview, webp, sprite, vtt := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		ids[i], created[i], updated[i] = r.ID, r.CreatedAt, r.UpdatedAt
		preview[i], webp[i], sprite[i], vtt[i] = r.PreviewPath, r.WebpPath, r.SpritePath, r.VTTPath
	}
	const q = `INSERT INTO scenes AS s (stash_id, stash_created_at, stash_updated_at,
			preview_path, webp_path, sprite_path, vtt_path, synced_at)
		SELECT id, c, u, p, w, sp, v, now()
		FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[])
			AS t(id, c, u, p, w, sp, v)
		ON CONFLICT (stash_id) DO UPDATE SET
			stash_created_at = EXCLUDED.stash_created_at,
			stash_updated_at = EXCLUDED.stash_updated_at,
			preview_path = EXCLUDED.preview_path, webp_path = EXCLUDED.webp_path,
			sprite_path = EXCLUDED.sprite_path, vtt_path = EXCLUDED.vtt_path,
			synced_at = now(),
			needs_check = s.needs_check OR s.stash_updated_at IS DISTINCT FROM EXCLUDED.stash_updated_at`
	_, err := s.pool.Exec(ctx, q, ids, created, updated, preview, webp, sprite, vtt)
	return s.wrap("store scenes", err)
}

// UnchangedScenes returns the ids of rows stored with the same Stash
// updated_at: those UpsertScenes would leave as they are (a re-read of
// the cursor's last second). Read only: a dry run asks it.
func (s *Store) UnchangedScenes(ctx context.Context, rows []SceneRow) (map[int64]bool, error) {
	ids, updated := make([]int64, len(rows)), make([]time.Time, len(rows))
	for i, r := range rows {
		ids[i], updated[i] = r.ID, r.UpdatedAt
	}
	same, err := s.ids(ctx, "compare scenes with the stored ones", `SELECT s.stash_id
		FROM unnest($1::bigint[], $2::timestamptz[]) AS t(id, u) JOIN scenes s ON s.stash_id = t.id
		WHERE s.stash_updated_at IS NOT DISTINCT FROM t.u`, ids, updated)
	out := make(map[int64]bool, len(same))
	for _, id := range same {
		out[id] = true
	}
	return out, err
}

// Ref is the row as a scene to probe.
func (r SceneRow) Ref() SceneRef {
	return SceneRef{ID: r.ID, PreviewPath: r.PreviewPath, WebpPath: r.WebpPath, SpritePath: r.SpritePath, VTTPath: r.VTTPath}
}

// MarkerRow is what sync writes for one Stash marker.
type MarkerRow struct {
	ID             int64
	SceneID        int64
	UpdatedAt      time.Time
	StreamPath     string
	PreviewPath    string
	ScreenshotPath string
}

// Ref is the row as a marker to probe.
func (r MarkerRow) Ref() MarkerRef {
	return MarkerRef{ID: r.ID, SceneID: r.SceneID, StreamPath: r.StreamPath, PreviewPath: r.PreviewPath, ScreenshotPath: r.ScreenshotPath}
}

// UpsertMarkers writes one page of synced markers. When resetScenes is
// true (every pass after the first), the scene of a marker that is new,
// moved to another scene, or changed (its updated_at differs from the one
// stored) gets generated=false: it needs its own previews. A marker read
// again unchanged (the sync re-reads its last second on purpose) resets
// nothing, and a deleted marker is no reason to regenerate either.
func (s *Store) UpsertMarkers(ctx context.Context, rows []MarkerRow, resetScenes bool) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	ids, scenes := make([]int64, n), make([]int64, n)
	updated := make([]time.Time, n)
	stream, preview, shot := make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		ids[i], scenes[i], updated[i] = r.ID, r.SceneID, r.UpdatedAt
		stream[i], preview[i], shot[i] = r.StreamPath, r.PreviewPath, r.ScreenshotPath
	}
	// One statement: every part sees the markers as they were before it,
	// so "changed" compares with the stored rows, not the new ones.
	const q = `WITH incoming AS (
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
				AS t(id, scene_id, updated_at, stream, preview, shot)),
		changed AS (
			SELECT i.scene_id FROM incoming i LEFT JOIN markers m ON m.stash_id = i.id
			WHERE $7 AND (m.stash_id IS NULL OR m.scene_id <> i.scene_id
				OR m.stash_updated_at IS DISTINCT FROM i.updated_at)),
		written AS (
			INSERT INTO markers (stash_id, scene_id, stash_updated_at, stream_path, preview_path, screenshot_path)
			SELECT id, scene_id, updated_at, stream, preview, shot FROM incoming
			ON CONFLICT (stash_id) DO UPDATE SET scene_id = EXCLUDED.scene_id,
				stash_updated_at = EXCLUDED.stash_updated_at, stream_path = EXCLUDED.stream_path,
				preview_path = EXCLUDED.preview_path, screenshot_path = EXCLUDED.screenshot_path)
		UPDATE scenes SET generated = false, needs_check = true, markers_changed_at = now()
		WHERE stash_id IN (SELECT scene_id FROM changed)`
	_, err := s.pool.Exec(ctx, q, ids, scenes, updated, stream, preview, shot, resetScenes)
	return s.wrap("store markers", err)
}

// MaxSceneID is the highest scene id stored, 0 when there is none.
func (s *Store) MaxSceneID(ctx context.Context) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(stash_id), 0) FROM scenes`).Scan(&id)
	return id, s.wrap("read highest scene id", err)
}

// Cursors returns every sync cursor by name (absent: the first full pass
// has not completed), in one read.
func (s *Store) Cursors(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, cursor FROM sync_state`)
	if err != nil {
		return nil, s.wrap("read sync cursors", err)
	}
	out := map[string]string{}
	var name, cursor string
	_, err = pgx.ForEachRow(rows, []any{&name, &cursor}, func() error {
		out[name] = cursor
		return nil
	})
	return out, s.wrap("read sync cursors", err)
}

// SetCursor stores a sync cursor.
func (s *Store) SetCursor(ctx context.Context, name, cursor string) error {
	const q = `INSERT INTO sync_state (name, cursor, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()`
	_, err := s.pool.Exec(ctx, q, name, cursor)
	return s.wrap("store sync cursor "+name, err)
}

// Counts splits the scenes that are not generated.
type Counts struct {
	Pending     int // eligible for generation now
	Backoff     int // failed before; waiting for next_attempt_at
	Quarantined int // failed max_attempts times; never sent again until reset
	Generated   int // only filled by CountAll
	ToCheck     int // new, changed or reset scenes the next check probes; only filled by CountAll
}

// PendingCounts counts the not-generated scenes by state. It reads only
// the partial index of not-generated scenes.
func (s *Store) PendingCounts(ctx context.Context) (Counts, error) {
	const q = `SELECT
			count(*) FILTER (WHERE quarantined_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= now())),
			count(*) FILTER (WHERE quarantined_at IS NULL AND next_attempt_at > now()),
			count(*) FILTER (WHERE quarantined_at IS NOT NULL)
		FROM scenes WHERE NOT generated`
	var c Counts
	err := s.pool.QueryRow(ctx, q).Scan(&c.Pending, &c.Backoff, &c.Quarantined)
	return c, s.wrap("count pending scenes", err)
}

// CountAll is PendingCounts plus the generated scenes (a full count; for
// status and metrics, not for the hot path).
func (s *Store) CountAll(ctx context.Context) (Counts, error) {
	c, err := s.PendingCounts(ctx)
	if err != nil {
		return c, err
	}
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE generated),
		count(*) FILTER (WHERE needs_check AND quarantined_at IS NULL) FROM scenes`).Scan(&c.Generated, &c.ToCheck)
	return c, s.wrap("count generated scenes", err)
}

// PendingSelect is the pending-scenes query, exported so a benchmark can
// EXPLAIN it.
const PendingSelect = `SELECT stash_id FROM scenes
	WHERE NOT generated AND quarantined_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= now())
	ORDER BY stash_id LIMIT $1`

// PendingScenes returns up to limit eligible scene ids, oldest first.
func (s *Store) PendingScenes(ctx context.Context, limit int) ([]int64, error) {
	return s.ids(ctx, "list pending scenes", PendingSelect, limit)
}

// WaitingScenes returns up to limit eligible scene ids that a check has
// already found incomplete (not to be checked again before their batch),
// oldest first: the part of the next batch a dry run knows without
// probing.
func (s *Store) WaitingScenes(ctx context.Context, limit int) ([]int64, error) {
	return s.ids(ctx, "list scenes waiting for their batch", `SELECT stash_id FROM scenes
		WHERE NOT generated AND NOT needs_check AND quarantined_at IS NULL
			AND (next_attempt_at IS NULL OR next_attempt_at <= now())
		ORDER BY stash_id LIMIT $1`, limit)
}

func (s *Store) ids(ctx context.Context, what, query string, args ...any) ([]int64, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(what, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, s.wrap(what, err)
}

// SceneRef is a scene to probe.
type SceneRef struct {
	ID          int64
	PreviewPath string
	WebpPath    string
	SpritePath  string
	VTTPath     string
	Generated   bool
	Quarantined bool
}

// CheckCandidates returns up to limit scenes with id > afterID to probe,
// in id order. Incremental: scenes never checked, changed since, reset, or
// whose wanted resources grew (the needs_check index), unless quarantined.
// A scene a check already found incomplete is not among them: it waits,
// pending, for its batch, and is verified after the batch's job. Full:
// every scene.
func (s *Store) CheckCandidates(ctx context.Context, full bool, afterID int64, limit int) ([]SceneRef, error) {
	var q string
	if full {
		q = `SELECT ` + refColumns + ` FROM scenes WHERE stash_id > $1 ORDER BY stash_id LIMIT $2`
	} else {
		q = `SELECT ` + refColumns + ` FROM scenes WHERE needs_check AND quarantined_at IS NULL AND stash_id > $1
			ORDER BY stash_id LIMIT $2`
	}
	rows, err := s.pool.Query(ctx, q, afterID, limit)
	if err != nil {
		return nil, s.wrap("list scenes to check", err)
	}
	out, err := pgx.CollectRows(rows, scanRef)
	return out, s.wrap("list scenes to check", err)
}

// refColumns are the columns scanRef reads.
const refColumns = `stash_id, coalesce(preview_path, ''), coalesce(webp_path, ''), coalesce(sprite_path, ''),
	coalesce(vtt_path, ''), generated, quarantined_at IS NOT NULL`

func scanRef(row pgx.CollectableRow) (SceneRef, error) {
	var r SceneRef
	err := row.Scan(&r.ID, &r.PreviewPath, &r.WebpPath, &r.SpritePath, &r.VTTPath, &r.Generated, &r.Quarantined)
	return r, err
}

// ScenesByID returns the refs of the given scenes (those that exist).
func (s *Store) ScenesByID(ctx context.Context, ids []int64) ([]SceneRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+refColumns+` FROM scenes WHERE stash_id = ANY($1) ORDER BY stash_id`, ids)
	if err != nil {
		return nil, s.wrap("read scenes", err)
	}
	out, err := pgx.CollectRows(rows, scanRef)
	return out, s.wrap("read scenes", err)
}

// MarkerRef is a marker to probe.
type MarkerRef struct {
	ID             int64
	SceneID        int64
	StreamPath     string
	PreviewPath    string
	ScreenshotPath string
}

// MarkersOf returns the markers of the given scenes.
func (s *Store) MarkersOf(ctx context.Context, sceneIDs []int64) ([]MarkerRef, error) {
	const q = `SELECT stash_id, scene_id, coalesce(stream_path, ''), coalesce(preview_path, ''), coalesce(screenshot_path, '')
		FROM markers WHERE scene_id = ANY($1) ORDER BY stash_id`
	rows, err := s.pool.Query(ctx, q, sceneIDs)
	if err != nil {
		return nil, s.wrap("read markers", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (MarkerRef, error) {
		var m MarkerRef
		return m, row.Scan(&m.ID, &m.SceneID, &m.StreamPath, &m.PreviewPath, &m.ScreenshotPath)
	})
	return out, s.wrap("read markers", err)
}

// Verdict is what a check found for one scene.
type Verdict struct {
	SceneID  int64
	Complete bool     // every enabled, probeable resource exists
	Missing  []string // what is missing when not complete
}

// RecordVerdicts stores check results in one statement. A complete scene
// becomes generated (and leaves backoff and quarantine: it is done); an
// incomplete one becomes not generated, keeping its attempt history.
// checkedFor is the set of resource kinds the check was made for.
func (s *Store) RecordVerdicts(ctx context.Context, vs []Verdict, checkedFor []string) error {
	if len(vs) == 0 {
		return nil
	}
	ids := make([]int64, len(vs))
	complete := make([]bool, len(vs))
	missing := make([]string, len(vs))
	for i, v := range vs {
		ids[i], complete[i] = v.SceneID, v.Complete
		missing[i] = joinMissing(v.Missing)
	}
	const q = `UPDATE scenes AS s SET
			generated = t.complete,
			needs_check = false,
			checked_at = now(),
			missing = CASE WHEN t.missing = '' THEN '{}'::text[] ELSE string_to_array(t.missing, ',') END,
			checked_for = $4,
			generated_at = CASE WHEN t.complete AND NOT s.generated THEN now() ELSE s.generated_at END,
			attempts = CASE WHEN t.complete THEN 0 ELSE s.attempts END,
			next_attempt_at = CASE WHEN t.complete THEN NULL ELSE s.next_attempt_at END,
			quarantined_at = CASE WHEN t.complete THEN NULL ELSE s.quarantined_at END,
			last_error = CASE WHEN t.complete THEN NULL ELSE s.last_error END,
			last_error_at = CASE WHEN t.complete THEN NULL ELSE s.last_error_at END
		FROM unnest($1::bigint[], $2::bool[], $3::text[]) AS t(id, complete, missing)
		WHERE s.stash_id = t.id`
	_, err := s.pool.Exec(ctx, q, ids, complete, missing, checkedFor)
	return s.wrap("store check results", err)
}

func joinMissing(m []string) string {
	out := ""
	for i, r := range m {
		if i > 0 {
			out += ","
		}
		out += r
	}
	return out
}

// Attempt outcome of RecordAttempts, per scene.
type Attempt struct {
	SceneID     int64
	Attempts    int
	Quarantined bool
	NextAt      *time.Time
}

// RecordAttempts counts one failed generation attempt for each scene:
// attempts+1, next attempt after base·2^(attempts-1), quarantine once
// attempts reaches maxAttempts.
func (s *Store) RecordAttempts(ctx context.Context, ids []int64, maxAttempts int, base time.Duration) ([]Attempt, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	const q = `UPDATE scenes SET
			attempts = attempts + 1,
			next_attempt_at = now() + $3::interval * power(2, least(attempts, 20)),
			quarantined_at = CASE WHEN attempts + 1 >= $2 THEN now() ELSE NULL END
		WHERE stash_id = ANY($1) AND NOT generated
		RETURNING stash_id, attempts, quarantined_at IS NOT NULL, next_attempt_at`
	rows, err := s.pool.Query(ctx, q, ids, maxAttempts, base)
	if err != nil {
		return nil, s.wrap("record generation attempts", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		return a, row.Scan(&a.SceneID, &a.Attempts, &a.Quarantined, &a.NextAt)
	})
	return out, s.wrap("record generation attempts", err)
}

// DeleteScenes forgets scenes Stash no longer has, and their markers.
func (s *Store) DeleteScenes(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM markers WHERE scene_id = ANY($1)`, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM scenes WHERE stash_id = ANY($1)`, ids)
		return err
	})
	return s.wrap("delete scenes", err)
}

// DeleteMarkers forgets markers Stash no longer has.
func (s *Store) DeleteMarkers(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM markers WHERE stash_id = ANY($1)`, ids)
	return s.wrap("delete markers", err)
}

// SweepScenes deletes scenes (and their markers) not seen by a full sync
// that started at since; it returns how many went.
func (s *Store) SweepScenes(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM markers m USING scenes s
			WHERE m.scene_id = s.stash_id AND s.synced_at < $1`, since); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM scenes WHERE synced_at < $1`, since)
		n = tag.RowsAffected()
		return err
	})
	return n, s.wrap("remove deleted scenes", err)
}

// ResetScenes clears attempts, backoff and quarantine so the scenes are
// checked and, if still incomplete, generated again. It returns the ids
// that exist.
func (s *Store) ResetScenes(ctx context.Context, ids []int64) ([]int64, error) {
	const q = `UPDATE scenes SET attempts = 0, next_attempt_at = NULL, quarantined_at = NULL, needs_check = true
		WHERE stash_id = ANY($1) RETURNING stash_id`
	rows, err := s.pool.Query(ctx, q, ids)
	if err != nil {
		return nil, s.wrap("reset scenes", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return out, s.wrap("reset scenes", err)
}

// Analyze refreshes the planner's statistics after a large sync, so the
// first runs after it do not plan against an empty table.
func (s *Store) Analyze(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `ANALYZE scenes, markers`)
	return s.wrap("analyze scenes", err)
}

// Now is the database's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&t)
	return t, s.wrap("read database clock", err)
}
