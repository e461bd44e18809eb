package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrateLockKey serialises migrations across processes and hosts.
const migrateLockKey = 0x5354_4147_454E_0001 // "STAGEN" 1

// migrations are applied in order; entry i takes the schema to version i+1.
// Never edit an entry that has shipped: append a new one.
var migrations = []string{
	// 1: the contract documented in the README.
	`
CREATE TABLE runs (
	id                 bigserial PRIMARY KEY,
	command            text        NOT NULL DEFAULT 'once',
	started_at         timestamptz NOT NULL DEFAULT now(),
	finished_at        timestamptz,
	host               text        NOT NULL,
	pid                integer     NOT NULL,
	version            text        NOT NULL,
	outcome            text        NOT NULL DEFAULT 'running' CHECK (outcome IN (
		'running', 'generated', 'nothing_to_do', 'checked', 'adopted', 'failed', 'error',
		'skipped_locked', 'skipped_busy', 'cancelled_for_scan', 'interrupted', 'abandoned')),
	exit_code          integer,
	pending_scenes     integer,
	backoff_scenes     integer,
	quarantined_scenes integer,
	scenes_generated   integer,
	stash_job_id       text,
	error              text
);
CREATE INDEX runs_started_at_idx ON runs (started_at DESC);
CREATE INDEX runs_running_idx ON runs (id) WHERE outcome = 'running';

CREATE TABLE heartbeats (
	name       text PRIMARY KEY,
	host       text        NOT NULL,
	pid        integer     NOT NULL,
	run_id     bigint,
	phase      text        NOT NULL,
	beat_at    timestamptz NOT NULL,
	started_at timestamptz NOT NULL
);

CREATE TABLE jobs (
	id           bigserial PRIMARY KEY,
	type         text        NOT NULL,
	status       text        NOT NULL CHECK (status IN (
		'pending', 'running', 'cancelling', 'completed', 'failed', 'cancelled')),
	stash_job_id text,
	scene_ids    bigint[]    NOT NULL DEFAULT '{}',
	progress     double precision,
	error        text,
	created_by   text        NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	started_at   timestamptz,
	finished_at  timestamptz,
	run_id       bigint REFERENCES runs (id) ON DELETE SET NULL,
	-- Stash's addTime for stash_job_id: job ids restart when Stash does,
	-- so adoption matches on this too.
	stash_added_at timestamptz
);
CREATE INDEX jobs_active_idx ON jobs (id) WHERE status IN ('pending', 'running', 'cancelling');

CREATE TABLE job_actions (
	id     bigserial PRIMARY KEY,
	job_id bigint      NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	action text        NOT NULL CHECK (action IN ('LAUNCHED', 'CANCELLED', 'FINISHED', 'FAILED', 'ADOPTED')),
	reason text,
	at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_actions_job_idx ON job_actions (job_id);

CREATE TABLE scenes (
	stash_id           bigint PRIMARY KEY,
	generated          boolean     NOT NULL DEFAULT false,
	needs_check        boolean     NOT NULL DEFAULT true,
	stash_created_at   timestamptz,
	stash_updated_at   timestamptz,
	preview_path       text,
	webp_path          text,
	sprite_path        text,
	vtt_path           text,
	markers_changed_at timestamptz,
	first_seen_at      timestamptz NOT NULL DEFAULT now(),
	synced_at          timestamptz NOT NULL DEFAULT now(),
	checked_at         timestamptz,
	missing            text[]      NOT NULL DEFAULT '{}',
	attempts           integer     NOT NULL DEFAULT 0,
	next_attempt_at    timestamptz,
	quarantined_at     timestamptz,
	generated_at       timestamptz
);
-- Pending work is a small part of a large library: these partial indexes
-- keep the pending and incremental-check queries cheap at a million rows.
CREATE INDEX scenes_pending_idx ON scenes (stash_id) WHERE NOT generated;
CREATE INDEX scenes_needs_check_idx ON scenes (stash_id) WHERE needs_check;

CREATE TABLE markers (
	stash_id         bigint PRIMARY KEY,
	scene_id         bigint NOT NULL,
	stash_updated_at timestamptz,
	stream_path      text,
	preview_path     text,
	screenshot_path  text
);
CREATE INDEX markers_scene_idx ON markers (scene_id);

CREATE TABLE sync_state (
	name       text PRIMARY KEY,
	cursor     text        NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
`,
	// 2: what each scene was verified for, and the oldest checks first.
	`
-- The resource kinds the scene's last check covered; NULL for checks made
-- before this column existed (the first run after the upgrade fills it in
-- with the kinds wanted then).
ALTER TABLE scenes ADD COLUMN checked_for text[];
-- Rolling re-verification takes generated scenes oldest check first.
CREATE INDEX scenes_reverify_idx ON scenes (checked_at) WHERE generated AND quarantined_at IS NULL;
`,
	// The fence's outcomes (generate.window, min_free_space): the CHECK on
	// runs.outcome is replaced by the same list plus four. PostgreSQL named
	// migration 1's inline CHECK runs_outcome_check; the new one keeps the
	// name, so a later list change can do the same.
	`
ALTER TABLE runs DROP CONSTRAINT runs_outcome_check;
ALTER TABLE runs ADD CONSTRAINT runs_outcome_check CHECK (outcome IN (
	'running', 'generated', 'nothing_to_do', 'checked', 'adopted', 'failed', 'error',
	'skipped_locked', 'skipped_busy', 'cancelled_for_scan', 'interrupted', 'abandoned',
	'skipped_window', 'cancelled_for_window', 'skipped_low_space', 'cancelled_for_low_space'));
`,
}

// Version is the schema version this build expects.
func Version() int { return len(migrations) }

// Migrate creates the schema if needed and applies every pending migration,
// each in its own transaction together with its version row, under an
// advisory lock so that racing processes apply each one exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	// The usual case, an up-to-date schema, costs one statement; only a
	// schema that is behind takes the locked path (which checks again).
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err == nil && v == len(migrations) {
		return nil
	}
	var pe *pgconn.PgError
	if err != nil && !(errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000")) {
		return s.wrap("read schema version", err) // not "no such table/schema"
	}
	for {
		done, err := s.migrateOne(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLockKey)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(migrations) {
			return fmt.Errorf("schema %s is at version %d, newer than this stashgen (%d): upgrade stashgen", s.schema, current, len(migrations))
		}
		if current == len(migrations) {
			done = true
			return nil
		}
		if _, err := tx.Exec(ctx, migrations[current]); err != nil {
			return fmt.Errorf("apply migration %d: %w", current+1, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, current+1)
		return err
	})
	return done, s.wrap("migrate schema "+s.schema, err)
}

// SchemaVersion reports the applied version, 0 when the schema or its
// tables do not exist. It writes nothing (dry runs use it).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.schema+".schema_migrations").Scan(&exists)
	if err != nil || !exists {
		return 0, s.wrap("read schema version", err)
	}
	var v int
	err = s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, s.wrap("read schema version", err)
}
