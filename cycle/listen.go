package cycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// heardCap bounds the Warning and Error entries a listener keeps between
// two settles: far more than one job's cap, so that what a job keeps is
// its newest, whatever Stash said before it.
const heardCap = 1000

// linger is how long a run keeps listening after its job ended before it
// settles the job: Stash pushes its log at most once a second, so the
// lines of the job's last scenes can arrive after the job's REMOVE.
const linger = 2 * time.Second

// listenWait bounds how long a run waits, before its first job, for its
// first attempt to open the websocket and subscribe: Stash answers in
// milliseconds, so the job's first log lines and events are heard; a
// socket that takes longer is not worth holding the generate for. The
// attempt itself is bounded by stash.timeout for the upgrade and again
// for the subscriptions; past listenWait the run launches, polls, and the
// socket joins in when it opens (its resync wakes the monitor then).
const listenWait = 5 * time.Second

// wake is why a listening monitor stops waiting before its next poll.
type wake struct {
	job    *stash.JobEvent // a Stash job event worth acting on
	ledger int64           // a ledger scan row entered pending or running
	resync bool            // the socket (re)connected: events may have been missed
}

// listener hears what Stash and the ledger push while a run follows its
// jobs: Stash's job events and log (one websocket, reconnected with
// backoff), and the ledger's scan rows (LISTEN). Polling stays the safety
// net: a monitor that hears nothing polls as before.
type listener struct {
	wakes  chan wake
	socket atomic.Bool // the websocket is up now
	ledger atomic.Bool // the ledger's LISTEN is up now
	heard  atomic.Bool // the websocket was up at some point while a job was followed

	mu   sync.Mutex
	logs []stash.LogEntry // Warning and Error entries, oldest first

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// listen starts listening, once a run, before its first job, and returns
// once the first attempt to open the websocket has ended, opened with both
// subscriptions or failed (then the run polls), or after listenWait. It
// does nothing when the run polls only.
func (p *pass) listen(ctx context.Context) {
	if !p.set.Listen || p.lis != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &listener{wakes: make(chan wake, 64), cancel: cancel}
	p.lis = l
	tried := make(chan struct{})
	l.wg.Go(func() { p.hearStash(ctx, l, sync.OnceFunc(func() { close(tried) })) })
	if scans, err := p.Store.ListenScans(ctx); err != nil {
		p.log.Info("not listening to the ledger for scans; polling it instead", "reason", err)
	} else {
		l.ledger.Store(true)
		l.wg.Go(func() {
			for id := range scans.C {
				l.send(wake{ledger: id})
			}
			l.ledger.Store(false)
			if err := scans.Err(); err != nil {
				p.log.Info("stopped listening to the ledger for scans; polling it instead", "reason", err)
			}
		})
	}
	p.awaitSocket(ctx, tried)
}

// awaitSocket waits until tried is closed, for at most listenWait as the
// run's Wait measures it (tests stand in for the time passing).
func (p *pass) awaitSocket(ctx context.Context, tried <-chan struct{}) {
	wctx, cancel := context.WithCancel(ctx)
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		_ = p.wait(wctx, listenWait)
	}()
	select {
	case <-tried:
	case <-waited:
		select {
		case <-tried: // both at once: it was in time
		default:
			if ctx.Err() == nil {
				p.log.Info("the websocket to stash is not open yet; going on, polling until it is",
					"waited", listenWait.String())
			}
		}
	}
	cancel()
	<-waited
}

// stopListening closes the socket and the ledger's connection.
func (p *pass) stopListening() {
	if p.lis == nil {
		return
	}
	p.lis.cancel()
	p.lis.wg.Wait()
}

func (l *listener) send(w wake) {
	select {
	case l.wakes <- w:
	default: // the monitor is far behind: it polls anyway
	}
}

// listening says whether both sources are up: then the monitor need not
// look for scans at every poll.
func (l *listener) listening() bool {
	return l != nil && l.socket.Load() && l.ledger.Load()
}

// hearStash keeps one websocket to Stash open, reconnecting with backoff
// (1 s, doubling up to poll_interval). It says once, with the reason, when
// it cannot listen, and again when it can. It calls tried once its first
// attempt has ended, either way.
func (p *pass) hearStash(ctx context.Context, l *listener, tried func()) {
	defer tried()
	retry := time.Duration(0)
	quiet := false // the run was told it polls; say so again only after a success
	short := 0     // sockets in a row that dropped before holding a whole poll_interval
	for ctx.Err() == nil {
		sub, err := p.Stash.Subscribe(ctx, stash.SubscribeOptions{MinLevel: stash.LogWarning})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !quiet {
				p.log.Info("not listening to stash's events; polling every poll_interval instead, and trying again", "reason", err)
				quiet = true
			}
			tried()
			retry = backoff(retry, p.set.PollInterval)
			if p.pause(ctx, retry) != nil {
				return
			}
			continue
		}
		if quiet && short < 2 {
			p.log.Info("listening to stash's events again")
		}
		quiet = false
		l.socket.Store(true)
		l.send(wake{resync: true})
		tried()
		up := time.Now()
		p.pump(ctx, l, sub)
		l.socket.Store(false)
		_ = sub.Close()
		if ctx.Err() != nil {
			return
		}
		if time.Since(up) >= p.set.PollInterval {
			short, retry = 0, 0
		}
		short++
		retry = afterDrop(short, retry, p.set.PollInterval)
		switch short {
		case 1:
			p.log.Info("lost stash's events; polling every poll_interval until they are back", "reason", sub.Err())
		case 2:
			p.log.Info("stash's events keep dropping soon after they begin; polling every poll_interval, and reconnecting with backoff", "reason", sub.Err())
		}
		quiet = true
		if retry > 0 && p.pause(ctx, retry) != nil {
			return
		}
	}
}

// backoff is the wait before the next attempt to open the socket after
// the last wait: 1 s, then twice as long each time, up to poll_interval.
func backoff(last, poll time.Duration) time.Duration {
	return min(max(2*last, time.Second), poll)
}

// afterDrop is the wait before reconnecting after a socket dropped, the
// short-th in a row to drop before it held a whole poll_interval. The
// first reconnects at once (a Stash restart, a network blip); from the
// second on the socket is flapping (a proxy that cuts upgraded
// connections) and reconnecting backs off, so Stash is not hammered.
func afterDrop(short int, last, poll time.Duration) time.Duration {
	if short <= 1 {
		return 0
	}
	return backoff(last, poll)
}

// pause waits d, or until ctx ends; a real timer even in tests, whose Wait
// stands for the monitor's polls.
func (p *pass) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pump hands the monitor the events it acts on (a scan queued, a job of
// any kind ending, progress) and keeps the Warning and Error log entries,
// until the socket ends.
func (p *pass) pump(ctx context.Context, l *listener, sub *stash.Subscription) {
	jobs, logs := sub.Jobs(), sub.Logs()
	for jobs != nil || logs != nil {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-jobs:
			if !ok {
				jobs = nil
				continue
			}
			l.send(wake{job: &ev})
		case e, ok := <-logs:
			if !ok {
				logs = nil
				continue
			}
			l.mu.Lock()
			l.logs = append(l.logs, e)
			if len(l.logs) > heardCap {
				l.logs = l.logs[len(l.logs)-heardCap:]
			}
			l.mu.Unlock()
		}
	}
}

// since returns the entries logged at or after t, and forgets everything
// heard so far: what comes next belongs to the next job.
func (l *listener) since(t time.Time) []stash.LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []stash.LogEntry
	for _, e := range l.logs {
		if !e.Time.Before(t) {
			out = append(out, e)
		}
	}
	l.logs = nil
	return out
}

// keepLog stores what Stash logged while the job ran (at or after its
// addTime, before it is settled) with the ledger job, and on each scene of
// the batch whose file an entry names; it logs them at WARN, so the final
// ping carries them too.
func (p *pass) keepLog(ctx context.Context, j *tracked) {
	if p.lis == nil || j.last.AddTime.IsZero() {
		return
	}
	heard := p.lis.since(j.last.AddTime)
	if len(heard) == 0 {
		return
	}
	entries := make([]db.LogEntry, len(heard))
	scenes := map[int64]db.LogEntry{}
	for i, e := range heard {
		entries[i] = db.LogEntry{At: e.Time, Level: string(e.Level), Message: e.Message}
		for id, files := range j.paths {
			for _, f := range files {
				if f != "" && strings.Contains(e.Message, f) {
					scenes[id] = entries[i]
				}
			}
		}
	}
	wctx, cancel := p.cleanup(ctx)
	defer cancel()
	if err := p.Store.SaveJobLog(wctx, j.ledgerID, entries); err != nil {
		j.log.Warn("store stash's log of the job failed", "error", err)
	}
	if err := p.Store.SetSceneErrors(wctx, scenes); err != nil {
		j.log.Warn("store the scenes' errors failed", "error", err)
	}
	// The newest three, as kept (cut to db.JobLogMessage bytes each).
	kept := db.Newest(entries)
	for _, e := range kept[len(kept)-min(3, len(kept)):] {
		j.log.Warn("stash logged while generating", "stash_level", e.Level, "stash_message", e.Message)
	}
	if len(entries) > 3 {
		which := "them"
		if len(kept) < len(entries) {
			which = fmt.Sprintf("the newest %d", len(kept))
		}
		j.log.Warn(fmt.Sprintf("stash logged %d warnings and errors while generating; `stashgen history` lists %s", len(entries), which))
	}
}
