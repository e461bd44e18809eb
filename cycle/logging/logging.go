// Package logging builds stashgen's one log handler: text or JSON on
// stderr, every known secret removed from every line, and under systemd no
// timestamps and a syslog priority in front of each line, which journald
// reads as the line's level.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/stashgen/stashgen/cycle/config"
)

// Options say where and how to log.
type Options struct {
	W      io.Writer // stderr, or the terminal's progress line
	Format string    // "text" (default) or "json"
	Level  slog.Level
	// Journal: stderr is journald's (JOURNAL_STREAM is set). Lines get a
	// priority prefix and no timestamp: journald stamps each line itself.
	Journal bool
	// Secrets are removed from every message and attribute.
	Secrets []string
	// Tail, when set, also gets every line (the body of the final ping),
	// after redaction and without the journal's prefix.
	Tail io.Writer
}

// New builds the logger.
func New(o Options) *slog.Logger {
	out := o.W
	var jw *journalWriter
	if o.Journal {
		jw = &journalWriter{w: out}
		out = jw
	}
	if o.Tail != nil {
		out = io.MultiWriter(o.Tail, out)
	}
	opts := &slog.HandlerOptions{Level: o.Level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if o.Journal && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{} // journald stamps each line itself
		}
		return a
	}}
	var h slog.Handler
	if o.Format == "json" {
		h = slog.NewJSONHandler(out, opts)
	} else {
		h = slog.NewTextHandler(out, opts)
	}
	if jw != nil {
		h = &journalHandler{Handler: h, w: jw}
	}
	return slog.New(&redactHandler{Handler: h, secrets: o.Secrets})
}

// redactHandler removes known secret values from every message and
// attribute before the line is written: the last line of defence when a
// library error quotes a URL or a header.
type redactHandler struct {
	slog.Handler
	secrets []string
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	if len(h.secrets) == 0 {
		return h.Handler.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, h.redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.redact(err.Error()))
		}
		return slog.String(a.Key, h.redact(fmt.Sprint(v.Any())))
	}
	return a
}

func (h *redactHandler) redact(s string) string { return config.RedactSecrets(s, h.secrets) }

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &redactHandler{Handler: h.Handler.WithAttrs(red), secrets: h.secrets}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{Handler: h.Handler.WithGroup(name), secrets: h.secrets}
}

// journalWriter puts the syslog priority of the line being written in
// front of it, as sd-daemon(3) describes: journald reads "<3>" as error,
// "<4>" warning, "<6>" info, "<7>" debug, and strips it.
type journalWriter struct {
	mu   sync.Mutex // held by journalHandler around each record
	w    io.Writer
	prio string
}

func (j *journalWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(append([]byte(j.prio), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// journalHandler tells journalWriter the level of each record.
type journalHandler struct {
	slog.Handler
	w *journalWriter
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.prio = priority(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &journalHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{Handler: h.Handler.WithGroup(name), w: h.w}
}

func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}
