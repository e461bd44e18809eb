package fence

import (
	"testing"
	"time"
)

// FuzzParse feeds arbitrary text to both parsers: neither may panic, what
// they accept must read back from String, and an accepted window must keep
// its promises at an arbitrary instant in a zone with DST.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"01:00-07:00", "22:00-00:00", "1:00-7:00", "24:00-01:00", "50GiB", "1.5TiB", "10%", "100 GB", "50"} {
		f.Add(s, int64(1743296400)) // 2025-03-30 01:00 UTC, Berlin springs forward
	}
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		if w, err := ParseWindow(s); err == nil {
			if back, err := ParseWindow(w.String()); err != nil || back != w {
				t.Fatalf("window %q reads back as %v, %v", w, back, err)
			}
			if w.Always() {
				return
			}
			now := time.Unix(unix%(1<<34), 0).In(loc) // years 1425 to 2514
			next, closes := w.NextOpen(now), w.Closes(now)
			if !w.Open(next) || !closes.After(next) || w.Open(closes) || w.Open(now) != next.Equal(now) {
				t.Fatalf("window %s at %s: next %s, closes %s", w, now, next, closes)
			}
		}
		if fl, err := ParseFloor(s); err == nil {
			if back, err := ParseFloor(fl.String()); err != nil || back != fl {
				t.Fatalf("floor %q reads back as %v, %v", fl, back, err)
			}
		}
	})
}
