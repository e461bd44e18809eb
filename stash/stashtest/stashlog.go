package stashtest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LogLevel is a level of Stash's log, spelled as the GraphQL LogLevel enum.
type LogLevel string

// The levels of Stash's LogLevel enum, lowest first.
const (
	LogTrace    LogLevel = "Trace"
	LogDebug    LogLevel = "Debug"
	LogInfo     LogLevel = "Info"
	LogProgress LogLevel = "Progress"
	LogWarning  LogLevel = "Warning"
	LogError    LogLevel = "Error"
)

// LogEntry is one line of the fake Stash's log, as loggingSubscribe sends it.
type LogEntry struct {
	Time    time.Time
	Level   LogLevel
	Message string
}

// logKeep caps the entries Logs returns, so trace noise over a long
// benchmark does not grow without bound.
const logKeep = 10_000

// stashLog mirrors Stash's logger: entries go to a buffer that is pushed to
// every logging subscriber at most once per batch interval, the first entry
// after a quiet interval at once. Entries nobody was subscribed for when
// their batch went out are gone, as in Stash. Batching runs on the wall
// clock: it is about delivery, not about the fake clock.
type stashLog struct {
	entries   []LogEntry // newest logKeep, for Logs
	pending   []LogEntry // the batch not pushed yet
	seq       int64      // nanoseconds added to the fake clock, to order entries
	lastFlush time.Time
	waiting   bool
	timer     *time.Timer
}

// Log adds an entry to the fake Stash's log, as Stash's own code would.
// It panics on a level Stash does not have.
func (s *Server) Log(level LogLevel, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !validLevel(level) {
		panic(fmt.Sprintf("stashtest: %q is not a Stash log level", level))
	}
	s.logLocked(level, message)
}

// Logs lists the newest entries of the log (up to 10,000), oldest first.
func (s *Server) Logs() []LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.slog.entries)
}

func validLevel(l LogLevel) bool {
	switch l {
	case LogTrace, LogDebug, LogInfo, LogProgress, LogWarning, LogError:
		return true
	}
	return false
}

// logLocked records an entry and schedules its push. Called with s.mu held.
func (s *Server) logLocked(level LogLevel, message string) {
	l := &s.slog
	l.seq++
	// Stash stamps entries with time.Now(); the fake clock has whole
	// seconds, so a growing nanosecond offset keeps entries distinct and
	// ordered, and proves clients keep the nanoseconds.
	e := LogEntry{Time: s.now.Add(time.Duration(l.seq)), Level: level, Message: message}
	l.entries = append(l.entries, e)
	if len(l.entries) > logKeep {
		l.entries = slices.Delete(l.entries, 0, len(l.entries)-logKeep)
	}
	l.pending = append(l.pending, e)
	if l.waiting || s.isClosed {
		return
	}
	since := time.Since(l.lastFlush)
	if since >= s.logBatch {
		s.flushLogs()
		return
	}
	l.waiting = true
	s.wg.Add(1)
	l.timer = time.AfterFunc(s.logBatch-since, func() {
		defer s.wg.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.isClosed {
			s.flushLogs()
		}
	})
}

// flushLogs pushes the pending batch to every logging subscriber. Called
// with s.mu held.
func (s *Server) flushLogs() {
	l := &s.slog
	batch := l.pending
	l.pending = nil
	l.waiting = false
	l.timer = nil
	l.lastFlush = time.Now()
	if len(batch) == 0 {
		return
	}
	var value []any
	for _, sub := range s.ws.subs {
		if sub.field != "loggingSubscribe" {
			continue
		}
		if value == nil {
			value = make([]any, len(batch))
			for i, e := range batch {
				value[i] = map[string]any{"time": e.Time, "level": string(e.Level), "message": e.Message}
			}
		}
		sub.conn.sendData(sub.id, s.executeEvent(sub.op, sub.vars, value))
	}
}

// stopLogTimer cancels a scheduled push when the server closes. Called with
// s.mu held.
func (s *Server) stopLogTimer() {
	if t := s.slog.timer; t != nil && t.Stop() {
		s.wg.Done() // the push will never run
	}
	s.slog.timer = nil
}

// traceNoise logs what a Stash at Trace level logs all the time. Called
// with s.mu held.
func (s *Server) traceNoise() {
	for range s.noise {
		s.logLocked(LogTrace, "[sqlite] query: SELECT scenes.id FROM scenes WHERE scenes.id = ? args: ["+strconv.FormatInt(s.slog.seq, 10)+"]")
	}
}

// failureLines are the Error lines Stash logs when generating a resource
// fails, keyed by resource. ffmpeg failures quote the command line, which
// names the video; a phash failure does not.
func failureLines(r Resource, path string) []string {
	ffmpeg := func(args string) string {
		return "ffmpeg command produced no output: <-v error -y " + args + ">"
	}
	switch r {
	case ResourceCover:
		return []string{"Error generating screenshot: " + ffmpeg("-ss 5.92 -i "+path+" -frames:v 1 -vf scale=1280:-2 -c:v mjpeg -f image2 -")}
	case ResourcePhash:
		return []string{"Error generating phash: generating sprite image: ffmpeg command produced no output"}
	case ResourcePreview:
		return []string{
			"[generator] failed generating scene preview, trying fallback",
			"error generating preview: " + ffmpeg("-ss 5.92 -i "+path+" -t 0.75 -max_muxing_queue_size 1024 -c:v libx264 -f mp4 -"),
		}
	case ResourceWebP:
		return []string{"error generating preview webp: " + ffmpeg("-ss 5.92 -i "+path+" -t 0.75 -c:v libwebp -loop 0 -f webp -")}
	case ResourceSprite, ResourceVTT:
		return []string{"error generating sprite: " + ffmpeg("-ss 5.92 -i "+path+" -frames:v 1 -vf scale=160:-2 -c:v bmp -f rawvideo -")}
	case ResourceMarkerStream:
		return []string{"[generator] failed to generate marker video: " + ffmpeg("-ss 10 -i "+path+" -t 20 -c:v libx264 -f mp4 -")}
	case ResourceMarkerPreview:
		return []string{"[generator] failed to generate marker image: " + ffmpeg("-ss 10 -i "+path+" -t 5 -c:v libwebp -f webp -")}
	case ResourceMarkerScreenshot:
		return []string{"[generator] failed to generate marker screenshot: " + ffmpeg("-ss 10 -i "+path+" -frames:v 1 -f image2 -")}
	}
	return nil
}

// levelOf is the level Stash logs a failure line at: the preview fallback
// notice is a warning, the rest are errors.
func levelOf(line string) LogLevel {
	if strings.HasSuffix(line, "trying fallback") {
		return LogWarning
	}
	return LogError
}

// logFailures logs Stash's lines for the resources in failed, once per
// line (sprite and vtt come from one generator). Called with s.mu held.
func (s *Server) logFailures(failed uint16, path string, marker bool) {
	var seen []string
	for _, r := range resourceOrder {
		b := resourceBits[r]
		if failed&b == 0 || (b&markerBits != 0) != marker {
			continue
		}
		for _, line := range failureLines(r, path) {
			if !slices.Contains(seen, line) {
				seen = append(seen, line)
				s.logLocked(levelOf(line), line)
			}
		}
	}
}

// resourceOrder is the order Stash's generate task runs its steps in.
var resourceOrder = []Resource{
	ResourceCover, ResourceSprite, ResourceVTT, ResourcePreview, ResourceWebP, ResourcePhash,
	ResourceMarkerStream, ResourceMarkerPreview, ResourceMarkerScreenshot,
}
