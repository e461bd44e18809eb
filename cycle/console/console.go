// Package console draws what stashgen shows on an interactive terminal: one
// progress line for the Stash job a run follows (percent, elapsed, ETA),
// kept below the log lines as they scroll by. main uses it only when
// stderr is a terminal, so logs captured by cron, systemd or a pipe never
// carry its control characters.
package console

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/stashgen/stashgen/stash"
)

// clearLine returns the cursor to the start of the line and erases it.
const clearLine = "\r\x1b[K"

// Line is an io.Writer for the log that also owns one progress line at
// the bottom: each log line clears it, is written, and redraws it.
type Line struct {
	w io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Every redraws the line this often so elapsed time moves between
	// polls; 0 redraws only on updates.
	Every time.Duration

	mu     sync.Mutex
	text   string    // the line on screen, "" when none
	job    stash.Job // the last state seen
	seen   time.Time // when this job was first seen
	p0     float64   // its progress then
	ticker *time.Ticker
	done   chan struct{}
}

// New returns a Line writing to w (the terminal).
func New(w io.Writer) *Line { return &Line{w: w} }

// Write writes a log line above the progress line.
func (l *Line) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.text == "" {
		return l.w.Write(p)
	}
	if _, err := io.WriteString(l.w, clearLine); err != nil {
		return 0, err
	}
	n, err := l.w.Write(p)
	if err != nil {
		return n, err
	}
	_, err = io.WriteString(l.w, l.text)
	return n, err
}

// Update shows the latest state of the Stash job being followed; a job
// that ended takes the line away.
func (l *Line) Update(job stash.Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if job.ID != l.job.ID || l.seen.IsZero() {
		l.seen, l.p0 = now, 0
		if job.Progress != nil {
			l.p0 = *job.Progress
		}
	}
	l.job = job
	if job.Status.Ended() {
		l.clear()
		l.job, l.seen = stash.Job{}, time.Time{}
		return
	}
	l.draw(now)
	if l.Every > 0 && l.ticker == nil {
		l.ticker = time.NewTicker(l.Every)
		l.done = make(chan struct{})
		go l.tick(l.ticker, l.done)
	}
}

// Close takes the line away and stops redrawing.
func (l *Line) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	if l.ticker != nil {
		l.ticker.Stop()
		close(l.done)
		l.ticker = nil
	}
}

func (l *Line) tick(t *time.Ticker, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-t.C:
			l.mu.Lock()
			if l.text != "" {
				l.draw(l.now())
			}
			l.mu.Unlock()
		}
	}
}

func (l *Line) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Line) draw(now time.Time) {
	l.text = Render(l.job, now.Sub(l.seen), l.p0)
	_, _ = io.WriteString(l.w, clearLine+l.text)
}

func (l *Line) clear() {
	if l.text != "" {
		_, _ = io.WriteString(l.w, clearLine)
		l.text = ""
	}
}

// barWidth is the number of cells in the progress bar.
const barWidth = 20

// Render is the progress line of a job followed for elapsed, whose
// progress was p0 when it was first seen: the ETA extrapolates the rate
// seen since then, so a job adopted half-way is not estimated from zero.
func Render(job stash.Job, elapsed time.Duration, p0 float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stash job %s: %s", job.ID, job.Status)
	if job.Progress == nil {
		fmt.Fprintf(&b, " · elapsed %s", clock(elapsed))
		return b.String()
	}
	p := min(max(*job.Progress, 0), 1)
	filled := int(p * barWidth)
	fmt.Fprintf(&b, " [%s%s] %3.0f%% · elapsed %s", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), p*100, clock(elapsed))
	if done := p - p0; done > 0 && elapsed > 0 {
		eta := time.Duration(float64(elapsed) * (1 - p) / done)
		fmt.Fprintf(&b, " · ETA %s", clock(eta))
	} else {
		b.WriteString(" · ETA -")
	}
	return b.String()
}

// clock prints a duration as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s%3600/60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
