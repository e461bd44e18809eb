package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stashgen/stashgen/cycle/config"
)

func TestPriority(t *testing.T) {
	t.Parallel()
	for l, want := range map[slog.Level]string{
		slog.LevelDebug: "<7>", slog.LevelInfo: "<6>", slog.LevelInfo + 2: "<6>", slog.LevelWarn: "<4>", slog.LevelError: "<3>", slog.LevelError + 4: "<3>",
	} {
		if got := priority(l); got != want {
			t.Errorf("priority(%v) = %s, want %s", l, got, want)
		}
	}
}

// Every secret is removed from the message, string and error attributes,
// groups and attributes added with With, in both formats; the tail gets
// the same redacted lines without the journal's priority prefix.
func TestNew_RedactsEverywhere(t *testing.T) {
	t.Parallel()
	const key, pass = "k3y-SECRET-1234", "pa55-SECRET"
	for _, format := range []string{"text", "json"} {
		var out, tail bytes.Buffer
		log := New(Options{W: &out, Format: format, Level: slog.LevelDebug, Journal: true, Secrets: []string{key, pass}, Tail: &tail})
		log = log.With("url", "http://x/?apikey="+key)
		log.Warn("dial "+key+" failed", "error", errors.New("password "+pass), slog.Group("g", "v", pass), "n", 3)
		for _, s := range []string{out.String(), tail.String()} {
			if strings.Contains(s, key) || strings.Contains(s, pass) || strings.Count(s, config.Redacted) != 4 {
				t.Errorf("%s: not redacted everywhere:\n%s", format, s)
			}
		}
		if !strings.HasPrefix(out.String(), "<4>") || strings.HasPrefix(tail.String(), "<4>") || strings.Contains(out.String(), "time") {
			t.Errorf("%s: journal line %q, tail %q", format, out.String(), tail.String())
		}
	}
}
