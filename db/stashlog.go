package db

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// What Stash said while a job ran, and the ledger's wake-up for scans.

// ScanChannel is the NOTIFY channel a ledger scan row wakes runs on.
const ScanChannel = "stashgen_jobs"

// LogEntry is one line Stash logged: Warning or Error.
type LogEntry struct {
	At      time.Time // Stash's time, with nanoseconds
	Level   string
	Message string
}

// Caps on what is kept of Stash's log per job: the newest entries, at
// most this many and this many bytes of messages, each message cut to
// JobLogMessage bytes (an ffmpeg error quoting its whole command line is
// about 1 KiB; a Stash at Trace level may log far longer lines).
const (
	JobLogEntries = 100
	JobLogBytes   = 64 << 10
	JobLogMessage = 4 << 10
)

// Newest keeps the newest entries within the caps, oldest first, each
// message cut to JobLogMessage bytes. It returns a new slice and keeps
// at least min(len(entries), JobLogBytes/JobLogMessage) entries.
func Newest(entries []LogEntry) []LogEntry {
	var kept []LogEntry
	size := 0
	for i := len(entries) - 1; i >= 0 && len(kept) < JobLogEntries; i-- {
		e := entries[i]
		e.Message = clipMessage(e.Message)
		if size += len(e.Message); size > JobLogBytes {
			break
		}
		kept = append(kept, e)
	}
	slices.Reverse(kept)
	return kept
}

// clipMessage cuts a message longer than JobLogMessage bytes at a rune
// boundary and says so.
func clipMessage(m string) string {
	const more = " [...]"
	if len(m) <= JobLogMessage {
		return m
	}
	cut := JobLogMessage - len(more)
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + more
}

// SaveJobLog stores what Stash logged while a job ran, newest kept within
// the caps.
func (s *Store) SaveJobLog(ctx context.Context, jobID int64, entries []LogEntry) error {
	entries = Newest(entries)
	if len(entries) == 0 {
		return nil
	}
	at, level, msg := make([]time.Time, len(entries)), make([]string, len(entries)), make([]string, len(entries))
	for i, e := range entries {
		at[i], level[i], msg[i] = e.At, e.Level, e.Message
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO job_log (job_id, at, level, message)
		SELECT $1, a, l, m FROM unnest($2::timestamptz[], $3::text[], $4::text[]) AS t(a, l, m)`, jobID, at, level, msg)
	return s.wrap("store stash's log of the job", err)
}

// SetSceneErrors stores, per scene, the last entry of Stash's log that
// named its file.
func (s *Store) SetSceneErrors(ctx context.Context, errs map[int64]LogEntry) error {
	if len(errs) == 0 {
		return nil
	}
	ids, at, msg := make([]int64, 0, len(errs)), make([]time.Time, 0, len(errs)), make([]string, 0, len(errs))
	for id, e := range errs {
		ids, at, msg = append(ids, id), append(at, e.At), append(msg, clipMessage(e.Message))
	}
	_, err := s.pool.Exec(ctx, `UPDATE scenes AS s SET last_error = t.m, last_error_at = t.a
		FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS t(id, a, m) WHERE s.stash_id = t.id`, ids, at, msg)
	return s.wrap("store the scenes' last errors", err)
}

// JobLog is what Stash logged for one job: how many entries were kept,
// and the first few.
type JobLog struct {
	Count int
	First []LogEntry
}

// JobLogs returns, per job, the count of its kept entries and the first
// first of them.
func (s *Store) JobLogs(ctx context.Context, jobIDs []int64, first int) (map[int64]JobLog, error) {
	rows, err := s.pool.Query(ctx, `SELECT job_id, n, at, level, message FROM (
			SELECT job_id, at, level, message, count(*) OVER w AS n, row_number() OVER (w ORDER BY at, id) AS i
			FROM job_log WHERE job_id = ANY($1) WINDOW w AS (PARTITION BY job_id)) t
		WHERE i <= $2 ORDER BY job_id, at`, jobIDs, first)
	if err != nil {
		return nil, s.wrap("read stash's log of the jobs", err)
	}
	out := map[int64]JobLog{}
	var (
		id int64
		n  int
		e  LogEntry
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &n, &e.At, &e.Level, &e.Message}, func() error {
		l := out[id]
		l.Count = n
		l.First = append(l.First, e)
		out[id] = l
		return nil
	})
	return out, s.wrap("read stash's log of the jobs", err)
}

// FailingScene is a not-generated scene and the last error Stash logged
// for it.
type FailingScene struct {
	ID          int64
	Attempts    int
	Quarantined bool
	Error       LogEntry
}

// FailingScenes lists up to limit not-generated scenes with an error from
// Stash's log, the newest errors first.
func (s *Store) FailingScenes(ctx context.Context, limit int) ([]FailingScene, error) {
	rows, err := s.pool.Query(ctx, `SELECT stash_id, attempts, quarantined_at IS NOT NULL, last_error_at, last_error
		FROM scenes WHERE NOT generated AND last_error IS NOT NULL ORDER BY last_error_at DESC, stash_id LIMIT $1`, limit)
	if err != nil {
		return nil, s.wrap("list failing scenes", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (FailingScene, error) {
		var f FailingScene
		return f, row.Scan(&f.ID, &f.Attempts, &f.Quarantined, &f.Error.At, &f.Error.Message)
	})
	return out, s.wrap("list failing scenes", err)
}

// Scans is a listening connection on ScanChannel. C receives the ledger id
// of each scan row of this schema that enters pending or running; it is
// closed, and Err set, when the connection ends.
type Scans struct {
	C   <-chan int64
	err error
	end chan struct{}
}

// Err is why the listening ended, once C is closed.
func (l *Scans) Err() error {
	<-l.end
	return l.err
}

// ListenScans takes a connection out of the pool for the run's life and
// LISTENs on ScanChannel until ctx ends; notifications for other schemas
// sharing the database are skipped.
func (s *Store) ListenScans(ctx context.Context) (*Scans, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, s.wrap("listen for ledger scans", err)
	}
	conn := pc.Hijack() // ours until closed: a LISTEN must not go back to the pool
	if _, err := conn.Exec(ctx, `LISTEN `+ScanChannel); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, s.wrap("listen for ledger scans", err)
	}
	ch := make(chan int64, 16)
	l := &Scans{C: ch, end: make(chan struct{})}
	prefix := s.schema + ":"
	go func() {
		defer close(l.end)
		defer close(ch)
		defer conn.Close(context.WithoutCancel(ctx))
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				if !errors.Is(err, context.Canceled) && ctx.Err() == nil {
					l.err = s.wrap("listen for ledger scans", err)
				}
				return
			}
			id, err := strconv.ParseInt(strings.TrimPrefix(n.Payload, prefix), 10, 64)
			if !strings.HasPrefix(n.Payload, prefix) || err != nil {
				continue
			}
			select {
			case ch <- id:
			default: // a wake-up is already waiting: one is enough
			}
		}
	}()
	return l, nil
}
