package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// runLockKey is the advisory lock two stashgen hosts sharing one database
// contend for. Fixed, so every version agrees on it.
const runLockKey = 0x5354_4147_454E_0002 // "STAGEN" 2

// RunLock is a held session-level advisory lock. It pins one connection
// for as long as it is held.
type RunLock struct {
	conn *pgxpool.Conn
}

// TryRunLock takes the run lock without waiting. ok is false when another
// session holds it.
func (s *Store) TryRunLock(ctx context.Context) (lock *RunLock, ok bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, s.wrap("take advisory lock", err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(runLockKey)).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, s.wrap("take advisory lock", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return &RunLock{conn: conn}, true, nil
}

// Release unlocks. If the unlock cannot be sent, the connection is closed,
// which releases the lock on the server as well.
func (l *RunLock) Release() {
	if l == nil || l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(runLockKey)); err != nil {
		_ = l.conn.Conn().Close(ctx)
	}
	l.conn.Release()
	l.conn = nil
}
