package db

import (
	"context"
	"time"
)

// HeartbeatName is the one heartbeat row stashgen keeps.
const HeartbeatName = "stashgen"

// Heartbeat says which process is (or last was) alive, and doing what.
type Heartbeat struct {
	Host      string
	PID       int
	RunID     int64
	Phase     string
	BeatAt    time.Time
	StartedAt time.Time
}

// Beat upserts the heartbeat row with the database's clock.
func (s *Store) Beat(ctx context.Context, h Heartbeat) error {
	const q = `INSERT INTO heartbeats (name, host, pid, run_id, phase, beat_at, started_at)
		VALUES ($1, $2, $3, $4, $5, now(), $6)
		ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
			run_id = EXCLUDED.run_id, phase = EXCLUDED.phase, beat_at = now(), started_at = EXCLUDED.started_at`
	_, err := s.pool.Exec(ctx, q, HeartbeatName, h.Host, h.PID, h.RunID, h.Phase, h.StartedAt)
	return s.wrap("write heartbeat", err)
}

// LastHeartbeat reads the heartbeat row; ErrNotFound when none was written.
func (s *Store) LastHeartbeat(ctx context.Context) (Heartbeat, error) {
	const q = `SELECT host, pid, coalesce(run_id, 0), phase, beat_at, started_at FROM heartbeats WHERE name = $1`
	var h Heartbeat
	err := s.pool.QueryRow(ctx, q, HeartbeatName).Scan(&h.Host, &h.PID, &h.RunID, &h.Phase, &h.BeatAt, &h.StartedAt)
	return h, s.wrap("read heartbeat", err)
}
